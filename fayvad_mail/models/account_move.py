from odoo import fields, models


class AccountMove(models.Model):
    _inherit = "account.move"

    fayvad_organization_id = fields.Many2one(
        "fayvad.mail.organization",
        string="Mail Hosting Organization",
        index="btree_not_null",
        copy=False,
        readonly=True,
        ondelete="restrict",
    )
    fayvad_period_start = fields.Date(string="Mail Hosting Period", copy=False, readonly=True)
    fayvad_billing_event_ids = fields.One2many(
        "fayvad.mail.billing.event", "invoice_id", string="Mail Hosting Billing Events"
    )
