"""POST /erp/provision/alias/ through Odoo's HTTP stack, against the real
Modoboa of ./dev test."""

import requests

from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import (
    MODOBOA_URL,
    ModoboaProvisioningCase,
)

PATH = "/provision/alias/"


class AliasApiCase(ModoboaProvisioningCase):
    """An organization provisioned on the real Modoboa through the API."""

    def setUp(self):
        super().setUp()
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, body)
        self.org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        self.domain = self.org.domain_ids


@tagged("post_install", "-at_install")
class TestAliasApi(AliasApiCase):
    def payload(self, address="sales", **fields):
        data = {
            "organization_id": self.org.id,
            "domain": self.domain.id,
            "address": address,
            "recipients": ["Team@Example.com", "boss@example.com"],
            "description": "sales desk",
        }
        return {"alias_data": {**data, **fields}}

    def remote(self, address):
        answer = requests.get(
            f"{MODOBOA_URL}/api/v2/aliases/",
            params={"search": address, "page_size": 1000},
            headers={"Authorization": f"Token {self.server.token}"},
            timeout=30,
        ).json()["results"]
        found = [a for a in answer if a["address"] == address]
        return found[0] if found else None

    def test_alias_and_catchall_are_provisioned_on_modoboa(self):
        status, body, _ = self.api("POST", PATH, self.payload())
        self.assertEqual(status, 201, body)
        email = f"sales@{self.domain.name}"
        self.assertEqual(body["alias"]["email"], email)
        self.assertEqual(body["alias"]["recipients"], ["team@example.com", "boss@example.com"])
        self.assertEqual(body["alias"]["organization_id"], self.org.id)
        remote = self.remote(email)
        self.assertEqual(sorted(remote["recipients"]), ["boss@example.com", "team@example.com"])
        self.assertEqual(remote["description"], "sales desk")

        status, body, _ = self.api("POST", PATH, self.payload(address=""))
        self.assertEqual(status, 201, body)
        self.assertEqual(body["alias"]["email"], f"@{self.domain.name}")
        self.assertIsNotNone(self.remote(f"@{self.domain.name}"))
        alias = self.env["fayvad.mail.alias"].browse(body["alias"]["id"])
        self.assertEqual((alias.kind, alias.state), ("catchall", "active"))

    def test_a_mailbox_on_an_aliass_address_is_a_clear_400(self):
        # found by the fuzzer: a 500, the constraint raised only when the transaction was written
        for address in ("sales", "*"):
            status, body, _ = self.api("POST", PATH, self.payload(address=address))
            self.assertEqual(status, 201, body)
            accounts = self.env["fayvad.mail.account"].search_count([])
            self.assertApiError(
                self.api(
                    "POST",
                    "/provision/email-account/",
                    self.account_payload(self.org.id, self.domain.id, address=address),
                ),
                400,
                "EMAIL_ACCOUNT_ALREADY_EXISTS",
            )
            self.env.invalidate_all()
            self.assertEqual(self.env["fayvad.mail.account"].search_count([]), accounts, "nothing created")

    def test_taken_addresses_and_bad_input_change_nothing(self):
        self.api("POST", PATH, self.payload())
        self.assertApiError(self.api("POST", PATH, self.payload()), 400, "ALIAS_ALREADY_EXISTS")
        status, body, _ = self.api(
            "POST", "/provision/email-account/", self.account_payload(self.org.id, self.domain.id)
        )
        self.assertEqual(status, 201, body)
        self.assertApiError(
            self.api("POST", PATH, self.payload(address="john.doe")), 400, "ALIAS_ALREADY_EXISTS"
        )
        for fields, path in (
            ({"recipients": []}, "alias_data.recipients"),
            ({"recipients": ["not an address"]}, "alias_data.recipients"),
            ({"recipients": "a@example.com"}, "alias_data.recipients"),
            ({"address": "domainadmin"}, "alias_data.address"),
            ({"address": "two words"}, "alias_data.address"),
            ({"address": None}, "alias_data.address"),
            ({"description": "x" * 201}, "alias_data.description"),
        ):
            with self.subTest(fields=fields):
                self.assertApiError(
                    self.api("POST", PATH, self.payload(**fields)), 400, "VALIDATION_ERROR", path
                )
        self.assertApiError(
            self.api("POST", PATH, self.payload(organization_id=10**8)), 404, "ORGANIZATION_NOT_FOUND"
        )
        self.assertApiError(self.api("POST", PATH, self.payload(domain=10**8)), 404, "DOMAIN_NOT_FOUND")
        aliases = self.env["fayvad.mail.alias"].search([("organization_id", "=", self.org.id)])
        self.assertEqual(aliases.mapped("local_part"), ["sales"])

    def test_limit_and_suspension_are_clear_errors(self):
        self.org.max_aliases = 1
        self.assertEqual(self.api("POST", PATH, self.payload())[0], 201)
        body = self.assertApiError(
            self.api("POST", PATH, self.payload(address="more")),
            400,
            "VALIDATION_ERROR",
            "alias_data.organization_id",
        )
        self.assertIn("limit of 1 aliases", body["details"]["alias_data.organization_id"][0])
        self.org.max_aliases = 5
        self.org._suspend("manual")
        self.assertApiError(
            self.api("POST", PATH, self.payload(address="more")),
            400,
            "VALIDATION_ERROR",
            "alias_data.organization_id",
        )
        self.assertEqual(
            self.env["fayvad.mail.alias"].search_count([("organization_id", "=", self.org.id)]), 1
        )

    def test_idempotency_key_replays_the_answer(self):
        headers = {"Idempotency-Key": "alias-once"}
        first = self.api("POST", PATH, self.payload(), headers=headers)
        again = self.api("POST", PATH, self.payload(), headers=headers)
        self.assertEqual((first[0], first[1]), (again[0], again[1]))
        self.assertEqual(
            self.env["fayvad.mail.alias"].search_count([("organization_id", "=", self.org.id)]), 1
        )


@tagged("post_install", "-at_install")
class TestDomainAliasApi(AliasApiCase):
    PATH = "/provision/domain-alias/"

    def body(self, name, **fields):
        data = {"organization_id": self.org.id, "domain": self.domain.id, "name": name}
        return {"domain_alias_data": {**data, **fields}}

    def test_domain_alias_is_provisioned_with_its_dns_records(self):
        name = self.domain.name.replace(".example", ".org")
        status, body, _ = self.api("POST", self.PATH, self.body(name.upper()))
        self.assertEqual(status, 201, body)
        self.assertEqual(
            (body["domain_alias"]["name"], body["domain_alias"]["domain_id"]), (name, self.domain.id)
        )
        self.assertIn(f"{name}. IN MX 10 mx.api.example.", body["domain_alias"]["dns_records"])
        remote = requests.get(
            f"{MODOBOA_URL}/api/v2/domainaliases/",
            params={"domain": self.domain.name},
            headers={"Authorization": f"Token {self.server.token}"},
            timeout=30,
        ).json()
        remote = remote["results"] if isinstance(remote, dict) else remote
        self.assertEqual([a["name"] for a in remote], [name])
        # the name is taken now: neither an organization nor another alias gets it
        self.assertApiError(self.api("POST", self.PATH, self.body(name)), 400, "ORGANIZATION_ALREADY_EXISTS")
        self.assertApiError(
            self.api("POST", "/provision/organization/", self.org_payload(domain=name)),
            400,
            "ORGANIZATION_ALREADY_EXISTS",
        )

    def test_any_organizations_domain_is_refused_and_limits_hold(self):
        _other, other_domain = self.make_org()
        self.assertApiError(
            self.api("POST", self.PATH, self.body(other_domain.name)), 400, "ORGANIZATION_ALREADY_EXISTS"
        )
        self.assertApiError(
            self.api("POST", self.PATH, self.body(self.domain.name)), 400, "ORGANIZATION_ALREADY_EXISTS"
        )
        self.assertApiError(
            self.api("POST", self.PATH, self.body("not a domain")),
            400,
            "VALIDATION_ERROR",
            "domain_alias_data.name",
        )
        self.org.max_domain_aliases = 0
        self.assertApiError(
            self.api("POST", self.PATH, self.body("free-name.example")),
            400,
            "VALIDATION_ERROR",
            "domain_alias_data.organization_id",
        )
        self.assertFalse(self.env["fayvad.mail.domain.alias"].search([("organization_id", "=", self.org.id)]))
