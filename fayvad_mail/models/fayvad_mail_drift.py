import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..const import LIVE_ACCOUNT_STATES
from ..tools.mailserver import MailServerError
from ..tools.mailserver.drift import (
    KINDS,
    ExpectedAlias,
    ExpectedDomain,
    ExpectedDomainAlias,
    ExpectedMailbox,
    compare,
)
from ..tools.units import mb_ceil

_logger = logging.getLogger(__name__)

SETTLED_DOMAIN_STATES = ("active", "suspended")


class FayvadMailDrift(models.Model):
    """One difference between Odoo's records and the mail server, found by
    the drift check (cron, or the buttons on servers and organizations).
    Odoo is the source of truth: "Repair" queues the jobs that make the
    server match Odoo."""

    _name = "fayvad.mail.drift"
    _description = "Mail Server Difference"
    _order = "id desc"

    name = fields.Char(string="Object", required=True, readonly=True, help="Domain name or email address.")
    server_id = fields.Many2one(
        "fayvad.mail.server",
        string="Mail Server",
        required=True,
        readonly=True,
        ondelete="cascade",
        index=True,
    )
    company_id = fields.Many2one(related="server_id.company_id", store=True, index=True)
    organization_id = fields.Many2one(
        "fayvad.mail.organization", readonly=True, ondelete="cascade", index=True
    )
    domain_id = fields.Many2one(
        "fayvad.mail.domain", readonly=True, index="btree_not_null", ondelete="cascade"
    )
    account_id = fields.Many2one(
        "fayvad.mail.account", readonly=True, index="btree_not_null", ondelete="cascade"
    )
    alias_id = fields.Many2one("fayvad.mail.alias", readonly=True, index="btree_not_null", ondelete="cascade")
    domain_alias_id = fields.Many2one(
        "fayvad.mail.domain.alias", readonly=True, index="btree_not_null", ondelete="cascade"
    )
    kind = fields.Selection(KINDS, required=True, readonly=True, index=True)
    odoo_value = fields.Char(string="In Odoo", readonly=True)
    server_value = fields.Char(string="On the Server", readonly=True)
    state = fields.Selection(
        [("open", "Open"), ("repaired", "Repaired"), ("ignored", "Ignored")],
        default="open",
        required=True,
        readonly=True,
        index=True,
    )
    first_seen = fields.Datetime(readonly=True, default=fields.Datetime.now)
    last_seen = fields.Datetime(readonly=True, default=fields.Datetime.now)
    date_repaired = fields.Datetime(string="Repaired On", readonly=True)
    job_ids = fields.Many2many("fayvad.mail.job", string="Repair Jobs", readonly=True)
    can_repair = fields.Boolean(compute="_compute_can_repair")

    _sql_constraints = [
        ("difference_unique", "UNIQUE(server_id, kind, name)", "This difference is already listed."),
    ]

    @api.depends("kind", "domain_id", "account_id", "alias_id", "domain_alias_id")
    def _compute_can_repair(self):
        for drift in self:
            drift.can_repair = bool(
                drift.domain_id or drift.account_id or drift.alias_id or drift.domain_alias_id
            )

    # -- actions ---------------------------------------------------------------------
    def action_repair(self):
        """Queue the jobs that make the server match Odoo."""
        self.env["res.users"]._fayvad_require("accountant")
        repairable = self.filtered(lambda d: d.state != "repaired" and d.can_repair)
        if not repairable:
            raise UserError(
                self.env._(
                    "Only differences on objects Odoo knows can be repaired. Delete the others "
                    "on the mail server (or create them in Odoo), or ignore them."
                )
            )
        for drift in repairable:
            jobs = drift._repair_jobs()
            drift.write(
                {
                    "state": "repaired",
                    "date_repaired": fields.Datetime.now(),
                    "job_ids": [(4, j.id) for j in jobs],
                }
            )
        return True

    def action_ignore(self):
        self.env["res.users"]._fayvad_require("accountant")
        self.write({"state": "ignored"})
        return True

    def action_reopen(self):
        self.env["res.users"]._fayvad_require("accountant")
        self.write({"state": "open"})
        return True

    def _repair_jobs(self):
        self.ensure_one()
        Job = self.env["fayvad.mail.job"]
        domain, account = self.domain_id, self.account_id
        if self.alias_id:  # missing, different or deleted in Odoo: the steps make it as Odoo says
            gone = self.alias_id.state == "terminated"
            return Job._enqueue("delete_alias" if gone else "update_alias", alias=self.alias_id)
        if self.domain_alias_id:
            gone = self.domain_alias_id.state == "terminated"
            return Job._enqueue(
                "delete_domain_alias" if gone else "update_domain_alias", domain_alias=self.domain_alias_id
            )
        if self.kind == "missing_domain":
            domain.admin_created = False
            domain_job = Job._enqueue("create_domain", domain=domain)
            live = domain.account_ids.filtered(lambda a: a.state in LIVE_ACCOUNT_STATES)
            return domain_job | Job.concat(
                *(Job._enqueue("create_mailbox", account=a, depends_on=domain_job) for a in live)
            )
        if self.kind == "missing_mailbox":
            return Job._enqueue("create_mailbox", account=account)
        if self.kind == "extra_domain":
            return Job._enqueue("terminate_organization", organization=domain.organization_id)
        if self.kind == "extra_mailbox":
            return Job._enqueue("delete_mailbox", account=account)
        if account and self.kind == "quota_mismatch":
            return Job._enqueue("set_quota", account=account)
        if account:  # state_mismatch: both steps set the login as Odoo says
            kind = "unsuspend_account" if account._logins_allowed() else "suspend_account"
            return Job._enqueue(kind, account=account)
        return Job._enqueue("update_domain_quota", organization=domain.organization_id)

    # -- the check ---------------------------------------------------------------------
    @api.model
    def _action_check(self, server=None, organizations=None):
        """Run the check now (a button) and open what it found."""
        if organizations is not None and not organizations.mail_server_id:
            raise UserError(self.env._("These organizations have no mail server."))
        try:
            if organizations is not None:
                for srv in organizations.mail_server_id:
                    self._check(srv, organizations.filtered(lambda o, s=srv: o.mail_server_id == s))
            else:
                self._check(server)
        except MailServerError as exc:
            raise UserError(self.env._("The mail server cannot be checked now: %s", exc)) from None
        action = self.env["ir.actions.act_window"]._for_xml_id("fayvad_mail.fayvad_mail_drift_action")
        if organizations is not None:
            action["domain"] = [("organization_id", "in", organizations.ids)]
        else:
            action["domain"] = [("server_id", "=", server.id)]
        action["context"] = {"search_default_open": 1}
        return action

    @api.model
    def _cron_check(self):
        """Check every active mail server, one savepoint each: a server that
        does not answer, or cannot be compared, keeps the error on its form
        and the others are checked."""
        servers = self.env["fayvad.mail.server"].sudo().search([])
        failed = servers._cron_each(servers, self._check, "Drift check")
        self.env["ir.cron"]._notify_progress(done=len(servers - failed), remaining=0)

    @api.model
    def _check(self, server, organizations=None):
        """Compare ``server`` with the organizations Odoo keeps there (or
        only ``organizations``); store the differences; return the open
        ones. Differences found earlier and gone now are marked repaired."""
        server = server.sudo()
        whole_server = organizations is None
        if whole_server:
            organizations = (
                self.env["fayvad.mail.organization"].sudo().search([("mail_server_id", "=", server.id)])
            )
        organizations = organizations.sudo().with_context(active_test=False)
        expected, skip = self._expected(organizations)
        client = server._client()
        if whole_server:
            remote_domains = {d.name: d for d in client.list_domains()}
            # domains Odoo keeps on another server record (same server, other company)
            skip |= set(
                self.env["fayvad.mail.domain"]
                .sudo()
                .search([("name", "in", list(remote_domains))])
                .mapped("name")
            ) - set(expected)
        else:
            found = (client.find_domain(name) for name in expected)
            remote_domains = {d.name: d for d in found if d}
        both = [
            name
            for name, want in expected.items()
            if want.present and name in remote_domains and name not in skip
        ]
        remote_mailboxes = {
            name: {mb.email: mb for mb in client.list_mailboxes(remote_domains[name].id)} for name in both
        }
        remote_aliases = {name: {a.address: a for a in client.list_aliases(name)} for name in both}
        remote_domain_aliases = {name: {a.name: a for a in client.list_domain_aliases(name)} for name in both}
        differences = compare(
            expected,
            remote_domains,
            remote_mailboxes,
            skip=skip,
            all_domains=whole_server,
            remote_aliases=remote_aliases,
            remote_domain_aliases=remote_domain_aliases,
        )
        scope = None if whole_server else self._scope_names(organizations)
        return self._store(server, differences, scope)

    @api.model
    def _expected(self, organizations):
        """Odoo's side: ({domain name: ExpectedDomain}, names to skip). An
        object with a pending job, or still being created, is in transition
        and skipped."""
        Job = self.env["fayvad.mail.job"]
        pending = Job.sudo().search([("state", "=", "pending"), ("organization_id", "in", organizations.ids)])
        busy_orgs = pending.filtered(
            lambda j: not (j.account_id or j.alias_id or j.domain_alias_id)
        ).organization_id
        busy_accounts = pending.account_id
        busy_aliases = set(pending.alias_id.mapped("address")) | set(pending.domain_alias_id.mapped("name"))
        expected, skip = {}, set()
        for org in organizations:
            for domain in org.domain_ids:
                gone = "terminated" in (domain.state, org.state)
                if org in busy_orgs or not (gone or domain.state in SETTLED_DOMAIN_STATES):
                    skip.add(domain.name)
                    skip.update(domain.account_ids.mapped("email"))
                    continue
                want = ExpectedDomain(
                    domain.name,
                    present=not gone,
                    quota_mb=domain._quotas()[0],
                    default_mailbox_quota_mb=domain._quotas()[1],
                    ref=domain,
                    enabled=domain.mail_enabled,
                )
                for account in domain.account_ids:
                    if account in busy_accounts or account.state not in (*LIVE_ACCOUNT_STATES, "terminated"):
                        skip.add(account.email)
                        continue
                    want.mailboxes[account.email] = ExpectedMailbox(
                        account.email,
                        present=account.state != "terminated",
                        quota_mb=mb_ceil(account.quota),
                        active=account._logins_allowed(),
                        ref=account,
                    )
                self._expected_aliases(domain, want, busy_aliases, skip)
                expected[domain.name] = want
        return expected, skip

    @api.model
    def _expected_aliases(self, domain, want, busy, skip):
        """The domain's aliases and domain aliases, settled ones only (a
        pending job or one being created is in transition: skipped)."""
        Alias = self.env["fayvad.mail.alias"].sudo().with_context(active_test=False)
        for alias in Alias.search([("domain_id", "=", domain.id)]):
            if alias.address in busy or alias.state not in ("active", "terminated"):
                skip.add(alias.address)
                continue
            if alias.state == "terminated" and alias.address in want.aliases:
                continue  # a live alias took the address again
            want.aliases[alias.address] = ExpectedAlias(
                alias.address,
                present=alias.state != "terminated",
                recipients=tuple(alias._recipient_list()),
                enabled=alias.enabled,
                ref=alias,
            )
        DomainAlias = self.env["fayvad.mail.domain.alias"].sudo().with_context(active_test=False)
        for alias in DomainAlias.search([("domain_id", "=", domain.id)], order="id"):
            if alias.name in busy or alias.state not in ("active", "terminated"):
                skip.add(alias.name)
                continue
            want.domain_aliases[alias.name] = ExpectedDomainAlias(
                alias.name, present=alias.state != "terminated", enabled=alias.enabled, ref=alias
            )

    @api.model
    def _scope_names(self, organizations):
        """The domain names the check covered (their mailboxes and aliases
        too), and their domain aliases' names."""
        domain_aliases = self.env["fayvad.mail.domain.alias"].sudo().with_context(active_test=False)
        names = domain_aliases.search([("organization_id", "in", organizations.ids)]).mapped("name")
        return set(organizations.domain_ids.mapped("name")) | set(names)

    @api.model
    def _store(self, server, differences, scope=None):
        """Create or refresh one line per difference; a line no longer
        found is repaired. ``scope``: the domain names the check covered,
        with their mailboxes (None: the whole server)."""
        now = fields.Datetime.now()
        Drift = self.sudo()
        existing = Drift.search([("server_id", "=", server.id)])
        if scope is not None:
            existing = existing.filtered(lambda d: d.name.rsplit("@", 1)[-1] in scope)
        by_key = {(d.kind, d.name): d for d in existing}
        seen = Drift.browse()
        for diff in differences:
            vals = {"odoo_value": diff.odoo_value, "server_value": diff.server_value, "last_seen": now}
            vals.update(self._links(diff.ref))
            line = by_key.get((diff.kind, diff.name))
            if line:
                if line.state == "repaired":
                    vals.update(state="open", date_repaired=False)
                line.write(vals)
            else:
                line = Drift.create({"server_id": server.id, "kind": diff.kind, "name": diff.name, **vals})
            seen |= line
        (existing - seen).filtered(lambda d: d.state == "open").write(
            {"state": "repaired", "date_repaired": now}
        )
        return seen.filtered(lambda d: d.state == "open")

    @api.model
    def _links(self, record):
        links = {"alias_id": False, "domain_alias_id": False}
        if record and record._name == "fayvad.mail.alias":
            return {**self._links(record.domain_id), "alias_id": record.id}
        if record and record._name == "fayvad.mail.domain.alias":
            return {**self._links(record.domain_id), "domain_alias_id": record.id}
        return {**links, **self._plain_links(record)}

    @api.model
    def _plain_links(self, record):
        if not record:
            return {"organization_id": False, "domain_id": False, "account_id": False}
        if record._name == "fayvad.mail.account":
            return {
                "organization_id": record.organization_id.id,
                "domain_id": record.domain_id.id,
                "account_id": record.id,
            }
        return {"organization_id": record.organization_id.id, "domain_id": record.id, "account_id": False}
