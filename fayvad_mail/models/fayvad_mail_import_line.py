import logging

from odoo import fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, create_index

from ..tools.units import MB
from .fayvad_mail_import import LINE_ACTIONS, LINE_KINDS

_logger = logging.getLogger(__name__)

# children of a domain are imported in this order: what an alias names exists before it
CHILD_ORDER = {"mailbox": 0, "alias": 1, "catchall": 1, "forward": 2, "domain_alias": 3}
# what was in service before: nothing is charged for it; the import's summary is its chatter's one line
IMPORTING = {"fayvad_mail_no_fee": True, "mail_create_nolog": True, "mail_notrack": True}


class FayvadMailImportLine(models.Model):
    """One object of the mail server in an import's preview, and what it
    becomes in Odoo. The accountant may set *Skip* on a line, or change
    the customer and the plan of a new organization, before importing."""

    _name = "fayvad.mail.import.line"
    _description = "Mail Server Import Line"
    _inherit = ["fayvad.mail.queue"]
    _order = "import_id, domain_name, sequence, id"

    import_id = fields.Many2one("fayvad.mail.import", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="import_id.company_id", store=True)
    import_state = fields.Selection(related="import_id.state", string="Import Status")
    sequence = fields.Integer()
    kind = fields.Selection(LINE_KINDS, required=True, readonly=True)
    name = fields.Char(string="Object", required=True, readonly=True)
    domain_name = fields.Char(string="Domain", required=True, readonly=True, index=True)
    remote_id = fields.Integer(string="Mail Server ID", readonly=True)
    enabled = fields.Boolean(readonly=True)
    quota_mb = fields.Integer(string="Quota (MB)", readonly=True)
    default_quota_mb = fields.Integer(string="Default Mailbox Quota (MB)", readonly=True)
    message_limit = fields.Integer(string="Daily Message Limit", readonly=True)
    recipients = fields.Text(readonly=True)
    target = fields.Char(string="Alias Of", readonly=True)
    dkim_selector = fields.Char(readonly=True)
    dkim_public_key = fields.Text(readonly=True)
    action = fields.Selection(LINE_ACTIONS, required=True, default="create")
    problem = fields.Char(readonly=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        index="btree_not_null",
        help="Empty: a new customer named after the domain.",
    )
    plan_id = fields.Many2one("fayvad.mail.plan", index="btree_not_null")
    imported = fields.Boolean(readonly=True, copy=False, default=False, index=True)
    contents_read = fields.Boolean(
        readonly=True,
        copy=False,
        help="A domain's line: what the domain holds is read (the dry run's progress).",
    )
    refused = fields.Boolean(readonly=True, copy=False, help="Odoo refused it while importing (an error).")
    organization_id = fields.Many2one(
        "fayvad.mail.organization", readonly=True, ondelete="set null", index="btree_not_null"
    )
    domain_id = fields.Many2one(
        "fayvad.mail.domain", readonly=True, ondelete="set null", index="btree_not_null"
    )
    account_id = fields.Many2one(
        "fayvad.mail.account", readonly=True, ondelete="set null", index="btree_not_null"
    )
    alias_id = fields.Many2one(
        "fayvad.mail.alias", readonly=True, ondelete="set null", index="btree_not_null"
    )
    domain_alias_id = fields.Many2one(
        "fayvad.mail.domain.alias", readonly=True, ondelete="set null", index="btree_not_null"
    )

    def init(self):
        res = super().init()
        # the dry run's checks look lines up by name within a run
        create_index(
            self.env.cr, "fayvad_mail_import_line_import_name_idx", self._table, ["import_id", "name"]
        )
        return res

    def _held(self):
        """The lines of what these domains' lines hold, still to import."""
        return self.search(
            [
                ("import_id", "in", self.import_id.ids),
                ("domain_name", "in", self.mapped("name")),
                ("kind", "!=", "domain"),
                ("action", "=", "create"),
                ("imported", "=", False),
            ]
        )

    def _set_conflict(self, problem, refused=False):
        """These lines, in conflict for ``problem``; a domain's, with what it holds."""
        domains = self.filtered(lambda line: line.kind == "domain")
        held = domains._held() - self if domains else self.browse()
        self.write({"action": "conflict", "problem": problem, "refused": refused})
        held.write({"action": "conflict", "problem": self.env._("its domain is in conflict")})

    # -- importing -------------------------------------------------------------------------------
    def _import_safely(self, method):
        """``method`` of this line; what Odoo refuses (a limit, a rule) turns
        the line into a conflict that says why, and the import goes on."""
        self.ensure_one()
        try:
            with self.env.cr.savepoint():
                getattr(self, method)()
        except (UserError, ValidationError) as exc:
            self._set_conflict(self.env._("refused by Odoo: %s", exc.args[0]), refused=True)
            _logger.info("import line %s (%s) refused: %s", self.id, self.name, exc.args[0])

    def _import_domain(self):
        """This domain line and everything of its domain to import, in this
        transaction: an organization (or the run's one), the domain, its
        mailboxes, aliases, forwards and domain aliases."""
        self.ensure_one()
        env = self.env(su=True, context=dict(self.env.context, **IMPORTING))
        line = self.with_env(env)
        org = line._organization()
        domain = env["fayvad.mail.domain"].create(
            {
                "name": line.name,
                "organization_id": org.id,
                "state": "active",
                "remote_id": line.remote_id,
                "dkim_selector": line.dkim_selector or "modoboa",
                "dkim_public_key": line.dkim_public_key or False,
                "quotas_kept": True,
                "kept_quota_mb": line.quota_mb,
                "kept_default_quota_mb": line.default_quota_mb,
                # in service already: its owner is the hosting business's customer
                "verification_state": "verified" if line.enabled else "pending",
                "verified_how": "imported" if line.enabled else False,
                "verified_at": fields.Datetime.now() if line.enabled else False,
            }
        )
        line.write({"imported": True, "organization_id": org.id, "domain_id": domain.id})
        for child in line._held().sorted(lambda ln: (CHILD_ORDER[ln.kind], ln.sequence)):
            child._import_one()

    def _organization(self):
        """The organization the domain joins: its customer's (one organization
        a customer: the one Odoo has, or the one this import made), else a
        new one, for the run's customer or the line's (a new customer named
        after the domain when none was found)."""
        run = self.import_id
        Org = self.env["fayvad.mail.organization"]
        # one transaction at a time decides for the run (two domains of one customer)
        self.env.cr.execute(SQL("SELECT id FROM fayvad_mail_import WHERE id = %s FOR NO KEY UPDATE", run.id))
        if run.grouping == "customer":
            partner, name = run.partner_id, run.partner_id.name
        else:
            partner = self.partner_id or self.env["res.partner"].create(
                {"name": self.name, "is_company": True, "website": f"https://{self.name}"}
            )
            name = self.name
        existing = Org.search([("partner_id", "=", partner.id)], limit=1)
        return existing or Org.create(self._organization_vals(name, partner))

    def _organization_vals(self, name, partner):
        plan = self.plan_id
        return {
            "name": name,
            "partner_id": partner.id,
            "company_id": self.import_id.company_id.id,
            "plan_id": plan.id,
            "mail_server_id": self.import_id.server_id.id,
            "state": "active",
            "max_users": plan.max_users,
            "max_storage_gb": plan.max_storage_gb,
            "max_aliases": plan.max_aliases,
            "max_domain_aliases": plan.max_domain_aliases,
            "default_mailbox_quota_mb": plan.default_mailbox_quota_mb,
        }

    def _import_one(self):
        """One mailbox, alias, catch-all, forward or domain alias, as it is on the server."""
        self.ensure_one()
        env = self.env(su=True, context=dict(self.env.context, active_test=False, **IMPORTING))
        line = self.with_env(env)
        domain = env["fayvad.mail.domain"].search(
            [("name", "=", line.domain_name), ("state", "!=", "terminated")], limit=1
        )
        local_part = line.name.partition("@")[0]
        if line.kind == "mailbox":
            record = env["fayvad.mail.account"].create(
                {
                    "local_part": local_part,
                    "domain_id": domain.id,
                    "quota": line.quota_mb * MB,
                    "state": "active" if line.enabled else "suspended",
                    "suspended_by": False if line.enabled else "admin",
                    "remote_id": line.remote_id,
                    # in service before: nothing is charged for it (``fayvad_mail_no_fee``)
                    "service_start_date": fields.Date.context_today(line),
                }
            )
            line.write({"imported": True, "account_id": record.id})
        elif line.kind in ("alias", "catchall", "forward"):
            recipients = (line.recipients or "").split()
            vals = {"kind": line.kind, "domain_id": domain.id, "enabled": line.enabled}
            if line.kind == "forward":
                account = env["fayvad.mail.account"].search(
                    [("email", "=", line.name), ("state", "!=", "terminated")], limit=1
                )
                vals["account_id"] = account.id
                recipients = [r for r in recipients if r != line.name]  # its copy: Odoo's forwards keep it
            elif line.kind == "alias":
                vals["local_part"] = local_part
            record = env["fayvad.mail.alias"].create(
                {**vals, "recipients": "\n".join(recipients), "state": "active", "remote_id": line.remote_id}
            )
            line.write({"imported": True, "alias_id": record.id})
        else:
            target = env["fayvad.mail.domain"].search(
                [("name", "=", line.target), ("state", "!=", "terminated")], limit=1
            )
            record = env["fayvad.mail.domain.alias"].create(
                {
                    "name": line.name,
                    "domain_id": target.id,
                    "enabled": line.enabled,
                    "state": "active",
                    "remote_id": line.remote_id,
                }
            )
            line.write({"imported": True, "domain_alias_id": record.id})
