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
