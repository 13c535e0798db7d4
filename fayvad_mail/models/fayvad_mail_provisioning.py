import contextlib
import logging
import time
from datetime import timedelta

from psycopg2 import errors as pg_errors

from odoo import fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..tools.api_errors import ApiError, validation_error
from ..tools.units import MB

_logger = logging.getLogger(__name__)

DEFAULT_BUDGET = 8.0  # seconds an API request waits for the mail server
LOCK_NAMESPACE = 1718  # advisory locks of fayvad_mail's organizations (first key of the pair)
DOMAIN_JOBS = ("create_domain", "create_domain_admin")
RECORDS = {  # what a provisioning route's jobs point to: (job field, model)
    "email_account": ("account_id", "fayvad.mail.account"),
    "alias": ("alias_id", "fayvad.mail.alias"),
    "domain_alias": ("domain_alias_id", "fayvad.mail.domain.alias"),
}
KINDS = {  # what a provisioning route creates: (create method, model)
    "organization": ("_create_organization", "fayvad.mail.organization"),
    "email_account": ("_create_email_account", "fayvad.mail.account"),
    "alias": ("_create_alias", "fayvad.mail.alias"),
    "domain_alias": ("_create_domain_alias", "fayvad.mail.domain.alias"),
}


class FayvadMailProvisioning(models.AbstractModel):
    """What the provisioning routes and the portal do: create the records and
    their jobs in one transaction, then run the jobs at once within a time
    budget; the record and its outcome ("done", "pending", "failed") are
    returned, and the caller shapes its answer (controllers/answers.py: 201,
    202, 500).

    All of it runs on the request's own connection, committing as it goes
    (``_commit``): a request never needs a second connection while it holds one."""

    _name = "fayvad.mail.provisioning"
    _description = "Provisioning API"

    def _commit(self, why):
        """The one way provisioning ends a transaction, on the request's own
        connection. Its boundaries: before looking for what exists (a fresh
        snapshot), once the organization's lock is held (a snapshot taken
        after it), after creating the records (every worker sees them
        before their jobs run), after each job's run (its outcome, its lock
        released), and after an identical request's unique key met ours.
        Nothing accepted is ever lost: what was committed stays, the jobs
        finish it."""
        _logger.debug("provisioning: commit (%s)", why)
        self.env.cr.commit()  # pylint: disable=invalid-commit

    def _provision(self, kind, data):
        """Create what ``data`` (validated) describes and run its jobs: the
        API's path, and the customer portal's. Returns (record, outcome),
        outcome being ``(state, reason)``: "done", "pending" or "failed"
        (with the mail server's reason when it gave one)."""
        create, model = KINDS[kind]
        self._commit("a fresh snapshot to look for what exists")
        with self._organization_lock(data.get("organization_id")):
            for attempt in range(2):
                try:
                    with self.env.cr.savepoint():
                        record_id = getattr(self, create)(data)
                    break
                except pg_errors.UniqueViolation:
                    self._commit("an identical request created it at the same moment: look again")
                    self.env.invalidate_all()
                    if attempt:
                        raise
            self._commit("every worker sees the records now")
        self._run_jobs(kind, record_id, self._budget())
        self.env.invalidate_all()  # what the jobs (or the cron, meanwhile) changed
        record = self.env[model].with_context(active_test=False).browse(record_id)
        return record, self._outcome(kind, record)

    @contextlib.contextmanager
    def _organization_lock(self, org_id):
        """Serialise the requests that add to one organization (its limits are
        checked against what exists): the lock is taken on this connection
        before the transaction's snapshot, so a request that waited for
        another sees what that one created. Nothing to lock for a new
        organization."""
        if not org_id:
            yield
            return
        key = SQL("pg_advisory_lock(%s, %s)", LOCK_NAMESPACE, org_id)
        self.env.cr.execute(SQL("SELECT %s", key))
        try:
            self._commit("a fresh snapshot, taken now that the lock is ours")
            self.env.invalidate_all()
            yield
        finally:
            unlock = SQL("SELECT pg_advisory_unlock(%s, %s)", LOCK_NAMESPACE, org_id)
            try:
                self.env.cr.execute(unlock)
            except pg_errors.Error:  # the transaction failed: end it, the lock must not outlive the request
                self.env.cr.rollback()
                self.env.cr.execute(unlock)

    def _budget(self):
        value = self.env["ir.config_parameter"].sudo().get_param("fayvad_mail.api_time_budget")
        try:
            return float(value) if value else DEFAULT_BUDGET
        except ValueError:
            return DEFAULT_BUDGET

    # -- organizations -------------------------------------------------------------------
    def _create_organization(self, data):
        Org = self.env["fayvad.mail.organization"]
        partner = self.env["res.partner"].browse(data["odoo_customer_id"]).exists()
        if not partner or partner.company_id not in (self.env.company, self.env["res.company"]):
            raise validation_error({"organization_data.odoo_customer_id": ["No Odoo customer with this id."]})
        plan = self.env["fayvad.mail.plan"]
        if data["plan_id"]:
            # a plan of the organization's company (another company's would break its rules)
            plan = plan.search([("id", "=", data["plan_id"]), ("company_id", "=", self.env.company.id)])
            if not plan:
                raise validation_error(
                    {"organization_data.plan_id": ["No active subscription plan with this id."]}
                )
        domain = self.env["fayvad.mail.domain"].sudo().search([("name", "=", data["domain"])], limit=1)
        if domain:
            org = domain.organization_id
            if org.partner_id == partner and org.state in ("draft", "provisioning", "failed"):
                org._resume_provisioning()
                return org.id
            raise ApiError(
                400,
                "ORGANIZATION_ALREADY_EXISTS",
                f"An organization with the domain {data['domain']} already exists",
            )
        if (
            self.env["fayvad.mail.domain.alias"]
            .sudo()
            .search_count([("name", "=", data["domain"]), ("state", "!=", "terminated")], limit=1)
        ):
            raise ApiError(
                400,
                "ORGANIZATION_ALREADY_EXISTS",
                f"The domain {data['domain']} is already a domain alias of an organization",
            )
        if Org.sudo().with_context(active_test=False).search_count([("partner_id", "=", partner.id)]):
            raise ApiError(
                400,
                "ODOO_CUSTOMER_ID_EXISTS",
                f"Odoo customer {partner.id} already has a mail hosting organization",
            )
        self._update_contact(partner, data["contact_info"])
        vals = {
            "name": data["name"],
            "partner_id": partner.id,
            "plan_id": plan.id,
            "max_users": data["max_users"] or plan.max_users or 10,
            "max_storage_gb": data["max_storage_gb"] or plan.max_storage_gb or 50,
        }
        if plan:
            vals["default_mailbox_quota_mb"] = plan.default_mailbox_quota_mb
            vals["max_aliases"] = plan.max_aliases
            vals["max_domain_aliases"] = plan.max_domain_aliases
        try:
            org = Org.create(vals)
            self.env["fayvad.mail.domain"].create({"name": data["domain"], "organization_id": org.id})
        except ValidationError as exc:
            _logger.info("organization request refused by a constraint: %s", exc.args[0])
            raise validation_error(
                {"organization_data": ["The organization breaks one of Odoo's rules; nothing was created."]}
            ) from None
        if plan:
            self.env["fayvad.mail.subscription"]._start(org, plan)
        org._queue_provisioning()
        return org.id

    @staticmethod
    def _update_contact(partner, contact):
        """Fill the customer's e-mail, phone and address where they are empty."""
        vals = {}
        if contact["primary_email"] and not partner.email:
            vals["email"] = contact["primary_email"]
        if contact["phone"] and not partner.phone:
            vals["phone"] = contact["phone"]
        if contact["address"] and not (partner.street or partner.city or partner.zip):
            vals["street"] = contact["address"]
        if vals:
            partner.sudo().write(vals)

    def _organization_and_domain(self, data):
        """The request's organization and one of its domains, or a 404."""
        org = self.env["fayvad.mail.organization"].search([("id", "=", data["organization_id"])])
        if not org:
            raise ApiError(404, "ORGANIZATION_NOT_FOUND", f"Organization {data['organization_id']} not found")
        domain = org.domain_ids.filtered(lambda d: d.id == data["domain_id"])
        if not domain:
            raise ApiError(
                404,
                "DOMAIN_NOT_FOUND",
                f"Domain {data['domain_id']} is not a domain of organization {org.id}",
            )
        return org, domain

    # -- email accounts -----------------------------------------------------------------------
    def _create_email_account(self, data):
        org, domain = self._organization_and_domain(data)
        email = f"{data['address']}@{domain.name}"
        Account = self.env["fayvad.mail.account"].with_context(active_test=False)
        server = org.sudo().mail_server_id
        if data["password"] is not None:
            problems = server._password_policy().problems(data["password"])
            if problems:  # the server would refuse it: refuse it now, before anything exists
                raise validation_error({"email_account_data.user_info.password": problems})
        existing = Account.sudo().search([("email", "=", email)], limit=1)
        if existing:
            if existing.organization_id == org and existing.state in ("draft", "provisioning", "failed"):
                if data["password"]:
                    existing._set_pending_password(data["password"])
                existing._resume_provisioning()
                return existing.id
            raise ApiError(400, "EMAIL_ACCOUNT_ALREADY_EXISTS", f"The email account {email} already exists")
        alias = self.env["fayvad.mail.alias"].sudo().with_context(active_test=False)
        if alias.search_count(
            [("address", "=", email), ("kind", "!=", "forward"), ("state", "!=", "terminated")], limit=1
        ):
            raise ApiError(400, "EMAIL_ACCOUNT_ALREADY_EXISTS", f"The address {email} is already an alias")
        org._lock_for_update()
        self._check_room(org, data)
        account = self._create_within_rules(
            Account,
            {
                "local_part": data["address"],
                "domain_id": domain.id,
                "quota": data["quota"] or org.default_mailbox_quota_mb * MB,
                "first_name": data["first_name"] or False,
                "last_name": data["last_name"] or False,
            },
            "email_account_data",
            "The account breaks one of the organization's rules (limits or state); nothing was created.",
        )
        account._set_pending_password(data["password"] or server._password_policy().generate())
        account._queue_provisioning()
        return account.id

    @staticmethod
    def _check_room(org, data):
        """The organization's state and limits (``_room_problems``), as field errors."""
        if org.state in ("suspended", "terminated"):
            raise validation_error(
                {
                    "email_account_data.organization_id": [
                        f"The organization is {org.state}: it accepts no new accounts."
                    ]
                }
            )
        problems = org._room_problems(users=1, storage=data["quota"] or org.default_mailbox_quota_mb * MB)
        if problems:
            fields = {"users": "email_account_data.organization_id", "storage": "email_account_data.quota"}
            raise validation_error({fields[kind]: [message] for kind, message in problems.items()})

    # -- aliases and catch-alls ---------------------------------------------------------------------
    def _create_alias(self, data):
        org, domain = self._organization_and_domain(data)
        address = f"{data['address']}@{domain.name}"
        Alias = self.env["fayvad.mail.alias"].sudo().with_context(active_test=False)
        existing = Alias.search([("address", "=", address), ("state", "!=", "terminated")], limit=1)
        if existing:
            same = existing.organization_id == org and existing._recipient_list() == data["recipients"]
            if same and existing.state in ("draft", "provisioning", "failed"):  # a retried request
                existing._resume_provisioning()
                return existing.id
            raise ApiError(400, "ALIAS_ALREADY_EXISTS", f"The address {address} is already an alias")
        mailbox = self.env["fayvad.mail.account"].sudo().search_count([("email", "=", address)], limit=1)
        if mailbox:
            raise ApiError(400, "ALIAS_ALREADY_EXISTS", f"The address {address} is a mailbox")
        self._check_open(org, "alias_data.organization_id", "aliases")
        alias = self._create_within_rules(
            self.env["fayvad.mail.alias"],
            {
                "kind": "alias" if data["address"] else "catchall",
                "local_part": data["address"] or False,
                "domain_id": domain.id,
                "recipients": "\n".join(data["recipients"]),
                "description": data["description"] or False,
            },
            "alias_data",
            "The alias breaks one of the organization's rules; nothing was created.",
        )
        alias._queue_provisioning()
        return alias.id

    def _create_within_rules(self, model, vals, field, message):
        """``model.create(vals)``; a constraint that refuses it is the
        caller's 400 on ``field`` with ``message`` (the constraint's own
        words, which may name other customers' data, go to the log)."""
        try:
            record = model.create(vals)
            self.env.flush_all()  # the constraints on computed fields (its address) run now
            return record
        except ValidationError as exc:
            _logger.info("%s request refused by a constraint: %s", model._name, exc.args[0])
            raise validation_error({field: [message]}) from None

    def _check_open(self, org, field, kind):
        """Lock ``org`` and refuse one more of ``kind`` (aliases,
        domain_aliases) when it is suspended, terminated or at its limit."""
        org._lock_for_update()
        if org.state in ("suspended", "terminated"):
            noun = kind.replace("_", " ")
            raise validation_error({field: [f"The organization is {org.state}: it accepts no new {noun}."]})
        problem = org._room_problems(**{kind: 1}).get(kind)
        if problem:
            raise validation_error({field: [problem]})

    # -- domain aliases ---------------------------------------------------------------------------
    def _create_domain_alias(self, data):
        org, domain = self._organization_and_domain(data)
        name = data["name"]
        if self.env["fayvad.mail.domain"].sudo().search_count([("name", "=", name)], limit=1):
            raise ApiError(
                400, "ORGANIZATION_ALREADY_EXISTS", f"The domain {name} is already an organization's domain"
            )
        DomainAlias = self.env["fayvad.mail.domain.alias"].sudo().with_context(active_test=False)
        existing = DomainAlias.search([("name", "=", name), ("state", "!=", "terminated")], limit=1)
        if existing:
            if existing.domain_id == domain and existing.state in ("draft", "provisioning", "failed"):
                existing._resume_provisioning()  # a retried request
                return existing.id
            raise ApiError(400, "ORGANIZATION_ALREADY_EXISTS", f"The domain {name} is already a domain alias")
        self._check_open(org, "domain_alias_data.organization_id", "domain_aliases")
        alias = self._create_within_rules(
            self.env["fayvad.mail.domain.alias"],
            {"name": name, "domain_id": domain.id},
            "domain_alias_data",
            "The domain alias breaks one of Odoo's rules; nothing was created.",
        )
        alias._queue_provisioning()
        return alias.id

    # -- running ---------------------------------------------------------------------------------
    def _outcome(self, kind, record):
        """(state, reason) of what a request created: "failed" when one of
        its jobs failed for good (with the mail server's reason), "done" once
        it exists on the mail server, else "pending"."""
        if kind == "organization":  # its first domain's creation on the mail server
            domain = record.domain_ids.sorted("id")[:1]
            jobs = record.job_ids.filtered(lambda j: j.job_type in DOMAIN_JOBS and j.domain_id == domain)
        else:
            jobs = self.env["fayvad.mail.job"].search(self._jobs_of(kind, record.id))
        failed = jobs.filtered(lambda j: j.state == "failed")
        if failed:
            return "failed", failed[0].refusal_reason
        if kind == "organization":
            domain = record.domain_ids.sorted("id")[:1]
            done = bool(domain.remote_id and domain.dkim_public_key and domain.admin_created)
        elif kind == "email_account":
            done = bool(record.remote_id) and record.state in ("active", "suspended")
        else:
            done = bool(record.remote_id) and record.state == "active"
        return ("done" if done else "pending"), None

    def _run_jobs_now(self, kind, record_id):
        """After a change (the portal's) to a record (``kind``:
        "organization", "email_account"): commit it, then run its jobs at
        once within the request's budget, as the API does."""
        self._commit("the change, before its jobs run")
        self._run_jobs(kind, record_id, self._budget())
        self.env.invalidate_all()

    def _record(self, kind, record_id):
        return self.env[RECORDS[kind][1]].sudo().with_context(active_test=False).browse(record_id)

    def _jobs_of(self, kind, record_id):
        """The domain of the jobs a request waits for: the record's own,
        and those of its domain on the mail server."""
        if kind == "organization":
            return [("organization_id", "=", record_id)]
        return [
            "|",
            (RECORDS[kind][0], "=", record_id),
            "&",
            ("domain_id", "=", self._record(kind, record_id).domain_id.id),
            ("job_type", "in", DOMAIN_JOBS),
        ]

    def _run_jobs(self, kind, record_id, budget):
        """Run the record's due jobs now, one transaction each, until done
        or the budget is spent; the cron finishes what is left."""
        deadline = time.monotonic() + budget
        Job = self.env(su=True)["fayvad.mail.job"]
        jobs = [("state", "=", "pending"), *self._jobs_of(kind, record_id)]
        while deadline - time.monotonic() > 0.2:
            self.env.invalidate_all()  # jobs other workers changed since the last commit
            candidates = Job.search(jobs)
            job = Job._acquire(job_ids=candidates.ids) if candidates else Job
            if not job:
                break
            job._run(deadline=deadline)
            self._commit("the job's outcome, and its lock released")
        org_id = record_id if kind == "organization" else self._record(kind, record_id).organization_id.id
        if Job.search_count([("state", "=", "pending"), ("organization_id", "=", org_id)], limit=1):
            # a job not due yet, held by another worker or queued on the way: the cron's
            Job._trigger_runner_at(fields.Datetime.now() + timedelta(seconds=1))
