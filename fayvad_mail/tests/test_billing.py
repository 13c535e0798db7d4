from datetime import date, datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import TransactionCase, tagged

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.fayvad_mail.models.fayvad_mail_organization import MB


@tagged("post_install", "-at_install")
class TestBilling(AccountTestInvoicingCommon):
    """Billing events land in real accounting: a company with a chart of
    accounts, invoices, payments and credit notes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.trigger = patch.object(type(cls.env["fayvad.mail.job"]), "_trigger_runner", lambda self: None)
        cls.trigger.start()
        cls.addClassCleanup(cls.trigger.stop)
        cls.env.user.sudo().groups_id |= cls.env.ref("fayvad_mail.fayvad_mail_group_admin")
        cls.company = cls.company_data["company"]
        cls.company.fayvad_payment_journal_id = cls.company_data["default_journal_bank"]
        cls.product = cls.product_a  # 15% sale tax in the test chart
        cls.plan = cls.env["fayvad.mail.plan"].create(
            {
                "name": "Billed Plan",
                "monthly_price": 100.0,
                "included_users": 2,
                "price_per_extra_user": 10.0,
                "price_per_extra_gb": 2.0,
                "max_users": 10,
                "max_storage_gb": 20,
                "default_mailbox_quota_mb": 100,
                "product_id": cls.product.id,
            }
        )
        cls.server = cls.env["fayvad.mail.server"].create(
            {"name": "S", "url": "http://127.0.0.1:9", "token": "x"}
        )

    def make_org(self, day="2026-03-01"):
        with freeze_time(day):
            org = self.env["fayvad.mail.organization"].create(
                {
                    "name": "Billed Org",
                    "partner_id": self.partner_a.id,
                    "plan_id": self.plan.id,
                    "state": "active",
                    "mail_server_id": self.server.id,
                    "max_storage_gb": 20,
                }
            )
            self.env["fayvad.mail.domain"].create(
                {"name": f"billed{org.id}.example", "organization_id": org.id}
            )
            org._start_subscription(self.plan)
        return org

    def add_accounts(self, org, day, *locals_):
        with freeze_time(day):
            for local in locals_:
                self.env["fayvad.mail.account"].create(
                    {
                        "local_part": local,
                        "domain_id": org.domain_ids.id,
                        "quota": 100 * MB,
                        "state": "active",
                    }
                )

    def sync(self, day):
        with freeze_time(day):
            self.env["fayvad.mail.billing.event"]._cron_sync()

    def event(self, org, kind, day, amount, **vals):
        return self.env["fayvad.mail.billing.event"].create(
            {
                "organization_id": org.id,
                "event_type": kind,
                "date": day,
                "quantity": 1,
                "unit_price": amount,
                "currency_id": self.company.currency_id.id,
                **vals,
            }
        )

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
        self.sync("2026-03-02")
        invoice = org.billing_event_ids.invoice_id
        invoice.invoice_date = "2026-03-02"
        invoice.action_post()
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
        self.event(org, "payment_received", "2026-03-10", older.amount_total)
        self.sync("2026-03-10")
        self.assertIn(older.payment_state, ("paid", "in_payment"))
        self.assertEqual(newer.payment_state, "not_paid")

    def test_mismatch_is_kept_unreconciled_and_flagged(self):
        org = self.make_org()
        invoice = self.init_invoice(
            "out_invoice", partner=self.partner_a, invoice_date="2026-03-01", amounts=[100], post=True
        )
        short = self.event(org, "payment_received", "2026-03-10", 42.0, external_invoice_id=invoice.name)
        self.sync("2026-03-10")
        self.assertTrue(short.odoo_synced)
        self.assertTrue(short.needs_review)
        self.assertIn("differs", short.review_note)
        self.assertIn(short.payment_id.state, ("in_process", "paid"))
        self.assertFalse(short.payment_id.is_reconciled)
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertTrue(short.activity_ids)

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
