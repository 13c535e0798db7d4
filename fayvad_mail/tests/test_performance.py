"""Query counts that must not grow: one billing webhook delivery, and the
usage summary whatever the number of organizations. Speed itself is
measured by ``./dev bench --scale`` (README), not here."""

import json
from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase, new_test_user, tagged

from odoo.addons.fayvad_mail.tests.bulk import bulk_organizations
from odoo.addons.fayvad_mail.tools.signature import sign
from odoo.addons.fayvad_mail.tools.validation import validate_usage_query

SECRET = "performance-secret-0123456789abcdef"
WEBHOOK_QUERIES = 11  # CONTRACT.md's guarantees in fewer than 15 queries a delivery


@tagged("post_install", "-at_install")
class TestWebhookQueries(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Secret = cls.env["fayvad.mail.webhook.secret"]
        Secret.search([]).unlink()
        Secret.create({"secret": SECRET, "name": "current"})
        plan = cls.env["fayvad.mail.plan"].create(
            {"name": "Perf Plan", "monthly_price": 10, "included_users": 5}
        )
        partner = cls.env["res.partner"].create({"name": "Perf Customer"})
        cls.org = cls.env["fayvad.mail.organization"].create(
            {"name": "Perf", "partner_id": partner.id, "plan_id": plan.id, "state": "active"}
        )
        cls.env["fayvad.mail.subscription"]._start(cls.org, plan)

    def deliver(self, invoice):
        payload = {
            "event_type": "payment_received",
            "organization_id": self.org.id,
            "billing_data": {"amount": 10.0, "currency": "USD", "invoice_id": invoice},
            "timestamp": (fields.Datetime.now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        raw = json.dumps(payload).encode()
        headers = {"X-Webhook-Signature": sign(SECRET, raw), "Content-Type": "application/json"}
        return self.env["fayvad.mail.webhook.delivery"].sudo()._receive(raw, headers, "127.0.0.1")

    def test_payment_received_queries(self):
        """A signed payment is verified, stored, applied once and answered in
        a fixed, small number of queries; no chatter message is written for
        the billing event it creates."""
        self.deliver("INV-WARM")  # caches (sequences, currencies, secrets) warm as on a running server
        self.env.flush_all()
        self.env.invalidate_all()
        messages = self.env["mail.message"].search_count([])
        with self.assertQueryCount(WEBHOOK_QUERIES):
            status, body = self.deliver("INV-1")
            self.env.flush_all()
        self.assertEqual((status, body["processed"], body["duplicate"]), (200, True, False), body)
        event = self.env["fayvad.mail.billing.event"].search(
            [("organization_id", "=", self.org.id), ("external_invoice_id", "=", "INV-1")]
        )
        self.assertEqual(event.amount, 10.0)
        self.assertEqual(self.env["mail.message"].search_count([]), messages, "no chatter message per event")


@tagged("post_install", "-at_install")
class TestSummaryQueries(TransactionCase):
    """The usage summary reads in a number of queries that does not depend
    on the number of organizations, mailboxes or events."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env["res.company"].create(
            {"name": "Scale Co", "currency_id": cls.env.ref("base.USD").id}
        )
        cls.plan = cls.env["fayvad.mail.plan"].create(
            {"name": "Scale Plan", "monthly_price": 12, "included_users": 10, "company_id": cls.company.id}
        )
        cls.user = new_test_user(
            cls.env,
            login="scale_api",
            groups="base.group_user,fayvad_mail.fayvad_mail_group_api",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )

    def queries(self, **params):
        """(query count, answer) of one summary as the API user sees it."""
        today = fields.Date.today()
        query = validate_usage_query({"start_date": str(today - timedelta(days=5)), **params}, today)
        Summary = self.env["fayvad.mail.usage.summary"].with_user(self.user).with_company(self.company)
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        answer = Summary._summary(query)
        return self.env.cr.sql_log_count - before, answer

    def test_same_queries_at_100_and_2000_organizations(self):
        shapes = [
            {},
            {"include_details": "true"},
            {"limit": "100", "include_details": "true"},
            {"limit": "1"},
            # a period ending before the latest readings: counted mailbox by mailbox
            {"end_date": str(fields.Date.today() - timedelta(days=1))},
        ]
        bulk_organizations(
            self.env, self.company, self.plan, 100, accounts=3, events=5, snapshot_days=3, event_days=3
        )
        for shape in shapes:
            self.queries(**shape)  # caches (record rules, company, currency) warm as on a running server
        small = [self.queries(**shape) for shape in shapes]
        self.assertEqual(small[0][1]["summary"]["total_organizations"], 100)
        self.assertEqual(small[0][1]["summary"]["total_users"], 300)
        bulk_organizations(
            self.env, self.company, self.plan, 1900, accounts=3, events=5, snapshot_days=3, event_days=3
        )
        large = [self.queries(**shape) for shape in shapes]
        self.assertEqual(large[0][1]["summary"]["total_organizations"], 2000)
        self.assertEqual(len(large[0][1]["organizations"]), 2000)
        self.assertEqual(len(large[1][1]["organizations"][0]["email_accounts"]), 3)
        self.assertEqual(len(large[2][1]["organizations"]), 100, "a page of organizations")
        page_orgs = {org["id"] for org in large[2][1]["organizations"]}
        self.assertTrue(large[2][1]["billing_events"])
        self.assertLessEqual(
            {event["organization_id"] for event in large[2][1]["billing_events"]},
            page_orgs,
            "a page lists the billing events of its organizations only",
        )
        for shape, (count_small, _), (count_large, _) in zip(shapes, small, large, strict=True):
            self.assertEqual(count_small, count_large, f"queries for {shape} grow with the data")
            self.assertLessEqual(count_large, 12, f"queries for {shape}")


@tagged("post_install", "-at_install")
class TestOneConnection(TransactionCase):
    def test_api_requests_do_not_wake_the_cron_workers_on_a_second_connection(self):
        """Odoo NOTIFYs the cron workers at commit, on a connection of its
        own, for a trigger due now: an API request (which must never need a
        second connection) runs its jobs itself and leaves a trigger due a
        second later for what it could not finish."""

        def notifies():
            return any(getattr(func, "__name__", "") == "_notifydb" for func in self.env.cr.postcommit._funcs)

        def triggered():
            return self.env["ir.cron.trigger"].search([], order="id desc").cron_id

        Job = self.env["fayvad.mail.job"]
        runner = self.env.ref("fayvad_mail.fayvad_mail_job_cron")
        # a trigger another test committed (the sync cron asks once per burst) is not this test's
        self.env["ir.cron.trigger"].search([]).unlink()
        Job.with_context(fayvad_mail_api=True)._trigger_runner()
        self.assertFalse(triggered(), "the request runs its jobs itself")
        self.env["fayvad.mail.billing.event"]._trigger_sync()
        self.assertFalse(notifies())
        self.assertEqual(
            triggered(), self.env.ref("fayvad_mail.fayvad_mail_billing_event_cron_sync"), "within a minute"
        )

        partner = self.env["res.partner"].create({"name": "Left for the cron"})
        org = self.env["fayvad.mail.organization"].create({"name": "Left", "partner_id": partner.id})
        Provisioning = self.env["fayvad.mail.provisioning"].with_context(fayvad_mail_api=True)
        Provisioning._run_jobs("organization", org.id, budget=0)  # no time: nothing ran
        self.assertFalse(runner & triggered(), "nothing pending, no trigger")
        job = Job.with_context(fayvad_mail_api=True)._enqueue("create_domain", organization=org)
        Provisioning._run_jobs("organization", org.id, budget=0)
        self.assertEqual(job.state, "pending")
        self.assertIn(runner, triggered(), "what the request left is the cron's")
        self.assertFalse(notifies())

        Job._trigger_runner()  # the UI: at once
        self.assertTrue(notifies())


# references to rows that are not deleted in use (users, currencies, companies, products)
UNINDEXED_REFERENCES = {"create_uid", "write_uid", "currency_id", "company_id", "product_id"}


@tagged("post_install", "-at_install")
class TestForeignKeyIndexes(TransactionCase):
    def test_deletions_and_joins_find_their_rows_by_index(self):
        """Every foreign key of the addon's tables has an index that starts
        with it (deleting one contact, organization or invoice never scans a
        table of events or snapshots), but for references to users,
        currencies, companies and products."""
        self.env.cr.execute(
            """
            SELECT c.conrelid::regclass::text, a.attname
              FROM pg_constraint c
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
               AND c.conrelid::regclass::text LIKE 'fayvad\\_mail\\_%'
               AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
            """
        )
        missing = sorted(
            f"{table}.{column}"
            for table, column in self.env.cr.fetchall()
            if column not in UNINDEXED_REFERENCES
        )
        self.assertEqual(missing, [])
        self.env.cr.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text LIKE 'fayvad%'"
        )
        self.assertGreater(self.env.cr.fetchone()[0], 50, "the foreign keys were found")
