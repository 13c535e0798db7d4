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
    suspend_on = fields.Date(
        copy=False,
        tracking=True,
        help="A cancelled subscription suspends the organization on this day (the end of the paid period).",
    )

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

    def _prorata(self, day=None):
        """Share of the current period left from ``day`` on (1.0 without a period)."""
        self.ensure_one()
        day = day or fields.Date.context_today(self)
        if not (self.period_start and self.period_end) or not self.period_start <= day <= self.period_end:
            return 1.0
        total = (self.period_end - self.period_start).days + 1
        return round(((self.period_end - day).days + 1) / total, 4)

    # -- recurring invoicing -----------------------------------------------------------------
    def _renew(self):
        """Start the next period and bill it: the subscription fee, extra
        users and extra storage of the plan."""
        Event = self.env["fayvad.mail.billing.event"]
        for sub in self:
            start = sub.period_end + relativedelta(days=1)
            _start, end = self._period_of(start)
            sub.write({"period_start": start, "period_end": end})
            label = start.strftime("%Y-%m")
            base = {
                "organization_id": sub.organization_id.id,
                "subscription_id": sub.id,
                "date": start,
                "currency_id": sub.currency_id.id,
            }
            Event.create(
                {
                    **base,
                    "event_type": "subscription_updated",
                    "quantity": 1,
                    "unit_price": sub.amount,
                    "description": self.env._(
                        "%(plan)s subscription %(period)s", plan=sub.plan_id.name or "", period=label
                    ),
                }
            )
            plan, org = sub.plan_id, sub.organization_id
            extra_users = (
                len(org.account_ids.filtered(lambda a: a.state != "terminated")) - plan.included_users
            )
            if plan and extra_users > 0 and plan.price_per_extra_user:
                Event.create(
                    {
                        **base,
                        "event_type": "user_added",
                        "quantity": extra_users,
                        "unit_price": plan.price_per_extra_user,
                        "description": self.env._("Additional users %s", label),
                    }
                )
            extra_gb = org.max_storage_gb - plan.max_storage_gb
            if plan and extra_gb > 0 and plan.price_per_extra_gb:
                Event.create(
                    {
                        **base,
                        "event_type": "storage_changed",
                        "quantity": extra_gb,
                        "unit_price": plan.price_per_extra_gb,
                        "description": self.env._("Additional storage (GB) %s", label),
                    }
                )

    @api.model
    def _cron_monthly_invoicing(self):
        """Renew the subscriptions whose period ended, bill the new period,
        then post (or leave for review) the invoices of ended periods."""
        today = fields.Date.context_today(self)
        due = self.search([("state", "in", ("active", "past_due")), ("period_end", "<", today)])
        for sub in due:
            while sub.period_end < today:
                sub._renew()
        self.env["fayvad.mail.billing.event"]._cron_sync()
        current_start, _end = self._period_of(today)
        drafts = self.env["account.move"].search(
            [
                ("fayvad_organization_id", "!=", False),
                ("state", "=", "draft"),
                ("move_type", "=", "out_invoice"),
                ("fayvad_period_start", "<", current_start),
            ]
        )
        for invoice in drafts.filtered(
            lambda m: m.company_id.fayvad_auto_post_invoices and m.invoice_line_ids
        ):
            invoice.invoice_date = invoice.invoice_date or today
            invoice.action_post()

    @api.model
    def _cron_dunning(self):
        """Overdue invoices make subscriptions past due, and after the
        company's grace the organization is soft-suspended."""
        today = fields.Date.context_today(self)
        overdue = self.env["account.move"].search(
            [
                ("fayvad_organization_id", "!=", False),
                ("move_type", "=", "out_invoice"),
                ("state", "=", "posted"),
                ("payment_state", "in", ("not_paid", "partial")),
                ("invoice_date_due", "<", today),
            ]
        )
        for invoice in overdue:
            org = invoice.fayvad_organization_id
            sub = org.subscription_id
            if sub and sub.state == "active":
                sub.state = "past_due"
            grace = invoice.company_id.fayvad_dunning_grace_days
            late = grace and (today - invoice.invoice_date_due).days >= grace
            if late and org.state == "active" and not org.suspension_exempt:
                org._suspend("non_payment")
        # paid in Odoo since (e.g. registered by an accountant): lift non-payment suspensions
        suspended = self.env["fayvad.mail.organization"].search(
            [("state", "=", "suspended"), ("suspension_reason", "=", "non_payment")]
        )
        for org in suspended - overdue.fayvad_organization_id:
            if not org.subscription_id.failed_payment_count:
                org.subscription_id.filtered(lambda s: s.state == "past_due").state = "active"
                org._unsuspend()

    # -- billing webhook events ------------------------------------------------------------
    def _on_subscription_event(self, amount, currency):
        """subscription_created / subscription_updated: amount, currency, active."""
        self.ensure_one()
        vals = {"state": "active", "suspend_on": False, "date_cancelled": False}
        if amount is not None:
            vals["amount"] = amount
        if currency:
            vals["currency_id"] = currency.id
        if not self.period_start:
            vals["period_start"], vals["period_end"] = self._period_of(fields.Date.context_today(self))
        self.write(vals)

    def _on_cancelled(self):
        """Cancelled: the organization is suspended at the end of the paid
        period, or at once when nothing is paid."""
        self.ensure_one()
        today = fields.Date.context_today(self)
        self.write({"state": "cancelled", "date_cancelled": today})
        if self.paid_until and self.paid_until >= today:
            self.suspend_on = self.paid_until + relativedelta(days=1)
        else:
            self.organization_id._suspend("cancelled")

    def _on_payment_received(self):
        """A payment clears the failures and pays the current period."""
        self.ensure_one()
        vals = {"failed_payment_count": 0, "first_failure_date": False}
        if self.state == "past_due":
            vals["state"] = "active"
        if self.period_end and (not self.paid_until or self.paid_until < self.period_end):
            vals["paid_until"] = self.period_end
        self.write(vals)

    def _on_payment_failed(self):
        self.ensure_one()
        vals = {"failed_payment_count": self.failed_payment_count + 1}
        if not self.first_failure_date:
            vals["first_failure_date"] = fields.Date.context_today(self)
        if self.state == "active":
            vals["state"] = "past_due"
        self.write(vals)

    @api.model
    def _cron_suspend_cancelled(self):
        """Suspend organizations whose cancelled subscription's paid period ended."""
        due = self.search(
            [("state", "=", "cancelled"), ("suspend_on", "<=", fields.Date.context_today(self))]
        )
        for subscription in due:
            subscription.organization_id._suspend("cancelled")
            subscription.suspend_on = False
