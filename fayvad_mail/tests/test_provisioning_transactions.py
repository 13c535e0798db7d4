"""The provisioning API's transaction boundaries, with real connections
(HTTP tests share one transaction and never see them): records are
committed before their job runs, an Idempotency-Key claim of a dead request
is taken over, two requests with one key at the same moment make one
organization, a job or the usage cron meeting another transaction's write
of their domain tries again. The mail server is unreachable here (answers
202) unless a test serves a fake one."""

import hashlib
import json
import threading
import time
import uuid
from unittest.mock import patch

import psycopg2

from odoo import SUPERUSER_ID, sql_db
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

from odoo.addons.fayvad_mail.controllers import answers as api_answers
from odoo.addons.fayvad_mail.tests.common import LOOPBACK_ONLY, delete_committed, new_env
from odoo.addons.fayvad_mail.tools.mailserver import RemoteDomain
from odoo.addons.fayvad_mail.tools.validation import validate_email_account, validate_organization

CONTEXT = {"tracking_disable": True}


class DomainWriter:
    """A mail server that answers at once; while a call named ``during``
    runs the first time, another connection writes the domain's row and
    commits (as the usage cron or a user does while a job waits for the
    server), so the transaction that called it can no longer write that row."""

    def __init__(self, case, during):
        self.case, self.during, self.calls = case, during, []

    def _call(self, name, domain_name):
        self.calls.append(name)
        if name == self.during and self.calls.count(name) == 1:
            with self.case.registry.cursor() as cr:
                cr.execute(
                    SQL(
                        "UPDATE fayvad_mail_domain SET write_date = now() at time zone 'UTC' WHERE name = %s",
                        domain_name,
                    )
                )

    def ensure_domain(self, name, quota_mb, default_mailbox_quota_mb, enabled=True):
        self._call("ensure_domain", name)
        return RemoteDomain(
            id=7,
            name=name,
            enabled=enabled,
            quota_mb=quota_mb,
            default_mailbox_quota_mb=default_mailbox_quota_mb,
            dkim_enabled=True,
            dkim_public_key="MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
            dkim_selector="modoboa",
        )

    def ensure_domain_admin(self, domain_name, username, password):
        self._call("ensure_domain_admin", domain_name)

    def find_domain(self, name):
        return self.ensure_domain(name, 1, 1)

    def update_domain(self, domain_id, **values):
        self.calls.append("update_domain")

    def list_mailboxes(self, domain_id):
        self._call("list_mailboxes", self.case.domain_name)
        return []


@tagged("post_install", "-at_install")
class TestProvisioningTransactions(TransactionCase):
    _request_handler = LOOPBACK_ONLY  # the jobs' (connect, read) timeouts to 127.0.0.1

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = new_env(cr, SUPERUSER_ID, CONTEXT)
            self.server_id = (
                env["fayvad.mail.server"]
                .create(
                    {"name": "Unreachable", "url": "http://127.0.0.1:9", "token": "t" * 40, "sequence": -1}
                )
                .id
            )
            self.partner_ids = env["res.partner"].create([{"name": f"Tx customer {i}"} for i in range(3)]).ids
        self.addCleanup(self._cleanup)
        Job = type(self.env["fayvad.mail.job"])
        self.startPatcher(patch.object(Job, "_trigger_runner", lambda self: None))
        self.startPatcher(patch.object(Job, "_trigger_runner_at", lambda self, when: None))

    def _cleanup(self):
        with self.registry.cursor() as cr:
            cr.execute(
                SQL("SELECT id FROM fayvad_mail_organization WHERE partner_id IN %s", tuple(self.partner_ids))
            )
            org_ids = [row[0] for row in cr.fetchall()]
            cr.execute(SQL("DELETE FROM fayvad_mail_api_request WHERE key LIKE %s", "tx-%"))
        if org_ids:
            delete_committed(self.registry, org_ids)
        with self.registry.cursor() as cr:
            cr.execute(SQL("DELETE FROM res_partner WHERE id IN %s", tuple(self.partner_ids)))
            cr.execute(SQL("DELETE FROM fayvad_mail_server WHERE id = %s", self.server_id))

    def body(self, partner_index=0):
        return json.dumps(
            {
                "organization_data": {
                    "name": "Transactions",
                    "domain": f"tx-{uuid.uuid4().hex[:8]}.example",
                    "odoo_customer_id": self.partner_ids[partner_index],
                }
            }
        ).encode()

    def handle(self, raw, key=None, uid=SUPERUSER_ID):
        """What the route does, on a connection of its own (a worker's request cursor)."""
        with self.registry.cursor() as cr:
            env = new_env(cr, uid, {})
            return api_answers.handle(env, "organization", raw, validate_organization, key)

    def org_count(self):
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "SELECT count(*) FROM fayvad_mail_organization WHERE partner_id IN %s",
                    tuple(self.partner_ids),
                )
            )
            return cr.fetchone()[0]

    def test_records_are_committed_before_their_job_runs(self):
        seen = []
        Domain = type(self.env["fayvad.mail.domain"])
        original = Domain._mail_server_create

        def step(domain, client, job):
            # what another worker (the cron) sees while the request waits for the mail server
            with self.registry.cursor() as cr:
                cr.execute(SQL("SELECT name FROM fayvad_mail_domain WHERE id = %s", domain.id))
                seen.append(cr.fetchone())
            return original(domain, client, job)

        with patch.object(Domain, "_mail_server_create", step):
            status, body = self.handle(self.body())
        self.assertEqual(status, 202, body)
        self.assertEqual(len(seen), 1)
        self.assertIsNotNone(seen[0], "the domain was committed before its job ran")

    def claim_on_own_connection(self, raw, key, hold=True):
        """A request's claim of ``key``, made by another process on its own
        connection (which holds the key's lock while ``hold``); the connection."""
        _db, info = sql_db.connection_info_for(self.env.cr.dbname)
        conn = psycopg2.connect(**info)
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO fayvad_mail_api_request (user_id, key, route, body_hash, status_code, create_date, write_date) "
                "VALUES (%s, %s, 'organization', %s, 0, now() at time zone 'UTC', now() at time zone 'UTC')",
                [SUPERUSER_ID, key, hashlib.sha256(raw).hexdigest()],
            )
            conn.commit()
            if hold:
                cur.execute(
                    "SELECT pg_advisory_lock(%s)", [self.env["fayvad.mail.api.request"]._lock_id(key)]
                )
        return conn

    def test_claim_left_by_a_dead_request_is_taken_over(self):
        raw = self.body()
        dead = self.claim_on_own_connection(raw, "tx-dead")
        backend = dead.get_backend_pid()
        dead.close()  # its worker was killed: the connection, and the lock, are gone
        for _ in range(100):  # PostgreSQL ends the backend, and frees its lock, a moment later
            self.env.cr.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend])
            if not self.env.cr.fetchone():
                break
            time.sleep(0.05)
        status, body = self.handle(raw, key="tx-dead")
        self.assertEqual(status, 202, body)
        self.assertEqual(self.org_count(), 1)
        again = self.handle(raw, key="tx-dead")
        self.assertEqual(again, (status, body), "the answer is stored and replayed now")

    def test_claim_of_a_live_request_is_a_conflict(self):
        raw = self.body()
        live = self.claim_on_own_connection(raw, "tx-live")
        try:
            status, body = self.handle(raw, key="tx-live")
            self.assertEqual((status, body["error_code"]), (409, "CONFLICT"))
            self.assertIn("still being processed", body["error"])
            self.assertEqual(self.org_count(), 0)
            other = self.handle(self.body(), key="tx-live")  # same key, other body: a conflict too
            self.assertEqual(other[0], 409)
        finally:
            live.close()
        status, body = self.handle(raw, key="tx-live")
        self.assertEqual(status, 202, body)

    def test_two_simultaneous_requests_with_one_key_make_one_organization(self):
        raw = self.body()
        start = threading.Barrier(2)
        answers, errors = [], []
        Provisioning = type(self.env["fayvad.mail.provisioning"])
        original = Provisioning._run_jobs

        def slow_run_jobs(model, kind, record_id, budget):
            time.sleep(1.0)  # long enough for the other request to arrive meanwhile
            return original(model, kind, record_id, budget)

        def request():
            try:
                start.wait(10)
                answers.append(self.handle(raw, key="tx-same"))
            except Exception as exc:  # reported below
                errors.append(exc)

        with patch.object(Provisioning, "_run_jobs", slow_run_jobs):
            threads = [threading.Thread(target=request) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        self.assertFalse(errors, errors)
        statuses = sorted(status for status, _body in answers)
        self.assertEqual(statuses, [202, 409], answers)
        self.assertEqual(self.org_count(), 1)
        replay = self.handle(raw, key="tx-same")
        self.assertEqual(replay[0], 202)
        self.assertEqual(
            replay[1]["organization"]["id"], next(b for s, b in answers if s == 202)["organization"]["id"]
        )

    def test_concurrent_requests_never_exceed_the_organizations_limit(self):
        with self.registry.cursor() as cr:
            env = new_env(cr, SUPERUSER_ID, CONTEXT)
            org = env["fayvad.mail.organization"].create(
                {
                    "name": "Tx limit",
                    "partner_id": self.partner_ids[1],
                    "state": "active",
                    "max_users": 1,
                    "mail_server_id": self.server_id,
                }
            )
            domain = env["fayvad.mail.domain"].create(
                {
                    "name": f"tx-limit-{uuid.uuid4().hex[:6]}.example",
                    "organization_id": org.id,
                    "state": "active",
                }
            )
            org_id, domain_id = org.id, domain.id
        start = threading.Barrier(2)
        answers, errors = [], []

        def request(address):
            raw = json.dumps(
                {"email_account_data": {"organization_id": org_id, "domain": domain_id, "address": address}}
            ).encode()
            try:
                start.wait(10)
                with self.registry.cursor() as cr:
                    env = new_env(cr, SUPERUSER_ID, {})
                    answers.append(api_answers.handle(env, "email_account", raw, validate_email_account))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=request, args=(address,)) for address in ("first", "second")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertFalse(errors, errors)
        self.assertEqual(sorted(status for status, _body in answers), [202, 400], answers)
        refused = next(body for status, body in answers if status == 400)
        self.assertIn("limit of 1 users", str(refused["details"]))
        with self.registry.cursor() as cr:
            cr.execute(SQL("SELECT count(*) FROM fayvad_mail_account WHERE domain_id = %s", domain_id))
            self.assertEqual(cr.fetchone()[0], 1, "the limit held with two workers")

    # -- a job or the usage cron, and another transaction writing the same domain ----
    def serve(self, server):
        Server = type(self.env["fayvad.mail.server"])
        self.startPatcher(patch.object(Server, "_client", lambda self, deadline=None: server))

    def provision(self):
        raw = self.body()
        self.domain_name = json.loads(raw)["organization_data"]["domain"]
        return self.handle(raw)

    def test_a_job_meeting_a_concurrent_write_runs_again_at_once(self):
        server = DomainWriter(self, during="ensure_domain_admin")
        self.serve(server)
        status, body = self.provision()
        self.assertEqual(status, 201, body)
        self.assertTrue(body["provisioning_details"]["initial_admin_created"])
        self.assertEqual(server.calls.count("ensure_domain_admin"), 2, "run again, in the same request")
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "SELECT job_type, state, attempts FROM fayvad_mail_job WHERE organization_id = %s ORDER BY id",
                    body["organization"]["id"],
                )
            )
            jobs = cr.fetchall()
        # run twice, one attempt: meeting a concurrent update is no failure of the mail server
        self.assertEqual(jobs, [("create_domain", "done", 1), ("create_domain_admin", "done", 1)])

    def test_the_usage_cron_meeting_a_concurrent_write_reads_the_domain_next_run(self):
        self.serve(DomainWriter(self, during=None))
        status, body = self.provision()
        self.assertEqual(status, 201, body)
        self.serve(DomainWriter(self, during="list_mailboxes"))
        read = []
        for _run in range(2):
            with self.registry.cursor() as cr:
                env = new_env(cr, SUPERUSER_ID, CONTEXT)
                read.append(env["fayvad.mail.usage.snapshot"]._cron_read_usage())
                cr.execute(
                    SQL(
                        "SELECT usage_read_at IS NOT NULL, cron_error FROM fayvad_mail_domain WHERE name = %s",
                        self.domain_name,
                    )
                )
                read.append(cr.fetchone())
        self.assertEqual(read, [0, (False, None), 1, (True, None)], "no error shown, read on the next run")
