from odoo import api, models
from odoo.exceptions import UserError

from odoo.addons.base.models.res_users import check_identity

API_KEY_SCOPE = "fayvad_mail.erp_api"


class ResUsers(models.Model):
    _inherit = "res.users"

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
