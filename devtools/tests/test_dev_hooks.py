"""What ``./dev`` does inside Odoo (devtools/odoo_hooks.py): the local mail
server of ``./dev run``, ``./dev api-key`` and ``./dev webhook-secret``.
Run by ``./dev test`` with the addon's test cases (pytest-odoo)."""

import json

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import MODOBOA_TOKEN, MODOBOA_URL, ApiCase, ModoboaCase
from odoo.addons.fayvad_mail.tools.signature import sign

from devtools.odoo_hooks import configure_local_server, new_api_key, webhook_secret


@tagged("post_install", "-at_install")
class TestLocalServer(ModoboaCase):
    def test_configure_local_server_provisions_the_demo_data(self):
        """The demo organizations, active or suspended in Odoo but on no
        server, are queued for provisioning on the local Modoboa."""
        demo = self.env.ref("fayvad_mail.org_fayvad")  # ./dev test installs the demo data
        globex = self.env.ref("fayvad_mail.org_globex")
        demo_orgs = self.env["fayvad.mail.organization"].search(
            [("mail_server_id", "=", False), ("state", "in", ("active", "suspended"))]
        )
        self.assertIn(globex, demo_orgs)
        server = configure_local_server(self.env, MODOBOA_URL, MODOBOA_TOKEN)
        self.assertEqual(demo.mail_server_id, server)
        jobs = self.env["fayvad.mail.job"].search([("organization_id", "in", demo_orgs.ids)])
        self.assertEqual(set(jobs.mapped("job_type")), {"create_domain", "create_mailbox"})
        self.run_jobs(rounds=40)
        jobs = self.env["fayvad.mail.job"].search([("organization_id", "in", demo_orgs.ids)])
        self.assertEqual(
            set(jobs.mapped("state")),
            {"done"},
            jobs.filtered(lambda j: j.state != "done").mapped("last_error"),
        )
        remote = self.api_domain("fayvad.example")
        self.assertTrue(remote["dkim_public_key"])
        self.assertEqual(len(self.api_accounts(remote["pk"])), len(demo.account_ids))
        globex_remote = self.api_accounts(self.api_domain("globex.example")["pk"])
        self.assertEqual(
            {a["is_active"] for a in globex_remote}, {False}, "suspended in Odoo: logins blocked"
        )
        self.assertEqual(set(globex.account_ids.mapped("state")), {"suspended"})
        # running it again queues nothing new
        configure_local_server(self.env, MODOBOA_URL, MODOBOA_TOKEN)
        self.assertFalse(
            self.env["fayvad.mail.job"].search(
                [("state", "=", "pending"), ("organization_id", "in", demo_orgs.ids)]
            )
        )


@tagged("post_install", "-at_install")
class TestCliSecrets(ApiCase):
    def test_api_key_is_of_the_addons_scope(self):
        key = new_api_key(self.env, self.api_user.login)
        self.assertEqual(self.api("GET", "/usage-summary/", key=key)[0], 200)
        apikey = self.env["res.users.apikeys"].search(
            [("user_id", "=", self.api_user.id)], order="id desc", limit=1
        )
        self.assertEqual(apikey.scope, "fayvad_mail.erp_api")

    def test_webhook_secret_lines(self):
        Secret = self.env["fayvad.mail.webhook.secret"]
        Secret.search([]).unlink()
        company_secret = "company-secret-for-the-cli-" + "c" * 16
        Secret.create({"secret": company_secret})
        org = self.env["fayvad.mail.organization"].create({"name": "CLI", "partner_id": self.customer.id})
        self.assertEqual(webhook_secret(self.env, None, "http://h"), company_secret)
        line = webhook_secret(self.env, org.id, "http://h")
        url, secret = line.split(" ")
        self.assertEqual(url, f"http://h/fayvad_api/erp/webhooks/billing/{org.webhook_token}/")
        self.assertEqual(webhook_secret(self.env, org.id, "http://h"), line, "created once, then reused")
        raw = json.dumps({"event_type": "payment_failed", "organization_id": org.id}).encode()
        answer = self.api(
            "POST",
            f"/webhooks/billing/{org.webhook_token}/",
            raw=raw,
            key=False,
            headers={"X-Webhook-Signature": sign(secret, raw)},
        )
        self.assertEqual(answer[0], 200, answer[1])
