from odoo import api, fields, models
from odoo.exceptions import UserError


class FayvadMailBillingWebhook(models.AbstractModel):
    """What a verified billing webhook event does to an organization
    (CONTRACT.md): it is recorded as a billing event, and changes the
    subscription, the fee of the period, dunning and suspensions."""

    _name = "fayvad.mail.billing.webhook"
    _description = "Billing Webhook Events"

    @api.model
    def _currency(self, org, code):
        """The active currency of an ISO code (the company's when empty)."""
        if not code:
            return org.company_id.currency_id
        Currency = self.env["res.currency"]
        stored = [name for name, field in Currency._fields.items() if field.store and field.column_type]
        currency = Currency.search_fetch([("name", "=", code)], stored, limit=1)
        if not currency:
            raise UserError(self.env._("The currency %s is not active in Odoo.", code))
        return currency

    @api.model
    def _apply(self, org, data, delivery, currency=None):
        """Apply one verified, validated event to ``org``; the billing event."""
        org.ensure_one()
        currency = currency or self._currency(org, data["currency"])
        event_type = data["event_type"]
        subscription = org.subscription_id
        if not subscription and event_type in ("subscription_created", "subscription_updated"):
            # its fee is the event's (charged below, once), not the plan's at creation
            subscription = (
                self.env["fayvad.mail.subscription"]
                .with_context(fayvad_mail_no_fee=True)
                .create({"organization_id": org.id, "plan_id": org.plan_id.id, "currency_id": currency.id})
            )
        amount = currency.round(float(data["amount"])) if data["amount"] is not None else None
        Event = self.env["fayvad.mail.billing.event"]
        if not subscription or subscription.organization_id == org:
            Event = Event.with_context(fayvad_mail_same_company=True)
        event = Event.create(
            {
                "currency_id": currency.id,  # first: the amounts are rounded in it
                "organization_id": org.id,
                # what the related fields would find (no computation for them)
                "company_id": org.company_id.id,
                "partner_id": org.partner_id.id,
                "subscription_id": subscription.id,
                "event_type": event_type,
                "date": (data["timestamp"] and data["timestamp"].date()) or fields.Date.context_today(self),
                "quantity": 1,
                "unit_price": amount or 0.0,
                "description": data["description"] or False,
                "external_invoice_id": data["invoice_id"] or False,
                "webhook_delivery_id": delivery.id,
            }
        ).with_env(self.env)
        if event_type in ("subscription_created", "subscription_updated"):
            subscription._on_subscription_event(amount, data["currency"] and currency, event=event)
        elif event_type == "subscription_cancelled":
            if subscription:
                subscription._on_cancelled()
            elif org.state != "terminated":
                org._suspend("cancelled")
        elif event_type == "payment_received":
            self.env["fayvad.mail.dunning"]._payment_received(org)
        elif event_type == "payment_failed":
            if subscription:
                subscription._on_payment_failed()
            self.env["fayvad.mail.dunning"]._after_failed_payment(org)
        return event
