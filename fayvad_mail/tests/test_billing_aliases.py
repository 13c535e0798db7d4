"""Aliases and domain aliases beyond the plan are billed like extra users:
prorated events when added or removed mid-period, and every period at renewal."""

from freezegun import freeze_time

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import BillingCase


@tagged("post_install", "-at_install")
class TestAliasBilling(BillingCase):
    def setUp(self):
        super().setUp()
        self.plan.write(
            {
                "included_aliases": 1,
                "price_per_extra_alias": 3.0,
                "included_domain_aliases": 0,
                "price_per_extra_domain_alias": 6.2,
            }
        )
        self.org = self.make_org("2026-03-01")
        self.domain = self.org.domain_ids
        self.add_accounts(self.org, "2026-03-01", "alice")

    def events(self, *kinds):
        return self.org.billing_event_ids.filtered(lambda e: e.event_type in kinds).sorted("id")

    def alias(self, local, **vals):
        return self.env["fayvad.mail.alias"].create(
            {"local_part": local, "domain_id": self.domain.id, "recipients": "x@example.com", **vals}
        )

    def test_extra_aliases_are_billed_prorated_and_credited(self):
        with freeze_time("2026-03-01"):
            self.alias("one")  # included
        self.assertFalse(self.events("alias_added"))
        with freeze_time("2026-03-17"):  # 15 of 31 days left
            two = self.alias("two")
            self.env["fayvad.mail.alias"].create(
                {"kind": "forward", "account_id": self.org.account_ids.id, "recipients": "home@example.net"}
            )
        added = self.events("alias_added")
        self.assertEqual(len(added), 1, "a forward is part of its mailbox")
        self.assertEqual(added.unit_price, round(3.0 * 15 / 31, 2))
        self.assertIn("two@", added.description)
        with freeze_time("2026-03-25"):
            two.action_delete()
        removed = self.events("alias_removed")
        self.assertEqual(removed.unit_price, -round(3.0 * 7 / 31, 2))
        self.sync("2026-03-26")
        self.assertTrue(added.invoice_line_id and removed.invoice_line_id, "both on the March invoice")

    def test_domain_aliases_and_renewal(self):
        with freeze_time("2026-03-01"):
            self.alias("one")
            self.alias("two")
            self.env["fayvad.mail.domain.alias"].create(
                {"name": "billed.example.org", "domain_id": self.domain.id}
            )
        self.assertEqual(self.events("domain_alias_added").unit_price, 6.2)
        self.assertEqual(self.events("alias_added").unit_price, 3.0)
        with freeze_time("2026-04-01"):
            self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        april = self.org.billing_event_ids.filtered(lambda e: str(e.date) == "2026-04-01")
        by_kind = {e.event_type: (e.quantity, e.unit_price) for e in april if "alias" in e.event_type}
        self.assertEqual(by_kind, {"alias_added": (1, 3.0), "domain_alias_added": (1, 6.2)})

    def test_nothing_is_billed_when_the_plan_does_not_price_them(self):
        self.plan.price_per_extra_alias = 0
        with freeze_time("2026-03-02"):
            for local in ("a", "b", "c"):
                self.alias(local)
        self.assertFalse(self.events("alias_added"))
