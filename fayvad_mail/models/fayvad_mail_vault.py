import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken

from odoo import api, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)


class FayvadMailVault(models.AbstractModel):
    """Secrets at rest (the mail server's token, webhook secrets, mailbox
    passwords waiting for the mail server) are stored encrypted with a key
    derived from the database's secret. Whatever carries them into
    PostgreSQL — the statement of a failed query, the "failing row" of a
    violated constraint, both written to PostgreSQL's own log — then holds
    ciphertext only."""

    _name = "fayvad.mail.vault"
    _description = "Mail Hosting Secrets at Rest"

    @api.model
    def _cipher(self, purpose):
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret") or ""
        digest = hashlib.sha256(f"fayvad_mail.{purpose}:{secret}".encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))

    @api.model
    def _encrypt(self, purpose, value):
        if not value:
            return None
        return self._cipher(purpose).encrypt(value.encode()).decode()

    @api.model
    def _encrypt_clear_column(self, table, clear, encrypted, purpose):
        """Upgrading from a version that kept ``table.clear`` in clear: move
        every value, encrypted, to ``table.encrypted`` and drop the column."""
        cr = self.env.cr
        cr.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
            [table, clear],
        )
        if not cr.fetchone():
            return
        cr.execute(
            SQL(
                "SELECT id, %s FROM %s WHERE %s IS NOT NULL",
                *[SQL.identifier(n) for n in (clear, table, clear)],
            )
        )
        for record_id, value in cr.fetchall():
            cr.execute(
                SQL(
                    "UPDATE %s SET %s = %s WHERE id = %s",
                    SQL.identifier(table),
                    SQL.identifier(encrypted),
                    self._encrypt(purpose, value),
                    record_id,
                )
            )
        cr.execute(SQL("ALTER TABLE %s DROP COLUMN %s", SQL.identifier(table), SQL.identifier(clear)))

    @api.model
    def _decrypt(self, purpose, token):
        """The clear value; None when there is none, or when it was stored
        under another database secret (a copied database)."""
        if not token:
            return None
        try:
            return self._cipher(purpose).decrypt(token.encode()).decode()
        except InvalidToken:
            _logger.warning("a stored %s cannot be decrypted (another database secret?): ignored", purpose)
            return None
