"""The customer portal (/my/mail) through Odoo's real HTTP stack: who sees
what, what a customer may change, and that nothing secret reaches a page."""

import re
from unittest.mock import MagicMock, patch

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL

from odoo.addons.fayvad_mail.tests.common import BillingCase
from odoo.addons.fayvad_mail.tools.mailserver import MailServerClient, RemoteMailbox
from odoo.addons.fayvad_mail.tools.units import MB

NO_MAIL_SERVER = "http://127.0.0.1:9"  # nothing listens: jobs stay pending


def shown_password(html):
    """The password of the page that shows it once."""
    tag = re.search(r'<input[^>]*id="fayvad_mail_new_password"[^>]*>', html).group(0)
    return re.search(r'value="([^"]+)"', tag).group(1)


class PortalCase(BillingCase, HttpCase):
    """Two customers, A and B, each with an organization, a mailbox, a posted
    invoice and a portal user among its contacts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("fayvad_mail.api_time_budget", "1")
        cls.org_a, cls.user_a, cls.invoice_a = cls.customer("Alpha")
        cls.org_b, cls.user_b, cls.invoice_b = cls.customer("Bravo")
        cls.alice = cls.org_a.account_ids
        cls.bob = cls.org_b.account_ids

    @classmethod
    def customer(cls, name):
        partner = cls.env["res.partner"].create({"name": f"{name} Ltd", "is_company": True})
        org = cls.env["fayvad.mail.organization"].create(
            {
                "name": f"{name} Org",
                "partner_id": partner.id,
                "plan_id": cls.plan.id,
                "state": "active",
                "mail_server_id": cls.server.id,
                "max_users": 3,
                "max_storage_gb": 1,
            }
        )
        domain = cls.env["fayvad.mail.domain"].create(
            {"name": f"{name.lower()}.example", "organization_id": org.id, "state": "active"}
        )
        local = "alice" if name == "Alpha" else "bob"
        cls.env["fayvad.mail.account"].create(
            {
                "local_part": local,
                "domain_id": domain.id,
                "quota": 100 * MB,
                "state": "active",
                "remote_id": 1,
            }
        )
        invoice = cls.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": partner.id,
                "fayvad_organization_id": org.id,
                "invoice_line_ids": [
                    Command.create({"name": "Mail hosting", "quantity": 1, "price_unit": 42})
                ],
            }
        )
        invoice.action_post()
        user = new_test_user(
            cls.env,
            login=f"portal_{name.lower()}",
            password=f"portal_{name.lower()}_pw",
            groups="base.group_portal",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        user.partner_id.parent_id = partner  # a contact of the customer, as account's portal expects
        return org, user, invoice

    def login(self, user):
        self.authenticate(user.login, f"{user.login}_pw")

    def page(self, path):
        return self.url_open(path, allow_redirects=False)

    def post(self, path, **data):
        return self.url_open(path, data={"csrf_token": self.csrf(), **data}, allow_redirects=False)

    def reveal(self, answer):
        """Follow a change's redirect to the page that shows its password once."""
        self.assertEqual(answer.status_code, 303, answer.text[:500])
        self.assertIn("/my/mail/password/", answer.headers["Location"])
        page = self.url_open(answer.headers["Location"], allow_redirects=False)
        self.assertEqual(page.status_code, 200)
        self.assertEqual(page.headers["Cache-Control"], "no-store")
        return page

    def csrf(self):
        html = self.url_open("/my/mail").text
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@tagged("post_install", "-at_install")
class TestPortalAccess(PortalCase):
    def test_portal_user_sees_its_organization_only(self):
        self.login(self.user_a)
        page = self.page("/my/mail")
        self.assertEqual(page.status_code, 200)
        self.assertIn("alice@alpha.example", page.text)
        self.assertIn("Alpha Org", page.text)
        self.assertNotIn("bravo", page.text.lower())
        self.assertEqual(self.page(f"/my/mail/{self.org_a.id}").status_code, 200)

        other = self.page(f"/my/mail/{self.org_b.id}")
        self.assertEqual(other.status_code, 404)
        self.assertNotIn("Bravo", other.text)
        missing = self.page(f"/my/mail/{self.org_b.id + 1000}")
        self.assertEqual(missing.status_code, 404)

        # the ORM, as the portal user: B does not exist for A
        Org = self.env["fayvad.mail.organization"].with_user(self.user_a)
        self.assertEqual(Org.search([]), self.org_a)
        self.assertEqual(self.env["fayvad.mail.account"].with_user(self.user_a).search([]), self.alice)
        with self.assertRaises(AccessError):
            self.org_b.with_user(self.user_a).check_access("read")
        with self.assertRaises(AccessError):
            self.bob.with_user(self.user_a).check_access("read")
        with self.assertRaises(AccessError):
            self.alice.with_user(self.user_a).check_access("write")

    def test_tampered_mailbox_ids_change_nothing(self):
        self.login(self.user_a)
        for action, data in (
            ("quota", {"quota_mb": "5"}),
            ("password", {}),
            ("deactivate", {}),
            ("delete", {}),
        ):
            with self.subTest(action=action):
                answer = self.post(f"/my/mail/mailbox/{self.bob.id}/{action}", **data)
                self.assertEqual(answer.status_code, 404)
                self.assertNotIn("bob@", answer.text)
        answer = self.post(f"/my/mail/{self.org_b.id}/mailboxes", local_part="intruder", quota_mb="10")
        self.assertEqual(answer.status_code, 404)
        self.bob.invalidate_recordset()
        self.assertEqual((self.bob.state, self.bob.quota, self.bob.active), ("active", 100 * MB, True))
        self.assertFalse(self.env["fayvad.mail.account"].search([("local_part", "=", "intruder")]))
        self.assertFalse(
            self.env["fayvad.mail.job"].search([("account_id", "=", self.bob.id)]), "no job for B's mailbox"
        )

    def test_invoices_of_another_customer_stay_hidden(self):
        self.login(self.user_a)
        mine = self.page(self.invoice_a.get_portal_url())
        self.assertEqual(mine.status_code, 200)
        self.assertIn(self.invoice_a.name, mine.text)
        theirs = self.page(f"/my/invoices/{self.invoice_b.id}")
        self.assertNotEqual(theirs.status_code, 200)
        self.assertNotIn(self.invoice_b.name, theirs.text)
        listed = self.page("/my/invoices?filterby=mail_hosting")
        self.assertIn(self.invoice_a.name, listed.text)
        self.assertNotIn(self.invoice_b.name, listed.text)

    def test_home_counts_the_mailboxes(self):
        self.login(self.user_a)
        self.assertIn('href="/my/mail"', self.page("/my").text)
        answer = self.make_jsonrpc_request("/my/counters", {"counters": ["mail_mailbox_count"]})
        self.assertEqual(answer, {"mail_mailbox_count": 1})

    def test_aliases_and_domain_aliases_are_listed(self):
        domain = self.org_a.domain_ids
        self.env["fayvad.mail.alias"].create(
            {"local_part": "sales", "domain_id": domain.id, "recipients": "team@example.com"}
        )
        self.env["fayvad.mail.alias"].create(
            {"local_part": "bravo-only", "domain_id": self.org_b.domain_ids.id, "recipients": "b@example.com"}
        )
        self.env["fayvad.mail.domain.alias"].create({"name": "alpha.org", "domain_id": domain.id})
        self.login(self.user_a)
        html = self.page(f"/my/mail/{self.org_a.id}").text
        self.assertIn('data-alias="sales@alpha.example"', html)
        self.assertIn("team@example.com", html)
        self.assertIn('data-domain="alpha.org"', html)
        self.assertIn("alpha.org. IN MX 10", html)
        self.assertNotIn("bravo-only", html)

    def test_no_secret_reaches_a_page(self):
        secret = self.env["fayvad.mail.webhook.secret"].create(
            {
                "secret": "org-secret-" + "q" * 30,
                "organization_id": self.org_a.id,
                "company_id": self.company.id,
            }
        )
        self.server.token = "server-token-" + "z" * 30
        self.login(self.user_a)
        html = self.page(f"/my/mail/{self.org_a.id}").text
        token = self.org_a.sudo().webhook_token
        for value in (token, secret.secret, self.server.token, self.webhook_secret):
            self.assertNotIn(value, html)
        with self.assertRaises(AccessError):
            self.org_a.with_user(self.user_a).read(["webhook_token"])
        with self.assertRaises(AccessError):
            self.org_a.with_user(self.user_a).read(["webhook_url"])

    def test_demo_portal_user_sees_acme(self):
        """./dev run's demo: login portal / portal shows Acme's mail hosting."""
        portal = self.env.ref("base.demo_user0")
        acme = self.env.ref("fayvad_mail.org_acme").sudo()
        self.assertEqual(self.env["fayvad.mail.organization"].with_user(portal).search([]), acme)
        self.authenticate("portal", "portal")
        page = self.page(f"/my/mail/{acme.id}")
        self.assertEqual(page.status_code, 200)
        for account in acme.account_ids:
            self.assertIn(account.email, page.text)

    def test_internal_user_without_mail_hosting_rights_sees_no_menu(self):
        clerk = new_test_user(self.env, login="clerk", groups="base.group_user")
        visible = self.env["ir.ui.menu"].with_user(clerk)._visible_menu_ids()
        root = self.env.ref("fayvad_mail.fayvad_mail_menu_root")
        self.assertNotIn(root.id, visible)
        accountant_menus = self.env["ir.ui.menu"].with_user(self.env.user)._visible_menu_ids()
        self.assertIn(root.id, accountant_menus)
        with self.assertRaises(AccessError):
            self.org_a.with_user(clerk).check_access("read")


@tagged("post_install", "-at_install")
class TestPortalActions(PortalCase):
    def extra_mailbox(self, org, local):
        return self.env["fayvad.mail.account"].create(
            {"local_part": local, "domain_id": org.domain_ids.id, "quota": 10 * MB, "state": "active"}
        )

    def test_add_mailbox_goes_through_the_api_path(self):
        self.extra_mailbox(self.org_a, "zed")  # the plan includes 2 users: the next one is billed
        self.login(self.user_a)
        answer = self.reveal(
            self.post(
                f"/my/mail/{self.org_a.id}/mailboxes", local_part="Carol", first_name="Carol", quota_mb="50"
            )
        )
        carol = self.env["fayvad.mail.account"].search([("email", "=", "carol@alpha.example")])
        self.assertEqual((carol.quota, carol.first_name, carol.state), (50 * MB, "Carol", "provisioning"))
        shown = shown_password(answer.text)
        self.assertFalse(self.server._password_policy().problems(shown))
        # the job hands it over; Odoo keeps it encrypted only
        self.env.cr.execute(SQL("SELECT pending_password FROM fayvad_mail_account WHERE id = %s", carol.id))
        stored = self.env.cr.fetchone()[0]
        self.assertTrue(stored)
        self.assertNotIn(shown, stored)
        self.assertEqual(carol._get_pending_password(), shown)
        job = self.env["fayvad.mail.job"].search([("account_id", "=", carol.id)])
        self.assertEqual(job.job_type, "create_mailbox")
        Event = self.env["fayvad.mail.billing.event"]
        added = [("organization_id", "=", self.org_a.id), ("event_type", "=", "user_added")]
        self.assertFalse(Event.search(added), "billed from the day the mail server has it, not before")
        client = MagicMock(spec=MailServerClient)
        client.ensure_mailbox.return_value = RemoteMailbox(77, carol.email, True, 50, created=True)
        job.write({"next_attempt_at": False})  # the server answers now
        with patch.object(type(self.env["fayvad.mail.server"]), "_client", lambda s, deadline=None: client):
            self.env["fayvad.mail.job"]._cron_run()
        self.assertEqual(client.ensure_mailbox.call_args.args[1], shown, "the shown password is handed over")
        self.assertIn("carol@alpha.example", Event.search(added).description)
        # shown once: not on the page of the organization, nor anywhere in chatter
        self.assertNotIn(shown, self.page(f"/my/mail/{self.org_a.id}").text)
        messages = self.env["mail.message"].search(
            [("model", "=", "fayvad.mail.account"), ("res_id", "=", carol.id)]
        )
        self.assertFalse(any(shown in (m.body or "") for m in messages))

    def test_limits_are_a_message_on_the_form_and_change_nothing(self):
        self.login(self.user_a)
        before = self.env["fayvad.mail.account"].search_count([])
        too_big = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="huge", quota_mb="5000")
        self.assertEqual(too_big.status_code, 400)
        self.assertIn("storage limit", too_big.text)
        self.assertIn('value="huge"', too_big.text, "the form keeps what was typed")
        bad = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="no spaces", quota_mb="10")
        self.assertEqual(bad.status_code, 400)
        taken = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="alice", quota_mb="10")
        self.assertEqual(taken.status_code, 400)
        self.assertIn("already exists", taken.text)
        for local in ("c1", "c2"):
            answer = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part=local, quota_mb="10")
            self.assertEqual(answer.status_code, 303)
        full = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="c3", quota_mb="10")
        self.assertEqual(full.status_code, 400)
        self.assertIn("limit of 3 users is reached", full.text)
        self.assertEqual(self.env["fayvad.mail.account"].search_count([]), before + 2)
        quota = self.post(f"/my/mail/mailbox/{self.alice.id}/quota", quota_mb="999999")
        self.assertEqual(quota.status_code, 400)
        self.alice.invalidate_recordset()
        self.assertEqual(self.alice.quota, 100 * MB)

    def test_change_quota_deactivate_activate_delete(self):
        self.extra_mailbox(self.org_a, "x1")
        self.extra_mailbox(self.org_a, "x2")  # alice is beyond the 2 included users: her removal is credited
        self.login(self.user_a)
        answer = self.post(f"/my/mail/mailbox/{self.alice.id}/quota", quota_mb="200")
        self.assertEqual(answer.status_code, 303)
        self.assertIn("done=quota", answer.headers["Location"])
        self.alice.invalidate_recordset()
        self.assertEqual(self.alice.quota, 200 * MB)
        Job = self.env["fayvad.mail.job"]
        self.assertTrue(Job.search([("account_id", "=", self.alice.id), ("job_type", "=", "set_quota")]))
        self.post(f"/my/mail/mailbox/{self.alice.id}/deactivate")
        self.assertEqual(self.alice.state, "suspended")
        self.post(f"/my/mail/mailbox/{self.alice.id}/activate")
        self.assertEqual(self.alice.state, "active")
        answer = self.post(f"/my/mail/mailbox/{self.alice.id}/delete")
        self.assertEqual(answer.status_code, 303)
        self.alice.invalidate_recordset()
        self.assertEqual(self.alice.state, "terminated")
        removed = self.env["fayvad.mail.billing.event"].search(
            [("organization_id", "=", self.org_a.id), ("event_type", "=", "user_removed")]
        )
        self.assertIn("alice@alpha.example", removed.description)
        self.assertTrue(Job.search([("account_id", "=", self.alice.id), ("job_type", "=", "delete_mailbox")]))
        self.assertEqual(self.post(f"/my/mail/mailbox/{self.alice.id}/quota", quota_mb="10").status_code, 404)

    def test_password_reset_shown_once_and_handed_over_by_a_job(self):
        self.login(self.user_a)
        answer = self.reveal(self.post(f"/my/mail/mailbox/{self.alice.id}/password"))
        shown = shown_password(answer.text)
        self.assertEqual(self.alice._get_pending_password(), shown)
        job = self.env["fayvad.mail.job"].search([("account_id", "=", self.alice.id)])
        self.assertEqual(job.job_type, "set_password")
        self.assertNotIn(shown, self.page(f"/my/mail/{self.org_a.id}").text)

    def test_internal_users_change_nothing_through_the_portal(self):
        """The portal acts for the customer only: an internal user, read-only
        or administrator, is answered 403 on every change route."""
        reader = new_test_user(
            self.env,
            login="mail_reader",
            password="mail_reader_pw",
            groups="base.group_user,fayvad_mail.fayvad_mail_group_user",
        )
        admin = new_test_user(
            self.env,
            login="mail_boss",
            password="mail_boss_pw",
            groups="base.group_user,fayvad_mail.fayvad_mail_group_admin",
        )
        Job = self.env["fayvad.mail.job"]
        for user in (reader, admin):
            self.authenticate(user.login, f"{user.login}_pw")
            self.assertEqual(self.page(f"/my/mail/{self.org_a.id}").status_code, 200, "reading is fine")
            token = re.search(
                r'name="csrf_token" value="([^"]+)"', self.url_open(f"/my/mail/{self.org_a.id}").text
            ).group(1)
            changes = {
                f"/my/mail/{self.org_a.id}/mailboxes": {"local_part": "intruder", "quota_mb": "10"},
                f"/my/mail/mailbox/{self.alice.id}/quota": {"quota_mb": "20"},
                f"/my/mail/mailbox/{self.alice.id}/password": {},
                f"/my/mail/mailbox/{self.alice.id}/deactivate": {},
                f"/my/mail/mailbox/{self.alice.id}/activate": {},
                f"/my/mail/mailbox/{self.alice.id}/delete": {},
            }
            for path, data in changes.items():
                with self.subTest(user=user.login, path=path):
                    answer = self.url_open(path, data={"csrf_token": token, **data}, allow_redirects=False)
                    self.assertEqual(answer.status_code, 403)
                    self.assertNotIn('id="fayvad_mail_new_password"', answer.text)
        self.alice.invalidate_recordset()
        self.assertEqual((self.alice.quota, self.alice.state), (100 * MB, "active"))
        self.assertIsNone(self.alice._get_pending_password())
        self.assertFalse(self.env["fayvad.mail.account"].search([("local_part", "=", "intruder")]))
        self.assertFalse(Job.search([("account_id", "=", self.alice.id)]))

    def test_suspended_for_non_payment_shows_the_invoice_and_blocks_changes(self):
        self.org_a._suspend("non_payment")
        self.login(self.user_a)
        page = self.page(f"/my/mail/{self.org_a.id}")
        self.assertIn("suspended for non-payment", page.text)
        self.assertIn(self.invoice_a.name, page.text)
        self.assertIn(f"/my/invoices/{self.invoice_a.id}", page.text)
        self.assertRegex(page.text, r"<fieldset[^>]* disabled=")
        before = self.env["fayvad.mail.account"].search_count([])
        added = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="late", quota_mb="10")
        self.assertEqual(added.status_code, 400)
        self.assertIn("suspended", added.text)
        self.assertEqual(self.env["fayvad.mail.account"].search_count([]), before)
        for action in ("quota", "password", "activate", "delete"):
            with self.subTest(action=action):
                answer = self.post(f"/my/mail/mailbox/{self.alice.id}/{action}", quota_mb="10")
                self.assertEqual(answer.status_code, 400)
        self.alice.invalidate_recordset()
        self.assertEqual((self.alice.quota, self.alice.state), (100 * MB, "active"))
        self.assertIsNone(self.alice._get_pending_password())
