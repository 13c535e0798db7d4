import random

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models


class FayvadMailDemo(models.AbstractModel):
    """The demo data that depends on the day it is installed (called from
    demo/fayvad_mail_demo.xml): subscriptions, a month of billing events,
    daily usage snapshots, invoices and payments."""

    _name = "fayvad.mail.demo"
    _description = "Mail Hosting Demo Data"

    @api.model
    def _populate(self):
        """Demo data that depends on today: subscriptions, a month of billing
        events and daily usage snapshots."""
        today = fields.Date.context_today(self)
        orgs = self.env["fayvad.mail.organization"].search([("partner_id.email", "=like", "%.example")])
        self._failed_provisioning(orgs.filtered(lambda o: o.state == "failed"))
        # what is not in service is never billed (a draft, a failed provisioning)
        orgs = orgs.filtered(lambda o: o.state in ("active", "suspended"))
        orgs = orgs.filtered(lambda o: not o.subscription_ids)  # demo functions run again on upgrades
        if not orgs:
            return
        # the demo customers have been here for a while
        self.env.flush_all()
        since = fields.Datetime.now() - relativedelta(days=45)
        self.env.cr.execute(
            "UPDATE fayvad_mail_organization SET create_date = %s WHERE id = ANY(%s)", [since, orgs.ids]
        )
        self.env.cr.execute(
            "UPDATE fayvad_mail_account SET create_date = %s WHERE organization_id = ANY(%s)",
            [since, orgs.ids],
        )
        orgs.invalidate_model(["create_date"])
        self.env["fayvad.mail.account"].invalidate_model(["create_date"])
        Event = self.env["fayvad.mail.billing.event"]
        Snapshot = self.env["fayvad.mail.usage.snapshot"]
        for org in orgs:
            plan = org.plan_id
            start = today - relativedelta(days=30)
            org.subscription_ids = [
                fields.Command.create(
                    {
                        "plan_id": plan.id,
                        "amount": plan.monthly_price,
                        "currency_id": plan.currency_id.id,
                        "date_start": start,
                        "period_start": start,
                        "period_end": start + relativedelta(months=1, days=-1),
                        "fee_period_start": start,  # the fee billed by the event below
                        "fee_amount": plan.monthly_price,
                        "state": "past_due" if org.state == "suspended" else "active",
                        "external_ref": f"SUB-{org.id:04d}",
                    }
                )
            ]
            Event.create(
                {
                    "organization_id": org.id,
                    "event_type": "subscription_created",
                    "date": start,
                    "quantity": 1,
                    "unit_price": plan.monthly_price,
                    "description": f"{plan.name} subscription",
                }
            )
            if org.state == "suspended":
                for days in (20, 13, 6):
                    Event.create(
                        {
                            "organization_id": org.id,
                            "event_type": "payment_failed",
                            "date": today - relativedelta(days=days),
                            "quantity": 1,
                            "unit_price": 0,
                            "description": "Card declined",
                        }
                    )
            rng = random.Random(org.id)
            for account in org.account_ids.filtered(lambda a: a.state in ("active", "suspended")):
                fill = rng.uniform(0.05, 0.6)
                for day in range(30, -1, -1):
                    used = int(account.quota * fill * (1 - day / 45) * rng.uniform(0.97, 1.0))
                    Snapshot._record(account, max(used, 0), today - relativedelta(days=day))
        self._accounting(orgs, today)

    @api.model
    def _failed_provisioning(self, orgs):
        """A failed organization of the demo failed for a reason: the job the
        mail server refused, as it would be recorded."""
        Job = self.env["fayvad.mail.job"].sudo()
        orgs._stop_failed_service()  # never on the mail server: never billed
        for org in orgs.filtered(lambda o: not o.job_ids):
            for domain in org.domain_ids:
                Job.create(
                    {
                        "job_type": "create_domain",
                        "organization_id": org.id,
                        "domain_id": domain.id,
                        "company_id": org.company_id.id,
                        "state": "failed",
                        "attempts": 1,
                        "last_error": f"POST /api/v2/domains/: HTTP 400: {domain.name}: domain quota exceeded",
                        "refusal_reason": f"{domain.name}: domain quota exceeded",
                    }
                )

    @api.model
    def _accounting(self, orgs, today):
        """Invoice the demo month and register the payments of the customers
        who paid (without committing: this runs during installation)."""
        Event = self.env["fayvad.mail.billing.event"]
        pending = Event.search([("organization_id", "in", orgs.ids), ("sync_state", "=", "pending")])
        for event in pending:
            event._sync()
        invoices = pending.invoice_id.filtered(lambda m: m.state == "draft")
        for invoice in invoices:
            invoice.write(
                {
                    "invoice_date": today - relativedelta(days=30),
                    "invoice_date_due": today - relativedelta(days=20),
                }
            )
            invoice.action_post()
        for invoice in invoices.filtered(lambda m: m.fayvad_organization_id.state == "active"):
            payment = Event.create(
                {
                    "organization_id": invoice.fayvad_organization_id.id,
                    "event_type": "payment_received",
                    "date": today - relativedelta(days=25),
                    "quantity": 1,
                    "unit_price": invoice.amount_total,
                    "currency_id": invoice.currency_id.id,
                    "external_invoice_id": invoice.name,
                    "description": "Card payment",
                }
            )
            payment._sync()
