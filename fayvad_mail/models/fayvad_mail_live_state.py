from odoo import models

LIVE_STATE_NOTIFICATION = "fayvad_mail/state_changed"


class FayvadMailLiveState(models.AbstractModel):
    """Records whose state the job queue changes behind an open form: each
    change of their state is pushed on Odoo's bus to the Mail Hosting users
    (their group's channel), whose open, unmodified form of that record then
    reloads (static/src/js/live_state.js) instead of showing "Provisioning"
    until the page is reloaded."""

    _name = "fayvad.mail.live.state"
    _description = "Mail Hosting State Pushed to Open Forms"

    def write(self, vals):
        res = super().write(vals)
        if "state" in vals and self:
            self._push_state()
        return res

    def _push_state(self):
        """Tell the Mail Hosting users' open forms of these records to reload."""
        group = self.env.ref("fayvad_mail.fayvad_mail_group_user", raise_if_not_found=False)
        if group:
            self.env["bus.bus"]._sendone(
                group, LIVE_STATE_NOTIFICATION, {"model": self._name, "ids": self.ids}
            )
