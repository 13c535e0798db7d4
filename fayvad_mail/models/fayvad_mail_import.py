import logging

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools.units import GB, MB

_logger = logging.getLogger(__name__)

LINE_KINDS = [
    ("domain", "Domain"),
    ("mailbox", "Mailbox"),
    ("alias", "Alias"),
    ("catchall", "Catch-all"),
    ("forward", "Forward"),
    ("domain_alias", "Domain Alias"),
]
LINE_ACTIONS = [
    ("create", "Import"),
    ("link", "Already in Odoo"),
    ("conflict", "Conflict"),
    ("skip", "Skip"),
]
APPLY_BATCH = 50  # domains (with what they hold) a cron run imports, one transaction each
APPLY_BUDGET = 120  # seconds


class FayvadMailImport(models.Model):
    """Bringing what a mail server already hosts into Odoo (a hosting
    business adopting fayvad_mail): a dry run reads every domain, mailbox,
    alias, catch-all, forward and domain alias from the server and lists
    what would be imported, linked (already in Odoo) or is in conflict; the
    accountant corrects the preview; *Import* then creates the records as
    they are on the server, active and linked to their remote ids, in the
    background, one domain a transaction. Nothing is queued for the mail
    server and nothing is charged for what already existed."""

    _name = "fayvad.mail.import"
    _description = "Import from a Mail Server"
    _inherit = ["mail.thread", "fayvad.mail.queue"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    server_id = fields.Many2one(
        "fayvad.mail.server", string="Mail Server", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="server_id.company_id", store=True, index=True)
    state = fields.Selection(
        [("draft", "Draft"), ("preview", "Preview"), ("importing", "Importing"), ("done", "Imported")],
        default="draft",
        required=True,
        readonly=True,
        tracking=True,
        copy=False,
    )
    grouping = fields.Selection(
        [("domain", "One organization per domain"), ("customer", "One organization for one customer")],
        default="domain",
        required=True,
        help="One organization per domain, each with the customer found for it (or a new one); or every "
        "domain in one organization of the customer chosen here.",
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        index="btree_not_null",
        help="The customer of the one organization (grouping by customer).",
    )
    plan_id = fields.Many2one(
        "fayvad.mail.plan",
        string="Default Plan",
        check_company=True,
        index="btree_not_null",
        help="The plan of every imported organization; empty: the cheapest plan whose limits fit it.",
    )
    domain_filter = fields.Char(
        string="Only Domains Containing",
        help="Read only the domains whose name contains this text (one customer, one batch); empty: all.",
    )
    line_ids = fields.One2many("fayvad.mail.import.line", "import_id", string="Preview")
    read_at = fields.Datetime(string="Read On", readonly=True, copy=False)
    done_at = fields.Datetime(string="Imported On", readonly=True, copy=False)
    create_count = fields.Integer(string="To Import", compute="_compute_counts")
    link_count = fields.Integer(string="Already in Odoo", compute="_compute_counts")
    conflict_count = fields.Integer(string="Conflicts", compute="_compute_counts")
    imported_count = fields.Integer(string="Imported", compute="_compute_counts")
    progress = fields.Char(compute="_compute_counts", help="Domains imported of those to import.")

    @api.depends("server_id.name", "create_date")
    def _compute_name(self):
        for run in self:
            run.name = self.env._("Import from %s", run.server_id.name or "")

    @api.depends("line_ids.action", "line_ids.imported")
    def _compute_counts(self):
        for run in self:
            lines = run.line_ids
            run.create_count = len(lines.filtered(lambda line: line.action == "create"))
            run.link_count = len(lines.filtered(lambda line: line.action == "link"))
            run.conflict_count = len(lines.filtered(lambda line: line.action == "conflict"))
            run.imported_count = len(lines.filtered("imported"))
            domains = lines.filtered(lambda line: line.kind == "domain" and line.action == "create")
            run.progress = f"{len(domains.filtered('imported'))} / {len(domains)}"

    # -- the dry run --------------------------------------------------------------------------
    def action_read(self):
        """Read the whole server again and list what it holds (nothing is written but the preview)."""
        self.env["res.users"]._fayvad_require("admin")
        for run in self:
            if run.state not in ("draft", "preview"):
                raise UserError(self.env._("This import has started: read the server in a new one."))
            if run.grouping == "customer" and not run.partner_id:
                raise UserError(self.env._("Choose the customer of the organization."))
            read = run._read_server()
            run.line_ids.unlink()
            run.line_ids = [fields.Command.create(vals) for vals in run._preview(read)]
            run.write({"state": "preview", "read_at": fields.Datetime.now()})
        return True

    def _read_server(self):
        """Everything the server hosts, domain by domain (the client pages)."""
        self.ensure_one()
        client = self.server_id.sudo()._client()
        remote_domains = client.list_domains()
        snapshot = []
        wanted = (self.domain_filter or "").strip().lower()
        for domain in sorted(remote_domains, key=lambda d: d.name):
            if wanted not in domain.name:
                continue
            snapshot.append(
                {
                    "domain": domain,
                    "mailboxes": client.list_mailboxes(domain.id),
                    "aliases": client.list_aliases(domain.name),
                    "domain_aliases": client.list_domain_aliases(domain.name),
                }
            )
        return snapshot, {domain.name for domain in remote_domains}

    def _preview(self, read):
        """The lines of the preview: for each object the server holds, import
        it, link it (Odoo has it already) or show a conflict."""
        self.ensure_one()
        snapshot, hosted = read
        return ImportMatcher(self, snapshot, hosted).lines()

    # -- the import ---------------------------------------------------------------------------
    def action_import(self):
        """Import the preview's lines marked *Import*, in the background."""
        self.env["res.users"]._fayvad_require("admin")
        for run in self:
            if run.state != "preview":
                raise UserError(self.env._("Read the server first: the import follows its preview."))
            run.state = "importing"
            run.message_post(
                body=self.env._(
                    "Import started: %(create)s objects to import, %(link)s already in Odoo, "
                    "%(conflict)s conflicts left out.",
                    create=run.create_count,
                    link=run.link_count,
                    conflict=run.conflict_count,
                )
            )
        self.env.ref("fayvad_mail.ir_cron_fayvad_mail_import")._trigger()
        return True

    @api.model
    def _cron_import(self, limit=APPLY_BATCH, budget=APPLY_BUDGET):
        """Import the next domains of the runs being imported, one
        transaction each (a worker killed half-way leaves the rest pending:
        the next run goes on from there, nothing twice)."""
        Line = self.env["fayvad.mail.import.line"]
        self.env.flush_all()  # the runs just started are seen by the query below

        def take(tried):
            return Line._queue_take(
                SQL(
                    "SELECT l.id FROM fayvad_mail_import_line l JOIN fayvad_mail_import i ON i.id = l.import_id "
                    "WHERE i.state = 'importing' AND l.kind = 'domain' AND l.action = 'create' "
                    "AND l.imported IS NOT TRUE AND l.id NOT IN %s ORDER BY l.id LIMIT 20",
                    tuple(tried) or (0,),
                ),
                lock_where=SQL("imported IS NOT TRUE"),
            )

        done, _spent = self._queue_work(
            take, lambda line: line._import_safely("_import_domain"), limit, budget
        )
        self._finish_imports()
        return done

    @api.model
    def _finish_imports(self):
        for run in self.sudo().search([("state", "=", "importing")]):
            pending = run.line_ids.filtered(
                lambda ln: ln.kind == "domain" and ln.action == "create" and not ln.imported
            )
            if pending:
                continue
            # what hangs on domains Odoo had already (a new mailbox in a linked domain)
            for line in run.line_ids.filtered(lambda ln: ln.action == "create" and not ln.imported):
                line._import_safely("_import_one")
            run.write({"state": "done", "done_at": fields.Datetime.now()})
            run.message_post(
                body=self.env._(
                    "Imported: %(count)s objects (%(domains)s domains), %(link)s already in Odoo, "
                    "%(conflict)s conflicts left out. Nothing was changed on the mail server.",
                    count=run.imported_count,
                    domains=len(run.line_ids.filtered(lambda ln: ln.kind == "domain" and ln.imported)),
                    link=run.link_count,
                    conflict=run.conflict_count,
                )
            )
            run.server_id.message_post(
                body=self.env._(
                    "%(name)s: %(count)s objects imported, %(conflict)s conflicts left out.",
                    name=run.name,
                    count=run.imported_count,
                    conflict=run.conflict_count,
                )
            )


class ImportMatcher:
    """What each object of a server snapshot becomes in Odoo: the preview's
    lines, with the customer and the plan of each new organization."""

    def __init__(self, run, snapshot, hosted):
        self.run = run
        self.env = run.env
        self.snapshot = snapshot
        self.hosted = hosted  # every domain of the server: its addresses are local ones
        self.domain_names = {item["domain"].id: item["domain"].name for item in snapshot}
        sudo = self.env(su=True)
        self.Org = sudo["fayvad.mail.organization"]
        self.Domain = sudo["fayvad.mail.domain"].with_context(active_test=False)
        self.Account = sudo["fayvad.mail.account"].with_context(active_test=False)
        self.Alias = sudo["fayvad.mail.alias"].with_context(active_test=False)
        self.DomainAlias = sudo["fayvad.mail.domain.alias"].with_context(active_test=False)
        # what Odoo has of the snapshot's objects, one query a kind (not one an object)
        domain_alias_names = {alias.name for item in snapshot for alias in item["domain_aliases"]}
        self.domains = self._live(
            self.Domain, "name", {item["domain"].name for item in snapshot} | domain_alias_names
        )
        self.accounts = self._live(
            self.Account, "email", {mb.email for item in snapshot for mb in item["mailboxes"]}
        )
        self.aliases = self._live(
            self.Alias, "address", {a.address for item in snapshot for a in item["aliases"]}
        )
        self.domain_aliases = self._live(self.DomainAlias, "name", domain_alias_names)
        self.plans = self.env["fayvad.mail.plan"].search(
            [("company_id", "in", (run.company_id.id, False))], order="monthly_price, max_users, id"
        )

    @staticmethod
    def _live(model, field, values):
        """{value: record} of ``model``'s records not terminated whose ``field`` is one of ``values``."""
        if not values:
            return {}
        records = model.search([(field, "in", list(values)), ("state", "!=", "terminated")])
        return {record[field]: record for record in records}

    def lines(self):
        lines = []
        totals = {"users": 0, "storage": 0, "aliases": 0, "domain_aliases": 0}
        domain_lines = []
        for item in self.snapshot:
            domain_line, children = self._domain_lines(item)
            lines.append(domain_line)
            lines.extend(children)
            if domain_line["action"] == "create":
                domain_lines.append(domain_line)
                for key, value in self._needs(children).items():
                    totals[key] += value
        if self.run.grouping == "customer" and domain_lines:
            plan, problem = self._plan(totals)
            for line in domain_lines:
                line.update(plan_id=plan.id, partner_id=self.run.partner_id.id)
                if problem:
                    line.update(action="conflict", problem=problem)
        self._check_recipients(lines)
        for sequence, line in enumerate(lines):
            line["sequence"] = sequence
        return lines

    def _check_recipients(self, lines):
        """An alias, catch-all or forward delivering to an address of the
        server that Odoo will not know (not imported, not in Odoo) is a
        conflict: it would deliver where no record says."""
        kept = {line["name"] for line in lines if line["action"] in ("create", "link")}
        local = {
            address
            for line in lines
            if line["kind"] in ("alias", "catchall", "forward") and line["action"] == "create"
            for address in line["recipients"].split()
            if address.rpartition("@")[2] in self.hosted and address not in kept
        }
        if local:
            kept |= set(
                self.Account.search([("email", "in", list(local)), ("state", "!=", "terminated")]).mapped(
                    "email"
                )
            )
            kept |= set(
                self.Alias.search([("address", "in", list(local)), ("state", "!=", "terminated")]).mapped(
                    "address"
                )
            )
        for line in lines:
            if line["kind"] not in ("alias", "catchall", "forward") or line["action"] != "create":
                continue
            unknown = [a for a in line["recipients"].split() if a in local and a not in kept]
            if unknown:
                line.update(
                    action="conflict",
                    problem=self.env._("delivers to %s, which Odoo would not know", ", ".join(unknown)),
                )

    # -- domains ---------------------------------------------------------------------------------
    def _domain_lines(self, item):
        remote = item["domain"]
        line = self._line(
            "domain",
            remote.name,
            remote,
            remote.id,
            remote.enabled,
            quota_mb=remote.quota_mb,
            default_quota_mb=remote.default_mailbox_quota_mb,
            dkim_selector=remote.dkim_selector or False,
            dkim_public_key=remote.dkim_public_key or False,
        )
        existing = self.domains.get(remote.name, self.Domain)
        if existing:
            line["domain_id"] = existing.id
            if existing.organization_id.mail_server_id == self.run.server_id and existing.remote_id in (
                0,
                remote.id,
            ):
                line["action"] = "link"
            else:
                line.update(
                    action="conflict",
                    problem=self.env._(
                        "already belongs to the organization %s (on another mail server or another object)",
                        existing.organization_id.display_name,
                    ),
                )
        children = (
            [self._mailbox_line(remote, mb) for mb in item["mailboxes"]]
            + [self._alias_line(remote, alias, item["mailboxes"]) for alias in item["aliases"]]
            + [self._domain_alias_line(remote, alias) for alias in item["domain_aliases"]]
        )
        if line["action"] == "conflict":
            for child in children:
                if child["action"] == "create":
                    child.update(action="conflict", problem=self.env._("its domain is in conflict"))
        if line["action"] == "create":
            needs = self._needs(children)
            if self.run.grouping == "domain":
                line["partner_id"] = self._customer(remote.name).id
                # a customer has one organization: the domain joins the one Odoo has
                joined = self.Org.search([("partner_id", "=", line["partner_id"])], limit=1)
                line["organization_id"] = joined.id
                plan, problem = (joined.plan_id, False) if joined else self._plan(needs)
                line["plan_id"] = plan.id
                if joined and joined.mail_server_id != self.run.server_id:
                    problem = self.env._(
                        "its customer's organization %s is on another mail server", joined.display_name
                    )
                elif joined:
                    problem = " ".join(
                        joined._room_problems(
                            users=needs["users"],
                            storage=needs["storage"],
                            aliases=needs["aliases"],
                            domain_aliases=needs["domain_aliases"],
                        ).values()
                    )
                if problem:
                    line.update(action="conflict", problem=problem)
                    for child in children:
                        if child["action"] == "create":
                            child.update(action="conflict", problem=self.env._("its domain is in conflict"))
        return line, children

    def _needs(self, children):
        imported = [c for c in children if c["action"] in ("create", "link")]
        return {
            "users": sum(1 for c in imported if c["kind"] == "mailbox"),
            "storage": sum(c.get("quota_mb") or 0 for c in imported if c["kind"] == "mailbox") * MB,
            "aliases": sum(1 for c in imported if c["kind"] in ("alias", "catchall")),
            "domain_aliases": sum(1 for c in imported if c["kind"] == "domain_alias"),
        }

    def _customer(self, domain_name):
        """The partner whose e-mail is at the domain, or whose website is it (companies first)."""
        Partner = self.env["res.partner"].with_context(active_test=True)
        for criteria in (
            [("email", "=ilike", f"%@{domain_name}")],
            ["|", ("website", "=ilike", f"%//{domain_name}%"), ("website", "=ilike", f"%.{domain_name}%")],
            [("website", "=ilike", f"{domain_name}%")],
        ):
            partner = Partner.search(criteria, order="is_company desc, id", limit=1)
            if partner:
                return partner.commercial_partner_id
        return Partner.browse()

    def _plan(self, needs):
        """(plan, problem): the run's plan, or the cheapest active plan of
        the company whose limits hold ``needs``."""
        Plan = self.env["fayvad.mail.plan"]

        def fits(plan):
            return (
                plan.max_users >= needs["users"]
                and plan.max_storage_gb * GB >= needs["storage"]
                and plan.max_aliases >= needs["aliases"]
                and plan.max_domain_aliases >= needs["domain_aliases"]
            )

        described = self.env._(
            "%(users)s mailboxes, %(gb).1f GB of quotas, %(aliases)s aliases, %(domain_aliases)s domain aliases",
            users=needs["users"],
            gb=needs["storage"] / GB,
            aliases=needs["aliases"],
            domain_aliases=needs["domain_aliases"],
        )
        if self.run.plan_id:
            if fits(self.run.plan_id):
                return self.run.plan_id, False
            return self.run.plan_id, self.env._(
                "does not fit the plan %(plan)s (%(needs)s)", plan=self.run.plan_id.name, needs=described
            )
        for plan in self.plans:
            if fits(plan):
                return plan, False
        return Plan.browse(), self.env._("no plan fits it (%s)", described)

    # -- what a domain holds -----------------------------------------------------------------------
    @staticmethod
    def _line(kind, name, domain, remote_id, enabled, **values):
        """A preview line of an object of ``domain``, to import until found otherwise."""
        return {
            "kind": kind,
            "name": name,
            "domain_name": domain.name,
            "remote_id": remote_id,
            "enabled": enabled,
            "action": "create",
            **values,
        }

    def _mailbox_line(self, domain, remote):
        line = self._line(
            "mailbox",
            remote.email,
            domain,
            remote.id,
            remote.active,
            quota_mb=remote.quota_mb,
            message_limit=remote.message_limit or 0,
        )
        existing = self.accounts.get(remote.email, self.Account)
        if existing:
            line["account_id"] = existing.id
            if existing.quota_mb != remote.quota_mb:
                line.update(
                    action="conflict",
                    problem=self.env._(
                        "exists in Odoo with a quota of %(odoo)s MB, %(server)s MB on the server",
                        odoo=existing.quota_mb,
                        server=remote.quota_mb,
                    ),
                )
            elif existing.remote_id not in (0, remote.id):
                line.update(
                    action="conflict", problem=self.env._("exists in Odoo as another object of the server")
                )
            else:
                line["action"] = "link"
        elif not remote.quota_mb:
            line.update(
                action="conflict",
                problem=self.env._("has no quota on the server; in Odoo every mailbox has one"),
            )
        return line

    def _alias_line(self, domain, remote, mailboxes):
        own = {mb.email for mb in mailboxes}
        recipients = list(remote.recipients)
        if remote.address.startswith("@"):
            kind = "catchall"
        elif remote.address in own:
            kind = "forward"
        else:
            kind = "alias"
        line = self._line(
            kind, remote.address, domain, remote.id, remote.enabled, recipients="\n".join(recipients)
        )
        existing = self.aliases.get(remote.address, self.Alias)
        if kind == "forward" and remote.address not in recipients:
            line.update(
                action="conflict",
                problem=self.env._("a forward that keeps no copy: Odoo's forwards keep the mailbox's copy"),
            )
        elif existing:
            line["alias_id"] = existing.id
            if sorted(existing._recipient_list()) != sorted(recipients):
                line.update(
                    action="conflict",
                    problem=self.env._(
                        "exists in Odoo with other recipients: %s", ", ".join(existing._recipient_list())
                    ),
                )
            else:
                line["action"] = "link"
        return line

    def _domain_alias_line(self, domain, remote):
        target = self.domain_names.get(remote.target_id, domain.name)
        line = self._line("domain_alias", remote.name, domain, remote.id, remote.enabled, target=target)
        existing = self.domain_aliases.get(remote.name, self.DomainAlias)
        other_domain = self.domains.get(remote.name, self.Domain)
        if existing:
            line["domain_alias_id"] = existing.id
            if existing.domain_id.name == line["target"]:
                line["action"] = "link"
            else:
                line.update(
                    action="conflict",
                    problem=self.env._("exists in Odoo for the domain %s", existing.domain_id.name),
                )
        elif other_domain:
            line.update(action="conflict", problem=self.env._("is a domain of its own in Odoo"))
        return line
