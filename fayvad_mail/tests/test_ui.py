from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.fayvad_mail.tools.units import MB


@tagged("post_install", "-at_install")
class TestAccountantTour(HttpCase):
    def test_accountant_walks_from_menu_to_usage_graph(self):
        new_test_user(
            self.env,
            login="tour_accountant",
            password="tour_accountant",
            groups="base.group_user,fayvad_mail.fayvad_mail_group_accountant",
        )
        plan = self.env["fayvad.mail.plan"].create(
            {"name": "Tour Plan", "included_users": 1, "price_per_extra_user": 3}
        )
        partner = self.env["res.partner"].create({"name": "Tour Customer"})
        org = self.env["fayvad.mail.organization"].create(
            {"name": "Tour Org", "partner_id": partner.id, "plan_id": plan.id, "state": "active"}
        )
        domain = self.env["fayvad.mail.domain"].create({"name": "tour.example", "organization_id": org.id})
        Account = self.env["fayvad.mail.account"]
        alice = Account.create(
            {"local_part": "alice", "domain_id": domain.id, "quota": 500 * MB, "state": "active"}
        )
        bob = Account.create(
            {"local_part": "bob", "domain_id": domain.id, "quota": 500 * MB, "state": "active"}
        )
        today = fields.Date.today()
        for day in range(5):
            for account in (alice, bob):
                self.env["fayvad.mail.usage.snapshot"]._record(
                    account, (day + 1) * 10 * MB, today - timedelta(days=day)
                )
        self.start_tour("/odoo", "fayvad_mail_accountant_tour", login="tour_accountant")
