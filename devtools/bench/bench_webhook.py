"""The billing webhook through Odoo's HTTP stack: signed payment_received
deliveries one after the other (each a new event, applied), then the same
delivery sent again (each answered as a duplicate)."""

import json
import time

from odoo.addons.fayvad_mail.tests.common import ApiCase
from odoo.addons.fayvad_mail.tools.signature import sign

from devtools.bench.figures import latency, record

DELIVERIES = 100
SECRET = "bench-secret-0123456789abcdef"


class BenchBillingWebhook(ApiCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Secret = cls.env["fayvad.mail.webhook.secret"]
        Secret.search([]).unlink()
        Secret.create({"secret": SECRET, "name": "bench"})
        cls.org = cls.env["fayvad.mail.organization"].create(
            {"name": "Bench hooked", "partner_id": cls.customer.id, "plan_id": cls.plan.id, "state": "active"}
        )
        cls.env["fayvad.mail.subscription"]._start(cls.org, cls.plan)

    def deliver(self, invoice_id):
        raw = json.dumps(
            {
                "event_type": "payment_received",
                "organization_id": self.org.id,
                "billing_data": {"amount": 99.99, "currency": "USD", "invoice_id": invoice_id},
            }
        ).encode()
        headers = {"X-Webhook-Signature": sign(SECRET, raw)}
        started = time.perf_counter()
        status, body, _response = self.api("POST", "/webhooks/billing/", raw=raw, key=False, headers=headers)
        seconds = time.perf_counter() - started
        self.assertEqual(status, 200, body)
        return body["duplicate"], seconds

    def test_sequential_and_duplicate_deliveries(self):
        self.deliver("INV-BENCH-WARMUP")
        for case, invoice_ids, duplicate in (
            ("sequential new events", [f"INV-BENCH-{n}" for n in range(DELIVERIES)], False),
            ("the same delivery again", ["INV-BENCH-0"] * DELIVERIES, True),
        ):
            before = self.cr.sql_log_count
            answers = [self.deliver(invoice_id) for invoice_id in invoice_ids]
            queries = self.cr.sql_log_count - before
            self.assertEqual({dup for dup, _seconds in answers}, {duplicate})
            samples = [seconds for _dup, seconds in answers]
            record(
                "billing webhook",
                f"HTTP POST, {case}",
                per_s=round(len(samples) / sum(samples), 1),
                queries=round(queries / len(samples), 1),
                **latency(samples),
            )
