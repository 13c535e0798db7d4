import os
from unittest.mock import MagicMock, patch

from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import config, mute_logger

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
        for secret in ("token", "doveadm_key"):
            with self.assertRaises(AccessError):
                server.read([secret])
            with self.assertRaises(AccessError):
                server.export_data([secret])
        fields = self.env["fayvad.mail.server"].with_user(self.accountant).fields_get()
        self.assertFalse({"token", "doveadm_key"} & set(fields))
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
        # the doveadm key likewise, and writing one secret leaves the other as it was
        server.doveadm_key = "d" * 32
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT token_encrypted, doveadm_key_encrypted FROM fayvad_mail_server WHERE id = %s", [server.id]
        )
        token_stored, key_stored = self.env.cr.fetchone()
        self.assertEqual(token_stored, stored)
        self.assertNotIn("d" * 32, key_stored)
        server.invalidate_recordset()
        self.assertEqual((server.token, server.doveadm_key), ("t" * 40, "d" * 32))
        # a database of the version that kept the token in clear
        self.env.cr.execute("ALTER TABLE fayvad_mail_server ADD COLUMN token varchar")
        self.env.cr.execute(
            "UPDATE fayvad_mail_server SET token = 'old-clear-token-0123456789', token_encrypted = NULL WHERE id = %s",
            [server.id],
        )
        self.env["fayvad.mail.vault"]._encrypt_clear_columns()  # what migrations/18.0.1.1.0 runs
        self.env.cr.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'fayvad_mail_server' AND column_name = 'token'"
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0, "the clear column is dropped")
        self.env.invalidate_all()
        self.assertEqual(server.token, "old-clear-token-0123456789", "its value moved, encrypted")
        self.env.cr.execute("SELECT token_encrypted FROM fayvad_mail_server WHERE id = %s", [server.id])
        self.assertNotIn("old-clear-token", self.env.cr.fetchone()[0])


@tagged("post_install", "-at_install")
class TestVaultKey(FayvadMailCase):
    """The key of the secrets at rest comes from the server's configuration,
    never from the database: a dump alone reveals nothing."""

    KEY_A = "first-vault-key-" + "a" * 32
    KEY_B = "second-vault-key-" + "b" * 32

    def keys(self, current, old=None):
        options = {"fayvad_mail_vault_key": current, "fayvad_mail_vault_old_keys": old}
        return patch.dict(config.options, options)

    def stored(self, server, account):
        self.env.flush_all()
        self.env.cr.execute("SELECT token_encrypted FROM fayvad_mail_server WHERE id = %s", [server.id])
        token = self.env.cr.fetchone()[0]
        self.env.cr.execute("SELECT pending_password FROM fayvad_mail_account WHERE id = %s", [account.id])
        return token, self.env.cr.fetchone()[0]

    def test_no_key_or_a_wrong_key_is_a_clear_error_never_an_empty_secret(self):
        with self.keys(self.KEY_A):
            server = self.env["fayvad.mail.server"].create(
                {"name": "V", "url": "http://127.0.0.1:9", "token": "tok-" * 10}
            )
        self.env.invalidate_all()
        with self.keys(None), patch.dict(os.environ, {"FAYVAD_MAIL_VAULT_KEY": ""}):
            with self.assertRaisesRegex(UserError, "fayvad_mail_vault_key"):
                self.env["fayvad.mail.server"].create(
                    {"name": "W", "url": "http://127.0.0.1:9", "token": "x" * 40}
                )
            with self.assertRaisesRegex(UserError, "fayvad_mail_vault_key"):
                server.sudo().token  # noqa: B018
        self.env.invalidate_all()
        with self.keys(self.KEY_B), self.assertRaisesRegex(UserError, "cannot be decrypted"):
            server.sudo().token  # noqa: B018
        self.env.invalidate_all()
        # the database's own secret plays no part: a copied database with another one reads the same
        self.env["ir.config_parameter"].sudo().set_param("database.secret", "another-database-secret")
        with self.keys(self.KEY_A):
            self.assertEqual(server.sudo().token, "tok-" * 10)
        with (
            patch.dict(config.options, {"fayvad_mail_vault_key": None}),
            patch.dict(os.environ, {"FAYVAD_MAIL_VAULT_KEY": self.KEY_A}),
        ):
            self.env.invalidate_all()
            self.assertEqual(server.sudo().token, "tok-" * 10, "the environment variable works too")

    def test_rotation_encrypts_every_secret_again_with_the_new_key(self):
        with self.keys(self.KEY_A):
            server = self.env["fayvad.mail.server"].create(
                {"name": "V", "url": "http://127.0.0.1:9", "token": "tok-" * 10}
            )
            secret = self.env["fayvad.mail.webhook.secret"].create({"secret": "webhook-secret-" + "w" * 24})
            org = self.make_org(domain="vault.example")
            account = self.make_account(org, "rotated")
            account._set_pending_password("Pending-Passw0rd")
            before = self.stored(server, account)
        self.env.invalidate_all()
        # during the rotation the old keys read too (this database's other secrets are under ./dev's key)
        with self.keys(self.KEY_B, f"{self.KEY_A},{config['fayvad_mail_vault_key']}"):
            self.assertEqual(server.sudo().token, "tok-" * 10)
            self.assertGreaterEqual(self.env["fayvad.mail.vault"]._rotate(), 3)
            after = self.stored(server, account)
            self.assertTrue(all(new != old for new, old in zip(after, before, strict=True)))
        self.env.invalidate_all()
        with self.keys(self.KEY_B):  # the old key is gone: everything reads with the new one
            self.assertEqual(server.sudo().token, "tok-" * 10)
            self.assertEqual(secret.sudo().secret, "webhook-secret-" + "w" * 24)
            self.assertEqual(account._get_pending_password(), "Pending-Passw0rd")
        self.env.invalidate_all()
        with self.keys(self.KEY_A), self.assertRaises(UserError):
            server.sudo().token  # noqa: B018


@tagged("post_install", "-at_install")
class TestRolesInMethods(FayvadMailCase):
    """Who may do what is checked by each action itself, not only by the
    views: the same call by RPC is refused (README, "Roles")."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.org = cls.make_org(domain="roles.example", state="active")
        cls.org.domain_ids.state = "active"
        cls.account = cls.make_account(cls.org, "someone", state="active")
        cls.job = cls.env["fayvad.mail.job"]._enqueue("set_quota", account=cls.account)
        cls.reader = cls.make_user("roles_reader", "user")
        cls.accountant = cls.make_user("roles_accountant", "accountant")

    @mute_logger("odoo.models", "odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_each_action_checks_its_role_in_its_method(self):
        client_calls = []
        Server = type(self.env["fayvad.mail.server"])
        with patch.object(Server, "_client", lambda s, deadline=None: client_calls.append(s) or MagicMock()):
            refused = {
                self.reader: [
                    lambda env: env["fayvad.mail.organization"].browse(self.org.id).action_check_drift(),
                    lambda env: env["fayvad.mail.server"].browse(self.server.id).action_check_drift(),
                    lambda env: env["fayvad.mail.server"].browse(self.server.id).action_check_connection(),
                    lambda env: env["fayvad.mail.organization"].browse(self.org.id).action_suspend(),
                    lambda env: env["fayvad.mail.account"].browse(self.account.id).action_suspend(),
                    lambda env: env["fayvad.mail.organization"].browse(self.org.id).action_terminate(),
                    lambda env: env["fayvad.mail.job"].browse(self.job.id).action_run_now(),
                ],
                self.accountant: [
                    lambda env: env["fayvad.mail.job"].browse(self.job.id).action_retry(),
                    lambda env: env["fayvad.mail.job"].browse(self.job.id).action_cancel(),
                    lambda env: env["fayvad.mail.server"].browse(self.server.id).action_check_connection(),
                    lambda env: env["fayvad.mail.organization"].browse(self.org.id).action_provision(),
                ],
            }
            for user, calls in refused.items():
                for i, call in enumerate(calls):
                    with self.subTest(user=user.login, call=i), self.assertRaises(AccessError):
                        call(self.env(user=user))
        self.assertFalse(client_calls, "no mail server was called")
        self.assertEqual(
            (self.org.state, self.account.state, self.job.state), ("active", "active", "pending")
        )
        # an accountant suspends and lifts, and checks for drift
        self.org.with_user(self.accountant).action_suspend()
        self.assertEqual(self.org.state, "suspended")
        self.org.with_user(self.accountant).action_unsuspend()
        self.assertEqual(self.org.state, "active")

    def test_portal_users_cannot_read_internal_error_texts(self):
        self.org.sudo().write(
            {"cron_error": "Renewal: psycopg2 row 42 of res_partner", "cron_error_date": "2026-01-01"}
        )
        portal = new_test_user(self.env, login="roles_portal", groups="base.group_portal")
        portal.partner_id.parent_id = self.org.partner_id
        org = self.env["fayvad.mail.organization"].with_user(portal).browse(self.org.id)
        self.assertEqual(org.name, "Org", "the portal user reads its organization")
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            org.read(["cron_error"])
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            org.read(["cron_error_date"])
        self.assertNotIn("cron_error", org.fields_get())


@tagged("post_install", "-at_install")
class TestRolesOverRpc(HttpCase):
    @mute_logger("odoo.http")
    def test_read_only_user_cannot_start_a_drift_check_by_rpc(self):
        """As the web client or a script calls it, over Odoo's real HTTP stack."""
        server = self.env["fayvad.mail.server"].create(
            {"name": "RPC", "url": "http://127.0.0.1:9", "token": "x"}
        )
        partner = self.env["res.partner"].create({"name": "RPC customer"})
        org = self.env["fayvad.mail.organization"].create(
            {"name": "RPC", "partner_id": partner.id, "mail_server_id": server.id}
        )
        new_test_user(
            self.env,
            login="rpc_reader",
            password="rpc_reader_pw",
            groups="base.group_user,fayvad_mail.fayvad_mail_group_user",
        )
        self.authenticate("rpc_reader", "rpc_reader_pw")
        Server = type(self.env["fayvad.mail.server"])
        with patch.object(Server, "_client", side_effect=AssertionError("the mail server was called")):
            for model, record in (("fayvad.mail.organization", org), ("fayvad.mail.server", server)):
                with self.subTest(model=model), self.assertRaises(JsonRpcException) as caught:
                    self.make_jsonrpc_request(
                        f"/web/dataset/call_kw/{model}/action_check_drift",
                        {"model": model, "method": "action_check_drift", "args": [record.ids], "kwargs": {}},
                    )
                self.assertEqual(caught.exception.args[0], "odoo.exceptions.AccessError")
        self.assertFalse(self.env["fayvad.mail.drift"].search([("server_id", "=", server.id)]))
