"""Faults between Odoo and the real Modoboa: a proxy in between answers
500, answers too late (after Modoboa did the work), or is closed. Jobs
retry with growing delays and, once Modoboa is reachable again, every job
completes exactly once."""

from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import MODOBOA_URL, FaultProxy, ModoboaCase, unique_domain
from odoo.addons.fayvad_mail.tools.backoff import BACKOFF_BASE

PASSWORD = "Pr0xy-Passw0rd_x"


@tagged("post_install", "-at_install")
class TestProvisioningFaults(ModoboaCase):
    def setUp(self):
        super().setUp()
        self.proxy = FaultProxy(MODOBOA_URL, delay=2.5).start()
        self.addCleanup(self.proxy.stop)
        self.server = self.make_modoboa_server(
            self.proxy.url, connect_timeout=1, read_timeout=1, max_attempts=8
        )
        self.Job = self.env["fayvad.mail.job"]

    def new_org(self, *accounts):
        name = unique_domain("fault")
        org = self.make_org(
            name=name, domain=name, mail_server_id=self.server.id, max_storage_gb=1, max_users=5
        )
        for local, quota_mb in accounts:
            self.make_account(org, local, quota_mb=quota_mb)
        return org

    def provision_calmly(self, org):
        """Provision ``org`` with a patient client (Modoboa makes a DKIM key
        when it creates a domain: over the fault tests' 1 s on a busy machine),
        before the test's faults begin."""
        self.server.read_timeout = 30
        org.action_provision()
        self.run_jobs()
        self.server.read_timeout = 1
        self.assertEqual(org.state, "active", org.job_ids.mapped("last_error"))

    def time_passes(self, jobs):
        """The retry time of ``jobs`` has come."""
        jobs.filtered(lambda j: j.state == "pending").write(
            {"next_attempt_at": fields.Datetime.now() - timedelta(seconds=1)}
        )

    def test_outages_retry_with_growing_delays_then_complete_once(self):
        org = self.new_org(("alice", 50))
        alice = org.account_ids
        alice._set_pending_password(PASSWORD)
        org.action_provision()
        create_domain = org.job_ids.filtered(lambda j: j.job_type == "create_domain")
        create_mailbox = org.job_ids.filtered(lambda j: j.job_type == "create_mailbox")

        delays = []
        outages = [
            ("error", "HTTP 500"),
            ("slow", "no answer within 1s"),  # Modoboa creates the domain, the answer is lost
            ("closed", "cannot connect"),
        ]
        for attempt, (mode, message) in enumerate(outages, start=1):
            self.proxy.mode = mode
            if mode == "closed":
                self.proxy.stop()
            before = fields.Datetime.now()
            self.Job._cron_run()
            self.assertEqual(create_domain.state, "pending", mode)
            self.assertEqual(create_domain.attempts, attempt)
            self.assertIn(message, create_domain.last_error)
            delay = (create_domain.next_attempt_at - before).total_seconds()
            full = BACKOFF_BASE * 2 ** (attempt - 1)  # 30 s, 60 s, 120 s, with jitter down to half
            self.assertGreaterEqual(delay, full / 2 - 1, mode)
            self.assertLessEqual(delay, full + 3, mode)  # + the time the attempt itself took
            delays.append(delay)
            self.assertEqual(create_mailbox.attempts, 0, "the mailbox waits for its domain")
            self.assertEqual(org.state, "provisioning")
            if mode == "closed":
                self.proxy.start()
            self.assertFalse(self.Job._acquire(), "nothing is due before the retry time")
            self.time_passes(org.job_ids)
        self.assertEqual(delays, sorted(delays), "each retry waits longer")
        self.assertEqual(self.proxy.count("POST", "/api/v2/domains/", 201), 1)  # the slow attempt created it

        self.proxy.mode = "pass"
        self.run_jobs()
        self.assertEqual(set(org.job_ids.mapped("state")), {"done"}, org.job_ids.mapped("last_error"))
        self.assertEqual(create_domain.attempts, 4)
        self.assertEqual(set((org.job_ids - create_domain).mapped("attempts")), {1})
        self.assertEqual(org.state, "active")
        # exactly once on Modoboa: one domain, one mailbox, one administrator
        self.assertEqual(self.proxy.count("POST", "/api/v2/domains/"), 1)
        self.assertEqual(self.proxy.count("POST", "/api/v2/accounts/", 201), 2)  # alice and the administrator
        remote = self.api_domain(org.domain_ids.name)
        self.assertTrue(remote["dkim_public_key"])
        self.assertEqual([a["username"] for a in self.api_accounts(remote["pk"])], [alice.email])
        self.assertEqual(len(self.api("GET", f"/api/v2/domains/{remote['pk']}/administrators/")), 1)
        self.assertIsNone(alice._get_pending_password())

    def test_lost_mailbox_answer_is_not_duplicated(self):
        org = self.new_org()
        self.provision_calmly(org)
        bob = self.make_account(org, "bob", quota_mb=20)
        bob._set_pending_password(PASSWORD)
        bob.action_provision()
        job = bob.env["fayvad.mail.job"].search([("account_id", "=", bob.id)])

        self.proxy.mode = "slow"  # Modoboa creates the mailbox; Odoo never hears back
        self.Job._cron_run()
        self.assertEqual((job.state, job.attempts), ("pending", 1))
        self.assertIn("no answer within 1s", job.last_error)
        self.assertEqual(bob.state, "provisioning")
        self.assertIsNotNone(self.api_account(bob.email), "Modoboa did create it")
        self.assertEqual(bob._get_pending_password(), PASSWORD, "kept until the hand-over is confirmed")

        self.proxy.mode = "pass"
        self.time_passes(job)
        self.run_jobs()
        self.assertEqual((job.state, job.attempts), ("done", 2))
        self.assertEqual(bob.state, "active")
        posts = [entry for entry in self.proxy.log if entry[:2] == ("POST", "/api/v2/accounts/")]
        self.assertEqual(len(posts), 2, "the administrator and bob, each once")
        remote = self.api_domain(org.domain_ids.name)
        self.assertEqual([a["username"] for a in self.api_accounts(remote["pk"])], [bob.email])
        self.assertEqual(
            self.proxy.count("PATCH", f"/api/v2/accounts/{bob.remote_id}/"), 1, "password handed over again"
        )
        self.assertIsNone(bob._get_pending_password())

    def test_a_server_in_error_is_waited_for_past_the_retry_limit(self):
        """A mail server answering 500 is not a refusal: past its attempts
        the job stays pending (the administrators are told once), and it
        completes once the server is back, with nothing done twice."""
        self.server.max_attempts = 3
        org = self.new_org(("alice", 10))
        org.account_ids._set_pending_password("Kept-During-0utage")
        org.action_provision()
        create_domain = org.job_ids.filtered(lambda j: j.job_type == "create_domain")
        create_mailbox = org.job_ids - create_domain
        self.assertEqual(create_domain.max_attempts, 3)
        self.proxy.mode = "error"
        for _ in range(5):
            self.Job._cron_run()
            self.time_passes(org.job_ids)
        self.assertEqual((create_domain.state, create_domain.attempts), ("pending", 5))
        self.assertIn("HTTP 500", create_domain.last_error)
        self.assertTrue(create_domain.next_attempt_at)
        self.assertEqual(create_mailbox.state, "pending", "the mailbox waits for the domain")
        self.assertEqual((org.state, org.domain_ids.state), ("provisioning", "provisioning"))
        self.assertEqual(create_mailbox.account_id._get_pending_password(), "Kept-During-0utage", "kept")
        admin = self.env.ref("base.user_admin")
        activity = create_domain.activity_ids.filtered(lambda a: a.user_id == admin)
        self.assertEqual(len(activity), 1, "told once, when the attempts ran out")
        self.assertIn("keeps failing", activity.summary)

        self.proxy.mode = "pass"
        self.time_passes(org.job_ids)
        self.server.read_timeout = 30  # the faults are over: a patient client for the DKIM key
        self.run_jobs()
        self.assertEqual(set(org.job_ids.mapped("state")), {"done"})
        self.assertEqual(org.state, "active")
        self.assertFalse(create_domain.activity_ids)
        self.assertFalse(create_mailbox.account_id.password_dropped)

    def test_a_cancelled_job_is_retried_by_hand(self):
        org = self.new_org(("alice", 10))
        org.action_provision()
        self.proxy.mode = "error"
        self.Job._cron_run()
        create_domain = org.job_ids.filtered(lambda j: j.job_type == "create_domain")
        create_domain.action_cancel()
        self.assertEqual(create_domain.state, "cancelled")
        self.proxy.mode = "pass"
        create_domain.action_retry()
        self.assertEqual(set(org.job_ids.mapped("state")), {"pending"})
        self.server.read_timeout = 30
        self.run_jobs()
        self.assertEqual(set(org.job_ids.mapped("state")), {"done"})
        self.assertEqual(org.state, "active")

    def test_permanent_refusal_fails_with_modoboa_reason(self):
        org = self.new_org(("alice", 10))
        self.provision_calmly(org)
        name = org.domain_ids.name
        # the domain quota on Modoboa drifted below what Odoo allows
        self.api(
            "PATCH",
            f"/api/v2/domains/{self.api_domain(name)['pk']}/",
            {"quota": 30, "default_mailbox_quota": 10},
        )
        bob = self.make_account(org, "bob", quota_mb=100)
        bob.action_provision()
        self.Job._cron_run()
        job = self.Job.search([("account_id", "=", bob.id)])
        self.assertEqual((job.state, job.attempts), ("failed", 1), "a refusal is not retried")
        self.assertIn(f"{name}: domain quota exceeded", job.last_error)
        self.assertEqual(bob.state, "failed")
        activity = job.activity_ids.filtered(lambda a: a.user_id == self.env.ref("base.user_admin"))
        self.assertIn("domain quota exceeded", activity.note)
        self.assertIsNone(self.api_account(bob.email))
