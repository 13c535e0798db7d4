"""A customer adds a mailbox from the portal in a real browser; the mailbox
is then looked up on the real Modoboa that ``./dev test`` starts."""

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.fayvad_mail.tests.common import ModoboaCase, unique_domain


@tagged("post_install", "-at_install")
class TestPortalTour(ModoboaCase, HttpCase):
    def test_customer_adds_a_mailbox_from_the_portal(self):
        name = unique_domain("portal")
        customer = self.env["res.partner"].create({"name": "Tour Customer Ltd", "is_company": True})
        org = self.make_org(
            name="Tour Org",
            domain=name,
            partner=customer,
            mail_server_id=self.modoboa.id,
            max_users=5,
            max_storage_gb=2,
            default_mailbox_quota_mb=100,
        )
        self.make_account(org, "alice", quota_mb=100)
        org.action_provision()
        self.run_jobs()
        self.assertEqual(org.state, "active")
        user = new_test_user(self.env, login="tour_customer", groups="base.group_portal")
        user.partner_id.parent_id = customer

        self.start_tour("/my", "fayvad_mail_portal_tour", login="tour_customer")

        account = self.env["fayvad.mail.account"].search([("email", "=", f"tourbox@{name}")])
        self.assertEqual((account.state, account.quota_mb, account.first_name), ("active", 50, "Tour"))
        remote = self.api_account(f"tourbox@{name}")
        self.assertIsNotNone(remote, "the mailbox exists on Modoboa")
        self.assertEqual(remote["mailbox"]["quota"], "50")
        self.assertEqual(remote["first_name"], "Tour")
        self.assertTrue(remote["is_active"])
        self.assertIsNone(account._get_pending_password(), "the password was handed over and wiped")
