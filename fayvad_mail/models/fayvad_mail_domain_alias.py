from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..const import PROVISIONING_STATES
from ..tools.dns import dns_records, zone_line
from ..tools.mailserver import Unavailable
from . import (
    fayvad_mail_live_state,  # noqa: F401  (the mixin inherited below)
    fayvad_mail_remote_object,  # noqa: F401  (the mixin inherited below)
)


class FayvadMailDomainAlias(models.Model):
    """Another domain name whose mail goes to a domain of the organization
    (``acme.org`` for ``acme.example``: ``sales@acme.org`` reaches
    ``sales@acme.example``)."""

    _name = "fayvad.mail.domain.alias"
    _description = "Domain Alias"
    _inherit = ["mail.thread", "fayvad.mail.remote.object", "fayvad.mail.live.state"]
    _order = "name"
    _check_company_auto = True
    _job_kind = "domain_alias"

    name = fields.Char(
        required=True, tracking=True, help="Lower case, without trailing dot, IDN in punycode."
    )
    domain_id = fields.Many2one(
        "fayvad.mail.domain",
        string="Target Domain",
        required=True,
        ondelete="cascade",
        index=True,
        domain="[('state', 'not in', ('terminated', 'failed'))]",
        tracking=True,
    )
    organization_id = fields.Many2one(related="domain_id.organization_id", store=True, index=True)
    company_id = fields.Many2one(related="domain_id.company_id", store=True, index=True)
    enabled = fields.Boolean(default=True, tracking=True)
    active = fields.Boolean(default=True, help="Archived once deleted from the mail server.")
    state = fields.Selection(PROVISIONING_STATES, default="draft", required=True, tracking=True, copy=False)
    remote_id = fields.Integer(string="Mail Server ID", copy=False, readonly=True)
    dns_zone = fields.Text(
        string="DNS Records to Publish",
        compute="_compute_dns_zone",
        help="MX, SPF and DMARC of the alias name, as zone-file lines (DKIM signs with the target's key).",
    )

    def init(self):
        # one live domain alias per name; a deleted one leaves its name free
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS fayvad_mail_domain_alias_name_live_uniq "
            "ON fayvad_mail_domain_alias (name) WHERE state != 'terminated'"
        )

    @api.depends("name", "domain_id.organization_id.mail_server_id.mail_host")
    def _compute_dns_zone(self):
        for alias in self:
            if not alias.name:
                alias.dns_zone = False
                continue
            mail_host = alias.organization_id.mail_server_id.mail_host or f"mail.{alias.domain_id.name}"
            records = [r for r in dns_records(alias.name, mail_host, "", "") if r["purpose"] != "dkim"]
            alias.dns_zone = "\n".join(
                zone_line(r["record_type"], r["name"], r["value"], r["priority"]) for r in records
            )

    # -- rules ------------------------------------------------------------------------------------
    @api.model
    def _normalize_name(self, name):
        return self.env["fayvad.mail.domain"]._normalize_name(name)  # the same rules as a domain's

    @api.constrains("name")
    def _check_not_a_domain(self):
        Domain = self.env["fayvad.mail.domain"].sudo()
        for alias in self:
            if Domain.search_count([("name", "=", alias.name)], limit=1):
                raise ValidationError(self.env._("%s is already an organization's domain.", alias.name))

    @api.constrains("domain_id", "state")
    def _check_organization_limit(self):
        """The plan's number of domain aliases."""
        for org in self.organization_id:
            problem = org._room_problems().get("domain_aliases")
            if problem:
                raise ValidationError(problem)

    # -- CRUD ---------------------------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "name" in vals:
                vals["name"] = self._normalize_name(vals["name"])
        domains = self.env["fayvad.mail.domain"].browse(
            [v["domain_id"] for v in vals_list if v.get("domain_id")]
        )
        domains.organization_id._lock_for_update()
        for domain in domains:
            if "terminated" in (domain.state, domain.organization_id.state):
                raise ValidationError(
                    self.env._("%s is terminated: it takes no new domain alias.", domain.name)
                )
        aliases = super().create(vals_list)
        for alias in aliases:
            self.env["fayvad.mail.billing.event"]._on_alias_change(alias, added=True)
        return aliases

    def write(self, vals):
        if {"name", "domain_id"} & set(vals) and self.filtered(lambda a: a.state != "draft"):
            raise ValidationError(
                self.env._("A domain alias cannot be renamed once it is on the mail server.")
            )
        if "name" in vals:
            vals = {**vals, "name": self._normalize_name(vals["name"])}
        res = super().write(vals)
        if "enabled" in vals:
            self._push_changes()
        return res

    # -- its life on the mail server (run by the job queue; each step idempotent) --------------
    def _mail_server_create(self, client, job):
        """Create the domain alias, or make the one Odoo created what Odoo says now."""
        if "terminated" in (self.state, self.organization_id.state):
            return
        target = client.find_domain(self.domain_id.name)
        if target is None:
            raise Unavailable(self.env._("%s is not on the mail server yet.", self.domain_id.name))
        remote = client.get_domain_alias(self.remote_id) if self.remote_id else None
        if remote is None:
            remote = client.ensure_domain_alias(self.name, target.id, enabled=self.enabled)
        if (remote.name, remote.target_id, remote.enabled) != (self.name, target.id, self.enabled):
            client.update_domain_alias(remote.id, self.name, target.id, enabled=self.enabled)
        vals = {"remote_id": remote.id}
        if self.state in ("draft", "provisioning", "failed"):
            vals["state"] = "active"
        self.write(vals)

    def _mail_server_delete(self, client, job):
        """Delete the domain alias Odoo created (by its remote id) only."""
        if self.remote_id:
            client.delete_domain_alias(self.remote_id)
        self.remote_id = False
