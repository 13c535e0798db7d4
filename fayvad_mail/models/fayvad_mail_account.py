import math

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..const import IN_SERVICE_STATES, LIVE_ACCOUNT_STATES, PROVISIONING_STATES
from ..fields import ByteSize
from ..tools.mailserver import NotFound
from ..tools.names import InvalidName, check_not_reserved, control_character_problem, normalize_local_part
from ..tools.units import MB, format_quota, mb_ceil
from . import fayvad_mail_live_state, fayvad_mail_quota_alert  # noqa: F401  (the mixins inherited below)


class FayvadMailAccount(models.Model):
    _name = "fayvad.mail.account"
    _description = "Email Account"
    _inherit = ["mail.thread", "fayvad.mail.live.state", "fayvad.mail.quota.alert.mixin"]
    _order = "email"
    _rec_name = "email"
    _check_company_auto = True

    local_part = fields.Char(
        string="Address", required=True, help="The part before the @, stored in lower case."
    )
    domain_id = fields.Many2one(
        "fayvad.mail.domain",
        required=True,
        ondelete="restrict",
        index=True,
        tracking=True,
        # no check_company: the mailbox's company is its domain's (a related field), so a company
        # check on the domain filtered the choice by a company not known yet ("No records")
        domain="[('state', 'not in', ('terminated', 'failed'))]",
    )
    organization_id = fields.Many2one(related="domain_id.organization_id", store=True, index=True)
    company_id = fields.Many2one(related="domain_id.company_id", store=True, index=True)
    email = fields.Char(compute="_compute_email", store=True, index=True, string="Email Address")
    first_name = fields.Char(size=30, tracking=True)
    last_name = fields.Char(size=30, tracking=True)
    # not tracked itself: Odoo keeps a tracked integer in a 32-bit column (no quota of 2 GB or
    # more could be saved); its readable form is tracked instead ("5 GB → 10 GB")
    quota = ByteSize(string="Quota (bytes)", required=True)
    quota_label = fields.Char(string="Quota", compute="_compute_quota_label", store=True, tracking=True)
    quota_mb = fields.Integer(string="Quota (MB)", compute="_compute_quota_mb", inverse="_inverse_quota_mb")
    storage_used = ByteSize(string="Storage Used (bytes)", readonly=True, copy=False)
    storage_used_mb = fields.Float(string="Used (MB)", compute="_compute_storage", digits=(16, 1))
    storage_percent = fields.Float(string="Used (%)", compute="_compute_storage", digits=(16, 2))
    usage_date = fields.Date(string="Usage Read On", readonly=True, copy=False)
    state = fields.Selection(
        PROVISIONING_STATES, default="draft", required=True, tracking=True, copy=False, index=True
    )
    active = fields.Boolean(default=True)
    remote_id = fields.Integer(string="Mail Server ID", copy=False, readonly=True)
    service_start_date = fields.Date(
        string="In Service Since",
        readonly=True,
        copy=False,
        help="The day the mailbox was created on the mail server: it is billed from then.",
    )
    suspended_by = fields.Selection(
        [
            ("customer", "The customer"),
            ("admin", "An administrator"),
            ("organization", "The organization's suspension"),
        ],
        readonly=True,
        copy=False,
        tracking=True,
        help="Who suspended this mailbox: only an administrator lifts an administrator's suspension, and "
        "lifting the organization's suspension restores only the mailboxes it suspended.",
    )
    password_dropped = fields.Boolean(
        string="Password Not Handed Over",
        readonly=True,
        copy=False,
        tracking=True,
        help="The password chosen for this mailbox never reached the mail server (its job was cancelled "
        "or failed for good, or the server made the mailbox with a password nobody knows): reset it.",
    )
    usage_snapshot_ids = fields.One2many("fayvad.mail.usage.snapshot", "account_id", string="Usage Snapshots")

    _sql_constraints = [
        ("email_unique", "UNIQUE(email)", "This email address already exists."),
        ("quota_min", f"CHECK(quota >= {MB})", "A mailbox quota must be at least 1 MB (1,048,576 bytes)."),
        ("storage_positive", "CHECK(storage_used >= 0)", "Storage used cannot be negative."),
    ]

    def init(self):
        # The password handed to the mail server lives in a column no ORM field
        # maps, so no Odoo user can read it (not even through RPC or export);
        # it is wiped as soon as the mail server has it.
        self.env.cr.execute(
            SQL(
                "ALTER TABLE %s ADD COLUMN IF NOT EXISTS pending_password varchar",
                SQL.identifier(self._table),
            )
        )

    # -- computes -----------------------------------------------------------------------
    @api.depends("local_part", "domain_id.name")
    def _compute_email(self):
        for account in self:
            account.email = f"{account.local_part}@{account.domain_id.name}" if account.domain_id else False

    @api.depends("quota")
    def _compute_quota_label(self):
        for account in self:
            account.quota_label = format_quota(account.quota) if account.quota else False

    @api.depends("quota")
    def _compute_quota_mb(self):
        for account in self:
            account.quota_mb = math.ceil(account.quota / MB) if account.quota else 0

    def _inverse_quota_mb(self):
        for account in self:
            account.quota = account.quota_mb * MB

    @api.depends("storage_used", "quota")
    def _compute_storage(self):
        for account in self:
            account.storage_used_mb = round(account.storage_used / MB, 1)
            account.storage_percent = (
                round(account.storage_used * 100 / account.quota, 2) if account.quota else 0.0
            )

    # -- constraints --------------------------------------------------------------------
    @api.constrains("quota", "state", "domain_id")
    def _check_organization_limits(self):
        for org in self.organization_id:
            problems = org._room_problems()
            for kind in ("users", "storage"):
                if kind in problems:
                    raise ValidationError(problems[kind])

    @api.constrains("first_name", "last_name")
    def _check_names_one_line(self):
        for account in self:
            problem = control_character_problem(account.first_name or "") or control_character_problem(
                account.last_name or ""
            )
            if problem:
                raise ValidationError(
                    self.env._("The name of %(email)s: %(problem)s", email=account.email, problem=problem)
                )

    @api.constrains("email")
    def _check_not_an_alias(self):
        Alias = self.env["fayvad.mail.alias"].sudo().with_context(active_test=False)
        for account in self:
            taken = Alias.search_count(
                [("address", "=", account.email), ("kind", "!=", "forward"), ("state", "!=", "terminated")],
                limit=1,
            )
            if taken:
                raise ValidationError(self.env._("%s is an alias's address.", account.email))

    # -- CRUD ----------------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        domains = self.env["fayvad.mail.domain"].browse(
            [v.get("domain_id") for v in vals_list if v.get("domain_id")]
        )
        domains.organization_id._lock_for_update()
        for vals in vals_list:
            if "local_part" in vals:
                vals["local_part"] = self._normalize_local_part(vals["local_part"])
            domain = self.env["fayvad.mail.domain"].browse(vals.get("domain_id"))
            if domain.organization_id.state in ("suspended", "terminated"):
                raise ValidationError(
                    self.env._(
                        "%(org)s is %(state)s: it accepts no new email accounts.",
                        org=domain.organization_id.name,
                        state=domain.organization_id.state,
                    )
                )
            if not vals.get("quota") and domain:
                vals["quota"] = domain.organization_id.default_mailbox_quota_mb * MB
        accounts = super().create(vals_list)
        # one created already on the server (demo data, an import) is billed now, the others the
        # day the mail server creates them
        accounts.filtered(lambda a: a.state in IN_SERVICE_STATES)._start_service()
        return accounts

    def _start_service(self):
        """The mailbox exists on the mail server from today: it is billed
        (beyond the plan's included users) from now."""
        for account in self.filtered(lambda a: not a.service_start_date):
            account.service_start_date = fields.Date.context_today(self)
            self.env["fayvad.mail.billing.event"]._on_user_added(account)

    def write(self, vals):
        if "local_part" in vals:
            if self.filtered(lambda a: a.state != "draft"):
                raise ValidationError(
                    self.env._("An address cannot be renamed once it is on the mail server.")
                )
            vals["local_part"] = self._normalize_local_part(vals["local_part"])
        if "quota" in vals:
            self.organization_id._lock_for_update()
        old_quota = {account: account.quota for account in self} if "quota" in vals else {}
        res = super().write(vals)
        for account in self.filtered(lambda a: a in old_quota and a.quota != old_quota[a]):
            if account.state in ("active", "suspended"):
                self.env["fayvad.mail.job"]._enqueue("set_quota", account=account)
        return res

    @api.onchange("domain_id")
    def _onchange_domain_id(self):
        """A new mailbox starts with its organization's default quota."""
        if self.domain_id and not self.quota:
            self.quota = self.domain_id.organization_id.default_mailbox_quota_mb * MB

    @api.model
    def _normalize_local_part(self, local_part):
        try:
            return check_not_reserved(normalize_local_part(local_part or ""))
        except InvalidName as exc:
            raise ValidationError(
                self.env._("The address %(value)r %(reason)s.", value=local_part, reason=exc)
            ) from None

    # -- password hand-over --------------------------------------------------------------------
    @api.model
    def _password_problems(self, organization, password):
        """What ``password`` breaks in the policy of the organization's mail server."""
        return organization.mail_server_id._password_policy().problems(password)

    def _set_pending_password(self, password):
        """Keep ``password`` until the mail server has it. It must satisfy
        the server's policy; it is stored encrypted, by a query that is never
        logged."""
        self.ensure_one()
        problems = self._password_problems(self.organization_id, password)
        if problems:
            raise ValidationError(
                self.env._(
                    "The password of %(email)s: %(problems)s", email=self.email, problems=" ".join(problems)
                )
            )
        token = self.env["fayvad.mail.vault"]._encrypt("pending password", password)
        # Odoo's cursor logs a query with its parameters (at debug level, and
        # whenever it fails): this one goes straight to psycopg2, unlogged.
        query = SQL(
            "UPDATE %s SET pending_password = %s WHERE id = %s", SQL.identifier(self._table), token, self.id
        )
        self.env.cr._obj.execute(query.code, query.params)

    def _pending_password_token(self):
        """The stored (encrypted) pending password, or None."""
        self.ensure_one()
        self.env.cr.execute(
            SQL("SELECT pending_password FROM %s WHERE id = %s", SQL.identifier(self._table), self.id)
        )
        row = self.env.cr.fetchone()
        return row[0] if row else None

    def _get_pending_password(self):
        """The password waiting for the mail server (None when there is
        none); a vault key that cannot read it is an error."""
        return self.env["fayvad.mail.vault"]._decrypt("pending password", self._pending_password_token())

    def _drop_pending_password(self):
        """The pending password will not be handed over: wipe it, and say
        on the mailbox (and in the portal, which offers a reset) that its
        password is not the one that was chosen."""
        for account in self:
            if account._pending_password_token():
                account.password_dropped = True
        self._wipe_pending_password()

    def _wipe_pending_password(self):
        if self.ids:
            self.env.cr.execute(
                SQL(
                    "UPDATE %s SET pending_password = NULL WHERE id IN %s",
                    SQL.identifier(self._table),
                    tuple(self.ids),
                )
            )

    # -- actions ---------------------------------------------------------------------------------
    def action_provision(self):
        self.env["res.users"]._fayvad_require("admin")
        for account in self:
            if account.state not in ("draft", "failed"):
                raise UserError(self.env._("%s is already on the mail server.", account.email))
        self._queue_provisioning()
        return True

    def action_suspend(self):
        """Suspend the mailbox as an administrator (the back office)."""
        self.env["res.users"]._fayvad_require("accountant")
        self._suspend_mailbox("admin")
        return True

    def action_unsuspend(self):
        """Lift the mailbox's suspension as an administrator (the back office)."""
        self.env["res.users"]._fayvad_require("accountant")
        self._unsuspend_mailbox("admin")
        return True

    def _suspend_mailbox(self, owner):
        """Block the logins of these active mailboxes (mail is still
        received); ``owner`` ("customer", "admin") is who may lift it."""
        for account in self.filtered(lambda a: a.state == "active"):
            account.write({"state": "suspended", "suspended_by": owner})
            self.env["fayvad.mail.job"]._enqueue("suspend_account", account=account)

    def _unsuspend_mailbox(self, by):
        """Lift the suspension of these mailboxes, ``by`` the customer (its
        own suspensions only) or an administrator (any but the
        organization's, which lifting the organization's ends)."""
        for account in self.filtered(lambda a: a.state == "suspended"):
            if account.organization_id.state == "suspended" or account.suspended_by == "organization":
                raise UserError(self.env._("Lift the suspension of %s first.", account.organization_id.name))
            if by == "customer" and account.suspended_by == "admin":
                raise UserError(
                    self.env._("%s was suspended by your provider: ask them to lift it.", account.email)
                )
            account.write({"state": "active", "suspended_by": False})
            self.env["fayvad.mail.job"]._enqueue("unsuspend_account", account=account)

    def action_terminate(self):
        """Delete the mailbox on the mail server (and bill the removal)."""
        self.env["res.users"]._fayvad_require("accountant")
        for account in self.filtered(lambda a: a.state != "terminated"):
            on_server = account.state not in ("draft", "failed") or account.remote_id
            account.write({"state": "terminated", "active": False})
            account._wipe_pending_password()
            self.env["fayvad.mail.alias"].search([("account_id", "=", account.id)]).action_delete()
            if on_server:
                self.env["fayvad.mail.job"]._enqueue("delete_mailbox", account=account)
            if account.service_start_date:  # a mailbox that never existed was never billed
                self.env["fayvad.mail.billing.event"]._on_user_removed(account)
        return True

    # -- what a customer may do to its own mailboxes (the portal) -----------------------------
    def _check_customer_may_change(self):
        """Customers change nothing while their organization is suspended or
        terminated, nor a mailbox that is gone."""
        for account in self:
            account.organization_id._check_customer_may_change()
            if account.state == "terminated":
                raise UserError(self.env._("%s has been deleted.", account.email))

    def _set_forward(self, recipients):
        """Forward this mailbox's mail to ``recipients`` (text, one address a
        line or separated by commas; it keeps its copy); none: stop."""
        self.ensure_one()
        Alias = self.env["fayvad.mail.alias"]
        forward = Alias.search(
            [("account_id", "=", self.id), ("kind", "=", "forward"), ("state", "!=", "terminated")], limit=1
        )
        addresses = [a for a in Alias._split_recipients(recipients) if a != self.email]
        if not addresses:
            forward.action_delete()
            return forward
        if forward:
            forward.recipients = "\n".join(addresses)
            return forward
        forward = Alias.create(
            {
                "kind": "forward",
                "account_id": self.id,
                "domain_id": self.domain_id.id,
                "recipients": "\n".join(addresses),
            }
        )
        forward._queue_provisioning()
        return forward

    def _reset_password(self, password=None):
        """Give the mailbox a new password — ``password`` (checked against its
        server's policy), or one generated by that policy — handed over by a
        job. The password is returned once, to be shown to whoever asked;
        Odoo keeps it only encrypted until the server has it."""
        self.ensure_one()
        self._check_customer_may_change()
        if self.state not in ("provisioning", "active", "suspended"):
            raise UserError(self.env._("%s is not on the mail server yet.", self.email))
        password = password or self.organization_id.mail_server_id._password_policy().generate()
        self._set_pending_password(password)
        if self.state != "provisioning":  # else creating the mailbox hands it over
            self.env["fayvad.mail.job"]._enqueue("set_password", account=self)
        self.message_post(
            body=self.env._("Password reset; the new one was shown once to %s.", self.env.user.name)
        )
        return password

    # -- business ----------------------------------------------------------------------------
    def _resume_provisioning(self):
        """Carry on with an account whose creation is pending or failed."""
        Job = self.env["fayvad.mail.job"].sudo()  # the API user may not write jobs
        for account in self:
            jobs = Job.search(
                [
                    ("account_id", "=", account.id),
                    ("job_type", "=", "create_mailbox"),
                    ("state", "in", ("pending", "failed")),
                ]
            )
            if not jobs:
                account._queue_provisioning()
                continue
            jobs.filtered(lambda j: j.state == "failed").action_retry()  # pending ones keep their schedule
            account.state = "provisioning"
            account.domain_id.organization_id._resume_provisioning()

    def _queue_provisioning(self):
        Job = self.env["fayvad.mail.job"]
        for account in self:
            account.state = "provisioning"
            domain_job = Job.search(
                [
                    ("domain_id", "=", account.domain_id.id),
                    ("job_type", "=", "create_domain"),
                    ("state", "in", ("pending", "failed")),
                ],
                limit=1,
            )
            Job._enqueue("create_mailbox", account=account, depends_on=domain_job)

    # -- its life on the mail server (run by the job queue; each step idempotent) --------------
    def _logins_allowed(self):
        """Whether the mailbox's logins should work on the mail server."""
        self.ensure_one()
        return self.state not in ("suspended", "terminated") and self.organization_id.state not in (
            "suspended",
            "terminated",
        )

    def _remote_mailbox(self, client):
        """The mailbox on the server: the one Odoo created (its remote id),
        never another that has its address now; None while it was never
        created there (creating it then applies Odoo's values)."""
        self.ensure_one()
        if self.remote_id:
            try:
                return client.get_mailbox(self.remote_id)
            except NotFound:
                raise NotFound(self.env._("%s is missing on the mail server.", self.email)) from None
        remote = client.find_mailbox(self.email)  # created before Odoo kept its id
        if remote is not None:
            self.remote_id = remote.id
        return remote

    def _mail_server_create(self, client, job):
        """Create the mailbox (or adopt the one an earlier attempt made), hand
        its pending password over, and make quota, logins and sending limit
        what Odoo says."""
        if self.state == "terminated":
            return
        org = self.organization_id
        quota = mb_ceil(self.quota)
        password = self._get_pending_password()
        if password is None:  # nobody chose one (or it was dropped): the mailbox says so
            self.password_dropped = True
        remote = client.ensure_mailbox(
            self.email,
            password or job._server()._password_policy().generate(),
            quota,
            first_name=self.first_name or "",
            last_name=self.last_name or "",
        )
        if not remote.created and password:
            client.update_mailbox(remote.id, password=password)  # it existed: hand the password over now
        if remote.quota_mb != quota:
            client.update_mailbox(remote.id, quota_mb=quota)
        if remote.active != self._logins_allowed():
            client.update_mailbox(remote.id, active=self._logins_allowed())
        if remote.message_limit != org._message_limit():
            client.update_mailbox(remote.id, message_limit=org._message_limit())
        self._wipe_pending_password()
        if password is not None and self.password_dropped:
            self.password_dropped = False
        vals = {"remote_id": remote.id}
        if self.state not in LIVE_ACCOUNT_STATES:
            vals["state"] = "suspended" if org.state == "suspended" else "active"
            if org.state == "suspended":
                vals["suspended_by"] = "organization"
        self.write(vals)
        self._start_service()  # billed from the day it exists on the server
        org._update_provisioning_state()

    def _mail_server_set_quota(self, client, job):
        if self.state == "terminated":
            return
        remote = self._remote_mailbox(client)
        quota = mb_ceil(self.quota)
        if remote and remote.quota_mb != quota:
            client.update_mailbox(remote.id, quota_mb=quota)

    def _mail_server_set_password(self, client, job):
        password = self._get_pending_password()
        if not password or self.state == "terminated":
            self._wipe_pending_password()
            return
        remote = self._remote_mailbox(client)
        if remote:  # else creating the mailbox hands it over
            client.update_mailbox(remote.id, password=password)
            self._wipe_pending_password()
            if self.password_dropped:
                self.password_dropped = False

    def _mail_server_set_login(self, client, job):
        """Suspending and lifting both set the login as Odoo says now, so
        they end right in whatever order they run."""
        if self.state == "terminated":
            return
        remote = self._remote_mailbox(client)
        if remote and remote.active != self._logins_allowed():
            client.update_mailbox(remote.id, active=self._logins_allowed())
            self.organization_id._mail_server_sync_aliases(client)

    def _mail_server_delete(self, client, job):
        """Delete the mailbox Odoo created (by its remote id) only."""
        if self.remote_id:
            client.delete_mailbox(self.remote_id)
        self.remote_id = False

    # -- quota alerts -------------------------------------------------------------------------
    def _quota_alert_organization(self):
        return self.organization_id

    def _quota_alert_figures(self):
        return (
            self.env._("The mailbox %s", self.email),
            f"{self.storage_used / MB:,.0f} MB",
            f"{self.quota / MB:,.0f} MB",
        )
