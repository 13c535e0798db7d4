import logging
import time
from datetime import timedelta

from psycopg2.extensions import TransactionRollbackError

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, config

from ..const import JOB_TYPES
from ..tools.backoff import backoff_delay
from ..tools.mailserver import BudgetSpent, MailServerError, Refused
from . import fayvad_mail_live_state, fayvad_mail_queue  # noqa: F401  (the mixins inherited below)

_logger = logging.getLogger(__name__)

BATCH_SIZE = 50  # jobs per cron call
RUNNER_BUDGET = 60.0  # seconds a cron call runs jobs at most (capped to half of Odoo's cron time limit)
ACQUIRE_CANDIDATES = 100  # due jobs looked at per acquisition


# job type: (the field of the record it changes, that record's step)
STEPS = {
    "create_domain": ("domain_id", "_mail_server_create"),
    "create_domain_admin": ("domain_id", "_mail_server_create_admin"),
    "create_mailbox": ("account_id", "_mail_server_create"),
    "set_quota": ("account_id", "_mail_server_set_quota"),
    "set_password": ("account_id", "_mail_server_set_password"),
    "suspend_account": ("account_id", "_mail_server_set_login"),
    "unsuspend_account": ("account_id", "_mail_server_set_login"),
    "delete_mailbox": ("account_id", "_mail_server_delete"),
    "suspend_organization": ("organization_id", "_mail_server_suspend"),
    "unsuspend_organization": ("organization_id", "_mail_server_unsuspend"),
    "terminate_organization": ("organization_id", "_mail_server_terminate"),
    "update_domain_quota": ("organization_id", "_mail_server_domain_quotas"),
    "update_sending_limits": ("organization_id", "_mail_server_sending_limits"),
    "create_alias": ("alias_id", "_mail_server_create"),
    "update_alias": ("alias_id", "_mail_server_create"),
    "delete_alias": ("alias_id", "_mail_server_delete"),
    "create_domain_alias": ("domain_alias_id", "_mail_server_create"),
    "update_domain_alias": ("domain_alias_id", "_mail_server_create"),
    "delete_domain_alias": ("domain_alias_id", "_mail_server_delete"),
}


class FayvadMailJob(models.Model):
    """One step to carry out on the mail server. Jobs are taken by the
    runner cron (several workers and hosts at once are safe: a job is
    locked by the worker that runs it), retried with backoff, and each
    step is idempotent on the server side: it reads what is there and does
    only what is missing, from Odoo's current values (not from the values
    at the time the job was queued)."""

    _name = "fayvad.mail.job"
    _description = "Provisioning Job"
    _inherit = ["mail.thread", "mail.activity.mixin", "fayvad.mail.live.state", "fayvad.mail.queue"]
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
    alias_id = fields.Many2one("fayvad.mail.alias", readonly=True, index="btree_not_null", ondelete="cascade")
    domain_alias_id = fields.Many2one(
        "fayvad.mail.domain.alias", readonly=True, index="btree_not_null", ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    mail_server_id = fields.Many2one("fayvad.mail.server", readonly=True, index=True, ondelete="restrict")
    depends_on_id = fields.Many2one(
        "fayvad.mail.job", string="Waits For", readonly=True, index="btree_not_null", ondelete="set null"
    )
    attempts = fields.Integer(readonly=True)
    max_attempts = fields.Integer(readonly=True, default=8)
    next_attempt_at = fields.Datetime(string="Next Try", readonly=True, index=True)
    last_error = fields.Text(readonly=True)
    refusal_reason = fields.Char(
        readonly=True, help="The mail server's own explanation of a refusal, as API callers are told it."
    )
    date_done = fields.Datetime(
        string="Finished On", readonly=True, index=True, help="When it succeeded, or failed for good."
    )
    failure_reason = fields.Char(
        compute="_compute_failure_reason",
        store=True,
        help="Why it failed for good, as failures are counted by reason (monitoring).",
    )
    duration_ms = fields.Integer(string="Last Duration (ms)", readonly=True)

    @api.depends(
        "job_type",
        "alias_id.address",
        "domain_alias_id.name",
        "account_id.email",
        "domain_id.name",
        "organization_id.name",
    )
    def _compute_name(self):
        labels = dict(JOB_TYPES)
        for job in self:
            target = (
                job.alias_id.address
                or job.domain_alias_id.name
                or job.account_id.email
                or job.domain_id.name
                or job.organization_id.name
                or ""
            )
            job.name = f"{labels.get(job.job_type, job.job_type)}: {target}"

    @api.depends("state", "refusal_reason", "last_error")
    def _compute_failure_reason(self):
        """The mail server's reason, else the first line of the error, at
        most 120 characters: failures with the same cause count together."""
        for job in self:
            if job.state != "failed":
                job.failure_reason = False
                continue
            lines = (job.last_error or "").strip().splitlines()
            job.failure_reason = (job.refusal_reason or (lines[0] if lines else "") or "unknown")[:120]

    @api.constrains("depends_on_id")
    def _check_no_dependency_cycle(self):
        """A job never waits, even through others, for itself: the queue
        would hold both (and their organization) for ever."""
        if self._has_cycle("depends_on_id"):
            raise ValidationError(self.env._("A job cannot wait for a job that waits for it."))

    @api.model_create_multi
    def create(self, vals_list):
        # a job is a line of a queue: its creation is no chatter news (its failures are)
        quiet = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True)
        return super(FayvadMailJob, quiet).create(vals_list).with_env(self.env)

    # -- queueing ----------------------------------------------------------------------
    @api.model
    def _enqueue(
        self,
        job_type,
        organization=None,
        domain=None,
        account=None,
        depends_on=None,
        alias=None,
        domain_alias=None,
    ):
        """Queue a step, unless the same step waits already and no worker
        runs it right now (then that job is returned: steps read Odoo's
        values when they run, so one job covers both requests). The runner
        is woken up so that the work starts at once."""
        alias = alias or self.env["fayvad.mail.alias"]
        domain_alias = domain_alias or self.env["fayvad.mail.domain.alias"]
        account = account or self.env["fayvad.mail.account"]
        domain = domain or alias.domain_id or domain_alias.domain_id or account.domain_id
        organization = organization or domain.organization_id
        existing = self._waiting_job(job_type, organization, domain, account, alias, domain_alias)
        if existing:
            return existing
        server = organization.mail_server_id
        vals = {
            "job_type": job_type,
            "organization_id": organization.id,
            "domain_id": domain.id,
            "account_id": account.id,
            "alias_id": alias.id,
            "domain_alias_id": domain_alias.id,
            "company_id": organization.company_id.id,
            "mail_server_id": server.id,
            "max_attempts": server.max_attempts or 8,
            "depends_on_id": depends_on.id if depends_on else False,
        }
        if depends_on and depends_on.state == "failed":  # fails with it, is retried with it
            vals.update(
                state="failed", last_error=self.env._("Waits for a job that failed: %s", depends_on.name)
            )
        job = self.sudo().create(vals)
        if job_type == "create_domain":
            # mailboxes queued earlier for this domain wait for it (and it does not wait for them)
            waiting = self.sudo().search(
                [
                    ("domain_id", "=", domain.id),
                    ("job_type", "=", "create_mailbox"),
                    ("state", "=", "pending"),
                    ("depends_on_id", "=", False),
                    ("id", "<", job.id),
                ]
            )
            waiting.depends_on_id = job
        self._trigger_runner()
        return job

    @api.model
    def _waiting_job(self, job_type, organization, domain, account, alias, domain_alias):
        """The same pending job, locked so no worker starts it before this
        transaction ends; none when a worker runs it now (its transaction
        may not see the change that is being queued)."""
        query = SQL(
            """
            SELECT id FROM fayvad_mail_job
             WHERE job_type = %s AND state = 'pending'
               AND organization_id IS NOT DISTINCT FROM %s
               AND domain_id IS NOT DISTINCT FROM %s
               AND account_id IS NOT DISTINCT FROM %s
               AND alias_id IS NOT DISTINCT FROM %s
               AND domain_alias_id IS NOT DISTINCT FROM %s
             ORDER BY id DESC
             LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED
            """,
            job_type,
            organization.id or None,
            domain.id or None,
            account.id or None,
            alias.id or None,
            domain_alias.id or None,
        )
        self.flush_model()
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(query)
                row = self.env.cr.fetchone()
        except TransactionRollbackError:  # a worker changed it since this transaction began
            return self.browse()
        return self.browse(row[0]) if row else self.browse()

    @api.model
    def _trigger_runner(self):
        """Have the runner go on at once, but in an API request (context
        key ``fayvad_mail_api``): that runs its jobs itself and wakes the
        runner for what it leaves, a second ahead (a trigger due now makes
        Odoo NOTIFY the cron workers at commit, on a second database
        connection); were it killed before, the runner's every-minute call
        takes them."""
        if not self.env.context.get("fayvad_mail_api"):
            self.env.ref("fayvad_mail.fayvad_mail_job_cron").sudo()._trigger()

    def _trigger_runner_at(self, when):
        """Wake the runner when a retry is due (cron triggers have 1 minute precision)."""
        self.env.ref("fayvad_mail.fayvad_mail_job_cron").sudo()._trigger(when)

    # -- UI actions ----------------------------------------------------------------------
    def action_retry(self):
        """Retry failed (or cancelled) jobs, with the failed jobs they wait
        for and the failed jobs that wait for them."""
        self.env["res.users"]._fayvad_require("admin")
        retried = self.filtered(lambda j: j.state in ("failed", "cancelled"))
        while True:
            related = retried.depends_on_id | self.search([("depends_on_id", "in", retried.ids)])
            more = related.filtered(lambda j: j.state == "failed") - retried
            if not more:
                break
            retried |= more
        retried.write(
            {
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": False,
                "last_error": False,
                "refusal_reason": False,
            }
        )
        for job in retried:
            job._target_state("provisioning")
        retried.activity_unlink(["mail.mail_activity_data_todo"])
        self._trigger_runner()
        return True

    def action_cancel(self):
        self.env["res.users"]._fayvad_require("admin")
        if self.filtered(lambda j: j.state == "done"):
            raise UserError(self.env._("A done job cannot be cancelled."))
        self.write({"state": "cancelled", "next_attempt_at": False})
        self._wipe_secrets()
        self.activity_unlink(["mail.mail_activity_data_todo"])
        return True

    def action_run_now(self):
        self.env["res.users"]._fayvad_require("admin")
        self.filtered(lambda j: j.state == "pending").write({"next_attempt_at": False})
        self._trigger_runner()
        return True

    # -- running ---------------------------------------------------------------------------
    def _due_query(self, job_ids=None, exclude=()):
        """Ids of the jobs that may run now: pending, due, whose dependency
        is over, and with no earlier pending job of the same organization.
        An organization's jobs thus run one at a time, in the order they
        were queued (a mailbox is created before its quota changes, a
        suspension before its lifting, and two workers never write the same
        organization at once), except that a job never waits for one that
        waits for it; different organizations run in parallel."""
        return SQL(
            """
            SELECT job.id FROM fayvad_mail_job job
             LEFT JOIN fayvad_mail_job dep ON dep.id = job.depends_on_id
             WHERE job.state = 'pending'
               AND (job.next_attempt_at IS NULL OR job.next_attempt_at <= %s)
               AND (dep.id IS NULL OR dep.state IN ('done', 'cancelled'))
               AND NOT EXISTS (
                   SELECT 1 FROM fayvad_mail_job prev
                    WHERE prev.state = 'pending'
                      AND prev.organization_id = job.organization_id
                      AND prev.id < job.id
                      AND prev.depends_on_id IS DISTINCT FROM job.id)
               %s
               %s
             ORDER BY job.id
             LIMIT %s
            """,
            fields.Datetime.now(),  # the clock next_attempt_at was set with (not the transaction's start)
            SQL("AND job.id IN %s", tuple(job_ids)) if job_ids else SQL(),
            SQL("AND job.id NOT IN %s", tuple(exclude)) if exclude else SQL(),
            ACQUIRE_CANDIDATES,
        )

    @api.model
    def _acquire(self, job_ids=None, exclude=()):
        """Lock and return one due job (or one of ``job_ids``), skipping jobs
        other workers hold; an empty recordset when none is free."""
        if job_ids is not None and not job_ids:
            return self.browse()
        return self._queue_take(self._due_query(job_ids, exclude), SQL("state = 'pending'"))

    @api.model
    def _runner_budget(self):
        """Seconds one cron call may spend running jobs: the
        ``fayvad_mail.job_runner_budget`` parameter (RUNNER_BUDGET by
        default), never more than half of Odoo's cron time limit."""
        value = self.env["ir.config_parameter"].sudo().get_param("fayvad_mail.job_runner_budget")
        try:
            budget = float(value) if value else RUNNER_BUDGET
        except ValueError:
            budget = RUNNER_BUDGET
        limit = config.get("limit_time_real_cron") or -1
        if limit is None or limit < 0:
            limit = config.get("limit_time_real") or 0
        return min(budget, limit / 2) if limit and limit > 0 else budget

    @api.model
    def _cron_run(self, limit=BATCH_SIZE):
        """Run due jobs, one transaction each (outside tests), until
        ``limit`` jobs ran or the time budget is spent. A job whose run
        raises outside its own bookkeeping (a bug, a database error) is
        rolled back, charged the attempt with backoff, and not taken again
        in this call."""

        def work(job):
            attempts = job.attempts
            try:
                with self.env.cr.savepoint():
                    job._run()
            except Exception as exc:  # the attempt is charged and backed off all the same
                _logger.exception("provisioning job %s could not be recorded", job.id)
                job._record_crash(attempts + 1, exc)

        done, spent = self._queue_work(
            lambda tried: self._acquire(exclude=tried), work, limit, self._runner_budget()
        )
        self.flush_model()
        self.env.cr.execute(SQL("SELECT count(*) FROM (%s) due", self._due_query()))
        remaining = self.env.cr.fetchone()[0]
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        if remaining and spent:
            self._trigger_runner()  # the budget ran out: go on in a new call
        return done

    def _record_crash(self, attempts, exc):
        """Charge a crashed run (its writes are rolled back) with plain SQL,
        as the ORM bookkeeping may be what failed; a crash that uses up the
        last attempt then fails the job as any failure does (its dependents,
        its password, the administrators' activity), in a savepoint of its
        own so that the charge stays even if that fails too."""
        self.ensure_one()
        message = f"{type(exc).__name__}: {exc}"[:2000]
        failed = attempts >= self.max_attempts
        retry_at = None if failed else fields.Datetime.now() + timedelta(seconds=backoff_delay(attempts))
        self.env.cr.execute(
            SQL(
                "UPDATE fayvad_mail_job SET attempts = %s, next_attempt_at = %s, last_error = %s, "
                "state = %s WHERE id = %s",
                attempts,
                retry_at,
                message,
                "failed" if failed else "pending",
                self.id,
            )
        )
        self.invalidate_recordset(["attempts", "next_attempt_at", "last_error", "state"])
        if failed:
            try:
                with self.env.cr.savepoint():
                    self._after_failure()
            except Exception:
                _logger.exception(
                    "provisioning job %s: failed, but its dependents could not be told", self.id
                )

    def _run(self, deadline=None):
        """Carry out this (locked) job once; record success or the error,
        with backoff for retryable errors. ``deadline`` (a
        ``time.monotonic()`` value) bounds every mail-server call, e.g. to
        an API request's budget. Returns the job's new state. A spent
        budget or a concurrent update is no failed attempt."""
        self.ensure_one()
        started = time.monotonic()
        self.attempts += 1
        try:
            with self.env.cr.savepoint():
                client = self._server()._client(deadline=deadline)
                self._step(client)
        except BudgetSpent as exc:  # not the server's fault: the cron carries on at once
            self.attempts -= 1
            self._record_failure(str(exc), retryable=True, delay=0)
        except TransactionRollbackError as exc:
            # another transaction (the usage cron, a user) wrote what the step
            # writes since this one began: the step is idempotent, so it runs
            # again at once in a fresh transaction
            _logger.info("provisioning job %s met a concurrent update, runs again: %s", self.id, exc.pgcode)
            self.attempts -= 1
            self._record_failure(self.env._("A concurrent update; run again."), retryable=True, delay=0)
        except MailServerError as exc:
            # a server that is down is waited for as long as it takes (CONTRACT.md, amendments):
            # only a refusal fails the job
            self._record_failure(
                str(exc),
                retryable=exc.retryable,
                reason=None if exc.retryable else exc.reason,
                until_cancelled=exc.retryable,
            )
        except Exception as exc:  # a bug or bad data: keep the job, tell people, never lose it
            _logger.exception("provisioning job %s crashed", self.id)
            self._record_failure(f"{type(exc).__name__}: {exc}", retryable=True)
        else:  # done: in its state and date, not in the chatter (which keeps failures and retries)
            self.with_context(mail_notrack=True).write(
                {
                    "state": "done",
                    "date_done": fields.Datetime.now(),
                    "last_error": False,
                    "next_attempt_at": False,
                }
            )
            if self.activity_ids:  # a job that kept failing made it at last
                self.activity_unlink(["mail.mail_activity_data_todo"])
        self.duration_ms = int((time.monotonic() - started) * 1000)
        return self.state

    def _server(self):
        server = self.mail_server_id or self.organization_id.mail_server_id
        if not server:
            raise Refused(self.env._("%s has no mail server.", self.organization_id.display_name))
        if not self.mail_server_id:
            self.mail_server_id = server
        return server

    def _record_failure(self, message, retryable, delay=None, reason=None, until_cancelled=False):
        """A failed run: retried with backoff while ``retryable`` and
        attempts are left, and for ever when ``until_cancelled`` (the mail
        server is down: the administrators are told once the attempts are
        used up, and the job waits on, its password kept, until it succeeds
        or a person cancels it); else the job fails for good."""
        if retryable and (until_cancelled or self.attempts < self.max_attempts):
            delay = backoff_delay(self.attempts) if delay is None else delay
            retry_at = fields.Datetime.now() + timedelta(seconds=delay)
            self.write({"last_error": message, "next_attempt_at": retry_at})
            self._trigger_runner_at(retry_at)
            _logger.info(
                "provisioning job %s: attempt %s failed, retry at %s", self.id, self.attempts, retry_at
            )
            if until_cancelled and self.attempts == self.max_attempts:
                self._notify_administrators(still_retrying=True)
            return
        self.write(
            {
                "state": "failed",
                "last_error": message,
                "next_attempt_at": False,
                "refusal_reason": reason,
                "date_done": fields.Datetime.now(),
            }
        )
        _logger.warning("provisioning job %s failed: %s", self.id, message)
        self._after_failure()

    def _after_failure(self):
        """What a job failing for good brings about: its password is
        dropped (and the mailbox says so), what it creates is failed, the
        administrators are told, and the jobs waiting for it fail with it."""
        self._wipe_secrets()
        self._target_state("failed")
        self._notify_administrators()
        self._fail_dependents()

    def _fail_dependents(self):
        """The pending jobs waiting for this failed one fail with it (else
        they would hold up their organization's queue); retrying this job
        retries them."""
        dependents = self.search([("depends_on_id", "in", self.ids), ("state", "=", "pending")])
        for job in dependents:
            job.write(
                {
                    "state": "failed",
                    "next_attempt_at": False,
                    "last_error": self.env._("Waits for a job that failed: %s", job.depends_on_id.name),
                    "refusal_reason": job.depends_on_id.refusal_reason,
                    "date_done": fields.Datetime.now(),
                }
            )
            job._target_state("failed")
        dependents._wipe_secrets()
        if dependents:
            dependents._fail_dependents()

    def _wipe_secrets(self):
        """A job that will not run again drops the mailbox password it was
        to hand over (a request that resumes the account sends it again);
        the mailbox then says that its password never reached the server."""
        handing_over = self.filtered(lambda j: j.job_type in ("create_mailbox", "set_password"))
        handing_over.account_id._drop_pending_password()

    def _target_state(self, state):
        """Reflect a provisioning failure (or retry) on what the job creates."""
        if self.job_type == "create_mailbox" and self.account_id.state in ("provisioning", "failed"):
            self.account_id.state = state
        elif self.job_type == "create_alias" and self.alias_id.state in ("provisioning", "failed"):
            self.alias_id.state = state
        elif self.job_type == "create_domain_alias" and self.domain_alias_id.state in (
            "provisioning",
            "failed",
        ):
            self.domain_alias_id.state = state
        elif self.job_type in ("create_domain", "create_domain_admin") and self.domain_id.state in (
            "provisioning",
            "failed",
        ):
            self.domain_id.state = state
        if state == "failed" and self.organization_id.state == "provisioning":
            self.organization_id.state = "failed"
        if state == "failed" and self.job_type in ("create_domain", "create_domain_admin"):
            self.organization_id._stop_failed_service()  # a failed provisioning charges nothing
        elif state == "provisioning" and self.organization_id.state == "failed":
            self.organization_id.state = "provisioning"

    def _notify_administrators(self, still_retrying=False):
        """A to-do activity on the job for each mail hosting administrator:
        it failed for good, or (``still_retrying``) it used up its attempts
        against a server that does not answer and goes on trying."""
        users = self.env["res.users"]._fayvad_members("admin")
        if still_retrying:
            summary = self.env._("Provisioning keeps failing: %s", self.name)
            note = self.env._(
                "The mail server does not answer: %s. The job goes on trying (at most an hour apart) "
                "until it succeeds or you cancel it.",
                self.last_error or "",
            )
        else:
            summary = self.env._("Provisioning failed: %s", self.name)
            note = self.env._("The mail server refused or kept failing: %s", self.last_error or "")
        for user in users:
            self.activity_schedule(
                "mail.mail_activity_data_todo", user_id=user.id, summary=summary, note=note
            )

    # -- what each job does: a step of the record it changes ----------------------------------
    def _step(self, client):
        """Run the job's step: a method of the record it changes (its life on
        the mail server is written next to it), idempotent on the server."""
        field, method = STEPS[self.job_type]
        getattr(self[field], method)(client, self)
