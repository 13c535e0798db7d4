from odoo import fields, models
from odoo.exceptions import UserError

from ..const import SUCCESS_RATE_MIN_JOBS, SUCCESS_RATE_THRESHOLD_DEFAULT
from ..tools.dnscheck import DnsSettingError, parse_nameservers


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    fayvad_dunning_max_failures = fields.Integer(
        related="company_id.fayvad_dunning_max_failures", readonly=False
    )
    fayvad_dunning_grace_days = fields.Integer(related="company_id.fayvad_dunning_grace_days", readonly=False)
    fayvad_block_sending_after_failures = fields.Integer(
        related="company_id.fayvad_block_sending_after_failures", readonly=False
    )
    fayvad_payment_journal_id = fields.Many2one(
        related="company_id.fayvad_payment_journal_id", readonly=False
    )
    fayvad_auto_post_invoices = fields.Boolean(related="company_id.fayvad_auto_post_invoices", readonly=False)
    fayvad_webhook_retention_days = fields.Integer(
        related="company_id.fayvad_webhook_retention_days", readonly=False
    )

    fayvad_require_domain_verification = fields.Boolean(
        related="company_id.fayvad_require_domain_verification", readonly=False
    )
    fayvad_dns_nameservers = fields.Char(
        string="DNS Name Servers",
        config_parameter="fayvad_mail.dns_nameservers",
        help="Where domain checks ask: IP addresses with an optional port (127.0.0.1:5353, [::1]:53), "
        "separated by spaces. Empty: the system's resolvers.",
    )

    fayvad_success_rate_threshold = fields.Integer(
        string="Provisioning Success Rate Threshold (%)",
        config_parameter="fayvad_mail.success_rate_threshold",
        default=SUCCESS_RATE_THRESHOLD_DEFAULT,
        help="When fewer of the last hour's provisioning jobs than this succeed (at least "
        f"{SUCCESS_RATE_MIN_JOBS} finished), the administrators get an activity on the mail server.",
    )

    def set_values(self):
        try:
            parse_nameservers(self.fayvad_dns_nameservers)
        except DnsSettingError as exc:
            raise UserError(self.env._("DNS Name Servers: %s", exc)) from None
        return super().set_values()

    def action_fayvad_webhook_secrets(self):
        return self.env["ir.actions.act_window"]._for_xml_id("fayvad_mail.fayvad_mail_webhook_secret_action")

    def action_fayvad_new_api_key(self):
        return self.env.user.action_fayvad_api_key_wizard()
