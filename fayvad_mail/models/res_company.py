from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    fayvad_require_domain_verification = fields.Boolean(
        string="Require Domain Verification",
        default=True,
        help="A new domain receives no mail and its mailboxes cannot log in until its DNS proves the "
        "customer holds it (the verification TXT record, or MX records pointing at the mail server). "
        "Off: domains work at once and verification is only reported.",
    )

    fayvad_dunning_max_failures = fields.Integer(
        string="Suspend After Failed Payments",
        default=3,
        help="Failed payments in a row after which an organization is soft-suspended (0: never).",
    )
    fayvad_dunning_grace_days = fields.Integer(
        string="Suspend After Days Overdue",
        default=15,
        help="Days an invoice may stay overdue before the organization is soft-suspended (0: never).",
    )
    fayvad_block_sending_after_failures = fields.Integer(
        string="Block Sending After Failed Payments",
        default=1,
        help="Failed payments in a row after which an organization's mailboxes may not send, before any "
        "suspension (0: never). Logins and receiving go on; a payment restores sending.",
    )
    fayvad_payment_journal_id = fields.Many2one(
        "account.journal",
        string="Mail Hosting Payment Journal",
        domain="[('type', 'in', ('bank', 'cash')), ('company_id', '=', id)]",
        help="Journal of the payments announced by the billing webhook.",
    )
    fayvad_auto_post_invoices = fields.Boolean(
        string="Post Mail Hosting Invoices",
        default=True,
        help="The monthly run posts the period's invoices; otherwise they stay draft for review.",
    )
    fayvad_webhook_retention_days = fields.Integer(
        string="Keep Webhook Deliveries (days)",
        default=90,
        help="Deliveries older than this are deleted (0: keep forever).",
    )

    def write(self, vals):
        res = super().write(vals)
        if "fayvad_require_domain_verification" in vals:
            # domains awaiting verification are enabled, or disabled again, on the mail server
            Job = self.env["fayvad.mail.job"].sudo()
            domains = (
                self.env["fayvad.mail.domain"]
                .sudo()
                .search(
                    [
                        ("company_id", "in", self.ids),
                        ("state", "=", "active"),
                        ("remote_id", "!=", 0),
                        ("verification_state", "!=", "verified"),
                    ]
                )
            )
            for org in domains.organization_id:
                Job._enqueue("update_domain_quota", organization=org)
        return res
