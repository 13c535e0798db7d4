from odoo import fields, models


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

    def action_fayvad_webhook_secrets(self):
        return self.env["ir.actions.act_window"]._for_xml_id("fayvad_mail.fayvad_mail_webhook_secret_action")

    def action_fayvad_new_api_key(self):
        return self.env.user.action_fayvad_api_key_wizard()
