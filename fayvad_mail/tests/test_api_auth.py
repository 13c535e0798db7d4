import xmlrpc.client
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.models import res_users_apikeys
from odoo.addons.fayvad_mail.tests.common import ApiCase


@tagged("post_install", "-at_install")
class TestApiAuthentication(ApiCase):
    def assertUnauthorized(self, answer):
        self.assertApiError(answer, 401, "AUTHENTICATION_FAILED")
        self.assertEqual(answer[2].headers.get("WWW-Authenticate"), "Token")

    def test_matrix(self):
        outsider = new_test_user(self.env, login="not_in_api_group", groups="base.group_user")
        expired_key = self.new_key(self.api_user, expiration=datetime.now() - timedelta(days=1))
        revoked_key = self.new_key(self.api_user)
        self.env.cr.execute(
            "DELETE FROM res_users_apikeys WHERE id = (SELECT max(id) FROM res_users_apikeys)"
        )
        other_scope_key = self.new_key(self.api_user, scope="odoo.plugin.outlook")
        global_rpc_key = self.new_key(self.api_user, scope=None)
        outsider_key = self.new_key(outsider)

        cases = {
            "no header": {"Authorization": ""},
            "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
            "empty token": {"Authorization": "Token "},
            "unknown key": {"Authorization": "Token " + "0" * 40},
            "expired key": {"Authorization": f"Token {expired_key}"},
            "revoked key": {"Authorization": f"Token {revoked_key}"},
            "another scope": {"Authorization": f"Token {other_scope_key}"},
            "global RPC key": {"Authorization": f"Token {global_rpc_key}"},
        }
        for label, headers in cases.items():
            with self.subTest(label):
                self.assertUnauthorized(self.api("GET", "/usage-summary/", key=False, headers=headers))
        self.assertApiError(self.api("GET", "/usage-summary/", key=outsider_key), 403, "PERMISSION_DENIED")
        for scheme in ("Token", "Bearer", "token"):
            with self.subTest(scheme=scheme):
                status, body, response = self.api(
                    "GET", "/usage-summary/", key=False, headers={"Authorization": f"{scheme} {self.api_key}"}
                )
                self.assertEqual(status, 200, body)
                self.assertNotIn("session_id", response.headers.get("Set-Cookie", ""))

    def test_archived_user_key_refused(self):
        user = new_test_user(
            self.env, login="api_archived", groups="base.group_user,fayvad_mail.fayvad_mail_group_api"
        )
        key = self.new_key(user)
        self.assertEqual(self.api("GET", "/usage-summary/", key=key)[0], 200)
        user.active = False
        self.assertUnauthorized(self.api("GET", "/usage-summary/", key=key))

    def test_a_key_is_hashed_once_and_refused_once_revoked(self):
        key = self.new_key(self.api_user)
        verified = []
        context = res_users_apikeys.KEY_CRYPT_CONTEXT

        class Counting:
            def verify(self, secret, hashed):
                verified.append(hashed)
                return context.verify(secret, hashed)

        with patch.object(res_users_apikeys, "KEY_CRYPT_CONTEXT", Counting()):
            for _request in range(3):
                self.assertEqual(self.api("GET", "/usage-summary/", key=key)[0], 200)
            self.assertEqual(len(verified), 1, "verified on the first request only")
            wrong = key[:8] + ("0" if key[8] != "0" else "1") + key[9:]  # same index, another key
            self.assertUnauthorized(self.api("GET", "/usage-summary/", key=wrong))
            self.env.cr.execute(
                "UPDATE res_users_apikeys SET expiration_date = now() - interval '1 minute' "
                "WHERE user_id = %s AND key = %s",
                [self.api_user.id, verified[0]],
            )
            self.assertUnauthorized(self.api("GET", "/usage-summary/", key=key))
            self.env.cr.execute("DELETE FROM res_users_apikeys WHERE key = %s", [verified[0]])
            self.assertUnauthorized(self.api("GET", "/usage-summary/", key=key))

    @mute_logger("odoo.addons.base.models.res_users", "odoo.http")
    def test_api_key_does_not_open_xmlrpc(self):
        common = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/common")
        uid = common.authenticate(self.env.cr.dbname, self.api_user.login, self.api_key, {})
        self.assertFalse(uid, "a fayvad_mail key must not log in through XML-RPC")
        global_key = self.new_key(self.api_user, scope=None)
        self.assertEqual(
            common.authenticate(self.env.cr.dbname, self.api_user.login, global_key, {}), self.api_user.id
        )

    def test_both_prefixes_and_slashes_never_redirect(self):
        for prefix in ("/fayvad_api/erp", "/erp"):
            for path in ("/usage-summary/", "/usage-summary"):
                with self.subTest(prefix=prefix, path=path):
                    status, _body, _response = self.api("GET", path, prefix=prefix)
                    self.assertEqual(status, 200)
        status, _body, _ = self.api("POST", "/provision/organization", {"organization_data": {}})
        self.assertEqual(status, 400)  # validated, not redirected

    def test_unknown_route_and_wrong_method(self):
        self.assertApiError(self.api("GET", "/nope/"), 404, "NOT_FOUND")
        self.assertApiError(self.api("GET", "/nope/", key=False), 404, "NOT_FOUND")
        self.assertApiError(self.api("GET", "/provision/organization/"), 405, "METHOD_NOT_ALLOWED")
        self.assertApiError(self.api("DELETE", "/usage-summary/"), 405, "METHOD_NOT_ALLOWED")
        answer = self.api("GET", "/webhooks/billing/", key=False)
        self.assertApiError(answer, 405, "METHOD_NOT_ALLOWED")
        self.assertEqual(answer[2].headers.get("Allow"), "POST")

    def test_settings_dialog_makes_a_scoped_key(self):
        # Odoo's "New API Key" dialog calls _generate(None, ...) in the context
        # set by the Mail Hosting settings button
        Keys = self.env["res.users.apikeys"].with_context(fayvad_erp_api_key=True)
        in_a_month = datetime.now() + timedelta(days=30)
        key = Keys.with_user(self.api_user)._generate(None, "ERP", in_a_month)
        self.assertEqual(self.api("GET", "/usage-summary/", key=key)[0], 200)
        common = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/common")
        with mute_logger("odoo.addons.base.models.res_users", "odoo.http"):
            self.assertFalse(common.authenticate(self.env.cr.dbname, self.api_user.login, key, {}))
        outsider = new_test_user(self.env, login="no_api_group", groups="base.group_user")
        with self.assertRaisesRegex(UserError, "ERP API group"):
            Keys.with_user(outsider)._generate(None, "ERP", in_a_month)

    def test_unexpected_error_is_json_without_traceback(self):
        Summary = type(self.env["fayvad.mail.usage.summary"])

        def explode(self, query, out):
            out.write(b'{"half an answer": ')
            raise RuntimeError("SELECT secret FROM somewhere; boom")

        with (
            patch.object(Summary, "_write_answer", explode),
            mute_logger("odoo.addons.fayvad_mail.models.ir_http"),
        ):
            status, body, response = self.api("GET", "/usage-summary/")
        self.assertEqual((status, body["error_code"]), (500, "INTERNAL_ERROR"))
        self.assertNotIn("boom", response.text)
        self.assertNotIn("RuntimeError", response.text)
