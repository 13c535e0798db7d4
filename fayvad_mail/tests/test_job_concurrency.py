"""Two cron runners on the same database at the same time, each with its
own database connection (as two Odoo workers or hosts would): a job is
never run twice, and an organization's jobs run one at a time, in order.

This needs committed data: it is created with a real cursor and deleted
afterwards. The mail server is a recording fake that takes its time."""

import itertools
import threading
import time
from unittest.mock import patch

from odoo import SUPERUSER_ID
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

from odoo.addons.fayvad_mail.tests.common import LOOPBACK_ONLY, delete_committed, new_env
from odoo.addons.fayvad_mail.tools.mailserver import RemoteDomain, RemoteMailbox
from odoo.addons.fayvad_mail.tools.units import MB

ORGS = 6
ACCOUNTS = 3
CONTEXT = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True}


class SlowFakeServer:
    """Records every call; each one takes a little time so the runners overlap."""

    def __init__(self, delay=0.02):
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()
        self.ids = iter(range(1000, 100000))

    def _record(self, *call):
        time.sleep(self.delay)
        with self.lock:
            self.calls.append((*call, threading.current_thread().name))
            return next(self.ids)

    def ensure_mailbox(self, email, password, quota_mb, first_name="", last_name=""):
        remote_id = self._record("ensure_mailbox", email)
        return RemoteMailbox(id=remote_id, email=email, active=True, quota_mb=quota_mb, created=True)

    def find_mailbox(self, email):
        self._record("find_mailbox", email)
        return RemoteMailbox(id=1, email=email, active=True, quota_mb=1)

    def get_mailbox(self, mailbox_id):
        self._record("get_mailbox", mailbox_id)
        return RemoteMailbox(id=mailbox_id, email="", active=True, quota_mb=1)

    def update_mailbox(self, mailbox_id, quota_mb=None, active=None, password=None):
        self._record("update_mailbox", mailbox_id)

    def find_domain(self, name):
        self._record("find_domain", name)
        return RemoteDomain(id=1, name=name, enabled=True, quota_mb=1, default_mailbox_quota_mb=1)

    def update_domain(self, domain_id, **values):
        self._record("update_domain", domain_id)


@tagged("post_install", "-at_install")
class TestJobConcurrency(TransactionCase):
    _request_handler = LOOPBACK_ONLY  # the jobs' (connect, read) timeouts to 127.0.0.1

    def test_two_runners_never_run_a_job_twice(self):
        registry = self.registry
        Job = type(self.env["fayvad.mail.job"])
        self.startPatcher(patch.object(Job, "_trigger_runner", lambda self: None))
        self.startPatcher(patch.object(Job, "_trigger_runner_at", lambda self, when: None))
        job_ids, org_ids = self._commit_jobs()
        self.addCleanup(lambda: delete_committed(self.registry, org_ids, [self.server_id]))

        fake = SlowFakeServer()
        runs = []
        runs_lock = threading.Lock()
        original_run = Job._run

        def recording_run(job, deadline=None):
            started = time.monotonic()
            state = original_run(job, deadline=deadline)
            with runs_lock:
                runs.append((job.id, job.organization_id.id, job.job_type, started, time.monotonic()))
            return state

        start = threading.Barrier(2)
        errors = []

        def runner():
            try:
                start.wait(10)
                with registry.cursor() as cr:
                    new_env(cr, SUPERUSER_ID, CONTEXT)["fayvad.mail.job"]._cron_run(limit=1000)
            except Exception as exc:  # reported by the main thread
                errors.append(exc)

        with (
            patch.object(type(self.env["fayvad.mail.server"]), "_client", lambda server, deadline=None: fake),
            patch.object(Job, "_run", recording_run),
        ):
            threads = [threading.Thread(target=runner, name=f"runner-{i}") for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        self.assertFalse(errors, errors)

        ran = [run[0] for run in runs]
        self.assertEqual(sorted(ran), sorted(job_ids), "every job ran exactly once")
        mailboxes = [call[1] for call in fake.calls if call[0] == "ensure_mailbox"]
        self.assertEqual(len(mailboxes), len(set(mailboxes)), "no mailbox was created twice")
        self.assertEqual(len(mailboxes), ORGS * ACCOUNTS)
        with registry.cursor() as cr:
            cr.execute(
                SQL(
                    "SELECT state, count(*) FROM fayvad_mail_job WHERE id IN %s GROUP BY state",
                    tuple(job_ids),
                )
            )
            self.assertEqual(dict(cr.fetchall()), {"done": len(job_ids)})

        # an organization's jobs ran one after the other, in the order they were queued
        for org_id in org_ids:
            mine = sorted((run for run in runs if run[1] == org_id), key=lambda run: run[0])
            for earlier, later in itertools.pairwise(mine):
                self.assertLessEqual(
                    earlier[4], later[3], f"organization {org_id}: {earlier} overlaps {later}"
                )

    def _commit_jobs(self):
        """Organizations with mailboxes to create, quotas to change and a
        domain update each, committed; returns (job ids, organization ids)."""
        with self.registry.cursor() as cr:
            env = new_env(cr, SUPERUSER_ID, CONTEXT)
            Job = env["fayvad.mail.job"]
            server = env["fayvad.mail.server"].create(
                {"name": "Concurrency fake", "url": "http://127.0.0.1:9", "token": "t" * 40}
            )
            job_ids, org_ids = [], []
            for i in range(ORGS):
                partner = env["res.partner"].create({"name": f"Concurrency customer {i}"})
                org = env["fayvad.mail.organization"].create(
                    {
                        "name": f"Concurrency {i}",
                        "partner_id": partner.id,
                        "mail_server_id": server.id,
                        "state": "active",
                        "max_users": 10,
                    }
                )
                domain = env["fayvad.mail.domain"].create(
                    {
                        "name": f"concurrency-{i}-{int(time.time() * 1000)}.example",
                        "organization_id": org.id,
                        "state": "active",
                    }
                )
                accounts = env["fayvad.mail.account"].create(
                    [
                        {
                            "local_part": f"user{n}",
                            "domain_id": domain.id,
                            "quota": 10 * MB,
                            "state": "provisioning",
                        }
                        for n in range(ACCOUNTS)
                    ]
                )
                for account in accounts:
                    job_ids.append(Job._enqueue("create_mailbox", account=account).id)
                for account in accounts:
                    job_ids.append(Job._enqueue("set_quota", account=account).id)
                job_ids.append(Job._enqueue("update_domain_quota", organization=org).id)
                org_ids.append(org.id)
            self.server_id = server.id
        return job_ids, org_ids
