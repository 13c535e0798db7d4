from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.mailserver import MailServerError, make_client

ADMIN = "fayvad_mail.fayvad_mail_group_admin"


class FayvadMailServer(models.Model):
    _name = "fayvad.mail.server"
    _description = "Mail Server"
    _inherit = ["mail.thread"]
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
    token = fields.Char(
        string="API Token",
        groups=ADMIN,
        copy=False,
        help="Sent as 'Authorization: Token <token>'. Readable by mail hosting administrators only.",
    )
    mail_host = fields.Char(
        string="Mail Host (MX)",
        tracking=True,
        help="Host name customers publish in their MX record, e.g. mail.example.com.",
    )
    connect_timeout = fields.Float(default=5.0, tracking=True, help="Seconds to wait for a connection.")
    read_timeout = fields.Float(default=30.0, tracking=True, help="Seconds to wait for an answer.")
    max_attempts = fields.Integer(
        default=8,
        tracking=True,
        help="Attempts of a provisioning job before it fails and an administrator is told.",
    )
    last_check_ok = fields.Boolean(readonly=True)
    last_check_message = fields.Char(readonly=True)

    _sql_constraints = [
        (
            "timeouts_positive",
            "CHECK(connect_timeout > 0 AND read_timeout > 0)",
            "Timeouts must be positive.",
        ),
        ("max_attempts_positive", "CHECK(max_attempts >= 1)", "A job needs at least one attempt."),
    ]

    @api.model
    def _default_server(self):
        return self.search([("company_id", "in", [self.env.company.id, False])], limit=1)

    def _client(self, timeout=None):
        """The mail-server client for this server; ``timeout`` (connect,
        read) caps the configured timeouts, e.g. for a request's budget."""
        self.ensure_one()
        server = self.sudo()
        connect, read = server.connect_timeout, server.read_timeout
        if timeout:
            connect, read = min(connect, timeout[0]), min(read, timeout[1])
        return make_client(server.server_type, server.url, server.token or "", timeout=(connect, read))

    def action_check_connection(self):
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

    @api.model
    def _dev_configure_local(self, url, token):
        """Used by ``./dev run``: make the local Modoboa the company's server."""
        server = self.with_context(active_test=False).search([("url", "=", url)], limit=1)
        vals = {
            "name": "Local Modoboa",
            "url": url,
            "token": token,
            "server_type": "modoboa",
            "mail_host": "mail.fayvad.test",
            "active": True,
            "sequence": 1,
        }
        if server:
            server.write(vals)
        else:
            server = self.create(vals)
        orgs = self.env["fayvad.mail.organization"].search([("mail_server_id", "=", False)])
        orgs.mail_server_id = server
        return server
