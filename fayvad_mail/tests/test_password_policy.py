"""Mailbox passwords follow the policy of the mail-server record: Odoo
refuses what the server would refuse (before creating anything), generates
what it accepts, and the embedded Modoboa enforces exactly that policy."""

import dataclasses
import json
import os
import uuid

import psycopg2
import pytest
import requests

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.tests.common import (
    MODOBOA_TOKEN,
    MODOBOA_URL,
    FaultProxy,
    ModoboaProvisioningCase,
    ProvisioningCase,
)
from odoo.addons.fayvad_mail.tools.passwords import SPECIALS, PasswordPolicy

STRICT = PasswordPolicy(min_length=24, upper=2, lower=2, digits=3, specials=2)


# -- the policy itself (pure Python) ---------------------------------------------------
def test_default_policy_is_the_documents_minimum_of_eight():
    policy = PasswordPolicy()
    assert policy.problems("securepassword123") == []
    assert policy.problems("12345678") == []
    assert policy.problems("short7!") == ["Must be at least 8 characters long."]


@pytest.mark.parametrize(
    ("password", "broken"),
    [
        ("aaaaaaaaaaaaaaaaaaaaaaaa", ["upper case", "digits", "special"]),
        ("AAaa111!!", ["24 characters"]),
        ("AAAAAAAAAAAAAAAAAAAAA111!!", ["lower case"]),
    ],
)
def test_strict_policy_names_each_broken_rule(password, broken):
    problems = STRICT.problems(password)
    assert len(problems) == len(broken), problems
    for rule, problem in zip(broken, problems, strict=True):
        assert rule in problem
        assert password not in problem


def test_specials_are_counted_like_modoboa():
    policy = PasswordPolicy(specials=1)
    for char in SPECIALS:
        assert policy.problems(f"abcdefgh{char}") == [], char
    assert policy.problems("abcdefgh-.") != []  # '-' and '.' are not special to Modoboa


def test_generated_passwords_satisfy_any_policy():
    for policy in (PasswordPolicy(), STRICT, PasswordPolicy(min_length=128), PasswordPolicy(specials=30)):
        for _ in range(50):
            password = policy.generate()
            assert policy.problems(password) == [], (policy, password)
            assert len(password) >= max(policy.min_length, 20)


@tagged("post_install", "-at_install")
class TestPasswordPolicyApi(ProvisioningCase):
    def test_policy_fields_on_the_server_record(self):
        self.assertEqual(self.server._password_policy(), PasswordPolicy())
        self.server.write({"password_min_length": 12, "password_min_upper": 1, "password_min_specials": 2})
        self.assertEqual(
            self.server.password_policy_summary,
            f"at least 12 characters, 1 upper case letter, 2 special characters ({SPECIALS})",
        )
        with (
            self.assertRaises(psycopg2.errors.CheckViolation),
            self.cr.savepoint(),
            mute_logger("odoo.sql_db"),
        ):
            self.server.password_min_length = 7  # below the API document's minimum
            self.server.flush_recordset()

    def test_password_breaking_the_policy_is_refused_before_anything_exists(self):
        org, domain = self.make_org()
        self.server.write({"password_min_upper": 1, "password_min_digits": 2})
        payload = self.account_payload(org.id, domain.id)
        payload["email_account_data"]["user_info"]["password"] = "securepassword1"
        jobs_before = self.env["fayvad.mail.job"].search_count([])
        body = self.assertApiError(
            self.api("POST", "/provision/email-account/", payload),
            400,
            "VALIDATION_ERROR",
            "email_account_data.user_info.password",
        )
        self.assertEqual(
            body["details"]["email_account_data.user_info.password"],
            ["Must contain at least 1 upper case letter.", "Must contain at least 2 digits."],
        )
        self.assertNotIn("securepassword1", json.dumps(body))
        self.assertFalse(org.with_context(active_test=False).account_ids, "no account was created")
        self.assertEqual(self.env["fayvad.mail.job"].search_count([]), jobs_before, "no job was queued")
        # the same request with a password that follows the policy goes on
        payload["email_account_data"]["user_info"]["password"] = "Securepassword12"
        status, body, _ = self.api("POST", "/provision/email-account/", payload)
        self.assertEqual(status, 202, body)

    def test_documents_sample_password_is_accepted_by_the_default_policy(self):
        org, domain = self.make_org()
        payload = self.account_payload(org.id, domain.id)
        payload["email_account_data"]["user_info"]["password"] = "securepassword123"
        status, body, _ = self.api("POST", "/provision/email-account/", payload)
        self.assertEqual(status, 202, body)  # accepted: the (unreachable) server will get it

    def test_domain_administrators_login_is_reserved(self):
        org, domain = self.make_org()
        for address in ("domainadmin", "DomainAdmin"):
            with self.subTest(address=address):
                payload = self.account_payload(org.id, domain.id, address=address)
                body = self.assertApiError(
                    self.api("POST", "/provision/email-account/", payload),
                    400,
                    "VALIDATION_ERROR",
                    "email_account_data.address",
                )
                self.assertIn("reserved", body["details"]["email_account_data.address"][0])
        self.assertFalse(org.with_context(active_test=False).account_ids)
        self.assertFalse(
            self.env["fayvad.mail.job"].search(
                [("organization_id", "=", org.id), ("account_id", "!=", False)]
            )
        )
        with self.assertRaisesRegex(Exception, "reserved"):
            self.env["fayvad.mail.account"].create({"local_part": "domainadmin", "domain_id": domain.id})


@tagged("post_install", "-at_install")
class TestPasswordPolicyModoboa(ModoboaProvisioningCase):
    """Against the real Modoboa of ./dev test."""

    def modoboa(self, method, path, payload=None):
        return requests.request(
            method,
            f"{MODOBOA_URL}/api/v2{path}",
            json=payload,
            headers={"Authorization": f"Token {MODOBOA_TOKEN}"},
            timeout=30,
        )

    def test_embedded_modoboa_enforces_exactly_the_records_policy(self):
        configured = json.loads(os.environ.get("FAYVAD_TEST_MODOBOA_PASSWORD_POLICY") or "{}")
        self.assertEqual(
            PasswordPolicy(**configured), self.server._password_policy(), "./dev test configures it"
        )
        policy = self.server._password_policy()
        name = f"policy-{uuid.uuid4().hex[:8]}.example"
        domain = self.modoboa(
            "POST", "/domains/", {"name": name, "type": "domain", "quota": 0, "default_mailbox_quota": 10}
        )
        self.assertEqual(domain.status_code, 201, domain.text)
        self.addCleanup(
            self.modoboa, "POST", f"/domains/{domain.json()['pk']}/delete/", {"keep_folder": False}
        )
        cases = {
            "a" * (policy.min_length - 1): False,  # one short: both refuse
            "a" * policy.min_length: True,  # nothing but the length: both accept
            "securepassword123": True,
            "12345678901": True,  # all digits (Django's stock list would refuse it)
            f"user{name}"[:20]: True,  # like the user name (idem)
        }
        for i, (password, accepted) in enumerate(cases.items()):
            with self.subTest(password=password):
                self.assertEqual(not policy.problems(password), accepted, "Odoo's verdict")
                answer = self.modoboa(
                    "POST",
                    "/accounts/",
                    {
                        "username": f"user{i}@{name}",
                        "role": "SimpleUsers",
                        "password": password,
                        "mailbox": {"use_domain_quota": False, "quota": 1},
                    },
                )
                self.assertEqual(
                    answer.status_code == 201, accepted, f"Modoboa's verdict: {answer.text[:200]}"
                )
                if accepted:
                    self.addCleanup(
                        self.modoboa, "POST", f"/accounts/{answer.json()['pk']}/delete/", {"keepdir": False}
                    )

    def test_generated_password_follows_a_strict_policy_and_is_never_kept(self):
        proxy = FaultProxy(MODOBOA_URL).start()
        self.addCleanup(proxy.stop)
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, body)
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        self.server.write({"url": proxy.url, **self.server._password_policy_vals(dataclasses.asdict(STRICT))})
        payload = self.account_payload(org.id, org.domain_ids.id)
        del payload["email_account_data"]["user_info"]["password"]
        status, body, response = self.api("POST", "/provision/email-account/", payload)
        self.assertEqual(status, 201, body)
        sent = [
            json.loads(raw)
            for method, path, raw in proxy.bodies
            if (method, path) == ("POST", "/api/v2/accounts/")
        ]
        self.assertEqual(len(sent), 1)
        password = sent[0]["password"]
        self.assertEqual(STRICT.problems(password), [], "the generated password follows the record's policy")
        self.assertNotIn(password, response.text)
        account = self.env["fayvad.mail.account"].browse(body["email_account"]["id"])
        self.assertNotIn(password, str(account.read()))
        self.env.cr.execute("SELECT pending_password FROM fayvad_mail_account WHERE id = %s", [account.id])
        self.assertIsNone(self.env.cr.fetchone()[0])
