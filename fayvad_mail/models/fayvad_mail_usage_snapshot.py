from odoo import api, fields, models

from ..fields import ByteSize


class FayvadMailUsageSnapshot(models.Model):
    """Storage of one mailbox on one day, as read from the mail server."""

    _name = "fayvad.mail.usage.snapshot"
    _description = "Mailbox Usage Snapshot"
    _order = "date desc, id desc"
    _rec_name = "account_id"

    account_id = fields.Many2one("fayvad.mail.account", required=True, ondelete="cascade", index=True)
    organization_id = fields.Many2one(related="account_id.organization_id", store=True, index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    date = fields.Date(required=True, default=fields.Date.context_today, index=True)
    bytes_used = ByteSize(string="Bytes Used", required=True, aggregator="sum")
    gb_used = fields.Float(
        string="Storage (GB)", compute="_compute_gb_used", store=True, digits=(16, 3), aggregator="sum"
    )

    _sql_constraints = [
        ("account_date_unique", "UNIQUE(account_id, date)", "An account has one usage snapshot per day."),
        ("bytes_positive", "CHECK(bytes_used >= 0)", "Storage used cannot be negative."),
    ]

    @api.depends("bytes_used")
    def _compute_gb_used(self):
        for snapshot in self:
            snapshot.gb_used = snapshot.bytes_used / 10**9

    @api.model
    def _record(self, account, bytes_used, date=None):
        """Store today's (or ``date``'s) usage of ``account``, replacing an
        earlier reading of the same day, and update the account's figure
        when this is its latest reading."""
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        snapshot = self.search([("account_id", "=", account.id), ("date", "=", date)], limit=1)
        if snapshot:
            snapshot.bytes_used = bytes_used
        else:
            snapshot = self.create({"account_id": account.id, "date": date, "bytes_used": bytes_used})
        if not account.usage_date or account.usage_date <= date:
            account.write({"storage_used": bytes_used, "usage_date": date})
        return snapshot

    @api.model
    def _usage_on(self, accounts, day):
        """{account id: bytes} from each account's latest snapshot on or before ``day``."""
        if not accounts:
            return {}
        self.env.cr.execute(
            """
            SELECT DISTINCT ON (account_id) account_id, bytes_used
              FROM fayvad_mail_usage_snapshot
             WHERE account_id = ANY(%s) AND date <= %s
          ORDER BY account_id, date DESC
            """,
            [list(accounts.ids), day],
        )
        return dict(self.env.cr.fetchall())
