"""Provisioning end to end against the real Modoboa that ``./dev test``
starts: Odoo's jobs run, and Modoboa's own API is asked what exists."""

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import ModoboaCase, unique_domain
from odoo.addons.fayvad_mail.tools.names import DOMAIN_ADMIN_LOCAL_PART
from odoo.addons.fayvad_mail.tools.units import MB

PASSWORD = "Hand-0ver_Passw0rd"


@tagged("post_install", "-at_install")
class TestProvisioningE2E(ModoboaCase):
    def assertJobsDone(self, org):
        jobs = org.job_ids
        self.assertTrue(jobs)
        self.assertEqual(set(jobs.mapped("state")), {"done"}, jobs.mapped(lambda j: (j.name, j.last_error)))

    # -- provisioning -----------------------------------------------------------------
    def test_provision_organization_and_accounts(self):
        org = self.new_org()
        name = org.domain_ids.name
        alice = self.make_account(org, "alice", quota_mb=300, first_name="Alice")
        bob = self.env["fayvad.mail.account"].create(
            {
                "local_part": "bob",
                "domain_id": org.domain_ids.id,
                "quota": int(1.5 * MB),
            }  # rounded up to 2 MB
        )
        alice._set_pending_password(PASSWORD)
        org.action_provision()
        self.assertEqual(org.state, "provisioning")
        self.run_jobs()

        self.assertJobsDone(org)
        self.assertEqual(org.state, "active")
        domain = org.domain_ids
        self.assertEqual(domain.state, "active")
        self.assertTrue(domain.admin_created)

        # the domain, its quotas and its DKIM key, as Modoboa tells
        remote = self.api_domain(name)
        self.assertIsNotNone(remote)
        self.assertTrue(remote["enabled"])
        self.assertTrue(remote["enable_dkim"])
        self.assertTrue(remote["dkim_public_key"])
        self.assertEqual(remote["quota"], str(org._domain_quotas()[0]))
        self.assertEqual(
            remote["quota"], str(2 * 10**9 // MB + 1 + 5)
        )  # 2 GB in MB, rounded up, + 1 MB per user
        self.assertEqual(remote["default_mailbox_quota"], str(org._domain_quotas()[1]))
        self.assertEqual(domain.remote_id, remote["pk"])

        # DNS: the records to publish, the DKIM one from Modoboa's key
        self.assertEqual(domain.dkim_public_key, remote["dkim_public_key"])
        records = {r.purpose: r for r in domain.dns_record_ids}
        self.assertEqual(set(records), {"verification", "mx", "spf", "dkim", "dmarc"})
        self.assertEqual(records["verification"].value, f"fayvad-verification={domain.verification_token}")
        self.assertEqual(records["dkim"].name, f"{remote['dkim_key_selector']}._domainkey.{name}.")
        self.assertEqual(records["dkim"].value, f"v=DKIM1;k=rsa;p={remote['dkim_public_key']}")
        self.assertEqual(records["dkim"].status, "to_publish")
        self.assertEqual(records["mx"].value, "mx.e2e.example.")

        # the domain administrator: a login without a mailbox
        admins = self.api("GET", f"/api/v2/domains/{remote['pk']}/administrators/")
        self.assertEqual([a["username"] for a in admins], [f"{DOMAIN_ADMIN_LOCAL_PART}@{name}"])
        admin = self.api_account(f"{DOMAIN_ADMIN_LOCAL_PART}@{name}")
        self.assertEqual(admin["role"], "DomainAdmins")
        self.assertIsNone(admin["mailbox"])
        self.assertEqual(admin["domains"], [name])

        # the mailboxes and their quotas in whole MB, rounded up
        accounts = {a["username"]: a for a in self.api_accounts(remote["pk"])}
        self.assertEqual(set(accounts), {f"alice@{name}", f"bob@{name}"})
        self.assertEqual(accounts[f"alice@{name}"]["mailbox"]["quota"], "300")
        self.assertEqual(accounts[f"bob@{name}"]["mailbox"]["quota"], "2")
        self.assertFalse(accounts[f"bob@{name}"]["mailbox"]["use_domain_quota"])
        self.assertEqual(accounts[f"alice@{name}"]["first_name"], "Alice")
        self.assertTrue(all(a["is_active"] for a in accounts.values()))
        for account in alice | bob:
            self.assertEqual(account.state, "active")
            self.assertEqual(account.remote_id, accounts[account.email]["pk"])
        # the password was handed over, then wiped from Odoo
        self.assertIsNone(alice._get_pending_password())

    def test_rerunning_done_steps_changes_nothing(self):
        org = self.provisioned_org(accounts=(("alice", 300), ("bob", 100)))
        name = org.domain_ids.name
        before = self.api_domain(name)
        before_accounts = sorted(
            (a["pk"], a["username"], a["mailbox"]["quota"]) for a in self.api_accounts(before["pk"])
        )
        org.job_ids.write({"state": "pending", "next_attempt_at": False})
        self.run_jobs()
        self.assertJobsDone(org)
        after = self.api_domain(name)
        self.assertEqual(after["pk"], before["pk"])
        self.assertEqual(after["dkim_public_key"], before["dkim_public_key"])
        after_accounts = sorted(
            (a["pk"], a["username"], a["mailbox"]["quota"]) for a in self.api_accounts(after["pk"])
        )
        self.assertEqual(after_accounts, before_accounts)
        admins = self.api("GET", f"/api/v2/domains/{after['pk']}/administrators/")
        self.assertEqual(len(admins), 1)

    # -- lifecycle ----------------------------------------------------------------------
    def test_suspend_unsuspend_quota_terminate(self):
        org = self.provisioned_org(accounts=(("alice", 300), ("bob", 100)))
        name = org.domain_ids.name
        pk = self.api_domain(name)["pk"]
        alice, bob = org.account_ids.sorted("email")

        def remote_states():
            return {a["username"].split("@")[0]: a["is_active"] for a in self.api_accounts(pk)}

        # soft suspension: logins blocked, the domain stays enabled (mail still received)
        org.action_suspend()
        self.run_jobs()
        self.assertJobsDone(org)
        self.assertEqual(remote_states(), {"alice": False, "bob": False})
        self.assertTrue(self.api_domain(name)["enabled"])
        self.assertEqual(set(org.account_ids.mapped("state")), {"suspended"})

        org.action_unsuspend()
        self.run_jobs()
        self.assertJobsDone(org)
        self.assertEqual(remote_states(), {"alice": True, "bob": True})
        self.assertEqual(set(org.account_ids.mapped("state")), {"active"})

        # one account
        bob.action_suspend()
        self.run_jobs()
        self.assertEqual(remote_states(), {"alice": True, "bob": False})
        bob.action_unsuspend()
        self.run_jobs()
        self.assertEqual(remote_states(), {"alice": True, "bob": True})

        # a quota change, rounded up to whole MB
        alice.quota = 500 * MB + 1
        self.run_jobs()
        self.assertJobsDone(org)
        self.assertEqual(self.api_account(alice.email)["mailbox"]["quota"], "501")

        # organization limits follow on the domain quota
        org.max_storage_gb = 3
        self.run_jobs()
        self.assertEqual(self.api_domain(name)["quota"], str(org._domain_quotas()[0]))

        # termination: the accounts (administrator included), then the domain
        org.action_terminate()
        self.run_jobs()
        self.assertJobsDone(org)
        self.assertIsNone(self.api_domain(name))
        for username in (alice.email, bob.email, f"{DOMAIN_ADMIN_LOCAL_PART}@{name}"):
            self.assertIsNone(self.api_account(username), username)
        self.assertEqual(org.domain_ids.state, "terminated")
        self.assertEqual(set(org.with_context(active_test=False).account_ids.mapped("state")), {"terminated"})

        # terminating again succeeds (nothing left to delete)
        self.env["fayvad.mail.job"]._enqueue("terminate_organization", organization=org)
        self.run_jobs()
        self.assertJobsDone(org)

    def test_password_hand_over(self):
        org = self.provisioned_org(accounts=(("carol", 50),))
        carol = org.account_ids
        carol._set_pending_password(PASSWORD)
        job = self.env["fayvad.mail.job"]._enqueue("set_password", account=carol)
        self.run_jobs()
        self.assertEqual(job.state, "done")
        self.assertIsNone(carol._get_pending_password())

    # -- usage ------------------------------------------------------------------------------
    @freeze_time("2026-12-01 12:00:00")
    def test_usage_read_back(self):
        org = self.provisioned_org(accounts=(("full", 10), ("third", 100), ("empty", 20)))
        empty, full, third = org.account_ids.sorted("email")
        self.set_mailbox_usage(full.email, 5 * MB)  # 50% of 10 MB
        self.set_mailbox_usage(third.email, 33_500_000)  # 31.9% of 100 MB: Modoboa says 31

        Snapshot = self.env["fayvad.mail.usage.snapshot"]
        Snapshot._cron_read_usage()
        today = fields.Date.context_today(Snapshot)
        snapshots = Snapshot.search([("account_id", "in", org.account_ids.ids)])
        self.assertEqual(len(snapshots), 3)
        self.assertEqual(set(snapshots.mapped("date")), {today})
        usage = {s.account_id: s.bytes_used for s in snapshots}
        self.assertEqual(usage[full], 5 * MB)
        self.assertEqual(usage[third], 31 * MB)  # whole percent of the quota: the lower bound
        self.assertEqual(usage[empty], 0)
        self.assertEqual(full.storage_used, 5 * MB)
        self.assertEqual(full.usage_date, today)
        self.assertEqual(org.storage_used, 36 * MB)
        self.assertEqual(
            Snapshot._usage_on(org.account_ids, today), {full.id: 5 * MB, third.id: 31 * MB, empty.id: 0}
        )

        # read once a day: a second run leaves the domain alone, a new reading replaces the day's
        self.assertTrue(org.domain_ids.usage_read_at)
        self.assertNotIn(
            org.domain_ids, self.env["fayvad.mail.domain"].search(Snapshot._usage_domains_domain())
        )
        self.set_mailbox_usage(full.email, 8 * MB)
        org.domain_ids.usage_read_at = False
        Snapshot._cron_read_usage()
        self.assertEqual(Snapshot.search_count([("account_id", "=", full.id)]), 1)
        self.assertEqual(full.storage_used, 8 * MB)

    # -- drift ---------------------------------------------------------------------------------
    def test_drift_check_and_repair(self):
        org = self.provisioned_org(accounts=(("alice", 300), ("bob", 100), ("gone", 10)))
        name = org.domain_ids.name
        pk = self.api_domain(name)["pk"]
        alice, bob, gone = org.account_ids.sorted("email")
        # the server drifts away from Odoo
        self.api(
            "PATCH",
            f"/api/v2/accounts/{alice.remote_id}/",
            {"mailbox": {"quota": 77, "use_domain_quota": False}},
        )
        self.api("PATCH", f"/api/v2/accounts/{bob.remote_id}/", {"is_active": False})
        self.api("POST", f"/api/v2/accounts/{gone.remote_id}/delete/", {"keepdir": False}, expect=204)
        self.api(
            "POST",
            "/api/v2/accounts/",
            {
                "username": f"stray@{name}",
                "role": "SimpleUsers",
                "password": PASSWORD,
                "mailbox": {"use_domain_quota": False, "quota": 5},
            },
            expect=201,
        )
        self.api("PATCH", f"/api/v2/domains/{pk}/", {"quota": 4000, "default_mailbox_quota": 100})

        org.action_check_drift()
        Drift = self.env["fayvad.mail.drift"]
        lines = Drift.search([("organization_id", "=", org.id), ("state", "=", "open")])
        found = {(d.kind, d.name): (d.odoo_value, d.server_value) for d in lines}
        stray = Drift.search([("name", "=", f"stray@{name}")])
        self.assertEqual(
            found,
            {
                ("quota_mismatch", alice.email): ("300 MB", "77 MB"),
                ("state_mismatch", bob.email): ("active", "disabled"),
                ("missing_mailbox", gone.email): ("on the server", "missing"),
                ("quota_mismatch", name): (
                    f"{org._domain_quotas()[0]} MB, 100 MB per mailbox",
                    "4000 MB, 100 MB per mailbox",
                ),
            },
        )
        self.assertEqual((stray.kind, stray.state, stray.can_repair), ("extra_mailbox", "open", False))
        self.assertFalse(
            Drift.search([("name", "like", f"{DOMAIN_ADMIN_LOCAL_PART}@")]), "the domain admin is no drift"
        )

        lines.action_repair()
        self.assertEqual(set(lines.mapped("state")), {"repaired"})
        self.run_jobs()
        self.assertJobsDone(org)
        self.assertEqual(self.api_account(alice.email)["mailbox"]["quota"], "300")
        self.assertTrue(self.api_account(bob.email)["is_active"])
        self.assertEqual(self.api_account(gone.email)["mailbox"]["quota"], "10")
        self.assertEqual(self.api_domain(name)["quota"], str(org._domain_quotas()[0]))

        # checked again: only the mailbox Odoo does not know is left, and can be ignored
        open_lines = self.env["fayvad.mail.drift"]._check(self.modoboa, org)
        self.assertEqual(open_lines.mapped("name"), [f"stray@{name}"])
        with self.assertRaisesRegex(UserError, "can be repaired"):
            open_lines.action_repair()
        open_lines.action_ignore()
        self.env["fayvad.mail.drift"]._check(self.modoboa, org)
        self.assertEqual(stray.state, "ignored")

    def test_drift_whole_server(self):
        org = self.provisioned_org(accounts=(("alice", 10),))
        stray_domain = unique_domain("stray")
        self.api(
            "POST",
            "/api/v2/domains/",
            {"name": stray_domain, "type": "domain", "quota": 10, "default_mailbox_quota": 5},
            expect=201,
        )
        action = self.modoboa.action_check_drift()
        self.assertEqual(action["res_model"], "fayvad.mail.drift")
        lines = self.env["fayvad.mail.drift"].search(
            [("server_id", "=", self.modoboa.id), ("state", "=", "open")]
        )
        stray = lines.filtered(lambda d: d.name == stray_domain)
        self.assertEqual((stray.kind, stray.odoo_value, stray.can_repair), ("extra_domain", "unknown", False))
        self.assertFalse(
            lines.filtered(lambda d: d.organization_id == org), "the provisioned organization matches"
        )
        self.assertEqual(self.modoboa.drift_count, len(lines))

        # a terminated organization whose domain is still on the server: repair terminates again
        org.write({"state": "terminated"})
        org.domain_ids.state = "terminated"
        self.modoboa.action_check_drift()
        line = self.env["fayvad.mail.drift"].search([("name", "=", org.domain_ids.name)])
        self.assertEqual((line.kind, line.odoo_value, line.can_repair), ("extra_domain", "terminated", True))
        line.action_repair()
        self.run_jobs()
        self.assertIsNone(self.api_domain(org.domain_ids.name))
