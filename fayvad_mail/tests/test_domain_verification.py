"""Domain verification, over real HTTP, against the real DNS server (Knot)
and the real Modoboa that ``./dev test`` starts: a domain claimed is on the
mail server but disabled until its DNS proves its customer holds it."""

import re
from datetime import timedelta

from odoo import Command, fields, http
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from odoo.addons.fayvad_mail.tests.common import (
    ModoboaProvisioningCase,
    RealDns,
    modoboa_get,
    run_due_jobs,
    silent_dns_server,
    unique,
)

WRONG_KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnotthekeyofthisdomain"


@tagged("post_install", "-at_install")
class TestDomainVerification(RealDns, ModoboaProvisioningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_dns()
        cls.Domain = cls.env["fayvad.mail.domain"]
        cls.accountant = new_test_user(
            cls.env, login="dns_accountant", groups="base.group_user,fayvad_mail.fayvad_mail_group_accountant"
        )

    # -- helpers ----------------------------------------------------------------------------
    def remote_domain(self, name):
        return next((d for d in modoboa_get("/domains/", search=name)["results"] if d["name"] == name), None)

    def claim(self, customer=None):
        """A new organization through the API: its answer, its domain."""
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload(customer=customer))
        self.assertEqual(status, 201, body)
        org = self.env["fayvad.mail.organization"].browse(body["organization"]["id"])
        return body, org.domain_ids

    def run_jobs(self):
        return run_due_jobs(self.env)

    def statuses(self, domain):
        return {record.purpose: record.status for record in domain.dns_record_ids}

    def customer_page(self, org):
        """The portal page of ``org`` as its customer, logged in."""
        login = unique("dns_customer")
        user = new_test_user(self.env, login=login, groups="base.group_portal")
        user.partner_id.parent_id = org.partner_id
        self.authenticate(login, login)
        response = self.url_open(f"/my/mail/{org.id}")
        self.assertEqual(response.status_code, 200)
        return response.text

    # -- ownership ----------------------------------------------------------------------------
    def test_an_unverified_domain_stays_disabled_until_its_txt_record_shows(self):
        body, domain = self.claim()
        self.assertIs(body["provisioning_details"]["receives_mail"], False)
        self.assertFalse(self.remote_domain(domain.name)["enabled"], "created, but no mail is delivered")
        status, account, _ = self.api(
            "POST", "/provision/email-account/", self.account_payload(domain.organization_id.id, domain.id)
        )
        self.assertEqual(status, 201, account)  # a mailbox can be prepared meanwhile
        drift = self.env["fayvad.mail.drift"]
        drift._check(self.server, domain.organization_id)
        self.assertFalse(
            drift.search([("domain_id", "=", domain.id), ("state", "=", "open")]),
            "disabled is what Odoo wants: no drift",
        )

        self.check_due(domain)  # nothing published yet
        self.assertEqual(domain.verification_state, "pending")
        self.assertEqual(
            self.statuses(domain),
            {
                "verification": "missing",
                "mx": "missing",
                "spf": "missing",
                "dkim": "missing",
                "dmarc": "missing",
            },
        )
        first_wait = domain.dns_next_check - domain.dns_checked_at
        self.assertEqual(first_wait, timedelta(minutes=5))
        self.run_jobs()
        self.assertFalse(self.remote_domain(domain.name)["enabled"])

        self.publish_records(domain, "verification")
        self.check_due(domain)
        self.assertEqual((domain.verification_state, domain.verified_how), ("verified", "txt"))
        self.assertEqual(self.statuses(domain)["verification"], "published")
        self.assertTrue(any("verified (TXT record)" in str(m.body) for m in domain.message_ids))
        self.run_jobs()
        self.assertTrue(self.remote_domain(domain.name)["enabled"], "verification enables it")
        self.assertEqual(domain.dns_next_check - domain.dns_checked_at, timedelta(hours=24))

    def test_mx_records_pointing_only_at_the_mail_server_verify_it(self):
        _body, domain = self.claim()
        _body, other = self.claim()
        self.publish(
            f"{domain.name}. IN MX 10 {self.server.mail_host}.",
            f"{other.name}. IN MX 10 {self.server.mail_host}.",
            f"{other.name}. IN MX 20 mx.elsewhere.example.",
        )
        self.check_due(domain, other)
        self.assertEqual((domain.verification_state, domain.verified_how), ("verified", "mx"))
        self.assertEqual(self.statuses(domain)["mx"], "published")
        self.assertEqual(
            other.verification_state, "pending", "MX records that are not all ours prove nothing"
        )
        mx = other.dns_record_ids.filtered(lambda r: r.purpose == "mx")
        self.assertEqual(
            (mx.status, mx.found), ("different", f"10 {self.server.mail_host}, 20 mx.elsewhere.example")
        )
        self.run_jobs()
        self.assertTrue(self.remote_domain(domain.name)["enabled"])
        self.assertFalse(self.remote_domain(other.name)["enabled"])

    def test_a_dns_that_does_not_answer_is_not_a_verification(self):
        _body, domain = self.claim()
        self.publish_records(domain)  # published, but the DNS asked does not answer
        with silent_dns_server() as address:
            self.env["ir.config_parameter"].sudo().set_param("fayvad_mail.dns_nameservers", address)
            self.check_due(domain)
        self.assertEqual(domain.verification_state, "pending")
        self.assertEqual(set(self.statuses(domain).values()), {"unknown"})
        self.assertIn("no answer in time", domain.dns_problem)
        self.run_jobs()
        self.assertFalse(self.remote_domain(domain.name)["enabled"])

        self.setup_dns()  # the DNS answers again
        self.check_due(domain)
        self.assertEqual(domain.verification_state, "verified")
        self.assertFalse(domain.dns_problem)

    def test_claimed_through_the_api_or_the_back_office_alike(self):
        _body, by_api = self.claim()
        name = f"{unique('office')}.example"
        org = self.env["fayvad.mail.organization"].create(
            {
                "name": name,
                "partner_id": self.env["res.partner"].create({"name": name}).id,
                "plan_id": self.plan.id,
                "mail_server_id": self.server.id,
                "domain_ids": [Command.create({"name": name})],
            }
        )
        org.action_provision()
        self.run_jobs()
        by_office = org.domain_ids
        for domain in (by_api, by_office):
            self.assertEqual((domain.state, domain.verification_state), ("active", "pending"))
            self.assertFalse(self.remote_domain(domain.name)["enabled"])
            self.assertEqual(
                domain.dns_record_ids[0].value, f"fayvad-verification={domain.verification_token}"
            )
        self.assertNotEqual(by_api.verification_token, by_office.verification_token)
        self.publish_records(by_api, "verification")
        self.publish_records(by_office, "verification")
        self.check_due(by_api, by_office)
        self.run_jobs()
        for domain in (by_api, by_office):
            self.assertEqual(domain.verification_state, "verified")
            self.assertTrue(self.remote_domain(domain.name)["enabled"])

    def test_another_customers_token_proves_nothing(self):
        _body, domain = self.claim()
        _body, other = self.claim()
        self.publish(f'{domain.name}. IN TXT "fayvad-verification={other.verification_token}"')
        self.check_due(domain)
        self.assertEqual(domain.verification_state, "pending")

    # -- the customer -------------------------------------------------------------------------
    def test_the_customer_verifies_from_the_portal(self):
        customer = self.env["res.partner"].create({"name": unique("Portal DNS Ltd"), "is_company": True})
        _body, domain = self.claim(customer=customer)
        org = domain.organization_id
        page = self.customer_page(org)
        self.assertIn("Prove that this domain is yours", page)
        self.assertIn(f"fayvad-verification={domain.verification_token}", page)
        self.assertIn("receives no mail", page)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

        self.publish_records(domain, "verification", "mx")
        response = self.url_open(f"/my/mail/domain/{domain.id}/verify", data={"csrf_token": csrf})
        self.assertEqual(response.status_code, 200)
        self.assertIn("Your domain is verified", response.text)
        self.assertNotIn("Prove that this domain is yours", response.text)
        self.assertEqual(domain.verification_state, "verified")
        self.assertTrue(self.remote_domain(domain.name)["enabled"], "the portal ran the job at once")

        again = self.url_open(f"/my/mail/domain/{domain.id}/verify", data={"csrf_token": csrf})
        self.assertIn("less than a minute ago", again.text)

    def test_claimed_through_the_api_or_the_portal_alike(self):
        customer = self.env["res.partner"].create({"name": unique("Two Domains Ltd"), "is_company": True})
        _body, by_api = self.claim(customer=customer)
        org = by_api.organization_id
        self.run_jobs()
        page = self.customer_page(org)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        name = f"{unique('portal')}.example"
        response = self.url_open(
            f"/my/mail/{org.id}/domains", data={"csrf_token": csrf, "name": name.upper()}
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("The domain is added", response.text)
        by_portal = org.domain_ids.filtered(lambda d: d.name == name)
        self.assertEqual(len(by_portal), 1)
        self.assertIn(f"fayvad-verification={by_portal.verification_token}", response.text)
        for domain in (by_api, by_portal):
            self.assertEqual((domain.state, domain.verification_state), ("active", "pending"))
            self.assertFalse(self.remote_domain(domain.name)["enabled"], "on the server, receiving nothing")
        self.assertNotEqual(by_api.verification_token, by_portal.verification_token)

        self.publish_records(by_portal, "verification")
        response = self.url_open(f"/my/mail/domain/{by_portal.id}/verify", data={"csrf_token": csrf})
        self.assertIn("Your domain is verified", response.text)
        self.assertTrue(self.remote_domain(by_portal.name)["enabled"])
        self.assertFalse(self.remote_domain(by_api.name)["enabled"], "each domain proves itself")

        # a name another customer holds, or a bad name: a clear error, nothing changes
        _body, others = self.claim()
        for taken, error in (
            (others.name, "already belongs to an organization"),
            ("not a domain", "domain name"),
        ):
            response = self.url_open(f"/my/mail/{org.id}/domains", data={"csrf_token": csrf, "name": taken})
            self.assertEqual(response.status_code, 400)
            self.assertIn(error, response.text)
        self.assertEqual(org.domain_ids, by_api | by_portal)
        self.assertEqual(others.organization_id.domain_ids, others)

    def test_an_internal_user_cannot_verify_through_the_portal(self):
        _body, domain = self.claim()
        self.authenticate("admin", "admin")
        response = self.url_open(
            f"/my/mail/domain/{domain.id}/verify", data={"csrf_token": http.Request.csrf_token(self)}
        )
        self.assertEqual(response.status_code, 403)
        self.assertFalse(domain.dns_checked_at)

    # -- DNS health ---------------------------------------------------------------------------
    def test_a_wrong_dkim_key_is_reported_different(self):
        _body, domain = self.claim()
        self.publish_records(domain, "verification", "mx", "spf", "dmarc")
        self.publish(f'{domain.dkim_selector}._domainkey.{domain.name}. IN TXT "v=DKIM1;k=rsa;p={WRONG_KEY}"')
        self.check_due(domain)
        self.assertEqual(
            self.statuses(domain),
            {
                "verification": "published",
                "mx": "published",
                "spf": "published",
                "dkim": "different",
                "dmarc": "published",
            },
        )
        dkim = domain.dns_record_ids.filtered(lambda r: r.purpose == "dkim")
        self.assertTrue(dkim.found.startswith("p=MIIBIjANBgkqhkiG9w0BAQ"), dkim.found)
        self.assertTrue(dkim.checked_at)
        self.assertEqual(domain.verification_state, "verified")

    def test_a_verified_domain_whose_dkim_breaks_is_told_never_disabled(self):
        customer = self.env["res.partner"].create({"name": unique("Dkim Ltd"), "is_company": True})
        _body, domain = self.claim(customer=customer)
        self.publish_records(domain)
        self.check_due(domain)
        self.assertEqual(set(self.statuses(domain).values()), {"published"})
        self.assertFalse(domain.dns_broken)
        self.run_jobs()

        dkim_name = f"{domain.dkim_selector}._domainkey.{domain.name}."
        self.withdraw(dkim_name)
        self.publish(f'{dkim_name} IN TXT "v=DKIM1;k=rsa;p={WRONG_KEY}"')
        self.check_due(domain)
        self.assertEqual(self.statuses(domain)["dkim"], "different")
        self.assertTrue(domain.dns_broken)
        told = domain.activity_ids.filtered(lambda a: a.user_id == self.accountant)
        self.assertEqual(len(told), 1)
        self.assertIn("DKIM", told.summary)
        self.assertIn("Your DNS records changed", self.customer_page(domain.organization_id))
        self.run_jobs()
        self.assertTrue(self.remote_domain(domain.name)["enabled"], "a broken record never disables it")

        self.check_due(domain)  # still broken: told once
        self.assertEqual(len(domain.activity_ids.filtered(lambda a: a.user_id == self.accountant)), 1)

        self.withdraw(dkim_name)
        self.publish_records(domain, "dkim")
        self.check_due(domain)
        self.assertEqual(self.statuses(domain)["dkim"], "published")
        self.assertFalse(domain.dns_broken)
        self.assertFalse(domain.activity_ids, "the activity is done once the records are back")

    # -- schedule, settings -------------------------------------------------------------------
    def test_checks_grow_apart_then_give_up_after_thirty_days(self):
        _body, domain = self.claim()
        now = fields.Datetime.now()
        waits = []
        for count in (1, 2, 3, 5, 9, 20):
            domain.dns_check_count = count
            domain._schedule_dns_check(now)
            waits.append(domain.dns_next_check - now)
        self.assertEqual(
            waits,
            [timedelta(minutes=m) for m in (5, 10, 20, 80)] + [timedelta(hours=12), timedelta(hours=12)],
        )
        domain.dns_check_count = 0
        self.check_due(domain)
        domain._schedule_dns_check(domain.create_date + timedelta(days=30))
        self.assertEqual((domain.verification_state, domain.dns_next_check), ("expired", False))
        told = domain.organization_id.activity_ids.filtered(lambda a: a.user_id == self.accountant)
        self.assertIn("was not verified in time", told.summary)
        self.check_due(domain)
        self.assertEqual(domain.dns_check_count, 1, "the cron checks it no more")

        self.publish_records(domain, "verification")
        domain.with_user(self.accountant).action_verify_now()  # Verify Now still works
        self.assertEqual(domain.verification_state, "verified")

    def test_without_required_verification_a_domain_works_at_once(self):
        self.env.company.fayvad_require_domain_verification = False
        body, domain = self.claim()
        details = body["provisioning_details"]
        self.assertEqual((details["domain_verified"], details["receives_mail"]), (False, True))
        self.assertTrue(self.remote_domain(domain.name)["enabled"])
        self.check_due(domain)
        self.assertEqual(domain.verification_state, "pending", "verification is still reported")

        self.env.company.fayvad_require_domain_verification = True
        self.run_jobs()
        self.assertFalse(
            self.remote_domain(domain.name)["enabled"], "required again: disabled until verified"
        )

    def test_a_mail_hosting_user_cannot_verify_nor_vouch(self):
        _body, domain = self.claim()
        reader = new_test_user(
            self.env, login="dns_reader", groups="base.group_user,fayvad_mail.fayvad_mail_group_user"
        )
        with self.assertRaises(AccessError):
            domain.with_user(reader).action_verify_now()
        with self.assertRaises(AccessError):
            domain.with_user(self.accountant).action_mark_verified()
        self.assertEqual(domain.verification_state, "pending")
