"""The API document's own sample requests, verbatim except for ids and
domain names, work end to end against the real Modoboa of ./dev test: what
a new user tries first must succeed."""

import json
import uuid

from freezegun import freeze_time

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import (
    ModoboaProvisioningCase,
    modoboa_get,
)
from odoo.addons.fayvad_mail.tests.samples import SAMPLE_EMAIL_ACCOUNT, SAMPLE_ORGANIZATION, SAMPLE_WEBHOOK
from odoo.addons.fayvad_mail.tools.signature import sign


@tagged("post_install", "-at_install")
class TestDocumentSamples(ModoboaProvisioningCase):
    modoboa = staticmethod(modoboa_get)

    def test_the_documents_sample_requests_succeed_on_modoboa(self):
        domain_name = f"acme-{uuid.uuid4().hex[:8]}.com"
        customer = self.env["res.partner"].create({"name": "Acme Corporation"})
        plan = self.plan.copy({"name": "Business Pro", "max_users": 100, "max_storage_gb": 100})

        org_request = json.loads(json.dumps(SAMPLE_ORGANIZATION))
        org_request["organization_data"].update(
            domain=domain_name, odoo_customer_id=customer.id, plan_id=plan.id
        )
        status, body, _ = self.api("POST", "/provision/organization/", org_request)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["organization"]["domain_name"], domain_name)
        self.assertIs(body["provisioning_details"]["domain_verified"], False)
        ownership = body["provisioning_details"]["dns_records"][0]
        self.assertEqual((ownership["purpose"], ownership["type"]), ("verification", "TXT"))
        self.assertRegex(ownership["value"], r"^fayvad-verification=[0-9a-f]{32}$")
        remote = [
            d for d in self.modoboa("/domains/", search=domain_name)["results"] if d["name"] == domain_name
        ]
        self.assertEqual(len(remote), 1, "the domain exists on Modoboa")
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])

        account_request = json.loads(json.dumps(SAMPLE_EMAIL_ACCOUNT))
        account_request["email_account_data"].update(organization_id=org.id, domain=org.domain_ids.id)
        status, body, _ = self.api("POST", "/provision/email-account/", account_request)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["email_account"]["email"], f"john.doe@{domain_name}")
        self.assertEqual(body["email_account"]["quota"], 1073741824)
        mailboxes = [
            a
            for a in self.modoboa("/accounts/", search=f"john.doe@{domain_name}")["results"]
            if a["username"] == f"john.doe@{domain_name}"
        ]
        self.assertEqual(len(mailboxes), 1, "the mailbox exists on Modoboa")
        self.assertEqual(mailboxes[0]["mailbox"]["quota"], "1024")
        self.assertTrue(mailboxes[0]["is_active"])

        status, body, _ = self.api("GET", "/usage-summary/?start_date=2025-07-01&end_date=2025-07-31")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["period"], {"start_date": "2025-07-01", "end_date": "2025-07-31"})

        # the webhook sample, on the day it was written ...
        self.env["fayvad.mail.webhook.secret"].create({"secret": "sample-secret-" + "x" * 24})
        webhook = dict(SAMPLE_WEBHOOK, organization_id=org.id)
        raw = json.dumps(webhook).encode()
        headers = {"X-Webhook-Signature": sign("sample-secret-" + "x" * 24, raw)}
        with freeze_time("2025-07-28 10:00:01"):
            status, body, _ = self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=headers)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["processed"], body["event_type"]), (True, "payment_received"))
        # ... and the same captured body today, long after: refused, never applied twice
        status, body, _ = self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=headers)
        self.assertEqual((status, body["error_code"]), (400, "VALIDATION_ERROR"), body)
        self.assertIn("timestamp", body["details"])
