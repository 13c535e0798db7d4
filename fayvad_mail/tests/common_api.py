"""Fixtures of the HTTP API tests: a user of the ERP API group with a key of
the addon's scope, and a JSON client going through Odoo's real HTTP stack."""

import json
import os
import re
from urllib.parse import urlsplit

from odoo.tests import HttpCase, new_test_user
from odoo.tests.common import BlockedRequest, _super_send

from odoo.addons.fayvad_mail.models.res_users import API_KEY_SCOPE
from odoo.addons.fayvad_mail.tools.signature import sign

SECRET_PATTERNS = [
    re.compile(p) for p in (r"Traceback \(most recent call last\)", r"<html", r"psycopg2", r"SELECT .* FROM")
]


class ApiCase(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api_user = new_test_user(
            cls.env, login="erp_api_bot", groups="base.group_user,fayvad_mail.fayvad_mail_group_api"
        )
        cls.api_key = cls.new_key(cls.api_user)
        cls.plan = cls.env["fayvad.mail.plan"].create(
            {
                "name": "API Plan",
                "monthly_price": 99.99,
                "included_users": 2,
                "price_per_extra_user": 5.0,
                "max_users": 20,
                "max_storage_gb": 40,
                "default_mailbox_quota_mb": 100,
            }
        )
        cls.customer = cls.env["res.partner"].create({"name": "API Customer", "is_company": True})
        url = os.environ.get("FAYVAD_TEST_MODOBOA_URL")
        cls.server = cls.env["fayvad.mail.server"].create(
            {
                "name": "API test server",
                "url": url or "http://127.0.0.1:9",
                "token": os.environ.get("FAYVAD_TEST_MODOBOA_TOKEN", "x" * 40),
                "mail_host": "mx.api.example",
                "sequence": 0,
                "read_timeout": 10,
            }
        )

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        """Requests to 127.0.0.1 (the test Modoboa) keep the client's own
        (connect, read) timeouts; anything else stays blocked."""
        if urlsplit(r.url).hostname in ("127.0.0.1", "localhost"):
            return _super_send(s, r, **kw)
        raise BlockedRequest(f"External requests verboten (was {r.method} {r.url})")

    @classmethod
    def new_key(cls, user, scope=API_KEY_SCOPE, expiration=None):
        return cls.env["res.users.apikeys"].with_user(user).sudo()._generate(scope, "test key", expiration)

    def api(self, method, path, body=None, key=None, headers=None, raw=None, prefix="/fayvad_api/erp"):
        """Call the API; returns (status, decoded JSON, response). Every answer
        must be JSON and free of tracebacks, HTML and SQL."""
        all_headers = {"Content-Type": "application/json"}
        if key is not False:
            all_headers["Authorization"] = f"Token {key or self.api_key}"
        all_headers.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = self.opener.request(
            method,
            f"{self.base_url()}{prefix}{path}",
            data=data,
            headers=all_headers,
            timeout=60,
            allow_redirects=False,
        )
        self.assertEqual(
            response.headers.get("Content-Type", "").split(";")[0], "application/json", response.text
        )
        for pattern in SECRET_PATTERNS:
            self.assertNotRegex(response.text, pattern)
        return response.status_code, response.json(), response

    def assertApiError(self, answer, status, code, *fields):
        got_status, body, _response = answer
        self.assertEqual((got_status, body.get("error_code")), (status, code), body)
        self.assertIsInstance(body.get("error"), str)
        for field in fields:
            self.assertIn(field, body.get("details", {}), body)
        return body

    def signed(self, secret, payload):
        raw = json.dumps(payload).encode()
        return raw, {"X-Webhook-Signature": sign(secret, raw)}
