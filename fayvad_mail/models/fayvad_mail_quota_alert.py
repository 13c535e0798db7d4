from odoo import fields, models

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
