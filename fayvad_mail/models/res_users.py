from odoo import api, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.base.models.res_users import check_identity

from ..const import ROLE_LABELS, ROLES

API_KEY_SCOPE = "fayvad_mail.erp_api"


class ResUsers(models.Model):
    _inherit = "res.users"

    @api.model
    def _fayvad_require(self, role):
        """Refuse unless the environment's user has ``role`` ("user",
        "accountant", "admin") of Mail Hosting; the superuser (``sudo()``,
        crons, the portal's checked changes) always may. Called as
        ``self.env["res.users"]._fayvad_require(role)`` (``env.user`` is a
        superuser record)."""
        if self.env.su:
            return
        if not self.env.user.has_group(ROLES[role]):
            raise AccessError(
                self.env._(
                    "This action is for %(role)s; %(user)s does not have that role.",
                    role=ROLE_LABELS[role],
                    user=self.env.user.name,
                )
            )

    @api.model
    def _fayvad_cli_api_key(self, login):
        """For ``./dev api-key LOGIN``: a new persistent API key of the
        addon's scope for that user."""
        user = self.search([("login", "=", login)], limit=1)
        if not user:
            raise UserError(self.env._("no user with login %s", login))
        return (
            self.env["res.users.apikeys"]
            .with_user(user)
            .sudo()
            ._generate(API_KEY_SCOPE, "fayvad_mail ERP API (./dev api-key)", None)
        )

    @check_identity
    def action_fayvad_api_key_wizard(self):
        """Odoo's "New API Key" dialog, making a key of the ERP API's scope
        (after the usual password confirmation)."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "res.users.apikeys.description",
            "name": self.env._("New ERP API Key"),
            "target": "new",
            "views": [(False, "form")],
            "context": {"fayvad_erp_api_key": True},
        }
