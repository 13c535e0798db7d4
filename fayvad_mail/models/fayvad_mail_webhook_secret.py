import secrets

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools.signature import MIN_SECRET_BYTES, standard_secret

ADMIN = "fayvad_mail.fayvad_mail_group_admin"


class FayvadMailWebhookSecret(models.Model):
    """A shared secret that signs billing webhooks. Several may be live at
    once (rotation): a delivery is valid when it matches any of them."""

    _name = "fayvad.mail.webhook.secret"
    _description = "Billing Webhook Secret"
    _order = "create_date desc, id desc"

    name = fields.Char(string="Label", default=lambda self: self.env._("Secret"))
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    organization_id = fields.Many2one(
        "fayvad.mail.organization",
        ondelete="cascade",
        index=True,
        help="Empty: the company's secret, for /erp/webhooks/billing/. Set: that organization's own URL.",
    )
    secret = fields.Char(
        copy=False,
        groups=ADMIN,
        compute="_compute_secret",
        inverse="_inverse_secret",
        default=lambda self: secrets.token_urlsafe(32),
        help=f"HMAC-SHA256 key shared with the billing system (at least {MIN_SECRET_BYTES} bytes).",
    )
    secret_encrypted = fields.Char(groups="base.group_system", copy=False, readonly=True)
    standard_secret = fields.Char(
        string="Standard Webhooks Secret",
        compute="_compute_standard_secret",
        groups=ADMIN,
        help="The same key in the whsec_ form that Standard Webhooks senders are configured with.",
    )
    secret_hint = fields.Char(string="Secret (end)", compute="_compute_secret_hint")
    expires_at = fields.Datetime(
        string="Expires", help="Deliveries signed with this secret are refused after."
    )
    is_live = fields.Boolean(string="Live", compute="_compute_is_live")

    @api.depends("secret_encrypted")
    def _compute_secret(self):
        Vault = self.env["fayvad.mail.vault"]
        for record in self:
            record.secret = Vault._decrypt("webhook secret", record.sudo().secret_encrypted)

    def _inverse_secret(self):
        Vault = self.env["fayvad.mail.vault"]
        for record in self:
            record.sudo().secret_encrypted = Vault._encrypt("webhook secret", record.secret)

    @api.constrains("secret_encrypted")
    def _check_secret(self):
        for record in self.sudo():
            if len((record.secret or "").encode()) < MIN_SECRET_BYTES:
                raise ValidationError(
                    self.env._(
                        "A webhook secret must be at least %s bytes long: a short key can be guessed.",
                        MIN_SECRET_BYTES,
                    )
                )

    @api.depends("secret")
    def _compute_standard_secret(self):
        for record in self:
            record.standard_secret = standard_secret(record.secret) if record.secret else False

    @api.depends_context("uid")
    def _compute_secret_hint(self):
        for record in self:
            record.secret_hint = f"…{record.sudo().secret[-4:]}" if record.sudo().secret else ""

    def _compute_is_live(self):
        now = fields.Datetime.now()
        for record in self:
            record.is_live = not record.expires_at or record.expires_at > now

    @api.model
    def _live_secrets(self, company, organization=None):
        """The secrets valid now for the company route (no organization) or
        for that organization's own route."""
        domain = [
            ("company_id", "=", company.id),
            "|",
            ("expires_at", "=", False),
            ("expires_at", ">", fields.Datetime.now()),
        ]
        domain.append(("organization_id", "=", organization.id if organization else False))
        return self.sudo().search(domain).mapped("secret")

    def action_rotate(self):
        """Create a new secret beside this one; this one expires in 7 days."""
        self.env["res.users"]._fayvad_require("admin")
        self.ensure_one()
        new = self.create(
            {"company_id": self.company_id.id, "organization_id": self.organization_id.id, "name": self.name}
        )
        if not self.expires_at or self.expires_at > fields.Datetime.add(fields.Datetime.now(), days=7):
            self.expires_at = fields.Datetime.add(fields.Datetime.now(), days=7)
        return new

    def action_expire_now(self):
        self.env["res.users"]._fayvad_require("admin")
        self.write({"expires_at": fields.Datetime.now()})
        return True
