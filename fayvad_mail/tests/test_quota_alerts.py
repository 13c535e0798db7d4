"""Quota alerts: an activity for the accountants and an e-mail for the
customer, once per crossing of 80, 90 or 100 %; read by the usage cron from
the real Modoboa of ./dev test."""

from freezegun import freeze_time

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import FayvadMailCase, ModoboaCase, unique_domain
from odoo.addons.fayvad_mail.tools.units import GB, MB


class QuotaAlertCase:
    def alerts(self, org):
        """(activity summaries, subjects of the e-mails to the customer) about ``org`` so far."""
        activities = self.env["mail.activity"].search(
            [("res_model", "=", "fayvad.mail.organization"), ("res_id", "=", org.id)], order="id"
        )
        mails = self.env["mail.mail"].search(
            [
                ("model", "=", "fayvad.mail.organization"),
                ("res_id", "=", org.id),
                ("recipient_ids", "in", org.partner_id.ids),
            ],
            order="id",
        )
        return activities.mapped("summary"), mails.mapped("subject")


@tagged("post_install", "-at_install")
class TestQuotaAlerts(QuotaAlertCase, FayvadMailCase):
    def setUp(self):
        super().setUp()
        partner = self.env["res.partner"].create({"name": "Quota Customer", "email": "it@quota.example"})
        self.org = self.make_org(name="Quota Org", domain="quota.example", partner=partner, max_storage_gb=1)
        self.mailbox = self.make_account(self.org, "alice", quota_mb=100, state="active")

    def use(self, megabytes):
        self.mailbox.storage_used = megabytes * MB
        self.mailbox._check_quota_alerts()
        self.org._check_quota_alerts()

    def test_each_crossing_alerts_once(self):
        self.use(79)
        self.assertEqual(self.alerts(self.org), ([], []))
        self.use(85)
        summaries, subjects = self.alerts(self.org)
        self.assertEqual(summaries, ["The mailbox alice@quota.example is at 80% of its quota"])
        self.assertEqual(subjects, ["The mailbox alice@quota.example is at 80% of its quota"])
        mail = self.env["mail.mail"].search(
            [
                ("model", "=", "fayvad.mail.organization"),
                ("res_id", "=", self.org.id),
                ("recipient_ids", "in", self.org.partner_id.ids),
            ]
        )
        self.assertEqual(mail.recipient_ids, self.org.partner_id)
        self.assertIn("85 MB", mail.body_html)
        self.assertEqual(mail.state, "outgoing", "sent by Odoo's mail queue")
        self.use(88)  # still past 80 only: nothing new
        self.use(86)
        self.assertEqual(len(self.alerts(self.org)[0]), 1)
        self.use(100)  # straight to 100: one alert, at 100
        self.assertEqual(len(self.alerts(self.org)[0]), 2)
        self.assertIn("at 100%", self.alerts(self.org)[1][-1])
        self.use(40)  # below: re-armed, no alert
        self.assertEqual(len(self.alerts(self.org)[0]), 2)
        self.assertEqual(self.mailbox.quota_alert_level, 0)
        self.use(81)  # crossing again alerts again
        self.assertEqual(len(self.alerts(self.org)[0]), 3)

    def test_the_organization_alerts_on_its_storage(self):
        self.mailbox.quota = 950 * MB
        self.mailbox.storage_used = int(0.91 * GB)
        self.org._check_quota_alerts()
        summaries, subjects = self.alerts(self.org)
        self.assertEqual(summaries, ["The mail hosting of Quota Org is at 90% of its quota"])
        self.assertEqual(subjects, summaries)
        self.assertEqual(self.org.quota_alert_level, 90)
        activity = self.env["mail.activity"].search(
            [("res_model", "=", "fayvad.mail.organization"), ("res_id", "=", self.org.id)]
        )
        self.assertIn("upsell", activity.note)
        self.assertFalse(activity.user_id.share)


@tagged("post_install", "-at_install")
class TestQuotaAlertsFromTheUsageCron(QuotaAlertCase, ModoboaCase):
    def test_usage_cron_alerts_when_modoboa_reports_a_full_mailbox(self):
        name = unique_domain("quota")
        partner = self.env["res.partner"].create({"name": "Cron Customer", "email": "it@cron.example"})
        org = self.make_org(
            name=name, domain=name, partner=partner, mail_server_id=self.modoboa.id, max_storage_gb=2
        )
        alice = self.make_account(org, "alice", quota_mb=100)
        org.action_provision()
        self.run_jobs()
        Snapshot = self.env["fayvad.mail.usage.snapshot"]

        def read(day, megabytes):
            """The daily usage run of ``day``, Modoboa's quota table saying ``megabytes``."""
            self.set_mailbox_usage(alice.email, megabytes * MB)
            with freeze_time(f"{day} 03:00:00"):
                Snapshot._cron_read_usage()
                Snapshot._cron_read_usage()  # a second run the same day reads nothing more

        read("2030-01-01", 50)
        self.assertEqual(self.alerts(org), ([], []))
        read("2030-01-02", 92)
        self.assertEqual(alice.storage_used, 92 * MB)
        self.assertEqual(self.alerts(org)[0], [f"The mailbox {alice.email} is at 90% of its quota"])
        read("2030-01-03", 93)
        read("2030-01-04", 95)
        self.assertEqual(len(self.alerts(org)[1]), 1, "not on every run")
        read("2030-01-05", 60)  # freed: below 80 %, re-armed
        read("2030-01-06", 85)
        self.assertEqual(
            self.alerts(org)[1],
            [
                f"The mailbox {alice.email} is at 90% of its quota",
                f"The mailbox {alice.email} is at 80% of its quota",
            ],
        )
