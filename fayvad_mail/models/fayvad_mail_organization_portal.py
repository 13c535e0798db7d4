from datetime import timedelta

from odoo import models
from odoo.exceptions import UserError

from ..tools.units import GB, MB, format_free_space


class FayvadMailOrganization(models.Model):
    """What the customer portal shows of an organization, and what a
    customer may change there (controllers/portal.py): the same model
    methods the back office and the API use."""

    _inherit = "fayvad.mail.organization"

    def _portal_values(self):
        """The values of the ``/my/mail/<id>`` page: figures as the customer
        reads them, never a secret (no webhook token, no server token)."""
        self.ensure_one()
        subscription = self.subscription_id
        renewal = subscription if subscription.state != "cancelled" and subscription.period_end else None
        free_bytes = max(self.max_storage_gb * GB - self.quota_allocated, 0)
        aliases = self.alias_ids.filtered(lambda a: a.state != "terminated")
        return {
            "organization": self,
            "plan_name": self.plan_id.name or "",
            "subscription": subscription,
            "next_renewal": renewal.period_end + timedelta(days=1) if renewal else None,
            "mailboxes": self.account_ids.sorted("email"),
            "domains": self.domain_ids.sorted("name"),
            "aliases": aliases.sorted("address"),
            "forwards": {alias.account_id.id: alias for alias in aliases if alias.kind == "forward"},
            "aliases_left": max(self.max_aliases - self.env["fayvad.mail.alias"]._live_count(self), 0),
            "domain_aliases": self.domain_alias_ids.sorted("name"),
            "storage_percent_of_plan": min(self.storage_percent, 100),
            "quota_free_mb": int(free_bytes // MB),
            "quota_free": format_free_space(free_bytes),
            "users_left": max(self.max_users - self.user_count, 0),
            "open_invoices": self._open_invoices(),
            "blocked": self.state in ("suspended", "terminated"),
            "mail_settings": self.mail_server_id._mail_settings() if self.mail_server_id else {},
            "upgrades": self._portal_upgrades(),
            "password_policy": self.mail_server_id._password_policy().describe(),
        }

    # -- plan upgrades -----------------------------------------------------------------------
    def _portal_upgrades(self):
        """The plans a customer may move up to: the company's active plans
        dearer than its own."""
        self.ensure_one()
        if self.state not in ("active", "provisioning") or not self.plan_id:
            return self.env["fayvad.mail.plan"]
        return self.env["fayvad.mail.plan"].search(
            [
                ("company_id", "=", self.company_id.id),
                ("currency_id", "=", self.plan_id.currency_id.id),
                ("monthly_price", ">", self.plan_id.monthly_price),
            ]
        )

    def _plan_change_preview(self, plan):
        """What moving to ``plan`` charges now (before the customer confirms):
        (amount, currency, share of the period it covers), as ``_bill_fee``
        will charge it."""
        self.ensure_one()
        subscription = self.subscription_id
        if not subscription or subscription.state == "cancelled":
            return 0.0, plan.currency_id, 0.0
        amount, share = subscription._fee_change(plan.monthly_price)
        return amount, subscription.currency_id, share

    def _upgrade_plan(self, plan):
        """Move to ``plan`` (one of ``_portal_upgrades``): its limits where
        they are larger, and its fee from now, charged as any plan change is
        (a prorated adjustment of the period)."""
        self.ensure_one()
        if plan not in self._portal_upgrades():
            raise UserError(self.env._("%s is not a plan you can move up to.", plan.display_name))
        self.write(
            {
                "plan_id": plan.id,
                "max_users": max(self.max_users, plan.max_users),
                "max_aliases": max(self.max_aliases, plan.max_aliases),
                "max_domain_aliases": max(self.max_domain_aliases, plan.max_domain_aliases),
                "max_storage_gb": max(self.max_storage_gb, plan.max_storage_gb),
            }
        )
        self.message_post(body=self.env._("The customer moved up to the plan %s in the portal.", plan.name))
