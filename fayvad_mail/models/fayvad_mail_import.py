import logging
import threading
import time

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools.mailserver import MailServerError, NotFound
from ..tools.mailserver.base import RemoteDomain
from .fayvad_mail_import_matcher import ImportMatcher

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
LIST_BATCH = 500  # domain lines written at once while listing the server's domains
READ_BATCH = 20  # domains whose mailboxes and aliases are read in one transaction
APPLY_BATCH = 50  # domains (with what they hold) a cron run imports, one transaction each
APPLY_BUDGET = 120  # seconds a cron run works, reading and importing
MAX_ERROR = 300  # characters of the last error kept on the run


class FayvadMailImport(models.Model):
    """Bringing what a mail server already hosts into Odoo (a hosting
    business adopting fayvad_mail). The dry run reads, in the background, the
    server's domains and then, a few domains a transaction, every mailbox,
    alias, catch-all, forward and domain alias they hold, and lists what
    would be imported, linked (already in Odoo) or is in conflict; the
    accountant corrects the preview; *Import* then creates the records as
    they are on the server, active and linked to their remote ids, in the
    background, one domain a transaction. Either part, interrupted, goes on
    where it stopped. Nothing is queued for the mail server and nothing is
    charged for what already existed."""

    _name = "fayvad.mail.import"
    _description = "Import from a Mail Server"
    # its open form follows the cron's progress (static/src/js/live_state.js)
    _inherit = ["mail.thread", "fayvad.mail.queue", "fayvad.mail.live.state"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    server_id = fields.Many2one(
        "fayvad.mail.server", string="Mail Server", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="server_id.company_id", store=True, index=True)
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("reading", "Reading"),
            ("preview", "Preview"),
            ("importing", "Importing"),
            ("done", "Imported"),
        ],
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
    listed = fields.Boolean(readonly=True, copy=False, help="The server's domains are listed.")
    server_domains = fields.Text(
        readonly=True, copy=False, prefetch=False, help="Every domain of the server: its addresses are local."
    )
    read_error_count = fields.Integer(readonly=True, copy=False)
    last_error = fields.Char(readonly=True, copy=False)
    read_at = fields.Datetime(string="Read On", readonly=True, copy=False)
    done_at = fields.Datetime(string="Imported On", readonly=True, copy=False)
    create_count = fields.Integer(string="To Import", compute="_compute_counts")
    link_count = fields.Integer(string="Already in Odoo", compute="_compute_counts")
    conflict_count = fields.Integer(string="Conflicts", compute="_compute_counts")
    imported_count = fields.Integer(string="Imported", compute="_compute_counts")
    error_count = fields.Integer(
        string="Errors",
        compute="_compute_counts",
        help="Mail-server errors while reading, refusals while importing.",
    )
    progress_done = fields.Integer(compute="_compute_counts")
    progress_total = fields.Integer(compute="_compute_counts")
    progress = fields.Char(
        compute="_compute_counts", help="Domains read (or imported) of those to read (import)."
    )
    progress_percent = fields.Float(compute="_compute_counts")
    step = fields.Char(string="Now", compute="_compute_counts")

    @api.depends("server_id.name", "create_date")
    def _compute_name(self):
        for run in self:
            run.name = self.env._("Import from %s", run.server_id.name or "")

    @api.depends(
        "state",
        "listed",
        "read_error_count",
        "line_ids.action",
        "line_ids.imported",
        "line_ids.contents_read",
        "line_ids.refused",
    )
    def _compute_counts(self):
        """The counts of the preview and the progress, counted by the
        database (an import of a large server has 100,000s of lines)."""
        counts = {}
        if self.ids:
            groups = self.env["fayvad.mail.import.line"]._read_group(
                [("import_id", "in", self.ids)],
                ["import_id", "kind", "action", "imported", "contents_read", "refused"],
                ["__count"],
            )
            for run, kind, action, imported, contents_read, refused, count in groups:
                for key in (
                    action,
                    imported and "imported",
                    refused and "refused",
                    kind == "domain" and "domains",
                    kind == "domain" and contents_read and "domains_read",
                    kind == "domain" and action == "create" and "domains_to_import",
                    kind == "domain" and action == "create" and imported and "domains_imported",
                ):
                    if key:
                        counts[run.id, key] = counts.get((run.id, key), 0) + count
        for run in self:
            count = lambda key, run=run: counts.get((run.id, key), 0)  # noqa: E731
            run.create_count = count("create")
            run.link_count = count("link")
            run.conflict_count = count("conflict")
            run.imported_count = count("imported")
            run.error_count = run.read_error_count + count("refused")
            if run.state in ("importing", "done"):
                done, total = count("domains_imported"), count("domains_to_import")
            else:
                done, total = count("domains_read"), count("domains")
            run.progress_done, run.progress_total = done, total
            run.progress = f"{done} / {total}"
            run.progress_percent = 100.0 * done / total if total else 0.0
            run.step = run._step(done, total)

    def _step(self, done, total):
        _ = self.env._
        if self.state == "reading" and not self.listed:
            return _("Listing the server's domains")
        if self.state == "reading" and done < total:
            return _("Reading what each domain holds: %(done)s of %(total)s domains", done=done, total=total)
        if self.state == "reading":
            return _("Checking the preview")
        if self.state == "preview":
            return _("Preview ready: correct it, then import")
        if self.state == "importing":
            return _(
                "Importing, one domain a transaction: %(done)s of %(total)s domains", done=done, total=total
            )
        return _("Imported") if self.state == "done" else ""

    def action_view_lines(self):
        """The preview in a list of its own, to filter and correct it (a
        filter of the search view in ``search_default``)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("fayvad_mail.fayvad_mail_import_line_action")
        action["domain"] = [("import_id", "=", self.id)]
        action["context"] = {"default_import_id": self.id, **self.env.context.get("lines_filter", {})}
        return action

    def action_refresh(self):
        """The form again, with the progress as it is now."""
        return True

    # -- the dry run --------------------------------------------------------------------------
    def action_read(self):
        """Read the whole server again, in the background (the import's cron,
        started at once); nothing is written but the preview."""
        self.env["res.users"]._fayvad_require("admin")
        for run in self:
            if run.state not in ("draft", "preview"):
                raise UserError(self.env._("This import has started: read the server in a new one."))
            if run.grouping == "customer" and not run.partner_id:
                raise UserError(self.env._("Choose the customer of the organization."))
            run._clear_preview()
            run.write(
                {
                    "state": "reading",
                    "listed": False,
                    "server_domains": False,
                    "read_error_count": 0,
                    "last_error": False,
                    "read_at": False,
                }
            )
        self.env.ref("fayvad_mail.ir_cron_fayvad_mail_import")._trigger()
        return True

    def action_cancel(self):
        """Stop reading the server: back to a draft, without preview."""
        self.env["res.users"]._fayvad_require("admin")
        for run in self.filtered(lambda run: run.state in ("reading", "preview")):
            run._clear_preview()
            run.write({"state": "draft", "listed": False, "server_domains": False})
        return True

    def _clear_preview(self):
        self.env["fayvad.mail.import.line"].flush_model()
        self.env.cr.execute(SQL("DELETE FROM fayvad_mail_import_line WHERE import_id = %s", self.id))
        self.env["fayvad.mail.import.line"].invalidate_model()
        self.invalidate_recordset(["line_ids"])

    @api.model
    def _take_run(self, state, tried):
        """The first run in ``state`` (but those ``tried``), locked for this
        worker; an empty recordset when another worker has each."""
        return self._queue_take(
            SQL(
                "SELECT id FROM fayvad_mail_import WHERE state = %s AND id NOT IN %s ORDER BY id",
                state,
                tuple(tried) or (0,),
            ),
            lock_where=SQL("state = %s", state),
        )

    @api.model
    def _read_runs(self, deadline):
        """Read the servers of the runs being read, a step a transaction (the
        domains, then a few domains' content, then the checks), until
        ``deadline``. A run is read by one worker at a time. Returns the
        steps done."""
        testing = getattr(threading.current_thread(), "testing", False)
        tried, steps = set(), 0
        while time.monotonic() < deadline:
            run = self._take_run("reading", tried)
            if not run:
                break
            if run._read_next():
                steps += 1
            else:
                tried.add(run.id)  # the server failed: again in the next cron run
            if not testing:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return steps

    def _read_next(self):
        """The next step of reading the server; False when the server failed
        (the error is counted and shown, the step is tried again later)."""
        self.ensure_one()
        try:
            with self.env.cr.savepoint():
                if not self.listed:
                    self._list_domains()
                elif not self._read_domains():
                    self._finish_reading()
        except MailServerError as exc:
            self.write(
                {
                    "read_error_count": self.read_error_count + 1,
                    "last_error": self.env._("The mail server: %s", exc.reason)[:MAX_ERROR],
                }
            )
            _logger.info("import %s: reading the server failed: %s", self.id, exc)
            return False
        finally:
            self._push_state()  # a step read, or an error counted: the open form shows it
        return True

    def _list_domains(self):
        """A line for each domain of the server (those of the filter), written
        as the server's pages come; every domain's name is kept, its
        addresses being local ones."""
        client = self.server_id.sudo()._client()
        wanted = (self.domain_filter or "").strip().lower()
        names, batch = [], []
        for domain in client.iter_domains():
            names.append(domain.name)
            if wanted in domain.name:
                batch.append(domain)
            if len(batch) >= LIST_BATCH:
                self._add_domain_lines(batch)
                batch = []
        self._add_domain_lines(batch)
        self.write({"listed": True, "server_domains": "\n".join(sorted(names))})

    def _add_domain_lines(self, domains):
        Line = self.env["fayvad.mail.import.line"]
        Line.create(
            [
                {
                    "import_id": self.id,
                    "kind": "domain",
                    "name": domain.name,
                    "domain_name": domain.name,
                    "remote_id": domain.id,
                    "enabled": domain.enabled,
                    "quota_mb": domain.quota_mb,
                    "default_quota_mb": domain.default_mailbox_quota_mb,
                    "dkim_selector": domain.dkim_selector or False,
                    "dkim_public_key": domain.dkim_public_key or False,
                }
                for domain in domains
            ]
        )
        Line.flush_model()
        Line.invalidate_model()  # memory flat in the number of domains: written, and out of the cache

    def _read_domains(self):
        """What the next few domains hold, read from the server and matched
        against Odoo; False when every domain is read."""
        Line = self.env["fayvad.mail.import.line"]
        lines = Line.search(
            [("import_id", "=", self.id), ("kind", "=", "domain"), ("contents_read", "=", False)],
            order="id",
            limit=READ_BATCH,
        )
        if not lines:
            return False
        client = self.server_id.sudo()._client()
        snapshot, read = [], Line
        for line in lines:
            remote = RemoteDomain(
                id=line.remote_id,
                name=line.name,
                enabled=line.enabled,
                quota_mb=line.quota_mb,
                default_mailbox_quota_mb=line.default_quota_mb,
                dkim_selector=line.dkim_selector or "",
                dkim_public_key=line.dkim_public_key or "",
            )
            try:
                item = {
                    "domain": remote,
                    "mailboxes": client.list_mailboxes(remote.id, usage=False),
                    "aliases": client.list_aliases(remote.name),
                    "domain_aliases": client.list_domain_aliases(remote.name),
                }
            except NotFound:
                gone = self.env._("no longer on the mail server")
                line.write({"action": "conflict", "problem": gone, "contents_read": True})
                continue
            snapshot.append(item)
            read |= line
        children = []
        for line, (vals, lines_held) in zip(read, ImportMatcher(self, snapshot).lines(), strict=True):
            line.write({**vals, "sequence": 0, "contents_read": True})
            children += [{**child, "import_id": self.id} for child in lines_held]
        Line.create(children)
        return True

    def _finish_reading(self):
        """The checks that span domains, once every domain is read; then the preview."""
        if self.grouping == "customer":
            self._check_one_customer()
        self._check_recipients()
        self.write({"state": "preview", "read_at": fields.Datetime.now()})
        self.message_post(
            body=self.env._(
                "Read the server: %(domains)s domains; %(create)s objects to import, %(link)s already in "
                "Odoo, %(conflict)s conflicts.",
                domains=self.progress_total,
                create=self.create_count,
                link=self.link_count,
                conflict=self.conflict_count,
            )
        )

    def _check_one_customer(self):
        """Every domain in the run's one organization: the plan must hold what
        they hold together."""
        self.env["fayvad.mail.import.line"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT count(*) FILTER (WHERE c.kind = 'mailbox'),
                       coalesce(sum(c.quota_mb) FILTER (WHERE c.kind = 'mailbox'), 0),
                       count(*) FILTER (WHERE c.kind IN ('alias', 'catchall')),
                       count(*) FILTER (WHERE c.kind = 'domain_alias')
                  FROM fayvad_mail_import_line c
                  JOIN fayvad_mail_import_line d
                    ON d.import_id = c.import_id AND d.kind = 'domain' AND d.name = c.domain_name
                 WHERE c.import_id = %s AND c.kind != 'domain' AND c.action IN ('create', 'link')
                   AND d.action = 'create'
                """,
                self.id,
            )
        )
        users, quota_mb, aliases, domain_aliases = self.env.cr.fetchone()
        matcher = ImportMatcher(self, [])
        plan, problem = matcher._plan(matcher._totals(users, quota_mb, aliases, domain_aliases))
        domains = self.env["fayvad.mail.import.line"].search(
            [("import_id", "=", self.id), ("kind", "=", "domain"), ("action", "=", "create")]
        )
        domains.write({"plan_id": plan.id, "partner_id": self.partner_id.id})
        if problem:
            domains._set_conflict(problem)

    def _check_recipients(self):
        """An alias, catch-all or forward delivering to an address of the
        server that Odoo will not know (neither imported nor in Odoo) is a
        conflict: it would deliver where no record says."""
        Line = self.env["fayvad.mail.import.line"]
        Line.flush_model()
        self.env.cr.execute(
            SQL(
                """
                WITH recipient AS (
                    SELECT l.id, r.address
                      FROM fayvad_mail_import_line l,
                           unnest(string_to_array(l.recipients, E'\n')) AS r(address)
                     WHERE l.import_id = %(run)s AND l.kind IN ('alias', 'catchall', 'forward')
                       AND l.action = 'create'
                )
                SELECT r.id, string_agg(r.address, ', ' ORDER BY r.address)
                  FROM recipient r
                 WHERE split_part(r.address, '@', 2) = ANY(%(hosted)s)
                   AND NOT EXISTS (SELECT 1 FROM fayvad_mail_import_line k
                                    WHERE k.import_id = %(run)s AND k.name = r.address
                                      AND k.action IN ('create', 'link'))
                   AND NOT EXISTS (SELECT 1 FROM fayvad_mail_account a
                                    WHERE a.email = r.address AND a.state != 'terminated')
                   AND NOT EXISTS (SELECT 1 FROM fayvad_mail_alias a
                                    WHERE a.address = r.address AND a.state != 'terminated')
                 GROUP BY r.id
                """,
                run=self.id,
                hosted=(self.server_domains or "").split(),
            )
        )
        for line_id, unknown in self.env.cr.fetchall():
            Line.browse(line_id).write(
                {
                    "action": "conflict",
                    "problem": self.env._("delivers to %s, which Odoo would not know", unknown),
                }
            )

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
        """Read the servers of the runs being read, then import the next
        domains of the runs being imported, one transaction each (a worker
        killed half-way leaves the rest pending: the next run goes on from
        there, nothing twice)."""
        deadline = time.monotonic() + budget
        steps = self._read_runs(deadline)
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

        def import_domain(line):
            line._import_safely("_import_domain")
            line.import_id._push_state()  # one more domain done: the open form shows it

        done, _spent = self._queue_work(take, import_domain, limit, max(deadline - time.monotonic(), 1))
        self._finish_imports()
        # more to do: Odoo runs the cron again at once (its progress API)
        self.env["ir.cron"]._notify_progress(done=steps + done, remaining=self._remaining())
        return done

    @api.model
    def _remaining(self):
        """Domains still to read or import, over every run; a run being read
        counts one more (its listing, or its checks at the end)."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                SELECT count(DISTINCT i.id) FILTER (WHERE i.state = 'reading')
                       + count(l.id) FILTER (
                           WHERE l.kind = 'domain' AND (
                               i.state = 'reading' AND l.contents_read IS NOT TRUE
                               OR i.state = 'importing' AND l.action = 'create' AND l.imported IS NOT TRUE))
                  FROM fayvad_mail_import i LEFT JOIN fayvad_mail_import_line l ON l.import_id = i.id
                 WHERE i.state IN ('reading', 'importing')
                """
            )
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _finish_imports(self):
        """Close the runs whose domains are all imported, one worker a run."""
        Line = self.env["fayvad.mail.import.line"].sudo()
        tried = set()
        while True:
            run = self.sudo()._take_run("importing", tried)
            if not run:
                return
            tried.add(run.id)
            pending = [("import_id", "=", run.id), ("action", "=", "create"), ("imported", "=", False)]
            if Line.search_count([*pending, ("kind", "=", "domain")], limit=1):
                continue
            # what hangs on domains Odoo had already (a new mailbox in a linked domain)
            for line in Line.search(pending, order="sequence, id"):
                line._import_safely("_import_one")
            run._close()

    def _close(self):
        self.write({"state": "done", "done_at": fields.Datetime.now()})
        domains = self.env["fayvad.mail.import.line"].search_count(
            [("import_id", "=", self.id), ("kind", "=", "domain"), ("imported", "=", True)]
        )
        self.message_post(
            body=self.env._(
                "Imported: %(count)s objects (%(domains)s domains), %(link)s already in Odoo, "
                "%(conflict)s conflicts left out. Nothing was changed on the mail server.",
                count=self.imported_count,
                domains=domains,
                link=self.link_count,
                conflict=self.conflict_count,
            )
        )
        self.server_id.message_post(
            body=self.env._(
                "%(name)s: %(count)s objects imported, %(conflict)s conflicts left out.",
                name=self.name,
                count=self.imported_count,
                conflict=self.conflict_count,
            )
        )
