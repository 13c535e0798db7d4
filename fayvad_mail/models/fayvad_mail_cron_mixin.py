import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

_logger = logging.getLogger(__name__)


def cron_error_message(exc):
    """What an accountant reads: a UserError's own message, else the
    exception's type and text (never a traceback)."""
    if isinstance(exc, UserError) and exc.args:
        return str(exc.args[0])
    return f"{type(exc).__name__}: {exc}"


class FayvadMailCronMixin(models.AbstractModel):
    """Records a cron works on one by one: a record the cron cannot handle
    keeps the error (on its form, for accountants) and the cron goes on
    with the others."""

    _name = "fayvad.mail.cron.mixin"
    _description = "Mail Hosting Automatic Run Errors"

    # what went wrong inside: for the back office, never for portal users (not even by RPC)
    cron_error = fields.Text(
        string="Automatic Run Error",
        readonly=True,
        copy=False,
        groups="fayvad_mail.fayvad_mail_group_user",
        help="Why the last automatic run (a scheduled action) could not handle this record; "
        "cleared once a run succeeds.",
    )
    cron_error_date = fields.Datetime(
        string="Automatic Run Failed On",
        readonly=True,
        copy=False,
        groups="fayvad_mail.fayvad_mail_group_user",
    )

    @api.model
    def _cron_each(self, records, step, what, owner=None):
        """Run ``step(record)`` for each of ``records``, each in its own
        savepoint, committed one by one outside tests. When a step raises,
        what it did is rolled back, the error is logged and written on the
        record's owner (``owner(record)``, the record itself by default),
        and the next record is handled. Returns the records that failed."""
        owner = owner or (lambda record: record)
        failed = records.browse()
        queue = iter(records)

        def work(record):
            nonlocal failed
            target = owner(record)
            try:
                with self.env.cr.savepoint():
                    step(record)
            except Exception as exc:  # one bad record never stops the others
                _logger.warning("%s: %s %s failed", what, record._name, record.id, exc_info=True)
                failed |= record
                if target:
                    target.sudo().write(
                        {
                            "cron_error": f"{what}: {cron_error_message(exc)}",
                            "cron_error_date": fields.Datetime.now(),
                        }
                    )
            else:
                if target and (target.sudo().cron_error or "").startswith(f"{what}:"):
                    target.sudo().write({"cron_error": False, "cron_error_date": False})

        self.env["fayvad.mail.queue"]._queue_work(
            lambda tried: next(queue, records.browse()), work, len(records) or 0
        )
        return failed
