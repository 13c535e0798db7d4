"""One bad record never stops a cron: each cron handles its records one per
savepoint, keeps the error on the record that failed (for accountants to
see) and goes on with the others. The mail server is a mock here."""

import time
from datetime import date, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.fayvad_mail.tests.common import BillingCase, MockedServerCase
from odoo.addons.fayvad_mail.tools.mailserver import RemoteDomain, RemoteMailbox

MIXIN = "odoo.addons.fayvad_mail.models.fayvad_mail_cron_mixin"


def poisoned(model, method, victim, message="poisoned record"):
    """Patch ``model.method`` to raise for the record ``victim`` only."""
    original = getattr(type(model), method)

    def wrapper(self, *args, **kwargs):
        if victim in self:
            raise RuntimeError(message)
        return original(self, *args, **kwargs)

    return patch.object(type(model), method, wrapper)


@tagged("post_install", "-at_install")
class TestBillingCrons(BillingCase):
    def orgs(self, count, day="2026-03-01"):
        orgs = self.env["fayvad.mail.organization"]
        for i in range(count):
            partner = self.env["res.partner"].create({"name": f"Cron customer {i}"})
            with freeze_time(day):
                org = self.env["fayvad.mail.organization"].create(
                    {
                        "name": f"Cron {i}",
                        "partner_id": partner.id,
                        "plan_id": self.plan.id,
                        "state": "active",
                    }
                )
                self.env["fayvad.mail.subscription"]._start(org, self.plan)
            orgs |= org
        return orgs

    @mute_logger(MIXIN)
    def test_suspension_of_cancelled_subscriptions(self):
        good, bad, gone = self.orgs(3)
        for org in (good, bad, gone):
            org.subscription_id.write({"state": "cancelled", "suspend_on": date(2026, 3, 20)})
        gone.write({"state": "terminated"})  # terminated before this version cancelled its schedule
        with freeze_time("2026-03-19"):  # the paid period runs until the 19th
            self.env["fayvad.mail.subscription"]._cron_suspend_cancelled()
        self.assertEqual(good.state, "active")
        with freeze_time("2026-03-21"), poisoned(bad, "_suspend", bad):
            self.env["fayvad.mail.subscription"]._cron_suspend_cancelled()
        self.assertEqual((good.state, good.suspension_reason), ("suspended", "cancelled"))
        self.assertFalse(good.subscription_id.suspend_on)
        self.assertEqual(gone.state, "terminated", "a terminated organization is left alone")
        self.assertEqual(bad.state, "active")
        self.assertIn("poisoned record", bad.subscription_id.cron_error)
        self.assertEqual(bad.subscription_id.suspend_on, date(2026, 3, 20), "tried again tomorrow")
        with freeze_time("2026-03-22"):  # the cause is gone: the next run suspends it and clears the error
            self.env["fayvad.mail.subscription"]._cron_suspend_cancelled()
        self.assertEqual(bad.state, "suspended")
        self.assertFalse(bad.subscription_id.cron_error)

    @mute_logger(MIXIN)
    def test_renewal_and_posting(self):
        good, bad = self.orgs(2)
        self.sync("2026-03-02")
        bad_invoice = bad.billing_event_ids.invoice_id
        with (
            freeze_time("2026-04-01"),
            poisoned(bad.subscription_id, "_renew", bad.subscription_id, "renewal refused"),
            poisoned(bad_invoice, "action_post", bad_invoice, "lock date"),
        ):
            self.env["fayvad.mail.subscription"]._cron_monthly_invoicing()
        self.assertEqual(good.subscription_id.period_start, date(2026, 4, 1))
        april = good.billing_event_ids.filtered(lambda e: e.date == date(2026, 4, 1))
        self.assertEqual(
            april.filtered(lambda e: e.event_type == "subscription_updated").mapped("amount"), [100.0]
        )
        self.assertEqual(
            good.billing_event_ids.invoice_id.filtered(lambda m: m.fayvad_period_start.month == 3).state,
            "posted",
        )
        self.assertEqual(bad.subscription_id.period_start, date(2026, 3, 1))
        self.assertIn("renewal refused", bad.subscription_id.cron_error)
        self.assertEqual(bad_invoice.state, "draft")
        self.assertIn("lock date", bad.cron_error)

    @mute_logger(MIXIN)
    def test_dunning(self):
        self.company.fayvad_dunning_grace_days = 5
        good, bad = self.orgs(2)
        for org in (good, bad):
            invoice = self.init_invoice(
                "out_invoice", partner=org.partner_id, invoice_date="2026-03-01", amounts=[100], post=True
            )
            invoice.write({"fayvad_organization_id": org.id, "invoice_date_due": "2026-03-01"})
        with freeze_time("2026-03-10"), poisoned(bad, "_suspend", bad):
            self.env["fayvad.mail.subscription"]._cron_dunning()
        self.assertEqual((good.state, good.suspension_reason), ("suspended", "non_payment"))
        self.assertEqual(bad.state, "active")
        self.assertIn("poisoned record", bad.cron_error)

    @mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_billing_event")
    def test_sync(self):
        good, bad = self.orgs(2)
        bad_event = bad.billing_event_ids
        with poisoned(bad_event, "_sync_invoice_line", bad_event, "no income account"):
            self.sync("2026-03-02")
        self.assertTrue(good.billing_event_ids.odoo_synced)
        self.assertEqual(bad_event.sync_state, "pending")
        self.assertIn("no income account", bad_event.last_error)


@tagged("post_install", "-at_install")
class TestMailServerCrons(MockedServerCase):
    def active_org(self, name):
        org = self.make_org(name=name, domain=f"{name.lower()}.example", state="active")
        org.domain_ids.state = "active"
        account = self.make_account(org, "a", quota_mb=10, state="active")
        return org, account

    @mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_job")
    def test_job_that_crashes_outside_its_savepoint_is_charged_and_not_taken_again(self):
        _org, account_ok = self.active_org("Fine")
        _org, account_bad = self.active_org("Crash")
        bad = self.Job._enqueue("set_quota", account=account_bad)
        good = self.Job._enqueue("set_quota", account=account_ok)
        self.client.find_mailbox.side_effect = lambda email: RemoteMailbox(7, email, True, 10)
        runs = []
        original = type(self.Job)._run

        def run(job, deadline=None):
            runs.append(job.id)
            if job == bad:
                job.attempts += 1
                raise RuntimeError("the bookkeeping itself failed")
            return original(job, deadline=deadline)

        with patch.object(type(self.Job), "_run", run):
            self.assertEqual(self.Job._cron_run(limit=50), 2)
        self.assertEqual(runs.count(bad.id), 1, "taken once in the run, not in a hot loop")
        self.assertEqual(good.state, "done")
        self.assertEqual((bad.state, bad.attempts), ("pending", 1), "the attempt is counted")
        self.assertIn("bookkeeping itself failed", bad.last_error)
        self.assertGreater(bad.next_attempt_at, fields.Datetime.now(), "backed off")
        self.assertFalse(self.Job._acquire(), "not due before its backoff")

    def test_runner_stops_at_its_time_budget(self):
        self.env["ir.config_parameter"].sudo().set_param("fayvad_mail.job_runner_budget", "0.5")
        accounts = [self.active_org(f"Slow{i}")[1] for i in range(5)]
        jobs = self.Job.concat(*(self.Job._enqueue("set_quota", account=a) for a in accounts))

        def slow_find(email):
            time.sleep(0.3)
            return RemoteMailbox(7, email, True, 10)

        self.client.find_mailbox.side_effect = slow_find
        started = time.monotonic()
        ran = self.Job._cron_run(limit=50)
        self.assertLess(ran, 5, "stopped by the budget, not by the count")
        self.assertLess(time.monotonic() - started, 0.5 + 0.3 + 0.5)
        self.assertEqual(len(jobs.filtered(lambda j: j.state == "done")), ran)
        while self.Job._cron_run(limit=50):  # the next calls go on where it stopped
            pass
        self.assertEqual(set(jobs.mapped("state")), {"done"})

    def test_usage_reading(self):
        org_ok, account_ok = self.active_org("Usage")
        org_bad, _account = self.active_org("Broken")
        self.client.find_domain.side_effect = lambda name: RemoteDomain(1, name, True, 10, 1)
        self.client.list_mailboxes.side_effect = lambda _id: [
            RemoteMailbox(7, account_ok.email, True, 10, used_bytes=1234)
        ]
        Snapshot = self.env["fayvad.mail.usage.snapshot"]
        original = type(Snapshot)._read_domain_usage

        def read(model, client, domain):
            if domain == org_bad.domain_ids:
                raise RuntimeError("unexpected answer")
            return original(model, client, domain)

        with (
            patch.object(type(Snapshot), "_read_domain_usage", read),
            mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_usage_snapshot"),
        ):
            Snapshot._cron_read_usage()
        self.assertEqual(account_ok.storage_used, 1234)
        self.assertIn("unexpected answer", org_bad.domain_ids.cron_error)
        self.assertFalse(org_ok.domain_ids.cron_error)

    @mute_logger(MIXIN)
    def test_drift_check(self):
        other = self.env["fayvad.mail.server"].create(
            {"name": "Other", "url": "http://127.0.0.1:9", "token": "x"}
        )
        Drift = self.env["fayvad.mail.drift"]
        checked = []
        original = type(Drift)._check

        def check(model, server, organizations=None):
            if server == other:
                raise RuntimeError("cannot compare")
            checked.append(server)
            return original(model, server, organizations)

        self.client.list_domains.return_value = []
        with patch.object(type(Drift), "_check", check):
            Drift._cron_check()
        self.assertIn(self.server, checked)
        self.assertIn("cannot compare", other.cron_error)

    @mute_logger("odoo.addons.fayvad_mail.models.fayvad_mail_webhook_delivery")
    def test_delivery_retention(self):
        self.company.fayvad_webhook_retention_days = 30
        Delivery = self.env["fayvad.mail.webhook.delivery"]
        old = Delivery.create(
            [{"reference": f"old-{i}", "company_id": self.company.id, "body": "{}"} for i in range(3)]
        )
        recent = Delivery.create({"reference": "recent", "company_id": self.company.id, "body": "{}"})
        stuck = old[1]
        original = type(Delivery).unlink

        def unlink(records):
            if stuck in records:
                raise RuntimeError("held by something")
            return original(records)

        Delivery.flush_model()
        self.env.cr.execute(
            "UPDATE fayvad_mail_webhook_delivery SET create_date = %s WHERE id = ANY(%s)",
            [fields.Datetime.now() - timedelta(days=40), old.ids],
        )
        with patch.object(type(Delivery), "unlink", unlink):
            Delivery._cron_prune()
        self.assertEqual((old - stuck).exists(), Delivery, "the others are pruned")
        self.assertTrue(recent.exists() and stuck.exists())
        self.assertIn("held by something", stuck.error)
