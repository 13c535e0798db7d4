"""A customer's day in the portal, page by page over Odoo's real HTTP stack:
quotas of several GB, a password shown once (POST/redirect/GET), a password
of its own choosing, errors next to their form in MB and GB, the mail client
settings, aliases and forwards, a plan upgrade with its charge shown first."""

import re

from freezegun import freeze_time

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.test_portal import PortalCase, shown_password
from odoo.addons.fayvad_mail.tools.units import MB


@tagged("post_install", "-at_install")
class TestPortalDay(PortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server.write(
            {
                "mail_host": "mail.hosting.example",
                "imap_port": 993,
                "smtp_port": 587,
                "webmail_url": "https://webmail.hosting.example",
            }
        )

    def setUp(self):
        super().setUp()
        self.login(self.user_a)

    def section(self, html, anchor):
        """The page from the element with id ``anchor`` to the next card."""
        start = html.index(f'id="{anchor}"')
        return html[start : start + 10000]

    def test_quotas_of_several_gigabytes_are_set_and_read_in_the_chatter(self):
        self.org_a.max_storage_gb = 60
        for quota_mb, label in ((1024, "1 GB"), (3072, "3 GB"), (51200, "50 GB"), (1024, "1 GB")):
            with self.subTest(quota=label):
                answer = self.post(f"/my/mail/mailbox/{self.alice.id}/quota", quota_mb=str(quota_mb))
                self.assertEqual(answer.status_code, 303, answer.text[:300])
                self.alice.invalidate_recordset()
                self.assertEqual((self.alice.quota, self.alice.quota_label), (quota_mb * MB, label))
                self.assertIn(label, self.page(f"/my/mail/{self.org_a.id}").text)
        values = self.alice.message_ids.tracking_value_ids.filtered(
            lambda v: v.field_id.name == "quota_label"
        )
        changes = sorted((v.old_value_char, v.new_value_char) for v in values)
        self.assertIn(("3 GB", "50 GB"), changes)
        self.assertIn(("50 GB", "1 GB"), changes)

    def test_the_new_password_is_shown_once_and_a_reload_posts_nothing(self):
        before = self.env["fayvad.mail.account"].search_count([])
        answer = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="once", quota_mb="10")
        self.assertEqual(answer.status_code, 303, "answered with a redirect: a reload is a GET")
        location = answer.headers["Location"]
        first = self.url_open(location, allow_redirects=False)
        self.assertEqual(first.headers["Cache-Control"], "no-store")
        shown = shown_password(first.text)
        again = self.url_open(location, allow_redirects=False)  # the customer reloads the page
        self.assertEqual(again.status_code, 200)
        self.assertNotIn(shown, again.text)
        self.assertIn("This password was shown already", again.text)
        self.assertNotIn("already exists", again.text)
        self.assertEqual(self.env["fayvad.mail.account"].search_count([]), before + 1, "added once")
        # nor does anybody else who gets hold of its address
        self.login(self.user_b)
        self.assertNotIn(shown, self.url_open(location, allow_redirects=False).text)

    def test_a_customer_chooses_a_password_under_the_servers_policy(self):
        self.server.password_min_digits = 2
        weak = self.post(
            f"/my/mail/{self.org_a.id}/mailboxes", local_part="mine", quota_mb="10", password="no-digits-here"
        )
        self.assertEqual(weak.status_code, 400)
        self.assertIn("digit", self.section(weak.text, "fayvad_mail_add_mailbox_card"))
        self.assertFalse(self.env["fayvad.mail.account"].search([("local_part", "=", "mine")]))
        page = self.reveal(
            self.post(
                f"/my/mail/{self.org_a.id}/mailboxes",
                local_part="mine",
                quota_mb="10",
                password="Chosen-42-pass",
            )
        )
        self.assertEqual(shown_password(page.text), "Chosen-42-pass")
        mine = self.env["fayvad.mail.account"].search([("local_part", "=", "mine")])
        self.assertEqual(mine._get_pending_password(), "Chosen-42-pass")
        reset = self.reveal(self.post(f"/my/mail/mailbox/{self.alice.id}/password", password="Alice-77-pass"))
        self.assertEqual(shown_password(reset.text), "Alice-77-pass")
        refused = self.post(f"/my/mail/mailbox/{self.alice.id}/password", password="short1")
        self.assertEqual(refused.status_code, 400)
        self.assertIn("at least 8 characters", self.section(refused.text, f"fayvad_mailbox_{self.alice.id}"))

    def test_errors_read_in_mb_and_gb_next_to_their_form(self):
        too_big = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="big", quota_mb="5000")
        card = self.section(too_big.text, "fayvad_mail_add_mailbox_card")
        self.assertIn("storage limit", card, "the error is on the form that was sent")
        self.assertRegex(card, r"[0-9.]+ (GB|MB) left of 1 GB")
        self.assertNotIn("bytes are left", too_big.text)
        zero = self.post(f"/my/mail/{self.org_a.id}/mailboxes", local_part="zero", quota_mb="0")
        self.assertIn(
            "whole number of MB, 1 at least", self.section(zero.text, "fayvad_mail_add_mailbox_card")
        )
        self.assertNotIn("1048576", zero.text)
        row = self.post(f"/my/mail/mailbox/{self.alice.id}/quota", quota_mb="0")
        self.assertEqual(row.status_code, 400)
        self.assertIn("1 at least", self.section(row.text, f"fayvad_mailbox_{self.alice.id}"))
        self.org_a.max_storage_gb = 500
        page = self.page(f"/my/mail/{self.org_a.id}").text
        free = re.search(r'id="fayvad_mail_quota_free">([^<]+)<', page).group(1)
        self.assertTrue(free.endswith("GB"), free)

    def test_the_mail_client_settings_are_on_the_page_and_the_password_page(self):
        page = self.page(f"/my/mail/{self.org_a.id}").text
        settings = self.section(page, "fayvad_mail_settings")
        for text in ("mail.hosting.example", "993", "587", "https://webmail.hosting.example"):
            self.assertIn(text, settings)
        self.assertIn(
            "IMAP <code>mail.hosting.example</code>:993",
            self.section(page, f"fayvad_mailbox_{self.alice.id}"),
        )
        reset = self.reveal(self.post(f"/my/mail/mailbox/{self.alice.id}/password"))
        self.assertIn("mail.hosting.example", reset.text)
        self.assertIn(f"<code>{self.alice.email}</code>", reset.text)

    def test_aliases_and_forwards_within_the_plan(self):
        self.org_a.max_aliases = 1
        answer = self.post(
            f"/my/mail/{self.org_a.id}/aliases", local_part="sales", recipients="alice@alpha.example"
        )
        self.assertEqual(answer.status_code, 303, answer.text[:300])
        sales = self.env["fayvad.mail.alias"].search([("address", "=", "sales@alpha.example")])
        self.assertEqual((sales.state, sales._recipient_list()), ("provisioning", ["alice@alpha.example"]))
        self.assertIn("sales@alpha.example", self.page(f"/my/mail/{self.org_a.id}").text)
        full = self.post(
            f"/my/mail/{self.org_a.id}/aliases", local_part="info", recipients="alice@alpha.example"
        )
        self.assertEqual(full.status_code, 400)
        self.assertIn("limit of 1 aliases", self.section(full.text, "fayvad_mail_add_alias_card"))
        bad = self.post(f"/my/mail/{self.org_a.id}/aliases", local_part="x", recipients="not an address")
        self.assertEqual(bad.status_code, 400)
        # a forward is part of its mailbox: not counted by the plan
        forward = self.post(f"/my/mail/mailbox/{self.alice.id}/forward", recipients="boss@elsewhere.example")
        self.assertEqual(forward.status_code, 303)
        kept = self.env["fayvad.mail.alias"].search(
            [("account_id", "=", self.alice.id), ("kind", "=", "forward")]
        )
        self.assertEqual(kept._recipient_list(), ["boss@elsewhere.example", "alice@alpha.example"])
        self.assertIn("forwards to boss@elsewhere.example", self.page(f"/my/mail/{self.org_a.id}").text)
        self.post(f"/my/mail/mailbox/{self.alice.id}/forward", recipients="")
        self.assertEqual(kept.state, "terminated", "an empty list stops forwarding")
        deleted = self.post(f"/my/mail/alias/{sales.id}/delete")
        self.assertEqual(deleted.status_code, 303)
        self.assertEqual(sales.state, "terminated")
        self.assertEqual(self.post(f"/my/mail/alias/{self.bob.id}/delete").status_code, 404)

    @freeze_time("2026-03-22")  # 10 of March's 31 days left
    def test_a_plan_upgrade_shows_its_charge_then_bills_it_once(self):
        self.login(self.user_a)
        with freeze_time("2026-03-01"):
            self.org_a.subscription_id.write({"period_start": "2026-03-01", "period_end": "2026-03-31"})
            self.org_a.subscription_id._bill_fee(100.0, "subscription_created", "March")
        bigger = self.plan.copy(
            {"name": "Bigger", "monthly_price": 162.0, "max_users": 20, "max_storage_gb": 40}
        )
        page = self.page(f"/my/mail/{self.org_a.id}").text
        self.assertIn("Bigger", self.section(page, "fayvad_mail_upgrade"))
        preview = self.page(f"/my/mail/{self.org_a.id}/plan?plan_id={bigger.id}")
        self.assertEqual(preview.status_code, 200)
        charge = round(62 * 10 / 31, 2)
        self.assertIn(f"{charge:.2f}", self.section(preview.text, "fayvad_mail_plan_charge"))
        self.assertEqual(self.org_a.plan_id, self.plan, "a preview changes nothing")
        answer = self.post(f"/my/mail/{self.org_a.id}/plan", plan_id=str(bigger.id))
        self.assertEqual(answer.status_code, 303)
        self.assertEqual(
            (self.org_a.plan_id, self.org_a.max_users, self.org_a.max_storage_gb), (bigger, 20, 40)
        )
        adjustment = self.org_a.billing_event_ids.filtered(lambda e: e.event_type == "subscription_updated")
        self.assertEqual(adjustment.mapped("amount"), [charge])
        self.assertEqual(
            self.post(f"/my/mail/{self.org_a.id}/plan", plan_id=str(self.plan.id)).status_code,
            400,
            "no downgrade from the portal",
        )

    def test_mailbox_states_read_as_the_customer_and_the_provider_set_them(self):
        bob_like = self.env["fayvad.mail.account"].create(
            {"local_part": "held", "domain_id": self.org_a.domain_ids.id, "quota": 10 * MB, "state": "active"}
        )
        self.post(f"/my/mail/mailbox/{self.alice.id}/deactivate")
        bob_like.action_suspend()  # by the provider
        page = self.page(f"/my/mail/{self.org_a.id}").text
        mine = self.section(page, f"fayvad_mailbox_{self.alice.id}")
        held = self.section(page, f"fayvad_mailbox_{bob_like.id}")
        self.assertIn("Deactivated", mine[:3000])
        self.assertIn(f"/my/mail/mailbox/{self.alice.id}/activate", mine)
        self.assertIn("Suspended by your provider", held[:3000])
        self.assertNotIn(f"/my/mail/mailbox/{bob_like.id}/activate", page)
        self.assertEqual(self.post(f"/my/mail/mailbox/{bob_like.id}/activate").status_code, 400)
        self.assertEqual(bob_like.state, "suspended")

    def test_open_invoices_have_a_pay_button(self):
        page = self.page(f"/my/mail/{self.org_a.id}").text
        # Odoo's own invoice page, at its payment form (account_payment)
        self.assertRegex(
            page, rf'href="{re.escape(self.invoice_a.get_portal_url())}[^"]*portal_pay"[^>]*>Pay<'
        )

    def test_the_home_card_counts_the_mailboxes(self):
        page = self.url_open("/my/home").text
        self.assertIn("/my/mail", page)
        counters = self.url_open(
            "/my/counters",
            data='{"params": {"counters": ["mail_mailbox_count"]}}',
            headers={"Content-Type": "application/json"},
        ).json()["result"]
        self.assertEqual(counters["mail_mailbox_count"], len(self.org_a.account_ids))
