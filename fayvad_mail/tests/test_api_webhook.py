import json
from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged
from odoo.tools import config, mute_logger

from odoo.addons.fayvad_mail.tests.common import ApiCase
from odoo.addons.fayvad_mail.tools.signature import sign

COMPANY_SECRET = "company-secret-0123456789abcdef"
ORG_SECRET = "organization-only-secret-0123456789"


@tagged("post_install", "-at_install")
class TestBillingWebhook(ApiCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Secret = cls.env["fayvad.mail.webhook.secret"]
        Secret.search([]).unlink()  # demo or earlier secrets must not interfere
        cls.secret = Secret.create({"secret": COMPANY_SECRET, "name": "current"})
        cls.org = cls.env["fayvad.mail.organization"].create(
            {"name": "Hooked", "partner_id": cls.customer.id, "plan_id": cls.plan.id, "state": "active"}
        )
        cls.env["fayvad.mail.subscription"]._start(cls.org, cls.plan)

    def setUp(self):
        super().setUp()
        self.stamp = fields.Datetime.now() - timedelta(minutes=5)  # when the sender says it happened

    def event(self, event_type="payment_received", invoice_id="INV-2025-001", **billing):
        return {
            "event_type": event_type,
            "organization_id": self.org.id,
            "billing_data": {
                "amount": 99.99,
                "currency": "USD",
                "description": "Monthly payment",
                "invoice_id": invoice_id,
                **billing,
            },
            "timestamp": self.stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def post(self, payload=None, secret=COMPANY_SECRET, raw=None, signature=None, path="/webhooks/billing/"):
        raw = raw if raw is not None else json.dumps(payload).encode()
        headers = {"X-Webhook-Signature": signature if signature is not None else sign(secret, raw)}
        return self.api("POST", path, raw=raw, key=False, headers=headers)

    def deliveries(self):
        return self.env["fayvad.mail.webhook.delivery"].search([], order="id")

    def test_payment_received(self):
        status, body, _ = self.post(self.event())
        self.assertEqual(status, 200, body)
        self.assertEqual(
            {k: body[k] for k in ("processed", "organization_id", "event_type", "duplicate")},
            {
                "processed": True,
                "organization_id": self.org.id,
                "event_type": "payment_received",
                "duplicate": False,
            },
        )
        delivery = self.deliveries()[-1]
        self.assertEqual(body["webhook_id"], delivery.reference)
        self.assertTrue(body["webhook_id"].startswith("webhook_"))
        self.assertEqual(
            (delivery.verdict, delivery.http_status, delivery.signature_valid), ("processed", 200, True)
        )
        self.assertEqual(json.loads(delivery.response), body, "the log keeps the answer as sent")
        event = delivery.billing_event_ids
        self.assertEqual(
            (event.event_type, event.amount, event.external_invoice_id),
            ("payment_received", 99.99, "INV-2025-001"),
        )
        self.assertEqual(event.date, self.stamp.date(), "dated by the event's timestamp")

    def test_signature_problems_are_refused_and_stored(self):
        payload = self.event()
        raw = json.dumps(payload).encode()
        reserialised = json.dumps(payload, indent=2).encode()
        cases = {
            "missing": (raw, ""),
            "wrong secret": (raw, sign("not-the-secret", raw)),
            "no prefix": (raw, sign(COMPANY_SECRET, raw)[7:]),
            "body re-serialised": (reserialised, sign(COMPANY_SECRET, raw)),
            "garbage": (raw, "sha256=zz"),
        }
        for label, (body, signature) in cases.items():
            with self.subTest(label):
                answer = self.post(raw=body, signature=signature)
                self.assertApiError(answer, 400, "INVALID_WEBHOOK_SIGNATURE")
                self.assertIs(answer[1]["processed"], False)
                delivery = self.deliveries()[-1]
                self.assertEqual((delivery.verdict, delivery.http_status), ("invalid_signature", 400))
                self.assertFalse(delivery.billing_event_ids)
        self.assertFalse(self.org.billing_event_ids.filtered(lambda e: e.event_type == "payment_received"))

    def test_no_secret_fails_closed(self):
        self.secret.expires_at = fields.Datetime.now() - timedelta(minutes=1)
        answer = self.post(self.event())
        self.assertApiError(answer, 400, "INVALID_WEBHOOK_SIGNATURE")
        self.assertIn("No webhook secret", answer[1]["error"])
        self.assertEqual(self.deliveries()[-1].verdict, "no_secret")

    def test_rotation_old_and_new_valid_until_expiry(self):
        new = self.secret.action_rotate()
        self.assertTrue(self.secret.expires_at)
        self.assertEqual(self.post(self.event(invoice_id="A"), secret=COMPANY_SECRET)[0], 200)
        self.assertEqual(self.post(self.event(invoice_id="B"), secret=new.secret)[0], 200)
        self.secret.action_expire_now()
        self.assertApiError(
            self.post(self.event(invoice_id="C"), secret=COMPANY_SECRET), 400, "INVALID_WEBHOOK_SIGNATURE"
        )
        self.assertEqual(self.post(self.event(invoice_id="D"), secret=new.secret)[0], 200)

    def test_organization_url_with_its_own_secret(self):
        own = self.env["fayvad.mail.webhook.secret"].create(
            {"organization_id": self.org.id, "secret": ORG_SECRET}
        )
        path = f"/webhooks/billing/{self.org.webhook_token}/"
        self.assertEqual(self.post(self.event(invoice_id="O1"), secret=ORG_SECRET, path=path)[0], 200)
        # the company secret does not open the organization's URL, nor the reverse
        self.assertApiError(
            self.post(self.event(invoice_id="O2"), path=path), 400, "INVALID_WEBHOOK_SIGNATURE"
        )
        self.assertApiError(
            self.post(self.event(invoice_id="O3"), secret=ORG_SECRET), 400, "INVALID_WEBHOOK_SIGNATURE"
        )
        other = self.env["fayvad.mail.organization"].create(
            {"name": "Other", "partner_id": self.env["res.partner"].create({"name": "Other"}).id}
        )
        wrong_org = {**self.event(invoice_id="O4"), "organization_id": other.id}
        self.assertApiError(
            self.post(wrong_org, secret=ORG_SECRET, path=path), 400, "VALIDATION_ERROR", "organization_id"
        )
        self.assertApiError(
            self.post(self.event(), secret=ORG_SECRET, path="/webhooks/billing/nope/"), 404, "NOT_FOUND"
        )
        self.assertEqual(own.organization_id, self.org)
        self.assertIn(self.org.webhook_token, self.org.webhook_url)

    def test_replay_is_a_duplicate_and_changes_nothing(self):
        first = self.post(self.event())[1]
        events = self.org.billing_event_ids
        again = self.post(self.event())
        self.assertEqual(again[0], 200)
        self.assertTrue(again[1]["duplicate"])
        self.assertEqual(again[1]["webhook_id"], first["webhook_id"])
        self.assertEqual(self.org.billing_event_ids, events)
        self.assertEqual(self.deliveries()[-1].verdict, "duplicate")
        # without invoice_id the raw body identifies the event
        no_invoice = self.event(invoice_id=None)
        del no_invoice["billing_data"]["invoice_id"]
        one = self.post(no_invoice)[1]
        two = self.post(no_invoice)[1]
        self.assertEqual((two["duplicate"], two["webhook_id"]), (True, one["webhook_id"]))

    def test_payload_validation(self):
        cases = [
            ({**self.event(), "event_type": "invoice_paid"}, "event_type"),
            ({**self.event(), "organization_id": "2"}, "organization_id"),
            (self.event(amount=-5), "billing_data.amount"),
            (self.event(amount="abc"), "billing_data.amount"),
            (self.event(currency="DOLLARS"), "billing_data.currency"),
            (self.event(description="x" * 501), "billing_data.description"),
            ({**self.event(), "timestamp": "yesterday"}, "timestamp"),
        ]
        for payload, field in cases:
            with self.subTest(field=field):
                answer = self.post(payload)
                self.assertApiError(answer, 400, "VALIDATION_ERROR", field)
                self.assertIs(answer[1]["processed"], False)
        self.assertApiError(self.post(raw=b"{not json"), 400, "VALIDATION_ERROR", "body")
        unknown = {**self.event(), "organization_id": 10**8}
        self.assertApiError(self.post(unknown), 404, "ORGANIZATION_NOT_FOUND")
        self.assertEqual(self.deliveries()[-1].verdict, "invalid")

    def test_sender_address_trusts_forwarded_headers_only_in_proxy_mode(self):
        """Behind nginx (proxy_mode, which Odoo applies when the proxy sets
        X-Forwarded-Host) the log keeps the client's address; without
        proxy_mode a forged X-Forwarded-For changes nothing."""
        forwarded = {
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Host": "mail.example",
            "X-Forwarded-Proto": "https",
        }

        def deliver(invoice):
            payload = self.event(invoice_id=invoice)
            raw = json.dumps(payload).encode()
            headers = {"X-Webhook-Signature": sign(COMPANY_SECRET, raw), **forwarded}
            status, body, _ = self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=headers)
            self.assertEqual(status, 200, body)
            return self.deliveries()[-1].remote_addr

        with patch.dict(config.options, {"proxy_mode": False}):
            self.assertEqual(deliver("PROXY-1"), "127.0.0.1")
        with patch.dict(config.options, {"proxy_mode": True}):
            self.assertEqual(deliver("PROXY-2"), "203.0.113.9")

    def test_stored_delivery_keeps_no_signature_nor_credentials(self):
        raw = json.dumps(self.event()).encode()
        signature = sign(COMPANY_SECRET, raw)
        self.post(raw=raw, signature=signature)
        delivery = self.deliveries()[-1]
        self.assertEqual(delivery.verdict, "processed")
        self.assertNotIn(signature[7:], delivery.headers, "the signature is not stored in clear")
        self.assertNotIn(signature[7:], delivery.body + delivery.response)
        self.assertIn("X-Webhook-Signature", delivery.headers)
        self.assertIn("redacted", json.loads(delivery.headers)["X-Webhook-Signature"])
        # and a Mail Hosting user reading deliveries sees no more than that
        user = self.env["res.users"].create(
            {
                "name": "Reader",
                "login": "webhook_reader",
                "groups_id": [(6, 0, [self.env.ref("fayvad_mail.fayvad_mail_group_user").id])],
            }
        )
        seen = str(delivery.with_user(user).read())
        self.assertNotIn(signature[7:], seen)
        self.api(
            "POST",
            "/webhooks/billing/",
            raw=b"{}",
            key=False,
            headers={"X-Webhook-Signature": "sha256=00", "Authorization": "Token leaked-token"},
        )
        self.assertNotIn("leaked-token", self.deliveries()[-1].headers)

    @freeze_time("2026-12-01 12:00:00")
    def test_subscription_events(self):
        self.stamp = fields.Datetime.now() - timedelta(minutes=5)
        sub = self.org.subscription_id
        self.env.ref("base.EUR").active = True
        self.post(self.event("subscription_updated", invoice_id="S1", amount=120, currency="EUR"))
        self.assertEqual((sub.amount, sub.currency_id.name, sub.state), (120, "EUR", "active"))
        sub.paid_until = fields.Date.today() + timedelta(days=10)
        self.post(self.event("subscription_cancelled", invoice_id="S2"))
        self.assertEqual(sub.state, "cancelled")
        self.assertEqual(self.org.state, "active", "suspended only at the end of the paid period")
        self.assertEqual(sub.suspend_on, fields.Date.today() + timedelta(days=11))

    def test_cancel_without_paid_period_suspends_now(self):
        self.org.subscription_id.paid_until = False
        self.post(self.event("subscription_cancelled", invoice_id="C1"))
        self.assertEqual((self.org.state, self.org.suspension_reason), ("suspended", "cancelled"))
        job = self.env["fayvad.mail.job"].search([("organization_id", "=", self.org.id)])
        self.assertEqual(job.job_type, "suspend_organization")

    def test_failed_payments_suspend_and_payment_lifts(self):
        self.env.company.fayvad_dunning_max_failures = 2
        self.post(self.event("payment_failed", invoice_id="F1"))
        self.assertEqual((self.org.state, self.org.subscription_id.state), ("active", "past_due"))
        self.post(self.event("payment_failed", invoice_id="F2"))
        self.assertEqual((self.org.state, self.org.suspension_reason), ("suspended", "non_payment"))
        self.post(self.event("payment_received", invoice_id="P1"))
        self.assertEqual(self.org.state, "active")
        self.assertEqual(self.org.subscription_id.failed_payment_count, 0)

    def test_manual_suspension_survives_payment(self):
        self.org._suspend("manual")
        self.post(self.event("payment_received", invoice_id="P2"))
        self.assertEqual((self.org.state, self.org.suspension_reason), ("suspended", "manual"))

    def test_exempt_customer_is_not_suspended(self):
        self.env.company.fayvad_dunning_max_failures = 1
        self.org.suspension_exempt = True
        self.post(self.event("payment_failed", invoice_id="F9"))
        self.assertEqual(self.org.state, "active")

    def test_event_that_cannot_be_applied_is_kept_and_can_be_resent(self):
        payload = self.event(invoice_id="X1")
        Apply = type(self.env["fayvad.mail.billing.webhook"])
        original = Apply._apply

        def broken(model, org, data, delivery, currency=None):
            raise RuntimeError("the accounting is closed")

        with (
            patch.object(Apply, "_apply", broken),
            mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_webhook_delivery"),
        ):
            answer = self.post(payload)
        body = self.assertApiError(answer, 500, "WEBHOOK_PROCESSING_FAILED")
        self.assertIs(body["processed"], False)
        self.assertNotIn("accounting is closed", json.dumps(body), "the caller gets no exception text")
        self.assertNotIn("RuntimeError", json.dumps(body))
        delivery = self.deliveries()[-1]
        self.assertEqual((delivery.verdict, delivery.http_status), ("failed", 500))
        self.assertIn("accounting is closed", delivery.error)
        self.assertFalse(self.org.billing_event_ids.filtered(lambda e: e.external_invoice_id == "X1"))
        # not marked as applied: sent again once the cause is gone, it goes through
        with patch.object(Apply, "_apply", original):
            status, body, _ = self.post(payload)
        self.assertEqual((status, body["duplicate"]), (200, False))
        self.assertTrue(self.org.billing_event_ids.filtered(lambda e: e.external_invoice_id == "X1"))

    def test_currency_unknown_to_odoo_is_refused(self):
        answer = self.post(self.event(invoice_id="X2", currency="XYZ"))
        self.assertApiError(answer, 400, "VALIDATION_ERROR", "billing_data.currency")
        self.assertFalse(self.org.billing_event_ids.filtered(lambda e: e.external_invoice_id == "X2"))

    def test_a_payment_without_a_positive_amount_is_refused_and_changes_nothing(self):
        self.org.write({"state": "suspended", "suspension_reason": "non_payment"})
        self.org.subscription_id.failed_payment_count = 2
        for billing in ({"amount": None}, {"amount": 0}):
            with self.subTest(billing=billing):
                payload = self.event(invoice_id=f"ZERO-{billing['amount']}", **billing)
                if billing["amount"] is None:
                    del payload["billing_data"]["amount"]
                body = self.assertApiError(self.post(payload), 400, "VALIDATION_ERROR", "billing_data.amount")
                self.assertIs(body["processed"], False)
        self.assertFalse(self.org.billing_event_ids.filtered(lambda e: e.event_type == "payment_received"))
        self.assertEqual((self.org.state, self.org.subscription_id.failed_payment_count), ("suspended", 2))

    def test_amounts_follow_their_currency_decimal_places(self):
        for code in ("JPY", "KWD"):
            self.env.ref(f"base.{code}").active = True
        refused = {("JPY", 1000.5), ("USD", 99.999), ("KWD", 1.0005)}
        accepted = {("JPY", 1000, 1000.0), ("USD", 99.99, 99.99), ("KWD", 1.005, 1.005)}
        for code, amount in refused:
            with self.subTest(code=code, amount=amount):
                answer = self.post(self.event(invoice_id=f"D-{code}-{amount}", currency=code, amount=amount))
                body = self.assertApiError(answer, 400, "VALIDATION_ERROR", "billing_data.amount")
                places = self.env.ref(f"base.{code}").decimal_places
                self.assertIn(
                    f"At most {places} decimal places in {code}", body["details"]["billing_data.amount"][0]
                )
        for code, amount, stored in accepted:
            with self.subTest(code=code, amount=amount):
                answer = self.post(self.event(invoice_id=f"D-{code}-{amount}", currency=code, amount=amount))
                self.assertEqual(answer[0], 200, answer[1])
                event = self.org.billing_event_ids.filtered(
                    lambda e, c=code: (e.external_invoice_id or "").startswith(f"D-{c}")
                )
                self.assertEqual((event.currency_id.name, event.amount), (code, stored))
