"""The rules of aliases, catch-alls and forwards in Odoo (no mail server)."""

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import FayvadMailCase


@tagged("post_install", "-at_install")
class TestAliases(FayvadMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.org = cls.make_org(name="Alias Org", domain="aliases.example", max_aliases=2)
        cls.domain = cls.org.domain_ids
        cls.alice = cls.make_account(cls.org, "alice", quota_mb=100)

    def alias(self, local="sales", recipients="someone@example.com", **vals):
        return self.env["fayvad.mail.alias"].create(
            {"local_part": local, "domain_id": self.domain.id, "recipients": recipients, **vals}
        )

    def test_addresses_and_recipients_are_normalised(self):
        alias = self.alias(" Sales.Team ", "Boss@Example.COM, boss@example.com\n  ops@bücher.example ")
        self.assertEqual(alias.address, "sales.team@aliases.example")
        self.assertEqual(alias.recipients, "boss@example.com\nops@xn--bcher-kva.example")
        self.assertEqual(alias.organization_id, self.org)
        catchall = self.alias(kind="catchall", local="ignored")
        self.assertEqual(catchall.address, "@aliases.example")
        forward = self.env["fayvad.mail.alias"].create(
            {"kind": "forward", "account_id": self.alice.id, "recipients": "alice@home.example"}
        )
        self.assertEqual((forward.address, forward.domain_id), ("alice@aliases.example", self.domain))
        self.assertEqual(forward._recipient_list(), ["alice@home.example", "alice@aliases.example"])

    def test_bad_input_is_refused(self):
        for local, recipients, message in (
            ("no spaces", "a@example.com", "not a valid local part"),
            ("domainadmin", "a@example.com", "reserved"),
            ("ok", "", "at least one recipient"),
            ("ok", "not-an-address", "not an e-mail address"),
            ("ok", "a@b@example.com", "not an e-mail address"),
            ("ok", "a@-bad-.example", "invalid label"),
        ):
            with (
                self.subTest(local=local, recipients=recipients),
                self.assertRefused(ValidationError, message),
            ):
                self.alias(local, recipients)
        self.assertFalse(self.env["fayvad.mail.alias"].search([("domain_id", "=", self.domain.id)]))

    def test_no_address_is_taken_twice(self):
        self.alias("sales")
        with self.assertRefused(Exception):
            self.alias("sales")
        with self.assertRefused(ValidationError, "a mailbox's address"):
            self.alias("alice")
        self.alias(kind="catchall")
        with self.assertRefused(Exception):
            self.alias(kind="catchall")
        with self.assertRefused(ValidationError, "an alias's address"):
            self.make_account(self.org, "sales", quota_mb=10)

    def test_plan_limit_counts_aliases_and_catchalls_not_forwards(self):
        self.alias("one")
        self.alias(kind="catchall")
        with self.assertRefused(ValidationError, "at most 2 aliases"):
            self.alias("three")
        forward = self.env["fayvad.mail.alias"].create(
            {"kind": "forward", "account_id": self.alice.id, "recipients": "alice@home.example"}
        )
        self.assertTrue(forward)
        self.env["fayvad.mail.alias"].search([("local_part", "=", "one")]).action_delete()
        self.assertTrue(self.alias("three"), "a deleted alias frees its place")

    def test_changes_queue_jobs_and_the_address_is_fixed_once_on_the_server(self):
        alias = self.alias()
        alias.action_provision()
        Job = self.env["fayvad.mail.job"]
        create = Job.search([("alias_id", "=", alias.id)])
        self.assertEqual(create.job_type, "create_alias")
        self.assertEqual(alias.state, "provisioning")
        alias.state = "active"
        alias.write({"recipients": "other@example.com", "enabled": False})
        self.assertEqual(
            Job.search([("alias_id", "=", alias.id), ("job_type", "=", "update_alias")]).state, "pending"
        )
        alias.write({"description": "again"})  # the pending job covers it
        self.assertEqual(
            Job.search_count([("alias_id", "=", alias.id), ("job_type", "=", "update_alias")]), 1
        )
        with self.assertRefused(ValidationError, "cannot change its address"):
            alias.local_part = "renamed"
        alias.action_delete()
        self.assertEqual((alias.state, alias.active), ("terminated", False))
        self.assertTrue(Job.search([("alias_id", "=", alias.id), ("job_type", "=", "delete_alias")]))

    def test_a_deleted_mailbox_takes_its_forward_with_it(self):
        forward = self.env["fayvad.mail.alias"].create(
            {"kind": "forward", "account_id": self.alice.id, "recipients": "alice@home.example"}
        )
        forward.action_provision()
        self.alice.state = "active"
        self.alice.action_terminate()
        self.assertEqual(forward.state, "terminated")
