import secrets
from datetime import timedelta

from odoo import api, fields, models

REVEAL_MINUTES = 15  # how long a new password waits to be shown once


class FayvadMailPasswordReveal(models.TransientModel):
    """A mailbox password waiting to be shown, once, to the portal user who
    asked for it: the portal answers its POST (add a mailbox, reset a
    password) with a redirect to a page that shows it (POST/redirect/GET),
    so that reloading that page never posts the form again. Shown once, it
    is gone; a reload then says so. Kept encrypted by the vault meanwhile,
    and vacuumed after REVEAL_MINUTES."""

    _name = "fayvad.mail.password.reveal"
    _description = "Mailbox Password Shown Once"
    _transient_max_hours = REVEAL_MINUTES / 60

    token = fields.Char(required=True, index=True, readonly=True)
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", readonly=True, index=True)
    account_id = fields.Many2one(
        "fayvad.mail.account", required=True, ondelete="cascade", readonly=True, index=True
    )
    password_encrypted = fields.Char(readonly=True)
    created = fields.Boolean(help="A new mailbox (else a new password of an existing one).", readonly=True)
    pending = fields.Boolean(help="The mail server had not answered yet.", readonly=True)
    failed = fields.Boolean(help="The mail server refused it.", readonly=True)

    @api.model
    def _keep(self, account, password, created=False, pending=False, failed=False):
        """Keep ``password`` of ``account`` for the current user; the token of its page."""
        token = secrets.token_urlsafe(24)
        self.sudo().create(
            {
                "token": token,
                "user_id": self.env.uid,
                "account_id": account.id,
                "password_encrypted": self.env["fayvad.mail.vault"]._encrypt("password reveal", password),
                "created": created,
                "pending": pending,
                "failed": failed,
            }
        )
        return token

    @api.model
    def _take(self, token):
        """(the reveal's values, the password) for the current user, once;
        (None, None) when it was shown already, expired, or is another's."""
        reveal = self.sudo().search(
            [
                ("token", "=", token or ""),
                ("user_id", "=", self.env.uid),
                ("create_date", ">=", fields.Datetime.now() - timedelta(minutes=REVEAL_MINUTES)),
            ],
            limit=1,
        )
        if not reveal:
            return None, None
        password = self.env["fayvad.mail.vault"]._decrypt("password reveal", reveal.password_encrypted)
        values = {
            "account": reveal.account_id,
            "created": reveal.created,
            "pending": reveal.pending,
            "failed": reveal.failed,
        }
        reveal.unlink()
        return values, password
