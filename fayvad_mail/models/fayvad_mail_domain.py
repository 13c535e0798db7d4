from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..const import DNS_RECORD_STATES, PROVISIONING_STATES
from ..tools.dns import dns_records, zone_line
from ..tools.mailserver import Unavailable
from ..tools.names import DOMAIN_ADMIN_LOCAL_PART, InvalidName, normalize_domain
from . import (
    fayvad_mail_cron_mixin,  # noqa: F401  (the mixin inherited below)
    fayvad_mail_live_state,  # noqa: F401  (the mixin inherited below)
)


class FayvadMailDomain(models.Model):
    _name = "fayvad.mail.domain"
    _description = "Mail Domain"
    _inherit = ["mail.thread", "fayvad.mail.cron.mixin", "fayvad.mail.live.state"]
    _order = "name"
    _check_company_auto = True

    name = fields.Char(
        required=True, tracking=True, help="Lower case, without trailing dot, IDN in punycode."
    )
    organization_id = fields.Many2one(
        "fayvad.mail.organization",
        required=True,
        ondelete="cascade",
        index=True,
        tracking=True,
        check_company=True,
    )
    company_id = fields.Many2one(related="organization_id.company_id", store=True, index=True)
    state = fields.Selection(PROVISIONING_STATES, default="draft", required=True, tracking=True, copy=False)
    remote_id = fields.Integer(string="Mail Server ID", copy=False, readonly=True)
    dkim_selector = fields.Char(string="DKIM Selector", default="modoboa", readonly=True)
    dkim_public_key = fields.Text(string="DKIM Public Key", readonly=True, copy=False)
    admin_created = fields.Boolean(string="Domain Administrator Created", readonly=True, copy=False)
    # an imported domain keeps the quotas it had on the server until the organization's
    # limits change: the import changes nothing there, and the drift check agrees
    quotas_kept = fields.Boolean(
        readonly=True,
        copy=False,
        help="Imported: the mail server keeps the quotas below until the organization's limits change.",
    )
    kept_quota_mb = fields.Integer(string="Domain Quota Kept (MB)", readonly=True, copy=False)
    kept_default_quota_mb = fields.Integer(
        string="Default Mailbox Quota Kept (MB)", readonly=True, copy=False
    )
    usage_read_at = fields.Datetime(
        readonly=True, copy=False, help="When the usage cron last read the mailboxes of this domain."
    )
    dns_record_ids = fields.One2many("fayvad.mail.dns.record", "domain_id", string="DNS Records to Publish")
    account_ids = fields.One2many("fayvad.mail.account", "domain_id", string="Email Accounts")
    alias_ids = fields.One2many("fayvad.mail.alias", "domain_id", string="Aliases")
    domain_alias_ids = fields.One2many("fayvad.mail.domain.alias", "domain_id", string="Domain Aliases")
    account_count = fields.Integer(compute="_compute_account_count")

    _sql_constraints = [
        ("name_unique", "UNIQUE(name)", "This domain already belongs to an organization."),
    ]

    @api.constrains("name")
    def _check_not_a_domain_alias(self):
        DomainAlias = self.env["fayvad.mail.domain.alias"].sudo()
        for domain in self:
            if DomainAlias.search_count([("name", "=", domain.name), ("state", "!=", "terminated")], limit=1):
                raise ValidationError(self.env._("%s is already a domain alias.", domain.name))

    def _compute_account_count(self):
        counts = dict(
            self.env["fayvad.mail.account"]._read_group(
                [("domain_id", "in", self.ids)], ["domain_id"], ["__count"]
            )
        )
        for domain in self:
            domain.account_count = counts.get(domain, 0)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "name" in vals:
                vals["name"] = self._normalize_name(vals["name"])
        domains = super().create(vals_list)
        domains._refresh_dns_records()
        return domains

    def write(self, vals):
        if "name" in vals:
            if self.filtered(lambda d: d.state != "draft"):
                raise ValidationError(self.env._("A domain cannot be renamed once it is on the mail server."))
            vals["name"] = self._normalize_name(vals["name"])
        res = super().write(vals)
        if {"name", "dkim_public_key", "dkim_selector", "verification_token"} & set(vals):
            self._refresh_dns_records()
        return res

    @api.model
    def _normalize_name(self, name):
        try:
            return normalize_domain(name or "")
        except InvalidName as exc:
            raise ValidationError(
                self.env._("The domain name %(name)r %(reason)s.", name=name, reason=exc)
            ) from None

    def _refresh_dns_records(self):
        """Rebuild the records to publish from the domain and its DKIM key."""
        for domain in self:
            mail_host = domain.organization_id.mail_server_id.mail_host or f"mail.{domain.name}"
            records = dns_records(
                domain.name,
                mail_host,
                domain.dkim_selector,
                domain.dkim_public_key,
                domain.verification_token,
            )
            domain.dns_record_ids.unlink()
            domain.dns_record_ids = [
                fields.Command.create({**record, "sequence": i}) for i, record in enumerate(records)
            ]

    def _quotas(self):
        """(domain quota, default mailbox quota) in MB that the mail server
        should have: the ones kept from an import, else its organization's."""
        self.ensure_one()
        if self.quotas_kept:
            return self.kept_quota_mb, self.kept_default_quota_mb
        return self.organization_id._domain_quotas()

    def _queue_provisioning(self):
        Job = self.env["fayvad.mail.job"]
        for domain in self:
            domain.state = "provisioning"
            Job._enqueue("create_domain", domain=domain)

    # -- its life on the mail server (run by the job queue; each step idempotent) --------------
    def _mail_server_create(self, client, job):
        """Create the domain (DKIM on) with the organization's quotas, keep
        its remote id and DKIM key, and queue its administrator."""
        org = self.organization_id
        if "terminated" in (self.state, org.state):
            return
        quota, default_quota = self._quotas()
        remote = client.ensure_domain(
            self.name, quota_mb=quota, default_mailbox_quota_mb=default_quota, enabled=self.mail_enabled
        )
        self._mail_server_apply(client, remote)
        if not remote.dkim_public_key:
            # a production Modoboa generates the key in its rqworker: look again later
            raise Unavailable(
                self.env._("%s: the mail server has not generated the DKIM key yet.", self.name)
            )
        vals = {
            "remote_id": remote.id,
            "dkim_selector": remote.dkim_selector or self.dkim_selector,
            "dkim_public_key": remote.dkim_public_key,
        }
        if self.state in ("draft", "provisioning", "failed"):
            vals["state"] = "active"
        self.write(vals)
        org._start_service()  # billing starts with the service
        if not self.admin_created:
            job._enqueue("create_domain_admin", domain=self, depends_on=job)
        org._update_provisioning_state()

    def _mail_server_apply(self, client, remote):
        """Make the domain on the server (``remote``) as Odoo says: the
        organization's quotas, and enabled only when it may receive mail
        (its ownership verified, or verification not required)."""
        quota, default_quota = self._quotas()
        wanted = (quota, default_quota, self.mail_enabled)
        if (remote.quota_mb, remote.default_mailbox_quota_mb, remote.enabled) != wanted:
            client.update_domain(
                remote.id, quota_mb=quota, default_mailbox_quota_mb=default_quota, enabled=self.mail_enabled
            )

    def _mail_server_create_admin(self, client, job):
        """The domain's administrator login (no mailbox)."""
        if "terminated" in (self.state, self.organization_id.state):
            return
        username = f"{DOMAIN_ADMIN_LOCAL_PART}@{self.name}"
        client.ensure_domain_admin(self.name, username, job._server()._password_policy().generate())
        self.admin_created = True
        self.organization_id._update_provisioning_state()


class FayvadMailDnsRecord(models.Model):
    _name = "fayvad.mail.dns.record"
    _description = "DNS Record to Publish"
    _order = "domain_id, sequence, id"

    domain_id = fields.Many2one("fayvad.mail.domain", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer()
    purpose = fields.Selection(
        [
            ("verification", "Ownership"),
            ("mx", "MX"),
            ("spf", "SPF"),
            ("dkim", "DKIM"),
            ("dmarc", "DMARC"),
        ],
        required=True,
    )
    record_type = fields.Char(string="Type", required=True)
    name = fields.Char(string="Host", required=True)
    value = fields.Char()
    priority = fields.Integer()
    status = fields.Selection(
        DNS_RECORD_STATES,
        required=True,
        default="to_publish",
        help="What the last DNS check found. 'Waiting': the value is known once the mail server has "
        "created the domain (DKIM key); 'Not checked yet': no check has read it; 'No answer': the DNS "
        "did not answer in time (a timeout or SERVFAIL), the next check asks again.",
    )
    found = fields.Char(string="Found Instead", help="What the DNS shows where it differs.")
    checked_at = fields.Datetime(string="Last Checked")
    zone_line = fields.Char(string="Zone File Line", compute="_compute_zone_line")

    @api.depends("record_type", "name", "value", "priority")
    def _compute_zone_line(self):
        for record in self:
            record.zone_line = zone_line(record.record_type, record.name, record.value or "", record.priority)
