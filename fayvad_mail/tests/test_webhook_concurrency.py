"""20 identical billing webhook deliveries at the same moment, each in its
own transaction on its own connection (as 20 Odoo workers would serve
them): exactly one is applied, every answer names the same delivery.

HTTP tests run requests one at a time on the test cursor, so this one works
with committed data (deleted afterwards) and real concurrent transactions."""

import json
import threading
import time

from odoo import SUPERUSER_ID
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

from odoo.addons.fayvad_mail.tests.common import delete_committed, new_env
from odoo.addons.fayvad_mail.tools.signature import sign

DELIVERIES = 20


@tagged("post_install", "-at_install")
class TestWebhookConcurrency(TransactionCase):
    def test_concurrent_identical_deliveries_apply_once(self):
        org_id, secret_id = self._commit_fixture()
        self.addCleanup(lambda: delete_committed(self.registry, [org_id], secret_ids=[secret_id]))
        invoice_id = f"INV-RACE-{int(time.time() * 1000)}"
        raw = json.dumps(
            {
                "event_type": "payment_failed",
                "organization_id": org_id,
                "billing_data": {"amount": 12.5, "currency": "USD", "invoice_id": invoice_id},
            }
        ).encode()
        headers = {"Content-Type": "application/json", "X-Webhook-Signature": sign(self.secret, raw)}
        start = threading.Barrier(DELIVERIES)
        answers, errors = [], []

        def deliver():
            try:
                start.wait(30)
                with self.registry.cursor() as cr:
                    env = new_env(cr, SUPERUSER_ID, {})
                    answers.append(env["fayvad.mail.webhook.delivery"]._receive(raw, headers, "127.0.0.1"))
            except Exception as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=deliver) for _ in range(DELIVERIES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        self.assertFalse(errors, errors)
        self.assertEqual([status for status, _body in answers], [200] * DELIVERIES)
        self.assertEqual(sum(not body["duplicate"] for _status, body in answers), 1)
        self.assertEqual(len({body["webhook_id"] for _status, body in answers}), 1)
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "SELECT count(*) FROM fayvad_mail_billing_event WHERE external_invoice_id = %s",
                    invoice_id,
                )
            )
            self.assertEqual(cr.fetchone()[0], 1, "the event was applied once")
            cr.execute(
                SQL(
                    "SELECT verdict, count(*) FROM fayvad_mail_webhook_delivery WHERE organization_id = %s GROUP BY verdict",
                    org_id,
                )
            )
            self.assertEqual(dict(cr.fetchall()), {"processed": 1, "duplicate": DELIVERIES - 1})
            cr.execute(
                SQL(
                    "SELECT failed_payment_count FROM fayvad_mail_subscription WHERE organization_id = %s",
                    org_id,
                )
            )
            self.assertEqual(cr.fetchone()[0], 1)

    def _commit_fixture(self):
        self.secret = f"race-secret-{time.time()}"
        with self.registry.cursor() as cr:
            env = new_env(cr, SUPERUSER_ID, {"tracking_disable": True})
            partner = env["res.partner"].create({"name": "Race customer"})
            org = env["fayvad.mail.organization"].create(
                {"name": "Race", "partner_id": partner.id, "state": "active", "mail_server_id": False}
            )
            env["fayvad.mail.subscription"].create({"organization_id": org.id})
            secret = env["fayvad.mail.webhook.secret"].create(
                {"secret": self.secret, "company_id": org.company_id.id}
            )
            return org.id, secret.id
