from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL, float_compare

from ..const import BILLING_DATE_FUTURE_DAYS, BILLING_DATE_MIN_YEAR, CHARGEABLE_TYPES
from . import fayvad_mail_cron_mixin  # noqa: F401  (the mixin inherited below)

RENEWAL_BATCH = 500  # subscriptions renewed per cron call


class FayvadMailSubscription(models.Model):
    _name = "fayvad.mail.subscription"
    _description = "Mail Hosting Subscription"
    _inherit = ["mail.thread", "fayvad.mail.cron.mixin"]
    _order = "date_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    organization_id = fields.Many2one(
        "fayvad.mail.organization", required=True, ondelete="cascade", index=True, check_company=True
    )
    company_id = fields.Many2one(related="organization_id.company_id", store=True, index=True)
    partner_id = fields.Many2one(related="organization_id.partner_id", store=True, index=True)
    plan_id = fields.Many2one(
        "fayvad.mail.plan", tracking=True, check_company=True, index=True, ondelete="restrict"
    )
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
    fee_period_start = fields.Date(
        string="Fee Billed For",
        readonly=True,
        copy=False,
        help="Start of the last period whose fee was charged: a period's fee is charged once, "
        "whoever asks (sign-up, billing webhook, renewal, plan change).",
    )
    fee_amount = fields.Monetary(
        string="Fee Billed",
        readonly=True,
        copy=False,
        help="What that period's fee came to, adjustments included.",
    )
    paid_until = fields.Date(tracking=True, help="End of the last period that has been paid.")
    date_cancelled = fields.Date(tracking=True, copy=False)
    failed_payment_count = fields.Integer(
        tracking=True, copy=False, help="Failed payments since the last successful one."
    )
    first_failure_date = fields.Date(copy=False, help="Date of the first unresolved payment failure.")
    external_ref = fields.Char(string="External Reference", tracking=True, copy=False)
    company_currency_id = fields.Many2one(related="company_id.currency_id", string="Company Currency")
    mrr = fields.Monetary(
        string="Monthly Recurring Revenue",
        currency_field="company_currency_id",
        compute="_compute_mrr",
        store=True,
        aggregator="sum",
        help="What a live subscription brings each month, in the company's currency (0 once cancelled).",
    )
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

    def init(self):
        # one live subscription per organization, also when two transactions add one at once
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS fayvad_mail_subscription_live_uniq "
            "ON fayvad_mail_subscription (organization_id) WHERE state != 'cancelled'"
        )

    @api.constrains("state", "organization_id")
    def _check_one_live_subscription(self):
        for sub in self.filtered(lambda s: s.state != "cancelled"):
            live = sub.organization_id.subscription_ids.filtered(lambda s: s.state != "cancelled")
            if len(live) > 1:
                raise ValidationError(
                    self.env._(
                        "%s already has a subscription: cancel it before adding another.",
                        sub.organization_id.name,
                    )
                )

    @api.constrains("date_start", "period_start", "period_end")
    def _check_dates(self):
        latest = fields.Date.context_today(self) + timedelta(days=BILLING_DATE_FUTURE_DAYS)
        earliest = date(BILLING_DATE_MIN_YEAR, 1, 1)
        for sub in self:
            for day in (sub.date_start, sub.period_start, sub.period_end):
                if day and not earliest <= day <= latest + relativedelta(months=1):
                    raise ValidationError(
                        self.env._(
                            "A subscription's dates are between %(first)s and %(last)s.",
                            first=earliest,
                            last=latest,
                        )
                    )

    @api.onchange("plan_id")
    def _onchange_plan_id(self):
        if self.plan_id:
            self.amount = self.plan_id.monthly_price
            self.currency_id = self.plan_id.currency_id

    @api.model_create_multi
    def create(self, vals_list):
        """A subscription added by hand (the back office) is billed as the API's
        sign-up is: its plan's price, the current period, the fee charged
        once the organization is in service, through ``_bill_fee``."""
        today = fields.Date.context_today(self)
        for vals in vals_list:
            plan = self.env["fayvad.mail.plan"].browse(vals.get("plan_id"))
            if plan:
                if "amount" not in vals:
                    vals["amount"] = plan.monthly_price
                vals.setdefault("currency_id", plan.currency_id.id)
            if not vals.get("period_start"):
                vals["period_start"], vals["period_end"] = self._period_of(today)
        subscriptions = super().create(vals_list)
        if not self.env.context.get("fayvad_mail_no_fee"):
            for sub in subscriptions.filtered(
                lambda s: s.state != "cancelled" and s.amount and s.organization_id.service_start_date
            ):
                sub._bill_fee(
                    sub.amount,
                    "subscription_created",
                    self.env._("%s subscription", sub.plan_id.name or sub.organization_id.name),
                )
        return subscriptions

    @api.depends("amount", "currency_id", "state", "company_id")
    def _compute_mrr(self):
        today = fields.Date.context_today(self)
        for sub in self:
            if sub.state == "cancelled" or not sub.amount:
                sub.mrr = 0.0
                continue
            company = sub.company_id or self.env.company
            sub.mrr = sub.currency_id._convert(sub.amount, company.currency_id, company, today)

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

    def _lock(self):
        """Serialise the fee decisions of concurrent transactions on these subscriptions."""
        if self.ids:
            self.flush_recordset()
            self.env.cr.execute(
                SQL(
                    "SELECT id FROM fayvad_mail_subscription WHERE id IN %s FOR NO KEY UPDATE",
                    tuple(self.ids),
                )
            )

    # -- the period's fee, charged once ----------------------------------------------------
    @api.model
    def _start(self, organization, plan):
        """Subscribe ``organization`` to ``plan`` from today (its live
        subscription when it has one already). The current period's fee is
        charged once the organization is in service on the mail server
        (CONTRACT.md, "Billing starts with the service"): at once for one
        that is, else when its first domain is created there."""
        live = organization.subscription_ids.filtered(lambda s: s.state != "cancelled")
        if live:
            return live[:1]
        start, end = self._period_of(fields.Date.context_today(self))
        return self.create(  # which charges the fee once the organization is in service
            {
                "organization_id": organization.id,
                "plan_id": plan.id,
                "amount": plan.monthly_price,
                "currency_id": plan.currency_id.id,
                "period_start": start,
                "period_end": end,
            }
        )

    def _on_service_started(self):
        """The organization is on the mail server from today: the current
        period's fee is charged now (once, whoever asks)."""
        self.ensure_one()
        if self.state == "cancelled":
            return
        today = fields.Date.context_today(self)
        if not (self.period_start and self.period_end and self.period_start <= today <= self.period_end):
            self.write(dict(zip(("period_start", "period_end"), self._period_of(today), strict=True)))
        label = self.env._("%s subscription", self.plan_id.name or self.organization_id.name)
        self._bill_fee(self.amount, "subscription_created", label)

    def _credit_failed_provisioning(self):
        """The organization's provisioning failed for good: the fee charged
        for the period is credited (nothing is charged for a service that
        does not exist); it is charged again once the service starts."""
        self.ensure_one()
        if not (self.fee_period_start and self.fee_amount):
            return
        self.env["fayvad.mail.billing.event"].create(
            {
                "organization_id": self.organization_id.id,
                "subscription_id": self.id,
                "currency_id": self.currency_id.id,
                "event_type": "subscription_updated",
                "quantity": 1,
                "unit_price": -self.fee_amount,
                "description": self.env._("Provisioning failed on the mail server: the fee is credited"),
            }
        )
        self.write({"fee_period_start": False, "fee_amount": 0.0})

    def _period_share(self):
        """Share of a whole month that the current period is (a period that
        began mid-month, on a reactivation, is shorter)."""
        if not (self.period_start and self.period_end):
            return 1.0
        month_start, month_end = self._period_of(self.period_start)
        days = (self.period_end - self.period_start).days + 1
        return min(1.0, round(days / ((month_end - month_start).days + 1), 4))

    def _fee_change(self, amount):
        """What making ``amount`` the period's fee charges now: (price, share
        of the period it covers). The period's first fee is the whole fee of
        the period (its share when the period is shorter than a month); a
        changed fee later in the period is the difference for what is left;
        nothing while the subscription has ended or the service has not
        started. What ``_bill_fee`` charges, and what the portal shows
        before a customer confirms a plan change."""
        self.ensure_one()
        if self.state == "cancelled" or not self.organization_id.service_start_date:
            return 0.0, 0.0
        period = self.period_start or self._period_of(fields.Date.context_today(self))[0]
        if self.fee_period_start != period:
            share = self._period_share()
            return self.currency_id.round(amount * share), share
        share = self._prorata()
        return self.currency_id.round((amount - self.fee_amount) * share), share

    def _bill_fee(self, amount, event_type, description, event=None):
        """Charge the current period's fee at ``amount``, at most once per
        period whoever asks: the first charge of a period is the fee; a
        different amount later in the period is one prorated adjustment; the
        same amount again charges nothing. ``event``: the (webhook's) event
        asking, which carries the fee when one is due, and otherwise stays
        as a record without a charge. Returns the event that charges, if any."""
        self.ensure_one()
        Event = self.env["fayvad.mail.billing.event"]
        org = self.organization_id
        if org.state == "terminated" or self.state == "cancelled":
            if event:
                event.no_charge_reason = self.env._("The subscription has ended: nothing is charged.")
            return Event
        if not org.service_start_date:
            if event:
                event.no_charge_reason = self.env._(
                    "Not on the mail server yet: the fee is charged when the service starts."
                )
            return Event
        self._lock()
        self.invalidate_recordset(["fee_period_start", "fee_amount"])
        today = fields.Date.context_today(self)
        period = self.period_start or self._period_of(today)[0]
        base = {
            "organization_id": org.id,
            "subscription_id": self.id,
            "currency_id": self.currency_id.id,
            "quantity": 1,
        }
        if self.fee_period_start != period:
            price, share = self._fee_change(amount)  # a period shorter than a month pays its share
            self.write({"fee_period_start": period, "fee_amount": amount})
            if share < 1:
                description = self.env._(
                    "%(what)s (%(share)s%% of the month)", what=description, share=round(share * 100, 1)
                )
            if event:
                event.write({"unit_price": price, "quantity": 1})
                return event
            return Event.create(
                {
                    **base,
                    "event_type": event_type,
                    "unit_price": price,
                    "date": today if period <= today <= (self.period_end or today) else period,
                    "description": description,
                }
            )
        rounding = self.currency_id.rounding
        if not float_compare(amount, self.fee_amount, precision_rounding=rounding):
            if event:
                event.no_charge_reason = self.env._(
                    "The fee of the period from %s is billed already.", period.strftime("%Y-%m-%d")
                )
            return Event
        price, share = self._fee_change(amount)
        adjustment = Event.create(
            {
                **base,
                "event_type": "subscription_updated",
                "unit_price": price,
                "description": self.env._(
                    "%(what)s: fee changed from %(old)s to %(new)s (%(share)s%% of the period)",
                    what=description,
                    old=self.fee_amount,
                    new=amount,
                    share=round(share * 100, 1),
                ),
            }
        )
        self.fee_amount = amount
        if event:
            event.no_charge_reason = self.env._(
                "Billed as a prorated adjustment: %s", adjustment.display_name
            )
        return adjustment

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
            sub._bill_fee(
                sub.amount,
                "subscription_updated",
                self.env._("%(plan)s subscription %(period)s", plan=sub.plan_id.name or "", period=label),
            )
            base = {
                "organization_id": sub.organization_id.id,
                "subscription_id": sub.id,
                "date": start,
                "currency_id": sub.currency_id.id,
            }
            plan, org = sub.plan_id, sub.organization_id
            counts = (  # what the organization has that the plan may price beyond its fee
                ("users", "user_added", self.env._("Additional users %s", label), org._in_service_count()),
                (
                    "aliases",
                    "alias_added",
                    self.env._("Additional aliases %s", label),
                    self.env["fayvad.mail.alias"]._live_count(org),
                ),
                (
                    "domain_aliases",
                    "domain_alias_added",
                    self.env._("Additional domain aliases %s", label),
                    self.env["fayvad.mail.domain.alias"]._live_count(org),
                ),
                (
                    "storage_gb",
                    "storage_changed",
                    self.env._("Additional storage (GB) %s", label),
                    org.max_storage_gb,
                ),
            )
            for kind, event_type, description, count in counts:
                extra, price = plan._extra_units(kind, count)
                if extra and price:
                    Event.create(
                        {
                            **base,
                            "event_type": event_type,
                            "quantity": extra,
                            "unit_price": price,
                            "description": description,
                        }
                    )

    def _renew_until(self, today):
        self.ensure_one()
        while self.period_end < today and self.state in ("active", "past_due"):
            self._renew()

    @api.model
    def _cron_monthly_invoicing(self, limit=RENEWAL_BATCH):
        """Renew the subscriptions whose period ended, bill the new period,
        then post (or leave for review) the invoices of ended periods. Each
        subscription and each invoice in its own savepoint: one that fails
        keeps the error on its form, the others go on."""
        today = fields.Date.context_today(self)
        due = self.search(
            [
                ("state", "in", ("active", "past_due")),
                ("period_end", "<", today),
                ("organization_id.state", "!=", "terminated"),
                # what never existed on the mail server is not renewed (nor billed)
                ("organization_id.service_start_date", "!=", False),
            ],
            limit=limit,
        )
        self._cron_each(due, lambda sub: sub._renew_until(today), "Renewal")
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

        def post(invoice):
            invoice.invoice_date = invoice.invoice_date or today
            invoice.action_post()

        self.env["fayvad.mail.organization"]._cron_each(
            drafts.filtered(lambda m: m.company_id.fayvad_auto_post_invoices and m.invoice_line_ids),
            post,
            "Posting the period's invoice",
            owner=lambda invoice: invoice.fayvad_organization_id,
        )
        remaining = self.search_count(
            [
                ("state", "in", ("active", "past_due")),
                ("period_end", "<", today),
                ("organization_id.service_start_date", "!=", False),
            ]
        )
        self.env["ir.cron"]._notify_progress(done=len(due), remaining=remaining)

    @api.model
    def _cron_dunning(self):
        self.env["fayvad.mail.dunning"]._cron_overdue()

    # -- billing webhook events ------------------------------------------------------------
    def _on_subscription_event(self, amount, currency, event=None):
        """subscription_created / subscription_updated: amount, currency,
        active; an amount is the period's fee, charged once per period."""
        self.ensure_one()
        if self.organization_id.state == "terminated":
            if event:
                event.no_charge_reason = self.env._("The organization is terminated: nothing is charged.")
            return
        today = fields.Date.context_today(self)
        reactivated = self.state == "cancelled"
        vals = {"state": "active", "suspend_on": False, "date_cancelled": False}
        if amount is not None:
            vals["amount"] = amount
        if currency:
            vals["currency_id"] = currency.id
        if reactivated and not (self.period_end and self.period_end >= today):
            # a new period from today (to the month's end, its share of the fee): nothing is
            # billed for the time it was cancelled
            vals["period_start"], vals["period_end"] = today, self._period_of(today)[1]
        elif not self.period_start:
            vals["period_start"], vals["period_end"] = self._period_of(today)
        self.write(vals)
        org = self.organization_id
        if reactivated and org.state == "suspended" and org.suspension_reason == "cancelled":
            org._unsuspend()  # the suspension its cancellation caused
        fee = amount if amount is not None else (self.amount if reactivated else None)
        if fee is not None:
            label = self.env._("%s subscription", self.plan_id.name or self.organization_id.name)
            self._bill_fee(fee, event.event_type if event else "subscription_updated", label, event=event)

    def _on_cancelled(self):
        """Cancelled: the organization is suspended at the end of the paid
        period, or at once when nothing is paid."""
        self.ensure_one()
        today = fields.Date.context_today(self)
        self.write({"state": "cancelled", "date_cancelled": today})
        if self.organization_id.state == "terminated":
            return
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
        changed = {name: value for name, value in vals.items() if self[name] != value}
        if changed:
            self.write(changed)

    def _on_payment_failed(self):
        self.ensure_one()
        vals = {"failed_payment_count": self.failed_payment_count + 1}
        if not self.first_failure_date:
            vals["first_failure_date"] = fields.Date.context_today(self)
        if self.state == "active":
            vals["state"] = "past_due"
        self.write(vals)

    # -- the end -----------------------------------------------------------------------------
    @api.model
    def _end_billing(self, org, day):
        """``org`` is terminated on ``day``: its subscriptions are cancelled,
        and nothing is charged for a period starting after ``day`` (draft
        invoice lines of such periods are removed; posted invoices are never
        touched)."""
        subscriptions = org.subscription_ids
        live = subscriptions.filtered(lambda s: s.state != "cancelled")
        live.write({"state": "cancelled", "date_cancelled": day})
        subscriptions.write({"suspend_on": False})
        reason = self.env._("The organization was terminated on %s.", day.strftime("%Y-%m-%d"))
        Event = self.env["fayvad.mail.billing.event"]
        later = Event.search(
            [
                ("organization_id", "=", org.id),
                ("event_type", "in", CHARGEABLE_TYPES),
                ("sync_state", "in", ("pending", "failed")),
                ("date", ">", day),
            ]
        )
        later.write({"no_charge_reason": reason})
        drafts = self.env["account.move"].search(
            [
                ("fayvad_organization_id", "=", org.id),
                ("move_type", "=", "out_invoice"),
                ("state", "=", "draft"),
                ("fayvad_period_start", ">", day),
            ]
        )
        billed = Event.search([("invoice_id", "in", drafts.ids)])
        billed.write(
            {"no_charge_reason": reason, "invoice_line_id": False, "invoice_id": False, "sync_state": "none"}
        )
        for invoice in drafts:
            invoice.message_post(body=reason)
        drafts.unlink()

    @api.model
    def _cron_suspend_cancelled(self):
        """Suspend organizations whose cancelled subscription's paid period
        ended (one savepoint each: an organization that cannot be suspended
        keeps the error on its subscription)."""
        due = self.search(
            [
                ("state", "=", "cancelled"),
                ("suspend_on", "<=", fields.Date.context_today(self)),
                ("organization_id.state", "not in", ("terminated", "suspended")),
            ]
        )

        def suspend(subscription):
            subscription.organization_id._suspend("cancelled")
            subscription.suspend_on = False

        self._cron_each(due, suspend, "Suspension at the end of the paid period")
