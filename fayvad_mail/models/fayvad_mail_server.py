import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.mailserver import DovecotStorage, MailServerError, make_client
from ..tools.passwords import MAX_LENGTH, MIN_LENGTH, PasswordPolicy
from . import fayvad_mail_cron_mixin  # noqa: F401  (the mixin inherited below)

_logger = logging.getLogger(__name__)

ADMIN = "fayvad_mail.fayvad_mail_group_admin"
SECRETS = {"token": "server token", "doveadm_key": "doveadm key"}  # field: what the vault calls it


def _secret(field, string, help_text):
    """A secret of the server (one of SECRETS): mail hosting administrators
    read it; the vault keeps it encrypted in ``<field>_encrypted``."""
    return fields.Char(
        string=string,
        groups=ADMIN,
        copy=False,
        compute="_compute_secrets",
        inverse=f"_inverse_{field}",
        help=f"{help_text} Readable by mail hosting administrators only; stored encrypted.",
    )


class FayvadMailServer(models.Model):
    _name = "fayvad.mail.server"
    _description = "Mail Server"
    _inherit = ["mail.thread", "fayvad.mail.cron.mixin"]
    _order = "sequence, id"

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    server_type = fields.Selection(
        [("modoboa", "Modoboa (REST API v2)")], required=True, default="modoboa", tracking=True
    )
    url = fields.Char(
        string="API Base URL",
        required=True,
        tracking=True,
        help="Base URL of the mail server, e.g. https://mail.example.com (no /api/ suffix).",
    )
    token = _secret("token", "API Token", "Sent as 'Authorization: Token <token>'.")
    token_encrypted = fields.Char(groups="base.group_system", copy=False, readonly=True)
    doveadm_url = fields.Char(
        string="Dovecot doveadm URL",
        tracking=True,
        help="The doveadm HTTP API of the Dovecot that stores this server's mail, e.g. "
        "http://mail.example.com:8080. Set, storage is read from it in bytes; empty, from the "
        "server's API (Modoboa tells a whole percent of each quota, nothing without a quota).",
    )
    doveadm_key = _secret("doveadm_key", "doveadm API Key", "Dovecot's doveadm_api_key.")
    doveadm_key_encrypted = fields.Char(groups="base.group_system", copy=False, readonly=True)
    mail_host = fields.Char(
        string="Mail Host (MX)",
        tracking=True,
        help="Host name customers publish in their MX record, e.g. mail.example.com.",
    )
    # what customers configure their mail clients with (the portal shows it)
    imap_host = fields.Char(string="IMAP Host", help="Empty: the mail host.")
    imap_port = fields.Integer(string="IMAP Port", default=993, help="IMAP over TLS.")
    smtp_host = fields.Char(string="SMTP Host", help="Empty: the mail host.")
    smtp_port = fields.Integer(
        string="SMTP Port", default=587, help="Submission with STARTTLS and authentication."
    )
    webmail_url = fields.Char(string="Webmail URL", help="Where customers read their mail in a browser.")
    connect_timeout = fields.Float(default=5.0, tracking=True, help="Seconds to wait for a connection.")
    read_timeout = fields.Float(default=30.0, tracking=True, help="Seconds to wait for an answer.")
    max_attempts = fields.Integer(
        default=8,
        tracking=True,
        help="Attempts of a provisioning job before it fails and an administrator is told.",
    )
    password_min_length = fields.Integer(
        string="Minimum Length",
        default=MIN_LENGTH,
        tracking=True,
        help="Mailbox passwords shorter than this are refused by the server (at least 8, the API's minimum).",
    )
    password_min_upper = fields.Integer(string="Upper Case Letters", default=0, tracking=True)
    password_min_lower = fields.Integer(string="Lower Case Letters", default=0, tracking=True)
    password_min_digits = fields.Integer(string="Digits", default=0, tracking=True)
    password_min_specials = fields.Integer(
        string="Special Characters",
        default=0,
        tracking=True,
        help="Counted among ~!@#$%^&*()_+{}\":;,'[] as Modoboa's complexity rule does.",
    )
    password_policy_summary = fields.Char(
        string="Password Policy", compute="_compute_password_policy_summary"
    )
    last_check_ok = fields.Boolean(readonly=True)
    last_check_message = fields.Char(readonly=True)
    drift_count = fields.Integer(string="Differences", compute="_compute_drift_count")

    _sql_constraints = [
        (
            "timeouts_positive",
            "CHECK(connect_timeout > 0 AND read_timeout > 0)",
            "Timeouts must be positive.",
        ),
        ("max_attempts_positive", "CHECK(max_attempts >= 1)", "A job needs at least one attempt."),
        (
            "password_min_length_range",
            f"CHECK(password_min_length BETWEEN {MIN_LENGTH} AND {MAX_LENGTH})",
            f"The minimum password length must be between {MIN_LENGTH} (the API's minimum) and {MAX_LENGTH}.",
        ),
        (
            "password_classes_positive",
            "CHECK(password_min_upper >= 0 AND password_min_lower >= 0 "
            "AND password_min_digits >= 0 AND password_min_specials >= 0)",
            "The counts of required characters cannot be negative.",
        ),
        (
            "password_classes_fit",
            f"CHECK(password_min_upper + password_min_lower + password_min_digits + password_min_specials "
            f"<= {MAX_LENGTH})",
            f"The required characters must fit in a password of {MAX_LENGTH} characters.",
        ),
    ]

    @api.depends(
        "password_min_length",
        "password_min_upper",
        "password_min_lower",
        "password_min_digits",
        "password_min_specials",
    )
    def _compute_password_policy_summary(self):
        for server in self:
            server.password_policy_summary = server._password_policy().describe()

    def _mail_settings(self):
        """What a mail client needs to reach a mailbox of this server."""
        self.ensure_one()
        return {
            "imap_host": self.imap_host or self.mail_host or "",
            "imap_port": self.imap_port or 993,
            "smtp_host": self.smtp_host or self.mail_host or "",
            "smtp_port": self.smtp_port or 587,
            "webmail_url": self.webmail_url or "",
        }

    def _password_policy(self):
        """The rules this server applies to mailbox passwords (the API
        document's, at least 8 characters, when there is no server)."""
        if not self:
            return PasswordPolicy()
        self.ensure_one()
        return PasswordPolicy(
            min_length=self.password_min_length or MIN_LENGTH,
            upper=self.password_min_upper,
            lower=self.password_min_lower,
            digits=self.password_min_digits,
            specials=self.password_min_specials,
        )

    @api.depends("token_encrypted", "doveadm_key_encrypted")
    def _compute_secrets(self):
        Vault = self.env["fayvad.mail.vault"]
        for server in self:
            for field, purpose in SECRETS.items():
                server[field] = Vault._decrypt(purpose, server.sudo()[f"{field}_encrypted"])

    def _inverse_token(self):
        self._store_secret("token")

    def _inverse_doveadm_key(self):
        self._store_secret("doveadm_key")

    def _store_secret(self, field):
        Vault = self.env["fayvad.mail.vault"]
        for server in self:
            server.sudo()[f"{field}_encrypted"] = Vault._encrypt(SECRETS[field], server[field])

    def _compute_drift_count(self):
        counts = dict(
            self.env["fayvad.mail.drift"]._read_group(
                [("server_id", "in", self.ids), ("state", "=", "open")], ["server_id"], ["__count"]
            )
        )
        for server in self:
            server.drift_count = counts.get(server, 0)

    @api.model
    def _default_server(self):
        return self.search([("company_id", "in", [self.env.company.id, False])], limit=1)

    def _client(self, deadline=None):
        """The mail-server client for this server; ``deadline`` (a
        ``time.monotonic()`` value) bounds every call, e.g. to an API
        request's time budget."""
        self.ensure_one()
        server = self.sudo()
        timeout = (server.connect_timeout, server.read_timeout)
        storage = None
        if server.doveadm_url:
            storage = DovecotStorage(server.doveadm_url, server.doveadm_key or "", timeout, deadline=deadline)
        return make_client(
            server.server_type, server.url, server.token or "", timeout, deadline=deadline, storage=storage
        )

    def action_check_connection(self):
        self.env["res.users"]._fayvad_require("admin")
        for server in self:
            try:
                server._client().check()
            except MailServerError as exc:
                server.write({"last_check_ok": False, "last_check_message": str(exc)[:250]})
            else:
                server.write({"last_check_ok": True, "last_check_message": self.env._("Connected")})
        if len(self) == 1 and not self.last_check_ok:
            raise UserError(
                self.env._(
                    "Cannot use %(server)s: %(error)s", server=self.name, error=self.last_check_message
                )
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"type": "success", "message": self.env._("The mail server answers."), "sticky": False},
        }

    def action_check_drift(self):
        self.env["res.users"]._fayvad_require("accountant")
        self.ensure_one()
        return self.env["fayvad.mail.drift"]._action_check(self)

    def action_import(self):
        """A new import from this server (its dry run is the first step)."""
        self.ensure_one()
        self.env["res.users"]._fayvad_require("admin")
        run = self.env["fayvad.mail.import"].create({"server_id": self.id})
        return {
            "type": "ir.actions.act_window",
            "res_model": "fayvad.mail.import",
            "res_id": run.id,
            "view_mode": "form",
            "target": "current",
        }

    def action_view_drift(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("fayvad_mail.fayvad_mail_drift_action")
        action["domain"] = [("server_id", "=", self.id)]
        action["context"] = {"search_default_open": 1}
        return action

    @api.model
    def _password_policy_vals(self, policy):
        """Field values of a policy given as PasswordPolicy's keywords
        (``min_length``, ``upper``, ``lower``, ``digits``, ``specials``)."""
        return {
            f"password_{key}" if key == "min_length" else f"password_min_{key}": int(value)
            for key, value in policy.items()
        }

    def _repair_drift(self):
        """Queue the jobs that put on the server what Odoo says is there
        (e.g. the demo organizations, created active before any server)."""
        self.ensure_one()
        try:
            drifts = self.env["fayvad.mail.drift"]._check(self)
        except MailServerError as exc:
            _logger.warning("cannot compare %s with Odoo now: %s", self.name, exc)
            return self.env["fayvad.mail.drift"]
        repairable = drifts.filtered("can_repair")
        if repairable:
            repairable.action_repair()
        return repairable
