"""Mail delivered for real by what fayvad_mail provisions: messages sent over
SMTP to the Postfix of ``./dev test``, stored by its Dovecot and read over
IMAP with the passwords Odoo handed over; suspension keeps the mail and
refuses the logins, termination makes the address unknown. No mocks."""

import json
import re
import smtplib
import time

import dkim

from odoo import fields
from odoo.tests import new_test_user, tagged

from odoo.addons.fayvad_mail.tests.common import ModoboaProvisioningCase, RealDns, run_due_jobs, unique
from odoo.addons.fayvad_mail.tests.common_mail import DOVEADM_KEY, DOVEADM_URL, RealMail
from odoo.addons.fayvad_mail.tests.samples import SAMPLE_EMAIL_ACCOUNT
from odoo.addons.fayvad_mail.tests.test_portal import shown_password
from odoo.addons.fayvad_mail.tools.signature import sign
from odoo.addons.fayvad_mail.tools.units import MB

SAMPLE_PASSWORD = SAMPLE_EMAIL_ACCOUNT["email_account_data"]["user_info"]["password"]
PASSWORD = "Box-Passw0rd-77"


@tagged("post_install", "-at_install")
class TestMailDelivery(RealMail, RealDns, ModoboaProvisioningCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_dns()
        cls.setup_mail()

    # -- helpers ----------------------------------------------------------------------------
    def run_jobs(self):
        return run_due_jobs(self.env)

    def claim(self):
        """A new organization through the API; its domain (not verified)."""
        status, body, _ = self.api("POST", "/provision/organization/", self.org_payload())
        self.assertEqual(status, 201, body)
        return self.env["fayvad.mail.organization"].browse(body["organization"]["id"]).domain_ids

    def verify(self, domain):
        self.publish_records(domain, "verification")
        self.check_due(domain)
        self.run_jobs()
        self.assertEqual(domain.verification_state, "verified")

    def mailbox(self, domain, local="john.doe", password=PASSWORD):
        """A mailbox made through the API with ``password``."""
        payload = self.account_payload(domain.organization_id.id, domain.id, address=local)
        payload["email_account_data"]["user_info"]["password"] = password
        status, body, _ = self.api("POST", "/provision/email-account/", payload)
        self.assertEqual(status, 201, body)
        self.run_jobs()
        account = self.env["fayvad.mail.account"].browse(body["email_account"]["id"])
        self.assertEqual(account.state, "active")
        return account

    def assertRefused(self, address, code, text, within=10):
        """Mail to ``address`` is refused at RCPT, at the latest ``within``
        seconds from now (Postfix remembers a verified address a second)."""
        deadline = time.monotonic() + within
        while True:
            try:
                self.deliver(address)
            except smtplib.SMTPRecipientsRefused as refused:
                got_code, got_text = refused.recipients[address]
                if got_code >= 500 or time.monotonic() > deadline:  # 4xx: being verified, try again
                    self.assertEqual(got_code, code, got_text)
                    self.assertIn(text, got_text.decode())
                    return
            self.assertLess(time.monotonic(), deadline, f"mail to {address} is still accepted")
            time.sleep(0.5)

    # -- delivery -----------------------------------------------------------------------------
    def test_the_documents_sample_mailbox_receives_its_mail_once_its_domain_is_verified(self):
        domain = self.claim()
        john = self.mailbox(domain, password=SAMPLE_PASSWORD)  # the document's sample password
        self.assertRefused(john.email, 554, "Relay access denied")  # not verified: no mail taken
        self.assertTrue(self.imap_login_refused(john.email, SAMPLE_PASSWORD), "no login either")

        self.verify(domain)
        subject = self.deliver(john.email)
        messages = self.wait_for_subjects(john.email, SAMPLE_PASSWORD, [subject])
        self.assertEqual(messages, [subject])
        self.assertFalse(self.smtp_login_refused(john.email, SAMPLE_PASSWORD))
        self.assertTrue(self.imap_login_refused(john.email, "not-" + SAMPLE_PASSWORD))

    def test_a_mailbox_added_in_the_portal_works_with_the_password_its_page_showed(self):
        domain = self.claim()
        self.verify(domain)
        org = domain.organization_id
        login = unique("mail_customer")
        new_test_user(self.env, login=login, groups="base.group_portal").partner_id.parent_id = org.partner_id
        self.authenticate(login, login)
        page = self.url_open(f"/my/mail/{org.id}").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

        def shown(answer):
            self.assertEqual(answer.status_code, 303, answer.text[:300])
            return shown_password(self.url_open(answer.headers["Location"], allow_redirects=False).text)

        added = self.url_open(
            f"/my/mail/{org.id}/mailboxes",
            data={"csrf_token": csrf, "local_part": "carol", "quota_mb": "20"},
            allow_redirects=False,
        )
        password = shown(added)
        self.run_jobs()
        carol = org.account_ids.filtered(lambda a: a.email.startswith("carol@"))
        self.assertEqual(carol.state, "active")
        subject = self.deliver(carol.email)
        self.wait_for_subjects(carol.email, password, [subject])

        reset = self.url_open(
            f"/my/mail/mailbox/{carol.id}/password", data={"csrf_token": csrf}, allow_redirects=False
        )
        new_password = shown(reset)
        self.run_jobs()
        self.assertNotEqual(new_password, password)
        self.assertTrue(self.imap_login_refused(carol.email, password), "the old password is refused")
        self.assertEqual(self.subjects(carol.email, new_password), [subject])

    def test_a_reset_password_works_and_the_old_one_is_refused(self):
        domain = self.claim()
        self.verify(domain)
        john = self.mailbox(domain)
        john._reset_password("Fresh-Passw0rd-12")
        self.run_jobs()
        self.assertTrue(self.imap_login_refused(john.email, PASSWORD))
        self.assertTrue(self.smtp_login_refused(john.email, PASSWORD))
        subject = self.deliver(john.email)
        self.wait_for_subjects(john.email, "Fresh-Passw0rd-12", [subject])

    def test_aliases_catch_all_forward_and_domain_alias_deliver_where_odoo_says(self):
        domain = self.claim()
        self.verify(domain)
        john = self.mailbox(domain)
        box = self.mailbox(domain, "box")
        Alias = self.env["fayvad.mail.alias"]
        aliases = Alias.create(
            [
                {"local_part": "sales", "domain_id": domain.id, "recipients": john.email},
                {"kind": "catchall", "domain_id": domain.id, "recipients": box.email},
                {"kind": "forward", "account_id": john.id, "recipients": "john@elsewhere.example"},
            ]
        )
        aliases.action_provision()
        self.run_jobs()
        self.assertEqual(set(aliases.mapped("state")), {"active"})
        other = f"alias-{domain.name}"
        status, body, _ = self.api(
            "POST",
            "/provision/domain-alias/",
            {
                "domain_alias_data": {
                    "organization_id": domain.organization_id.id,
                    "name": other,
                    "domain": domain.id,
                }
            },
        )
        self.assertEqual(status, 201, body)
        self.run_jobs()

        to_alias = self.deliver(f"sales@{domain.name}")
        to_nobody = self.deliver(f"nobody@{domain.name}")
        to_john = self.deliver(john.email)
        via_domain_alias = self.deliver(f"john.doe@{other}")
        self.wait_for_subjects(john.email, PASSWORD, [to_alias, to_john, via_domain_alias])
        self.wait_for_subjects(box.email, PASSWORD, [to_nobody])
        self.assertNotIn(to_nobody, self.subjects(john.email, PASSWORD))
        self.assertNotIn(to_john, self.subjects(box.email, PASSWORD))
        forwarded = [m for m in self.sink_messages() if str(m["Subject"]) == to_john]
        self.assertEqual(len(forwarded), 1, "the forward sent it on (and john kept a copy)")

    # -- storage -------------------------------------------------------------------------------
    def test_usage_is_dovecots_own_count_to_the_byte(self):
        self.server.write({"doveadm_url": DOVEADM_URL, "doveadm_key": DOVEADM_KEY})
        domain = self.claim()
        self.verify(domain)
        org = domain.organization_id
        john = self.mailbox(domain)  # a 10 MB quota
        self.assertEqual(john.quota, 10 * MB)
        subjects = [self.deliver(john.email, size=2_900_000) for _ in range(3)]
        self.wait_for_subjects(john.email, PASSWORD, subjects)

        self.env["fayvad.mail.usage.snapshot"]._cron_read_usage()
        stored = self.dovecot_bytes(john.email)
        self.assertGreater(stored, 8 * MB)
        self.assertEqual(john.storage_used, stored, "Odoo reads what Dovecot counts, to the byte")
        status, body, _ = self.api("GET", f"/usage-summary/?organization_id={org.id}&include_details=true")
        self.assertEqual(status, 200, body)
        (entry,) = body["organizations"]
        self.assertEqual({a["email"]: a["used"] for a in entry["email_accounts"]}[john.email], stored)
        self.assertEqual(entry["storage"]["used_gb"], round(stored / 1024**3, 2))
        alerts = self.env["mail.activity"].search(
            [("res_model", "=", "fayvad.mail.organization"), ("res_id", "=", org.id)]
        )
        self.assertEqual(alerts.mapped("summary"), [f"The mailbox {john.email} is at 80% of its quota"])

        # a message larger than what is left (with Dovecot's 10 % grace) is refused when the
        # sender announces its size
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as refused:
            self.deliver(john.email, size=3_000_000)
        code, text = refused.exception.recipients[john.email]
        self.assertEqual((code, b"Mailbox is full" in text), (552, True), text)
        self.assertEqual(self.dovecot_bytes(john.email), stored)

    # -- sending -------------------------------------------------------------------------------
    def billing_webhook(self, org, kind):
        secret = "sending-limit-secret-" + "x" * 24
        self.env["fayvad.mail.webhook.secret"].create({"secret": secret})
        raw = json.dumps(
            {
                "event_type": kind,
                "organization_id": org.id,
                "billing_data": {"amount": 10.0, "currency": "USD", "invoice_id": f"INV-{kind}"},
                "timestamp": fields.Datetime.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()
        status, body, _ = self.api(
            "POST",
            "/webhooks/billing/",
            raw=raw,
            key=False,
            headers={"X-Webhook-Signature": sign(secret, raw)},
        )
        self.assertEqual(status, 200, body)
        self.run_jobs()

    def assertSendDeferred(self, login, text):
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as deferred:
            self.submit(login, PASSWORD, "friend@elsewhere.example")
        code, answer = next(iter(deferred.exception.recipients.values()))
        self.assertEqual(code, 450, answer)
        self.assertIn(text, answer.decode())

    def test_the_plans_daily_limit_and_dunning_hold_for_real_sending(self):
        self.plan.daily_message_limit = 3
        domain = self.claim()
        self.verify(domain)
        org = domain.organization_id
        john = self.mailbox(domain)
        sent = [self.submit(john.email, PASSWORD, "friend@elsewhere.example")["Subject"] for _ in range(3)]
        self.assertSendDeferred(john.email, "limit")  # the 4th of the day
        deadline = time.monotonic() + 30
        while {str(m["Subject"]) for m in self.sink_messages()} < set(sent) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertLessEqual(set(sent), {str(m["Subject"]) for m in self.sink_messages()}, "the 3 left")

        box = self.mailbox(domain, "box")
        self.submit(box.email, PASSWORD, "friend@elsewhere.example")  # each mailbox has its own 3
        self.billing_webhook(org, "payment_failed")
        self.assertTrue(org.sending_blocked)
        self.assertSendDeferred(box.email, "limit")
        received = self.deliver(box.email)  # receiving goes on
        self.wait_for_subjects(box.email, PASSWORD, [received])

        self.billing_webhook(org, "payment_received")
        self.assertFalse(org.sending_blocked)
        self.submit(box.email, PASSWORD, "friend@elsewhere.example")

    def test_what_a_mailbox_sends_is_dkim_signed_with_the_key_its_domain_publishes(self):
        domain = self.claim()
        self.verify(domain)
        john = self.mailbox(domain)
        record = domain.dns_record_ids.filtered(lambda r: r.purpose == "dkim")
        self.assertTrue(record.value.startswith("v=DKIM1;k=rsa;p="), "the record the domain form shows")

        def published(name, timeout=5):
            return record.value.encode() if name.decode().rstrip(".") == record.name.rstrip(".") else None

        # the signer's key table follows Modoboa's database within a second
        deadline = time.monotonic() + 20
        while True:
            raw = self.sink_raw(self.submit(john.email, PASSWORD, "friend@elsewhere.example")["Subject"])
            if b"DKIM-Signature:" in raw or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertIn(f"d={domain.name};".encode(), raw)
        self.assertTrue(dkim.verify(raw, dnsfunc=published), "it verifies against the published record")
        tampered = raw.replace(b"Hello from the tests.", b"Hello from someone else.")
        self.assertFalse(dkim.verify(tampered, dnsfunc=published))

    # -- suspension and termination ----------------------------------------------------------
    def with_catch_all(self):
        """A verified domain, its mailbox john and a catch-all delivering to its mailbox box."""
        domain = self.claim()
        self.verify(domain)
        john = self.mailbox(domain)
        box = self.mailbox(domain, "box")
        catchall = self.env["fayvad.mail.alias"].create(
            {"kind": "catchall", "domain_id": domain.id, "recipients": box.email}
        )
        catchall.action_provision()
        self.run_jobs()
        return domain, john, box

    def assertKeptThroughSuspension(self, suspend, lift, john, box):
        """While suspended (``suspend()``), ``john`` refuses IMAP and SMTP
        logins and keeps receiving; lifted (``lift()``), every message is in
        its mailbox and none went to the catch-all's ``box``."""
        suspend()
        self.run_jobs()
        self.assertTrue(self.imap_login_refused(john.email, PASSWORD))
        self.assertTrue(self.smtp_login_refused(john.email, PASSWORD))
        during = self.deliver(john.email)
        self.wait_until_stored(john.email, [during])
        lift()
        self.run_jobs()
        after = self.deliver(john.email)
        self.wait_for_subjects(john.email, PASSWORD, [during, after])
        self.assertEqual(self.subjects(box.email, PASSWORD), [], "nothing went to the catch-all")
        return [during, after]

    def test_a_suspended_mailbox_keeps_its_mail_and_refuses_logins(self):
        _domain, john, box = self.with_catch_all()
        before = self.deliver(john.email)
        self.wait_for_subjects(john.email, PASSWORD, [before])
        first = self.assertKeptThroughSuspension(john.action_suspend, john.action_unsuspend, john, box)
        # suspended and lifted again: still the mailbox's own mail
        again = self.assertKeptThroughSuspension(john.action_suspend, john.action_unsuspend, john, box)
        self.assertEqual(self.subjects(john.email, PASSWORD), sorted([before, *first, *again]))

    def test_a_suspended_organization_keeps_its_mail_and_refuses_logins(self):
        domain, john, box = self.with_catch_all()
        org = domain.organization_id
        self.assertKeptThroughSuspension(org.action_suspend, org.action_unsuspend, john, box)

    def test_a_terminated_mailbox_is_an_unknown_user(self):
        domain = self.claim()
        self.verify(domain)
        john = self.mailbox(domain)
        self.wait_for_subjects(john.email, PASSWORD, [self.deliver(john.email)])
        john.action_terminate()
        self.run_jobs()
        self.assertRefused(john.email, 550, "User doesn't exist")
        self.assertTrue(self.imap_login_refused(john.email, PASSWORD))
