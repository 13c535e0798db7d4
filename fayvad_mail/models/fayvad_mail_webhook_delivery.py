from odoo import api, fields, models

VERDICTS = [
    ("processed", "Processed"),
    ("duplicate", "Duplicate"),
    ("invalid_signature", "Invalid Signature"),
    ("no_secret", "No Secret Configured"),
    ("invalid", "Invalid Payload"),
    ("failed", "Processing Failed"),
]


class FayvadMailWebhookDelivery(models.Model):
    """Every billing webhook delivery, valid or not, as received."""

    _name = "fayvad.mail.webhook.delivery"
    _description = "Billing Webhook Delivery"
    _order = "id desc"
    _rec_name = "reference"

    reference = fields.Char(
        required=True, readonly=True, copy=False, index=True, help="The webhook_id answered to the sender."
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    organization_id = fields.Many2one(
        "fayvad.mail.organization", readonly=True, index=True, ondelete="set null"
    )
    route = fields.Selection(
        [("company", "Company URL"), ("organization", "Organization URL")], readonly=True
    )
    event_type = fields.Char(readonly=True)
    remote_addr = fields.Char(string="Sender Address", readonly=True)
    headers = fields.Text(readonly=True, help="Request headers; secrets and signatures removed.")
    body = fields.Text(readonly=True)
    signature_valid = fields.Boolean(readonly=True)
    verdict = fields.Selection(VERDICTS, readonly=True, index=True)
    http_status = fields.Integer(readonly=True)
    response = fields.Text(readonly=True)
    error = fields.Text(readonly=True)
    dedup_key = fields.Char(
        readonly=True, copy=False, help="Identity of the event for exactly-once processing."
    )
    duplicate_of_id = fields.Many2one("fayvad.mail.webhook.delivery", readonly=True, ondelete="set null")
    duration_ms = fields.Integer(string="Duration (ms)", readonly=True)
    billing_event_ids = fields.One2many("fayvad.mail.billing.event", "webhook_delivery_id", readonly=True)

    def init(self):
        # Exactly once: one processed delivery per event identity, enforced by the
        # database so that concurrent identical deliveries cannot both apply.
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS fayvad_mail_webhook_delivery_dedup_uniq "
            "ON fayvad_mail_webhook_delivery (dedup_key) WHERE dedup_key IS NOT NULL"
        )

    @api.model
    def _cron_prune(self):
        """Delete deliveries older than the company's retention (days)."""
        for company in self.env["res.company"].search([]):
            days = company.fayvad_webhook_retention_days
            if days <= 0:
                continue
            limit = fields.Datetime.subtract(fields.Datetime.now(), days=days)
            old = self.search([("company_id", "=", company.id), ("create_date", "<", limit)], limit=5000)
            old.unlink()
