"""Money an accountant can trust over a customer's life: termination ends
billing, a period's fee is charged once whoever asks, and billing webhooks
are applied once per event (not once per invoice), even after the delivery
log is pruned."""

from datetime import date, timedelta
from unittest.mock import MagicMock, patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from odoo.addons.fayvad_mail.const import LEDGER_DAYS
from odoo.addons.fayvad_mail.tests.common import BillingCase
from odoo.addons.fayvad_mail.tools.mailserver import MailServerClient, Refused, RemoteDomain, RemoteMailbox

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
            status, _body = self.subscription_webhook(
                org, "subscription_updated", 150, "2026-03-10T08:00:00Z", "SUB-T"
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

    def test_webhooks_renewal_and_plan_change_never_bill_a_period_twice(self):
        org = self.make_org("2026-03-01")  # the sign-up bills March
        with freeze_time("2026-03-05"):
            self.assertEqual(
                self.subscription_webhook(org, "subscription_created", 100, "2026-03-05T09:00:00Z")[0], 200
            )
            self.assertEqual(
                self.subscription_webhook(org, "subscription_updated", 100, "2026-03-05T10:00:00Z")[0], 200
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
        invoice = self.posted_first_invoice(org)
        half = round(invoice.amount_total / 2, 2)
        with freeze_time("2026-03-10"):
            one = self.webhook(
                self.payload(org, "payment_received", invoice.name, "2026-03-10T08:00:00Z", half)
            )
            two = self.webhook(
                self.payload(
                    org, "payment_received", invoice.name, "2026-03-10T09:00:00Z", invoice.amount_total - half
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


@tagged("post_install", "-at_install")
class TestReactivation(BillingCase):
    def test_a_reactivated_subscription_starts_a_new_period_and_lifts_its_suspension(self):
        org = self.make_org("2026-03-01")  # March billed at sign-up, nothing paid
        with freeze_time("2026-03-05"):
            self.webhook({"event_type": "subscription_cancelled", "organization_id": org.id})
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "cancelled"))
        for day in ("2026-04-01", "2026-05-01", "2026-06-01"):  # months go by, cancelled
            with freeze_time(day):
                self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        with freeze_time("2026-06-21"):  # 10 of June's 30 days left
            status, _body = self.subscription_webhook(
                org, "subscription_updated", 100, "2026-06-21T09:00:00Z", "REACT-1"
            )
        self.assertEqual(status, 200)
        sub = org.subscription_id
        self.assertEqual(
            (sub.state, sub.period_start, sub.period_end), ("active", date(2026, 6, 21), date(2026, 6, 30))
        )
        fees = org.billing_event_ids.filtered(lambda e: e.event_type in FEE_TYPES and e.chargeable)
        self.assertEqual(
            sorted((e.date, e.amount) for e in fees),
            [(date(2026, 3, 1), 100.0), (date(2026, 6, 21), round(100 * 10 / 30, 2))],
            "nothing for April and May, June's share from the reactivation",
        )
        invoices = self.env["account.move"].search([("fayvad_organization_id", "=", org.id)])
        self.assertFalse(
            invoices.filtered(lambda m: m.fayvad_period_start in (date(2026, 4, 1), date(2026, 5, 1))),
            "no invoice for the cancelled months",
        )
        self.assertEqual(
            (org.state, org.suspension_reason), ("active", False), "the cancellation's suspension is lifted"
        )
        with freeze_time("2026-07-01"):
            self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        self.assertEqual(sub.period_start, date(2026, 7, 1))
        self.assertIn(
            100.0, org.billing_event_ids.filtered(lambda e: e.date == date(2026, 7, 1)).mapped("amount")
        )

    def test_reactivation_keeps_a_manual_suspension(self):
        org = self.make_org("2026-03-01")
        with freeze_time("2026-03-05"):
            self.webhook({"event_type": "subscription_cancelled", "organization_id": org.id})
            org.action_suspend()  # an accountant suspends it by hand too
            self.webhook(
                {
                    "event_type": "subscription_created",
                    "organization_id": org.id,
                    "billing_data": {"amount": 100},
                }
            )
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "manual"))


@tagged("post_install", "-at_install")
class TestPaymentsLandWhereNamed(BillingCase):
    def posted_invoice(self, org, day, amount, hosting=True):
        with freeze_time(day):
            invoice = self.env["account.move"].create(
                {
                    "move_type": "out_invoice",
                    "partner_id": org.partner_id.id,
                    "fayvad_organization_id": org.id if hosting else False,
                    "invoice_date": day,
                    "invoice_line_ids": [
                        fields.Command.create(
                            {"name": "Hosting", "quantity": 1, "price_unit": amount, "tax_ids": []}
                        )
                    ],
                }
            )
            invoice.action_post()
        return invoice

    def pay(self, org, amount, day, invoice_id=None):
        billing = {"amount": amount, "currency": "USD"}
        if invoice_id:
            billing["invoice_id"] = invoice_id
        with freeze_time(day):
            status, body = self.webhook(
                {
                    "event_type": "payment_received",
                    "organization_id": org.id,
                    "billing_data": billing,
                    "timestamp": f"{day}T08:00:00Z",
                }
            )
        self.assertEqual(status, 200, body)
        self.sync(day)
        return org.billing_event_ids.filtered(lambda e: e.event_type == "payment_received").sorted("id")[-1]

    def test_a_payment_naming_a_paid_invoice_goes_nowhere_else(self):
        org = self.make_org("2026-03-01")
        paid = self.posted_invoice(org, "2026-03-02", 50.0)
        self.pay(org, 50.0, "2026-03-03", paid.name)
        self.assertIn(paid.payment_state, ("paid", "in_payment"))
        other = self.posted_invoice(org, "2026-03-04", 50.0)  # open, same amount
        again = self.pay(org, 50.0, "2026-03-05", paid.name)  # names the paid one
        self.assertTrue(again.needs_review)
        self.assertIn("not open", again.review_note)
        self.assertEqual(other.payment_state, "not_paid", "never put on another invoice")
        self.assertTrue(again.activity_ids, "the accountants are told")

    def test_a_payment_naming_none_goes_to_mail_hosting_invoices_only(self):
        org = self.make_org("2026-03-01")
        foreign = self.posted_invoice(org, "2026-03-02", 30.0, hosting=False)  # another business's invoice
        self.assertFalse(foreign.fayvad_organization_id)
        event = self.pay(org, 30.0, "2026-03-03")
        self.assertTrue(event.needs_review, "the other business's invoice is not a candidate")
        self.assertEqual(foreign.payment_state, "not_paid")
        hosting = self.posted_invoice(org, "2026-03-04", 30.0)  # the mail hosting invoice it was for
        self.assertIn(hosting.payment_state, ("paid", "in_payment"), "the waiting payment lands on it")
        self.assertFalse(event.needs_review)
        self.assertEqual(foreign.payment_state, "not_paid")
        later = self.posted_invoice(org, "2026-03-05", 30.0)
        self.assertFalse(self.pay(org, 30.0, "2026-03-06").needs_review)
        self.assertIn(later.payment_state, ("paid", "in_payment"))

    def test_a_payment_received_before_its_invoice_is_posted_is_reconciled_when_it_posts(self):
        org = self.make_org("2026-03-01")
        self.sync("2026-03-02")
        draft = org.billing_event_ids.invoice_id
        self.assertEqual(draft.state, "draft")
        draft.ref = "BILL-77"  # the billing system's number of it
        event = self.pay(org, draft.amount_total, "2026-03-03", "BILL-77")
        self.assertTrue(event.needs_review)
        self.assertIn("not posted yet", event.review_note)
        with freeze_time("2026-03-04"):
            draft.invoice_date = "2026-03-04"
            draft.action_post()
        self.assertIn(draft.payment_state, ("paid", "in_payment"))
        self.assertEqual((event.needs_review, event.invoice_id), (False, draft))


@tagged("post_install", "-at_install")
class TestPaidInOdoo(BillingCase):
    def test_an_invoice_paid_in_odoo_lifts_dunning_like_a_payment_webhook(self):
        self.company.fayvad_dunning_max_failures = 2
        org = self.make_org("2026-03-01")
        invoice = self.posted_first_invoice(org)
        self.payments_fail(org, "2026-03-09", "2026-03-10")
        self.assertEqual(
            (org.state, org.suspension_reason, org.sending_blocked), ("suspended", "non_payment", True)
        )
        with freeze_time("2026-03-11"):  # the customer pays by bank transfer; an accountant registers it
            self.env["account.payment.register"].with_context(
                active_model="account.move", active_ids=invoice.ids
            ).create({"journal_id": self.company_data["default_journal_bank"].id})._create_payments()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        sub = org.subscription_id
        self.assertEqual((sub.failed_payment_count, sub.state), (0, "active"))
        self.assertEqual((org.state, org.suspension_reason, org.sending_blocked), ("active", False, False))

    def test_a_manual_suspension_survives_an_invoice_paid_in_odoo(self):
        org = self.make_org("2026-03-01")
        invoice = self.posted_first_invoice(org)
        org.action_suspend()
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({"journal_id": self.company_data["default_journal_bank"].id})._create_payments()
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "manual"))


@tagged("post_install", "-at_install")
class TestBillingStartsWithTheService(BillingCase):
    """An organization is charged from the day its domain is created on the
    mail server, a mailbox from the day it exists there, whichever screen
    or route created them; what never existed there is never billed."""

    def setUp(self):
        super().setUp()
        self.client = MagicMock(spec=MailServerClient)
        self.client.ensure_domain.return_value = RemoteDomain(
            5, "x", True, 1, 1, dkim_enabled=True, dkim_public_key="KEY", dkim_selector="modoboa"
        )
        self.client.ensure_mailbox.side_effect = lambda email, *a, **k: RemoteMailbox(
            abs(hash(email)) % 10**6, email, True, 100, created=True
        )
        self.startPatcher(
            patch.object(
                type(self.env["fayvad.mail.server"]), "_client", lambda s, deadline=None: self.client
            )
        )

    def new_org(self, day):
        with freeze_time(day):
            org = self.env["fayvad.mail.organization"].create(
                {
                    "name": "Fresh",
                    "partner_id": self.partner_b.id,
                    "plan_id": self.plan.id,
                    "mail_server_id": self.server.id,
                }
            )
            self.env["fayvad.mail.domain"].create(
                {"name": f"fresh{org.id}.example", "organization_id": org.id}
            )
            for local in ("a", "b", "c"):  # one beyond the plan's two included users
                self.env["fayvad.mail.account"].create(
                    {"local_part": local, "domain_id": org.domain_ids.id, "quota": 10 * 1024 * 1024}
                )
            org.action_provision()
        return org

    def charges(self, org):
        return sorted((e.event_type, e.date, e.amount) for e in org.billing_event_ids.filtered("chargeable"))

    def test_nothing_is_charged_before_the_mail_server_has_it(self):
        org = self.new_org("2026-03-03")
        self.assertEqual(org.subscription_id.plan_id, self.plan, "subscribed at creation, as through the API")
        self.assertEqual(self.charges(org), [], "created in Odoo only: nothing charged yet")
        with freeze_time("2026-03-05"):  # the server takes it two days later
            self.env["fayvad.mail.job"]._cron_run()
        self.assertEqual(org.service_start_date, date(2026, 3, 5))
        self.assertEqual(
            self.charges(org),
            [
                ("subscription_created", date(2026, 3, 5), 100.0),
                ("user_added", date(2026, 3, 5), round(10 * 27 / 31, 2)),
            ],
        )

    def test_what_never_existed_on_the_server_is_never_billed(self):
        self.client.ensure_domain.side_effect = Refused("the domain is refused")
        org = self.new_org("2026-03-03")
        with freeze_time("2026-03-03"):
            self.env["fayvad.mail.job"]._cron_run()
        self.assertEqual(org.state, "failed")
        for day in ("2026-04-01", "2026-05-01"):
            with freeze_time(day):
                self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        self.assertEqual(self.charges(org), [], "no fee, no extra user, no renewal")
        with freeze_time("2026-05-02"):
            org.account_ids[0].action_terminate()
        self.assertFalse(
            org.billing_event_ids.filtered(lambda e: e.event_type == "user_removed"),
            "nothing credited either",
        )
