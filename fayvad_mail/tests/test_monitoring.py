"""Monitoring of provisioning: ``GET /erp/metrics`` read with the official
Prometheus parser over real HTTP against the real Modoboa, its figures
checked against the database; its queries counted at two sizes; the mail
server's figures and the success-rate watch."""

import json
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from odoo import fields
from odoo.tests import tagged
from odoo.tools import SQL

from odoo.addons.fayvad_mail.tests.bulk import bulk_organizations
from odoo.addons.fayvad_mail.tests.common import (
    FayvadMailCase,
    ModoboaProvisioningCase,
)
from odoo.addons.fayvad_mail.tools.signature import sign

SECRET = "metrics-secret-0123456789abcdef0123"


def samples(text):
    """{(name, sorted labels): value} of a Prometheus text answer."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@tagged("post_install", "-at_install")
class TestMetricsEndpoint(ModoboaProvisioningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["fayvad.mail.webhook.secret"].create({"secret": SECRET, "name": "metrics"})

    def metrics(self):
        response = self.url_open(
            "/erp/metrics", headers={"Authorization": f"Bearer {self.api_key}"}, allow_redirects=False
        )
        self.assertEqual(response.status_code, 200, response.text[:300])
        self.assertEqual(response.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        return samples(response.text)

    def db(self, query):
        self.env.flush_all()
        self.env.cr.execute(query)
        return self.env.cr.fetchall()

    def deliver(self, org, secret=SECRET):
        payload = {
            "event_type": "payment_received",
            "organization_id": org.id,
            "billing_data": {
                "amount": 10.0,
                "currency": "USD",
                "invoice_id": f"M-{org.id}-{secret[:4]}",
            },
            "timestamp": (fields.Datetime.now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        raw = json.dumps(payload).encode()
        headers = {"X-Webhook-Signature": sign(secret, raw)}
        return self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=headers)[0]

    def test_metrics_follow_a_known_sequence_and_match_the_database(self):
        company = self.env.company.id
        before = self.metrics()

        # successes: an organization and a mailbox provisioned on the real Modoboa
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, body)
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        status, body, _ = self.api(
            "POST", "/provision/email-account/", self.account_payload(org.id, org.domain_ids.id)
        )
        self.assertEqual(status, 201, body)
        # a failure for good, with the mail server's reason
        job = self.env["fayvad.mail.job"]._enqueue("update_domain_quota", organization=org)
        job._record_failure("Refused: 400 quota too large", retryable=False, reason="quota too large")
        # a webhook delivery applied, one refused
        self.assertEqual(self.deliver(org), 200)
        self.assertEqual(self.deliver(org, secret="not-the-secret-0123456789abcdef"), 400)

        after = self.metrics()
        done = len(org.job_ids.filtered(lambda j: j.state == "done"))
        self.assertGreaterEqual(done, 3)  # domain, its administrator, the mailbox
        for window in ("1h", "24h", "7d"):
            key = ("fayvad_mail_jobs_finished", (("state", "done"), ("window", window)))
            self.assertEqual(after[key] - before[key], done)
            key = ("fayvad_mail_jobs_finished", (("state", "failed"), ("window", window)))
            self.assertEqual(after[key] - before[key], 1)
        by_type_state = self.db(
            SQL(
                "SELECT job_type, state, count(*) FROM fayvad_mail_job WHERE company_id = %s GROUP BY 1, 2",
                company,
            )
        )
        for job_type, state, count in by_type_state:
            self.assertEqual(after[("fayvad_mail_jobs", (("state", state), ("type", job_type)))], count)
        [(done_7d, failed_7d)] = self.db(
            SQL(
                """SELECT count(*) FILTER (WHERE state = 'done'), count(*) FILTER (WHERE state = 'failed')
                     FROM fayvad_mail_job WHERE company_id = %s AND date_done >= now() - interval '7 days'""",
                company,
            )
        )
        self.assertAlmostEqual(
            after[("fayvad_mail_job_success_ratio", (("window", "7d"),))], done_7d / (done_7d + failed_7d)
        )
        [(pending,)] = self.db(
            SQL("SELECT count(*) FROM fayvad_mail_job WHERE company_id = %s AND state = 'pending'", company)
        )
        self.assertEqual(after[("fayvad_mail_job_queue_depth", ())], pending)
        [(median, p95)] = self.db(
            SQL(
                """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM date_done - create_date)),
                          percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM date_done - create_date))
                     FROM fayvad_mail_job
                    WHERE company_id = %s AND state = 'done' AND date_done >= now() - interval '1 day'""",
                company,
            )
        )
        durations = ("fayvad_mail_job_duration_seconds", "window", "24h")
        self.assertAlmostEqual(after[(durations[0], (("quantile", "0.5"), durations[1:]))], median, places=2)
        self.assertAlmostEqual(after[(durations[0], (("quantile", "0.95"), durations[1:]))], p95, places=2)

        def delivered(outcome, figures):
            return figures.get(("fayvad_mail_webhook_deliveries_total", (("outcome", outcome),)), 0)

        self.assertEqual(delivered("processed", after) - delivered("processed", before), 1)
        self.assertEqual(delivered("invalid_signature", after) - delivered("invalid_signature", before), 1)
        [(backlog,)] = self.db(
            SQL(
                "SELECT count(*) FROM fayvad_mail_billing_event WHERE company_id = %s AND sync_state = 'pending'",
                company,
            )
        )
        self.assertEqual(after[("fayvad_mail_billing_sync_backlog", ())], backlog)
        [(unverified,)] = self.db(
            SQL(
                """SELECT count(*) FROM fayvad_mail_domain
                    WHERE company_id = %s AND verification_state = 'pending' AND state != 'terminated'""",
                company,
            )
        )
        self.assertEqual(after[("fayvad_mail_domains", (("verification", "pending"),))], unverified)

        # a pruned delivery still counts: the counter never goes down
        self.env["fayvad.mail.webhook.delivery"].search([("company_id", "=", company)]).unlink()
        pruned = self.metrics()
        self.assertEqual(delivered("processed", pruned), delivered("processed", after))

    def test_metrics_need_an_api_key(self):
        response = self.url_open("/erp/metrics", allow_redirects=False)
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error_code"], "AUTHENTICATION_FAILED")
        self.assertNotIn("fayvad_mail_jobs", response.text)


@tagged("post_install", "-at_install")
class TestMonitoringFigures(FayvadMailCase):
    def job(self, state, queued_ago, done_ago=None, reason=None):
        """A job queued ``queued_ago`` and finished ``done_ago`` (timedeltas) ago."""
        org = self.make_org(name="Watched", domain=False, mail_server_id=self.server.id)
        job = self.env["fayvad.mail.job"].create(
            {
                "job_type": "update_domain_quota",
                "organization_id": org.id,
                "company_id": org.company_id.id,
                "mail_server_id": self.server.id,
            }
        )
        now = fields.Datetime.now()
        job.write(
            {
                "state": state,
                "date_done": done_ago is not None and now - done_ago,
                "refusal_reason": reason,
                "last_error": reason and f"Refused: {reason}",
            }
        )
        job.flush_recordset()
        self.env.cr.execute(
            SQL("UPDATE fayvad_mail_job SET create_date = %s WHERE id = %s", now - queued_ago, job.id)
        )
        job.invalidate_recordset()
        return job

    def test_the_mail_server_shows_rates_times_reasons_and_the_queue(self):
        minute = timedelta(minutes=1)
        for seconds in (10, 20, 30, 40, 100):  # done in the last hour, queued that long before
            self.job("done", minute + timedelta(seconds=seconds), minute)
        self.job("done", timedelta(days=3, seconds=50), timedelta(days=3))  # 7 days only
        self.job("failed", 2 * minute, minute, reason="quota too large")
        self.job("failed", 3 * minute, minute, reason="quota too large")
        self.job("failed", timedelta(days=2), timedelta(days=2), reason="domain exists")
        oldest = self.job("pending", timedelta(hours=5))
        self.job("pending", timedelta(minutes=30))
        self.job("done", timedelta(days=9), timedelta(days=9))  # too old for any window

        self.server.invalidate_recordset()
        server = self.server
        self.assertEqual((server.job_finished_24h, server.job_finished_7d), (7, 9))
        self.assertAlmostEqual(server.job_success_rate_24h, 100 * 5 / 7, places=1)
        self.assertAlmostEqual(server.job_success_rate_7d, 100 * 6 / 9, places=1)
        self.assertAlmostEqual(server.job_median_seconds_24h, 30, places=3)
        self.assertAlmostEqual(server.job_p95_seconds_24h, 88, places=3)  # between 40 and 100
        self.assertAlmostEqual(server.job_median_seconds_7d, 35, places=3)
        self.assertEqual(server.job_queue_depth, 2)
        self.assertEqual(server.job_oldest_pending, oldest.create_date)
        self.assertEqual(server.job_failure_reasons, "2 × quota too large\n1 × domain exists")

    def test_a_low_success_rate_tells_the_administrators_once(self):
        self.make_user("watch_admin", "admin")
        admins = self.env["res.users"]._fayvad_members("admin")[:5]
        minute = timedelta(minutes=1)
        for _ in range(3):
            self.job("done", 2 * minute, minute)
        for _ in range(3):
            self.job("failed", 2 * minute, minute, reason="server refuses")
        Monitoring = self.env["fayvad.mail.monitoring"]
        Monitoring._cron_watch_success_rate()
        Monitoring._cron_watch_success_rate()
        told = self.server.activity_ids
        self.assertEqual(told.user_id, admins)
        self.assertEqual(len(told), len(admins), "once each, while the rate stays low")
        self.assertIn("50%", told[0].summary)

        for _ in range(30):
            self.job("done", 2 * minute, minute)
        Monitoring._cron_watch_success_rate()
        self.assertFalse(self.server.activity_ids, "done once the rate is back (33 of 36)")

    def test_too_few_jobs_tell_nothing(self):
        self.make_user("quiet_admin", "admin")
        self.job("failed", timedelta(minutes=2), timedelta(minutes=1), reason="one bad job")
        self.env["fayvad.mail.monitoring"]._cron_watch_success_rate()
        self.assertFalse(self.server.activity_ids)


@tagged("post_install", "-at_install")
class TestMetricsQueries(FayvadMailCase):
    def count(self):
        Monitoring = self.env["fayvad.mail.monitoring"]
        self.env.invalidate_all()
        self.env.flush_all()
        before = self.env.cr.sql_log_count
        text = Monitoring._metrics([self.company.id])
        return self.env.cr.sql_log_count - before, text

    def test_the_same_queries_at_50_and_1000_organizations(self):
        bulk_organizations(self.env, self.company, self.plan, 50, accounts=2, events=3, snapshot_days=2)
        small, small_text = self.count()
        bulk_organizations(
            self.env, self.company, self.plan, 950, accounts=2, events=3, snapshot_days=2, tag="more"
        )
        large, large_text = self.count()
        self.assertEqual(small, large)
        self.assertLessEqual(large, 10)
        before, after = samples(small_text), samples(large_text)
        key = ("fayvad_mail_domains", (("verification", "verified"),))
        self.assertEqual(after[key] - before[key], 950)
