import base64
import hashlib
import logging
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from odoo import api, models
from odoo.exceptions import UserError
from odoo.tools import SQL, config

_logger = logging.getLogger(__name__)

# Where the key comes from: the server's configuration, never the database (a dump
# alone then reveals no secret). An odoo.conf option, or the environment.
KEY_OPTION = "fayvad_mail_vault_key"
KEY_ENV = "FAYVAD_MAIL_VAULT_KEY"
# During a rotation: the keys secrets may still be encrypted with (comma-separated)
OLD_KEYS_OPTION = "fayvad_mail_vault_old_keys"
OLD_KEYS_ENV = "FAYVAD_MAIL_VAULT_OLD_KEYS"
MIN_KEY_LENGTH = 32
# what the vault keeps: (table, column, purpose)
STORED_SECRETS = (
    ("fayvad_mail_server", "token_encrypted", "server token"),
    ("fayvad_mail_server", "doveadm_key_encrypted", "doveadm key"),
    ("fayvad_mail_webhook_secret", "secret_encrypted", "webhook secret"),
    ("fayvad_mail_account", "pending_password", "pending password"),
    ("fayvad_mail_password_reveal", "password_encrypted", "password reveal"),
)


def configured_keys():
    """(current key, [older keys]) from the server's configuration."""
    current = (config.get(KEY_OPTION) or os.environ.get(KEY_ENV) or "").strip()
    old = config.get(OLD_KEYS_OPTION) or os.environ.get(OLD_KEYS_ENV) or ""
    return current, [key.strip() for key in str(old).split(",") if key.strip()]


def _fernet(key, purpose):
    digest = hashlib.sha256(f"fayvad_mail.{purpose}:{key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class FayvadMailVault(models.AbstractModel):
    """Secrets at rest (the mail server's token, webhook secrets, mailbox
    passwords waiting for the mail server) are stored encrypted with a key
    from the server's configuration (``fayvad_mail_vault_key`` in odoo.conf,
    or the ``FAYVAD_MAIL_VAULT_KEY`` environment variable), one key per
    purpose derived from it. Whatever carries them into PostgreSQL — the
    statement of a failed query, the "failing row" of a violated constraint,
    a database dump — then holds ciphertext only. A missing or wrong key is
    a clear error on use, never a silently empty secret.

    Rotation (README, "Secrets at rest"): configure the new key as
    ``fayvad_mail_vault_key`` and the old one in ``fayvad_mail_vault_old_keys``,
    run ``_rotate()`` (``./dev vault-rotate``, or an Odoo shell), then drop
    the old key."""

    _name = "fayvad.mail.vault"
    _description = "Mail Hosting Secrets at Rest"

    @api.model
    def _cipher(self, purpose):
        current, old = configured_keys()
        if not current:
            raise UserError(
                self.env._(
                    "No key to encrypt Mail Hosting secrets with: set %(option)s in the server's "
                    "configuration (odoo.conf) or the %(env)s environment variable.",
                    option=KEY_OPTION,
                    env=KEY_ENV,
                )
            )
        if len(current) < MIN_KEY_LENGTH:
            raise UserError(
                self.env._(
                    "The vault key (%(option)s) must be at least %(length)s characters long.",
                    option=KEY_OPTION,
                    length=MIN_KEY_LENGTH,
                )
            )
        return MultiFernet([_fernet(key, purpose) for key in [current, *old]])

    @api.model
    def _encrypt(self, purpose, value):
        if not value:
            return None
        return self._cipher(purpose).encrypt(value.encode()).decode()

    @api.model
    def _encrypt_clear_columns(self):
        """Upgrading from the versions that kept the servers' tokens and the
        webhook secrets in clear (migrations/18.0.1.1.0)."""
        self._encrypt_clear_column("fayvad_mail_server", "token", "token_encrypted", "server token")
        self._encrypt_clear_column(
            "fayvad_mail_webhook_secret", "secret", "secret_encrypted", "webhook secret"
        )

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
        """The clear value; None when there is none. A value that the
        configured keys cannot decrypt is an error, never an empty secret."""
        if not token:
            return None
        try:
            return self._cipher(purpose).decrypt(token.encode()).decode()
        except InvalidToken:
            raise UserError(
                self.env._(
                    "A stored %(what)s cannot be decrypted with the configured vault key (%(option)s): "
                    "the key is wrong, or the secret was stored under another one (add that one to "
                    "%(old)s).",
                    what=purpose,
                    option=KEY_OPTION,
                    old=OLD_KEYS_OPTION,
                )
            ) from None

    @api.model
    def _rotate(self):
        """Encrypt every stored secret again with the current key (readable
        with the current or an old key); returns how many were rewritten."""
        cr, count = self.env.cr, 0
        for table, column, purpose in STORED_SECRETS:
            cipher = self._cipher(purpose)
            cr.execute(
                SQL(
                    "SELECT id, %s FROM %s WHERE %s IS NOT NULL FOR UPDATE",
                    SQL.identifier(column),
                    SQL.identifier(table),
                    SQL.identifier(column),
                )
            )
            for record_id, token in cr.fetchall():
                try:
                    rotated = cipher.rotate(token.encode()).decode()
                except InvalidToken:
                    raise UserError(
                        self.env._(
                            "%(what)s %(id)s of %(table)s cannot be decrypted with the configured keys: "
                            "nothing was rotated.",
                            what=purpose,
                            id=record_id,
                            table=table,
                        )
                    ) from None
                # straight to psycopg2: Odoo's cursor would log the parameters of a failing query
                query = SQL(
                    "UPDATE %s SET %s = %s WHERE id = %s",
                    SQL.identifier(table),
                    SQL.identifier(column),
                    rotated,
                    record_id,
                )
                cr._obj.execute(query.code, query.params)
                count += 1
        self.env.invalidate_all()
        _logger.info("vault: %s stored secrets encrypted with the current key", count)
        return count

    @api.model
    def _reencrypt_from_database_secret(self):
        """Upgrading from the version whose key was derived from the
        database's own secret: every stored secret is encrypted again with
        the configured key (the old ciphertexts could be read from a dump)."""
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret") or ""
        cr, count = self.env.cr, 0
        for table, column, purpose in STORED_SECRETS:
            legacy = Fernet(
                base64.urlsafe_b64encode(hashlib.sha256(f"fayvad_mail.{purpose}:{secret}".encode()).digest())
            )
            cr.execute(
                SQL(
                    "SELECT id, %s FROM %s WHERE %s IS NOT NULL",
                    SQL.identifier(column),
                    SQL.identifier(table),
                    SQL.identifier(column),
                )
            )
            for record_id, token in cr.fetchall():
                try:
                    clear = legacy.decrypt(token.encode()).decode()
                except InvalidToken:
                    continue  # already under the configured key, or unreadable before too
                query = SQL(
                    "UPDATE %s SET %s = %s WHERE id = %s",
                    SQL.identifier(table),
                    SQL.identifier(column),
                    self._encrypt(purpose, clear),
                    record_id,
                )
                cr._obj.execute(query.code, query.params)
                count += 1
        return count
