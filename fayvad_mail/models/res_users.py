from odoo import api, models
from odoo.exceptions import AccessError

from odoo.addons.base.models.res_users import check_identity

from ..const import ROLE_LABELS, ROLES


class ResUsers(models.Model):
    _inherit = "res.users"

    @api.model
    def _fayvad_members(self, role):
        """The people of ``role`` ("user", "accountant", "admin") to tell
        something: active internal users of its group (not the superuser),
        oldest first."""
        root = self.env.ref("base.user_root")
        users = self.env.ref(ROLES[role]).sudo().users
        return users.filtered(lambda u: u.active and not u.share and u != root).sorted("id")

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
