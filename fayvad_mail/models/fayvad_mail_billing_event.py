from odoo import api, fields, models

EVENT_TYPES = [
    ("user_added", "User Added"),
    ("user_removed", "User Removed"),
    ("storage_changed", "Storage Changed"),
    ("subscription_created", "Subscription Created"),
    ("subscription_updated", "Subscription Updated"),
    ("subscription_cancelled", "Subscription Cancelled"),
    ("payment_received", "Payment Received"),
    ("payment_failed", "Payment Failed"),
    ("refund", "Refund"),
]
# Events that become invoice lines; payments and refunds go to account.payment / credit notes.
CHARGEABLE_TYPES = (
    "user_added",
    "user_removed",
    "storage_changed",
    "subscription_created",
    "subscription_updated",
)


class FayvadMailBillingEvent(models.Model):
    _name = "fayvad.mail.billing.event"
    _description = "Billing Event"
    _inherit = ["mail.thread"]
    _order = "date desc, id desc"
    _check_company_auto = True

    organization_id = fields.Many2one(
        "fayvad.mail.organization", required=True, ondelete="restrict", index=True, check_company=True
    )
    company_id = fields.Many2one(related="organization_id.company_id", store=True, index=True)
    partner_id = fields.Many2one(related="organization_id.partner_id", store=True)
    event_type = fields.Selection(EVENT_TYPES, required=True, index=True)
    date = fields.Date(required=True, default=fields.Date.context_today, index=True)
    quantity = fields.Float(default=1.0, digits=(16, 2))
    unit_price = fields.Monetary()
    amount = fields.Monetary(compute="_compute_amount", store=True, readonly=False, precompute=True)
    currency_id = fields.Many2one(
        "res.currency", required=True, default=lambda self: self.env.company.currency_id
    )
    description = fields.Char(size=500)
    external_invoice_id = fields.Char(string="External Invoice ID", index=True)
    chargeable = fields.Boolean(compute="_compute_chargeable", store=True)
    sync_state = fields.Selection(
        [("pending", "To Sync"), ("done", "Synced"), ("failed", "Failed"), ("none", "Nothing to Sync")],
        compute="_compute_sync_state",
        store=True,
        readonly=False,
        tracking=True,
        index=True,
    )
    odoo_synced = fields.Boolean(string="Synced to Accounting", compute="_compute_odoo_synced", store=True)
    sync_attempts = fields.Integer(readonly=True, copy=False)
    next_sync_at = fields.Datetime(string="Next Attempt", readonly=True, copy=False)
    last_error = fields.Text(readonly=True, copy=False)
    invoice_line_id = fields.Many2one("account.move.line", readonly=True, copy=False, ondelete="set null")
    invoice_id = fields.Many2one("account.move", readonly=True, copy=False, index=True, ondelete="set null")
    payment_id = fields.Many2one("account.payment", readonly=True, copy=False, ondelete="set null")
    webhook_delivery_id = fields.Many2one(
        "fayvad.mail.webhook.delivery", readonly=True, copy=False, ondelete="set null"
    )
    subscription_id = fields.Many2one("fayvad.mail.subscription", check_company=True, ondelete="set null")

    _sql_constraints = [
        ("quantity_positive", "CHECK(quantity >= 0)", "A billing event's quantity cannot be negative."),
    ]

    @api.depends("quantity", "unit_price")
    def _compute_amount(self):
        for event in self:
            event.amount = event.quantity * event.unit_price

    @api.depends("event_type", "amount")
    def _compute_chargeable(self):
        for event in self:
            event.chargeable = event.event_type in CHARGEABLE_TYPES and bool(event.amount)

    @api.depends("chargeable", "event_type")
    def _compute_sync_state(self):
        for event in self:
            if event.sync_state == "done":
                continue
            event.sync_state = (
                "pending"
                if event.chargeable or event.event_type in ("payment_received", "refund")
                else "none"
            )

    @api.depends("sync_state")
    def _compute_odoo_synced(self):
        for event in self:
            event.odoo_synced = event.sync_state == "done"

    @api.depends("event_type", "organization_id", "date")
    def _compute_display_name(self):
        labels = dict(EVENT_TYPES)
        for event in self:
            event.display_name = (
                f"{labels.get(event.event_type, '')} - {event.organization_id.name or ''} ({event.date})"
            )

    # -- events raised by account changes ---------------------------------------------------
    @api.model
    def _on_user_added(self, account):
        """Bill a mailbox beyond the plan's included users."""
        org = account.organization_id
        plan = org.plan_id
        if not plan:
            return self.browse()
        live = org.account_ids.filtered(lambda a: a.state != "terminated")
        if len(live) <= plan.included_users:
            return self.browse()
        return self.create(
            {
                "organization_id": org.id,
                "event_type": "user_added",
                "quantity": 1,
                "unit_price": plan.price_per_extra_user,
                "currency_id": plan.currency_id.id,
                "description": self.env._("Additional user added: %s", account.email),
            }
        )

    @api.model
    def _on_user_removed(self, account):
        """Credit a removed mailbox that was billed as an extra user."""
        org = account.organization_id
        plan = org.plan_id
        if not plan:
            return self.browse()
        live = org.account_ids.filtered(lambda a: a.state != "terminated")
        if len(live) + 1 <= plan.included_users:
            return self.browse()
        return self.create(
            {
                "organization_id": org.id,
                "event_type": "user_removed",
                "quantity": 1,
                "unit_price": -plan.price_per_extra_user,
                "currency_id": plan.currency_id.id,
                "description": self.env._("User removed: %s", account.email),
            }
        )

    def action_retry_sync(self):
        self.filtered(lambda e: e.sync_state == "failed").write(
            {"sync_state": "pending", "sync_attempts": 0, "next_sync_at": False, "last_error": False}
        )
        return True

    def action_view_invoice(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "res_id": self.invoice_id.id,
            "view_mode": "form",
        }

    def action_view_payment(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.payment",
            "res_id": self.payment_id.id,
            "view_mode": "form",
        }
