import hashlib

from odoo import models
from odoo.exceptions import UserError
from odoo.tools import SQL

from odoo.addons.base.models.res_users import INDEX_SIZE, KEY_CRYPT_CONTEXT

from ..const import API_KEY_SCOPE

# Keys this process has verified: the SHA-256 of a presented key -> the stored hash it
# matched. Verifying a hash (PBKDF2) costs about 7 ms of every API request; the lookup
# below still runs each time, so a key revoked, expired or of a user archived is refused
# at once. Only a match is remembered, never a key itself.
_VERIFIED = {}
_VERIFIED_MAX = 1024


class ResUsersApikeys(models.Model):
    _inherit = "res.users.apikeys"

    def _generate(self, scope, name, expiration_date):
        if scope is None and self.env.context.get("fayvad_erp_api_key"):
            # from the Mail Hosting settings: a key of the ERP API only
            if not self.env.user.has_group("fayvad_mail.fayvad_mail_group_api"):
                raise UserError(self.env._("Only users of the ERP API group can have ERP API keys."))
            scope = API_KEY_SCOPE
        return super()._generate(scope, name, expiration_date)

    def _fayvad_check_credentials(self, key):
        """The user id of an active, unexpired API key of fayvad_mail's own
        scope, else None. Unlike ``_check_credentials``, a global (scope-less)
        RPC key is not accepted: the API and XML-RPC keys stay separate."""
        if not key:
            return None
        # the key column only holds hashes: compare candidates of the same index
        self.env.cr.execute(
            SQL(
                """
                SELECT k.user_id, k.key
                  FROM %s k JOIN res_users u ON u.id = k.user_id
                 WHERE u.active AND k.index = %s AND k.scope = %s
                   AND (k.expiration_date IS NULL OR k.expiration_date >= now() AT TIME ZONE 'utc')
                """,
                SQL.identifier(self._table),
                key[:INDEX_SIZE],
                API_KEY_SCOPE,
            )
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        for user_id, hashed in self.env.cr.fetchall():
            if _VERIFIED.get(digest) == hashed:
                return user_id
            if KEY_CRYPT_CONTEXT.verify(key, hashed):
                if len(_VERIFIED) >= _VERIFIED_MAX:
                    _VERIFIED.clear()
                _VERIFIED[digest] = hashed
                return user_id
        return None
