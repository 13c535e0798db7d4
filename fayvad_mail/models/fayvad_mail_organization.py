import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..const import IN_SERVICE_STATES, LIVE_ACCOUNT_STATES, OPEN_PAYMENT_STATES, PROVISIONING_STATES
from ..fields import ByteSize
from ..tools.names import control_character_problem
from ..tools.units import GB, MB, default_mailbox_quota_mb, domain_quota_mb, format_free_space
from . import (
    fayvad_mail_cron_mixin,  # noqa: F401  (the mixin inherited below)
    fayvad_mail_live_state,  # noqa: F401  (the mixin inherited below)
)


class FayvadMailOrganization(models.Model):
    _name = "fayvad.mail.organization"
    _description = "Mail Hosting Organization"
    _inherit = [
        "mail.thread",
        "mail.activity.mixin",
        "fayvad.mail.cron.mixin",
        "fayvad.mail.live.state",
        "fayvad.mail.quota.alert.mixin",
    ]
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True, size=200, tracking=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        ondelete="restrict",
        tracking=True,
        index=True,
        check_company=True,
        help="The Odoo customer billed for this organization (the API's odoo_customer_id).",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    plan_id = fields.Many2one(
        "fayvad.mail.plan", tracking=True, check_company=True, index=True, ondelete="restrict"
    )
    mail_server_id = fields.Many2one(
        "fayvad.mail.server",
        check_company=True,
        index=True,
        ondelete="restrict",
        default=lambda self: self.env["fayvad.mail.server"]._default_server(),
        help="The server where this organization's domains and mailboxes live.",
    )
    max_users = fields.Integer(default=10, tracking=True)
    max_aliases = fields.Integer(
        default=20, tracking=True, help="Aliases and catch-alls allowed (forwards of mailboxes do not count)."
    )
    max_domain_aliases = fields.Integer(default=2, tracking=True, help="Other domain names for its domains.")
    max_storage_gb = fields.Integer(string="Max Storage (GB)", default=50, tracking=True)
    default_mailbox_quota_mb = fields.Integer(
        string="Default Mailbox Quota (MB)", default=1024, tracking=True
    )
    state = fields.Selection(
        PROVISIONING_STATES,
        default="draft",
        required=True,
        tracking=True,
        index=True,
        copy=False,
    )
    service_start_date = fields.Date(
        string="In Service Since",
        readonly=True,
        copy=False,
        tracking=True,
        help="The day its first domain was created on the mail server (or the day it was created already "
        "in service): billing starts then. Empty while it exists in Odoo only.",
    )
    date_terminated = fields.Date(
        string="Terminated On",
        readonly=True,
        copy=False,
        tracking=True,
        help="Billing ends here: the subscription is cancelled and no later period is charged.",
    )
    suspension_reason = fields.Selection(
        [("manual", "Manual"), ("non_payment", "Non-payment"), ("cancelled", "Subscription cancelled")],
        tracking=True,
        copy=False,
    )
    sending_blocked = fields.Boolean(
        readonly=True,
        copy=False,
        tracking=True,
        help="Set by dunning after a failed payment: the mailboxes may not send (they still log in and "
        "receive). A payment lifts it.",
    )
    suspension_exempt = fields.Boolean(
        string="Never Suspend Automatically",
        tracking=True,
        help="Dunning never suspends this customer; a manual suspension still works.",
    )
    domain_ids = fields.One2many("fayvad.mail.domain", "organization_id", string="Domains")
    account_ids = fields.One2many("fayvad.mail.account", "organization_id", string="Email Accounts")
    alias_ids = fields.One2many("fayvad.mail.alias", "organization_id", string="Aliases")
    domain_alias_ids = fields.One2many("fayvad.mail.domain.alias", "organization_id", string="Domain Aliases")
    subscription_ids = fields.One2many("fayvad.mail.subscription", "organization_id", string="Subscriptions")
    subscription_id = fields.Many2one(
        "fayvad.mail.subscription",
        compute="_compute_subscription_id",
        store=True,  # read with the organization by every webhook; changes with a subscription's state
        index=True,
        string="Current Subscription",
    )
    billing_event_ids = fields.One2many(
        "fayvad.mail.billing.event", "organization_id", string="Billing Events"
    )
    job_ids = fields.One2many("fayvad.mail.job", "organization_id", string="Provisioning Jobs")
    webhook_token = fields.Char(
        copy=False,
        readonly=True,
        index=True,
        default=lambda self: secrets.token_hex(16),
        groups="fayvad_mail.fayvad_mail_group_user",
        help="Identifies this organization's own billing webhook URL (not a secret: deliveries are signed).",
    )
    webhook_url = fields.Char(compute="_compute_webhook_url", groups="fayvad_mail.fayvad_mail_group_user")
    webhook_secret_ids = fields.One2many(
        "fayvad.mail.webhook.secret",
        "organization_id",
        string="Webhook Secrets",
        groups="fayvad_mail.fayvad_mail_group_admin",
    )
    primary_domain_id = fields.Many2one("fayvad.mail.domain", compute="_compute_primary_domain_id")

    # The figures of an organization's mailboxes are aggregated when read (one
    # query for the records at hand), not stored on the organization: a stored
    # total would rewrite the organization's row at every change of any of its
    # mailboxes, and concurrent requests for one organization would then fail
    # each other's transactions (serialization failures on that hot row).
    user_count = fields.Integer(string="Users", compute="_compute_usage")
    active_user_count = fields.Integer(string="Active Users", compute="_compute_usage")
    quota_allocated = ByteSize(
        string="Allocated Quota (bytes)",
        compute="_compute_usage",
        help="Sum of the quotas of the organization's mailboxes.",
    )
    storage_used = ByteSize(string="Storage Used (bytes)", compute="_compute_usage")
    storage_used_gb = fields.Float(
        string="Storage Used (GB)", compute="_compute_storage_figures", digits=(16, 2)
    )
    storage_percent = fields.Float(
        string="Storage Used (%)", compute="_compute_usage", search="_search_storage_percent", digits=(16, 2)
    )
    failure_reason = fields.Text(
        compute="_compute_failure_reason",
        help="Why its provisioning failed: each failed job and the mail server's reason.",
    )
    amount_due = fields.Monetary(
        compute="_compute_dues",
        search="_search_amount_due",
        help="What its posted mail hosting invoices still ask for (company currency).",
    )
    amount_overdue = fields.Monetary(
        compute="_compute_dues",
        search="_search_amount_overdue",
        help="The part of the amount due whose due date has passed.",
    )
    failed_payment_count = fields.Integer(
        related="subscription_id.failed_payment_count", string="Failed Payments"
    )
    domain_count = fields.Integer(compute="_compute_counts")
    billing_event_count = fields.Integer(compute="_compute_counts")
    invoice_count = fields.Integer(compute="_compute_counts")
    webhook_delivery_count = fields.Integer(compute="_compute_counts")
    job_count = fields.Integer(compute="_compute_counts")
    failed_job_count = fields.Integer(compute="_compute_counts")

    _sql_constraints = [
        ("partner_unique", "UNIQUE(partner_id)", "This customer already has a mail hosting organization."),
        ("webhook_token_unique", "UNIQUE(webhook_token)", "Webhook tokens must be unique."),
        ("max_users_positive", "CHECK(max_users >= 1)", "An organization must allow at least one user."),
        ("max_aliases_positive", "CHECK(max_aliases >= 0)", "The number of aliases cannot be negative."),
        (
            "max_domain_aliases_positive",
            "CHECK(max_domain_aliases >= 0)",
            "The number of domain aliases cannot be negative.",
        ),
        (
            "max_storage_positive",
            "CHECK(max_storage_gb >= 1)",
            "An organization must allow at least 1 GB of storage.",
        ),
        (
            "default_quota_positive",
            "CHECK(default_mailbox_quota_mb >= 1)",
            "The default mailbox quota must be at least 1 MB.",
        ),
    ]

    def init(self):
        # the usage summary counts the organizations in scope (created by its end date, of the
        # user's companies, by state) from this index alone
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS fayvad_mail_organization_scope_idx "
            "ON fayvad_mail_organization (create_date) INCLUDE (company_id, state)"
        )

    # -- computes ----------------------------------------------------------------------
    @api.depends("account_ids.state", "account_ids.quota", "account_ids.storage_used", "max_storage_gb")
    def _compute_usage(self):
        stored = [org.id for org in self if isinstance(org.id, int)]
        figures = {}
        if stored:
            self.env["fayvad.mail.account"].flush_model(["organization_id", "state", "quota", "storage_used"])
            self.env.cr.execute(
                SQL(
                    """
                    SELECT organization_id, count(*), count(*) FILTER (WHERE state = 'active'),
                           COALESCE(sum(quota), 0), COALESCE(sum(storage_used), 0)
                      FROM fayvad_mail_account
                     WHERE organization_id IN %s AND state != 'terminated'
                  GROUP BY organization_id
                    """,
                    tuple(stored),
                )
            )
            figures = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        for org in self:
            if isinstance(org.id, int):
                count, active, quota, used = figures.get(org.id, (0, 0, 0, 0))
            else:  # a new record (a form being filled in): its accounts in memory
                live = org.account_ids.filtered(lambda a: a.state != "terminated")
                count, active = len(live), len(live.filtered(lambda a: a.state == "active"))
                quota, used = sum(live.mapped("quota")), sum(live.mapped("storage_used"))
            org.user_count, org.active_user_count = count, active
            org.quota_allocated, org.storage_used = quota, used
            limit = org.max_storage_gb * GB
            org.storage_percent = round(used * 100 / limit, 2) if limit else 0.0

    def _search_storage_percent(self, operator, value):
        if operator not in ("=", "!=", "<", "<=", ">", ">=") or not isinstance(value, int | float):
            raise UserError(self.env._("Storage used (%%) can be compared with a number only."))
        self.env["fayvad.mail.account"].flush_model(["organization_id", "state", "storage_used"])
        self.flush_model(["max_storage_gb"])
        self.env.cr.execute(
            SQL(
                """
                SELECT org.id FROM fayvad_mail_organization org
                  LEFT JOIN (SELECT organization_id, sum(storage_used) AS used FROM fayvad_mail_account
                              WHERE state != 'terminated' GROUP BY organization_id) usage
                         ON usage.organization_id = org.id
                 WHERE round(COALESCE(usage.used, 0) * 100.0 / (org.max_storage_gb * %s), 2) %s %s
                """,
                GB,
                SQL(operator),
                value,
            )
        )
        return [("id", "in", [row[0] for row in self.env.cr.fetchall()])]

    @api.depends("storage_used")
    def _compute_storage_figures(self):
        for org in self:
            org.storage_used_gb = round(org.storage_used / GB, 2)

    @api.depends("subscription_ids.state", "subscription_ids.date_start")
    def _compute_subscription_id(self):
        """The latest subscription that is not cancelled, else the latest
        one; every organization's in one query (fields fetched with it)."""
        Subscription = self.env["fayvad.mail.subscription"]
        today = fields.Date.today()
        subscriptions = Subscription.search_fetch(
            [("organization_id", "in", self.ids)],
            [name for name, f in Subscription._fields.items() if f.store and f.column_type],
        ).grouped("organization_id")
        for org in self:
            subs = subscriptions.get(org, Subscription).sorted(
                lambda s: (s.state != "cancelled", s.date_start or today, s.id), reverse=True
            )
            org.subscription_id = subs[:1]

    @api.depends("domain_ids")
    def _compute_primary_domain_id(self):
        for org in self:
            org.primary_domain_id = org.domain_ids.sorted("id")[:1]

    def _dues_query(self, overdue=False):
        """(organization id, residual in company currency) of open mail hosting invoices."""
        return SQL(
            """
            SELECT fayvad_organization_id, sum(amount_residual_signed)
              FROM account_move
             WHERE fayvad_organization_id IS NOT NULL AND state = 'posted'
               AND move_type IN ('out_invoice', 'out_refund') AND payment_state IN %s
               %s
          GROUP BY fayvad_organization_id
            """,
            (*OPEN_PAYMENT_STATES, "in_payment"),
            SQL("AND invoice_date_due < %s", fields.Date.context_today(self)) if overdue else SQL(),
        )

    def _compute_dues(self):
        due, overdue = {}, {}
        if self.ids and self.env["account.move"].has_access("read"):
            self.env["account.move"].flush_model(
                ["fayvad_organization_id", "amount_residual_signed", "payment_state", "invoice_date_due"]
            )
            for target, late in ((due, False), (overdue, True)):
                self.env.cr.execute(self._dues_query(late))
                target.update(self.env.cr.fetchall())
        for org in self:
            org.amount_due = due.get(org.id, 0.0)
            org.amount_overdue = overdue.get(org.id, 0.0)

    def _search_dues(self, operator, value, overdue):
        if operator not in ("=", "!=", "<", "<=", ">", ">=") or not isinstance(value, int | float):
            raise UserError(self.env._("Amounts can be compared with a number only."))
        self.env["account.move"].flush_model()
        self.env.cr.execute(self._dues_query(overdue))
        amounts = dict(self.env.cr.fetchall())
        compare = {
            "=": lambda a: a == value,
            "!=": lambda a: a != value,
            "<": lambda a: a < value,
            "<=": lambda a: a <= value,
            ">": lambda a: a > value,
            ">=": lambda a: a >= value,
        }[operator]
        if compare(0.0):  # organizations with nothing open match too
            return [("id", "not in", [org for org, amount in amounts.items() if not compare(amount)])]
        return [("id", "in", [org for org, amount in amounts.items() if compare(amount)])]

    def _search_amount_due(self, operator, value):
        return self._search_dues(operator, value, overdue=False)

    def _search_amount_overdue(self, operator, value):
        return self._search_dues(operator, value, overdue=True)

    @api.depends("state")
    def _compute_failure_reason(self):
        failed = {}
        if self.env["fayvad.mail.job"].has_access("read"):
            jobs = self.env["fayvad.mail.job"].search(
                [("organization_id", "in", self.ids), ("state", "=", "failed")], order="id"
            )
            for job in jobs:
                failed.setdefault(job.organization_id.id, []).append(
                    f"{job.name}: {job.refusal_reason or job.last_error or self.env._('no reason recorded')}"
                )
        for org in self:
            if org.state != "failed":
                org.failure_reason = False
            elif failed.get(org.id):
                org.failure_reason = "\n".join(failed[org.id])
            else:
                org.failure_reason = self.env._(
                    "No failed job explains it (its state was set by hand or by an import): provision it again."
                )

    @api.depends("webhook_token")
    def _compute_webhook_url(self):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        for org in self:
            org.webhook_url = (
                f"{base}/fayvad_api/erp/webhooks/billing/{org.webhook_token}/" if org.webhook_token else ""
            )

    def _compute_counts(self):
        def count(model, domain, field="organization_id"):
            if not self.env[model].has_access("read"):
                return {}
            return dict(self.env[model]._read_group([*domain, (field, "in", self.ids)], [field], ["__count"]))

        domains = count("fayvad.mail.domain", [])
        events = count("fayvad.mail.billing.event", [])
        invoices = count(
            "account.move", [("move_type", "in", ("out_invoice", "out_refund"))], "fayvad_organization_id"
        )
        deliveries = count("fayvad.mail.webhook.delivery", [])
        jobs = count("fayvad.mail.job", [])
        failed = count("fayvad.mail.job", [("state", "=", "failed")])
        for org in self:
            org.domain_count = domains.get(org, 0)
            org.billing_event_count = events.get(org, 0)
            org.invoice_count = invoices.get(org, 0)
            org.webhook_delivery_count = deliveries.get(org, 0)
            org.job_count = jobs.get(org, 0)
            org.failed_job_count = failed.get(org, 0)

    # -- constraints -------------------------------------------------------------------
    @api.constrains("name")
    def _check_name_one_line(self):
        for org in self:
            problem = control_character_problem(org.name or "")
            if problem:
                raise ValidationError(self.env._("The organization's name: %s", problem))

    @api.constrains("max_users", "max_storage_gb", "max_aliases", "max_domain_aliases", "account_ids")
    def _check_limits(self):
        for org in self:
            problems = org._room_problems()
            if problems:
                raise ValidationError(" ".join(problems.values()))

    # -- CRUD ------------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        """An organization with a plan is subscribed to it at once, whichever
        screen or route creates it; one created already in service (demo
        data, an import) is billed from today, the others from the day the
        mail server has them."""
        today = fields.Date.context_today(self)
        for vals in vals_list:
            if vals.get("state") in IN_SERVICE_STATES and not vals.get("service_start_date"):
                vals["service_start_date"] = today
        orgs = super().create(vals_list)
        if not self.env.context.get("fayvad_mail_no_subscription"):
            Subscription = self.env["fayvad.mail.subscription"]
            for org in orgs.filtered("plan_id"):
                Subscription._start(org, org.plan_id)
        return orgs

    def write(self, vals):
        before = (
            {org: (org.plan_id, org.max_storage_gb) for org in self}
            if {"plan_id", "max_storage_gb"} & set(vals)
            else {}
        )
        limits = (
            {org: org._message_limit() for org in self} if {"plan_id", "sending_blocked"} & set(vals) else {}
        )
        res = super().write(vals)
        for org, (plan, storage) in before.items():
            org._bill_changes(plan, storage)
        for org, limit in limits.items():
            if org._message_limit() != limit:
                org._push_sending_limits()
        if {"max_storage_gb", "max_users", "default_mailbox_quota_mb"} & set(vals):
            # the domain quota on the mail server follows the limits (an import's are let go)
            self.domain_ids.filtered("quotas_kept").quotas_kept = False
            for org in self.filtered(lambda o: "active" in o.domain_ids.mapped("state")):
                self.env["fayvad.mail.job"]._enqueue("update_domain_quota", organization=org)
        return res

    def _bill_changes(self, old_plan, old_storage_gb):
        """A plan change or extra storage during a period is billed (or
        credited) for the rest of the period."""
        self.ensure_one()
        if self.state == "terminated":
            return  # billing ended with the termination
        Event = self.env["fayvad.mail.billing.event"]
        subscription = self.subscription_id
        if old_plan != self.plan_id and subscription and subscription.state != "cancelled":
            subscription.write({"plan_id": self.plan_id.id, "amount": self.plan_id.monthly_price})
            if self.plan_id:  # the period's fee follows the new plan (prorated, charged once)
                subscription._bill_fee(
                    self.plan_id.monthly_price,
                    "subscription_updated",
                    self.env._(
                        "Plan changed from %(old)s to %(new)s",
                        old=old_plan.name or "-",
                        new=self.plan_id.name,
                    ),
                )
        extra_before, price = self.plan_id._extra_units("storage_gb", old_storage_gb)
        extra_after, _price = self.plan_id._extra_units("storage_gb", self.max_storage_gb)
        if price and extra_after != extra_before:
            Event._prorated(
                self,
                price * (extra_after - extra_before),
                self.env._(
                    "Storage changed from %(old)s GB to %(new)s GB",
                    old=old_storage_gb,
                    new=self.max_storage_gb,
                ),
                "storage_changed",
            )

    @api.onchange("plan_id")
    def _onchange_plan_id(self):
        if self.plan_id:
            self.max_users = self.plan_id.max_users
            self.max_aliases = self.plan_id.max_aliases
            self.max_domain_aliases = self.plan_id.max_domain_aliases
            self.max_storage_gb = self.plan_id.max_storage_gb
            self.default_mailbox_quota_mb = self.plan_id.default_mailbox_quota_mb

    # -- actions ---------------------------------------------------------------------
    def _action_open(self, xmlid, domain, context=None):
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action["domain"] = domain
        action["context"] = context or {}
        return action

    def _action_open_its(self, xmlid):
        """``xmlid``'s records of these organizations; a new one is of this one."""
        return self._action_open(
            xmlid, [("organization_id", "in", self.ids)], {"default_organization_id": self.id}
        )

    def action_view_accounts(self):
        return self._action_open_its("fayvad_mail.fayvad_mail_account_action")

    def action_view_domains(self):
        return self._action_open_its("fayvad_mail.fayvad_mail_domain_action")

    def action_view_billing_events(self):
        return self._action_open_its("fayvad_mail.fayvad_mail_billing_event_action")

    def action_view_invoices(self):
        """Its invoices and credit notes, with their total and what is still due."""
        action = self._action_open(
            "account.action_move_out_invoice_type",
            [("fayvad_organization_id", "in", self.ids), ("move_type", "in", ("out_invoice", "out_refund"))],
            {"default_move_type": "out_invoice", "default_partner_id": self.partner_id.id},
        )
        action["views"] = [
            (self.env.ref("fayvad_mail.fayvad_mail_invoice_view_list").id, "list"),
            (False, "form"),
        ]
        return action

    def action_view_webhook_deliveries(self):
        return self._action_open(
            "fayvad_mail.fayvad_mail_webhook_delivery_action", [("organization_id", "in", self.ids)]
        )

    def action_view_jobs(self):
        context = {"search_default_failed": 1} if self.filtered(lambda o: o.state == "failed") else {}
        return self._action_open(
            "fayvad_mail.fayvad_mail_job_action", [("organization_id", "in", self.ids)], context
        )

    def action_check_drift(self):
        """Compare with the mail server now and list the differences."""
        self.env["res.users"]._fayvad_require("accountant")
        return self.env["fayvad.mail.drift"]._action_check(organizations=self)

    def action_provision(self):
        """Queue the jobs that create this organization on the mail server."""
        self.env["res.users"]._fayvad_require("admin")
        for org in self:
            if org.state not in ("draft", "failed"):
                raise UserError(self.env._("Only a draft or failed organization can be provisioned."))
            if not org.domain_ids:
                raise UserError(self.env._("Add a domain to %s before provisioning it.", org.name))
            # a failed one: its failed jobs are retried (with what waits for them), the rest queued
            self.env["fayvad.mail.job"].search(
                [("organization_id", "=", org.id), ("state", "=", "failed")]
            ).action_retry()
            org._queue_provisioning()
        return True

    def action_suspend(self):
        self.env["res.users"]._fayvad_require("accountant")
        self._suspend("manual")
        return True

    def action_unsuspend(self):
        self.env["res.users"]._fayvad_require("accountant")
        for org in self:
            if org.state != "suspended":
                raise UserError(self.env._("%s is not suspended.", org.name))
        self._unsuspend()
        return True

    def action_terminate(self):
        """Remove the organization from the mail server and end its billing:
        the subscription is cancelled today, and no period after today is
        charged (draft lines of later periods are removed; the current
        period stays billed)."""
        self.env["res.users"]._fayvad_require("accountant")
        today = fields.Date.context_today(self)
        for org in self.filtered(lambda o: o.state != "terminated"):
            org.write({"state": "terminated", "suspension_reason": False, "date_terminated": today})
            self.env["fayvad.mail.subscription"]._end_billing(org, today)
            self.env["fayvad.mail.job"]._enqueue("terminate_organization", organization=org)
        return True

    # -- business ----------------------------------------------------------------------
    def _queue_provisioning(self):
        """Queue creation of every domain and mailbox not yet on the server."""
        for org in self:
            org.state = "provisioning"
            for domain in org.domain_ids.filtered(lambda d: d.state in ("draft", "failed")):
                domain._queue_provisioning()
            for account in org.account_ids.filtered(lambda a: a.state in ("draft", "failed")):
                account._queue_provisioning()

    def _resume_provisioning(self):
        """Carry on with an organization whose provisioning is pending or
        failed: failed jobs are retried at once; pending ones keep their
        schedule (a client resending its request while the mail server is
        down neither hammers it nor uses up the jobs' attempts)."""
        Job = self.env["fayvad.mail.job"].sudo()  # the API user may not write jobs
        for org in self:
            jobs = Job.search([("organization_id", "=", org.id), ("state", "=", "failed")])
            jobs.action_retry()
            if org.state == "failed":
                org.state = "provisioning"
            for domain in org.domain_ids.filtered(lambda d: d.state in ("draft", "failed")):
                domain._queue_provisioning()

    def _suspend(self, reason):
        """Suspend on the mail server (logins blocked, mail still received)."""
        for org in self:
            if org.state == "terminated":
                raise UserError(self.env._("%s is terminated.", org.name))
            if org.state == "suspended":
                if reason == "manual" and org.suspension_reason != "manual":
                    org.suspension_reason = "manual"  # a manual suspension is never lifted automatically
                continue
            org.write({"state": "suspended", "suspension_reason": reason})
            self.env["fayvad.mail.job"]._enqueue("suspend_organization", organization=org)

    def _unsuspend(self):
        for org in self.filtered(lambda o: o.state == "suspended"):
            org.write({"state": "active", "suspension_reason": False})
            self.env["fayvad.mail.job"]._enqueue("unsuspend_organization", organization=org)

    def _check_customer_may_change(self):
        """Customers change nothing while their organization is suspended or terminated."""
        for org in self:
            if org.state in ("suspended", "terminated"):
                raise UserError(
                    self.env._(
                        "%(org)s is %(state)s: its mail hosting cannot be changed until that is lifted.",
                        org=org.name,
                        state=dict(org._fields["state"]._description_selection(self.env))[org.state],
                    )
                )

    def _add_domain(self, name):
        """Another domain for this organization (the customer's portal, the
        back office): made on the mail server like its first, disabled
        until its DNS proves the customer holds it when verification is
        required. A name another organization has, as a domain or a domain
        alias, is refused and nothing changes."""
        self.ensure_one()
        self._check_customer_may_change()
        Domain = self.env["fayvad.mail.domain"]
        name = Domain._normalize_name(name)
        taken = Domain.sudo().with_context(active_test=False).search_count([("name", "=", name)])
        taken = taken or self.env["fayvad.mail.domain.alias"].sudo().search_count([("name", "=", name)])
        if taken:
            raise UserError(self.env._("%s already belongs to an organization.", name))
        domain = Domain.create({"name": name, "organization_id": self.id})
        if self.state not in ("draft", "failed"):
            domain._queue_provisioning()
        return domain

    def _start_service(self):
        """Its first domain exists on the mail server now: billing starts
        today (the current period's fee, once)."""
        for org in self.filtered(lambda o: not o.service_start_date and o.state != "terminated"):
            org.service_start_date = fields.Date.context_today(self)
            if org.subscription_id:
                org.subscription_id._on_service_started()

    def _stop_failed_service(self):
        """Its provisioning failed for good: nothing is charged for it (the
        period's fee already charged is credited); billing starts again the
        day the mail server has it."""
        for org in self.filtered("service_start_date"):
            if org.domain_ids.filtered(lambda d: d.state in IN_SERVICE_STATES):
                continue  # another of its domains serves: it is in service
            if org.subscription_id and org.subscription_id.state != "cancelled":
                org.subscription_id._credit_failed_provisioning()
            org.service_start_date = False

    def _domain_quotas(self):
        """(domain quota, default mailbox quota) in MB on the mail server."""
        self.ensure_one()
        return (
            domain_quota_mb(self.max_storage_gb, self.max_users),
            default_mailbox_quota_mb(self.default_mailbox_quota_mb, self.max_storage_gb, self.max_users),
        )

    # -- its limits, in one place --------------------------------------------------------------
    def _room_problems(self, users=None, storage=None, aliases=None, domain_aliases=None):
        """What its limits refuse once ``users`` more mailboxes, ``storage``
        more bytes of quota, ``aliases`` more aliases or catch-alls or
        ``domain_aliases`` more domain aliases are added to what it has; with
        none given, whether all it has fits. ``{kind: message}``, empty when
        there is room: the one check of the organization's limits, used by the
        API, the portal, the back office and the constraints."""
        self.ensure_one()
        asked = {
            kind: count
            for kind, count in (
                ("users", users),
                ("storage", storage),
                ("aliases", aliases),
                ("domain_aliases", domain_aliases),
            )
            if count is not None
        } or dict.fromkeys(("users", "storage", "aliases", "domain_aliases"), 0)
        problems = {}
        live = self.account_ids.filtered(lambda a: a.state != "terminated")
        if "users" in asked and len(live) + asked["users"] > self.max_users:
            problems["users"] = self.env._(
                "The organization's limit of %(max)s users is reached (%(org)s allows at most %(max)s email accounts).",
                max=self.max_users,
                org=self.name,
            )
        quotas = sum(live.mapped("quota"))
        if "storage" in asked and quotas + asked["storage"] > self.max_storage_gb * GB:
            free = max(self.max_storage_gb * GB - quotas, 0)
            problems["storage"] = self.env._(
                "Exceeds the organization's storage limit: %(free)s left of %(max)s GB (%(free_bytes)s bytes); "
                "the mailbox quotas would add up to %(used).2f GB, more than its %(max)s GB.",
                free=format_free_space(free),
                free_bytes=free,
                max=self.max_storage_gb,
                used=(quotas + asked["storage"]) / GB,
            )
        for kind, model, limit, label in (
            ("aliases", "fayvad.mail.alias", self.max_aliases, self.env._("aliases")),
            (
                "domain_aliases",
                "fayvad.mail.domain.alias",
                self.max_domain_aliases,
                self.env._("domain aliases"),
            ),
        ):
            if kind in asked and self.env[model]._live_count(self) + asked[kind] > limit:
                problems[kind] = self.env._(
                    "The organization's limit of %(max)s %(what)s is reached (%(org)s allows at most %(max)s %(what)s).",
                    max=limit,
                    what=label,
                    org=self.name,
                )
        return problems

    def _open_invoices(self):
        """Its posted mail hosting invoices still to be paid, oldest first."""
        return self.env["account.move"].search(
            [
                ("fayvad_organization_id", "in", self.ids),
                ("move_type", "=", "out_invoice"),
                ("state", "=", "posted"),
                ("payment_state", "in", OPEN_PAYMENT_STATES),
            ],
            order="invoice_date, id",
        )

    def _in_service_count(self):
        """Its mailboxes that exist on the mail server (the ones billed)."""
        self.ensure_one()
        return len(self.account_ids.filtered(lambda a: a.state in IN_SERVICE_STATES))

    def _update_provisioning_state(self):
        """Move a provisioning organization to active or failed once its jobs are done."""
        for org in self.filtered(lambda o: o.state in ("provisioning", "failed")):
            states = set(org.domain_ids.mapped("state")) | set(org.account_ids.mapped("state"))
            if org.domain_ids and states <= {"active", "suspended", "terminated"}:
                org.state = "active"
            elif "failed" in states:
                org.state = "failed"

    def _lock_for_update(self):
        """Serialise concurrent changes of the same organizations (limits checks)."""
        if self.ids:
            self.env.cr.execute(
                SQL(
                    "SELECT id FROM %s WHERE id IN %s FOR UPDATE",
                    SQL.identifier(self._table),
                    tuple(self.ids),
                )
            )

    # -- its life on the mail server (run by the job queue; each step idempotent) --------------
    def _remote_mailboxes(self, client):
        """{email: RemoteMailbox} of its domains on the server (one paginated list per domain)."""
        mailboxes = {}
        for domain in self.domain_ids:
            remote_domain = client.find_domain(domain.name)
            if remote_domain:
                mailboxes.update({mb.email: mb for mb in client.list_mailboxes(remote_domain.id)})
        return mailboxes

    def _mail_server_sync_logins(self, client):
        """Enable or disable each live mailbox's logins as Odoo says (soft
        suspension: the domain stays enabled, so mail is still received)."""
        remote = self._remote_mailboxes(client)
        accounts = self.with_context(active_test=False).account_ids
        for account in accounts.filtered(lambda a: a.state in LIVE_ACCOUNT_STATES):
            mailbox = remote.get(account.email)
            wanted = account._logins_allowed()
            if mailbox and mailbox.active != wanted:
                client.update_mailbox(mailbox.id, active=wanted)
        self._mail_server_sync_aliases(client)

    def _mail_server_sync_aliases(self, client):
        """Give its aliases back the state Odoo says: disabling a login makes
        Modoboa disable the aliases whose only recipient it is, and enabling
        it again does not restore them."""
        aliases = self.env["fayvad.mail.alias"].search(
            [("organization_id", "=", self.id), ("state", "=", "active")]
        )
        for domain in aliases.domain_id:
            remote = {alias.address: alias for alias in client.list_aliases(domain.name)}
            for alias in aliases.filtered(lambda a, d=domain: a.domain_id == d):
                have = remote.get(alias.address)
                if have and have.enabled != alias.enabled:
                    client.update_alias(have.id, **alias._mail_server_fields())

    def _mail_server_suspend(self, client, job):
        """Soft suspension: logins blocked (mailboxes disabled), the domain
        stays enabled so mail is still received."""
        if self.state != "suspended":
            return  # lifted since: lifting sets the mailboxes
        accounts = self.with_context(active_test=False).account_ids
        accounts.filtered(lambda a: a.state == "active").write(
            {"state": "suspended", "suspended_by": "organization"}
        )
        self._mail_server_sync_logins(client)

    def _mail_server_unsuspend(self, client, job):
        if self.state in ("suspended", "terminated"):
            return  # suspended again since: nothing to lift
        accounts = self.with_context(active_test=False).account_ids
        # only what the organization's suspension suspended: the customer's and an
        # administrator's own suspensions stay
        accounts.filtered(lambda a: a.state == "suspended" and a.suspended_by == "organization").write(
            {"state": "active", "suspended_by": False}
        )
        self._mail_server_sync_logins(client)

    def _mail_server_terminate(self, client, job):
        """Every alias and account of its domains first (Modoboa keeps a
        deleted domain's accounts otherwise), its administrator logins, then
        the domains."""
        for domain in self.domain_ids:
            remote = client.find_domain(domain.name)
            if remote:
                for alias in client.list_aliases(domain.name):
                    client.delete_alias(alias.id)
                for domain_alias in client.list_domain_aliases(domain.name):
                    client.delete_domain_alias(domain_alias.id)
                for mailbox in client.list_mailboxes(remote.id):
                    client.delete_mailbox(mailbox.id)
                for admin_id, username in client.list_domain_admins(remote.id):
                    if username.endswith(f"@{domain.name}"):
                        client.delete_mailbox(admin_id)
                client.delete_domain(remote.id)
            domain.write({"state": "terminated", "remote_id": False})
        accounts = self.with_context(active_test=False).account_ids
        accounts.write({"state": "terminated", "active": False, "remote_id": False})
        accounts._wipe_pending_password()
        for model in ("fayvad.mail.alias", "fayvad.mail.domain.alias"):
            self.env[model].with_context(active_test=False).search([("organization_id", "=", self.id)]).write(
                {"state": "terminated", "active": False, "remote_id": False}
            )

    def _mail_server_sending_limits(self, client, job):
        """Every live mailbox gets its daily sending limit."""
        if self.state == "terminated":
            return
        limit = self._message_limit()
        remote = self._remote_mailboxes(client)
        accounts = self.with_context(active_test=False).account_ids
        for account in accounts.filtered(lambda a: a.state in LIVE_ACCOUNT_STATES):
            mailbox = remote.get(account.email)
            if mailbox and mailbox.message_limit != limit:
                client.update_mailbox(mailbox.id, message_limit=limit)

    def _mail_server_domain_quotas(self, client, job):
        """Its active domains' quotas follow its limits, and each is enabled
        once it may receive mail (domain verification)."""
        for domain in self.domain_ids.filtered(lambda d: d.state == "active"):
            remote = client.find_domain(domain.name)
            if remote:
                domain._mail_server_apply(client, remote)

    # -- sending limits -----------------------------------------------------------------------
    # Daily sending limits: each mailbox may send the plan's number of messages a day
    # (Modoboa's ``message_limit``, enforced by its policy daemon). A dunning stage before
    # suspension blocks sending (limit 0) while logins and receiving go on; a payment
    # restores the plan's limit.
    def _message_limit(self):
        """The ``message_limit`` of each of its mailboxes on the mail server
        (None: no limit)."""
        self.ensure_one()
        if self.sending_blocked:
            return 0
        return self.plan_id.daily_message_limit or None

    def _push_sending_limits(self):
        Job = self.env["fayvad.mail.job"]
        for org in self.filtered(lambda o: o.state not in ("draft", "terminated")):
            Job._enqueue("update_sending_limits", organization=org)

    def _block_sending(self):
        """The dunning stage before suspension."""
        for org in self.filtered(lambda o: not o.sending_blocked and o.state == "active"):
            org.sending_blocked = True
            org.message_post(
                body=self.env._(
                    "Sending is blocked after a failed payment: the mailboxes still log in and receive mail. "
                    "A payment restores sending."
                )
            )

    def _unblock_sending(self):
        for org in self.filtered("sending_blocked"):
            org.sending_blocked = False
            org.message_post(body=self.env._("Payment received: sending is restored."))

    # -- quota alerts -------------------------------------------------------------------------
    def _quota_alert_organization(self):
        return self

    def _quota_alert_figures(self):
        return (
            self.env._("The mail hosting of %s", self.name),
            f"{self.storage_used / GB:,.2f} GB",
            f"{self.max_storage_gb} GB",
        )

    def _quota_alert(self, record, level):
        """Tell the accountants (an activity: offer more storage) and the
        customer (an e-mail through Odoo's mail queue)."""
        self.ensure_one()
        what, used, quota = record._quota_alert_figures()
        summary = self.env._("%(what)s is at %(level)s%% of its quota", what=what, level=level)
        self.activity_schedule(
            "mail.mail_activity_data_todo",
            user_id=self._quota_alert_user().id,
            summary=summary,
            note=self.env._(
                "%(used)s used of %(quota)s. An upsell: more storage, or a bigger plan.",
                used=used,
                quota=quota,
            ),
        )
        template = self.env.ref("fayvad_mail.mail_template_quota_alert")
        template.with_context(
            alert_what=what, alert_level=level, alert_used=used, alert_quota=quota
        ).send_mail(self.id, email_layout_xmlid="mail.mail_notification_light")

    def _quota_alert_user(self):
        """Who follows the customer: its salesperson, else the first mail hosting accountant."""
        salesperson = self.partner_id.user_id
        if salesperson and not salesperson.share:
            return salesperson
        return self.env["res.users"]._fayvad_members("accountant")[:1] or self.env.user

    # -- the customer portal (controllers/portal.py) -------------------------------------------
    def _portal_values(self):
        """The values of the ``/my/mail/<id>`` page: figures as the customer
        reads them, never a secret (no webhook token, no server token)."""
        self.ensure_one()
        subscription = self.subscription_id
        renewal = subscription if subscription.state != "cancelled" and subscription.period_end else None
        free_bytes = max(self.max_storage_gb * GB - self.quota_allocated, 0)
        aliases = self.alias_ids.filtered(lambda a: a.state != "terminated")
        return {
            "organization": self,
            "plan_name": self.plan_id.name or "",
            "subscription": subscription,
            "next_renewal": renewal.period_end + timedelta(days=1) if renewal else None,
            "mailboxes": self.account_ids.sorted("email"),
            "domains": self.domain_ids.sorted("name"),
            "aliases": aliases.sorted("address"),
            "forwards": {alias.account_id.id: alias for alias in aliases if alias.kind == "forward"},
            "aliases_left": max(self.max_aliases - self.env["fayvad.mail.alias"]._live_count(self), 0),
            "domain_aliases": self.domain_alias_ids.sorted("name"),
            "storage_percent_of_plan": min(self.storage_percent, 100),
            "quota_free_mb": int(free_bytes // MB),
            "quota_free": format_free_space(free_bytes),
            "users_left": max(self.max_users - self.user_count, 0),
            "open_invoices": self._open_invoices(),
            "blocked": self.state in ("suspended", "terminated"),
            "mail_settings": self.mail_server_id._mail_settings() if self.mail_server_id else {},
            "upgrades": self._portal_upgrades(),
            "password_policy": self.mail_server_id._password_policy().describe(),
        }

    # -- plan upgrades -----------------------------------------------------------------------
    def _portal_upgrades(self):
        """The plans a customer may move up to: the company's active plans
        dearer than its own."""
        self.ensure_one()
        if self.state not in ("active", "provisioning") or not self.plan_id:
            return self.env["fayvad.mail.plan"]
        return self.env["fayvad.mail.plan"].search(
            [
                ("company_id", "=", self.company_id.id),
                ("currency_id", "=", self.plan_id.currency_id.id),
                ("monthly_price", ">", self.plan_id.monthly_price),
            ]
        )

    def _plan_change_preview(self, plan):
        """What moving to ``plan`` charges now (before the customer confirms):
        (amount, currency, share of the period it covers), as ``_bill_fee``
        will charge it."""
        self.ensure_one()
        subscription = self.subscription_id
        if not subscription or subscription.state == "cancelled":
            return 0.0, plan.currency_id, 0.0
        amount, share = subscription._fee_change(plan.monthly_price)
        return amount, subscription.currency_id, share

    def _upgrade_plan(self, plan):
        """Move to ``plan`` (one of ``_portal_upgrades``): its limits where
        they are larger, and its fee from now, charged as any plan change is
        (a prorated adjustment of the period)."""
        self.ensure_one()
        if plan not in self._portal_upgrades():
            raise UserError(self.env._("%s is not a plan you can move up to.", plan.display_name))
        self.write(
            {
                "plan_id": plan.id,
                "max_users": max(self.max_users, plan.max_users),
                "max_aliases": max(self.max_aliases, plan.max_aliases),
                "max_domain_aliases": max(self.max_domain_aliases, plan.max_domain_aliases),
                "max_storage_gb": max(self.max_storage_gb, plan.max_storage_gb),
            }
        )
        self.message_post(body=self.env._("The customer moved up to the plan %s in the portal.", plan.name))
