from odoo import fields, models

from ..tools.units import GB, MB

THRESHOLDS = (80, 90, 100)  # percent of a quota at which people are told


def alert_level(percent):
    """The highest threshold ``percent`` reaches (0 below the first)."""
    return max((t for t in THRESHOLDS if percent >= t), default=0)


class FayvadMailQuotaAlertMixin(models.AbstractModel):
    """Quota alerts: when the usage cron sees a mailbox or an organization
    cross 80, 90 or 100 % of its quota, the accountants get an activity (an
    upsell) and the customer an e-mail from a template (Odoo's mail queue),
    once per crossing; dropping below a threshold and crossing it again
    alerts again."""

    _name = "fayvad.mail.quota.alert.mixin"
    _description = "Quota Alerts"

    quota_alert_level = fields.Integer(
        string="Quota Alert Level (%)",
        readonly=True,
        copy=False,
        help="The last quota threshold (80, 90, 100 %) people were told about; 0 below 80 %.",
    )

    def _check_quota_alerts(self):
        for record in self:
            level, told = alert_level(record.storage_percent), record.quota_alert_level
            if level != told:
                record.quota_alert_level = level  # a drop below a threshold re-arms it
            if level > told:
                record._quota_alert_organization()._quota_alert(record, level)

    def _quota_alert_organization(self):
        raise NotImplementedError

    def _quota_alert_figures(self):
        """(what is full, used, quota) as the customer reads them."""
        raise NotImplementedError


class FayvadMailAccount(models.Model):
    _name = "fayvad.mail.account"
    _inherit = ["fayvad.mail.account", "fayvad.mail.quota.alert.mixin"]

    def _quota_alert_organization(self):
        return self.organization_id

    def _quota_alert_figures(self):
        return (
            self.env._("The mailbox %s", self.email),
            f"{self.storage_used / MB:,.0f} MB",
            f"{self.quota / MB:,.0f} MB",
        )


class FayvadMailOrganization(models.Model):
    _name = "fayvad.mail.organization"
    _inherit = ["fayvad.mail.organization", "fayvad.mail.quota.alert.mixin"]

    def _quota_alert_organization(self):
        return self

    def _quota_alert_figures(self):
        return (
            self.env._("The mail hosting of %s", self.name),
            f"{self.storage_used / GB:,.2f} GB",
            f"{self.max_storage_gb} GB",
        )

    def _quota_alert(self, record, level):
        """Tell the accountants (an activity: offer more storage) and the
        customer (an e-mail through Odoo's mail queue)."""
        self.ensure_one()
        what, used, quota = record._quota_alert_figures()
        summary = self.env._("%(what)s is at %(level)s%% of its quota", what=what, level=level)
        self.activity_schedule(
            "mail.mail_activity_data_todo",
            user_id=self._quota_alert_user().id,
            summary=summary,
            note=self.env._(
                "%(used)s used of %(quota)s. An upsell: more storage, or a bigger plan.",
                used=used,
                quota=quota,
            ),
        )
        template = self.env.ref("fayvad_mail.mail_template_quota_alert")
        template.with_context(
            alert_what=what, alert_level=level, alert_used=used, alert_quota=quota
        ).send_mail(self.id, email_layout_xmlid="mail.mail_notification_light")

    def _quota_alert_user(self):
        """Who follows the customer: its salesperson, else the first mail hosting accountant."""
        salesperson = self.partner_id.user_id
        if salesperson and not salesperson.share:
            return salesperson
        group = self.env.ref("fayvad_mail.fayvad_mail_group_accountant")
        root = self.env.ref("base.user_root")
        users = group.users.filtered(lambda u: not u.share and u.active and u != root).sorted("id")
        return users[:1] or self.env.user
