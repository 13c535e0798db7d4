"""The Modoboa client against answers recorded from a real Modoboa 2.12
(tests/data/modoboa/*.json): no network, the fake stands in for
``requests.Session.request``."""

import copy
import json
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests

from odoo.tests import TransactionCase, tagged

from odoo.addons.fayvad_mail.tools.mailserver import (
    BudgetSpent,
    DovecotStorage,
    NotFound,
    Refused,
    Unavailable,
    make_client,
)
from odoo.addons.fayvad_mail.tools.passwords import generate_password
from odoo.addons.fayvad_mail.tools.units import MB

DATA = Path(__file__).parent / "data" / "modoboa"
URL = "http://127.0.0.1:8999"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
PASSWORD = "Sup3r-Secret_Passw0rd!"


def recorded(name):
    """The recorded exchange NN_name.json (a deep copy)."""
    (path,) = DATA.glob(f"*_{name}.json")
    return copy.deepcopy(json.loads(path.read_text()))


def make_response(status, body=None, text=None, content_type="application/json"):
    response = requests.Response()
    response.status_code = status
    if text is not None:
        response._content = text.encode()
    else:
        response._content = b"" if body is None else json.dumps(body).encode()
    response.headers["Content-Type"] = content_type
    return response


class FakeSession:
    """Answers requests from a routing table (method, path, query) ->
    answers (consumed in order, the last one repeats), and records them."""

    def __init__(self):
        self.routes = {}
        self.calls = []

    def on(self, method, path, *answers, **query):
        self.routes[(method, path, frozenset(query.items()))] = list(answers)
        return self

    def on_recorded(self, name, *extra_answers):
        data = recorded(name)
        parts = urlsplit(data["path"])
        query = dict(parse_qsl(parts.query))
        return self.on(
            data["method"], parts.path, (data["status"], data["response"]), *extra_answers, **query
        )

    def request(self, method, url, json=None, params=None, headers=None, timeout=None, allow_redirects=True):
        parts = urlsplit(url)
        query = {k: str(v) for k, v in (params or {}).items() if k not in ("page", "page_size", "ordering")}
        self.calls.append(
            {
                "method": method,
                "path": parts.path,
                "query": query,
                "json": json,
                "timeout": timeout,
                "headers": headers,
            }
        )
        answers = self.routes.get((method, parts.path, frozenset(query.items())))
        if answers is None:
            raise AssertionError(f"unexpected request {method} {parts.path} {query}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, requests.Response):
            return answer
        status, body = answer
        return make_response(status, body)

    def sent(self, method, path):
        return [c for c in self.calls if c["method"] == method and c["path"] == path]


EMPTY_PAGE = (200, {"count": 0, "next": None, "previous": None, "results": []})


@tagged("post_install", "-at_install")
class TestModoboaClient(TransactionCase):
    def setUp(self):
        super().setUp()
        self.client = make_client("modoboa", URL, TOKEN, timeout=(3.0, 7.0))
        self.session = self.client._session = FakeSession()

    # -- the one request method: timeouts, typed errors ------------------------------
    def test_every_request_has_explicit_timeouts_and_the_token(self):
        self.session.on_recorded("get_domain")
        self.client.get_domain(1)
        (call,) = self.session.calls
        self.assertEqual(call["timeout"], (3.0, 7.0))
        self.assertEqual(call["headers"]["Authorization"], f"Token {TOKEN}")

    def test_a_deadline_cuts_every_calls_timeouts_then_stops_sending(self):
        self.client.deadline = time.monotonic() + 2.0
        self.session.on_recorded("get_domain")
        self.client.get_domain(1)
        connect, read = self.session.calls[-1]["timeout"]
        self.assertLessEqual(connect, 2.0)
        self.assertTrue(1.0 < read <= 2.0, read)  # what is left of the budget, not the 7 s configured
        self.client.deadline = time.monotonic() - 0.01
        with self.assertRaises(BudgetSpent) as caught:
            self.client.get_domain(1)
        self.assertTrue(caught.exception.retryable)
        self.assertEqual(len(self.session.calls), 1, "nothing sent once the budget is spent")

    def test_timeouts_and_connection_errors_are_retryable(self):
        for error in (
            requests.exceptions.ReadTimeout("read timed out"),
            requests.exceptions.ConnectTimeout("connect timed out"),
            requests.exceptions.ConnectionError("refused"),
            requests.exceptions.ChunkedEncodingError("cut"),
        ):
            with self.subTest(error=type(error).__name__):
                self.session.on("GET", "/api/v2/domains/1/", error)
                with self.assertRaises(Unavailable) as caught:
                    self.client.get_domain(1)
                self.assertTrue(caught.exception.retryable)
        self.session.on("GET", "/api/v2/domains/1/", requests.exceptions.ReadTimeout())
        with self.assertRaisesRegex(Unavailable, r"no answer within 7s"):
            self.client.get_domain(1)

    def test_server_errors_and_throttling_are_retryable(self):
        answers = {
            "json 500": make_response(500, {"detail": "Server error."}),
            "html 500": make_response(500, text="<h1>Server Error (500)</h1>", content_type="text/html"),
            "502": make_response(502, text="Bad Gateway", content_type="text/plain"),
            "429": make_response(429, {"detail": "Request was throttled."}),
        }
        for label, answer in answers.items():
            with self.subTest(label):
                self.session.on("GET", "/api/v2/domains/1/", answer)
                with self.assertRaises(Unavailable) as caught:
                    self.client.get_domain(1)
                self.assertTrue(caught.exception.retryable)
                self.assertEqual(caught.exception.status, answer.status_code)
        self.session.on("GET", "/api/v2/domains/1/", answers["html 500"])
        with self.assertRaisesRegex(Unavailable, r"Server Error \(500\)"):
            self.client.get_domain(1)

    def test_not_found(self):
        self.session.on_recorded("error_unknown_domain")
        with self.assertRaises(NotFound) as caught:
            self.client.get_domain(999999)
        self.assertFalse(caught.exception.retryable)
        self.assertEqual(caught.exception.status, 404)

    def test_refusals_carry_modoboa_reason(self):
        cases = {
            "error_account_over_domain_quota": "alpha.example.com: domain quota exceeded",
            "error_weak_password": "password: This password is too short",
            "error_duplicate_account": "username: user with this username already exists.",
        }
        for name, reason in cases.items():
            with self.subTest(name):
                self.session.routes.clear()
                data = recorded(name)
                self.session.on_recorded(name)
                with self.assertRaises(Refused) as caught:
                    self.client._request(data["method"], data["path"], data["request"])
                self.assertFalse(caught.exception.retryable)
                self.assertEqual(caught.exception.status, 400)
                self.assertIn(reason, caught.exception.reason)
                self.assertIn(reason, str(caught.exception))
        self.session.on_recorded("error_patch_account_quota_over_domain")
        with self.assertRaisesRegex(Refused, "domain quota exceeded"):
            self.client.update_mailbox(3, quota_mb=5000)

    def test_a_bad_token_is_refused(self):
        self.session.on_recorded("error_invalid_token")
        with self.assertRaisesRegex(Refused, r"refused the token \(HTTP 401\)") as caught:
            self.client.check()
        self.assertEqual(caught.exception.reason, "Invalid token.")

    def test_redirect_is_refused(self):
        self.session.on("GET", "/api/v2/domains/1/", make_response(301, text="", content_type="text/html"))
        with self.assertRaisesRegex(Refused, "HTTP 301"):
            self.client.get_domain(1)

    # -- exact lookups despite substring search -------------------------------------------
    def test_find_mailbox_is_exact_despite_substring_search(self):
        data = recorded("list_accounts_search_partial_match")
        self.assertEqual(len(data["response"]["results"]), 2)  # jane.doe and xjane.doe
        reversed_page = copy.deepcopy(data["response"])
        reversed_page["results"].reverse()  # xjane.doe first
        self.session.on("GET", "/api/v2/accounts/", (200, reversed_page), search="jane.doe@alpha.example.com")
        self.session.on("GET", "/api/v2/accounts/", (200, data["response"]), search="doe@alpha.example.com")
        mailbox = self.client.find_mailbox("Jane.Doe@alpha.example.com")
        self.assertEqual((mailbox.id, mailbox.email), (3, "jane.doe@alpha.example.com"))
        self.assertIsNone(self.client.find_mailbox("doe@alpha.example.com"))

    def test_find_domain_is_exact_despite_prefix_search(self):
        page = recorded("list_domains_search")["response"]  # Modoboa's prefix search found alpha.example.com
        self.session.on("GET", "/api/v2/domains/", (200, page), search="alpha.example")
        self.session.on("GET", "/api/v2/domains/", (200, page), search="alpha.example.com")
        self.assertIsNone(self.client.find_domain("alpha.example"))
        domain = self.client.find_domain("alpha.example.com")
        self.assertEqual((domain.id, domain.quota_mb, domain.default_mailbox_quota_mb), (1, 100, 10))
        self.assertTrue(domain.dkim_enabled)
        self.assertTrue(domain.dkim_public_key.startswith("MIIBIjAN"))

    def test_lists_follow_pages(self):
        page = recorded("list_accounts_by_domain")["response"]
        first = dict(page, next=f"{URL}/api/v2/accounts/?domain=1&page=2", results=page["results"][:1])
        second = dict(page, next=None, results=page["results"][1:])
        self.session.on("GET", "/api/v2/accounts/", (200, first), (200, second), domain="1")
        mailboxes = self.client.list_mailboxes(1)
        self.assertEqual(
            [m.email for m in mailboxes], ["admin@alpha.example.com", "jane.doe@alpha.example.com"]
        )
        self.assertEqual([c["query"] for c in self.session.calls], [{"domain": "1"}] * 2)
        self.assertTrue(mailboxes[0].is_domain_admin)
        self.assertFalse(mailboxes[1].is_domain_admin)

    def test_usage_is_a_whole_percent_of_the_quota(self):
        data = recorded("get_account_with_usage")
        self.assertEqual(data["response"]["mailbox"]["quota_usage"], 50)
        self.session.on_recorded("get_account_with_usage")
        mailbox = self.client.get_mailbox(3)
        self.assertEqual(mailbox.quota_mb, 10)
        self.assertEqual(mailbox.used_bytes, 5 * MB)  # 50% of 10 MB
        self.assertEqual(mailbox.usage_percent, 50)
        # 33% of 7 MB: the lower bound of what the mailbox holds
        self.assertEqual(
            self.client._mailbox({"pk": 1, "mailbox": {"quota": "7", "quota_usage": 33}}).used_bytes,
            33 * 7 * MB // 100,
        )
        self.assertIsNone(
            self.client._mailbox({"pk": 1, "mailbox": {"quota": "0", "quota_usage": 0}}).used_bytes
        )

    # -- idempotent ensure_* ---------------------------------------------------------------
    def test_ensure_domain_existing_sends_nothing(self):
        self.session.on_recorded("list_domains_search").on(
            "GET",
            "/api/v2/domains/",
            (200, recorded("list_domains_search")["response"]),
            search="alpha.example.com",
        )
        domain = self.client.ensure_domain("alpha.example.com", quota_mb=100, default_mailbox_quota_mb=10)
        self.assertEqual(domain.id, 1)
        self.assertTrue(domain.dkim_public_key)
        self.assertEqual([c["method"] for c in self.session.calls], ["GET"])

    def test_ensure_domain_creates_with_dkim_and_reads_the_key(self):
        create = recorded("create_domain")
        self.session.on("GET", "/api/v2/domains/", EMPTY_PAGE, search="alpha.example.com")
        self.session.on("POST", "/api/v2/domains/", (201, create["response"]))
        self.session.on_recorded("get_domain")
        domain = self.client.ensure_domain("alpha.example.com", quota_mb=100, default_mailbox_quota_mb=10)
        (post,) = self.session.sent("POST", "/api/v2/domains/")
        self.assertEqual(
            post["json"],
            {
                "name": "alpha.example.com",
                "type": "domain",
                "enabled": True,
                "quota": 100,
                "default_mailbox_quota": 10,
                "enable_dkim": True,
            },
        )
        self.assertEqual(create["response"]["dkim_public_key"], "")  # the create answer has no key yet
        self.assertTrue(domain.dkim_public_key.startswith("MIIBIjAN"))
        self.assertEqual(domain.dkim_selector, "modoboa")

    def test_ensure_domain_after_a_lost_answer(self):
        """The first POST created the domain but its answer was lost: the
        retry's POST is refused as a duplicate, and the domain is used."""
        found = recorded("list_domains_search")["response"]
        self.session.on("GET", "/api/v2/domains/", EMPTY_PAGE, (200, found), search="alpha.example.com")
        self.session.on_recorded("error_duplicate_domain")
        domain = self.client.ensure_domain("alpha.example.com", quota_mb=100, default_mailbox_quota_mb=10)
        self.assertEqual(domain.id, 1)

    def test_ensure_domain_switches_dkim_on(self):
        domain = recorded("get_domain")["response"]
        no_dkim = dict(domain, enable_dkim=False, dkim_public_key="")
        self.session.on(
            "GET",
            "/api/v2/domains/",
            (200, {"count": 1, "next": None, "results": [no_dkim]}),
            search="alpha.example.com",
        )
        self.session.on("PATCH", "/api/v2/domains/1/", (200, no_dkim))
        self.session.on("GET", "/api/v2/domains/1/", (200, domain))
        remote = self.client.ensure_domain("alpha.example.com", 100, 10)
        self.assertEqual(self.session.sent("PATCH", "/api/v2/domains/1/")[0]["json"], {"enable_dkim": True})
        self.assertTrue(remote.dkim_public_key)

    def test_ensure_mailbox_existing_sends_nothing(self):
        self.session.on_recorded("list_accounts_search_email")
        mailbox = self.client.ensure_mailbox("jane.doe@alpha.example.com", PASSWORD, 10)
        self.assertEqual(
            (mailbox.id, mailbox.quota_mb, mailbox.active, mailbox.created), (3, 10, True, False)
        )
        self.assertFalse(self.session.sent("POST", "/api/v2/accounts/"))

    def test_ensure_mailbox_creates(self):
        create = recorded("create_account")
        self.session.on("GET", "/api/v2/accounts/", EMPTY_PAGE, search="jane.doe@alpha.example.com")
        self.session.on("POST", "/api/v2/accounts/", (201, create["response"]))
        mailbox = self.client.ensure_mailbox("jane.doe@alpha.example.com", PASSWORD, 10, "Jane", "Doe")
        self.assertEqual((mailbox.id, mailbox.quota_mb, mailbox.created), (3, 10, True))
        (post,) = self.session.sent("POST", "/api/v2/accounts/")
        self.assertEqual(post["json"]["mailbox"], {"use_domain_quota": False, "quota": 10})
        self.assertEqual(post["json"]["role"], "SimpleUsers")

    def test_ensure_mailbox_after_a_lost_answer(self):
        found = recorded("list_accounts_search_email")["response"]
        self.session.on(
            "GET", "/api/v2/accounts/", EMPTY_PAGE, (200, found), search="jane.doe@alpha.example.com"
        )
        self.session.on_recorded("error_duplicate_account")
        mailbox = self.client.ensure_mailbox("jane.doe@alpha.example.com", PASSWORD, 10)
        self.assertEqual((mailbox.id, mailbox.created), (3, False))

    def test_ensure_mailbox_refused_is_not_swallowed(self):
        self.session.on("GET", "/api/v2/accounts/", EMPTY_PAGE, search="big@alpha.example.com")
        self.session.on(
            "POST", "/api/v2/accounts/", (400, recorded("error_account_over_domain_quota")["response"])
        )
        with self.assertRaisesRegex(Refused, "domain quota exceeded"):
            self.client.ensure_mailbox("big@alpha.example.com", PASSWORD, 5000)

    def test_ensure_domain_admin_existing_sends_nothing(self):
        self.session.on(
            "GET",
            "/api/v2/domains/",
            (200, recorded("list_domains_search")["response"]),
            search="alpha.example.com",
        )
        self.session.on_recorded("domain_administrators")
        admin_id = self.client.ensure_domain_admin("alpha.example.com", "admin@alpha.example.com", PASSWORD)
        self.assertEqual(admin_id, 2)
        self.assertFalse([c for c in self.session.calls if c["method"] != "GET"])

    def test_ensure_domain_admin_creates_a_login_without_mailbox(self):
        beta = dict(recorded("get_domain_after_enable_dkim")["response"])
        self.session.on(
            "GET",
            "/api/v2/domains/",
            (200, {"count": 1, "next": None, "results": [beta]}),
            search="beta.example.com",
        )
        self.session.on("GET", f"/api/v2/domains/{beta['pk']}/administrators/", (200, []))
        self.session.on("GET", "/api/v2/accounts/", EMPTY_PAGE, search="boss@beta.example.com")
        created = dict(recorded("create_account_beta_admin")["response"], mailbox=None)
        self.session.on("POST", "/api/v2/accounts/", (201, created))
        self.session.on("POST", f"/api/v2/domains/{beta['pk']}/administrators/add/", (200, None))
        admin_id = self.client.ensure_domain_admin("beta.example.com", "boss@beta.example.com", PASSWORD)
        self.assertEqual(admin_id, created["pk"])
        (post,) = self.session.sent("POST", "/api/v2/accounts/")
        self.assertEqual(
            post["json"], {"username": "boss@beta.example.com", "role": "DomainAdmins", "password": PASSWORD}
        )
        (add,) = self.session.sent("POST", f"/api/v2/domains/{beta['pk']}/administrators/add/")
        self.assertEqual(add["json"], {"account": created["pk"]})

    def test_deleting_what_is_gone_succeeds(self):
        self.session.on(
            "POST", "/api/v2/accounts/3/delete/", (404, recorded("get_account_deleted")["response"])
        )
        self.session.on(
            "POST", "/api/v2/domains/1/delete/", (404, recorded("get_domain_deleted")["response"])
        )
        self.assertIsNone(self.client.delete_mailbox(3))
        self.assertIsNone(self.client.delete_domain(1))
        self.assertEqual(len(self.session.sent("POST", "/api/v2/accounts/3/delete/")), 1)
        self.assertEqual(len(self.session.sent("POST", "/api/v2/domains/1/delete/")), 1)
        self.session.on_recorded("delete_account")
        self.session.on_recorded("delete_domain")
        self.client.delete_mailbox(3)
        self.client.delete_domain(1)

    # -- secrets -------------------------------------------------------------------------------
    def test_secrets_never_logged(self):
        self.session.on("GET", "/api/v2/accounts/", EMPTY_PAGE, search="jane.doe@alpha.example.com")
        # a server that echoes the password in its refusal
        self.session.on(
            "POST", "/api/v2/accounts/", (400, {"password": [f"{PASSWORD} is too similar to the username."]})
        )
        with self.assertLogs("odoo.addons.fayvad_mail.tools.mailserver", level="DEBUG") as logs:
            with self.assertRaises(Refused) as caught:
                self.client.ensure_mailbox("jane.doe@alpha.example.com", PASSWORD, 10)
            self.session.on(
                "PATCH", "/api/v2/accounts/3/", (200, recorded("patch_account_enable")["response"])
            )
            self.client.update_mailbox(3, password=PASSWORD)
            self.session.on(
                "GET",
                "/api/v2/domains/1/",
                make_response(500, text=f"<p>token {TOKEN}</p>", content_type="text/html"),
            )
            with self.assertRaises(Unavailable) as caught_500:
                self.client.get_domain(1)
        output = "\n".join(logs.output)
        self.assertIn("POST /api/v2/accounts/", output)  # requests are logged...
        self.assertIn("***", output)  # ...with secrets masked
        for text in (
            output,
            str(caught.exception),
            caught.exception.reason,
            str(caught_500.exception),
            repr(self.client),
        ):
            self.assertNotIn(PASSWORD, text)
            self.assertNotIn(TOKEN, text)

    def test_generated_passwords_pass_modoboa_validators(self):
        specials = "~!@#$%^&*()_+{}\":;,'[]"
        for _ in range(200):
            password = generate_password()
            self.assertGreaterEqual(len(password), 8)
            self.assertTrue(any(c.isupper() for c in password), password)
            self.assertTrue(any(c.islower() for c in password), password)
            self.assertTrue(any(c.isdigit() for c in password), password)
            self.assertTrue(any(c in specials for c in password), password)


DOVEADM = "http://127.0.0.1:8998"
DOVEADM_KEY = "doveadm-key-0123456789"


@tagged("post_install", "-at_install")
class TestDovecotStorage(TransactionCase):
    """The bytes each mailbox holds, from Dovecot's doveadm HTTP API (the
    real one answers in test_mail_delivery.py; here its answers are fed)."""

    def setUp(self):
        super().setUp()
        self.storage = DovecotStorage(DOVEADM, DOVEADM_KEY, (3.0, 7.0))
        self.doveadm = self.storage._session = FakeSession()
        self.client = make_client("modoboa", URL, TOKEN, timeout=(3.0, 7.0), storage=self.storage)
        self.session = self.client._session = FakeSession()

    @staticmethod
    def answer(sizes):
        """doveadm's answer to mailboxStatus commands tagged 0, 1, ...: a size, or None (unknown user)."""
        return [
            ["doveadmResponse", [{"vsize": str(size)}], str(i)]
            if size is not None
            else ["error", {"type": "exitCode", "exitCode": 67}, str(i)]
            for i, size in enumerate(sizes)
        ]

    def test_every_mailbox_gets_its_bytes_even_without_a_quota(self):
        page = recorded("list_accounts_by_domain")["response"]
        page["results"][1]["mailbox"]["quota"] = "0"  # no quota: Modoboa tells no usage at all
        self.session.on("GET", "/api/v2/accounts/", (200, page), domain="1")
        self.doveadm.on("POST", "/doveadm/v1", (200, self.answer([None, 123_456_789])))
        mailboxes = self.client.list_mailboxes(1)
        self.assertEqual([m.used_bytes for m in mailboxes], [0, 123_456_789])
        (call,) = self.doveadm.calls
        self.assertEqual(call["headers"]["Authorization"], "X-Dovecot-API ZG92ZWFkbS1rZXktMDEyMzQ1Njc4OQ==")
        self.assertEqual(
            [(c[0], c[1]["user"], c[1]["field"], c[1]["totalSum"]) for c in call["json"]],
            [("mailboxStatus", m.email, ["vsize"], True) for m in mailboxes],
        )

    def test_asks_a_hundred_mailboxes_a_request(self):
        emails = [f"user{i}@big.example" for i in range(150)]
        self.doveadm.on(
            "POST", "/doveadm/v1", (200, self.answer(range(100))), (200, self.answer(range(100, 150)))
        )
        self.assertEqual(self.storage.used_bytes(emails), {email: i for i, email in enumerate(emails)})
        self.assertEqual([len(c["json"]) for c in self.doveadm.calls], [100, 50])

    def test_a_failed_command_or_a_wrong_key_is_an_error_never_a_zero(self):
        self.doveadm.on(
            "POST", "/doveadm/v1", (200, [["error", {"type": "exitCode", "exitCode": 75}, "0"]]), (401, None)
        )
        with self.assertRaises(Unavailable):
            self.storage.used_bytes(["a@b.example"])
        with self.assertRaises(Refused) as refused:
            self.storage.used_bytes(["a@b.example"])
        self.assertNotIn(DOVEADM_KEY, str(refused.exception))


@tagged("post_install", "-at_install")
class TestOwnDelivery(TransactionCase):
    """Modoboa disables a mailbox's hidden self-alias with its login and never
    enables it again (test_mail_delivery.py shows it with real mail): the
    client keeps a visible alias from the address to itself enabled."""

    def setUp(self):
        super().setUp()
        self.client = make_client("modoboa", URL, TOKEN, timeout=(3.0, 7.0))
        self.session = self.client._session = FakeSession()
        self.account = dict(recorded("get_account")["response"], username="jane@alpha.example")

    def own(self, enabled, recipients=("jane@alpha.example",), pk=9):
        return {"pk": pk, "address": "jane@alpha.example", "enabled": enabled, "recipients": list(recipients)}

    def test_disabling_a_login_keeps_the_address_delivering_to_it(self):
        self.session.on("PATCH", "/api/v2/accounts/3/", (200, dict(self.account, is_active=False)))
        self.session.on("GET", "/api/v2/aliases/", EMPTY_PAGE, search="jane@alpha.example")
        self.session.on("POST", "/api/v2/aliases/", (201, self.own(True)))
        self.client.update_mailbox(3, active=False)
        (made,) = self.session.sent("POST", "/api/v2/aliases/")
        self.assertEqual(
            (made["json"]["address"], made["json"]["recipients"]),
            ("jane@alpha.example", ["jane@alpha.example"]),
        )

    def test_the_own_alias_modoboa_disabled_is_enabled_again_and_a_forward_left_alone(self):
        self.session.on("PATCH", "/api/v2/accounts/3/", (200, self.account))
        page = {"count": 1, "next": None, "previous": None, "results": [self.own(False)]}
        self.session.on("GET", "/api/v2/aliases/", (200, page), search="jane@alpha.example")
        self.session.on("PUT", "/api/v2/aliases/9/", (200, self.own(True)))
        self.client.update_mailbox(3, active=True)
        (put,) = self.session.sent("PUT", "/api/v2/aliases/9/")
        self.assertTrue(put["json"]["enabled"])
        # a forward without the mailbox's copy (made elsewhere) stays as it is
        forward = self.own(True, recipients=("jane@home.example",))
        page = {"count": 1, "next": None, "previous": None, "results": [forward]}
        self.session.on("GET", "/api/v2/aliases/", (200, page), search="jane@alpha.example")
        self.session.calls.clear()
        self.client.update_mailbox(3, active=False)
        self.assertEqual([c["method"] for c in self.session.calls], ["PATCH", "GET"])

    def test_listings_leave_the_own_alias_out_and_deleting_a_forward_keeps_it(self):
        page = {
            "count": 2,
            "next": None,
            "previous": None,
            "results": [self.own(True), self.own(True, ("jane@alpha.example", "jane@home.example"), pk=10)],
        }
        self.session.on("GET", "/api/v2/aliases/", (200, page), domain="alpha.example")
        self.assertEqual([a.id for a in self.client.list_aliases("alpha.example")], [10])
        self.session.on("GET", "/api/v2/aliases/10/", (200, page["results"][1]))
        self.session.on("PUT", "/api/v2/aliases/10/", (200, self.own(True, pk=10)))
        self.client.delete_alias(10)
        (put,) = self.session.sent("PUT", "/api/v2/aliases/10/")
        self.assertEqual(put["json"]["recipients"], ["jane@alpha.example"])
        self.assertFalse(self.session.sent("DELETE", "/api/v2/aliases/10/"))
