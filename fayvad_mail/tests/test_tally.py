"""The usage summary's running totals (fayvad_mail_tally.py): they follow
every change of organizations, mailboxes and billing events, whoever makes
it, survive folding, and concurrent transactions add to them without
waiting for one another (real connections)."""

import threading
from datetime import timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, fields
from odoo.tests import tagged
from odoo.tools import SQL

from odoo.addons.fayvad_mail.tests.common import FayvadMailCase, delete_committed, new_env
from odoo.addons.fayvad_mail.tools.units import GB
from odoo.addons.fayvad_mail.tools.validation import validate_usage_query

TALLIES = ("fayvad.mail.organization.tally", "fayvad.mail.account.tally", "fayvad.mail.revenue.tally")


def kept(cr, company_id):
    """What the running totals say of a company."""
    cr.execute(
        SQL(
            """
            SELECT (SELECT ARRAY[COALESCE(sum(organizations), 0), COALESCE(sum(active_organizations), 0),
                                 COALESCE(sum(suspended_organizations), 0)]
                      FROM fayvad_mail_organization_tally WHERE company_id = %(c)s),
                   (SELECT ARRAY[COALESCE(sum(accounts), 0), COALESCE(sum(active_accounts), 0), COALESCE(sum(used), 0)]
                      FROM fayvad_mail_account_tally WHERE company_id = %(c)s),
                   (SELECT COALESCE(json_object_agg(key, amount), '{}') FROM (
                        SELECT date || ' ' || currency_id || ' ' || event_type AS key, sum(amount) AS amount
                          FROM fayvad_mail_revenue_tally WHERE company_id = %(c)s
                      GROUP BY 1 HAVING sum(amount) <> 0) r)
            """,
            c=company_id,
        )
    )
    orgs, accounts, revenue = cr.fetchone()
    return [int(n) for n in orgs], [int(n) for n in accounts], {k: round(v, 2) for k, v in revenue.items()}


def counted(cr, company_id):
    """The same, counted from the organizations, mailboxes and events."""
    cr.execute(
        SQL(
            """
            SELECT (SELECT ARRAY[count(*), count(*) FILTER (WHERE state = 'active'),
                                 count(*) FILTER (WHERE state = 'suspended')]
                      FROM fayvad_mail_organization WHERE company_id = %(c)s),
                   (SELECT ARRAY[count(*), count(*) FILTER (WHERE state = 'active'),
                                 COALESCE(sum(storage_used) FILTER (WHERE usage_date IS NOT NULL), 0)]
                      FROM fayvad_mail_account WHERE company_id = %(c)s AND state != 'terminated'),
                   (SELECT COALESCE(json_object_agg(key, amount), '{}') FROM (
                        SELECT date || ' ' || currency_id || ' ' || event_type AS key, sum(abs(amount)) AS amount
                          FROM fayvad_mail_billing_event
                         WHERE company_id = %(c)s AND event_type IN ('payment_received', 'refund')
                      GROUP BY 1 HAVING sum(abs(amount)) <> 0) r)
            """,
            c=company_id,
        )
    )
    orgs, accounts, revenue = cr.fetchone()
    return [int(n) for n in orgs], [int(n) for n in accounts], {k: round(v, 2) for k, v in revenue.items()}


@tagged("post_install", "-at_install")
class TestTally(FayvadMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.env["res.company"].create(
            {"name": "Tally Co", "currency_id": cls.env.ref("base.USD").id}
        )
        cls.none = cls.env["fayvad.mail.plan"]

    def make_other_org(self, name, domain, **vals):
        """An organization of the other company (no plan nor server of the main one)."""
        return self.make_org(
            name, domain, plan=self.none, company_id=self.other.id, mail_server_id=False, **vals
        )

    def assertTallied(self, company, msg=""):
        self.env.flush_all()
        self.assertEqual(kept(self.env.cr, company.id), counted(self.env.cr, company.id), msg)

    def event(self, org, kind, amount, day=None, **vals):
        return self.env["fayvad.mail.billing.event"].create(
            {
                "organization_id": org.id,
                "event_type": kind,
                "date": day or fields.Date.today(),
                "quantity": 1,
                "unit_price": amount,
                **vals,
            }
        )

    def test_totals_follow_every_change(self):
        company = self.other
        Snapshot = self.env["fayvad.mail.usage.snapshot"]
        one = self.make_other_org("Tally One", "tally-one.example")
        two = self.make_other_org("Tally Two", "tally-two.example")
        self.assertTallied(company, "organizations created")
        a = self.make_account(one, "a", state="active")
        b = self.make_account(one, "b", state="active")
        c = self.make_account(two, "c")
        self.assertTallied(company, "mailboxes created")
        self.assertEqual(kept(self.env.cr, company.id)[1], [3, 2, 0])
        Snapshot._record(a, 3 * GB)
        Snapshot._record(b, 1 * GB)
        Snapshot._record(b, 2 * GB, fields.Date.today() - timedelta(days=3))  # an older day: not the latest
        self.assertTallied(company, "usage read")
        self.assertEqual(kept(self.env.cr, company.id)[1], [3, 2, 4 * GB])
        b.write({"state": "suspended"})
        two.write({"state": "suspended"})
        self.assertTallied(company, "suspended")
        a.action_terminate()
        self.assertTallied(company, "terminated")
        self.assertEqual(kept(self.env.cr, company.id)[1], [2, 0, 1 * GB])
        c.unlink()
        self.assertTallied(company, "deleted")
        # raw SQL moves them too
        self.env.cr.execute(
            SQL("UPDATE fayvad_mail_account SET storage_used = %s WHERE id = %s", 7 * GB, b.id)
        )
        self.env.invalidate_all()
        self.assertTallied(company, "changed in SQL")
        self.assertEqual(kept(self.env.cr, company.id)[1], [1, 0, 7 * GB])
        # billing events: payments and refunds by day and currency
        eur = self.env.ref("base.EUR")
        pay = self.event(one, "payment_received", 30)
        self.event(two, "payment_received", 12.5, currency_id=eur.id)
        refund = self.event(one, "refund", 5, day=fields.Date.today() - timedelta(days=1))
        self.event(one, "user_added", 5)  # a charge, not revenue
        self.assertTallied(company, "events created")
        pay.write({"unit_price": 40})
        refund.write({"date": fields.Date.today() - timedelta(days=2)})
        self.assertTallied(company, "events changed")
        pay.unlink()
        self.assertTallied(company, "event deleted")
        # a mailbox's domain moving to the other organization, an organization to another company
        b.domain_id.organization_id = two
        self.assertTallied(company, "domain moved")
        # folding keeps the totals and leaves one row per key
        for model in TALLIES:
            self.env[model]._compact()
        self.assertTallied(company, "folded")
        self.env.cr.execute(
            SQL(
                "SELECT count(*), count(DISTINCT company_id) FROM fayvad_mail_account_tally WHERE company_id = %s",
                company.id,
            )
        )
        rows, keys = self.env.cr.fetchone()
        self.assertEqual(rows, keys)
        # a recount (what an upgrade does) finds the same
        before = kept(self.env.cr, company.id)
        for model in TALLIES:
            self.env[model]._rebuild()
        self.assertEqual(kept(self.env.cr, company.id), before)

    def test_summary_reads_the_totals_and_counts_what_they_cannot_say(self):
        """Today's summary of a whole company comes from the totals; a
        period ending earlier, or one organization, is counted mailbox by
        mailbox; the figures agree whichever way they were found."""
        company = self.other
        user = self.make_user("tally_api", "api", company=company)
        one = self.make_other_org("Sum One", "sum-one.example", state="active")
        two = self.make_other_org("Sum Two", "sum-two.example", state="active")
        Snapshot = self.env["fayvad.mail.usage.snapshot"]
        today = fields.Date.today()
        for org, used in ((one, (1, 2)), (two, (4,))):
            for n, gb in enumerate(used):
                account = self.make_account(org, f"m{n}", state="active")
                Snapshot._record(account, gb * GB // 2, today - timedelta(days=5))
                Snapshot._record(account, gb * GB, today)
        self.env.flush_all()
        for table in ("fayvad_mail_organization", "fayvad_mail_account"):  # created a week ago
            self.env.cr.execute(
                SQL(
                    "UPDATE %s SET create_date = now() - interval '7 days' WHERE company_id = %s",
                    SQL.identifier(table),
                    company.id,
                )
            )
        self.env.invalidate_all()
        self.event(one, "payment_received", 100)
        self.event(two, "payment_received", 50, day=today - timedelta(days=5))
        self.event(two, "refund", 20)
        self.env.flush_all()
        Summary = self.env["fayvad.mail.usage.summary"].with_user(user)

        def summary(**params):
            query = validate_usage_query({k: str(v) for k, v in params.items()}, today)
            return Summary._summary(query)["summary"]

        period = {"start_date": today - timedelta(days=10), "end_date": today}
        now = summary(**period)
        # the mailbox figures come from the totals: a row added to them shows
        self.env.cr.execute(
            SQL(
                "INSERT INTO fayvad_mail_account_tally (company_id, accounts, active_accounts, used) "
                "VALUES (%s, 1000, 0, 0)",
                company.id,
            )
        )
        self.assertEqual(summary(**period)["total_users"], now["total_users"] + 1000)
        self.assertEqual(
            summary(**period, organization_id=one.id)["total_users"], 2, "one organization: counted"
        )
        self.env.cr.execute(
            SQL("DELETE FROM fayvad_mail_account_tally WHERE accounts = 1000 AND company_id = %s", company.id)
        )
        self.assertEqual((now["total_organizations"], now["total_users"], now["active_users"]), (2, 3, 3))
        self.assertEqual(now["total_storage_gb"], round(7 * GB / 1e9, 2))
        self.assertEqual(now["total_revenue"], 130.0)
        # one organization at a time: counted, and the parts add up to the whole
        parts = [summary(**period, organization_id=org.id) for org in (one, two)]
        self.assertEqual(sum(p["total_users"] for p in parts), now["total_users"])
        self.assertEqual(round(sum(p["total_storage_gb"] for p in parts), 2), now["total_storage_gb"])
        self.assertEqual(round(sum(p["total_revenue"] for p in parts), 2), now["total_revenue"])
        # a period ending before today's readings: the readings of that day
        earlier = summary(start_date=today - timedelta(days=10), end_date=today - timedelta(days=1))
        self.assertEqual(earlier["total_storage_gb"], round(7 * GB / 2 / 1e9, 2))
        self.assertEqual(earlier["total_revenue"], 50.0)


@tagged("post_install", "-at_install")
class TestTallyConcurrency(FayvadMailCase):
    """Two transactions that add mailboxes and payments to one company at
    the same time, and a fold between them, on real connections: neither
    waits for the other, and the totals are right once all have committed."""

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = new_env(cr, SUPERUSER_ID, {"tracking_disable": True})
            self.company_id = env.company.id
            orgs = env["fayvad.mail.organization"]
            for n in range(2):
                partner = env["res.partner"].create({"name": f"Tally concurrency {n}"})
                org = orgs.create({"name": f"Concurrent {n}", "partner_id": partner.id, "max_users": 50})
                env["fayvad.mail.domain"].create(
                    {"name": f"tally-concurrent-{n}.example", "organization_id": org.id}
                )
                orgs |= org
            self.org_ids = orgs.ids
            self.before = kept(cr, self.company_id)
        self.addCleanup(delete_committed, self.registry, self.org_ids)
        # committed events would leave the accounting sync a trigger other tests would find
        Event = type(self.env["fayvad.mail.billing.event"])
        self.startPatcher(patch.object(Event, "_trigger_sync", lambda self: None))

    def add(self, cr, org_id, n):
        env = new_env(cr, SUPERUSER_ID, {"tracking_disable": True})
        org = env["fayvad.mail.organization"].browse(org_id)
        env["fayvad.mail.account"].create(
            [
                {
                    "local_part": f"c{n}-{i}",
                    "domain_id": org.domain_ids.id,
                    "quota": 1024**2,
                    "state": "active",
                }
                for i in range(5)
            ]
        )
        env["fayvad.mail.billing.event"].create(
            {"organization_id": org_id, "event_type": "payment_received", "quantity": 1, "unit_price": 10}
        )
        env.flush_all()

    def test_concurrent_writers_do_not_wait_and_add_up(self):
        first = self.registry.cursor()
        second = self.registry.cursor()
        try:
            self.add(first, self.org_ids[0], 1)  # open, not committed
            second.execute("SET LOCAL lock_timeout = '3s'")  # waiting for the first would fail here
            self.add(second, self.org_ids[1], 2)
            second.commit()
            with self.registry.cursor() as fold:  # folds what it sees; the first's rows stay
                fold.execute("SET LOCAL lock_timeout = '3s'")
                env = new_env(fold, SUPERUSER_ID, {})
                env["fayvad.mail.tally"]._cron_compact()
            done = threading.Event()

            def third():
                with self.registry.cursor() as cr:
                    cr.execute("SET LOCAL lock_timeout = '3s'")
                    self.add(cr, self.org_ids[1], 3)
                done.set()

            worker = threading.Thread(target=third)
            worker.start()
            worker.join(10)
            self.assertTrue(done.is_set(), "a third writer waited for the open transaction")
            first.commit()
        finally:
            first.close()
            second.close()
        with self.registry.cursor() as cr:
            self.assertEqual(kept(cr, self.company_id), counted(cr, self.company_id))
            accounts = kept(cr, self.company_id)[1]
            self.assertEqual(accounts[:2], [self.before[1][0] + 15, self.before[1][1] + 15])
            env = new_env(cr, SUPERUSER_ID, {})
            env["fayvad.mail.tally"]._cron_compact()
            self.assertEqual(kept(cr, self.company_id), counted(cr, self.company_id))
            cr.execute(
                SQL(
                    "SELECT max(date) FROM fayvad_mail_billing_event WHERE organization_id IN %s",
                    tuple(self.org_ids),
                )
            )
            day = f"{cr.fetchone()[0]} "  # the events' day (the user's, which may be tomorrow in UTC)
            revenue = {k: v for k, v in kept(cr, self.company_id)[2].items() if k.startswith(day)}
            before = {k: v for k, v in self.before[2].items() if k.startswith(day)}
            key = next(k for k in revenue if k.endswith("payment_received"))
            self.assertEqual(revenue[key], round(before.get(key, 0) + 30, 2))
