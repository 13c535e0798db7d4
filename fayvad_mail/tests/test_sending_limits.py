"""Daily sending limits and the dunning stage that blocks sending: in Odoo
(webhooks, plan changes) and on the real Modoboa of ./dev test."""

import json

from freezegun import freeze_time

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import BillingCase, ModoboaCase, unique_domain
from odoo.addons.fayvad_mail.tools.signature import sign


@tagged("post_install", "-at_install")
class TestSendingBlockedByDunning(BillingCase):
    def payload(self, org, kind, stamp):
        return {
            "event_type": kind,
            "organization_id": org.id,
            "billing_data": {"currency": "USD", "invoice_id": "INV-S1", "amount": 10},
            "timestamp": stamp,
        }

    def limit_jobs(self, org):
        return self.env["fayvad.mail.job"].search(
            [("organization_id", "=", org.id), ("job_type", "=", "update_sending_limits")]
        )

    def test_first_failed_payment_blocks_sending_and_a_payment_restores_it(self):
        self.company.fayvad_dunning_max_failures = 3
        org = self.make_org("2026-03-01")
        org.plan_id.daily_message_limit = 200
        self.limit_jobs(org).unlink()
        self.assertEqual(org._message_limit(), 200)
        with freeze_time("2026-03-10"):
            status, _body = self.webhook(self.payload(org, "payment_failed", "2026-03-10T08:00:00Z"))
        self.assertEqual(status, 200)
        self.assertEqual((org.state, org.sending_blocked, org._message_limit()), ("active", True, 0))
        self.assertIn("Sending is blocked", org.message_ids[0].body)
        self.assertEqual(self.limit_jobs(org).state, "pending")
        self.limit_jobs(org).unlink()
        with freeze_time("2026-03-12"):
            self.webhook(self.payload(org, "payment_received", "2026-03-12T08:00:00Z"))
        self.assertEqual((org.sending_blocked, org._message_limit()), (False, 200))
        self.assertIn("sending is restored", org.message_ids[0].body)
        self.assertEqual(self.limit_jobs(org).state, "pending")

    def test_the_stage_can_be_turned_off_and_exempt_customers_keep_sending(self):
        org = self.make_org("2026-03-01")
        self.company.fayvad_block_sending_after_failures = 0
        with freeze_time("2026-03-10"):
            self.webhook(self.payload(org, "payment_failed", "2026-03-10T08:00:00Z"))
        self.assertFalse(org.sending_blocked)
        self.company.fayvad_block_sending_after_failures = 1
        org.suspension_exempt = True
        with freeze_time("2026-03-11"):
            self.webhook(self.payload(org, "payment_failed", "2026-03-11T08:00:00Z"))
        self.assertFalse(org.sending_blocked)

    def test_a_plan_change_pushes_the_new_limit(self):
        org = self.make_org("2026-03-01")
        self.limit_jobs(org).unlink()
        bigger = self.plan.copy({"name": "Bigger", "daily_message_limit": 1000})
        org.plan_id = bigger
        self.assertEqual(self.limit_jobs(org).state, "pending")
        self.limit_jobs(org).unlink()
        bigger.daily_message_limit = 500
        self.assertEqual(self.limit_jobs(org).state, "pending")
        self.limit_jobs(org).unlink()
        org.plan_id.description = "unrelated"
        self.assertFalse(self.limit_jobs(org))


@tagged("post_install", "-at_install")
class TestSendingLimitsE2E(ModoboaCase):
    def webhook(self, secret, org, kind, stamp):
        payload = {
            "event_type": kind,
            "organization_id": org.id,
            "billing_data": {
                "currency": org.company_id.currency_id.name,
                "invoice_id": "INV-E2E",
                "amount": 10,
            },
            "timestamp": stamp,
        }
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-Webhook-Signature": sign(secret.secret, raw)}
        return self.env["fayvad.mail.webhook.delivery"].sudo()._receive(raw, headers, "127.0.0.1")

    def message_limits(self, org):
        pk = self.api_domain(org.domain_ids.name)["pk"]
        return {
            a["username"].split("@")[0]: a["mailbox"]["message_limit"]
            for a in self.api_accounts(pk)
            if a["mailbox"]
        }

    def test_limits_follow_the_plan_and_the_dunning_stage_on_modoboa(self):
        self.plan.daily_message_limit = 100
        name = unique_domain("send")
        org = self.make_org(name=name, domain=name, mail_server_id=self.modoboa.id, max_storage_gb=2)
        for local in ("alice", "bob"):
            self.make_account(org, local, quota_mb=50)
        org.action_provision()
        self.run_jobs()
        self.assertEqual(self.message_limits(org), {"alice": 100, "bob": 100})

        self.plan.daily_message_limit = 250  # every mailbox of every organization on the plan
        self.run_jobs()
        self.assertEqual(self.message_limits(org), {"alice": 250, "bob": 250})

        # the billing system says a payment failed: the dunning stage blocks sending ...
        self.env["fayvad.mail.subscription"]._start(org, self.plan)
        self.env["fayvad.mail.webhook.secret"].search([]).unlink()
        secret = self.env["fayvad.mail.webhook.secret"].create({"secret": "e2e-sending-" + "s" * 30})
        status, _body = self.webhook(secret, org, "payment_failed", "2026-12-01T08:00:00Z")
        self.assertEqual(status, 200)
        self.assertTrue(org.sending_blocked)
        self.run_jobs()
        self.assertEqual(self.message_limits(org), {"alice": 0, "bob": 0})
        accounts = self.api_accounts(self.api_domain(name)["pk"])
        self.assertTrue(all(a["is_active"] for a in accounts), "logins go on")
        self.assertTrue(self.api_domain(name)["enabled"], "mail is still received")
        # ... and a payment restores the plan's limit
        status, _body = self.webhook(secret, org, "payment_received", "2026-12-01T09:00:00Z")
        self.assertEqual(status, 200)
        self.assertFalse(org.sending_blocked)
        self.run_jobs()
        self.assertEqual(self.message_limits(org), {"alice": 250, "bob": 250})

        self.plan.daily_message_limit = 0
        self.run_jobs()
        self.assertEqual(self.message_limits(org), {"alice": None, "bob": None})
