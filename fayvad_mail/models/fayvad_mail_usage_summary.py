from datetime import datetime, time

from odoo import api, models

from ..tools.api_errors import ApiError
from .fayvad_mail_organization import GB

# The fields of the answer, read by the searches themselves (search_fetch):
# read afterwards, the ORM would fetch them in chunks of 1000 records, one
# query per chunk (10 queries for the accounts of 1000 organizations).
ORGANIZATION_FIELDS = ["name", "partner_id", "state", "max_storage_gb"]
ACCOUNT_FIELDS = ["organization_id", "email", "state", "quota"]
EVENT_FIELDS = [
    "organization_id",
    "event_type",
    "date",
    "quantity",
    "unit_price",
    "amount",
    "currency_id",
    "description",
    "odoo_synced",
]


def _money(value):
    return round(value or 0.0, 2)


class FayvadMailUsageSummary(models.AbstractModel):
    """The usage summary of GET /erp/usage-summary/ (CONTRACT.md): counts,
    storage as of the period's end, revenue and billing events of the
    period. Reads in a fixed number of queries whatever the number of
    organizations (plus one currency rate lookup per foreign currency and
    day among the period's billing events)."""

    _name = "fayvad.mail.usage.summary"
    _description = "Usage Summary"

    @api.model
    def _summary(self, query):
        start, end = query["start_date"], query["end_date"]
        end_of_day = datetime.combine(end, time.max)
        Org = self.env["fayvad.mail.organization"]
        domain = [("create_date", "<=", end_of_day)]
        if query["organization_id"]:
            if not Org.search_count([("id", "=", query["organization_id"])]):
                raise ApiError(
                    404, "ORGANIZATION_NOT_FOUND", f"Organization {query['organization_id']} not found"
                )
            domain.append(("id", "=", query["organization_id"]))
        orgs = Org.search_fetch(domain, ORGANIZATION_FIELDS, order="id")
        accounts = (
            self.env["fayvad.mail.account"]
            .with_context(active_test=False)
            .search_fetch(
                [
                    ("organization_id", "in", orgs.ids),
                    ("create_date", "<=", end_of_day),
                    ("state", "!=", "terminated"),
                ],
                ACCOUNT_FIELDS,
            )
        )
        usage = self.env["fayvad.mail.usage.snapshot"]._usage_on(accounts, end)
        accounts_by_org = accounts.grouped("organization_id")
        events = self.env["fayvad.mail.billing.event"].search_fetch(
            [("organization_id", "in", orgs.ids), ("date", ">=", start), ("date", "<=", end)],
            EVENT_FIELDS,
            order="date, id",
        )
        page = orgs
        pagination = None
        if query["limit"] is not None or query["offset"] is not None:
            offset, limit = query["offset"] or 0, query["limit"]
            page = orgs[offset : offset + limit if limit else None]
            pagination = {"total": len(orgs), "offset": offset, "limit": limit, "count": len(page)}
        body = {
            "period": {"start_date": start.isoformat(), "end_date": end.isoformat()},
            "summary": {
                "total_organizations": len(orgs),
                "active_organizations": len(orgs.filtered(lambda o: o.state == "active")),
                "suspended_organizations": len(orgs.filtered(lambda o: o.state == "suspended")),
                "total_users": len(accounts),
                "active_users": len(accounts.filtered(lambda a: a.state == "active")),
                "total_storage_gb": round(sum(usage.values()) / GB, 2),
                "total_revenue": self._revenue(events),
                "currency": self.env.company.currency_id.name,
            },
            "organizations": [
                self._organization(
                    org, accounts_by_org.get(org, accounts.browse()), usage, query["include_details"]
                )
                for org in page
            ],
            "billing_events": [self._event(event) for event in events],
        }
        if pagination:
            body["pagination"] = pagination
        return body

    def _revenue(self, events):
        """Payments received minus refunds, in the company currency."""
        company = self.env.company
        total = 0.0
        for event in events.filtered(lambda e: e.event_type in ("payment_received", "refund")):
            amount = event.currency_id._convert(abs(event.amount), company.currency_id, company, event.date)
            total += amount if event.event_type == "payment_received" else -amount
        return _money(total)

    def _organization(self, org, accounts, usage, details):
        used = sum(usage.get(account.id, 0) for account in accounts)
        limit = org.max_storage_gb * GB
        active = len(accounts.filtered(lambda a: a.state == "active"))
        subscription = org.subscription_id
        entry = {
            "id": org.id,
            "name": org.name,
            "odoo_customer_id": org.partner_id.id,
            "state": org.state,
            "users": {"total": len(accounts), "active": active, "inactive": len(accounts) - active},
            "storage": {
                "used_gb": round(used / GB, 2),
                "limit_gb": float(org.max_storage_gb),
                "percentage": round(used * 100 / limit, 2) if limit else 0.0,
            },
            "subscription": {
                "plan_name": subscription.plan_id.name or None,
                "amount": _money(subscription.amount),
                "currency": subscription.currency_id.name,
                "status": subscription.state,
            }
            if subscription
            else None,
        }
        if details:
            entry["email_accounts"] = [
                {
                    "id": account.id,
                    "email": account.email,
                    "active": account.state == "active",
                    "quota": account.quota,
                    "used": usage.get(account.id, 0),
                }
                for account in accounts
            ]
            entry["domains"] = [{"id": d.id, "name": d.name, "state": d.state} for d in org.domain_ids]
        return entry

    @staticmethod
    def _event(event):
        return {
            "id": event.id,
            "organization_id": event.organization_id.id,
            "event_type": event.event_type,
            "event_date": event.date.isoformat(),
            "quantity": event.quantity,
            "unit_price": _money(event.unit_price),
            "amount": _money(event.amount),
            "currency": event.currency_id.name,
            "description": event.description or "",
            "odoo_synced": event.odoo_synced,
        }
