from odoo import api, fields, models
from odoo.exceptions import ValidationError

# what a plan prices beyond what its fee includes: kind -> (included field, unit price field)
EXTRA_UNITS = {
    "users": ("included_users", "price_per_extra_user"),
    "aliases": ("included_aliases", "price_per_extra_alias"),
    "domain_aliases": ("included_domain_aliases", "price_per_extra_domain_alias"),
    "storage_gb": ("max_storage_gb", "price_per_extra_gb"),
}


class FayvadMailPlan(models.Model):
    _name = "fayvad.mail.plan"
    _description = "Mail Hosting Plan"
    _inherit = ["mail.thread"]
    _order = "sequence, monthly_price, id"

    name = fields.Char(required=True, translate=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(
        "res.currency", required=True, tracking=True, default=lambda self: self.env.company.currency_id
    )
    monthly_price = fields.Monetary(tracking=True, help="Subscription fee per month.")
    included_users = fields.Integer(
        default=5, tracking=True, help="Mailboxes covered by the monthly price; more are billed per user."
    )
    price_per_extra_user = fields.Monetary(string="Price per Extra User", tracking=True)
    price_per_extra_gb = fields.Monetary(
        string="Price per Extra GB",
        tracking=True,
        help="Monthly price of each GB an organization has beyond the plan's storage.",
    )
    max_users = fields.Integer(string="Default Max Users", default=10, tracking=True)
    max_storage_gb = fields.Integer(string="Default Max Storage (GB)", default=50, tracking=True)
    max_aliases = fields.Integer(
        string="Default Max Aliases",
        default=20,
        tracking=True,
        help="Aliases and catch-alls an organization may have (forwards of its mailboxes do not count).",
    )
    max_domain_aliases = fields.Integer(string="Default Max Domain Aliases", default=2, tracking=True)
    included_aliases = fields.Integer(
        default=10,
        tracking=True,
        help="Aliases and catch-alls covered by the monthly price; more are billed.",
    )
    price_per_extra_alias = fields.Monetary(string="Price per Extra Alias", tracking=True)
    included_domain_aliases = fields.Integer(
        default=1, tracking=True, help="Domain aliases covered by the monthly price; more are billed."
    )
    price_per_extra_domain_alias = fields.Monetary(string="Price per Extra Domain Alias", tracking=True)
    daily_message_limit = fields.Integer(
        string="Daily Sending Limit per Mailbox",
        default=0,
        tracking=True,
        help="Messages each mailbox may send per day, enforced by the mail server (0: no limit).",
    )
    default_mailbox_quota_mb = fields.Integer(
        string="Default Mailbox Quota (MB)",
        default=1024,
        tracking=True,
        help="Quota of a new mailbox when the request gives none (1 MB = 1,048,576 bytes).",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Invoice Product",
        check_company=True,
        tracking=True,
        domain="[('type', '=', 'service')]",
        help="Product used on invoice lines for this plan (its taxes and income account apply).",
    )
    description = fields.Text(translate=True)
    organization_count = fields.Integer(compute="_compute_organization_count")

    _sql_constraints = [
        ("monthly_price_positive", "CHECK(monthly_price >= 0)", "A plan's monthly price cannot be negative."),
        (
            "extra_user_price_positive",
            "CHECK(price_per_extra_user >= 0)",
            "The price per extra user cannot be negative.",
        ),
        ("included_users_positive", "CHECK(included_users >= 0)", "Included users cannot be negative."),
        ("max_users_positive", "CHECK(max_users >= 1)", "A plan must allow at least one user."),
        ("max_aliases_positive", "CHECK(max_aliases >= 0)", "A plan's number of aliases cannot be negative."),
        (
            "daily_message_limit_positive",
            "CHECK(daily_message_limit >= 0)",
            "A sending limit cannot be negative.",
        ),
        (
            "max_domain_aliases_positive",
            "CHECK(max_domain_aliases >= 0)",
            "A plan's number of domain aliases cannot be negative.",
        ),
        ("max_storage_positive", "CHECK(max_storage_gb >= 1)", "A plan must allow at least 1 GB of storage."),
        (
            "default_quota_positive",
            "CHECK(default_mailbox_quota_mb >= 1)",
            "The default mailbox quota must be at least 1 MB.",
        ),
    ]

    def _compute_organization_count(self):
        counts = dict(
            self.env["fayvad.mail.organization"]._read_group(
                [("plan_id", "in", self.ids)], ["plan_id"], ["__count"]
            )
        )
        for plan in self:
            plan.organization_count = counts.get(plan, 0)

    @api.constrains("included_users", "max_users")
    def _check_included_users(self):
        for plan in self:
            if plan.included_users > plan.max_users:
                raise ValidationError(
                    self.env._(
                        "Plan %(plan)s includes %(included)s users but allows only %(max)s.",
                        plan=plan.name,
                        included=plan.included_users,
                        max=plan.max_users,
                    )
                )

    def _extra_units(self, kind, count):
        """(units of ``kind`` beyond what the plan's fee includes when an
        organization has ``count`` of them, the plan's price of one): the one
        home of extra-unit pricing, for additions, removals and renewals.
        No plan, or no price: nothing extra."""
        if not self:
            return 0, 0.0
        self.ensure_one()
        included, price = EXTRA_UNITS[kind]
        return max(count - self[included], 0), self[price]

    def action_view_organizations(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("fayvad_mail.fayvad_mail_organization_action")
        action["domain"] = [("plan_id", "=", self.id)]
        action["context"] = {"default_plan_id": self.id}
        return action

    def write(self, vals):
        res = super().write(vals)
        if "daily_message_limit" in vals:  # every mailbox of the plan's organizations follows
            self.env["fayvad.mail.organization"].search([("plan_id", "in", self.ids)])._push_sending_limits()
        return res
