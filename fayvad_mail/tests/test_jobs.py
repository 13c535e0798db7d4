"""The provisioning queue without a mail server: backoff, order, failures
and retries (the client is a mock; end to end tests use a real Modoboa)."""

import contextlib
import logging
from unittest.mock import MagicMock, patch

import psycopg2

from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import tagged

from odoo.addons.fayvad_mail.models.fayvad_mail_job import BACKOFF_MAX, backoff_delay
from odoo.addons.fayvad_mail.tests.common import FayvadMailCase
from odoo.addons.fayvad_mail.tools.mailserver import MailServerClient, Refused, RemoteDomain, Unavailable


class FixedRandom:
    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


@tagged("post_install", "-at_install")
class TestJobQueue(FayvadMailCase):
    def setUp(self):
        super().setUp()
        self.client = MagicMock(spec=MailServerClient)
        self.startPatcher(
            patch.object(
                type(self.env["fayvad.mail.server"]), "_client", lambda s, deadline=None: self.client
            )
        )
        self.Job = self.env["fayvad.mail.job"]

    def test_backoff_is_exponential_with_jitter_and_capped(self):
        for attempts in range(1, 12):
            full = min(BACKOFF_MAX, 30 * 2 ** (attempts - 1))
            self.assertEqual(backoff_delay(attempts, FixedRandom(0.0)), full / 2)
            self.assertAlmostEqual(backoff_delay(attempts, FixedRandom(0.999999)), full, delta=0.01)
        self.assertEqual(backoff_delay(20, FixedRandom(0.999999)) // 1, BACKOFF_MAX - 1)

    def test_a_refusal_fails_the_job_and_what_waits_for_it(self):
        org = self.make_org(domain="refused.example")
        self.make_account(org, "a", quota_mb=10)
        org.action_provision()
        self.client.ensure_domain.side_effect = Refused("refused.example: no")
        self.assertEqual(self.Job._cron_run(), 1)
        domain_job = org.job_ids.filtered(lambda j: j.job_type == "create_domain")
        mailbox_job = org.job_ids - domain_job
        self.assertEqual((domain_job.state, domain_job.last_error), ("failed", "refused.example: no"))
        self.assertEqual(mailbox_job.state, "failed")
        self.assertIn("Waits for a job that failed", mailbox_job.last_error)
        self.assertEqual(
            (org.state, org.domain_ids.state, org.account_ids.state), ("failed", "failed", "failed")
        )
        self.assertFalse(self.Job._acquire(), "nothing left holds up the organization")

        # retrying the mailbox retries the domain it waits for
        mailbox_job.action_retry()
        self.assertEqual(set(org.job_ids.mapped("state")), {"pending"})
        self.assertEqual(org.state, "provisioning")
        self.assertEqual(self.Job._acquire(), domain_job, "the domain first")

    def test_an_organization_runs_one_job_at_a_time_in_order(self):
        org = self.make_org(domain="order.example")
        other = self.make_org(name="Other", domain="other.example")
        account = self.make_account(org, "a", quota_mb=10)
        for record in (org, other):
            record.domain_ids.state = "active"
        account.state = "active"
        first = self.Job._enqueue("suspend_account", account=account)
        second = self.Job._enqueue("set_quota", account=account)
        third = self.Job._enqueue("update_domain_quota", organization=other)
        self.assertEqual(self.Job._enqueue("set_quota", account=account), second, "a waiting job is reused")
        first.next_attempt_at = "2999-01-01 00:00:00"  # retrying later
        self.assertEqual(self.Job._acquire(), third, "the other organization is not held up")
        self.assertFalse(self.Job._acquire(job_ids=second.ids), "the quota change waits for the suspension")
        first.next_attempt_at = False
        self.assertEqual(self.Job._acquire(job_ids=(first | second).ids), first)

    def test_unavailable_retries_then_fails_at_the_limit(self):
        self.server.max_attempts = 2
        org = self.make_org(domain="down.example")
        org.action_provision()
        job = org.job_ids
        self.client.ensure_domain.side_effect = Unavailable("GET /api/v2/domains/: cannot connect")
        job._run()
        self.assertEqual((job.state, job.attempts), ("pending", 1))
        self.assertTrue(job.next_attempt_at)
        job._run()
        self.assertEqual((job.state, job.attempts), ("failed", 2))
        self.assertTrue(job.activity_ids)

    def test_dkim_key_not_ready_is_retried(self):
        org = self.make_org(domain="slowkey.example")
        org.action_provision()
        self.client.ensure_domain.return_value = RemoteDomain(
            1, "slowkey.example", True, 10, 1, dkim_enabled=True
        )
        job = org.job_ids
        job._run()
        self.assertEqual(job.state, "pending")
        self.assertIn("DKIM key", job.last_error)
        self.assertFalse(org.domain_ids.remote_id, "nothing recorded before the key is there")

    def test_neutralize_forgets_the_token_and_stops_the_queue(self):
        org = self.make_org(domain="copy.example")
        org.action_provision()
        self.env.flush_all()
        for query in get_neutralization_queries(["fayvad_mail"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        self.assertFalse(self.server.sudo().token)
        self.assertFalse(self.server.active)
        self.assertEqual(set(org.job_ids.mapped("state")), {"cancelled"})

    def pending_password(self, account):
        """The pending password as the job reads it; the column only ever holds ciphertext."""
        self.env.cr.execute("SELECT pending_password FROM fayvad_mail_account WHERE id = %s", [account.id])
        stored = self.env.cr.fetchone()[0]
        password = account._get_pending_password()
        self.assertTrue(stored is None or password not in stored, "stored encrypted")
        return password

    def test_pending_password_is_wiped_when_its_job_is_cancelled_or_fails_for_good(self):
        org = self.make_org(domain="wipe.example", state="active")
        org.domain_ids.state = "active"
        cancelled = self.make_account(org, "cancelled", quota_mb=10)
        failed = self.make_account(org, "failed", quota_mb=10)
        for account in (cancelled, failed):
            account._set_pending_password("Handed-0ver-Later")
            account._queue_provisioning()
        job_of = {job.account_id: job for job in org.job_ids}
        job_of[cancelled].action_cancel()
        self.assertIsNone(self.pending_password(cancelled), "cancelled: nothing will hand it over")
        self.assertEqual(self.pending_password(failed), "Handed-0ver-Later", "still pending: kept")
        self.client.ensure_mailbox.side_effect = Refused("refused")
        job_of[failed]._run()
        self.assertEqual(job_of[failed].state, "failed")
        self.assertIsNone(self.pending_password(failed), "failed for good: wiped")

    def test_pending_password_never_reaches_the_log(self):
        org = self.make_org(domain="quiet.example")
        account = self.make_account(org, "quiet", quota_mb=10)
        password = "Never-In-A-L0g-" + "x" * 8
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())

        handler = Keep(level=logging.DEBUG)
        sql_logger = logging.getLogger("odoo.sql_db")
        old_level = sql_logger.level
        sql_logger.addHandler(handler)
        sql_logger.setLevel(logging.DEBUG)  # as with --log-sql
        try:
            account._set_pending_password(password)
            with self.assertRaises(psycopg2.Error) as caught, self.env.cr.savepoint():
                with contextlib.suppress(psycopg2.Error):
                    self.env.cr.execute("SELECT 1/0", log_exceptions=False)  # the transaction is now aborted
                account._set_pending_password(password)  # so this query fails
        finally:
            sql_logger.removeHandler(handler)
            sql_logger.setLevel(old_level)
        self.assertTrue(records, "the SQL log was on")
        self.assertFalse([line for line in records if password in line])
        self.assertNotIn(password, str(caught.exception))
        self.assertEqual(self.pending_password(account), password)
