import threading
import time

from psycopg2.extensions import TransactionRollbackError

from odoo import api, models
from odoo.tools import SQL


class FayvadMailQueue(models.AbstractModel):
    """The one queue engine of fayvad_mail, apart from what is queued (as OCA
    queue_job keeps its ``Job`` apart from what jobs do): taking the next
    item so that several workers and hosts never take the same one, and
    working through items one transaction each, within a count and a time
    budget. The provisioning jobs, the billing sync and the crons that work
    record by record use it; what an item does, and how its failure is
    recorded, stays with them."""

    _name = "fayvad.mail.queue"
    _description = "Mail Hosting Queue Engine"

    @api.model
    def _queue_take(self, candidates_query, lock_where=None):
        """Lock and return the first of the ids ``candidates_query`` selects
        that no other worker holds (``FOR NO KEY UPDATE SKIP LOCKED``, as
        ``ir_cron._acquire_one_job``); an empty recordset when none is free.
        Each candidate is locked in a savepoint of its own: under REPEATABLE
        READ, one another worker changed after this transaction began raises
        a serialization failure, and then it is not ours."""
        self.flush_model()
        self.env.cr.execute(candidates_query)
        for (record_id,) in self.env.cr.fetchall():
            try:
                with self.env.cr.savepoint(flush=False):
                    self.env.cr.execute(
                        SQL(
                            "SELECT id FROM %s WHERE id = %s AND %s FOR NO KEY UPDATE SKIP LOCKED",
                            SQL.identifier(self._table),
                            record_id,
                            lock_where or SQL("TRUE"),
                        )
                    )
                    locked = self.env.cr.fetchone()
            except TransactionRollbackError:
                continue
            if locked:
                return self.browse(record_id)
        return self.browse()

    @api.model
    def _queue_work(self, take, work, limit, budget=None):
        """Work through what ``take(tried)`` hands over (a record, or an empty
        one when there is nothing left), ``work(item)`` each in a savepoint
        of its own and a transaction of its own outside tests, until
        ``limit`` items were worked or ``budget`` seconds are spent. ``work``
        records its item's failure itself; an item is taken once a call.
        Returns (items worked, whether the budget ran out)."""
        testing = getattr(threading.current_thread(), "testing", False)
        deadline = time.monotonic() + budget if budget is not None else None
        done, tried = 0, set()
        while done < limit and (deadline is None or time.monotonic() < deadline):
            item = take(tried)
            if not item:
                break
            tried.add(item.id)
            with self.env.cr.savepoint():
                work(item)
            done += 1
            if not testing:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return done, deadline is not None and time.monotonic() >= deadline
