import time
from unittest.mock import MagicMock, patch

import idna
import requests
from freezegun import freeze_time

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.tests.common import (
    MODOBOA_TOKEN,
    MODOBOA_URL,
    FaultProxy,
    ModoboaProvisioningCase,
    ProvisioningCase,
    modoboa_get,
)
from odoo.addons.fayvad_mail.tools.mailserver import MailServerClient, RemoteDomain, RemoteMailbox
from odoo.addons.fayvad_mail.tools.names import DOMAIN_ADMIN_LOCAL_PART
from odoo.addons.fayvad_mail.tools.units import MB


@tagged("post_install", "-at_install")
class TestProvisioningValidation(ProvisioningCase):
    def counts(self):
        return tuple(
            self.env[model].with_context(active_test=False).search_count([])
            for model in (
                "fayvad.mail.organization",
                "fayvad.mail.domain",
                "fayvad.mail.account",
                "fayvad.mail.job",
            )
        )

    def test_bodies_that_are_not_json_objects(self):
        before = self.counts()
        for path in ("/provision/organization/", "/provision/email-account/"):
            for raw in (b"", b"{", b"not json", b"[1, 2]", b'"text"', b"42", b"null", b"\xff\xfe"):
                with self.subTest(path=path, raw=raw):
                    self.assertApiError(self.api("POST", path, raw=raw), 400, "VALIDATION_ERROR", "body")
            for body in ({}, {"organization_data": []}, {"email_account_data": "x"}, {"other": {}}):
                with self.subTest(path=path, body=body):
                    status, answer, _ = self.api("POST", path, body)
                    self.assertEqual((status, answer["error_code"]), (400, "VALIDATION_ERROR"))
        self.assertEqual(self.counts(), before, "a refused request changes nothing")

    def test_organization_fields(self):
        inactive = self.env["fayvad.mail.plan"].create({"name": "Old", "active": False})
        rejected = {
            "name": ["", "   ", "x" * 201, 5, None, True],
            "domain": ["not a domain", "localhost", "-x.example", 42, "", None],
            "odoo_customer_id": ["5", True, 5.0, 0, -1, None, 10**9],
            "max_users": [0, -1, "10", True, 1.5],
            "max_storage_gb": [0, -5, "50", False, 2.5],
            "plan_id": ["2", True, 0, inactive.id, 10**8],
        }
        before = self.counts()
        for field, values in rejected.items():
            for value in values:
                with self.subTest(field=field, value=value):
                    payload = self.org_payload(**{field: value})
                    answer = self.api("POST", "/provision/organization/", payload)
                    self.assertApiError(answer, 400, "VALIDATION_ERROR", f"organization_data.{field}")
        self.assertEqual(self.counts(), before)

    def test_all_bad_fields_reported_at_once(self):
        payload = {
            "organization_data": {
                "name": "x" * 300,
                "domain": "nope",
                "odoo_customer_id": "1",
                "max_users": 0,
            }
        }
        body = self.assertApiError(
            self.api("POST", "/provision/organization/", payload), 400, "VALIDATION_ERROR"
        )
        self.assertEqual(
            set(body["details"]),
            {f"organization_data.{f}" for f in ("name", "domain", "odoo_customer_id", "max_users")},
        )

    def test_organization_accepted_values_and_defaults(self):
        self.server.url = "http://127.0.0.1:9"
        payload = self.org_payload(name="x" * 200, domain="Bücher-Shop.Example.", plan_id=None)
        del payload["organization_data"]["max_users"], payload["organization_data"]["max_storage_gb"]
        payload["organization_data"]["unknown_extra_field"] = "ignored"
        status, body, _ = self.api("POST", "/provision/organization/", payload)
        self.assertEqual(status, 202, body)
        org = body["organization"]
        self.assertEqual(org["domain_name"], idna.encode("bücher-shop.example").decode())
        self.assertEqual((org["max_users"], org["max_storage_gb"]), (10, 50))
        self.assertIsNone(body["subscription"])
        status, body, _ = self.api(
            "POST", "/provision/organization/", self.org_payload(max_users=None, max_storage_gb=None)
        )
        self.assertEqual(
            (body["organization"]["max_users"], body["organization"]["max_storage_gb"]), (20, 40)
        )  # plan's
        self.assertEqual(body["subscription"]["plan_name"], "API Plan")
        self.assertEqual(body["subscription"]["amount"], 99.99)

    def test_contact_info_only_fills_empty_fields(self):
        customer = self.env["res.partner"].create({"name": "Has email", "email": "kept@old.example"})
        self.make_org(customer=customer)
        self.assertEqual(customer.email, "kept@old.example")
        self.assertEqual(customer.phone, "+1234567890")
        self.assertEqual(customer.street, "123 Business St")

    def test_conflicts(self):
        org, domain = self.make_org()
        org.state = "active"  # done: no longer resumable
        taken = self.org_payload(domain=domain.name.upper())
        self.assertApiError(
            self.api("POST", "/provision/organization/", taken), 400, "ORGANIZATION_ALREADY_EXISTS"
        )
        same_customer = self.org_payload(customer=org.partner_id)
        self.assertApiError(
            self.api("POST", "/provision/organization/", same_customer), 400, "ODOO_CUSTOMER_ID_EXISTS"
        )
        both = self.org_payload(domain=domain.name, customer=org.partner_id, name="Other")
        self.assertApiError(
            self.api("POST", "/provision/organization/", both), 400, "ORGANIZATION_ALREADY_EXISTS"
        )

    def test_email_account_fields(self):
        org, domain = self.make_org()
        _other_org, other_domain = self.make_org()
        ok = self.account_payload(org.id, domain.id)
        rejected = {
            "organization_id": ["2", True, 0, None],
            "address": ["John Doe", ".john", "a" * 65, 7, "", None],
            "domain": ["1", False, -1, None],
            "quota": [MB - 1, 0, "1048576", True, 1.5e6],
        }
        for field, values in rejected.items():
            for value in values:
                with self.subTest(field=field, value=value):
                    payload = self.account_payload(org.id, domain.id, **{field: value})
                    answer = self.api("POST", "/provision/email-account/", payload)
                    self.assertApiError(answer, 400, "VALIDATION_ERROR", f"email_account_data.{field}")
        for field, value in (("first_name", "x" * 31), ("last_name", "y" * 31), ("password", "short")):
            with self.subTest(field=field):
                payload = self.account_payload(org.id, domain.id)
                payload["email_account_data"]["user_info"][field] = value
                body = self.assertApiError(
                    self.api("POST", "/provision/email-account/", payload),
                    400,
                    "VALIDATION_ERROR",
                    f"email_account_data.user_info.{field}",
                )
                self.assertNotIn("short", str(body["details"]))
        self.assertApiError(
            self.api(
                "POST",
                "/provision/email-account/",
                {**ok, "email_account_data": {**ok["email_account_data"], "organization_id": 10**8}},
            ),
            404,
            "ORGANIZATION_NOT_FOUND",
        )
        foreign = self.account_payload(org.id, other_domain.id)
        self.assertApiError(self.api("POST", "/provision/email-account/", foreign), 404, "DOMAIN_NOT_FOUND")
        self.assertFalse(org.account_ids)

    def test_account_limits_and_suspension(self):
        org, domain = self.make_org(max_users=2, max_storage_gb=1)
        for local in ("a", "b"):
            status, body, _ = self.api(
                "POST", "/provision/email-account/", self.account_payload(org.id, domain.id, address=local)
            )
            self.assertEqual(status, 202, body)
        third = self.account_payload(org.id, domain.id, address="c")
        body = self.assertApiError(
            self.api("POST", "/provision/email-account/", third), 400, "VALIDATION_ERROR"
        )
        self.assertIn("limit of 2 users", str(body["details"]))
        org.max_users = 5
        huge = self.account_payload(org.id, domain.id, address="c", quota=2 * 10**9)
        self.assertApiError(
            self.api("POST", "/provision/email-account/", huge),
            400,
            "VALIDATION_ERROR",
            "email_account_data.quota",
        )
        org.write({"state": "suspended", "suspension_reason": "manual"})
        late = self.account_payload(org.id, domain.id, address="d")
        self.assertApiError(
            self.api("POST", "/provision/email-account/", late),
            400,
            "VALIDATION_ERROR",
            "email_account_data.organization_id",
        )
        self.assertEqual(len(org.account_ids), 2)

    @freeze_time("2026-12-16 10:00:00")
    def test_account_conflict_and_extra_user_billing(self):
        org, domain = self.make_org()
        for local in ("first", "second", "third"):  # the plan includes 2 users
            self.api(
                "POST", "/provision/email-account/", self.account_payload(org.id, domain.id, address=local)
            )
        events = org.billing_event_ids.filtered(lambda e: e.event_type == "user_added")
        self.assertFalse(events, "not on the mail server yet (it does not answer): nothing billed")
        # the mail server answers and creates them: the one beyond the plan's two is billed
        client = MagicMock(spec=MailServerClient)
        client.ensure_domain.return_value = RemoteDomain(
            9, domain.name, True, 1, 1, dkim_enabled=True, dkim_public_key="KEY", dkim_selector="s"
        )
        client.ensure_mailbox.side_effect = lambda email, *a, **k: RemoteMailbox(
            len(email), email, True, 10, created=True
        )
        Job = self.env["fayvad.mail.job"]
        Job.search([("organization_id", "=", org.id)]).write({"next_attempt_at": False})  # due now
        with patch.object(type(self.env["fayvad.mail.server"]), "_client", lambda s, deadline=None: client):
            Job._cron_run()
        events = org.billing_event_ids.filtered(lambda e: e.event_type == "user_added")
        self.assertEqual(len(events), 1)
        # the plan's 5.00 per extra user, for the 16 days left of December's 31
        self.assertEqual(events.unit_price, 2.58)
        third = org.account_ids.filtered(lambda a: a.local_part == "third")
        third.state = "active"
        again = self.account_payload(org.id, domain.id, address="THIRD")
        self.assertApiError(
            self.api("POST", "/provision/email-account/", again), 400, "EMAIL_ACCOUNT_ALREADY_EXISTS"
        )

    def test_password_never_stored_readable_nor_returned(self):
        org, domain = self.make_org()
        payload = self.account_payload(org.id, domain.id)
        _status, body, response = self.api("POST", "/provision/email-account/", payload)
        self.assertNotIn("Secure-Passw0rd-123", response.text)
        account = self.env["fayvad.mail.account"].browse(body["email_account"]["id"])
        self.assertNotIn("Secure-Passw0rd-123", str(account.read()))
        self.assertNotIn("Secure-Passw0rd-123", str(account.message_ids.mapped("body")))

    def test_idempotency_key(self):
        self.server.url = "http://127.0.0.1:9"
        payload = self.org_payload()
        headers = {"Idempotency-Key": "order-42"}
        first = self.api("POST", "/provision/organization/", payload, headers=headers)
        again = self.api("POST", "/provision/organization/", payload, headers=headers)
        self.assertEqual((first[0], first[1]), (again[0], again[1]))
        self.assertEqual(
            self.env["fayvad.mail.domain"].search_count(
                [("name", "=", payload["organization_data"]["domain"])]
            ),
            1,
        )
        other = self.org_payload()
        self.assertApiError(
            self.api("POST", "/provision/organization/", other, headers=headers), 409, "CONFLICT"
        )
        bad = self.api(
            "POST", "/provision/organization/", {"organization_data": {}}, headers={"Idempotency-Key": "k2"}
        )
        replay = self.api(
            "POST", "/provision/organization/", {"organization_data": {}}, headers={"Idempotency-Key": "k2"}
        )
        self.assertEqual((bad[0], bad[1]), (replay[0], replay[1]))

    def test_pending_organization_resumes_on_identical_request(self):
        self.server.url = "http://127.0.0.1:9"
        payload = self.org_payload()
        status, body, _ = self.api("POST", "/provision/organization/", payload)
        self.assertEqual((status, body["provisioned"], body["provisioning_status"]), (202, False, "pending"))
        details = body["provisioning_details"]
        self.assertEqual(
            details,
            {
                "domain_created": False,
                "dns_records_generated": False,
                "initial_admin_created": False,
                "domain_verified": False,
                "receives_mail": False,
                "dns_records": details["dns_records"],
            },
        )
        self.assertEqual(
            [(r["purpose"], r["status"]) for r in details["dns_records"]],
            [
                ("verification", "to_publish"),
                ("mx", "to_publish"),
                ("spf", "to_publish"),
                ("dkim", "waiting"),
                ("dmarc", "to_publish"),
            ],
            "the records to publish, DKIM once the mail server made its key",
        )
        job = self.env["fayvad.mail.job"].search([("organization_id", "=", body["organization"]["id"])])
        self.assertEqual(job.job_type, "create_domain")
        self.assertIn("cannot connect", job.last_error)
        status, again, _ = self.api("POST", "/provision/organization/", payload)
        self.assertEqual(status, 202, again)  # resumed, not ORGANIZATION_ALREADY_EXISTS
        self.assertEqual(again["organization"]["id"], body["organization"]["id"])
        self.assertEqual(job.attempts, 1, "resent during its backoff: the job keeps its schedule")
        job.next_attempt_at = "2000-01-01 00:00:00"  # its next try is due
        status, again, _ = self.api("POST", "/provision/organization/", payload)
        self.assertEqual((status, again["organization"]["id"]), (202, body["organization"]["id"]))
        self.assertEqual(job.attempts, 2, "a resent request runs a due job at once")


@tagged("post_install", "-at_install")
class TestProvisioningEndToEnd(ModoboaProvisioningCase):
    """Through the HTTP API and a real Modoboa (started by ./dev test)."""

    modoboa = staticmethod(modoboa_get)

    def remote_domain(self, name):
        return next((d for d in self.modoboa("/domains/", search=name)["results"] if d["name"] == name), None)

    def remote_account(self, email):
        return next(
            (a for a in self.modoboa("/accounts/", search=email)["results"] if a["username"] == email), None
        )

    def test_organization_then_account_provisioned_on_modoboa(self):
        payload = self.org_payload(max_storage_gb=3)
        status, body, _ = self.api("POST", "/provision/organization/", payload)
        self.assertEqual(status, 201, body)
        self.assertTrue(body["provisioned"])
        details = body["provisioning_details"]
        self.assertEqual(
            {
                key: details[key]
                for key in ("domain_created", "dns_records_generated", "initial_admin_created")
            },
            {"domain_created": True, "dns_records_generated": True, "initial_admin_created": True},
        )
        self.assertEqual((details["domain_verified"], details["receives_mail"]), (False, False))
        name = payload["organization_data"]["domain"]
        remote = self.remote_domain(name)
        self.assertTrue(remote)
        self.assertFalse(remote["enabled"], "no mail for a domain whose ownership is not verified")
        remote = self.modoboa(f"/domains/{remote['pk']}/")
        self.assertTrue(remote["dkim_public_key"])
        admins = self.modoboa(f"/domains/{remote['pk']}/administrators/")
        self.assertEqual([a["username"] for a in admins], [f"{DOMAIN_ADMIN_LOCAL_PART}@{name}"])
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        self.assertEqual(org.state, "active")
        dkim = org.domain_ids.dns_record_ids.filtered(lambda r: r.purpose == "dkim")
        self.assertIn(remote["dkim_public_key"], dkim.value)

        account = self.account_payload(org.id, org.domain_ids.id, quota=10 * MB + 1)
        status, body, _ = self.api("POST", "/provision/email-account/", account)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["email_account"]["email"], f"john.doe@{name}")
        self.assertEqual(body["email_account"]["quota"], 10 * MB + 1)
        self.assertEqual(
            body["provisioning_details"],
            {"mailbox_created": True, "user_profile_created": True, "quota_set": True},
        )
        mailbox = self.remote_account(f"john.doe@{name}")
        self.assertEqual(mailbox["mailbox"]["quota"], "11")  # whole MB, rounded up
        self.assertEqual((mailbox["first_name"], mailbox["last_name"]), ("John", "Doe"))
        self.assertTrue(mailbox["is_active"])
        self.env.cr.execute(
            "SELECT pending_password FROM fayvad_mail_account WHERE id = %s", [body["email_account"]["id"]]
        )
        self.assertIsNone(self.env.cr.fetchone()[0], "the password is wiped once Modoboa has it")

    @mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_job")
    def test_refusal_by_modoboa_is_provisioning_failed(self):
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, body)
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        remote = self.remote_domain(org.domain_ids.name)
        # someone shrank the domain on the mail server behind Odoo's back: it refuses the mailbox
        self.modoboa_patch(f"/domains/{remote['pk']}/", {"quota": 5})
        request = self.account_payload(org.id, org.domain_ids.id, quota=10 * MB)
        status, body, _ = self.api("POST", "/provision/email-account/", request)
        self.assertEqual((status, body["error_code"]), (500, "PROVISIONING_FAILED"), body)
        self.assertIn("quota", body["error"].lower(), "the mail server's reason")
        account = self.env["fayvad.mail.account"].browse(body["email_account"]["id"])
        self.assertEqual(account.state, "failed")
        self.assertFalse(self.remote_account(account.email))
        # once the domain is right again, sending the request again resumes the same account
        self.modoboa_patch(f"/domains/{remote['pk']}/", {"quota": remote["quota"]})
        status, body, _ = self.api("POST", "/provision/email-account/", request)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["email_account"]["id"], account.id)
        self.assertTrue(self.remote_account(account.email))

    def modoboa_patch(self, path, payload):
        response = requests.patch(
            f"{MODOBOA_URL}/api/v2{path}",
            json=payload,
            headers={"Authorization": f"Token {MODOBOA_TOKEN}"},
            timeout=10,
        )
        self.assertEqual(response.status_code, 200, response.text)


@tagged("post_install", "-at_install")
class TestProvisioningApiFaults(ModoboaProvisioningCase):
    """Through the HTTP API with a faulty proxy in front of the real Modoboa:
    every fault answers 202, and once Modoboa is reachable the job finishes
    exactly once."""

    def setUp(self):
        super().setUp()
        self.proxy = FaultProxy(MODOBOA_URL, delay=2.5).start()
        self.addCleanup(self.proxy.stop)
        self.server.write({"url": self.proxy.url, "connect_timeout": 1, "read_timeout": 1})

    def test_each_fault_answers_202_then_completes_once(self):
        for mode in ("error", "slow", "closed"):
            with self.subTest(mode=mode):
                self.proxy.mode = mode
                self.server.read_timeout = 1  # a fault answers 202 within the request
                if mode == "closed":
                    self.proxy.stop()
                payload = self.org_payload()
                name = payload["organization_data"]["domain"]
                status, body, _ = self.api("POST", "/provision/organization/", payload)
                self.assertEqual((status, body["provisioning_status"]), (202, "pending"), body)
                job = self.env["fayvad.mail.job"].search(
                    [("organization_id", "=", body["organization"]["id"]), ("job_type", "=", "create_domain")]
                )
                self.assertEqual((job.state, job.attempts), ("pending", 1))
                self.assertTrue(job.last_error and job.next_attempt_at)
                if mode == "closed":
                    self.proxy.start()
                self.proxy.mode = "pass"
                # the faults are over: a patient client for the DKIM key (over 1 s on a busy machine)
                self.server.read_timeout = 30
                org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
                for _ in range(4):  # the cron's next runs, once the retry time has come
                    org.job_ids.filtered(lambda j: j.state == "pending").next_attempt_at = False
                    self.env["fayvad.mail.job"]._cron_run()
                self.assertEqual(set(org.job_ids.mapped("state")), {"done"})
                self.assertEqual(org.state, "active")
                created = [
                    line
                    for line in self.proxy.log
                    if line[:2] == ("POST", "/api/v2/domains/") and line[2] == 201
                ]
                self.assertLessEqual(len(created), 1)
                self.assertEqual(
                    len([d for d in self.modoboa_domains(name) if d["name"] == name]),
                    1,
                    "the domain exists once",
                )
                self.proxy.log.clear()

    def test_a_request_never_waits_beyond_its_budget(self):
        """Each call answers within the read timeout, but a step makes
        several: the budget bounds the whole request, not each call."""
        budget = 1.5
        self.env["ir.config_parameter"].sudo().set_param("fayvad_mail.api_time_budget", str(budget))
        self.server.write({"connect_timeout": 1, "read_timeout": 5})
        self.proxy.mode, self.proxy.delay, self.proxy.slow_methods = "slow", 1.0, {"GET", "POST", "PATCH"}
        started = time.monotonic()
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        waited = time.monotonic() - started
        self.assertEqual((status, body["provisioning_status"]), (202, "pending"), body)
        self.assertLess(
            waited, budget + self.server.connect_timeout, "budget plus one connect timeout at most"
        )
        self.proxy.mode = "pass"  # the cron finishes the work, once
        time.sleep(self.proxy.delay)  # (answers the proxy still holds back)
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        for _ in range(10):
            org.job_ids.filtered(lambda j: j.state == "pending").next_attempt_at = False
            self.env["fayvad.mail.job"]._cron_run()
            if org.state == "active":
                break
        self.assertEqual(org.state, "active", org.job_ids.mapped("last_error"))

    def modoboa_domains(self, name):
        response = requests.get(
            f"{MODOBOA_URL}/api/v2/domains/",
            params={"search": name},
            headers={"Authorization": f"Token {MODOBOA_TOKEN}"},
            timeout=10,
        )
        return response.json()["results"]
