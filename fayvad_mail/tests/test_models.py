from psycopg2 import IntegrityError

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.tests.common import FayvadMailCase
from odoo.addons.fayvad_mail.tools.units import GB, MB


@tagged("post_install", "-at_install")
class TestConstraints(FayvadMailCase):
    def assertRefusedByDatabase(self, create, *args, **kwargs):
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"), self.env.cr.savepoint():
            create(*args, **kwargs)
            self.env.flush_all()

    def test_one_organization_per_customer(self):
        org = self.make_org(domain="first.example")
        self.assertRefusedByDatabase(
            self.make_org, name="Other", domain="second.example", partner=org.partner_id
        )

    def test_domain_unique_after_normalisation(self):
        self.make_org(domain="unique-test.example")
        self.assertRefusedByDatabase(self.make_org, name="Copy", domain="UNIQUE-test.example.")

    def test_address_unique(self):
        org = self.make_org()
        self.make_account(org, "john")
        self.assertRefusedByDatabase(self.make_account, org, "John")

    def test_limits_must_be_positive(self):
        for field in ("max_users", "max_storage_gb", "default_mailbox_quota_mb"):
            for value in (0, -3):
                with self.subTest(field=field, value=value):
                    self.assertRefusedByDatabase(self.make_org, name="Bad", domain=None, **{field: value})
        for field in ("max_users", "max_storage_gb"):
            with self.subTest(plan_field=field):
                self.assertRefusedByDatabase(self.env["fayvad.mail.plan"].create, {"name": "Bad", field: 0})
        self.assertRefusedByDatabase(
            self.env["fayvad.mail.plan"].create, {"name": "Bad", "monthly_price": -1}
        )

    def test_quota_at_least_one_megabyte(self):
        org = self.make_org()
        self.assertRefusedByDatabase(
            self.env["fayvad.mail.account"].create,
            {"local_part": "tiny", "domain_id": org.domain_ids.id, "quota": MB - 1},
        )
        account = self.make_account(org, "ok", quota_mb=1)
        self.assertEqual(account.quota, MB)

    def test_max_users_enforced(self):
        org = self.make_org(max_users=2)
        self.make_account(org, "a")
        self.make_account(org, "b")
        with self.assertRefused(ValidationError, "allows at most 2 email accounts"):
            self.make_account(org, "c")
        self.assertEqual(org.user_count, 2)

    def test_max_storage_enforced_on_sum_of_quotas(self):
        org = self.make_org(max_storage_gb=3)
        self.make_account(org, "a", quota_mb=2000)  # 2.097 GB
        with self.assertRefused(ValidationError, "more than its 3 GB"):
            self.make_account(org, "b", quota_mb=1000)
        account = self.make_account(org, "c", quota_mb=800)  # 2.936 GB in all: fits
        with self.assertRefused(ValidationError, "more than its 3 GB"):
            account.quota_mb = 900

    def test_lowering_limits_below_usage_is_refused(self):
        org = self.make_org()
        self.make_account(org, "a")
        self.make_account(org, "b")
        with self.assertRefused(ValidationError, "limit of 1 users is reached"):
            org.max_users = 1
        with self.assertRefused(ValidationError, "add up to 2.15 GB, more than its 1 GB"):
            org.max_storage_gb = 1

    def test_suspended_organization_accepts_no_accounts(self):
        org = self.make_org()
        org.write({"state": "suspended", "suspension_reason": "manual"})
        with self.assertRefused(ValidationError, "accepts no new email accounts"):
            self.make_account(org, "late")

    def test_plan_included_users_within_max(self):
        with self.assertRefused(ValidationError, "includes 9 users but allows only 5"):
            self.env["fayvad.mail.plan"].create({"name": "Odd", "included_users": 9, "max_users": 5})

    def test_invalid_names_are_refused(self):
        org = self.make_org()
        for bad in ("localhost", "-bad.example", "bad..example", "under_score.example", "a.123", ""):
            with self.subTest(domain=bad), self.assertRefused(ValidationError):
                self.env["fayvad.mail.domain"].create({"name": bad, "organization_id": org.id})
        for bad in ("john doe", ".john", "john.", "jo..hn", "a" * 65, "j@hn"):
            with self.subTest(local=bad), self.assertRefused(ValidationError):
                self.make_account(org, bad)

    def test_renaming_a_provisioned_domain_is_refused(self):
        org = self.make_org()
        org.domain_ids.state = "active"
        with self.assertRefused(ValidationError, "cannot be renamed"):
            org.domain_ids.name = "other.example"


@tagged("post_install", "-at_install")
class TestNormalisation(FayvadMailCase):
    def test_domain_normalised(self):
        org = self.make_org(domain=None)
        Domain = self.env["fayvad.mail.domain"]
        cases = {
            "Example.COM.": "example.com",
            "  mail.Example.org ": "mail.example.org",
            "bücher.example": "xn--bcher-kva.example",
            "ПРИМЕР.рф": "xn--e1afmkfd.xn--p1ai",
        }
        for given, expected in cases.items():
            with self.subTest(given=given):
                domain = Domain.create({"name": given, "organization_id": org.id})
                self.assertEqual(domain.name, expected)
                domain.unlink()

    def test_address_lower_case_and_full_email(self):
        org = self.make_org(domain="Shop.Example")
        account = self.make_account(org, "John.Doe")
        self.assertEqual(account.local_part, "john.doe")
        self.assertEqual(account.email, "john.doe@shop.example")
        self.assertEqual(account.display_name, "john.doe@shop.example")

    def test_default_quota_from_organization(self):
        org = self.make_org(default_mailbox_quota_mb=300)
        account = self.env["fayvad.mail.account"].create({"local_part": "x", "domain_id": org.domain_ids.id})
        self.assertEqual(account.quota, 300 * MB)
        self.assertEqual(account.quota_mb, 300)


@tagged("post_install", "-at_install")
class TestComputed(FayvadMailCase):
    def test_counts_storage_and_percentages(self):
        org = self.make_org(max_storage_gb=10)
        a = self.make_account(org, "a", quota_mb=2000, state="active")
        b = self.make_account(org, "b", quota_mb=1000, state="active")
        c = self.make_account(org, "c", quota_mb=1000, state="suspended")
        self.make_account(org, "d", quota_mb=500)  # draft: not on the server yet
        Snapshot = self.env["fayvad.mail.usage.snapshot"]
        Snapshot._record(a, 1_500_000_000)
        Snapshot._record(b, 250_000_000)
        Snapshot._record(c, 0)
        self.assertEqual(org.user_count, 4)
        self.assertEqual(org.active_user_count, 2)
        self.assertEqual(org.storage_used, 1_750_000_000)
        self.assertEqual(org.storage_used_gb, 1.75)
        self.assertEqual(org.storage_percent, 17.5)  # 1.75 GB of 10 GB
        self.assertEqual(org.quota_allocated, 4500 * MB)
        self.assertAlmostEqual(a.storage_percent, round(1_500_000_000 * 100 / (2000 * MB), 2))
        self.assertEqual(b.storage_used_mb, round(250_000_000 / MB, 1))
        # terminated accounts no longer count
        b.action_terminate()
        self.assertEqual(org.user_count, 3)
        self.assertEqual(org.active_user_count, 1)
        self.assertEqual(org.storage_used, 1_500_000_000)

    def test_latest_snapshot_wins_and_older_do_not_override(self):
        org = self.make_org()
        account = self.make_account(org, "a", state="active")
        Snapshot = self.env["fayvad.mail.usage.snapshot"]
        Snapshot._record(account, 300, date="2026-11-20")
        Snapshot._record(account, 100, date="2026-11-10")  # a late reading of an earlier day
        self.assertEqual(account.storage_used, 300)
        Snapshot._record(account, 400, date="2026-11-20")  # same day read again: replaced
        self.assertEqual(Snapshot.search_count([("account_id", "=", account.id)]), 2)
        self.assertEqual(account.storage_used, 400)

    def test_big_quota_beyond_32_bits(self):
        org = self.make_org(max_storage_gb=50)
        account = self.make_account(org, "big", quota_mb=20 * 1024)  # 21 GB: over int4
        self.env["fayvad.mail.usage.snapshot"]._record(account, 5 * GB)
        account.invalidate_recordset()
        self.assertEqual(account.quota, 20 * 1024 * MB)
        self.assertEqual(org.storage_used, 5 * GB)

    def test_dns_records_follow_the_domain(self):
        org = self.make_org(domain="dns.example")
        domain = org.domain_ids
        records = {r.purpose: r for r in domain.dns_record_ids}
        self.assertEqual(records["mx"].value, "mx.test.example.")
        self.assertEqual(records["spf"].value, "v=spf1 mx ~all")
        self.assertEqual(records["dmarc"].name, "_dmarc.dns.example.")
        self.assertEqual(records["dkim"].status, "waiting")
        key = "A" * 300
        domain.dkim_public_key = key
        dkim = domain.dns_record_ids.filtered(lambda r: r.purpose == "dkim")
        self.assertEqual(dkim.name, "modoboa._domainkey.dns.example.")
        self.assertEqual(dkim.value, f"v=DKIM1;k=rsa;p={key}")
        self.assertEqual(dkim.status, "to_publish")
        self.assertIn('" "', dkim.zone_line)  # long TXT split in 255-character strings
