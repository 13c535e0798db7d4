import json
from unittest.mock import patch

import jsonschema

from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.tests.common import (
    MODOBOA_URL,
    FaultProxy,
    ModoboaProvisioningCase,
)
from odoo.addons.fayvad_mail.tools.signature import sign

SECRET = "openapi-secret-" + "o" * 24


@tagged("post_install", "-at_install")
class TestOpenApi(ModoboaProvisioningCase):
    """The served OpenAPI document is checked against real answers: every
    status it documents for an operation is produced by a real request
    here, no request produces one it does not document, and each answer's
    body matches the schema of its status (the real Modoboa of ./dev test
    gives the 201s)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.outsider = new_test_user(cls.env, login="openapi_outsider", groups="base.group_user")
        cls.outsider_key = cls.new_key(cls.outsider)
        cls.env["fayvad.mail.webhook.secret"].search([]).unlink()
        cls.env["fayvad.mail.webhook.secret"].create({"secret": SECRET})

    def setUp(self):
        super().setUp()
        status, self.spec, _response = self.api("GET", "/openapi.json", key=False)
        self.assertEqual(status, 200)
        self.seen = {}

    def check(self, path, method, answer):
        """Validate one real answer against the document; remember its status."""
        status, body, response = answer
        operation = self.spec["paths"][path][method]
        self.assertIn(
            str(status), operation["responses"], f"{method} {path} answered an undocumented {status}: {body}"
        )
        self.assertEqual(response.headers["Content-Type"].split(";")[0], "application/json")
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        jsonschema.validate(body, {**schema, "components": self.spec["components"]})
        self.seen.setdefault((path, method), set()).add(str(status))
        return body

    def assertAllDocumentedStatusesSeen(self, path, method):
        documented = set(self.spec["paths"][path][method]["responses"])
        self.assertEqual(self.seen.get((path, method), set()), documented, f"{method} {path}")

    def test_document_is_valid_openapi_31_of_exactly_the_routes(self):
        jsonschema.Draft202012Validator.check_schema({"$defs": self.spec["components"]["schemas"]})
        self.assertEqual(self.spec["openapi"], "3.1.0")
        self.assertEqual(
            set(self.spec["paths"]),
            {
                "/usage-summary/",
                "/provision/organization/",
                "/provision/email-account/",
                "/provision/alias/",
                "/provision/domain-alias/",
                "/webhooks/billing/",
                "/webhooks/billing/{token}/",
                "/metrics/",
            },
        )

    def test_metrics_answers(self):
        path = "/metrics/"
        response = self.url_open(
            "/fayvad_api/erp/metrics/",
            headers={"Authorization": f"Token {self.api_key}"},
            allow_redirects=False,
        )
        self.assertEqual(response.status_code, 200)
        documented = self.spec["paths"][path]["get"]["responses"]["200"]["content"]
        self.assertEqual(response.headers["Content-Type"].split("; charset")[0], next(iter(documented)))
        self.assertIn("# TYPE fayvad_mail_jobs gauge", response.text)
        self.seen[(path, "get")] = {"200"}
        self.check(path, "get", self.api("GET", path, key=False))
        self.check(path, "get", self.api("GET", path, key=self.outsider_key))
        self.check(path, "get", self.api("POST", path))
        self.assertAllDocumentedStatusesSeen(path, "get")

    def test_usage_summary_answers(self):
        path = "/usage-summary/"
        self.check(path, "get", self.api("GET", "/usage-summary/?include_details=1&limit=5"))
        self.check(path, "get", self.api("GET", "/usage-summary/?start_date=2026-13-01"))
        self.check(path, "get", self.api("GET", "/usage-summary/?organization_id=99999999"))
        self.check(path, "get", self.api("GET", "/usage-summary/", key=False))
        self.check(path, "get", self.api("GET", "/usage-summary/", key=self.outsider_key))
        self.check(path, "get", self.api("POST", "/usage-summary/"))
        self.assertAllDocumentedStatusesSeen(path, "get")

    def test_organization_answers(self):
        path = "/provision/organization/"
        done = self.check(path, "post", self.api("POST", path, self.org_payload()))
        self.assertTrue(done["provisioned"])
        proxy = FaultProxy(MODOBOA_URL).start()
        self.addCleanup(proxy.stop)
        self.server.url = proxy.url
        proxy.mode = "error"
        self.check(path, "post", self.api("POST", path, self.org_payload()))  # 202
        proxy.mode = "refuse"
        with mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_job"):
            refused = self.check(path, "post", self.api("POST", path, self.org_payload()))
        self.assertIn("refused by the test proxy", refused["error"])
        self.check(path, "post", self.api("POST", path, {"organization_data": {}}))
        self.check(path, "post", self.api("POST", path, self.org_payload(), key="0" * 40))
        self.check(path, "post", self.api("POST", path, self.org_payload(), key=self.outsider_key))
        self.check(path, "post", self.api("GET", path))
        proxy.mode = "error"
        headers = {"Idempotency-Key": "openapi-1"}
        self.check(path, "post", self.api("POST", path, self.org_payload(), headers=headers))
        self.check(path, "post", self.api("POST", path, self.org_payload(), headers=headers))  # 409
        self.check(path, "post", self.api("POST", path, raw=b" " * (1024 * 1024 + 1)))  # 413
        self.assertAllDocumentedStatusesSeen(path, "post")

    def test_email_account_answers(self):
        path = "/provision/email-account/"
        status, org_body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, org_body)
        org = self.env["fayvad.mail.organization"].browse(org_body["organization"]["id"])
        domain = org.domain_ids
        done = self.check(path, "post", self.api("POST", path, self.account_payload(org.id, domain.id)))
        self.assertTrue(done["provisioned"])
        proxy = FaultProxy(MODOBOA_URL).start()
        self.addCleanup(proxy.stop)
        self.server.url = proxy.url
        proxy.mode = "refuse"
        with mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_job"):
            self.check(
                path,
                "post",
                self.api("POST", path, self.account_payload(org.id, domain.id, address="refused")),
            )
        proxy.mode = "error"  # (after the refusal: the organization's later jobs wait for a pending one)
        self.check(
            path, "post", self.api("POST", path, self.account_payload(org.id, domain.id, address="pending"))
        )
        self.check(path, "post", self.api("POST", path, self.account_payload(org.id, domain.id, quota=5)))
        self.check(path, "post", self.api("POST", path, self.account_payload(10**8, domain.id)))
        self.check(path, "post", self.api("POST", path, self.account_payload(org.id, domain.id), key=False))
        self.check(
            path,
            "post",
            self.api("POST", path, self.account_payload(org.id, domain.id), key=self.outsider_key),
        )
        self.check(path, "post", self.api("PATCH", path))
        proxy.mode = "error"
        headers = {"Idempotency-Key": "openapi-2"}
        self.check(
            path,
            "post",
            self.api("POST", path, self.account_payload(org.id, domain.id, address="k1"), headers=headers),
        )
        self.check(
            path,
            "post",
            self.api("POST", path, self.account_payload(org.id, domain.id, address="k2"), headers=headers),
        )
        self.check(path, "post", self.api("POST", path, raw=b" " * (1024 * 1024 + 1)))  # 413
        self.assertAllDocumentedStatusesSeen(path, "post")

    def test_alias_answers(self):
        path = "/provision/alias/"
        status, org_body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, org_body)
        org = self.env["fayvad.mail.organization"].browse(org_body["organization"]["id"])
        domain = org.domain_ids

        def payload(address="sales", org_id=org.id, **fields):
            data = {
                "organization_id": org_id,
                "domain": domain.id,
                "address": address,
                "recipients": ["someone@example.com"],
            }
            return {"alias_data": {**data, **fields}}

        done = self.check(path, "post", self.api("POST", path, payload()))
        self.assertTrue(done["provisioned"])
        self.check(path, "post", self.api("POST", path, payload()))  # 400 ALIAS_ALREADY_EXISTS
        proxy = FaultProxy(MODOBOA_URL).start()
        self.addCleanup(proxy.stop)
        self.server.url = proxy.url
        proxy.mode = "refuse"
        with mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_job"):
            self.check(path, "post", self.api("POST", path, payload("refused")))
        proxy.mode = "error"
        self.check(path, "post", self.api("POST", path, payload("pending")))
        self.check(path, "post", self.api("POST", path, payload(recipients=[])))
        self.check(path, "post", self.api("POST", path, payload(org_id=10**8)))
        self.check(path, "post", self.api("POST", path, payload(), key=False))
        self.check(path, "post", self.api("POST", path, payload(), key=self.outsider_key))
        self.check(path, "post", self.api("GET", path))
        headers = {"Idempotency-Key": "openapi-3"}
        self.check(path, "post", self.api("POST", path, payload("k1"), headers=headers))
        self.check(path, "post", self.api("POST", path, payload("k2"), headers=headers))
        self.check(path, "post", self.api("POST", path, raw=b" " * (1024 * 1024 + 1)))  # 413
        self.assertAllDocumentedStatusesSeen(path, "post")

    def test_domain_alias_answers(self):
        path = "/provision/domain-alias/"
        status, org_body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, org_body)
        org = self.env["fayvad.mail.organization"].browse(org_body["organization"]["id"])
        org.max_domain_aliases = 10
        domain = org.domain_ids

        def payload(name, org_id=org.id):
            return {"domain_alias_data": {"organization_id": org_id, "domain": domain.id, "name": name}}

        base = domain.name.replace(".example", "")
        done = self.check(path, "post", self.api("POST", path, payload(f"{base}.org")))
        self.assertTrue(done["provisioned"], done)
        self.check(
            path, "post", self.api("POST", path, payload(domain.name))
        )  # 400 ORGANIZATION_ALREADY_EXISTS
        proxy = FaultProxy(MODOBOA_URL).start()
        self.addCleanup(proxy.stop)
        self.server.url = proxy.url
        proxy.mode = "refuse"
        with mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_job"):
            self.check(path, "post", self.api("POST", path, payload(f"{base}-refused.org")))
        proxy.mode = "error"
        self.check(path, "post", self.api("POST", path, payload(f"{base}-pending.org")))
        self.check(path, "post", self.api("POST", path, payload("not a domain")))
        self.check(path, "post", self.api("POST", path, payload(f"{base}.net", org_id=10**8)))
        self.check(path, "post", self.api("POST", path, payload(f"{base}.net"), key=False))
        self.check(path, "post", self.api("POST", path, payload(f"{base}.net"), key=self.outsider_key))
        self.check(path, "post", self.api("GET", path))
        headers = {"Idempotency-Key": "openapi-4"}
        self.check(path, "post", self.api("POST", path, payload(f"{base}-k1.org"), headers=headers))
        self.check(path, "post", self.api("POST", path, payload(f"{base}-k2.org"), headers=headers))
        self.check(path, "post", self.api("POST", path, raw=b" " * (1024 * 1024 + 1)))  # 413
        self.assertAllDocumentedStatusesSeen(path, "post")

    def test_webhook_answers(self):
        org = self.env["fayvad.mail.organization"].create(
            {"name": "Spec", "partner_id": self.customer.id, "state": "active"}
        )
        own = "openapi-org-secret-" + "w" * 24
        self.env["fayvad.mail.webhook.secret"].create({"organization_id": org.id, "secret": own})
        for path, url, secret in (
            ("/webhooks/billing/", "/webhooks/billing/", SECRET),
            ("/webhooks/billing/{token}/", f"/webhooks/billing/{org.webhook_token}/", own),
        ):
            with self.subTest(path=path):

                def post(payload, secret=secret, url=url, method="POST"):
                    raw = json.dumps(payload).encode()
                    headers = {"X-Webhook-Signature": sign(secret, raw)}
                    return self.api(method, url, raw=raw, key=False, headers=headers)

                event = {
                    "event_type": "payment_failed",
                    "organization_id": org.id,
                    "billing_data": {"invoice_id": path},
                }
                self.check(path, "post", post(event))
                self.check(path, "post", post(event, secret="not-the-secret-" + "x" * 24))
                self.check(path, "post", post({**event, "event_type": "nope"}))
                self.check(path, "post", post({**event, "organization_id": 10**8}))
                self.check(path, "post", post(event, method="GET"))
                self.check(path, "post", self.api("POST", url, raw=b" " * (1024 * 1024 + 1), key=False))
                Apply = type(self.env["fayvad.mail.billing.webhook"])
                with (
                    patch.object(Apply, "_apply", side_effect=RuntimeError("accounting is closed")),
                    mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_webhook_delivery"),
                ):
                    failed = self.check(
                        path, "post", post({**event, "billing_data": {"invoice_id": f"{path}-x"}})
                    )
                self.assertNotIn("accounting is closed", json.dumps(failed), "no exception text for callers")
                self.assertAllDocumentedStatusesSeen(path, "post")
        unknown_url = f"/webhooks/billing/{'0' * 32}/"
        raw = json.dumps(event).encode()
        answer = self.api(
            "POST", unknown_url, raw=raw, key=False, headers={"X-Webhook-Signature": sign(own, raw)}
        )
        self.check("/webhooks/billing/{token}/", "post", answer)
        self.assertEqual(answer[1]["error_code"], "NOT_FOUND")
