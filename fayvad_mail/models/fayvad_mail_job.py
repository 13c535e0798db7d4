import logging
import math
import random
import threading
import time
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools.mailserver import MailServerError, Refused
from .fayvad_mail_account import generate_password
from .fayvad_mail_organization import GB, MB

_logger = logging.getLogger(__name__)

JOB_TYPES = [
    ("create_domain", "Create domain (DKIM on)"),
    ("create_domain_admin", "Create domain administrator"),
    ("create_mailbox", "Create mailbox"),
    ("set_quota", "Change mailbox quota"),
    ("set_password", "Hand over mailbox password"),
    ("suspend_account", "Suspend mailbox"),
    ("unsuspend_account", "Unsuspend mailbox"),
    ("delete_mailbox", "Delete mailbox"),
    ("suspend_organization", "Suspend organization"),
    ("unsuspend_organization", "Unsuspend organization"),
    ("terminate_organization", "Terminate organization"),
    ("update_domain_quota", "Change domain quota"),
]
BACKOFF_BASE = 30  # seconds before the first retry
BACKOFF_MAX = 3600  # never wait more than an hour between attempts
BATCH_SIZE = 50


def backoff_delay(attempts, rng=random):
    """Seconds to wait after ``attempts`` failed tries: exponential, capped,
    with full jitter between half and all of it (several workers retrying
    the same outage spread out)."""
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rng.random() / 2)


def mb_ceil(size_bytes):
    return max(1, math.ceil(size_bytes / MB))


class FayvadMailJob(models.Model):
    """One step to carry out on the mail server. Jobs are taken by the
    runner cron (several workers and hosts at once are safe: a job is
    locked by the worker that runs it), retried with backoff, and each
    step is idempotent on the server side."""

    _name = "fayvad.mail.job"
    _description = "Provisioning Job"
    _inherit = ["mail.thread"]
    _order = "id desc"

    name = fields.Char(compute="_compute_name", store=True)
    job_type = fields.Selection(JOB_TYPES, required=True, readonly=True, index=True)
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Done"), ("failed", "Failed"), ("cancelled", "Cancelled")],
        default="pending",
        required=True,
        index=True,
        tracking=True,
    )
    organization_id = fields.Many2one(
        "fayvad.mail.organization", readonly=True, index=True, ondelete="cascade"
    )
    domain_id = fields.Many2one("fayvad.mail.domain", readonly=True, index=True, ondelete="cascade")
    account_id = fields.Many2one("fayvad.mail.account", readonly=True, index=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    mail_server_id = fields.Many2one("fayvad.mail.server", readonly=True, ondelete="restrict")
    depends_on_id = fields.Many2one("fayvad.mail.job", string="Waits For", readonly=True, ondelete="set null")
    attempts = fields.Integer(readonly=True)
    max_attempts = fields.Integer(readonly=True, default=8)
    next_attempt_at = fields.Datetime(string="Next Try", readonly=True, index=True)
    last_error = fields.Text(readonly=True)
    date_done = fields.Datetime(readonly=True)
    duration_ms = fields.Integer(string="Last Duration (ms)", readonly=True)

    @api.depends("job_type", "account_id.email", "domain_id.name", "organization_id.name")
    def _compute_name(self):
        labels = dict(JOB_TYPES)
        for job in self:
            target = job.account_id.email or job.domain_id.name or job.organization_id.name or ""
            job.name = f"{labels.get(job.job_type, job.job_type)}: {target}"

    # -- queueing ----------------------------------------------------------------------
    @api.model
    def _enqueue(self, job_type, organization=None, domain=None, account=None, depends_on=None):
        """Queue a step, unless the same step is already waiting (then that
        job is returned)."""
        account = account or self.env["fayvad.mail.account"]
        domain = domain or account.domain_id
        organization = organization or domain.organization_id
        existing = self.search(
            [
                ("job_type", "=", job_type),
                ("state", "=", "pending"),
                ("organization_id", "=", organization.id),
                ("domain_id", "=", domain.id),
                ("account_id", "=", account.id),
            ],
            limit=1,
        )
        if existing:
            return existing
        server = organization.mail_server_id
        return self.sudo().create(
            {
                "job_type": job_type,
                "organization_id": organization.id,
                "domain_id": domain.id,
                "account_id": account.id,
                "company_id": organization.company_id.id,
                "mail_server_id": server.id,
                "max_attempts": server.max_attempts or 8,
                "depends_on_id": depends_on.id if depends_on else False,
            }
        )

    @api.model
    def _trigger_runner(self):
        self.env.ref("fayvad_mail.fayvad_mail_job_cron").sudo()._trigger()

    # -- UI actions ----------------------------------------------------------------------
    def action_retry(self):
        self.filtered(lambda j: j.state in ("failed", "cancelled")).write(
            {"state": "pending", "attempts": 0, "next_attempt_at": False, "last_error": False}
        )
        for job in self:
            job._target_state("provisioning")
        self._trigger_runner()
        return True

    def action_cancel(self):
        if self.filtered(lambda j: j.state == "done"):
            raise UserError(self.env._("A done job cannot be cancelled."))
        self.write({"state": "cancelled", "next_attempt_at": False})
        return True

    def action_run_now(self):
        self.filtered(lambda j: j.state == "pending").write({"next_attempt_at": False})
        self._trigger_runner()
        return True

    # -- running ---------------------------------------------------------------------------
    @api.model
    def _acquire(self, job_ids=None):
        """Lock and return one due job (or one of ``job_ids``), skipping jobs
        other workers hold; an empty recordset when none is free."""
        query = SQL(
            """
            SELECT job.id FROM fayvad_mail_job job
             LEFT JOIN fayvad_mail_job dep ON dep.id = job.depends_on_id
             WHERE job.state = 'pending'
               AND (job.next_attempt_at IS NULL OR job.next_attempt_at <= (now() AT TIME ZONE 'UTC'))
               AND (dep.id IS NULL OR dep.state IN ('done', 'cancelled'))
               %s
             ORDER BY job.id
             LIMIT 1
               FOR NO KEY UPDATE OF job SKIP LOCKED
            """,
            SQL("AND job.id IN %s", tuple(job_ids)) if job_ids else SQL(),
        )
        self.env.cr.execute(query)
        row = self.env.cr.fetchone()
        return self.browse(row[0]) if row else self.browse()

    @api.model
    def _cron_run(self, limit=BATCH_SIZE):
        """Run due jobs, one transaction each, at most ``limit`` of them."""
        testing = getattr(threading.current_thread(), "testing", False)
        done = 0
        while done < limit:
            job = self._acquire()
            if not job:
                break
            job._run()
            done += 1
            if not testing:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        remaining = self.search_count([("state", "=", "pending")])
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return done

    def _run(self, timeout=None):
        """Carry out this (locked) job once; record success or the error,
        with backoff for retryable errors. Returns the job's new state."""
        self.ensure_one()
        started = time.monotonic()
        self.attempts += 1
        try:
            with self.env.cr.savepoint():
                client = self.mail_server_id._client(timeout=timeout)
                getattr(self, f"_step_{self.job_type}")(client)
        except MailServerError as exc:
            self._record_failure(str(exc), retryable=exc.retryable)
        except Exception as exc:  # a bug or bad data: keep the job, tell people, never lose it
            _logger.exception("provisioning job %s crashed", self.id)
            self._record_failure(f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            self.write(
                {
                    "state": "done",
                    "date_done": fields.Datetime.now(),
                    "last_error": False,
                    "next_attempt_at": False,
                }
            )
        self.duration_ms = int((time.monotonic() - started) * 1000)
        return self.state

    def _record_failure(self, message, retryable):
        if retryable and self.attempts < self.max_attempts:
            delay = backoff_delay(self.attempts)
            self.write(
                {"last_error": message, "next_attempt_at": fields.Datetime.now() + timedelta(seconds=delay)}
            )
            return
        self.write({"state": "failed", "last_error": message, "next_attempt_at": False})
        self._target_state("failed")
        self._notify_administrators()

    def _target_state(self, state):
        """Reflect a provisioning failure (or retry) on what the job creates."""
        if self.job_type == "create_mailbox" and self.account_id.state in ("provisioning", "failed"):
            self.account_id.state = state
        elif self.job_type in ("create_domain", "create_domain_admin") and self.domain_id.state in (
            "provisioning",
            "failed",
        ):
            self.domain_id.state = state
        if state == "failed" and self.organization_id.state == "provisioning":
            self.organization_id.state = "failed"
        elif state == "provisioning" and self.organization_id.state == "failed":
            self.organization_id.state = "provisioning"

    def _notify_administrators(self):
        group = self.env.ref("fayvad_mail.fayvad_mail_group_admin")
        users = group.users.filtered(
            lambda u: not u.share and u.active and u.id != self.env.ref("base.user_root").id
        )
        target = self.organization_id or self
        for user in users[:5]:
            target.activity_schedule(
                "mail.mail_activity_data_todo",
                user_id=user.id,
                summary=self.env._("Provisioning failed: %s", self.name),
                note=self.env._("The mail server refused or kept failing: %s", self.last_error or ""),
            )

    # -- steps (each idempotent on the mail server) ---------------------------------------------
    def _step_create_domain(self, client):
        domain, org = self.domain_id, self.organization_id
        remote = client.ensure_domain(
            domain.name,
            quota_mb=mb_ceil(org.max_storage_gb * GB),
            default_mailbox_quota_mb=org.default_mailbox_quota_mb,
        )
        domain.write(
            {
                "remote_id": remote.id,
                "dkim_selector": remote.dkim_selector or domain.dkim_selector,
                "dkim_public_key": remote.dkim_public_key or domain.dkim_public_key,
                "state": "active",
            }
        )
        if not remote.dkim_public_key:
            raise MailServerError(f"{domain.name}: the DKIM key is not generated yet")
        self._enqueue("create_domain_admin", domain=domain, depends_on=self)
        org._update_provisioning_state()

    def _step_create_domain_admin(self, client):
        domain = self.domain_id
        client.ensure_domain_admin(domain.name, f"admin@{domain.name}", generate_password())
        domain.admin_created = True
        self.organization_id._update_provisioning_state()

    def _step_create_mailbox(self, client):
        account = self.account_id
        if account.state == "terminated":
            return
        password = account._get_pending_password() or generate_password()
        remote = client.ensure_mailbox(
            account.email,
            password,
            mb_ceil(account.quota),
            first_name=account.first_name or "",
            last_name=account.last_name or "",
        )
        if remote.quota_mb != mb_ceil(account.quota):
            client.update_mailbox(remote.id, quota_mb=mb_ceil(account.quota))
        if account.organization_id.state == "suspended" and remote.active:
            client.update_mailbox(remote.id, active=False)
        account._wipe_pending_password()
        account.write(
            {
                "remote_id": remote.id,
                "state": "suspended" if account.organization_id.state == "suspended" else "active",
            }
        )
        account.organization_id._update_provisioning_state()

    def _remote_mailbox_id(self, client):
        account = self.account_id
        if account.remote_id:
            return account.remote_id
        remote = client.find_mailbox(account.email)
        if not remote:
            raise Refused(f"{account.email} does not exist on the mail server")
        account.remote_id = remote.id
        return remote.id

    def _step_set_quota(self, client):
        client.update_mailbox(self._remote_mailbox_id(client), quota_mb=mb_ceil(self.account_id.quota))

    def _step_set_password(self, client):
        password = self.account_id._get_pending_password()
        if password:
            client.update_mailbox(self._remote_mailbox_id(client), password=password)
        self.account_id._wipe_pending_password()

    def _step_suspend_account(self, client):
        client.update_mailbox(self._remote_mailbox_id(client), active=False)

    def _step_unsuspend_account(self, client):
        client.update_mailbox(self._remote_mailbox_id(client), active=True)

    def _step_delete_mailbox(self, client):
        account = self.account_id
        remote_id = account.remote_id or getattr(client.find_mailbox(account.email), "id", None)
        if remote_id:
            client.delete_mailbox(remote_id)
        account.remote_id = False

    def _org_mailboxes(self, client):
        """The organization's mailboxes on the server, by Odoo account."""
        accounts = self.organization_id.with_context(active_test=False).account_ids
        return [
            (account, account.remote_id or getattr(client.find_mailbox(account.email), "id", None))
            for account in accounts
        ]

    def _step_suspend_organization(self, client):
        """Soft suspension: logins blocked (mailboxes disabled), the domain
        stays enabled so mail is still received."""
        for account, remote_id in self._org_mailboxes(client):
            if remote_id and account.state in ("active", "suspended"):
                client.update_mailbox(remote_id, active=False)
                account.state = "suspended"

    def _step_unsuspend_organization(self, client):
        if self.organization_id.state == "suspended":
            return  # suspended again since: nothing to lift
        for account, remote_id in self._org_mailboxes(client):
            if remote_id and account.state == "suspended":
                client.update_mailbox(remote_id, active=True)
                account.state = "active"

    def _step_terminate_organization(self, client):
        """Accounts first, then the domains (Modoboa keeps a deleted
        domain's accounts otherwise)."""
        for account, remote_id in self._org_mailboxes(client):
            if remote_id:
                client.delete_mailbox(remote_id)
            account.write({"state": "terminated", "active": False, "remote_id": False})
            account._wipe_pending_password()
        for domain in self.organization_id.domain_ids:
            remote = client.find_domain(domain.name)
            if remote:
                client.delete_domain(remote.id)
            domain.write({"state": "terminated", "remote_id": False})

    def _step_update_domain_quota(self, client):
        org = self.organization_id
        for domain in org.domain_ids.filtered(lambda d: d.state == "active"):
            remote = client.find_domain(domain.name)
            if remote:
                client.update_domain(
                    remote.id,
                    quota_mb=mb_ceil(org.max_storage_gb * GB),
                    default_mailbox_quota_mb=org.default_mailbox_quota_mb,
                )
