"""Money an accountant can trust over a customer's life: termination ends
billing, a period's fee is charged once whoever asks, and billing webhooks
are applied once per event (not once per invoice), even after the delivery
log is pruned."""

from datetime import date, timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from odoo.addons.fayvad_mail.models.fayvad_mail_webhook_identity import LEDGER_DAYS
from odoo.addons.fayvad_mail.tests.common import BillingCase

FEE_TYPES = ("subscription_created", "subscription_updated")


@tagged("post_install", "-at_install")
class TestTermination(BillingCase):
    def invoices(self, org):
        return self.env["account.move"].search(
            [("fayvad_organization_id", "=", org.id), ("move_type", "=", "out_invoice")]
        )

    def test_terminated_organization_is_never_billed_again(self):
        org = self.make_org("2026-03-01")
        self.add_accounts(org, "2026-03-02", "a", "b", "c")  # one extra user
        self.sync("2026-03-03")
        with freeze_time("2026-03-20"):
            org.action_terminate()
        sub = org.subscription_id
        self.assertEqual((sub.state, sub.date_cancelled), ("cancelled", date(2026, 3, 20)))
        self.assertEqual(org.date_terminated, date(2026, 3, 20))
        for day in ("2026-04-01", "2026-05-01", "2026-06-01"):
            with freeze_time(day):
                self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        later = org.billing_event_ids.filtered(lambda e: e.date >= date(2026, 4, 1) and e.amount)
        self.assertFalse(later, "no charge for any period after the termination")
        self.assertEqual(sub.period_start, date(2026, 3, 1), "never renewed")
        march = self.invoices(org)
        self.assertEqual(len(march), 1, "only the period it was a customer in is invoiced")
        self.assertEqual((march.fayvad_period_start, march.state), (date(2026, 3, 1), "posted"))
        self.assertAlmostEqual(march.amount_untaxed, 100 + round(10 * 30 / 31, 2))

    def test_termination_removes_draft_lines_of_later_periods_never_posted_ones(self):
        org = self.make_org("2026-03-01")
        self.sync("2026-03-02")
        march = self.invoices(org)
        march.invoice_date = "2026-03-02"
        march.action_post()
        # a charge already dated in April (synced into an April draft), one still to sync
        april_line = self.event(org, "storage_changed", "2026-04-02", 12.0, description="April storage")
        self.sync("2026-04-02")
        april = april_line.invoice_id
        self.assertEqual((april.state, april.fayvad_period_start), ("draft", date(2026, 4, 1)))
        pending = self.event(org, "user_added", "2026-04-03", 10.0, description="April user")
        with freeze_time("2026-03-25"):
            org.action_terminate()
        self.assertFalse(april.exists(), "the draft of a later period is gone")
        for event in (april_line, pending):
            self.assertFalse(event.chargeable)
            self.assertIn("terminated", event.no_charge_reason)
        self.sync("2026-04-05")
        self.assertFalse(pending.invoice_id, "never synced")
        self.assertEqual(march.state, "posted")
        self.assertAlmostEqual(march.amount_untaxed, 100.0, msg="the posted invoice is untouched")

    def test_subscription_webhooks_after_termination_charge_nothing(self):
        org = self.make_org("2026-03-01")
        with freeze_time("2026-03-10"):
            org.action_terminate()
            status, _body = self.webhook(
                {
                    "event_type": "subscription_updated",
                    "organization_id": org.id,
                    "billing_data": {"amount": 150, "currency": "USD", "invoice_id": "SUB-T"},
                    "timestamp": "2026-03-10T08:00:00Z",
                }
            )
        self.assertEqual(status, 200)
        self.assertEqual(org.subscription_id.state, "cancelled", "not revived")
        fees = org.billing_event_ids.filtered(lambda e: e.event_type in FEE_TYPES and e.chargeable)
        self.assertEqual(fees.mapped("amount"), [100.0], "only the March fee")


@tagged("post_install", "-at_install")
class TestOneFeePerPeriod(BillingCase):
    def fees(self, org):
        """{period start: [amounts charged]} of the subscription fees."""
        charged = {}
        for event in org.billing_event_ids.filtered(lambda e: e.event_type in FEE_TYPES and e.chargeable):
            charged.setdefault(event.date.replace(day=1), []).append(event.amount)
        return charged

    def subscription_webhook(self, org, kind, amount, stamp, invoice="SUB-1"):
        return self.webhook(
            {
                "event_type": kind,
                "organization_id": org.id,
                "billing_data": {"amount": amount, "currency": "USD", "invoice_id": invoice},
                "timestamp": stamp,
            }
        )

    def test_webhooks_renewal_and_plan_change_never_bill_a_period_twice(self):
        org = self.make_org("2026-03-01")  # the sign-up bills March
        with freeze_time("2026-03-05"):
            self.assertEqual(
                self.subscription_webhook(org, "subscription_created", 100, "2026-03-05T09:00:00Z")[0], 200
            )
            self.assertEqual(
                self.subscription_webhook(org, "subscription_updated", 100, "2026-03-06T09:00:00Z")[0], 200
            )
        self.assertEqual(self.fees(org), {date(2026, 3, 1): [100.0]})
        recorded = org.billing_event_ids.filtered(lambda e: e.webhook_delivery_id)
        self.assertEqual(len(recorded), 2, "the webhooks are kept as events ...")
        self.assertTrue(all(e.no_charge_reason for e in recorded), "... that charge nothing")
        with freeze_time("2026-04-01"):
            self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
            self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()  # a second run the same day
        with freeze_time("2026-04-02"):  # the billing system announces April's renewal too
            self.subscription_webhook(
                org, "subscription_updated", 100, "2026-04-02T09:00:00Z", invoice="SUB-2"
            )
        self.assertEqual(self.fees(org), {date(2026, 3, 1): [100.0], date(2026, 4, 1): [100.0]})
        bigger = self.plan.copy({"name": "Bigger", "monthly_price": 100.0})
        with freeze_time("2026-04-10"):
            org.plan_id = bigger  # same price: nothing more to charge
        self.assertEqual(self.fees(org)[date(2026, 4, 1)], [100.0])

    def test_a_changed_amount_mid_period_is_one_prorated_adjustment(self):
        org = self.make_org("2026-03-01")
        with freeze_time("2026-03-22"):  # 10 of 31 days left
            self.subscription_webhook(org, "subscription_updated", 131, "2026-03-22T09:00:00Z")
            self.subscription_webhook(
                org, "subscription_updated", 131, "2026-03-22T10:00:00Z", invoice="SUB-1b"
            )
        adjustment = round(31 * 10 / 31, 2)
        self.assertEqual(self.fees(org), {date(2026, 3, 1): [100.0, adjustment]})
        self.assertEqual(org.subscription_id.amount, 131)
        with freeze_time("2026-04-01"):
            self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        self.assertEqual(self.fees(org)[date(2026, 4, 1)], [131.0])

    def test_subscription_created_webhook_starts_billing_an_organization_without_plan(self):
        with freeze_time("2026-03-03"):
            org = self.env["fayvad.mail.organization"].create(
                {"name": "Webhook first", "partner_id": self.partner_b.id, "state": "active"}
            )
            status, body = self.subscription_webhook(org, "subscription_created", 80, "2026-03-03T09:00:00Z")
        self.assertEqual((status, body["processed"]), (200, True))
        sub = org.subscription_id
        self.assertEqual((sub.state, sub.amount, sub.period_start), ("active", 80, date(2026, 3, 1)))
        self.assertEqual(self.fees(org), {date(2026, 3, 1): [80.0]})


@tagged("post_install", "-at_install")
class TestWebhookIdentity(BillingCase):
    def payload(self, org, kind, invoice, stamp, amount=None):
        billing = {"currency": "USD", "invoice_id": invoice}
        if amount is not None:
            billing["amount"] = amount
        return {"event_type": kind, "organization_id": org.id, "billing_data": billing, "timestamp": stamp}

    def test_second_payment_failure_of_one_invoice_counts_towards_dunning(self):
        self.company.fayvad_dunning_max_failures = 2
        org = self.make_org("2026-03-01")
        with freeze_time("2026-03-10"):
            first = self.webhook(self.payload(org, "payment_failed", "INV-9", "2026-03-10T08:00:00Z"))
            repeat = self.webhook(self.payload(org, "payment_failed", "INV-9", "2026-03-10T08:00:00Z"))
        self.assertEqual((repeat[1]["duplicate"], repeat[1]["webhook_id"]), (True, first[1]["webhook_id"]))
        self.assertEqual((org.subscription_id.failed_payment_count, org.state), (1, "active"))
        with freeze_time("2026-03-13"):  # the card is tried again, and fails again
            second = self.webhook(self.payload(org, "payment_failed", "INV-9", "2026-03-13T08:00:00Z"))
        self.assertFalse(second[1]["duplicate"])
        self.assertEqual(org.subscription_id.failed_payment_count, 2)
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "non_payment"))

    def test_two_partial_payments_of_one_invoice_both_register(self):
        org = self.make_org("2026-03-01")
        self.sync("2026-03-02")
        invoice = org.billing_event_ids.invoice_id
        invoice.invoice_date = "2026-03-02"
        invoice.action_post()
        half = round(invoice.amount_total / 2, 2)
        with freeze_time("2026-03-10"):
            one = self.webhook(
                self.payload(org, "payment_received", invoice.name, "2026-03-10T08:00:00Z", half)
            )
            two = self.webhook(
                self.payload(
                    org, "payment_received", invoice.name, "2026-03-11T08:00:00Z", invoice.amount_total - half
                )
            )
        self.assertFalse(one[1]["duplicate"] or two[1]["duplicate"])
        self.sync("2026-03-12")
        payments = org.billing_event_ids.filtered(lambda e: e.event_type == "payment_received")
        self.assertEqual(len(payments), 2)
        self.assertTrue(all(payments.mapped("odoo_synced")))
        self.assertFalse(any(payments.mapped("needs_review")), payments.mapped("review_note"))
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))

    def test_the_senders_webhook_id_identifies_the_event(self):
        org = self.make_org("2026-03-01")
        with freeze_time("2026-03-10"):
            first = self.webhook(
                self.payload(org, "payment_failed", "INV-7", "2026-03-10T08:00:00Z"),
                headers={"Webhook-Id": "evt_1"},
            )
            # the same event sent again, serialised differently and stamped anew: still the same event
            again = self.webhook(
                self.payload(org, "payment_failed", "INV-7", "2026-03-10T08:00:05Z"),
                headers={"X-Webhook-Id": "evt_1"},
            )
            other = self.webhook(
                self.payload(org, "payment_failed", "INV-7", "2026-03-10T08:00:05Z"),
                headers={"Webhook-Id": "evt_2"},
            )
        self.assertEqual((again[1]["duplicate"], again[1]["webhook_id"]), (True, first[1]["webhook_id"]))
        self.assertFalse(other[1]["duplicate"])
        self.assertEqual(org.subscription_id.failed_payment_count, 2)

    def test_ledger_outlives_pruning_and_an_old_captured_body_is_refused(self):
        self.company.fayvad_webhook_retention_days = 90
        org = self.make_org(fields.Date.today())
        now = fields.Datetime.now()
        payload = self.payload(
            org, "payment_failed", "INV-OLD", (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        first = self.webhook(payload)
        Delivery = self.env["fayvad.mail.webhook.delivery"].sudo()
        self.assertTrue(Delivery.search([("reference", "=", first[1]["webhook_id"])]))
        with freeze_time(now + timedelta(days=100)):  # the delivery log is pruned ...
            Delivery._cron_prune()
            self.assertFalse(Delivery.search([("reference", "=", first[1]["webhook_id"])]), "pruned")
            replay = self.webhook(payload)  # ... and a replay is still recognised
        self.assertEqual(
            (replay[0], replay[1]["duplicate"], replay[1]["webhook_id"]), (200, True, first[1]["webhook_id"])
        )
        self.assertEqual(org.subscription_id.failed_payment_count, 1)
        with freeze_time(now + timedelta(days=LEDGER_DAYS + 1)):  # past the ledger's window: refused
            Delivery._cron_prune()
            self.assertFalse(
                self.env["fayvad.mail.webhook.identity"].sudo().search([("key", "like", "INV-OLD")])
            )
            status, body = self.webhook(payload)
        self.assertEqual((status, body["error_code"], body["processed"]), (400, "VALIDATION_ERROR", False))
        self.assertIn("timestamp", body["details"])
        self.assertEqual(org.subscription_id.failed_payment_count, 1, "never applied again")
