from datetime import timedelta

from odoo import models

from ..tools.units import GB, MB


class FayvadMailOrganization(models.Model):
    """What the customer portal shows of an organization (controllers/portal.py)."""

    _inherit = "fayvad.mail.organization"

    def _portal_values(self):
        """The values of the ``/my/mail/<id>`` page: figures as the customer
        reads them, never a secret (no webhook token, no server token)."""
        self.ensure_one()
        subscription = self.subscription_id
        renewal = subscription if subscription.state != "cancelled" and subscription.period_end else None
        free_bytes = max(self.max_storage_gb * GB - self.quota_allocated, 0)
        return {
            "organization": self,
            "plan_name": self.plan_id.name or "",
            "subscription": subscription,
            "next_renewal": renewal.period_end + timedelta(days=1) if renewal else None,
            "mailboxes": self.account_ids.sorted("email"),
            "domains": self.domain_ids.sorted("name"),
            "aliases": self.alias_ids.sorted("address"),
            "domain_aliases": self.domain_alias_ids.sorted("name"),
            "storage_percent_of_plan": min(self.storage_percent, 100),
            "quota_free_mb": int(free_bytes // MB),
            "users_left": max(self.max_users - self.user_count, 0),
            "open_invoices": self._open_invoices(),
            "blocked": self.state in ("suspended", "terminated"),
        }
