import logging
from datetime import timedelta

from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.tools import SQL

from ..const import FUTURE_HOURS, LEDGER_DAYS

_logger = logging.getLogger(__name__)


class AlreadyClaimed(Exception):
    """The event was applied by another delivery."""


class FayvadMailWebhookIdentity(models.Model):
    """The ledger of billing webhook events applied: one row per event
    identity, kept longer than the delivery log (which is pruned), so that a
    repeated or replayed delivery is never applied twice.

    A delivery claims several identity keys of its organization at once
    (the hash of its raw body; its ``Webhook-Id`` header; its type, invoice
    and timestamp): it is applied only when none of them was claimed
    before. Rows of events that carry a timestamp are pruned once that
    timestamp is older than LEDGER_DAYS (such a delivery is refused
    anyway); the others are kept."""

    _name = "fayvad.mail.webhook.identity"
    _description = "Applied Billing Webhook Event"
    _order = "id desc"
    _rec_name = "key"
    _log_access = False

    key = fields.Char(required=True, readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True, ondelete="cascade")
    organization_id = fields.Many2one(
        "fayvad.mail.organization", readonly=True, index=True, ondelete="cascade"
    )
    delivery_reference = fields.Char(
        required=True, readonly=True, help="The webhook_id of the delivery that applied the event."
    )
    applied_at = fields.Datetime(required=True, readonly=True)
    event_timestamp = fields.Datetime(readonly=True, help="The event's own time, as its sender stated it.")

    _sql_constraints = [("key_unique", "UNIQUE(key)", "An event is applied once.")]

    @api.model
    def _cutoff(self):
        """Events stamped before this moment are no longer in the ledger."""
        return fields.Datetime.now() - timedelta(days=LEDGER_DAYS)

    @api.model
    def _timestamp_problem(self, stamp):
        """Why an event stamped ``stamp`` (aware, UTC) is refused, or None."""
        if stamp is None:
            return None
        moment = stamp.replace(tzinfo=None)
        if moment < self._cutoff():
            return f"Older than {LEDGER_DAYS} days: an event this old is refused (it may have been applied before)."
        if moment > fields.Datetime.now() + timedelta(hours=FUTURE_HOURS):
            return f"More than {FUTURE_HOURS} hours in the future: check the sender's clock."
        return None

    @api.model
    def _claim(self, keys, delivery, event_timestamp):
        """Record that ``delivery`` (the values of its record: company,
        organization, reference) applies the event of identity ``keys``, in
        the caller's transaction, which must run this in a savepoint: the
        event was applied already (by a delivery committed before, or by a
        concurrent one, which this waits for) when any key was claimed, and
        then this raises AlreadyClaimed."""
        now = fields.Datetime.now()
        rows = [
            SQL(
                "(%s, %s, %s, %s, %s, %s)",
                key,
                delivery["company_id"],
                delivery["organization_id"] or None,
                delivery["reference"],
                now,
                event_timestamp,
            )
            for key in keys
        ]
        try:
            self.env.cr.execute(
                SQL(
                    """
                    INSERT INTO fayvad_mail_webhook_identity
                           (key, company_id, organization_id, delivery_reference, applied_at, event_timestamp)
                    VALUES %s
                    """,
                    SQL(", ").join(rows),
                ),
                log_exceptions=False,
            )
        except pg_errors.UniqueViolation:
            raise AlreadyClaimed(keys) from None

    @api.model
    def _first(self, keys):
        """(webhook_id, applied_at) of the delivery that applied any of
        ``keys`` first, as this transaction sees it; None when it sees none."""
        self.env.cr.execute(
            SQL(
                "SELECT delivery_reference, applied_at FROM fayvad_mail_webhook_identity "
                "WHERE key IN %s ORDER BY applied_at, id LIMIT 1",
                tuple(keys),
            )
        )
        return self.env.cr.fetchone()

    @api.model
    def _prune(self):
        """Identities of events stamped before the ledger's window: such a
        delivery is refused by its timestamp, its identity is not needed."""
        self.env.cr.execute(
            SQL("DELETE FROM fayvad_mail_webhook_identity WHERE event_timestamp < %s", self._cutoff())
        )
        if self.env.cr.rowcount:
            _logger.info(
                "webhook ledger: %s identities older than %s days removed", self.env.cr.rowcount, LEDGER_DAYS
            )
