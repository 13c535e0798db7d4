from odoo import fields, models


class FayvadMailWebhookRefusal(models.Model):
    """How many times, and until when, one refused-delivery line of the log
    was repeated (same source, route and verdict within the hour). A narrow
    row of its own, so that counting a flood rewrites a few bytes, not the
    logged body and headers."""

    _name = "fayvad.mail.webhook.refusal"
    _description = "Refused Webhook Delivery Count"
    _log_access = False

    delivery_id = fields.Many2one(
        "fayvad.mail.webhook.delivery", required=True, readonly=True, ondelete="cascade", index=True
    )
    attempts = fields.Integer(required=True, default=1, readonly=True)
    last_attempt_at = fields.Datetime(readonly=True)

    _sql_constraints = [("delivery_unique", "UNIQUE(delivery_id)", "One count per refused-delivery line.")]
