"""Aliases, catch-alls and forwards end to end against the real Modoboa that
``./dev test`` starts: Odoo's jobs run, and Modoboa's own API is asked what
exists."""

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.fayvad_mail.tests.common import ModoboaCase


@tagged("post_install", "-at_install")
class TestAliasesE2E(ModoboaCase):
    def remote_aliases(self, domain_name):
        """{address: alias} as Modoboa lists them for the domain."""
        results = self.api("GET", f"/api/v2/aliases/?domain={domain_name}&page_size=1000")["results"]
        return {a["address"]: a for a in results}

    def assertJobsDone(self, records):
        jobs = self.env["fayvad.mail.job"].search([("alias_id", "in", records.ids)])
        self.assertTrue(jobs)
        self.assertEqual(set(jobs.mapped("state")), {"done"}, jobs.mapped(lambda j: (j.name, j.last_error)))

    def test_alias_catchall_and_forward_through_their_life(self):
        org = self.provisioned_org(prefix="alias")
        domain = org.domain_ids
        name = domain.name
        alice = org.account_ids
        Alias = self.env["fayvad.mail.alias"]
        sales = Alias.create(
            {
                "local_part": "Sales",
                "domain_id": domain.id,
                "recipients": "alice@" + name + ", Boss@Example.COM",
                "description": "the sales desk",
            }
        )
        catchall = Alias.create({"kind": "catchall", "domain_id": domain.id, "recipients": f"alice@{name}"})
        forward = Alias.create(
            {"kind": "forward", "account_id": alice.id, "recipients": "alice.home@example.net"}
        )
        self.assertEqual(sales.address, f"sales@{name}")
        self.assertEqual(catchall.address, f"@{name}")
        self.assertEqual(forward.address, f"alice@{name}")
        (sales | catchall | forward).action_provision()
        self.run_jobs()
        self.assertJobsDone(sales | catchall | forward)
        self.assertEqual(set((sales | catchall | forward).mapped("state")), {"active"})

        remote = self.remote_aliases(name)
        self.assertEqual(sorted(remote[f"sales@{name}"]["recipients"]), ["alice@" + name, "boss@example.com"])
        self.assertEqual(remote[f"sales@{name}"]["description"], "the sales desk")
        self.assertTrue(remote[f"sales@{name}"]["enabled"])
        self.assertEqual(remote[f"@{name}"]["recipients"], [f"alice@{name}"])
        # the forward keeps the mailbox's copy: the mailbox is one of its recipients
        self.assertEqual(
            sorted(remote[f"alice@{name}"]["recipients"]), sorted([f"alice@{name}", "alice.home@example.net"])
        )
        self.assertEqual(sales.remote_id, remote[f"sales@{name}"]["pk"])

        # changed and disabled in Odoo: the same on Modoboa
        sales.write({"recipients": "carol@example.org", "enabled": False})
        self.run_jobs()
        self.assertJobsDone(sales)
        remote = self.remote_aliases(name)
        self.assertEqual(remote[f"sales@{name}"]["recipients"], ["carol@example.org"])
        self.assertFalse(remote[f"sales@{name}"]["enabled"])

        # soft suspension: aliases stay enabled (Modoboa disables those whose
        # only recipient is a disabled login; the job enables them again)
        org.action_suspend()
        self.run_jobs()
        remote = self.remote_aliases(name)
        self.assertTrue(remote[f"@{name}"]["enabled"])
        self.assertTrue(remote[f"alice@{name}"]["enabled"])
        self.assertFalse(remote[f"sales@{name}"]["enabled"], "disabled in Odoo, it stays so")
        org.action_unsuspend()
        self.run_jobs()
        self.assertTrue(self.remote_aliases(name)[f"@{name}"]["enabled"])
        alice.action_suspend()  # one login
        self.run_jobs()
        self.assertTrue(self.remote_aliases(name)[f"@{name}"]["enabled"])
        alice.action_unsuspend()
        self.run_jobs()

        # one alias deleted
        catchall.action_delete()
        self.run_jobs()
        self.assertNotIn(f"@{name}", self.remote_aliases(name))
        self.assertEqual((catchall.state, catchall.active), ("terminated", False))

        # deleting the mailbox deletes its forward first
        alice.action_terminate()
        self.run_jobs()
        self.assertNotIn(f"alice@{name}", self.remote_aliases(name))
        self.assertEqual(forward.state, "terminated")

        # termination removes the aliases, then the domain
        org.action_terminate()
        self.run_jobs()
        self.assertIsNone(self.api_domain(name))
        results = self.api("GET", f"/api/v2/aliases/?search={name}&page_size=1000")["results"]
        self.assertEqual([a["address"] for a in results if a["address"].endswith(name)], [])
        self.assertEqual(sales.state, "terminated")

    def test_an_alias_already_on_the_server_is_adopted_and_corrected(self):
        """Look up by exact address first: a retried or hand-made alias is
        taken over and made what Odoo says, never created twice."""
        org = self.provisioned_org(prefix="alias")
        name = org.domain_ids.name
        made = self.api(
            "POST",
            "/api/v2/aliases/",
            {"address": f"info@{name}", "recipients": ["old@example.com"], "enabled": False},
            expect=201,
        )
        info = self.env["fayvad.mail.alias"].create(
            {"local_part": "info", "domain_id": org.domain_ids.id, "recipients": "new@example.com"}
        )
        info.action_provision()
        self.run_jobs()
        self.assertJobsDone(info)
        remote = self.remote_aliases(name)
        self.assertEqual(len([a for a in remote if a == f"info@{name}"]), 1)
        self.assertEqual(remote[f"info@{name}"]["pk"], made["pk"])
        self.assertEqual(remote[f"info@{name}"]["recipients"], ["new@example.com"])
        self.assertTrue(remote[f"info@{name}"]["enabled"])
        self.assertEqual(info.remote_id, made["pk"])

    def remote_domain_aliases(self, domain_name):
        results = self.api("GET", f"/api/v2/domainaliases/?domain={domain_name}&page_size=1000")
        results = results["results"] if isinstance(results, dict) else results
        return {a["name"]: a for a in results}

    def test_domain_alias_through_its_life(self):
        org = self.provisioned_org(prefix="alias")
        domain = org.domain_ids
        other = domain.name.replace(".example", "-other.example")
        DomainAlias = self.env["fayvad.mail.domain.alias"]
        alias = DomainAlias.create({"name": other.upper(), "domain_id": domain.id})
        self.assertEqual(alias.name, other)
        self.assertIn(f"{other}. IN MX 10 mx.e2e.example.", alias.dns_zone)
        alias.action_provision()
        self.run_jobs()
        self.assertEqual(alias.state, "active")
        remote = self.remote_domain_aliases(domain.name)
        self.assertIn(other, remote)
        self.assertTrue(remote[other]["enabled"])
        self.assertEqual(alias.remote_id, remote[other]["pk"])
        target = remote[other]["target"]
        self.assertEqual(target["pk"] if isinstance(target, dict) else target, domain.remote_id)

        alias.enabled = False
        self.run_jobs()
        self.assertFalse(self.remote_domain_aliases(domain.name)[other]["enabled"])

        with self.assertRaises(ValidationError):  # a domain alias is no one's domain
            self.env["fayvad.mail.domain"].create({"name": other, "organization_id": org.id})

        # termination removes it before the domain
        org.action_terminate()
        self.run_jobs()
        self.assertIsNone(self.api_domain(domain.name))
        everything = self.api("GET", "/api/v2/domainaliases/?page_size=1000")
        everything = everything["results"] if isinstance(everything, dict) else everything
        self.assertNotIn(other, [a["name"] for a in everything])
        self.assertEqual(alias.state, "terminated")

    def test_a_deleted_domain_alias_is_gone_from_the_server(self):
        org = self.provisioned_org(prefix="alias")
        other = org.domain_ids.name.replace(".example", "-gone.example")
        alias = self.env["fayvad.mail.domain.alias"].create({"name": other, "domain_id": org.domain_ids.id})
        alias.action_provision()
        self.run_jobs()
        self.assertIn(other, self.remote_domain_aliases(org.domain_ids.name))
        alias.action_delete()
        self.run_jobs()
        self.assertNotIn(other, self.remote_domain_aliases(org.domain_ids.name))
        again = self.env["fayvad.mail.domain.alias"].create({"name": other, "domain_id": org.domain_ids.id})
        self.assertTrue(again, "a deleted domain alias leaves its name free")

    def test_drift_lists_and_repairs_aliases_and_domain_aliases(self):
        org = self.provisioned_org(prefix="alias")
        domain = org.domain_ids
        name = domain.name
        Alias = self.env["fayvad.mail.alias"]
        sales = Alias.create({"local_part": "sales", "domain_id": domain.id, "recipients": "a@example.com"})
        info = Alias.create({"local_part": "info", "domain_id": domain.id, "recipients": "b@example.com"})
        old = Alias.create({"local_part": "old", "domain_id": domain.id, "recipients": "c@example.com"})
        other = name.replace(".example", "-drift.example")
        domain_alias = self.env["fayvad.mail.domain.alias"].create({"name": other, "domain_id": domain.id})
        (sales | info | old).action_provision()
        domain_alias.action_provision()
        self.run_jobs()
        self.assertEqual(self.env["fayvad.mail.drift"]._check(self.modoboa, org).mapped("name"), [])

        # the server drifts away from Odoo
        self.api(
            "PUT",
            f"/api/v2/aliases/{sales.remote_id}/",
            {"address": sales.address, "recipients": ["x@evil.example"], "enabled": False},
        )
        self.api("DELETE", f"/api/v2/aliases/{info.remote_id}/", expect=204)
        self.api("DELETE", f"/api/v2/domainaliases/{domain_alias.remote_id}/", expect=204)
        self.api(
            "POST",
            "/api/v2/aliases/",
            {"address": f"stray@{name}", "recipients": ["s@example.com"]},
            expect=201,
        )
        old.state = "terminated"  # deleted in Odoo while its job never ran

        lines = self.env["fayvad.mail.drift"]._check(self.modoboa, org)
        found = {(d.kind, d.name): d for d in lines}
        self.assertEqual(
            set(found),
            {
                ("alias_mismatch", sales.address),
                ("missing_alias", info.address),
                ("extra_alias", old.address),
                ("missing_domain_alias", other),
                ("extra_alias", f"stray@{name}"),
            },
        )
        self.assertEqual(found["alias_mismatch", sales.address].odoo_value, "a@example.com (enabled)")
        self.assertEqual(found["alias_mismatch", sales.address].server_value, "x@evil.example (disabled)")
        self.assertFalse(found["extra_alias", f"stray@{name}"].can_repair, "an alias Odoo does not know")
        (lines - found["extra_alias", f"stray@{name}"]).action_repair()
        self.run_jobs()
        remote = self.remote_aliases(name)
        self.assertEqual(
            (remote[sales.address]["recipients"], remote[sales.address]["enabled"]), (["a@example.com"], True)
        )
        self.assertIn(info.address, remote)
        self.assertNotIn(old.address, remote)
        self.assertIn(other, self.remote_domain_aliases(name))
        self.assertEqual(
            self.env["fayvad.mail.drift"]._check(self.modoboa, org).mapped("name"), [f"stray@{name}"]
        )
