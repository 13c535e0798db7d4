from odoo import fields, models

from ..const import OPEN_PAYMENT_STATES


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
    fayvad_draft_key = fields.Char(
        copy=False,
        readonly=True,
        help="Set while this is the draft invoice the billing sync fills for one organization, period "
        "and currency; unique, so that concurrent syncs never make two drafts of one period.",
    )
    fayvad_billing_event_ids = fields.One2many(
        "fayvad.mail.billing.event", "invoice_id", string="Mail Hosting Billing Events"
    )

    def init(self):
        res = super().init()
        # one open draft per organization, period and currency, even when two
        # workers sync at once (their snapshots may not see each other's draft)
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS account_move_fayvad_draft_key_uniq "
            "ON account_move (fayvad_draft_key) WHERE fayvad_draft_key IS NOT NULL"
        )
        return res

    def write(self, vals):
        if vals.get("state") and vals["state"] != "draft":
            vals = {**vals, "fayvad_draft_key": False}  # posted or cancelled: no longer the period's draft
        return super().write(vals)

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        # payments that arrived before their mail hosting invoice was posted land on it now
        Event = self.env["fayvad.mail.billing.event"].sudo()
        for invoice in posted.filtered(lambda m: m.fayvad_organization_id and m.move_type == "out_invoice"):
            for event in Event._waiting_payments(invoice):
                if invoice.payment_state not in OPEN_PAYMENT_STATES:
                    break
                event._reconcile_with(invoice)
        return posted

    def _invoice_paid_hook(self):
        """A mail hosting invoice paid in Odoo (a registered payment, a bank
        reconciliation) does what a payment_received webhook does."""
        res = super()._invoice_paid_hook()
        paid = self.filtered(lambda m: m.move_type == "out_invoice").fayvad_organization_id
        if paid:
            self.env["fayvad.mail.dunning"].sudo()._payment_received(paid.sudo())
        return res
