from dateutil.relativedelta import relativedelta

from odoo import api, fields, models


class FayvadMailSubscription(models.Model):
    _name = "fayvad.mail.subscription"
    _description = "Mail Hosting Subscription"
    _inherit = ["mail.thread"]
    _order = "date_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    organization_id = fields.Many2one(
        "fayvad.mail.organization", required=True, ondelete="cascade", index=True, check_company=True
    )
    company_id = fields.Many2one(related="organization_id.company_id", store=True, index=True)
    partner_id = fields.Many2one(related="organization_id.partner_id", store=True)
    plan_id = fields.Many2one("fayvad.mail.plan", tracking=True, check_company=True, ondelete="restrict")
    amount = fields.Monetary(tracking=True, help="Recurring amount per period.")
    currency_id = fields.Many2one(
        "res.currency", required=True, tracking=True, default=lambda self: self.env.company.currency_id
    )
    state = fields.Selection(
        [("active", "Active"), ("past_due", "Past Due"), ("cancelled", "Cancelled")],
        default="active",
        required=True,
        tracking=True,
        index=True,
    )
    date_start = fields.Date(default=fields.Date.context_today, required=True)
    period_start = fields.Date(string="Current Period Start", tracking=True)
    period_end = fields.Date(string="Current Period End", tracking=True)
    paid_until = fields.Date(tracking=True, help="End of the last period that has been paid.")
    date_cancelled = fields.Date(tracking=True, copy=False)
    failed_payment_count = fields.Integer(
        tracking=True, copy=False, help="Failed payments since the last successful one."
    )
    first_failure_date = fields.Date(copy=False, help="Date of the first unresolved payment failure.")
    external_ref = fields.Char(string="External Reference", tracking=True, copy=False)

    _sql_constraints = [
        ("amount_positive", "CHECK(amount >= 0)", "A subscription amount cannot be negative."),
        (
            "period_order",
            "CHECK(period_end IS NULL OR period_start IS NULL OR period_end >= period_start)",
            "A subscription period cannot end before it starts.",
        ),
    ]

    @api.depends("organization_id.name", "plan_id.name")
    def _compute_name(self):
        for sub in self:
            sub.name = " - ".join(filter(None, [sub.organization_id.name, sub.plan_id.name]))

    @api.model
    def _period_of(self, day):
        """The monthly period containing ``day``: (first day, last day)."""
        start = day.replace(day=1)
        return start, start + relativedelta(months=1, days=-1)
