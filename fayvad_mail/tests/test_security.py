from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.tests.common import FayvadMailCase


@tagged("post_install", "-at_install")
class TestAccess(FayvadMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.org = cls.make_org(domain="access.example")
        cls.account = cls.make_account(cls.org, "someone")
        cls.secret = cls.env["fayvad.mail.webhook.secret"].create(
            {"secret": "s3cr3t-value-for-tests-0123456789"}
        )
        cls.reader = cls.make_user("fm_reader", "user")
        cls.accountant = cls.make_user("fm_accountant", "accountant")
        cls.accountant.groups_id += cls.env.ref("base.group_allow_export")
        cls.admin = cls.make_user("fm_admin", "admin")
        cls.outsider = cls.make_user("fm_outsider")

    @mute_logger("odoo.models", "odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_user_reads_but_cannot_write(self):
        org = self.org.with_user(self.reader)
        self.assertEqual(org.name, "Org")
        self.assertEqual(org.account_ids.email, "someone@access.example")
        with self.assertRaises(AccessError):
            org.name = "Renamed"
        with self.assertRaises(AccessError):
            self.env["fayvad.mail.account"].with_user(self.reader).create(
                {"local_part": "new", "domain_id": self.org.domain_ids.id}
            )
        with self.assertRaises(AccessError):
            self.env["fayvad.mail.billing.event"].with_user(self.reader).create(
                {"organization_id": self.org.id, "event_type": "refund"}
            )

    @mute_logger("odoo.models", "odoo.addons.base.models.ir_model")
    def test_outsider_sees_nothing(self):
        with self.assertRaises(AccessError):
            self.org.with_user(self.outsider).read(["name"])

    def test_accountant_manages_billing(self):
        event = (
            self.env["fayvad.mail.billing.event"]
            .with_user(self.accountant)
            .create(
                {"organization_id": self.org.id, "event_type": "user_added", "quantity": 2, "unit_price": 5}
            )
        )
        self.assertEqual(event.amount, 10)
        self.org.with_user(self.accountant).name = "Renamed by accounting"

    @mute_logger("odoo.models", "odoo.addons.base.models.ir_model", "odoo.fields")
    def test_accountant_never_reads_secrets(self):
        with self.assertRaises(AccessError):
            self.secret.with_user(self.accountant).read(["secret"])
        with self.assertRaises(AccessError):
            self.env["fayvad.mail.webhook.secret"].with_user(self.accountant).search_read([], ["secret"])
        server = self.server.with_user(self.accountant)
        self.assertEqual(server.name, "Test server")
        with self.assertRaises(AccessError):
            server.read(["token"])
        with self.assertRaises(AccessError):
            server.export_data(["token"])
        fields = self.env["fayvad.mail.server"].with_user(self.accountant).fields_get()
        self.assertNotIn("token", fields)
        org_fields = self.env["fayvad.mail.organization"].with_user(self.accountant).fields_get()
        self.assertNotIn("webhook_secret_ids", org_fields)

    def test_admin_reads_secrets(self):
        self.assertEqual(self.secret.with_user(self.admin).secret, "s3cr3t-value-for-tests-0123456789")
        self.assertEqual(self.server.with_user(self.admin).token, "t" * 40)

    def test_password_column_is_not_a_field(self):
        self.account._set_pending_password("Hunter2-Hunter2")
        self.assertNotIn("pending_password", self.env["fayvad.mail.account"]._fields)
        data = self.account.with_user(self.admin).read()[0]
        self.assertNotIn("Hunter2-Hunter2", repr(data))
        self.assertEqual(self.account._get_pending_password(), "Hunter2-Hunter2")
        self.account._wipe_pending_password()
        self.assertIsNone(self.account._get_pending_password())


@tagged("post_install", "-at_install")
class TestMultiCompany(FayvadMailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        cls.org_a = cls.make_org(name="Org A", domain="a.example")
        cls.org_b = cls.make_org(
            name="Org B",
            domain="b.example",
            company_id=cls.company_b.id,
            plan=cls.env["fayvad.mail.plan"],
            mail_server_id=False,
        )
        cls.make_account(cls.org_b, "bob")
        cls.user_a = cls.make_user("fm_company_a", "admin")

    def test_company_a_cannot_see_company_b(self):
        Org = self.env["fayvad.mail.organization"].with_user(self.user_a)
        self.assertEqual(Org.search([("name", "in", ("Org A", "Org B"))]), self.org_a)
        self.assertFalse(
            self.env["fayvad.mail.account"].with_user(self.user_a).search([("email", "=", "bob@b.example")])
        )
        self.assertFalse(
            self.env["fayvad.mail.domain"].with_user(self.user_a).search([("name", "=", "b.example")])
        )
        with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
            self.org_b.with_user(self.user_a).read(["name"])


@tagged("post_install", "-at_install")
class TestSecretsAtRest(FayvadMailCase):
    def test_secrets_are_ciphertext_in_the_database_and_clear_columns_are_migrated(self):
        server = self.env["fayvad.mail.server"].create(
            {
                "name": "Vault test",
                "url": "http://127.0.0.1:9",
                "token": "t" * 40,
                "mail_host": "mx.vault.example",
            }
        )
        self.env.flush_all()
        self.env.cr.execute("SELECT token_encrypted FROM fayvad_mail_server WHERE id = %s", [server.id])
        stored = self.env.cr.fetchone()[0]
        self.assertNotIn("t" * 40, stored)
        self.assertEqual(server.token, "t" * 40)
        # a database of the version that kept the token in clear
        self.env.cr.execute("ALTER TABLE fayvad_mail_server ADD COLUMN token varchar")
        self.env.cr.execute(
            "UPDATE fayvad_mail_server SET token = 'old-clear-token-0123456789', token_encrypted = NULL WHERE id = %s",
            [server.id],
        )
        self.env["fayvad.mail.server"].init()
        self.env.cr.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'fayvad_mail_server' AND column_name = 'token'"
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0, "the clear column is dropped")
        self.env.invalidate_all()
        self.assertEqual(server.token, "old-clear-token-0123456789", "its value moved, encrypted")
        self.env.cr.execute("SELECT token_encrypted FROM fayvad_mail_server WHERE id = %s", [server.id])
        self.assertNotIn("old-clear-token", self.env.cr.fetchone()[0])
