from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..const import PROVISIONING_STATES
from ..tools.names import (
    InvalidName,
    check_not_reserved,
    control_character_problem,
    normalize_email,
    normalize_local_part,
)
from . import (
    fayvad_mail_live_state,  # noqa: F401  (the mixin inherited below)
    fayvad_mail_remote_object,  # noqa: F401  (the mixin inherited below)
)

KINDS = [("alias", "Alias"), ("catchall", "Catch-all"), ("forward", "Forward")]
MAX_RECIPIENTS = 100


class FayvadMailAlias(models.Model):
    """An address that delivers to other addresses, on the mail server: an
    alias (``sales@`` to some people), the catch-all of a domain (``@``:
    any address that nothing else takes) or the forward of a mailbox (its
    own address to other people, the mailbox keeping its copy)."""

    _name = "fayvad.mail.alias"
    _description = "Email Alias"
    _inherit = ["mail.thread", "fayvad.mail.remote.object", "fayvad.mail.live.state"]
    _order = "address"
    _rec_name = "address"
    _check_company_auto = True
    _job_kind = "alias"

    kind = fields.Selection(KINDS, required=True, default="alias", tracking=True)
    local_part = fields.Char(string="Address", help="The part before the @ (none for a catch-all).")
    domain_id = fields.Many2one(
        "fayvad.mail.domain",
        required=True,
        ondelete="cascade",
        index=True,
        tracking=True,
        # its company is its domain's: no check_company (the choice would be filtered by a company
        # not known yet)
        domain="[('state', 'not in', ('terminated', 'failed'))]",
    )
    account_id = fields.Many2one(
        "fayvad.mail.account",
        string="Forwarded Mailbox",
        index="btree_not_null",
        ondelete="cascade",
        domain="[('domain_id', '=?', domain_id), ('state', '!=', 'terminated')]",
        help="The mailbox whose mail is forwarded (a forward only); it keeps its copy.",
    )
    organization_id = fields.Many2one(related="domain_id.organization_id", store=True, index=True)
    company_id = fields.Many2one(related="domain_id.company_id", store=True, index=True)
    address = fields.Char(compute="_compute_address", store=True, index=True, string="Email Address")
    recipients = fields.Text(
        required=True, tracking=True, help="One address per line: where the mail sent to this address goes."
    )
    description = fields.Char(size=200)
    expire_at = fields.Date(string="Expires On", tracking=True, help="The mail server stops it on that day.")
    enabled = fields.Boolean(default=True, tracking=True, help="Delivers mail when enabled.")
    active = fields.Boolean(default=True, help="Archived once deleted from the mail server.")
    state = fields.Selection(PROVISIONING_STATES, default="draft", required=True, tracking=True, copy=False)
    remote_id = fields.Integer(string="Mail Server ID", copy=False, readonly=True)

    def init(self):
        # one live alias per address; a deleted one leaves its address free
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS fayvad_mail_alias_address_live_uniq "
            "ON fayvad_mail_alias (address) WHERE state != 'terminated'"
        )

    @api.depends("kind", "local_part", "domain_id.name", "account_id.email")
    def _compute_address(self):
        for alias in self:
            if alias.kind == "forward":
                alias.address = alias.account_id.email or False
            elif alias.domain_id:
                alias.address = f"{alias.local_part if alias.kind == 'alias' else ''}@{alias.domain_id.name}"
            else:
                alias.address = False

    # -- normalisation and rules ------------------------------------------------------------
    @api.model
    def _normalize_vals(self, vals):
        vals = dict(vals)
        if vals.get("kind") == "catchall":
            vals["local_part"] = False
        elif vals.get("local_part"):
            try:
                vals["local_part"] = check_not_reserved(normalize_local_part(vals["local_part"]))
            except InvalidName as exc:
                raise ValidationError(
                    self.env._("The address %(value)r %(reason)s.", value=vals["local_part"], reason=exc)
                ) from None
        if vals.get("account_id"):
            account = self.env["fayvad.mail.account"].browse(vals["account_id"])
            vals.setdefault("domain_id", account.domain_id.id)
        if "recipients" in vals:
            vals["recipients"] = "\n".join(self._normalize_recipients(vals["recipients"]))
        return vals

    @api.model
    def _split_recipients(self, recipients):
        """The addresses of a recipients text (one a line, or comma-separated), as typed."""
        return [
            text.strip().lower()
            for text in (recipients or "").replace(",", "\n").splitlines()
            if text.strip()
        ]

    @api.model
    def _normalize_recipients(self, recipients):
        """A list of e-mail addresses (given as a list or as text, one per
        line or separated by commas), normalised, without duplicates."""
        if isinstance(recipients, str):
            recipients = recipients.replace(",", "\n").splitlines()
        clean = []
        for value in recipients or []:
            text = (value or "").strip()
            if not text:
                continue
            try:
                address = normalize_email(text)
            except InvalidName as exc:
                raise ValidationError(
                    self.env._("The recipient %(value)r %(reason)s.", value=text, reason=exc)
                ) from None
            if address not in clean:
                clean.append(address)
        if not clean:
            raise ValidationError(self.env._("An alias needs at least one recipient."))
        if len(clean) > MAX_RECIPIENTS:
            raise ValidationError(self.env._("An alias has at most %s recipients.", MAX_RECIPIENTS))
        return clean

    def _recipient_list(self):
        """The recipients as the mail server gets them: a forward adds the
        mailbox itself (it keeps its copy)."""
        self.ensure_one()
        recipients = (self.recipients or "").split()
        if self.kind == "forward" and self.account_id.email not in recipients:
            recipients.append(self.account_id.email)
        return recipients

    @api.constrains("description")
    def _check_description_one_line(self):
        for alias in self:
            problem = control_character_problem(alias.description or "")
            if problem:
                raise ValidationError(
                    self.env._(
                        "The description of %(alias)s: %(problem)s", alias=alias.address, problem=problem
                    )
                )

    @api.constrains("kind", "local_part", "account_id", "domain_id")
    def _check_kind(self):
        for alias in self:
            if alias.kind == "alias" and not alias.local_part:
                raise ValidationError(self.env._("An alias needs an address."))
            if alias.kind == "forward" and not alias.account_id:
                raise ValidationError(self.env._("A forward belongs to a mailbox."))
            if alias.kind == "forward" and alias.account_id.domain_id != alias.domain_id:
                raise ValidationError(self.env._("A forward is on its mailbox's domain."))
            if alias.kind != "forward" and alias.account_id:
                raise ValidationError(self.env._("Only a forward belongs to a mailbox."))

    @api.constrains("address")
    def _check_not_a_mailbox(self):
        """An alias or catch-all never takes a mailbox's address (a forward
        is on its own mailbox's)."""
        Account = self.env["fayvad.mail.account"].sudo().with_context(active_test=False)
        for alias in self.filtered(lambda a: a.kind != "forward"):
            if Account.search_count([("email", "=", alias.address), ("state", "!=", "terminated")], limit=1):
                raise ValidationError(self.env._("%s is a mailbox's address.", alias.address))

    @api.constrains("domain_id", "kind", "state")
    def _check_organization_limit(self):
        """The plan's number of aliases (catch-alls count, forwards do not)."""
        for org in self.organization_id:
            problem = org._room_problems().get("aliases")
            if problem:
                raise ValidationError(problem)

    def _counted_domain(self):
        """Aliases and catch-alls count; forwards are part of their mailbox."""
        return [("kind", "!=", "forward")]

    # -- CRUD ----------------------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        vals_list = [self._normalize_vals(vals) for vals in vals_list]
        domains = self.env["fayvad.mail.domain"].browse(
            [v["domain_id"] for v in vals_list if v.get("domain_id")]
        )
        domains.organization_id._lock_for_update()
        for domain in domains:
            if domain.organization_id.state == "terminated" or domain.state == "terminated":
                raise ValidationError(self.env._("%s is terminated: it takes no new alias.", domain.name))
        aliases = super().create(vals_list)
        for alias in aliases:
            self.env["fayvad.mail.billing.event"]._on_alias_change(alias, added=True)
        return aliases

    def write(self, vals):
        if {"kind", "local_part", "domain_id", "account_id"} & set(vals) and self.filtered(
            lambda a: a.state != "draft"
        ):
            raise ValidationError(
                self.env._("An alias cannot change its address once it is on the mail server.")
            )
        vals = self._normalize_vals(vals)
        res = super().write(vals)
        if {"recipients", "enabled", "expire_at", "description"} & set(vals):
            self._push_changes()
        return res

    # -- the mail server -------------------------------------------------------------------------
    def _jobs_before(self):
        """A forward also waits for its mailbox."""
        Job = self.env["fayvad.mail.job"]
        mailbox = Job.search(
            [
                ("account_id", "=", self.account_id.id or 0),
                ("job_type", "=", "create_mailbox"),
                ("state", "in", ("pending", "failed")),
            ],
            order="id desc",
            limit=1,
        )
        return mailbox or super()._jobs_before()

    # -- its life on the mail server (run by the job queue; each step idempotent) --------------
    def _mail_server_fields(self):
        """What the server should hold. Suspension keeps aliases delivering
        (soft suspension: mail is still received)."""
        self.ensure_one()
        return {
            "address": self.address,
            "recipients": sorted(self._recipient_list()),
            "enabled": bool(self.enabled),
            "description": self.description or "",
            "expire_at": self.expire_at.isoformat() if self.expire_at else None,
        }

    def _mail_server_create(self, client, job):
        """Create the alias, or make the one Odoo created (its remote id)
        what Odoo says now; never another object that has the address."""
        if "terminated" in (self.state, self.organization_id.state):
            return
        wanted = self._mail_server_fields()
        remote = client.get_alias(self.remote_id) if self.remote_id else None
        if remote is None:  # never created, or deleted on the server since: Odoo's is created
            remote = client.ensure_alias(**wanted)
        have = {
            "address": remote.address,
            "recipients": sorted(remote.recipients),
            "enabled": remote.enabled,
            "description": remote.description,
            "expire_at": remote.expire_at,
        }
        if have != wanted:
            client.update_alias(remote.id, **wanted)
        vals = {"remote_id": remote.id}
        if self.state in ("draft", "provisioning", "failed"):
            vals["state"] = "active"
        self.write(vals)

    def _mail_server_delete(self, client, job):
        """Delete the alias Odoo created (by its remote id); one that has
        the same address now is another's and stays."""
        if self.remote_id:
            client.delete_alias(self.remote_id)
        self.remote_id = False
