"""GET /fayvad_api/erp/usage-summary/ for 10, 100 and 1000 organizations
(10 accounts, 30 days of usage snapshots and 2 or 3 billing events each): the
time and SQL queries of the model method ``_summary`` and of the same
request through Odoo's HTTP stack (authentication and JSON included).

The query count is fixed but for one currency rate lookup per foreign
currency and day among the period's events: the EUR refunds fall on 2 days
with 10 organizations, on 6 from 100 on."""

import itertools
from datetime import timedelta
from urllib.parse import urlencode

from odoo import fields
from odoo.tests import new_test_user

from odoo.addons.fayvad_mail.tests.common import ApiCase
from odoo.addons.fayvad_mail.tools.units import MB
from odoo.addons.fayvad_mail.tools.validation import validate_usage_query

from devtools.bench.figures import latency, record, timed

SIZES = (10, 100, 1000)
ACCOUNTS = 10
DAYS = 30
REPEAT = {10: 20, 100: 10, 1000: 5}
CONTEXT = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True}


class BenchUsageSummary(ApiCase):
    """A company of its own, so that only the organizations made here count."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company2 = cls.env["res.company"].create(
            {"name": "Bench Co", "currency_id": cls.env.ref("base.USD").id}
        )
        cls.user2 = new_test_user(
            cls.env,
            login="bench_usage_api",
            groups="base.group_user,fayvad_mail.fayvad_mail_group_api",
            company_id=cls.company2.id,
            company_ids=[cls.company2.id],
        )
        cls.key2 = cls.new_key(cls.user2)
        cls.benv = cls.env(context=dict(CONTEXT, allowed_company_ids=[cls.company2.id]))
        cls.bench_plan = cls.benv["fayvad.mail.plan"].create(
            {"name": "Bench Plan", "monthly_price": 30, "included_users": 10, "company_id": cls.company2.id}
        )
        cls.eur = cls.env.ref("base.EUR")
        cls.eur.active = True
        cls.today = fields.Date.context_today(cls.env.user)

    def test_usage_summary(self):
        start = self.today - timedelta(days=DAYS - 1)
        params = {"start_date": start.isoformat(), "end_date": self.today.isoformat()}
        query = validate_usage_query(params, self.today)
        summary = self.env(user=self.user2, context={"allowed_company_ids": [self.company2.id]})[
            "fayvad.mail.usage.summary"
        ]
        url = f"{self.base_url()}/fayvad_api/erp/usage-summary/?{urlencode(params)}"

        def model():
            summary.env.invalidate_all()  # read from the database each time, as a request does
            return summary._summary(query)

        def http():  # the answer's time, not the client's JSON decoding
            response = self.opener.get(url, headers={"Authorization": f"Token {self.key2}"}, timeout=60)
            self.assertEqual(response.status_code, 200, response.text[:500])
            return response

        cases = {"_summary()": model, "HTTP GET": http}
        first, last = {}, {}
        for previous, size in itertools.pairwise((0, *SIZES)):
            self._grow(range(previous, size))
            for case, call in cases.items():
                queries, samples, result = self._measure(call, REPEAT[size])
                body = result if isinstance(result, dict) else result.json()
                self.assertEqual(body["summary"]["total_organizations"], size)
                last[case] = {"queries": queries, **latency(samples)}
                first.setdefault(case, last[case])
                record("usage summary", f"{case}, {size} orgs", **last[case])
        for case in cases:
            record(
                "usage summary",
                f"{case}, {SIZES[-1]} vs {SIZES[0]} orgs",
                time_ratio=round(last[case]["median_ms"] / first[case]["median_ms"], 1),
                query_ratio=round(last[case]["queries"] / first[case]["queries"], 2),
            )

    def _measure(self, call, repeat):
        """(SQL queries of one call, seconds of each of ``repeat`` calls, the
        last answer), after a warm-up call."""
        call()
        before = self.cr.sql_log_count
        call()
        queries = self.cr.sql_log_count - before
        samples, result = timed(call, repeat)
        return queries, samples, result

    def _grow(self, numbers):
        """Organizations number ``numbers``: one in ten suspended, each with a
        subscription, a domain, 10 accounts (one suspended), 30 days of
        snapshots per account, a payment and a user_added charge during the
        period, and one in five a refund in EUR."""
        env = self.benv
        partners = env["res.partner"].create([{"name": f"Bench customer {n}"} for n in numbers])
        # the subscriptions are made below, as they were; no fee events of their own
        orgs = (
            env["fayvad.mail.organization"]
            .with_context(fayvad_mail_no_subscription=True)
            .create(
                [
                    {
                        "name": f"Bench {n:04d}",
                        "partner_id": partner.id,
                        "company_id": self.company2.id,
                        "plan_id": self.bench_plan.id,
                        "mail_server_id": False,
                        "max_users": ACCOUNTS,
                        "state": "active",
                    }
                    for n, partner in zip(numbers, partners, strict=True)
                ]
            )
        )
        env["fayvad.mail.subscription"].with_context(fayvad_mail_no_fee=True).create(
            [{"organization_id": org.id, "plan_id": self.bench_plan.id, "amount": 30} for org in orgs]
        )
        domains = env["fayvad.mail.domain"].create(
            [
                {"name": f"bench-{org.id}.example", "organization_id": org.id, "state": "active"}
                for org in orgs
            ]
        )
        env["fayvad.mail.account"].create(
            [
                {
                    "local_part": f"user{i}",
                    "domain_id": domain.id,
                    "quota": 1024 * MB,
                    "state": "suspended" if i == ACCOUNTS - 1 else "active",
                }
                for domain in domains
                for i in range(ACCOUNTS)
            ]
        )
        orgs.filtered(lambda org: org.name.endswith("9")).state = "suspended"
        env.flush_all()
        self.cr.execute(  # 300 rows per organization: straight in SQL
            """
            INSERT INTO fayvad_mail_usage_snapshot
                   (account_id, organization_id, company_id, date, bytes_used, gb_used,
                    create_uid, write_uid, create_date, write_date)
            SELECT id, organization_id, company_id, day, used, used / 1e9, 1, 1, now(), now()
              FROM (SELECT account.id, account.organization_id, account.company_id,
                           %(today)s::date - ago AS day, (account.id %% 50 + 30 - ago) * 10000000 AS used
                      FROM fayvad_mail_account account, generate_series(0, %(days)s - 1) ago
                     WHERE account.organization_id = ANY(%(orgs)s)) readings
            """,
            {"today": self.today, "days": DAYS, "orgs": orgs.ids},
        )
        self.cr.execute(  # each mailbox keeps its latest reading, as the usage cron does
            """
            UPDATE fayvad_mail_account account SET storage_used = s.bytes_used, usage_date = s.date
              FROM fayvad_mail_usage_snapshot s
             WHERE s.account_id = account.id AND s.date = %(today)s AND account.organization_id = ANY(%(orgs)s)
            """,
            {"today": self.today, "orgs": orgs.ids},
        )
        events = []
        for n, org in zip(numbers, orgs, strict=True):
            common = {"organization_id": org.id, "date": self.today - timedelta(days=n % DAYS), "quantity": 1}
            events += [
                {**common, "event_type": "payment_received", "unit_price": 30},
                {**common, "event_type": "user_added", "unit_price": 5},
            ]
            if n % 5 == 0:
                events.append(
                    {**common, "event_type": "refund", "unit_price": 10, "currency_id": self.eur.id}
                )
        env["fayvad.mail.billing.event"].create(events)
        env.flush_all()
        # fresh statistics, as autovacuum would keep them, else PostgreSQL plans for empty tables
        self.cr.execute(
            "ANALYZE fayvad_mail_organization, fayvad_mail_account, fayvad_mail_usage_snapshot, "
            "fayvad_mail_billing_event"
        )
