from datetime import date, datetime, timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import TransactionCase, tagged

from odoo.addons.fayvad_mail.tests.common import BillingCase


@tagged("post_install", "-at_install")
class TestBilling(BillingCase):
    """Billing events land in real accounting: a company with a chart of
    accounts, invoices, payments and credit notes."""

    def test_a_month_of_events_makes_the_expected_invoice(self):
        org = self.make_org("2026-03-01")
        self.add_accounts(org, "2026-03-05", "a", "b")  # included in the plan
        self.add_accounts(org, "2026-03-16", "c")  # 16 of 31 days left: 10 x 0.5161
        with freeze_time("2026-03-20"):
            org.max_storage_gb = 25  # 5 GB beyond the plan, 12 of 31 days: 5 x 2 x 0.3871
        self.sync("2026-03-21")
        invoice = org.billing_event_ids.invoice_id
        self.assertEqual(len(invoice), 1)
        self.assertEqual(
            (invoice.state, invoice.partner_id, invoice.fayvad_period_start),
            ("draft", self.partner_a, date(2026, 3, 1)),
        )
        self.assertEqual(sorted(invoice.invoice_line_ids.mapped("price_unit")), [3.87, 5.16, 100.0])
        self.assertAlmostEqual(invoice.amount_untaxed, 109.03)
        self.assertAlmostEqual(invoice.amount_total, round(109.03 * 1.15, 2))
        self.assertTrue(all(org.billing_event_ids.mapped("odoo_synced")))
        self.assertEqual(invoice.invoice_line_ids.product_id, self.product)

        # April: the subscription renews (fee + 1 extra user + 5 extra GB) and March is posted
        with freeze_time("2026-04-01"):
            self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        self.assertEqual(invoice.state, "posted")
        april = self.env["account.move"].search(
            [("fayvad_organization_id", "=", org.id), ("fayvad_period_start", "=", "2026-04-01")]
        )
        self.assertEqual(sorted(april.invoice_line_ids.mapped("price_subtotal")), [10.0, 10.0, 100.0])
        self.assertEqual(april.state, "draft")
        self.assertEqual(org.subscription_id.period_start, date(2026, 4, 1))
        action = org.action_view_invoices()
        self.assertEqual(self.env["account.move"].search(action["domain"]), invoice | april)

    def test_payment_reconciles_the_named_invoice(self):
        org = self.make_org()
        invoice = self.posted_first_invoice(org)
        payment = self.event(
            org, "payment_received", "2026-03-10", invoice.amount_total, external_invoice_id=invoice.name
        )
        self.sync("2026-03-10")
        self.assertTrue(payment.odoo_synced)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(payment.payment_id.amount, invoice.amount_total)
        self.assertFalse(payment.needs_review)

    def test_payment_without_name_goes_to_the_oldest_open_invoice(self):
        org = self.make_org()
        older = self.init_invoice(
            "out_invoice", partner=self.partner_a, invoice_date="2026-01-10", amounts=[50], post=True
        )
        newer = self.init_invoice(
            "out_invoice", partner=self.partner_a, invoice_date="2026-02-10", amounts=[50], post=True
        )
        (
            older | newer
        ).fayvad_organization_id = org  # mail hosting invoices: an unnamed payment's only choice
        self.event(org, "payment_received", "2026-03-10", older.amount_total)
        self.sync("2026-03-10")
        self.assertIn(older.payment_state, ("paid", "in_payment"))
        self.assertEqual(newer.payment_state, "not_paid")

    def test_mismatch_is_kept_unreconciled_and_flagged(self):
        org = self.make_org()
        invoice = self.init_invoice(
            "out_invoice", partner=self.partner_a, invoice_date="2026-03-01", amounts=[100], post=True
        )
        invoice.fayvad_organization_id = org
        due = invoice.amount_total
        too_much = self.event(
            org, "payment_received", "2026-03-10", due + 1, external_invoice_id=invoice.name
        )
        # not named, not the exact amount due on the oldest open invoice: never guessed
        unnamed = self.event(org, "payment_received", "2026-03-10", 42.0)
        self.sync("2026-03-10")
        for payment in (too_much, unnamed):
            self.assertTrue(payment.odoo_synced)
            self.assertTrue(payment.needs_review)
            self.assertIn("differs", payment.review_note)
            self.assertIn(payment.payment_id.state, ("in_process", "paid"))
            self.assertFalse(payment.payment_id.is_reconciled)
            self.assertTrue(payment.activity_ids)
        self.assertEqual(invoice.payment_state, "not_paid")

    def test_refund_makes_a_credit_note(self):
        org = self.make_org()
        refund = self.event(org, "refund", "2026-03-12", 30.0, description="Goodwill")
        self.sync("2026-03-12")
        credit = refund.invoice_id
        self.assertEqual(
            (credit.move_type, credit.state, credit.amount_total), ("out_refund", "posted", 30.0)
        )
        self.assertEqual(credit.fayvad_organization_id, org)

    def test_forced_failure_retries_with_backoff_then_succeeds(self):
        org = self.make_org()
        self.company.fayvad_payment_journal_id = False
        banks = self.env["account.journal"].search(
            [("company_id", "=", self.company.id), ("type", "=", "bank")]
        )
        banks.action_archive()  # nowhere to register the payment
        payment = self.event(org, "payment_received", "2026-03-15", 10.0)
        delays = []
        now = datetime(2026, 4, 2, 12, 0)
        for _attempt in range(2):
            with freeze_time(now):
                self.env["fayvad.mail.billing.event"]._cron_sync()
            self.assertEqual(payment.sync_state, "pending")
            self.assertFalse(payment.odoo_synced)
            self.assertIn("No bank journal", payment.last_error)
            delays.append((payment.next_sync_at - now).total_seconds())
            with freeze_time(now):  # not due yet: left alone
                self.env["fayvad.mail.billing.event"]._cron_sync()
            now = (payment.next_sync_at + timedelta(seconds=1)).replace(
                microsecond=0
            )  # Odoo's now() has no µs
        self.assertEqual(payment.sync_attempts, 2)
        self.assertTrue(15 <= delays[0] <= 30 and 30 <= delays[1] <= 60, delays)
        banks.action_unarchive()  # the accountant fixes the cause
        with freeze_time(now):
            self.env["fayvad.mail.billing.event"]._cron_sync()
        self.assertTrue(payment.odoo_synced)
        self.assertEqual(payment.payment_id.journal_id, banks[:1])

    def test_failure_after_the_limit_is_shown_with_a_retry_button(self):
        org = self.make_org()
        self.plan.product_id = False
        self.env.ref("fayvad_mail.product_mail_hosting").unlink()
        event = self.event(org, "user_added", "2026-03-15", 10.0)
        for _ in range(5):
            event.next_sync_at = False
            self.sync("2026-03-16")
        self.assertEqual(event.sync_state, "failed")
        self.assertIn("No invoice product", event.last_error)
        self.assertTrue(event.activity_ids)
        failed = self.env["fayvad.mail.billing.event"].search([("sync_state", "=", "failed")])
        self.assertIn(event, failed)
        self.plan.product_id = self.product
        event.action_retry_sync()
        self.sync("2026-03-16")
        self.assertTrue(event.odoo_synced)

    def test_dunning_suspends_after_grace_and_payment_lifts(self):
        org = self.make_org()
        self.company.fayvad_dunning_grace_days = 10
        invoice = self.init_invoice(
            "out_invoice", partner=self.partner_a, invoice_date="2026-03-01", amounts=[100], post=True
        )
        invoice.write({"fayvad_organization_id": org.id, "invoice_date_due": "2026-03-01"})
        with freeze_time("2026-03-05"):
            self.env["fayvad.mail.subscription"]._cron_dunning()
        self.assertEqual((org.state, org.subscription_id.state), ("active", "past_due"))
        with freeze_time("2026-03-12"):
            self.env["fayvad.mail.subscription"]._cron_dunning()
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "non_payment"))
        self.event(
            org, "payment_received", "2026-03-13", invoice.amount_total, external_invoice_id=invoice.name
        )
        self.sync("2026-03-13")
        with freeze_time("2026-03-14"):
            self.env["fayvad.mail.subscription"]._cron_dunning()
        self.assertEqual(org.state, "active")
        self.assertEqual(org.subscription_id.state, "active")

    def test_manual_suspension_survives_payment(self):
        org = self.make_org()
        org._suspend("manual")
        invoice = self.init_invoice(
            "out_invoice", partner=self.partner_a, invoice_date="2026-03-01", amounts=[100], post=True
        )
        self.event(
            org, "payment_received", "2026-03-13", invoice.amount_total, external_invoice_id=invoice.name
        )
        self.sync("2026-03-13")
        with freeze_time("2026-03-14"):
            self.env["fayvad.mail.subscription"]._cron_dunning()
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "manual"))

    def test_plan_upgrade_is_prorated(self):
        org = self.make_org("2026-03-01")
        bigger = self.plan.copy({"name": "Bigger", "monthly_price": 162.0})
        with freeze_time("2026-03-21"):  # 11 of 31 days left
            org.plan_id = bigger
        event = org.billing_event_ids.filtered(lambda e: e.event_type == "subscription_updated")
        self.assertAlmostEqual(event.amount, round(62 * 11 / 31, 2))
        self.assertIn("35.5% of the period", event.description)
        self.assertEqual(org.subscription_id.amount, 162.0)

    def test_removed_extra_user_is_credited(self):
        org = self.make_org("2026-03-01")
        self.add_accounts(org, "2026-03-01", "a", "b", "c")
        with freeze_time("2026-03-17"):  # 15 of 31 days left
            org.account_ids.filtered(lambda a: a.local_part == "c").action_terminate()
        removed = org.billing_event_ids.filtered(lambda e: e.event_type == "user_removed")
        self.assertAlmostEqual(removed.amount, -round(10 * 15 / 31, 2))


@tagged("post_install", "-at_install")
class TestRevenueMatchesAccounting(TransactionCase):
    def test_demo_revenue_equals_payments(self):
        """On the demo data: the usage summary's revenue is what accounting
        shows as payments for the same period."""
        Event = self.env["fayvad.mail.billing.event"]
        demo_orgs = self.env["fayvad.mail.organization"].search([("partner_id.email", "=like", "%.example")])
        if not demo_orgs:
            self.skipTest("needs the demo data")
        Event._cron_sync()
        events = Event.search(
            [("organization_id", "in", demo_orgs.ids), ("event_type", "=", "payment_received")]
        )
        self.assertTrue(events, "the demo has payments")
        self.assertTrue(all(events.mapped("odoo_synced")))
        start, end = min(events.mapped("date")), max(events.mapped("date"))
        company = demo_orgs[0].company_id
        summary = (
            self.env["fayvad.mail.usage.summary"]
            .with_company(company)
            ._summary(
                {
                    "start_date": start,
                    "end_date": end,
                    "organization_id": None,
                    "include_details": False,
                    "limit": None,
                    "offset": None,
                }
            )
        )
        payments = self.env["account.payment"].search(
            [
                ("partner_id", "in", demo_orgs.partner_id.ids),
                ("date", ">=", start),
                ("date", "<=", end),
                ("state", "!=", "canceled"),
                ("payment_type", "=", "inbound"),
            ]
        )
        accounting = round(
            sum(
                payments.mapped(
                    lambda p: p.currency_id._convert(p.amount, company.currency_id, company, p.date)
                )
            ),
            2,
        )
        self.assertEqual(summary["summary"]["total_revenue"], accounting)
        self.assertGreater(accounting, 0)
        self.assertIn(fields.Date.today().year, {start.year, end.year, start.year + 1})
