import json

import jsonschema

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common_api import ApiCase
from odoo.addons.fayvad_mail.tools.openapi import ERROR_CODES
from odoo.addons.fayvad_mail.tools.signature import sign


@tagged("post_install", "-at_install")
class TestOpenApi(ApiCase):
    """The served OpenAPI document describes exactly the API's routes, and
    real answers match it."""

    def setUp(self):
        super().setUp()
        status, self.spec, _ = self.api("GET", "/openapi.json", key=False)
        self.assertEqual(status, 200)

    def check(self, path, method, answer):
        status, body, _ = answer
        operation = self.spec["paths"][path][method]
        self.assertIn(
            str(status), operation["responses"], f"{method} {path} answered an undocumented {status}"
        )
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        resolver = (
            {"$ref": schema["$ref"], "components": self.spec["components"]} if "$ref" in schema else schema
        )
        jsonschema.validate(body, resolver)

    def test_document(self):
        jsonschema.Draft202012Validator.check_schema({"$defs": self.spec["components"]["schemas"]})
        self.assertEqual(self.spec["openapi"], "3.1.0")
        self.assertEqual(
            set(self.spec["paths"]),
            {
                "/usage-summary/",
                "/provision/organization/",
                "/provision/email-account/",
                "/webhooks/billing/",
                "/webhooks/billing/{token}/",
            },
        )
        for code in (
            "VALIDATION_ERROR",
            "PROVISIONING_FAILED",
            "INVALID_WEBHOOK_SIGNATURE",
            "CONFLICT",
            "AUTHENTICATION_FAILED",
            "METHOD_NOT_ALLOWED",
            "NOT_FOUND",
        ):
            self.assertIn(code, ERROR_CODES)
        self.assertIn(code, json.dumps(self.spec))

    def test_real_answers_match(self):
        self.server.url = "http://127.0.0.1:9"  # provisioning stays pending: 202
        partner = self.env["res.partner"].create({"name": "Spec Customer"})
        org_request = {
            "organization_data": {"name": "Spec", "domain": "spec.example", "odoo_customer_id": partner.id}
        }
        answer = self.api("POST", "/provision/organization/", org_request)
        self.check("/provision/organization/", "post", answer)
        org_id = answer[1]["organization"]["id"]
        domain_id = self.env["fayvad.mail.organization"].browse(org_id).domain_ids.id
        self.check("/provision/organization/", "post", self.api("POST", "/provision/organization/", {}))
        self.check(
            "/provision/organization/",
            "post",
            self.api("POST", "/provision/organization/", org_request, key="0" * 40),
        )
        account = {"email_account_data": {"organization_id": org_id, "address": "spec", "domain": domain_id}}
        self.check(
            "/provision/email-account/", "post", self.api("POST", "/provision/email-account/", account)
        )
        self.check(
            "/provision/email-account/",
            "post",
            self.api(
                "POST",
                "/provision/email-account/",
                {"email_account_data": {**account["email_account_data"], "domain": 10**8}},
            ),
        )
        self.check("/usage-summary/", "get", self.api("GET", "/usage-summary/?include_details=1&limit=5"))
        self.check("/usage-summary/", "get", self.api("GET", "/usage-summary/?start_date=x"))
        self.check("/usage-summary/", "get", self.api("GET", "/usage-summary/", key=False))
        self.check("/usage-summary/", "get", self.api("POST", "/usage-summary/"))
        self.env["fayvad.mail.webhook.secret"].create({"secret": "spec-secret"})
        payload = json.dumps({"event_type": "payment_failed", "organization_id": org_id}).encode()
        for signature in (sign("spec-secret", payload), "sha256=00"):
            answer = self.api(
                "POST",
                "/webhooks/billing/",
                raw=payload,
                key=False,
                headers={"X-Webhook-Signature": signature},
            )
            self.check("/webhooks/billing/", "post", answer)
