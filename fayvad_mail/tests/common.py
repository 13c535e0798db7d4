"""Shared fixtures of fayvad_mail's tests."""

import contextlib
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
import unittest
import uuid
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import MagicMock, patch
from urllib.parse import urlsplit

import psycopg2
import requests
from freezegun import freeze_time

from odoo import SUPERUSER_ID, api, fields
from odoo.modules.registry import Registry
from odoo.tests import HttpCase, TransactionCase, new_test_user
from odoo.tests.common import BlockedRequest, _super_send
from odoo.tools import SQL

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.fayvad_mail.const import API_KEY_SCOPE
from odoo.addons.fayvad_mail.tools.mailserver import MailServerClient
from odoo.addons.fayvad_mail.tools.signature import sign
from odoo.addons.fayvad_mail.tools.units import MB

GROUPS = {
    "user": "fayvad_mail.fayvad_mail_group_user",
    "accountant": "fayvad_mail.fayvad_mail_group_accountant",
    "admin": "fayvad_mail.fayvad_mail_group_admin",
    "api": "fayvad_mail.fayvad_mail_group_api",
}


def loopback_only(session, request, **kw):
    """Odoo's tests block outbound HTTP: requests to 127.0.0.1 (Modoboa, the
    fault proxy) go through with the client's own (connect, read) timeouts;
    anything else stays blocked."""
    if urlsplit(request.url).hostname in ("127.0.0.1", "localhost"):
        return _super_send(session, request, **kw)
    raise BlockedRequest(f"External requests verboten (was {request.method} {request.url})")


# Odoo's tests route every outbound request through the class's _request_handler
LOOPBACK_ONLY = classmethod(lambda cls, s, r, /, **kw: loopback_only(s, r, **kw))


class FayvadMailCase(TransactionCase):
    """A company with a plan, a customer and helpers to build organizations.
    Mail-server calls are not made: jobs are queued, the runner is not
    triggered (tests that need it run it themselves)."""

    _request_handler = LOOPBACK_ONLY

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.server = cls.env["fayvad.mail.server"].create(
            {
                "name": "Test server",
                "url": "http://127.0.0.1:9",
                "token": "t" * 40,
                "mail_host": "mx.test.example",
            }
        )
        cls.plan = cls.env["fayvad.mail.plan"].create(
            {
                "name": "Test Plan",
                "monthly_price": 50.0,
                "included_users": 2,
                "price_per_extra_user": 5.0,
                "max_users": 5,
                "max_storage_gb": 10,
                "default_mailbox_quota_mb": 1024,
            }
        )
        cls.partner = cls.env["res.partner"].create({"name": "Test Customer", "is_company": True})
        cls._trigger_patch = patch.object(
            type(cls.env["fayvad.mail.job"]), "_trigger_runner", lambda self: None
        )
        cls._trigger_patch.start()
        cls.addClassCleanup(cls._trigger_patch.stop)

    @contextmanager
    def assertRefused(self, exception, regex=None):
        """Like assertRaisesRegex, and what the failed call wrote is rolled
        back (Odoo's assertRaises works in a savepoint)."""
        with self.assertRaises(exception) as caught:
            yield caught
        if regex:
            self.assertRegex(str(caught.exception), regex)

    @classmethod
    def make_user(cls, login, *groups, company=None, **kwargs):
        company = company or cls.company
        return new_test_user(
            cls.env,
            login=login,
            groups=",".join(["base.group_user", *(GROUPS[g] for g in groups)]),
            company_id=company.id,
            company_ids=[company.id],
            **kwargs,
        )

    @classmethod
    def make_org(cls, name="Org", domain="org.example", partner=None, plan=None, verified=True, **vals):
        """An organization with its domain; ``verified``: its customer proved
        it holds the domain (tests/test_domain_verification.py tells how)."""
        partner = partner or cls.env["res.partner"].create({"name": f"{name} customer"})
        org = cls.env["fayvad.mail.organization"].create(
            {
                "name": name,
                "partner_id": partner.id,
                "plan_id": (plan if plan is not None else cls.plan).id,
                "mail_server_id": cls.server.id,
                "max_users": 5,
                "max_storage_gb": 10,
                **vals,
            }
        )
        if domain:
            proof = {"verification_state": "verified", "verified_how": "manual"} if verified else {}
            cls.env["fayvad.mail.domain"].create({"name": domain, "organization_id": org.id, **proof})
        return org

    @classmethod
    def make_account(cls, org, local, quota_mb=1024, **vals):
        return cls.env["fayvad.mail.account"].create(
            {"local_part": local, "domain_id": org.domain_ids[:1].id, "quota": quota_mb * MB, **vals}
        )


class BillingCase(AccountTestInvoicingCommon):
    """A company with a chart of accounts (invoices, payments, credit notes),
    a plan billed with a taxed product, and helpers to build organizations
    and their billing events."""

    _request_handler = LOOPBACK_ONLY

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
        cls.webhook_secret = "billing-case-secret-" + "s" * 24
        cls.env["fayvad.mail.webhook.secret"].search([]).unlink()
        cls.env["fayvad.mail.webhook.secret"].create(
            {"secret": cls.webhook_secret, "company_id": cls.company.id}
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
            self.env["fayvad.mail.subscription"]._start(org, self.plan)
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

    def posted_first_invoice(self, org):
        """``org``'s first invoice, made by the sync of 2026-03-02 and posted that day."""
        self.sync("2026-03-02")
        invoice = org.billing_event_ids.invoice_id
        invoice.invoice_date = "2026-03-02"
        invoice.action_post()
        return invoice

    def payments_fail(self, org, *days):
        """A signed ``payment_failed`` for ``org`` on each of ``days`` (at 08:00 UTC), sent that day."""
        for day in days:
            with freeze_time(day):
                self.webhook(
                    {
                        "event_type": "payment_failed",
                        "organization_id": org.id,
                        "timestamp": f"{day}T08:00:00Z",
                    }
                )

    def subscription_webhook(self, org, kind, amount, stamp, invoice="SUB-1"):
        """A signed ``kind`` event of ``amount`` USD for ``org``, sent at ``stamp``."""
        return self.webhook(
            {
                "event_type": kind,
                "organization_id": org.id,
                "billing_data": {"amount": amount, "currency": "USD", "invoice_id": invoice},
                "timestamp": stamp,
            }
        )

    def webhook(self, payload, headers=None, secret=None):
        """Deliver a signed billing webhook as the route does; (status, body)."""
        raw = json.dumps(payload).encode()
        secret = secret or self.webhook_secret
        all_headers = {
            "Content-Type": "application/json",
            "X-Webhook-Signature": sign(secret, raw),
            **(headers or {}),
        }
        return self.env["fayvad.mail.webhook.delivery"].sudo()._receive(raw, all_headers, "127.0.0.1")

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


# -- a real Modoboa (started by ./dev test) ---------------------------------------------
MODOBOA_URL = os.environ.get("FAYVAD_TEST_MODOBOA_URL")
MODOBOA_TOKEN = os.environ.get("FAYVAD_TEST_MODOBOA_TOKEN")
MODOBOA_DSN = os.environ.get("FAYVAD_TEST_MODOBOA_DSN")  # its PostgreSQL database


class MockedServerCase(FayvadMailCase):
    """``self.client``: a mock of the mail-server client every server hands out."""

    def setUp(self):
        super().setUp()
        self.client = MagicMock(spec=MailServerClient)
        self.startPatcher(
            patch.object(
                type(self.env["fayvad.mail.server"]), "_client", lambda s, deadline=None: self.client
            )
        )
        self.Job = self.env["fayvad.mail.job"]


def new_env(cr, uid=SUPERUSER_ID, context=None):
    """An environment on ``cr``, a cursor the test opened itself (often in a
    thread of its own). Its registry is taken as it is, not looked up with
    ``Registry(dbname)``: odoo-bin's test runner holds the registries' lock
    while the tests run, and another thread that asks for it waits for ever."""
    if cr.transaction is None:
        cr.transaction = api.Transaction(Registry.registries[cr.dbname])
    return api.Environment(cr, uid, context or {})


def run_due_jobs(env, rounds=20):
    """Run the provisioning cron until nothing is due; the jobs it ran."""
    Job = env["fayvad.mail.job"]
    total = 0
    for _ in range(rounds):
        ran = Job._cron_run()
        total += ran
        if not ran:
            break
    return total


def unique_domain(prefix="e2e"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example"


class ModoboaCase(FayvadMailCase):
    """Tests against the real Modoboa that ``./dev test`` starts: skipped
    when FAYVAD_TEST_MODOBOA_URL is unset, failed when
    FAYVAD_TEST_REQUIRE_MODOBOA=1 says it must be there."""

    @classmethod
    def setUpClass(cls):
        if not (MODOBOA_URL and MODOBOA_TOKEN):
            if os.environ.get("FAYVAD_TEST_REQUIRE_MODOBOA") == "1":
                raise AssertionError(
                    "FAYVAD_TEST_REQUIRE_MODOBOA=1 but FAYVAD_TEST_MODOBOA_URL/_TOKEN are not set: "
                    "run the tests with ./dev test, which starts a Modoboa"
                )
            raise unittest.SkipTest(
                "no Modoboa to test against: FAYVAD_TEST_MODOBOA_URL is not set (./dev test sets it)"
            )
        super().setUpClass()
        cls.modoboa = cls.make_modoboa_server(MODOBOA_URL)

    @classmethod
    def make_modoboa_server(cls, url, **vals):
        return cls.env["fayvad.mail.server"].create(
            {
                "name": f"Modoboa {url}",
                "url": url,
                "token": MODOBOA_TOKEN,
                "mail_host": "mx.e2e.example",
                "read_timeout": 15,
                **vals,
            }
        )

    def new_org(self, prefix="e2e", **vals):
        """An organization on the test Modoboa, not provisioned yet."""
        name = unique_domain(prefix)
        return self.make_org(
            **{
                "name": name,
                "domain": name,
                "mail_server_id": self.modoboa.id,
                "max_users": 5,
                "max_storage_gb": 2,
                "default_mailbox_quota_mb": 100,
                **vals,
            }
        )

    def provisioned_org(self, accounts=(("alice", 100),), prefix="e2e", **vals):
        """An organization with ``accounts`` (local part, MB), provisioned on Modoboa."""
        org = self.new_org(prefix, **vals)
        for local, quota_mb in accounts:
            self.make_account(org, local, quota_mb=quota_mb)
        org.action_provision()
        self.run_jobs()
        self.assertEqual(org.state, "active", org.job_ids.mapped(lambda j: (j.name, j.last_error)))
        return org

    def run_jobs(self, rounds=20):
        return run_due_jobs(self.env, rounds)

    # -- Modoboa's own API, with plain requests ----------------------------------------
    def api(self, method, path, payload=None, expect=200):
        response = requests.request(
            method,
            f"{MODOBOA_URL}{path}",
            json=payload,
            headers={"Authorization": f"Token {MODOBOA_TOKEN}"},
            timeout=30,
        )
        self.assertEqual(response.status_code, expect, f"{method} {path}: {response.text[:300]}")
        return response.json() if response.content else None

    def api_domain(self, name):
        """Modoboa's domain of that exact name (GET by pk, with its DKIM key), or None."""
        results = self.api("GET", f"/api/v2/domains/?search={name}&page_size=1000")["results"]
        found = [d for d in results if d["name"] == name]
        return self.api("GET", f"/api/v2/domains/{found[0]['pk']}/") if found else None

    def api_accounts(self, domain_pk):
        return self.api("GET", f"/api/v2/accounts/?domain={domain_pk}&page_size=1000")["results"]

    def api_account(self, username):
        results = self.api("GET", f"/api/v2/accounts/?search={username}&page_size=1000")["results"]
        found = [a for a in results if a["username"] == username]
        return found[0] if found else None

    @staticmethod
    def set_mailbox_usage(email, bytes_used):
        """Pretend the mailbox holds ``bytes_used`` (the admin_quota row
        Dovecot writes)."""
        with contextlib.closing(psycopg2.connect(MODOBOA_DSN)) as conn, conn, conn.cursor() as cr:
            cr.execute(
                "INSERT INTO admin_quota (username, bytes, messages) VALUES (%s, %s, 0) "
                "ON CONFLICT (username) DO UPDATE SET bytes = excluded.bytes",
                (email, int(bytes_used)),
            )


# -- a fault-injecting proxy between Odoo and Modoboa ------------------------------------
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``target``, whose ``mode`` is

    - ``pass``: forward every request;
    - ``error``: answer 500 without forwarding;
    - ``refuse``: answer 400 with a field error to writes (POST, PATCH), as a
      server refusing the request would, without forwarding them;
    - ``slow``: forward, then answer only after ``delay`` seconds (longer
      than the client's read timeout: the server did the work, the answer
      is lost) for the methods in ``slow_methods``;

    and ``stop()``/``start()`` close/reopen the port (connection refused).
    ``log`` lists (method, path, upstream status) of what reached the target,
    ``bodies`` the (method, path, request body) of each of those requests.
    """

    def __init__(self, target, delay=2.0):
        parts = urlsplit(target)
        self.target = (parts.hostname, parts.port)
        self.mode = "pass"
        self.delay = delay
        self.slow_methods = {"POST"}
        self.log = []
        self.bodies = []
        self.port = None
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = proxy.mode
                if mode == "error":
                    return self._answer(500, b'{"detail": "Server error."}')
                if mode == "refuse" and self.command in ("POST", "PATCH"):
                    return self._answer(400, b'{"name": ["refused by the test proxy"]}')
                status, payload = proxy._forward(self.command, self.path, self.headers, body)
                if mode == "slow" and self.command in proxy.slow_methods:
                    time.sleep(proxy.delay)
                return self._answer(status, payload)

            def _answer(self, status, payload):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    proxy.log.append((self.command, "answer lost: the client gave up", status))

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def _forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(*self.target, timeout=30)
        try:
            forwarded = {
                k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept")
            }
            conn.request(method, path, body=body or None, headers=forwarded)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        self.log.append((method, path.split("?")[0], response.status))
        self.bodies.append((method, path.split("?")[0], body))
        return response.status, payload

    def count(self, method, path, status=None):
        return sum(1 for m, p, s in self.log if m == method and p == path and status in (None, s))


def delete_committed(registry, org_ids, server_ids=(), secret_ids=()):
    """Delete what a test (or benchmark) committed for real: organizations
    with everything hanging from them, their customers, servers, secrets."""
    with registry.cursor() as cr:
        ids = tuple(org_ids)
        cr.execute(SQL("SELECT partner_id FROM fayvad_mail_organization WHERE id IN %s", ids))
        partner_ids = tuple(row[0] for row in cr.fetchall())
        for table in (
            "fayvad_mail_job",
            "fayvad_mail_billing_event",
            "fayvad_mail_webhook_delivery",
            "fayvad_mail_subscription",
            "fayvad_mail_account",
            "fayvad_mail_domain",
        ):
            cr.execute(SQL("DELETE FROM %s WHERE organization_id IN %s", SQL.identifier(table), ids))
        cr.execute(SQL("DELETE FROM fayvad_mail_organization WHERE id IN %s", ids))
        cr.execute(SQL("DELETE FROM res_partner WHERE id IN %s", partner_ids))
        if server_ids:
            cr.execute(SQL("DELETE FROM fayvad_mail_server WHERE id IN %s", tuple(server_ids)))
        if secret_ids:
            cr.execute(SQL("DELETE FROM fayvad_mail_webhook_secret WHERE id IN %s", tuple(secret_ids)))


# -- the HTTP API through Odoo's real HTTP stack -------------------------------------------
SECRET_PATTERNS = [
    re.compile(p) for p in (r"Traceback \(most recent call last\)", r"<html", r"psycopg2", r"SELECT .* FROM")
]


class ApiCase(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api_user = new_test_user(
            cls.env, login="erp_api_bot", groups="base.group_user,fayvad_mail.fayvad_mail_group_api"
        )
        cls.api_key = cls.new_key(cls.api_user)
        cls.plan = cls.env["fayvad.mail.plan"].create(
            {
                "name": "API Plan",
                "monthly_price": 99.99,
                "included_users": 2,
                "price_per_extra_user": 5.0,
                "max_users": 20,
                "max_storage_gb": 40,
                "default_mailbox_quota_mb": 100,
            }
        )
        cls.customer = cls.env["res.partner"].create({"name": "API Customer", "is_company": True})
        url = os.environ.get("FAYVAD_TEST_MODOBOA_URL")
        cls.server = cls.env["fayvad.mail.server"].create(
            {
                "name": "API test server",
                "url": url or "http://127.0.0.1:9",
                "token": os.environ.get("FAYVAD_TEST_MODOBOA_TOKEN", "x" * 40),
                "mail_host": "mx.api.example",
                "sequence": 0,
                "read_timeout": 10,
            }
        )

    _request_handler = LOOPBACK_ONLY

    @classmethod
    def new_key(cls, user, scope=API_KEY_SCOPE, expiration=None):
        return cls.env["res.users.apikeys"].with_user(user).sudo()._generate(scope, "test key", expiration)

    def api(self, method, path, body=None, key=None, headers=None, raw=None, prefix="/fayvad_api/erp"):
        """Call the API; returns (status, decoded JSON, response). Every answer
        must be JSON and free of tracebacks, HTML and SQL."""
        all_headers = {"Content-Type": "application/json"}
        if key is not False:
            all_headers["Authorization"] = f"Token {key or self.api_key}"
        all_headers.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = self.opener.request(
            method,
            f"{self.base_url()}{prefix}{path}",
            data=data,
            headers=all_headers,
            timeout=60,
            allow_redirects=False,
        )
        self.assertEqual(
            response.headers.get("Content-Type", "").split(";")[0], "application/json", response.text
        )
        for pattern in SECRET_PATTERNS:
            self.assertNotRegex(response.text, pattern)
        return response.status_code, response.json(), response

    def assertApiError(self, answer, status, code, *fields):
        got_status, body, _response = answer
        self.assertEqual((got_status, body.get("error_code")), (status, code), body)
        self.assertIsInstance(body.get("error"), str)
        for field in fields:
            self.assertIn(field, body.get("details", {}), body)
        return body

    def signed(self, secret, payload):
        raw = json.dumps(payload).encode()
        return raw, {"X-Webhook-Signature": sign(secret, raw)}


def require_modoboa(cls):
    """Skip without a real Modoboa, unless ./dev test promised one."""
    if not MODOBOA_URL:
        if os.environ.get("FAYVAD_TEST_REQUIRE_MODOBOA"):
            raise AssertionError("FAYVAD_TEST_MODOBOA_URL is not set: ./dev test starts a Modoboa")
        cls.skipTest(cls, "needs a real Modoboa (run ./dev test)")


DNS_ADDRESS = os.environ.get("FAYVAD_TEST_DNS")


class RealDns:
    """The real DNS server ``./dev test`` starts (Knot, authoritative for the
    root zone on a loopback port): a test publishes zone file lines in it,
    and the addon's domain checks ask it (``fayvad_mail.dns_nameservers``).
    What a test published is withdrawn after it."""

    @classmethod
    def setup_dns(cls):
        if not DNS_ADDRESS:
            if os.environ.get("FAYVAD_TEST_REQUIRE_MODOBOA"):
                raise AssertionError("FAYVAD_TEST_DNS is not set: ./dev test starts a DNS server")
            raise unittest.SkipTest("needs the real DNS server of ./dev test (FAYVAD_TEST_DNS)")
        cls.env["ir.config_parameter"].sudo().set_param("fayvad_mail.dns_nameservers", DNS_ADDRESS)

    def check_due(self, *domains):
        """The DNS check cron's run once these domains' checks are due."""
        for domain in domains:
            domain.dns_next_check = fields.Datetime.now() - timedelta(seconds=1)
        self.env["fayvad.mail.domain"]._cron_check_dns()

    def publish(self, *lines):
        """Serve these zone file lines (absolute names) besides what this test published."""
        if not getattr(self, "_dns_lines", None):
            self._dns_lines = []
            self.addCleanup(self._serve, [])
        self._dns_lines += lines
        self._serve(self._dns_lines)

    def withdraw(self, name):
        """Stop serving the records whose owner is ``name`` (absolute)."""
        self._dns_lines = [line for line in getattr(self, "_dns_lines", []) if line.split()[0] != name]
        self._serve(self._dns_lines)

    def publish_records(self, domain, *purposes):
        """Publish the domain's records to publish, as asked (``purposes``: only those)."""
        self.publish(
            *(
                r.zone_line
                for r in domain.dns_record_ids
                if r.value and (not purposes or r.purpose in purposes)
            )
        )

    @staticmethod
    def _serve(lines):
        zone = os.environ["FAYVAD_TEST_DNS_ZONE"]
        with open(zone, encoding="utf-8") as current:
            head = current.read().split("\n; -- published --\n")[0]
        with open(zone + ".tmp", "w", encoding="utf-8") as out:
            out.write(head.rstrip("\n") + "\n; -- published --\n" + "".join(f"{line}\n" for line in lines))
        os.replace(zone + ".tmp", zone)
        subprocess.run(
            ["knotc", "-s", os.environ["FAYVAD_TEST_DNS_CONTROL"], "-b", "zone-reload", "."],
            check=True,
            capture_output=True,
            timeout=30,
        )


@contextmanager
def silent_dns_server():
    """The address of a UDP port that never answers: every lookup times out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def modoboa_get(path, **params):
    """GET ``/api/v2<path>`` of the real Modoboa of ./dev test, its JSON."""
    response = requests.get(
        f"{MODOBOA_URL}/api/v2{path}",
        params=params,
        headers={"Authorization": f"Token {MODOBOA_TOKEN}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def unique(prefix="org"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ProvisioningCase(ApiCase):
    def org_payload(self, customer=None, **fields):
        customer = customer or self.env["res.partner"].create({"name": unique("customer")})
        data = {
            "name": "Acme Corporation",
            "domain": f"{unique()}.example",
            "odoo_customer_id": customer.id,
            "max_users": 10,
            "max_storage_gb": 5,
            "plan_id": self.plan.id,
            "contact_info": {
                "primary_email": "admin@acme.example",
                "phone": "+1234567890",
                "address": "123 Business St",
            },
        }
        data.update(fields)
        return {"organization_data": data}

    def account_payload(self, org_id, domain_id, **fields):
        data = {
            "organization_id": org_id,
            "address": "john.doe",
            "domain": domain_id,
            "quota": 10 * MB,
            "user_info": {"first_name": "John", "last_name": "Doe", "password": "Secure-Passw0rd-123"},
        }
        data.update(fields)
        return {"email_account_data": data}

    def make_org(self, **fields):
        """An organization made through the API (mail server unreachable: pending)."""
        self.server.url = "http://127.0.0.1:9"
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload(**fields))
        self.assertIn(status, (201, 202), body)
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        return org, org.domain_ids


class ModoboaProvisioningCase(ProvisioningCase):
    """The API against the real Modoboa that ``./dev test`` starts (required)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_modoboa(cls)
