"""Onboarding a hosting business: what its Modoboa already hosts, created
there directly through Modoboa's API, is read by a dry run, imported into
Odoo as it is (nothing changes on the server, nothing is charged for the
past), and a second run imports nothing but what is new."""

import json
import uuid

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.fayvad_mail.tests.common import ModoboaCase
from odoo.addons.fayvad_mail.tools.units import MB

PASSWORD = "Imp0rt-Passw0rd_x"


@tagged("post_install", "-at_install")
class TestImportFromServer(ModoboaCase, HttpCase):
    def setUp(self):
        super().setUp()
        self.token = f"imp{uuid.uuid4().hex[:8]}"
        self.a, self.b, self.alias_name = (f"{self.token}-{x}.example" for x in ("a", "b", "alias"))
        self.client = self.modoboa._client()
        self.plan.write({"max_users": 10, "max_storage_gb": 5, "max_aliases": 10, "max_domain_aliases": 2})
        # what the hosting business had before fayvad_mail, made on Modoboa directly
        a = self.client.ensure_domain(self.a, 2048, 100)
        b = self.client.ensure_domain(self.b, 1024, 100)
        self.client.ensure_mailbox(f"anna@{self.a}", PASSWORD, 100)
        self.client.ensure_mailbox(f"bob@{self.a}", PASSWORD, 200)
        self.client.ensure_mailbox(f"carl@{self.b}", PASSWORD, 100)
        dora = self.client.ensure_mailbox(f"dora@{self.b}", PASSWORD, 50)
        self.client.update_mailbox(dora.id, active=False)
        self.client.ensure_alias(f"sales@{self.a}", [f"anna@{self.a}", f"bob@{self.a}"])
        self.client.ensure_alias(f"@{self.a}", [f"anna@{self.a}"])
        self.client.ensure_alias(f"carl@{self.b}", [f"carl@{self.b}", "carl.private@elsewhere.example"])
        self.client.ensure_domain_alias(self.alias_name, a.id)
        self.remote_ids = {"a": a.id, "b": b.id}
        self.addCleanup(self.remove_from_modoboa)

    def remove_from_modoboa(self):
        for name in (self.alias_name,):
            alias = self.client.find_domain_alias(name)
            if alias:
                self.client.delete_domain_alias(alias.id)
        for remote_id in self.remote_ids.values():
            self.client.delete_domain(remote_id)

    def server_state(self):
        """Everything Modoboa holds of the test's domains (to compare before and after)."""
        state = {}
        for name in (self.a, self.b):
            domain = self.client.find_domain(name)
            state[name] = (
                (domain.enabled, domain.quota_mb, domain.default_mailbox_quota_mb),
                sorted((m.email, m.active, m.quota_mb) for m in self.client.list_mailboxes(domain.id)),
                sorted((a.address, a.enabled, a.recipients) for a in self.client.list_aliases(name)),
                sorted((a.name, a.enabled, a.target_id) for a in self.client.list_domain_aliases(name)),
            )
        return state

    def new_run(self, **vals):
        return self.env["fayvad.mail.import"].create(
            {"server_id": self.modoboa.id, "domain_filter": self.token, **vals}
        )

    def preview(self, run):
        return {(line.kind, line.name): line for line in run.line_ids}

    def read_server(self, run):
        """The dry run: it reads the server in the background (the import's cron)."""
        run.action_read()
        self.assertEqual(run.state, "reading")
        self.env["fayvad.mail.import"]._cron_import()
        self.assertEqual(run.state, "preview", run.last_error)

    def test_the_dry_run_reads_in_steps_and_shows_its_progress(self):
        run = self.new_run()
        run.action_read()
        self.assertEqual((run.state, run.step), ("reading", "Listing the server's domains"))
        Import = self.env["fayvad.mail.import"]
        remaining = Import._remaining()  # what Odoo's cron is told is left (it runs again at once)
        self.assertTrue(run._read_next())
        self.assertEqual(Import._remaining(), remaining + 2, "its two domains to read")
        self.assertEqual((run.progress, run.progress_percent), ("0 / 2", 0.0))
        self.assertIn("0 of 2 domains", run.step)
        self.assertEqual(run.create_count, 2, "the domains, their content not read yet")

        # the mail server down half-way: the error is counted and shown, nothing is lost
        url = self.modoboa.url
        self.modoboa.url = "http://127.0.0.1:9"  # nothing listens there
        self.assertFalse(run._read_next())
        self.assertEqual((run.state, run.error_count, run.progress), ("reading", 1, "0 / 2"))
        self.assertIn("The mail server", run.last_error)
        self.assertNotIn(self.modoboa.sudo().token, run.last_error)
        self.env["fayvad.mail.import"]._cron_import()
        self.assertEqual((run.state, run.error_count), ("reading", 2), "tried again, still down")

        self.modoboa.url = url
        self.assertTrue(run._read_next())
        self.assertEqual((run.state, run.progress, run.progress_percent), ("reading", "2 / 2", 100.0))
        self.assertEqual(run.step, "Checking the preview")
        self.assertEqual(Import._remaining(), remaining, "its checks, still to do")
        self.assertTrue(run._read_next())
        self.assertEqual(run.state, "preview")
        self.assertEqual(Import._remaining(), remaining - 1)
        self.assertEqual(run.create_count, 10)
        self.assertEqual(len(run.line_ids), 10, "each object once, though read twice")
        self.assertIn("2 domains; 10 objects to import", " ".join(map(str, run.message_ids.mapped("body"))))

        # the preview in a list of its own, filtered
        action = run.with_context(lines_filter={"search_default_to_import": 1}).action_view_lines()
        self.assertEqual(action["res_model"], "fayvad.mail.import.line")
        self.assertEqual(action["context"]["search_default_to_import"], 1)
        self.assertEqual(self.env["fayvad.mail.import.line"].search_count(action["domain"]), 10)

        run.action_cancel()
        self.assertEqual((run.state, len(run.line_ids)), ("draft", 0))

    def pushed(self, run, since):
        """How many times the open forms of ``run`` were told to reload (the
        live-state notification, static/src/js/live_state.js) since bus message ``since``."""
        self.env.cr.flush()  # the bus writes its notifications as the transaction commits
        group = self.env.ref("fayvad_mail.fayvad_mail_group_user")
        sent = [
            (json.loads(n.channel)[1:], json.loads(n.message))
            for n in self.env["bus.bus"].sudo().search([("id", ">", since)])
        ]
        return [
            message["payload"]["ids"]
            for channel, message in sent
            if channel == ["res.groups", group.id]
            and message["type"] == "fayvad_mail/state_changed"
            and message["payload"]["model"] == "fayvad.mail.import"
        ].count(run.ids)

    def test_an_open_import_form_follows_each_step_of_the_cron(self):
        run = self.new_run()
        self.env.cr.flush()
        since = self.env["bus.bus"].sudo().search([], order="id desc", limit=1).id or 0
        run.action_read()
        told = [self.pushed(run, since)]
        self.assertEqual(told, [1], "reading: the form shows the new state")
        url = self.modoboa.url
        self.modoboa.url = "http://127.0.0.1:9"  # nothing listens there: an error counted
        self.assertFalse(run._read_next())
        told.append(self.pushed(run, since))
        self.modoboa.url = url
        while run.state == "reading":  # the domains listed, their content read, the checks
            self.assertTrue(run._read_next())
            told.append(self.pushed(run, since))
        self.assertEqual(told, sorted(set(told)), f"each step told the form: {told}")
        self.assertEqual(run.state, "preview")

        run.action_import()
        after_start = self.pushed(run, since)
        self.assertGreater(after_start, told[-1])
        self.env["fayvad.mail.import"]._cron_import()
        self.assertEqual(run.state, "done")
        # one per domain imported (2), one for the state done
        self.assertGreaterEqual(self.pushed(run, since), after_start + 3)

    def test_dry_run_import_and_runs_again(self):
        run = self.new_run()
        self.read_server(run)
        lines = self.preview(run)
        self.assertEqual(
            sorted(lines),
            sorted(
                [
                    ("domain", self.a),
                    ("domain", self.b),
                    ("mailbox", f"anna@{self.a}"),
                    ("mailbox", f"bob@{self.a}"),
                    ("mailbox", f"carl@{self.b}"),
                    ("mailbox", f"dora@{self.b}"),
                    ("alias", f"sales@{self.a}"),
                    ("catchall", f"@{self.a}"),
                    ("forward", f"carl@{self.b}"),
                    ("domain_alias", self.alias_name),
                ]
            ),
        )
        self.assertEqual(set(run.line_ids.mapped("action")), {"create"}, run.line_ids.mapped("problem"))
        self.assertFalse(lines[("mailbox", f"dora@{self.b}")].enabled)
        self.assertEqual(lines[("mailbox", f"bob@{self.a}")].quota_mb, 200)
        plan = lines[("domain", self.a)].plan_id
        fitting = (
            self.env["fayvad.mail.plan"]
            .search([("company_id", "in", (self.modoboa.company_id.id, False)), ("max_users", ">=", 3)])
            .filtered(
                lambda p: p.max_storage_gb * 1024 >= 300 and p.max_aliases >= 2 and p.max_domain_aliases >= 1
            )
        )
        self.assertEqual(
            plan.monthly_price, min(fitting.mapped("monthly_price")), "the cheapest plan that fits"
        )
        self.assertEqual(lines[("domain_alias", self.alias_name)].target, self.a)
        self.assertFalse(self.env["fayvad.mail.domain"].search([("name", "in", (self.a, self.b))]))

        before = self.server_state()
        jobs_before = self.env["fayvad.mail.job"].search_count([])
        run.action_import()
        self.env["fayvad.mail.import"]._cron_import()
        self.assertEqual(run.state, "done")
        self.assertEqual(run.progress, "2 / 2")

        domains = self.env["fayvad.mail.domain"].search([("name", "in", (self.a, self.b))])
        self.assertEqual(len(domains), 2)
        self.assertEqual(set(domains.mapped("state")), {"active"})
        self.assertEqual(set(domains.mapped("verification_state")), {"verified"})
        self.assertEqual(sorted(domains.mapped("remote_id")), sorted(self.remote_ids.values()))
        self.assertTrue(all(domains.mapped("dkim_public_key")), "the DKIM key read from the server")
        orgs = domains.organization_id
        self.assertEqual(len(orgs), 2, "one organization per domain")
        self.assertEqual(set(orgs.mapped("state")), {"active"})
        Account = self.env["fayvad.mail.account"]
        dora = Account.search([("email", "=", f"dora@{self.b}")])
        self.assertEqual((dora.state, dora.suspended_by), ("suspended", "admin"))
        bob = Account.search([("email", "=", f"bob@{self.a}")])
        self.assertEqual((bob.state, bob.quota, bool(bob.remote_id)), ("active", 200 * MB, True))
        forward = self.env["fayvad.mail.alias"].search([("address", "=", f"carl@{self.b}")])
        self.assertEqual((forward.kind, forward.recipients), ("forward", "carl.private@elsewhere.example"))
        catchall = self.env["fayvad.mail.alias"].search([("address", "=", f"@{self.a}")])
        self.assertEqual(catchall.kind, "catchall")
        domain_alias = self.env["fayvad.mail.domain.alias"].search([("name", "=", self.alias_name)])
        self.assertEqual(domain_alias.domain_id.name, self.a)

        # nothing changed on Modoboa, nothing queued for it, nothing charged for the past
        self.assertEqual(self.server_state(), before)
        self.assertEqual(self.env["fayvad.mail.job"].search_count([]), jobs_before)
        self.env["fayvad.mail.billing.event"]._cron_sync()
        self.assertFalse(orgs.billing_event_ids, "no sign-up fee, no user or alias charge for what existed")
        self.assertEqual(set(orgs.subscription_id.mapped("state")), {"active"})
        self.assertEqual(
            set(orgs.subscription_id.mapped("period_start")), {fields.Date.context_today(run).replace(day=1)}
        )
        self.assertIn("10 objects imported", str(run.server_id.message_ids[:1].body))

        # the drift check finds nothing: the domains keep the quotas they had on the server
        drifts = self.env["fayvad.mail.drift"]._check(self.modoboa, orgs)
        self.assertFalse(drifts, drifts.mapped(lambda d: (d.kind, d.name)))
        org_a = orgs.filtered(lambda o: o.name == self.a)
        self.assertTrue(org_a.domain_ids.quotas_kept)
        org_a.max_storage_gb += 1
        self.assertFalse(org_a.domain_ids.quotas_kept, "the organization's limits decide from now on")

        # the usage summary and the portal see the imported mailboxes
        today = fields.Date.context_today(run)
        summary = self.env["fayvad.mail.usage.summary"]._summary(
            {
                "start_date": today,
                "end_date": today,
                "organization_id": orgs.filtered(lambda o: o.name == self.a).id,
                "include_details": True,
                "limit": None,
                "offset": None,
            }
        )
        self.assertIn(f"bob@{self.a}", str(summary))
        org_a = orgs.filtered(lambda o: o.name == self.a)
        portal = new_test_user(self.env, login="imported_customer", groups="base.group_portal")
        portal.partner_id.parent_id = org_a.partner_id
        self.authenticate("imported_customer", "imported_customer")
        page = self.url_open(f"/my/mail/{org_a.id}").text
        self.assertIn(f"anna@{self.a}", page)
        self.assertIn(f"sales@{self.a}", page)

        # a second run imports nothing; an object added on Modoboa since is imported by a third
        second = self.new_run()
        self.read_server(second)
        self.assertEqual(set(second.line_ids.mapped("action")), {"link"}, second.line_ids.mapped("problem"))
        self.client.ensure_mailbox(f"eve@{self.a}", PASSWORD, 100)
        third = self.new_run()
        self.read_server(third)
        new = third.line_ids.filtered(lambda line: line.action == "create")
        self.assertEqual(new.mapped("name"), [f"eve@{self.a}"])
        third.action_import()
        self.env["fayvad.mail.import"]._cron_import()
        eve = Account.search([("email", "=", f"eve@{self.a}")])
        self.assertEqual((eve.state, eve.organization_id), ("active", org_a))
        self.assertFalse(org_a.billing_event_ids)

    def test_conflicts_are_shown_and_never_imported(self):
        # a domain Odoo already keeps for another organization (on another server)
        other = self.make_org(name="Other", domain=self.b)
        # an address Odoo has with another quota, in a domain Odoo has on this server
        run = self.new_run()
        self.read_server(run)
        lines = self.preview(run)
        domain_b = lines[("domain", self.b)]
        self.assertEqual(domain_b.action, "conflict")
        self.assertIn("Other", domain_b.problem)
        self.assertEqual(lines[("mailbox", f"carl@{self.b}")].action, "conflict", "its domain is in conflict")

        # an alias delivering to a mailbox of the server that Odoo will not know (its domain in conflict)
        self.client.ensure_alias(f"ghost@{self.a}", [f"carl@{self.b}"])
        self.read_server(run)
        ghost = self.preview(run)[("alias", f"ghost@{self.a}")]
        self.assertEqual(ghost.action, "conflict")
        self.assertIn(f"carl@{self.b}", ghost.problem)

        run.action_import()
        self.env["fayvad.mail.import"]._cron_import()
        self.assertEqual(run.state, "done")
        self.assertEqual(
            self.env["fayvad.mail.domain"].search([("name", "=", self.b)]), other.domain_ids, "left alone"
        )
        self.assertFalse(self.env["fayvad.mail.alias"].search([("address", "=", f"ghost@{self.a}")]))
        self.assertTrue(
            self.env["fayvad.mail.domain"].search([("name", "=", self.a)]), "the rest is imported"
        )

        # a mailbox Odoo has with another quota than the server's (its change not made there yet)
        anna = self.env["fayvad.mail.account"].search([("email", "=", f"anna@{self.a}")])
        anna.quota_mb = 300
        again = self.new_run()
        self.read_server(again)
        line = self.preview(again)[("mailbox", f"anna@{self.a}")]
        self.assertEqual(line.action, "conflict")
        self.assertIn("300 MB", line.problem)
        self.assertIn("100 MB", line.problem)

    def test_a_plan_that_does_not_fit_is_a_conflict(self):
        small = self.plan.copy({"name": "Tiny", "max_users": 1, "included_users": 1})
        run = self.new_run(plan_id=small.id)
        self.read_server(run)
        line = self.preview(run)[("domain", self.a)]
        self.assertEqual(line.action, "conflict")
        self.assertIn("Tiny", line.problem)

    def test_one_customer_gets_one_organization(self):
        customer = self.env["res.partner"].create({"name": "Holding Ltd", "is_company": True})
        run = self.new_run(grouping="customer", partner_id=customer.id, plan_id=self.plan.id)
        self.read_server(run)
        domain_lines = run.line_ids.filtered(lambda line: line.kind == "domain")
        self.assertEqual(set(domain_lines.mapped("partner_id")), {customer})
        self.assertEqual(set(domain_lines.mapped("action")), {"create"}, domain_lines.mapped("problem"))
        run.action_import()
        self.env["fayvad.mail.import"]._cron_import()
        self.assertEqual(run.state, "done")
        domains = self.env["fayvad.mail.domain"].search([("name", "in", (self.a, self.b))])
        org = domains.organization_id
        self.assertEqual(len(org), 1, "every domain in one organization")
        self.assertEqual((org.partner_id, org.plan_id, org.name), (customer, self.plan, "Holding Ltd"))
        self.assertEqual(len(org.account_ids), 4)
        self.assertFalse(org.billing_event_ids)

    def test_a_domain_of_a_customer_with_an_organization_joins_it(self):
        customer = self.env["res.partner"].create(
            {"name": "Known Customer", "is_company": True, "email": f"boss@{self.b}"}
        )
        known = self.make_org(
            name="Known", domain=False, partner=customer, mail_server_id=self.modoboa.id, max_aliases=5
        )
        run = self.new_run()
        self.read_server(run)
        line = self.preview(run)[("domain", self.b)]
        self.assertEqual((line.partner_id, line.organization_id, line.action), (customer, known, "create"))
        run.action_import()
        self.env["fayvad.mail.import"]._cron_import()
        self.assertEqual(
            self.env["fayvad.mail.domain"].search([("name", "=", self.b)]).organization_id, known
        )
        self.assertEqual(
            sorted(known.account_ids.mapped("email")), sorted([f"carl@{self.b}", f"dora@{self.b}"])
        )
        other = self.env["fayvad.mail.domain"].search([("name", "=", self.a)]).organization_id
        self.assertNotEqual(other, known, "a domain of another customer gets its own organization")
