"""The provisioning queue without a mail server: backoff, order, failures
and retries (the client is a mock; end to end tests use a real Modoboa)."""

import contextlib
import json
import logging
from unittest.mock import patch

import psycopg2

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import MockedServerCase
from odoo.addons.fayvad_mail.tools.backoff import BACKOFF_MAX, backoff_delay
from odoo.addons.fayvad_mail.tools.mailserver import (
    BudgetSpent,
    Refused,
    RemoteAlias,
    RemoteDomain,
    RemoteMailbox,
    Unavailable,
)


class FixedRandom:
    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


@tagged("post_install", "-at_install")
class TestJobQueue(MockedServerCase):
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

    def test_a_server_down_is_waited_for_with_the_password_kept_until_it_answers(self):
        """A mail server that does not answer never fails a job: past its
        attempts the administrators are told, and it goes on (at most an
        hour apart) with its password kept, until it succeeds or is cancelled."""
        self.server.max_attempts = 2
        org = self.make_org(domain="down.example")
        org.domain_ids.state = "active"
        account = self.make_account(org, "waits", quota_mb=10)
        account._set_pending_password("Chosen-Passw0rd")
        account._queue_provisioning()
        job = org.job_ids
        self.client.ensure_mailbox.side_effect = Unavailable("POST /api/v2/accounts/: cannot connect")
        for attempt in range(1, 13):  # hours of outage
            job._run()
            self.assertEqual((job.state, job.attempts), ("pending", attempt))
            wait = (job.next_attempt_at - fields.Datetime.now()).total_seconds()
            self.assertLessEqual(wait, BACKOFF_MAX + 1)
        self.assertEqual(account._get_pending_password(), "Chosen-Passw0rd", "kept all along")
        self.assertEqual((account.state, org.state), ("provisioning", "draft"))
        activity = job.activity_ids
        self.assertEqual(len(activity.filtered(lambda a: a.user_id == self.env.ref("base.user_admin"))), 1)
        self.assertIn("keeps failing", activity[:1].summary)
        self.client.ensure_mailbox.side_effect = None
        self.client.ensure_mailbox.return_value = RemoteMailbox(7, account.email, True, 10, created=True)
        self.assertEqual(job._run(), "done")
        self.assertEqual(self.client.ensure_mailbox.call_args.args[1], "Chosen-Passw0rd")
        self.assertFalse(account.password_dropped)
        self.assertFalse(job.activity_ids, "the administrators' to-do is closed once it made it")

    def test_a_spent_time_budget_is_not_a_failed_attempt(self):
        org = self.make_org(domain="budget.example")
        org.action_provision()
        job = org.job_ids
        self.client.ensure_domain.side_effect = BudgetSpent(
            "POST /api/v2/domains/: not sent, the time budget is spent"
        )
        for _ in range(job.max_attempts + 2):
            job._run()
        self.assertEqual((job.state, job.attempts), ("pending", 0))

    def test_a_crash_on_the_last_attempt_fails_the_job_and_what_waits_for_it(self):
        """A run that crashes outside its own bookkeeping, on its last
        attempt: the job fails as any failure does (dependents, password,
        activity), so nothing stays pending behind it for ever."""
        self.server.max_attempts = 1
        org = self.make_org(domain="crash.example")
        account = self.make_account(org, "crash", quota_mb=10)
        account._set_pending_password("Lost-In-A-Crash-1")
        org.action_provision()
        domain_job = org.job_ids.filtered(lambda j: j.job_type == "create_domain")
        mailbox_job = org.job_ids - domain_job
        Job = type(self.Job)
        with patch.object(Job, "_run", side_effect=psycopg2.OperationalError("server closed the connection")):
            self.assertEqual(self.Job._cron_run(), 1)
        self.assertEqual((domain_job.state, domain_job.attempts), ("failed", 1))
        self.assertEqual(mailbox_job.state, "failed", "the job waiting for it failed with it")
        self.assertIsNone(account._get_pending_password())
        self.assertTrue(account.password_dropped, "the mailbox says its password was dropped")
        self.assertTrue(domain_job.activity_ids)
        self.assertFalse(self.Job._acquire(), "nothing holds up the organization's queue")

    def test_a_dependency_cycle_is_refused(self):
        org = self.make_org(domain="cycle.example")
        org.domain_ids.state = "active"
        account = self.make_account(org, "cycle", quota_mb=10, state="active")
        first = self.Job._enqueue("set_quota", account=account)
        second = self.Job._enqueue("suspend_account", account=account, depends_on=first)
        with self.assertRaisesRegex(ValidationError, "waits for it"):
            first.sudo().depends_on_id = second
        with self.assertRaises(ValidationError):
            first.sudo().depends_on_id = first

    def test_a_dropped_password_is_said_on_the_mailbox(self):
        org = self.make_org(domain="dropped.example", state="active")
        org.domain_ids.state = "active"
        account = self.make_account(org, "dropped", quota_mb=10)
        account._set_pending_password("Never-Handed-0ver")
        account._queue_provisioning()
        self.assertFalse(account.password_dropped)
        self.Job.search([("account_id", "=", account.id)]).action_cancel()
        self.assertTrue(account.password_dropped)
        self.assertIsNone(account._get_pending_password())

    def test_lifting_an_organization_suspension_restores_only_what_it_suspended(self):
        org = self.make_org(domain="owners.example", state="active")
        org.domain_ids.state = "active"
        mine, customers, admins = (
            self.make_account(org, local, quota_mb=10, state="active") for local in ("mine", "cust", "adm")
        )
        customers._suspend_mailbox("customer")  # from the portal
        admins.action_suspend()  # from the back office
        self.Job._cron_run()
        org._suspend("manual")
        self.Job._cron_run()
        self.assertEqual(
            [(a.state, a.suspended_by) for a in (mine, customers, admins)],
            [("suspended", "organization"), ("suspended", "customer"), ("suspended", "admin")],
        )
        org._unsuspend()
        self.Job._cron_run()
        self.assertEqual(
            [(a.state, a.suspended_by) for a in (mine, customers, admins)],
            [("active", False), ("suspended", "customer"), ("suspended", "admin")],
        )

    def test_a_customer_cannot_lift_an_administrators_mailbox_suspension(self):
        org = self.make_org(domain="owner2.example", state="active")
        org.domain_ids.state = "active"
        account = self.make_account(org, "held", quota_mb=10, state="active")
        account.action_suspend()
        with self.assertRaisesRegex(UserError, "suspended by your provider"):
            account._unsuspend_mailbox("customer")
        self.assertEqual((account.state, account.suspended_by), ("suspended", "admin"))
        account.action_unsuspend()  # an administrator may
        self.assertEqual(account.state, "active")
        account._suspend_mailbox("customer")
        account._unsuspend_mailbox("customer")  # its own suspension, the customer may
        self.assertEqual(account.state, "active")

    def test_alias_changes_and_deletions_address_the_object_odoo_created(self):
        org = self.make_org(domain="remote.example", state="active")
        org.domain_ids.state = "active"
        alias = self.env["fayvad.mail.alias"].create(
            {"local_part": "sales", "domain_id": org.domain_ids.id, "recipients": "a@b.example"}
        )
        alias.write({"state": "active", "remote_id": 41})
        self.client.get_alias.return_value = None  # deleted on the server since
        self.client.ensure_alias.return_value = RemoteAlias(
            43, "sales@remote.example", True, ("a@b.example",), created=True
        )
        alias.recipients = "c@d.example"
        self.Job._cron_run()
        self.client.get_alias.assert_called_once_with(41)
        self.assertEqual(alias.remote_id, 43)
        alias.action_delete()
        self.Job._cron_run()
        self.client.delete_alias.assert_called_once_with(43)
        self.client.find_alias.assert_not_called()  # never "whatever has that address now"

    def test_a_state_change_is_pushed_to_the_open_forms(self):
        """The job queue changes states behind open forms: each change is sent
        on the bus to the Mail Hosting users, whose form reloads."""
        org = self.make_org(domain="live.example")
        org.action_provision()
        self.client.ensure_domain.return_value = RemoteDomain(
            3, "live.example", True, 1, 1, dkim_enabled=True, dkim_public_key="KEY", dkim_selector="s"
        )
        self.env.cr.flush()
        before = self.env["bus.bus"].sudo().search([], order="id desc", limit=1).id or 0
        self.Job._cron_run()
        self.env.cr.flush()  # the bus writes its notifications as the transaction commits
        group = self.env.ref("fayvad_mail.fayvad_mail_group_user")
        pushed = [
            json.loads(n.message)["payload"]
            for n in self.env["bus.bus"].sudo().search([("id", ">", before)])
            if json.loads(n.message)["type"] == "fayvad_mail/state_changed"
            and json.loads(n.channel)[1:] == ["res.groups", group.id]
        ]
        self.assertIn({"model": "fayvad.mail.domain", "ids": org.domain_ids.ids}, pushed)
        self.assertIn({"model": "fayvad.mail.organization", "ids": org.ids}, pushed)

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
