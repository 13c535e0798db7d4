from datetime import date

from freezegun import freeze_time

from odoo.tests import new_test_user, tagged

from odoo.addons.fayvad_mail.tests.common import ApiCase
from odoo.addons.fayvad_mail.tools.units import MB


@tagged("post_install", "-at_install")
class TestUsageSummary(ApiCase):
    """A company of its own, so every figure is known."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company2 = cls.env["res.company"].create(
            {"name": "Usage Co", "currency_id": cls.env.ref("base.USD").id}
        )
        cls.user2 = new_test_user(
            cls.env,
            login="usage_api",
            groups="base.group_user,fayvad_mail.fayvad_mail_group_api",
            company_id=cls.company2.id,
            company_ids=[cls.company2.id],
        )
        cls.key2 = cls.new_key(cls.user2)
        env = cls.env(context=dict(cls.env.context, allowed_company_ids=[cls.company2.id]))
        Org = env["fayvad.mail.organization"].with_company(cls.company2)
        plan = (
            env["fayvad.mail.plan"]
            .with_company(cls.company2)
            .create(
                {
                    "name": "Usage Plan",
                    "monthly_price": 10,
                    "included_users": 10,
                    "company_id": cls.company2.id,
                }
            )
        )

        def org(name, state, storage_gb):
            partner = env["res.partner"].create({"name": name, "company_id": cls.company2.id})
            record = Org.create(
                {
                    "name": name,
                    "partner_id": partner.id,
                    "company_id": cls.company2.id,
                    "plan_id": plan.id,
                    "max_storage_gb": storage_gb,
                    "max_users": 10,
                    "mail_server_id": False,
                }
            )
            env["fayvad.mail.domain"].create(
                {"name": f"{name.lower()}.usage.example", "organization_id": record.id}
            )
            return record

        cls.alpha = org("Alpha", "active", 10)
        cls.beta = org("Beta", "active", 20)
        cls.gamma = org("Gamma", "active", 5)
        Account = env["fayvad.mail.account"]
        cls.a1 = Account.create(
            {"local_part": "a1", "domain_id": cls.alpha.domain_ids.id, "quota": 1000 * MB, "state": "active"}
        )
        cls.a2 = Account.create(
            {"local_part": "a2", "domain_id": cls.alpha.domain_ids.id, "quota": 1000 * MB, "state": "active"}
        )
        cls.b1 = Account.create(
            {"local_part": "b1", "domain_id": cls.beta.domain_ids.id, "quota": 2000 * MB, "state": "active"}
        )
        cls.beta.write({"state": "suspended", "suspension_reason": "non_payment"})
        cls.b1.state = "suspended"
        (cls.alpha | cls.gamma).state = "active"
        # they existed before the period (create_date is set by the ORM)
        orgs = (cls.alpha | cls.beta | cls.gamma).ids
        cls.env.flush_all()
        cls.env.cr.execute(
            "UPDATE fayvad_mail_organization SET create_date = '2025-06-01' WHERE id = ANY(%s)", [orgs]
        )
        cls.env.cr.execute(
            "UPDATE fayvad_mail_account SET create_date = '2025-06-01' WHERE organization_id = ANY(%s)",
            [orgs],
        )
        cls.env.invalidate_all()
        Snapshot = env["fayvad.mail.usage.snapshot"]
        Snapshot._record(cls.a1, 1_000_000_000, date(2025, 7, 10))
        Snapshot._record(cls.a1, 2_500_000_000, date(2025, 7, 31))
        Snapshot._record(cls.a1, 9_000_000_000, date(2025, 8, 1))  # after the period: ignored
        Snapshot._record(cls.a2, 500_000_000, date(2025, 6, 30))  # latest on or before end_date
        Snapshot._record(cls.b1, 1_234_567_890, date(2025, 7, 20))
        Event = env["fayvad.mail.billing.event"]
        eur = cls.env.ref("base.EUR")
        eur.active = True
        cls.env["res.currency.rate"].create(
            {"currency_id": eur.id, "name": "2025-07-01", "rate": 0.5, "company_id": cls.company2.id}
        )

        def event(org, kind, day, amount, currency=None):
            return Event.create(
                {
                    "organization_id": org.id,
                    "event_type": kind,
                    "date": day,
                    "quantity": 1,
                    "unit_price": amount,
                    "currency_id": (currency or cls.env.ref("base.USD")).id,
                }
            )

        event(cls.alpha, "payment_received", date(2025, 6, 30), 1000)  # before: out
        event(cls.alpha, "payment_received", date(2025, 7, 1), 99.99)  # first day: in
        event(cls.beta, "payment_received", date(2025, 7, 31), 50)  # last day: in
        event(cls.beta, "payment_received", date(2025, 7, 15), 25, eur)  # 25 EUR = 50 USD at rate 0.5
        event(cls.alpha, "refund", date(2025, 7, 20), 20)
        event(cls.alpha, "user_added", date(2025, 7, 15), 5)  # a charge, not revenue
        event(cls.gamma, "payment_failed", date(2025, 8, 1), 0)  # after: out

    def summary(self, key=None, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return self.api("GET", f"/usage-summary/?{query}", key=key or self.key2)

    def test_known_figures_and_inclusive_period(self):
        status, body, _ = self.summary(start_date="2025-07-01", end_date="2025-07-31")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["period"], {"start_date": "2025-07-01", "end_date": "2025-07-31"})
        self.assertEqual(
            body["summary"],
            {
                "total_organizations": 3,
                "active_organizations": 2,
                "suspended_organizations": 1,
                "total_users": 3,
                "active_users": 2,
                "total_storage_gb": 4.23,  # 2.5 + 0.5 + 1.234567890
                "total_revenue": 179.99,  # 99.99 + 50 + 50 (25 EUR) - 20
                "currency": "USD",
            },
        )
        orgs = {o["name"]: o for o in body["organizations"]}
        self.assertEqual(orgs["Alpha"]["users"], {"total": 2, "active": 2, "inactive": 0})
        self.assertEqual(orgs["Alpha"]["storage"], {"used_gb": 3.0, "limit_gb": 10.0, "percentage": 30.0})
        self.assertEqual(orgs["Beta"]["users"], {"total": 1, "active": 0, "inactive": 1})
        self.assertEqual(orgs["Beta"]["storage"]["percentage"], 6.17)
        self.assertEqual(orgs["Alpha"]["odoo_customer_id"], self.alpha.partner_id.id)
        self.assertNotIn("email_accounts", orgs["Alpha"])
        dates = [e["event_date"] for e in body["billing_events"]]
        self.assertEqual(dates, sorted(dates))
        self.assertEqual((dates[0], dates[-1]), ("2025-07-01", "2025-07-31"))
        self.assertEqual(len(dates), 5)
        self.assertEqual(body["billing_events"][0]["unit_price"], 99.99)
        self.assertIs(body["billing_events"][0]["odoo_synced"], False)

    def test_revenue_over_http_reads_payments_minus_refunds(self):
        """On a served database nothing is cached when a request starts: the
        revenue must not depend on what the test's own environment read."""
        env = self.env(context=dict(self.env.context, allowed_company_ids=[self.company2.id]))
        env["fayvad.mail.billing.event"].create(
            {
                "organization_id": self.gamma.id,
                "event_type": "payment_received",
                "date": date.today(),
                "quantity": 1,
                "unit_price": 12.34,
                "currency_id": self.env.ref("base.USD").id,
            }
        )
        cases = [
            ({"start_date": "2025-07-01", "end_date": "2025-07-31"}, 179.99),  # totals, period ended
            ({"start_date": "2025-07-01", "end_date": "2025-07-31", "organization_id": self.alpha.id}, 79.99),
            ({"start_date": date.today().replace(day=1).isoformat()}, 12.34),  # totals, up to today
            ({"organization_id": self.gamma.id}, 12.34),  # events, up to today
            ({"organization_id": self.alpha.id}, 0.0),
        ]
        for params, revenue in cases:
            with self.subTest(params=params):
                self.env.invalidate_all()  # as in a new request of a served database
                self.env.registry.clear_cache()
                status, body, _ = self.summary(**params)
                self.assertEqual(status, 200, body)
                self.assertEqual(body["summary"]["total_revenue"], revenue)

    def test_filters_details_and_pagination(self):
        status, body, _ = self.summary(
            organization_id=self.alpha.id,
            start_date="2025-07-01",
            end_date="2025-07-31",
            include_details="TRUE",
        )
        self.assertEqual(status, 200, body)
        self.assertEqual([o["id"] for o in body["organizations"]], [self.alpha.id])
        self.assertEqual(body["summary"]["total_organizations"], 1)
        details = body["organizations"][0]
        self.assertEqual(
            sorted((a["email"], a["used"], a["quota"]) for a in details["email_accounts"]),
            [
                ("a1@alpha.usage.example", 2_500_000_000, 1000 * MB),
                ("a2@alpha.usage.example", 500_000_000, 1000 * MB),
            ],
        )
        self.assertEqual(details["domains"][0]["name"], "alpha.usage.example")
        status, page, _ = self.summary(start_date="2025-07-01", end_date="2025-07-31", limit=2, offset=1)
        self.assertEqual(page["pagination"], {"total": 3, "offset": 1, "limit": 2, "count": 2})
        self.assertEqual([o["name"] for o in page["organizations"]], ["Beta", "Gamma"])
        self.assertEqual(page["summary"]["total_organizations"], 3)
        self.assertEqual(page["summary"]["total_revenue"], 179.99, "the summary covers every organization")
        self.assertEqual(
            [(e["organization_id"], e["event_date"]) for e in page["billing_events"]],
            [(self.beta.id, "2025-07-15"), (self.beta.id, "2025-07-31")],
            "a page lists its own organizations' events (Gamma has none in July)",
        )
        for flag in ("false", "0", "False"):
            self.assertNotIn("email_accounts", self.summary(include_details=flag)[1]["organizations"][0])

    def test_details_list_aliases_and_domain_aliases(self):
        domain = self.alpha.domain_ids
        Alias = self.env["fayvad.mail.alias"]
        sales = Alias.create({"local_part": "sales", "domain_id": domain.id, "recipients": "x@example.com"})
        account = self.alpha.account_ids.sorted("email")[0]
        forward = Alias.create(
            {"kind": "forward", "account_id": account.id, "recipients": "home@example.net"}
        )
        gone = Alias.create({"local_part": "gone", "domain_id": domain.id, "recipients": "x@example.com"})
        gone.action_delete()
        other = self.env["fayvad.mail.domain.alias"].create(
            {"name": "alpha-usage.org", "domain_id": domain.id}
        )
        status, body, _ = self.summary(organization_id=self.alpha.id, include_details="1")
        self.assertEqual(status, 200, body)
        details = body["organizations"][0]
        self.assertEqual(
            sorted(
                (a["id"], a["email"], a["kind"], a["active"], tuple(a["recipients"]))
                for a in details["aliases"]
            ),
            sorted(
                [
                    (sales.id, "sales@alpha.usage.example", "alias", True, ("x@example.com",)),
                    (forward.id, account.email, "forward", True, ("home@example.net", account.email)),
                ]
            ),
        )
        self.assertEqual(
            details["domain_aliases"], [{"id": other.id, "name": "alpha-usage.org", "domain_id": domain.id}]
        )
        status, body, _ = self.summary(
            organization_id=self.alpha.id, end_date="2025-07-31", start_date="2025-07-01", include_details="1"
        )
        self.assertEqual(body["organizations"][0]["aliases"], [], "none existed then")

    def test_billing_events_in_pages(self):
        period = {"start_date": "2025-07-01", "end_date": "2025-07-31"}
        everything = self.summary(**period)[1]["billing_events"]
        self.assertEqual(len(everything), 5)
        self.assertNotIn("events_pagination", self.summary(**period)[1])
        pages, offset = [], 0
        while True:
            status, body, _ = self.summary(**period, events_limit=2, events_offset=offset)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["events_pagination"]["total"], 5)
            self.assertEqual(body["events_pagination"]["count"], len(body["billing_events"]))
            if not body["billing_events"]:
                break
            pages.append([e["id"] for e in body["billing_events"]])
            offset += 2
        self.assertEqual([len(page) for page in pages], [2, 2, 1])
        self.assertEqual(
            [i for page in pages for i in page], [e["id"] for e in everything], "the pages, in order"
        )
        self.assertEqual(len(self.summary(**period, events_limit=2)[1]["organizations"]), 3)
        for params in ({"events_limit": "0"}, {"events_limit": "10001"}, {"events_offset": "-1"}):
            with self.subTest(params=params):
                self.assertApiError(self.summary(**params), 400, "VALIDATION_ERROR", *params)

    @freeze_time("2025-07-20 12:00:00")
    def test_default_period_is_this_month_to_today(self):
        self.assertEqual(self.summary()[1]["period"], {"start_date": "2025-07-01", "end_date": "2025-07-20"})

    def test_bad_queries(self):
        for params, field in (
            ({"start_date": "2025-7-1"}, "start_date"),
            ({"end_date": "2025-02-30"}, "end_date"),
            ({"start_date": "2025-08-01", "end_date": "2025-07-01"}, "start_date"),
            ({"include_details": "yes"}, "include_details"),
            ({"organization_id": "abc"}, "organization_id"),
            ({"limit": "0"}, "limit"),
            ({"offset": "-1"}, "offset"),
        ):
            with self.subTest(params=params):
                self.assertApiError(self.summary(**params), 400, "VALIDATION_ERROR", field)
        self.assertApiError(self.summary(organization_id=10**8), 404, "ORGANIZATION_NOT_FOUND")

    def test_other_company_is_invisible(self):
        other = self.env["fayvad.mail.organization"].create(
            {"name": "Main company org", "partner_id": self.customer.id, "mail_server_id": False}
        )
        self.assertApiError(self.summary(organization_id=other.id), 404, "ORGANIZATION_NOT_FOUND")
        names = {o["name"] for o in self.summary()[1]["organizations"]}
        self.assertNotIn("Main company org", names)
