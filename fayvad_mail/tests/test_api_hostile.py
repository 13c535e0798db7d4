"""Hostile input through Odoo's real HTTP stack: bad bytes, oversized
bodies, unsigned floods, Standard Webhooks senders, error texts. Each
answer is JSON with its proper status, never a 500 or an HTML page."""

import http.client
import json
import time
from datetime import UTC, datetime, timedelta
from unittest.mock import patch
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.tests.common import ProvisioningCase
from odoo.addons.fayvad_mail.tools.signature import sign, standard_secret, verify

SECRET = "hostile-company-secret-" + "h" * 24
MIB = 1024 * 1024


@tagged("post_install", "-at_install")
class TestHostileInput(ProvisioningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Secret = cls.env["fayvad.mail.webhook.secret"]
        Secret.search([]).unlink()
        cls.secret = Secret.create({"secret": SECRET})
        cls.org = cls.env["fayvad.mail.organization"].create(
            {"name": "Hostile", "partner_id": cls.customer.id, "state": "active"}
        )

    def deliveries(self):
        return self.env["fayvad.mail.webhook.delivery"].search([], order="id")

    def post_webhook(self, raw, signed=True, headers=None, path="/webhooks/billing/"):
        all_headers = {"X-Webhook-Signature": sign(SECRET, raw) if signed else "sha256=" + "0" * 64}
        all_headers.update(headers or {})
        return self.api("POST", path, raw=raw, key=False, headers=all_headers)

    def event(self, **billing):
        return {
            "event_type": "payment_failed",
            "organization_id": self.org.id,
            "billing_data": {"invoice_id": "H-1", **billing},
        }

    # -- bad bytes ---------------------------------------------------------------------------
    def test_bad_bytes_in_webhook_bodies_are_400_and_logged(self):
        cases = {
            "NUL byte in the raw body": (json.dumps(self.event()).encode()[:-1] + b"\x00}", "body"),
            "invalid UTF-8": (json.dumps(self.event()).encode().replace(b"H-1", b"H-\xff\xfe"), "body"),
            "NUL in a string field": (
                json.dumps(self.event(description="evil\u0000text")).encode(),
                "billing_data.description",
            ),
            "lone surrogate": (
                json.dumps(self.event(invoice_id="\ud800")).encode(),
                "billing_data.invoice_id",
            ),
            "currency with a newline": (
                json.dumps(self.event(currency="USD\n")).encode(),
                "billing_data.currency",
            ),
            "NUL in the event type": (
                json.dumps({**self.event(), "event_type": "payment_failed\u0000"}).encode(),
                "event_type",
            ),
        }
        for label, (raw, field) in cases.items():
            with self.subTest(label):
                before = len(self.deliveries())
                body = self.assertApiError(self.post_webhook(raw), 400, "VALIDATION_ERROR", field)
                self.assertIs(body["processed"], False)
                self.assertEqual(len(self.deliveries()), before + 1, "the delivery is still logged")
                self.assertEqual(self.deliveries()[-1].verdict, "invalid")
                self.assertNotIn("\x00", self.deliveries()[-1].body)
        # unsigned, with a NUL byte: refused, and still logged
        answer = self.post_webhook(b'{"a": "\x00"}', signed=False)
        self.assertApiError(answer, 400, "INVALID_WEBHOOK_SIGNATURE")
        self.assertEqual(self.deliveries()[-1].verdict, "invalid_signature")

    def test_bad_bytes_in_urls_and_headers(self):
        raw = json.dumps(self.event()).encode()
        for token in ("%00", "%ff%fe", "x" * 300, "0" * 31 + "%0a"):
            with self.subTest(token=token):
                answer = self.post_webhook(raw, path=f"/webhooks/billing/{token}/")
                self.assertApiError(answer, 404, "NOT_FOUND")
        for header in ("Token \u00e9t\u00e9", "Token a\tb", "Token " + "k" * 300):
            with self.subTest(header=header):
                answer = self.api("GET", "/usage-summary/", key=False, headers={"Authorization": header})
                self.assertApiError(answer, 401, "AUTHENTICATION_FAILED")
        org, domain = self.make_org()
        answer = self.api(
            "POST",
            "/provision/email-account/",
            self.account_payload(org.id, domain.id),
            headers={"Idempotency-Key": "k\u00e9y"},
        )
        self.assertApiError(answer, 400, "VALIDATION_ERROR", "Idempotency-Key")
        answer = self.post_webhook(raw, headers={"Webhook-Id": "evt\u00e9"})
        self.assertApiError(answer, 400, "VALIDATION_ERROR", "Webhook-Id")
        self.assertApiError(
            self.api("GET", "/usage-summary/?start_date=2026-01-01%00"), 400, "VALIDATION_ERROR", "start_date"
        )
        self.assertApiError(
            self.api("GET", "/usage-summary/?include_details=true%0a"),
            400,
            "VALIDATION_ERROR",
            "include_details",
        )

    def test_names_are_matched_whole(self):
        cases = {
            "domain": [
                "evil\n.com",
                "evil.com\n",
                "xn--zz.com",
                "a.xn--",
                "b\u00fccher\u0000.example",
                "\u00e9" * 5000 + ".com",
            ],
            "name": ["Acme\u0000", "\ud800"],
        }
        for field, values in cases.items():
            for value in values:
                with self.subTest(field=field, value=value[:20]):
                    started = time.monotonic()
                    answer = self.api("POST", "/provision/organization/", self.org_payload(**{field: value}))
                    self.assertApiError(answer, 400, "VALIDATION_ERROR", f"organization_data.{field}")
                    self.assertLess(time.monotonic() - started, 5, "long input is cut off before idna runs")
        answer = self.api("POST", "/provision/email-account/", self.account_payload(1, 1, address="john\n"))
        self.assertApiError(answer, 400, "VALIDATION_ERROR", "email_account_data.address")

    def test_control_characters_in_names_are_refused(self):
        for value in ("Acme\r\nBcc: x", "Acme\tCorp", "Acme\u2028Corp", "Acme\x1b[31m"):
            with self.subTest(value=repr(value)):
                before = self.env["fayvad.mail.organization"].search_count([])
                answer = self.api("POST", "/provision/organization/", self.org_payload(name=value))
                body = self.assertApiError(answer, 400, "VALIDATION_ERROR", "organization_data.name")
                self.assertIn("control characters", body["details"]["organization_data.name"][0])
                self.assertEqual(self.env["fayvad.mail.organization"].search_count([]), before)
        org, domain = self.make_org()
        for field in ("first_name", "last_name"):
            payload = self.account_payload(org.id, domain.id)
            payload["email_account_data"]["user_info"][field] = "John\nDoe"
            answer = self.api("POST", "/provision/email-account/", payload)
            self.assertApiError(answer, 400, "VALIDATION_ERROR", f"email_account_data.user_info.{field}")
        alias = {
            "alias_data": {
                "organization_id": org.id,
                "domain": domain.id,
                "address": "sales",
                "recipients": ["a@b.example"],
                "description": "Sales\rteam",
            }
        }
        self.assertApiError(
            self.api("POST", "/provision/alias/", alias), 400, "VALIDATION_ERROR", "alias_data.description"
        )
        raw = json.dumps(self.event(description="Paid\nX-Injected: 1")).encode()
        self.assertApiError(self.post_webhook(raw), 400, "VALIDATION_ERROR", "billing_data.description")
        self.assertFalse(org.account_ids)
        self.assertFalse(org.alias_ids)

    # -- replays and identities of webhook deliveries ----------------------------------------------
    def test_a_replay_under_a_new_unsigned_id_header_applies_nothing(self):
        payment = {
            "event_type": "payment_received",
            "organization_id": self.org.id,
            "billing_data": {"amount": 42.0, "currency": "USD", "invoice_id": "REPLAY-1"},
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        raw = json.dumps(payment).encode()  # one capture, signed once by the sender
        first = self.post_webhook(raw, headers={"X-Webhook-Id": "evt-original"})
        self.assertEqual((first[0], first[1]["duplicate"]), (200, False), first[1])
        for header in ({"X-Webhook-Id": "evt-forged-1"}, {"Webhook-Id": "evt-forged-2"}, {}):
            with self.subTest(header=header):
                status, body, _ = self.post_webhook(raw, headers=header)
                self.assertEqual((status, body["duplicate"]), (200, True), body)
                self.assertEqual(body["webhook_id"], first[1]["webhook_id"])
        payments = self.org.billing_event_ids.filtered(lambda e: e.event_type == "payment_received")
        self.assertEqual(len(payments), 1, "three replays, one payment")

    def test_two_organizations_may_use_the_same_delivery_id(self):
        other = self.env["fayvad.mail.organization"].create(
            {"name": "Other sender", "partner_id": self.env["res.partner"].create({"name": "Other"}).id}
        )
        own = {org: "own-secret-of-" + str(org.id) + "-" + "x" * 24 for org in (self.org, other)}
        for org, secret in own.items():
            self.env["fayvad.mail.webhook.secret"].create({"organization_id": org.id, "secret": secret})
        for org, secret in own.items():
            with self.subTest(org=org.name):
                raw = json.dumps(
                    {"event_type": "payment_failed", "organization_id": org.id, "billing_data": {}}
                ).encode()
                status, body, _ = self.api(
                    "POST",
                    f"/webhooks/billing/{org.webhook_token}/",
                    raw=raw,
                    key=False,
                    headers={"X-Webhook-Signature": sign(secret, raw), "Webhook-Id": "evt-1"},
                )
                self.assertEqual((status, body["duplicate"]), (200, False), body)
                self.assertEqual(
                    org.billing_event_ids.filtered(lambda e: e.event_type == "payment_failed").mapped(
                        "webhook_delivery_id.reference"
                    ),
                    [body["webhook_id"]],
                )

    def test_a_plan_of_another_company_is_a_clear_error(self):
        other = self.env["res.company"].create({"name": "Other Hosting Co"})
        foreign = self.plan.copy({"name": "Other company's plan", "company_id": other.id})
        before = self.env["fayvad.mail.organization"].search_count([])
        body = self.assertApiError(
            self.api("POST", "/provision/organization/", self.org_payload(plan_id=foreign.id)),
            400,
            "VALIDATION_ERROR",
            "organization_data.plan_id",
        )
        self.assertIn("No active subscription plan", body["details"]["organization_data.plan_id"][0])
        self.assertEqual(self.env["fayvad.mail.organization"].search_count([]), before, "nothing created")

    def test_a_timestamp_far_in_the_future_is_refused(self):
        now = datetime.now(UTC)
        for stamp in ("9999-12-31T00:00:00Z", (now + timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%SZ")):
            with self.subTest(stamp=stamp):
                raw = json.dumps({**self.event(invoice_id=f"F-{stamp}"), "timestamp": stamp}).encode()
                body = self.assertApiError(self.post_webhook(raw), 400, "VALIDATION_ERROR", "timestamp")
                self.assertIn("future", body["details"]["timestamp"][0])
                self.assertIs(body["processed"], False)
        self.assertFalse(self.org.billing_event_ids, "nothing dated 9999, nothing applied")
        soon = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # a clock slightly ahead is fine
        raw = json.dumps({**self.event(invoice_id="F-soon"), "timestamp": soon}).encode()
        self.assertEqual(self.post_webhook(raw)[0], 200)

    def test_unknown_query_parameters_are_ignored(self):
        for query in ("self=1", "self=1&foo=bar", "token=x"):
            with self.subTest(query=query):
                status, body, _ = self.api("GET", f"/usage-summary/?{query}")
                self.assertEqual(status, 200, body)
        raw = json.dumps(self.event(invoice_id="Q-1")).encode()
        status, body, _ = self.api(
            "POST",
            f"/webhooks/billing/?self=1&token={self.org.webhook_token}",
            raw=raw,
            key=False,
            headers={"X-Webhook-Signature": sign(SECRET, raw)},
        )
        self.assertEqual(status, 200, body)

    # -- sizes ---------------------------------------------------------------------------------
    def test_bodies_above_the_limit_are_413_before_being_read(self):
        payload = self.org_payload()
        payload["organization_data"]["padding"] = "x" * (MIB + 10)
        for path in ("/provision/organization/", "/webhooks/billing/"):
            with self.subTest(path=path):
                self.assertApiError(self.api("POST", path, payload), 413, "PAYLOAD_TOO_LARGE")
        self.env["ir.config_parameter"].sudo().set_param("fayvad_mail.max_body_bytes", str(2 * MIB))
        status, body, _ = self.api("POST", "/provision/organization/", payload)
        self.assertIn(status, (201, 202), body)  # the limit follows the setting (unknown fields ignored)
        # a body announced above Odoo's own 128 MiB cap: answered before it is sent
        url = urlsplit(self.base_url())
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.putrequest("POST", "/fayvad_api/erp/webhooks/billing/")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(200 * MIB))
            conn.endheaders()
            conn.send(b"{" * 1024)
            response = conn.getresponse()
            status, answer = response.status, json.loads(response.read())
            content_type = response.getheader("Content-Type")
        finally:
            conn.close()
        self.assertEqual((status, answer["error_code"]), (413, "PAYLOAD_TOO_LARGE"))
        self.assertTrue(content_type.startswith("application/json"))

    # -- abuse bound -------------------------------------------------------------------------------
    def table_bytes(self):
        """The delivery log's size on disk, its refusal counts included."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT pg_total_relation_size('fayvad_mail_webhook_delivery') "
            "+ pg_total_relation_size('fayvad_mail_webhook_refusal')"
        )
        return self.env.cr.fetchone()[0]

    @mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_webhook_delivery")
    def test_an_unsigned_flood_grows_the_database_by_a_bounded_amount(self):
        before = self.table_bytes()
        body = json.dumps({"event_type": "payment_failed", "padding": "x" * (900 * 1024)}).encode()
        for _ in range(1000):
            status, answer, _ = self.post_webhook(body, signed=False)
            self.assertEqual((status, answer["error_code"]), (400, "INVALID_WEBHOOK_SIGNATURE"))
        grown = self.table_bytes() - before
        self.assertLess(grown, MIB, f"1,000 unsigned deliveries of 900 KiB grew the table by {grown} bytes")
        line = self.deliveries()[-1]
        self.assertEqual((line.verdict, line.attempt_count), ("invalid_signature", 1000))
        self.assertLessEqual(len(line.body.encode()), 1024)

    def test_refused_deliveries_are_counted_per_ipv6_network(self):
        """One host holds a whole /64: counting each IPv6 address apart would
        let it grow the log at will."""
        Delivery = self.env["fayvad.mail.webhook.delivery"].sudo()
        raw = json.dumps({"event_type": "payment_failed"}).encode()
        unsigned = {"X-Webhook-Signature": "sha256=" + "0" * 64}
        before = len(self.deliveries())
        for host in range(1, 201):  # 200 addresses of one /64 network
            Delivery._receive(raw, unsigned, f"2001:db8:1:2::{host:x}")
        Delivery._receive(raw, unsigned, "2001:db8:1:3::1")  # another network
        Delivery._receive(raw, unsigned, "::ffff:192.0.2.7")  # an IPv4 client through an IPv6 socket
        lines = self.deliveries()[before:]
        self.assertEqual(len(lines), 3)
        self.assertEqual(sorted(lines.mapped("attempt_count")), [1, 1, 200])

    # -- secrets and signatures ------------------------------------------------------------------
    def test_short_or_empty_webhook_secrets_are_refused(self):
        Secret = self.env["fayvad.mail.webhook.secret"]
        for value in ("", "short", "x" * 23):
            with self.subTest(value=value), self.assertRaises(ValidationError):
                Secret.create({"secret": value, "organization_id": self.org.id})
        with self.assertRaises(ValidationError):
            self.secret.secret = "too-short"
        # through RPC too, as an administrator would call it
        self.authenticate("admin", "admin")
        response = self.url_open(
            "/web/dataset/call_kw/fayvad.mail.webhook.secret/create",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "model": "fayvad.mail.webhook.secret",
                        "method": "create",
                        "args": [{"secret": "", "organization_id": self.org.id}],
                        "kwargs": {},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        self.assertIn("at least 24 bytes", response.json()["error"]["data"]["message"])
        self.assertFalse(Secret.search([("organization_id", "=", self.org.id)]))
        self.assertIsNone(
            verify({"X-Webhook-Signature": sign("", b"{}")}, b"{}", [""]), "an empty key never verifies"
        )

    def test_standard_webhooks_sender_is_accepted(self):
        own = "standard-org-secret-" + "s" * 24
        self.env["fayvad.mail.webhook.secret"].create({"organization_id": self.org.id, "secret": own})
        routes = (
            ("/webhooks/billing/", SECRET),  # the company URL and secret
            (f"/webhooks/billing/{self.org.webhook_token}/", own),  # the organization's own
        )
        for path, secret in routes:
            sender = Webhook(standard_secret(secret))
            with self.subTest(path=path):
                raw = json.dumps(self.event(invoice_id=f"STD-{path}")).encode()
                msg_id, now = f"msg_{path}", datetime.now(UTC)
                headers = {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": sender.sign(msg_id, now, raw.decode()),
                }
                status, body, _ = self.api("POST", path, raw=raw, key=False, headers=headers)
                self.assertEqual((status, body["duplicate"]), (200, False), body)
                again = self.api("POST", path, raw=raw, key=False, headers=headers)
                self.assertEqual((again[1]["duplicate"], again[1]["webhook_id"]), (True, body["webhook_id"]))
                stored = self.deliveries().filtered(lambda d, ref=body["webhook_id"]: d.reference == ref)
                self.assertNotIn(headers["webhook-signature"].split(",")[1], stored.headers)
        # during a rotation: several signatures, one of them valid
        raw = json.dumps(self.event(invoice_id="STD-rot")).encode()
        now = datetime.now(UTC)
        headers = {
            "webhook-id": "msg_rot",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(
                [
                    Webhook(standard_secret("retired-secret-" + "r" * 24)).sign("msg_rot", now, raw.decode()),
                    Webhook(standard_secret(SECRET)).sign("msg_rot", now, raw.decode()),
                ]
            ),
        }
        self.assertEqual(self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=headers)[0], 200)
        # outside the 5-minute tolerance, or incomplete: refused
        old = datetime.fromtimestamp(now.timestamp() - 301, UTC)
        stale = {**headers, "webhook-id": "msg_old", "webhook-timestamp": str(int(old.timestamp()))}
        stale["webhook-signature"] = Webhook(standard_secret(SECRET)).sign("msg_old", old, raw.decode())
        answer = self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=stale)
        self.assertApiError(answer, 400, "INVALID_WEBHOOK_SIGNATURE")
        self.assertIn("5 minutes", answer[1]["error"])
        missing = {"webhook-signature": headers["webhook-signature"]}
        self.assertApiError(
            self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=missing),
            400,
            "INVALID_WEBHOOK_SIGNATURE",
        )

    # -- error texts -------------------------------------------------------------------------------
    def test_errors_carry_no_exception_text(self):
        Provisioning = type(self.env["fayvad.mail.provisioning"])
        with (
            patch.object(
                Provisioning, "_create_organization", side_effect=AccessError("secret row 42 of res_partner")
            ),
            mute_logger("odoo.http"),
        ):
            answer = self.api("POST", "/provision/organization/", self.org_payload())
        body = self.assertApiError(answer, 403, "PERMISSION_DENIED")
        self.assertNotIn("row 42", json.dumps(body))
        with (
            patch.object(
                Provisioning, "_create_organization", side_effect=RuntimeError("SELECT secret FROM x")
            ),
            mute_logger("odoo.addons.fayvad_mail.models.ir_http", "odoo.http"),
        ):
            answer = self.api("POST", "/provision/organization/", self.org_payload())
        body = self.assertApiError(answer, 500, "INTERNAL_ERROR")
        self.assertNotIn("SELECT", json.dumps(body))
