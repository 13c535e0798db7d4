import logging
from datetime import date, timedelta

from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, float_compare

from ..const import (
    BILLING_DATE_FUTURE_DAYS,
    BILLING_DATE_MIN_YEAR,
    CHARGEABLE_TYPES,
    EVENT_TYPES,
    OPEN_PAYMENT_STATES,
)
from ..tools.backoff import backoff_delay
from . import fayvad_mail_queue  # noqa: F401  (the mixin inherited below)

_logger = logging.getLogger(__name__)
MAX_SYNC_ATTEMPTS = 5
SYNC_BATCH = 200


class FayvadMailBillingEvent(models.Model):
    _name = "fayvad.mail.billing.event"
    _description = "Billing Event"
    _inherit = ["mail.thread", "mail.activity.mixin", "fayvad.mail.queue"]
    _order = "date desc, id desc"
    _check_company_auto = True

    organization_id = fields.Many2one(
        "fayvad.mail.organization", required=True, ondelete="restrict", check_company=True
    )
    company_id = fields.Many2one(
        related="organization_id.company_id", store=True, index=True, precompute=True
    )
    partner_id = fields.Many2one(
        related="organization_id.partner_id", store=True, index=True, precompute=True
    )
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
    no_charge_reason = fields.Char(
        readonly=True,
        copy=False,
        tracking=True,
        help="Why this event charges nothing although it carries an amount (e.g. the period's fee "
        "was billed already, or the organization was terminated).",
    )
    chargeable = fields.Boolean(compute="_compute_chargeable", store=True, precompute=True)
    kind = fields.Selection(
        [
            ("charge", "Charge"),
            ("credit", "Credit"),
            ("payment", "Payment"),
            ("refund", "Refund"),
            ("failure", "Failed Payment"),
            ("record", "No Charge"),
        ],
        compute="_compute_kind",
        store=True,
        precompute=True,
        index=True,
        help="What the amount is: totals and graphs keep charges, payments and failures apart.",
    )
    sync_state = fields.Selection(
        [("pending", "To Sync"), ("done", "Synced"), ("failed", "Failed"), ("none", "Nothing to Sync")],
        compute="_compute_sync_state",
        store=True,
        precompute=True,
        readonly=False,
        tracking=True,
        index=True,
    )
    odoo_synced = fields.Boolean(
        string="Synced to Accounting", compute="_compute_odoo_synced", store=True, precompute=True
    )
    sync_attempts = fields.Integer(readonly=True, copy=False)
    next_sync_at = fields.Datetime(string="Next Attempt", readonly=True, copy=False)
    last_error = fields.Text(readonly=True, copy=False)
    invoice_line_id = fields.Many2one(
        "account.move.line", readonly=True, copy=False, index="btree_not_null", ondelete="set null"
    )
    invoice_id = fields.Many2one("account.move", readonly=True, copy=False, index=True, ondelete="set null")
    payment_id = fields.Many2one(
        "account.payment", readonly=True, copy=False, index="btree_not_null", ondelete="set null"
    )
    webhook_delivery_id = fields.Many2one(
        "fayvad.mail.webhook.delivery", readonly=True, copy=False, index="btree_not_null", ondelete="set null"
    )
    subscription_id = fields.Many2one(
        "fayvad.mail.subscription", check_company=True, index="btree_not_null", ondelete="set null"
    )
    needs_review = fields.Boolean(
        readonly=True,
        copy=False,
        tracking=True,
        help="The payment could not be matched to an open invoice of the same amount and currency: "
        "it is registered unreconciled for an accountant to decide.",
    )
    review_note = fields.Char(readonly=True, copy=False)

    _sql_constraints = [
        ("quantity_positive", "CHECK(quantity >= 0)", "A billing event's quantity cannot be negative."),
    ]

    @api.constrains("date")
    def _check_date(self):
        """A billing date Odoo's reports can show: from 2000 to a year ahead."""
        # today in UTC: a bound a day either way does not matter, and reading the user's time
        # zone would cost every webhook delivery a query
        latest = fields.Date.today() + timedelta(days=BILLING_DATE_FUTURE_DAYS)
        for event in self:
            if not date(BILLING_DATE_MIN_YEAR, 1, 1) <= event.date <= latest:
                raise ValidationError(
                    self.env._(
                        "A billing event is dated between %(first)s and %(last)s, not %(date)s.",
                        first=date(BILLING_DATE_MIN_YEAR, 1, 1),
                        last=latest,
                        date=event.date,
                    )
                )

    @api.depends("quantity", "unit_price")
    def _compute_amount(self):
        for event in self:
            event.amount = event.quantity * event.unit_price

    @api.depends("event_type", "amount", "no_charge_reason")
    def _compute_chargeable(self):
        for event in self:
            event.chargeable = (
                event.event_type in CHARGEABLE_TYPES and bool(event.amount) and not event.no_charge_reason
            )

    @api.depends("event_type", "chargeable", "amount")
    def _compute_kind(self):
        for event in self:
            if event.event_type == "payment_received":
                event.kind = "payment"
            elif event.event_type == "refund":
                event.kind = "refund"
            elif event.event_type == "payment_failed":
                event.kind = "failure"
            elif event.chargeable:
                event.kind = "charge" if event.amount > 0 else "credit"
            else:
                event.kind = "record"

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

    def init(self):
        # the usage summary's revenue (payments minus refunds of a period) from the index alone
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS fayvad_mail_billing_event_revenue_idx
                ON fayvad_mail_billing_event (date, event_type) INCLUDE (organization_id, currency_id, amount)
             WHERE event_type IN ('payment_received', 'refund')
            """
        )
        # an organization's events of a period (the usage summary's pages, deletions): one range
        # of this index, where organization_id's own index and the date's meet only by a bitmap
        # of the whole period's events
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS fayvad_mail_billing_event_organization_date_idx "
            "ON fayvad_mail_billing_event (organization_id, date)"
        )

    @api.model_create_multi
    def create(self, vals_list):
        # an event is a line of a ledger: its creation is no chatter news (nor a tracking change)
        quiet = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True, mail_notrack=True)
        events = super(FayvadMailBillingEvent, quiet).create(vals_list)
        if any(event.sync_state == "pending" for event in events):
            self._trigger_sync()
        return events.with_env(self.env)

    def _check_company(self, fnames=None):
        # an event's company is its organization's (a related field); the webhook creates its
        # event with the organization's own subscription, whose company is that one too
        if self.env.context.get("fayvad_mail_same_company"):
            return
        super()._check_company(fnames)

    @api.model
    def _trigger_sync(self):
        """Have the sync cron run within a minute, unless it is due to already
        (a burst of webhooks asks once). The trigger is a second ahead: Odoo
        then does not NOTIFY the cron workers at commit, which would take a
        second database connection (they look for due triggers every minute)."""
        cron = self.env["ir.model.data"]._xmlid_to_res_id("fayvad_mail.fayvad_mail_billing_event_cron_sync")
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                "SELECT 1 FROM ir_cron_trigger WHERE cron_id = %s AND call_at <= %s LIMIT 1",
                cron,
                now + timedelta(minutes=1),
            )
        )
        if not self.env.cr.fetchone():
            self.env["ir.cron"].sudo().browse(cron)._trigger(now + timedelta(seconds=1))

    # -- events raised by account and plan changes ---------------------------------------------
    def _prorated(self, org, unit_price, description, event_type, quantity=1):
        """An event for the rest of the current period (full price without a
        subscription); none under ``fayvad_mail_no_fee`` (what is created
        existed already: an import)."""
        if self.env.context.get("fayvad_mail_no_fee"):
            return self.browse()
        subscription = org.subscription_id
        currency = org.plan_id.currency_id or org.company_id.currency_id
        share = subscription._prorata() if subscription and subscription.state != "cancelled" else 1.0
        if share < 1:
            description = self.env._(
                "%(what)s (%(share)s%% of the period)", what=description, share=round(share * 100, 1)
            )
        return self.create(
            {
                "organization_id": org.id,
                "subscription_id": subscription.id,
                "event_type": event_type,
                "quantity": quantity,
                "unit_price": currency.round(unit_price * share),
                "currency_id": currency.id,
                "description": description,
            }
        )

    @api.model
    def _on_user_added(self, account):
        """Bill a mailbox beyond the plan's included users, prorated."""
        org = account.organization_id
        extra, price = org.plan_id._extra_units("users", org._in_service_count())
        if not extra or not price:
            return self.browse()
        return self._prorated(
            org, price, self.env._("Additional user added: %s", account.email), "user_added"
        )

    @api.model
    def _on_user_removed(self, account):
        """Credit the rest of the period of a removed extra user."""
        org = account.organization_id
        extra, price = org.plan_id._extra_units("users", org._in_service_count() + 1)
        if not extra or not price:
            return self.browse()
        return self._prorated(org, -price, self.env._("User removed: %s", account.email), "user_removed")

    @api.model
    def _on_alias_change(self, alias, added):
        """Bill (or credit) an alias or catch-all beyond the plan's included
        ones, or a domain alias beyond its included ones, prorated, when the
        plan prices them. Forwards are part of their mailbox."""
        if alias._name == "fayvad.mail.alias" and alias.kind == "forward":
            return self.browse()
        org = alias.organization_id
        kind = "domain_aliases" if alias._name == "fayvad.mail.domain.alias" else "aliases"
        live = alias._live_count(org)
        extra, price = org.plan_id._extra_units(kind, live if added else live + 1)
        if not extra or not price:
            return self.browse()
        event_kind, what = kind[:-2], alias.display_name  # alias, domain_alias
        if added:
            return self._prorated(org, price, self.env._("Additional alias: %s", what), f"{event_kind}_added")
        return self._prorated(org, -price, self.env._("Alias removed: %s", what), f"{event_kind}_removed")

    def action_retry_sync(self):
        self.env["res.users"]._fayvad_require("accountant")
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

    # -- synchronisation with accounting ---------------------------------------------------
    @api.model
    def _cron_sync(self, limit=SYNC_BATCH):
        """Turn due events into invoice lines, payments and credit notes, one
        transaction each; several workers never take the same event."""
        Events = self.sudo()  # every company's events, as the cron user would
        done, _spent = Events._queue_work(
            Events._acquire_due, lambda event: event.with_company(event.company_id)._sync(), limit
        )
        remaining = self.search_count([("sync_state", "=", "pending")])
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return done

    @api.model
    def _acquire_due(self, tried=()):
        """The next event to sync, locked (several workers never take the same one)."""
        return self._queue_take(
            SQL(
                """
                SELECT id FROM fayvad_mail_billing_event
                 WHERE sync_state = 'pending' AND (next_sync_at IS NULL OR next_sync_at <= %s) %s
              ORDER BY date, id
                 LIMIT 20
                """,
                fields.Datetime.now(),
                SQL("AND id NOT IN %s", tuple(tried)) if tried else SQL(),
            ),
            SQL("sync_state = 'pending'"),
        )

    def _sync(self):
        """Sync this event once; on failure retry later with backoff, and
        after MAX_SYNC_ATTEMPTS flag it for an accountant. Never dropped."""
        self.ensure_one()
        try:
            with self.env.cr.savepoint():
                if self.event_type == "payment_received":
                    self._sync_payment()
                elif self.event_type == "refund":
                    self._sync_refund()
                elif self.chargeable:
                    self._sync_invoice_line()
        except Exception as exc:  # accounting refused (missing product, lock date, ...): keep and retry
            self._sync_failed(exc)
            return False
        self.write({"sync_state": "done", "last_error": False, "next_sync_at": False})
        return True

    def _sync_failed(self, exc):
        message = exc.args[0] if isinstance(exc, UserError) and exc.args else f"{type(exc).__name__}: {exc}"
        attempts = self.sync_attempts + 1
        vals = {"sync_attempts": attempts, "last_error": message}
        if attempts < MAX_SYNC_ATTEMPTS:
            vals["next_sync_at"] = fields.Datetime.now() + timedelta(seconds=backoff_delay(attempts))
        else:
            vals.update(sync_state="failed", next_sync_at=False)
        self.write(vals)
        if self.sync_state == "failed":
            _logger.warning("billing event %s could not be synced: %s", self.id, message)
            self._notify_accountants(self.env._("Billing event not synced: %s", message))

    def _notify_accountants(self, summary):
        for user in self.env["res.users"]._fayvad_members("accountant")[:5]:
            self.activity_schedule("mail.mail_activity_data_todo", user_id=user.id, summary=summary)

    def _product(self):
        product = self.organization_id.plan_id.product_id or self.env.ref(
            "fayvad_mail.product_mail_hosting", raise_if_not_found=False
        )
        if not product:
            raise UserError(
                self.env._("No invoice product: set one on the plan %s.", self.organization_id.plan_id.name)
            )
        return product

    def _period_start(self):
        return self.date.replace(day=1)

    def _draft_invoice(self):
        """The organization's draft invoice for the event's month and
        currency (created when missing). The database holds one such draft
        at most (a unique key): a worker whose snapshot misses the draft
        another worker just committed fails here, and the event is synced
        on the next run, into that draft."""
        org = self.organization_id
        Move = self.env["account.move"]
        domain = [
            ("fayvad_organization_id", "=", org.id),
            ("fayvad_period_start", "=", self._period_start()),
            ("currency_id", "=", self.currency_id.id),
            ("move_type", "=", "out_invoice"),
            ("state", "=", "draft"),
        ]
        invoice = Move.search(domain, limit=1)
        if invoice:
            return invoice
        key = f"{org.id}:{self._period_start()}:{self.currency_id.id}"
        try:
            with self.env.cr.savepoint():
                return Move.with_company(org.company_id).create(
                    {
                        "move_type": "out_invoice",
                        "partner_id": org.partner_id.id,
                        "company_id": org.company_id.id,
                        "currency_id": self.currency_id.id,
                        "fayvad_organization_id": org.id,
                        "fayvad_period_start": self._period_start(),
                        "fayvad_draft_key": key,
                        "invoice_origin": self.env._(
                            "Mail hosting %s", self._period_start().strftime("%Y-%m")
                        ),
                    }
                )
        except pg_errors.UniqueViolation:
            raise UserError(
                self.env._(
                    "Another worker created the draft invoice of %(org)s for %(period)s at the same moment; "
                    "this event goes on it at the next run.",
                    org=org.name,
                    period=self._period_start().strftime("%Y-%m"),
                )
            ) from None

    def _sync_invoice_line(self):
        product = self._product()
        invoice = self._draft_invoice()
        before = invoice.invoice_line_ids
        invoice.write(
            {
                "invoice_line_ids": [
                    fields.Command.create(
                        {
                            "product_id": product.id,
                            "name": self.description or dict(EVENT_TYPES)[self.event_type],
                            "quantity": self.quantity,
                            "price_unit": self.unit_price,
                        }
                    )
                ]
            }
        )
        self.write({"invoice_line_id": (invoice.invoice_line_ids - before).id, "invoice_id": invoice.id})

    def _payment_journal(self):
        company = self.organization_id.company_id
        journal = company.fayvad_payment_journal_id or self.env["account.journal"].search(
            [("company_id", "=", company.id), ("type", "=", "bank")], limit=1
        )
        if not journal:
            raise UserError(self.env._("No bank journal for the payments of %s.", company.name))
        return journal

    def _named_invoice(self):
        """The customer's invoice the payment names (by number, reference or
        payment reference), posted or not; an empty recordset when none."""
        name = self.external_invoice_id
        return self.env["account.move"].search(
            [
                ("partner_id", "=", self.organization_id.partner_id.commercial_partner_id.id),
                ("company_id", "=", self.organization_id.company_id.id),
                ("move_type", "=", "out_invoice"),
                ("state", "!=", "cancel"),
                "|",
                "|",
                ("name", "=", name),
                ("ref", "=", name),
                ("payment_reference", "=", name),
            ],
            order="state desc, id",  # a posted one first
            limit=1,
        )

    def _matching_invoice(self):
        """(invoice, None) to reconcile with, or (None, why) to flag
        (CONTRACT.md, "Payments land where they are named"). A payment
        naming an invoice goes to that invoice only, which must be open and
        may be paid in parts; one naming none goes to the oldest open
        mail-hosting invoice of its organization, whose due amount it must
        pay exactly. The currency must match. Mismatches are never guessed."""
        if self.external_invoice_id:
            candidate = self._named_invoice()
            if not candidate:
                return None, self.env._("no invoice %s of this customer", self.external_invoice_id)
            if candidate.state != "posted":
                return None, self.env._(
                    "invoice %s is not posted yet: the payment is reconciled when it is",
                    self.external_invoice_id,
                )
            if candidate.payment_state not in OPEN_PAYMENT_STATES:
                return None, self.env._(
                    "invoice %(inv)s is not open (%(state)s)",
                    inv=candidate.name,
                    state=dict(candidate._fields["payment_state"]._description_selection(self.env)).get(
                        candidate.payment_state, candidate.payment_state
                    ),
                )
        else:
            candidate = self.organization_id._open_invoices()[:1]
            if not candidate:
                return None, self.env._("no open mail hosting invoice of this customer")
        if candidate.currency_id != self.currency_id:
            return None, self.env._(
                "currency %(paid)s differs from invoice %(inv)s (%(cur)s)",
                paid=self.currency_id.name,
                inv=candidate.name,
                cur=candidate.currency_id.name,
            )
        comparison = float_compare(
            self.amount, candidate.amount_residual, precision_rounding=self.currency_id.rounding
        )
        if comparison > 0 or (comparison < 0 and not self.external_invoice_id):
            return None, self.env._(
                "amount %(paid)s differs from the %(due)s due on %(inv)s",
                paid=self.amount,
                due=candidate.amount_residual,
                inv=candidate.name,
            )
        return candidate, None

    def _reconcile_with(self, invoice):
        """Reconcile this event's (unreconciled) payment with ``invoice``, now open."""
        self.ensure_one()
        lines = (self.payment_id.move_id.line_ids | invoice.line_ids).filtered(
            lambda line: line.account_id.account_type == "asset_receivable" and not line.reconciled
        )
        lines.reconcile()
        self.write({"invoice_id": invoice.id, "needs_review": False, "review_note": False})
        self.activity_unlink(["mail.mail_activity_data_todo"])

    def _waiting_payments(self, invoice):
        """Payments of the invoice's organization that arrived before it was
        posted and wait for it: the ones naming it, or naming none with
        exactly its amount."""
        events = self.search(
            [
                ("organization_id", "=", invoice.fayvad_organization_id.id),
                ("event_type", "=", "payment_received"),
                ("needs_review", "=", True),
                ("payment_id", "!=", False),
                ("currency_id", "=", invoice.currency_id.id),
            ],
            order="date, id",
        )
        names = {invoice.name, invoice.ref, invoice.payment_reference} - {False, None, "", "/"}
        return events.filtered(
            lambda e: (
                e.external_invoice_id in names
                if e.external_invoice_id
                else not float_compare(
                    e.amount, invoice.amount_residual, precision_rounding=invoice.currency_id.rounding
                )
            )
        )

    def _sync_payment(self):
        journal = self._payment_journal()
        invoice, why = self._matching_invoice()
        if invoice:
            payments = (
                self.env["account.payment.register"]
                .with_context(active_model="account.move", active_ids=invoice.ids)
                .create(
                    {
                        "journal_id": journal.id,
                        "amount": self.amount,
                        "currency_id": self.currency_id.id,
                        "payment_date": self.date,
                        "communication": self.external_invoice_id or invoice.name,
                    }
                )
                ._create_payments()
            )
            self.write(
                {
                    "payment_id": payments[:1].id,
                    "invoice_id": invoice.id,
                    "needs_review": False,
                    "review_note": False,
                }
            )
            return
        payment = (
            self.env["account.payment"]
            .with_company(self.organization_id.company_id)
            .create(
                {
                    "payment_type": "inbound",
                    "partner_type": "customer",
                    "partner_id": self.organization_id.partner_id.commercial_partner_id.id,
                    "amount": self.amount,
                    "currency_id": self.currency_id.id,
                    "date": self.date,
                    "journal_id": journal.id,
                    "memo": self.external_invoice_id or self.description or False,
                }
            )
        )
        payment.action_post()
        self.write({"payment_id": payment.id, "needs_review": True, "review_note": why})
        self._notify_accountants(self.env._("Payment to reconcile by hand: %s", why))

    def _sync_refund(self):
        product = self._product()
        invoices = self.env["account.move"].search(
            [
                ("fayvad_organization_id", "=", self.organization_id.id),
                ("move_type", "=", "out_invoice"),
                ("state", "=", "posted"),
            ]
        )
        reversed_invoice = invoices.browse()
        if self.external_invoice_id:
            reversed_invoice = invoices.filtered(lambda m: self.external_invoice_id in (m.name, m.ref))[:1]
        credit_note = (
            self.env["account.move"]
            .with_company(self.organization_id.company_id)
            .create(
                {
                    "move_type": "out_refund",
                    "partner_id": self.organization_id.partner_id.id,
                    "currency_id": self.currency_id.id,
                    "invoice_date": self.date,
                    "fayvad_organization_id": self.organization_id.id,
                    "reversed_entry_id": reversed_invoice.id if reversed_invoice else False,
                    "ref": self.external_invoice_id or False,
                    "invoice_line_ids": [
                        fields.Command.create(
                            {
                                "product_id": product.id,
                                "name": self.description or self.env._("Refund"),
                                "quantity": 1,
                                "price_unit": abs(self.amount),
                                "tax_ids": [fields.Command.clear()],
                            }
                        )
                    ],
                }
            )
        )
        credit_note.action_post()
        self.write({"invoice_id": credit_note.id})
