"""The provisioning runner against the local Modoboa of ``./dev bench``:
create_mailbox jobs run by ``_cron_run`` with one runner, then with two at
once, each on its own database connection (as two Odoo workers or hosts
would); rounds alternate so that both see the same machine. Jobs per
second of each, and the 2-vs-1 ratio. The local Modoboa (Django's
runserver: one Python process, SQLite) does most of the work of a job and
bounds that ratio.

The runners commit, so this works with committed data, deleted afterwards."""

import statistics
import threading
import time

from odoo import SUPERUSER_ID, api
from odoo.tools import SQL

from odoo.addons.fayvad_mail.tests.common import (
    MODOBOA_TOKEN,
    MODOBOA_URL,
    ModoboaCase,
    delete_committed,
    unique_domain,
)
from odoo.addons.fayvad_mail.tools.units import MB

from devtools.bench.figures import record

ORGS = 6  # an organization's jobs run one at a time: several let two runners work at once
MAILBOXES = 5  # per organization and round
ROUNDS = 3  # of each: 1 runner, 2 runners, 1 runner, ...
CONTEXT = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True}


class BenchJobRunner(ModoboaCase):
    def test_one_runner_then_two(self):
        org_ids = self._commit_orgs()
        self.addCleanup(lambda: delete_committed(self.registry, org_ids, [self.server_id]))
        self._run(runners=1)  # creates the domains and their administrators on Modoboa
        self.assertEqual(self._states(org_ids), {"done"})
        per_s = {1: [], 2: []}
        for number, runners in enumerate((1, 2) * ROUNDS):
            jobs = self._commit_mailboxes(org_ids, f"r{number}")
            seconds = self._run(runners)
            self.assertEqual(self._states(org_ids), {"done"})
            per_s[runners].append(jobs / seconds)
        median = {runners: statistics.median(values) for runners, values in per_s.items()}
        for runners, values in per_s.items():
            record(
                "job runner",
                f"{ORGS * MAILBOXES} create_mailbox jobs, {runners} runner{'s' if runners > 1 else ''}",
                jobs_per_s=round(median[runners], 1),
                rounds=[round(value, 1) for value in values],
            )
        record("job runner", "2 runners vs 1", ratio=round(median[2] / median[1], 2))

    def _run(self, runners):
        """Run ``_cron_run`` in ``runners`` threads at once until no job is due; seconds taken."""
        start, errors = threading.Barrier(runners + 1), []

        def runner():
            try:
                start.wait(30)
                with self.registry.cursor() as cr:
                    api.Environment(cr, SUPERUSER_ID, CONTEXT)["fayvad.mail.job"]._cron_run(limit=10000)
            except Exception as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=runner, name=f"bench-runner-{n}") for n in range(runners)]
        for thread in threads:
            thread.start()
        start.wait(30)
        began = time.perf_counter()
        for thread in threads:
            thread.join(600)
        seconds = time.perf_counter() - began
        self.assertFalse(errors, errors)
        return seconds

    def _commit_orgs(self):
        """Organizations on the local Modoboa, their domains queued; their ids."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, CONTEXT)
            server = env["fayvad.mail.server"].create(
                {"name": "Bench Modoboa", "url": MODOBOA_URL, "token": MODOBOA_TOKEN, "read_timeout": 15}
            )
            orgs = env["fayvad.mail.organization"]
            for n in range(ORGS):
                partner = env["res.partner"].create({"name": f"Bench runner customer {n}"})
                orgs |= orgs.create(
                    {
                        "name": f"Bench runner {n}",
                        "partner_id": partner.id,
                        "mail_server_id": server.id,
                        "max_users": ROUNDS * 2 * MAILBOXES,
                        "max_storage_gb": 5,
                    }
                )
                env["fayvad.mail.domain"].create(
                    {"name": unique_domain("bench"), "organization_id": orgs[-1].id}
                )
            orgs._queue_provisioning()
            self.server_id = server.id
            return orgs.ids

    def _commit_mailboxes(self, org_ids, prefix):
        """MAILBOXES accounts per organization, queued; the number of jobs."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, CONTEXT)
            domains = env["fayvad.mail.organization"].browse(org_ids).domain_ids
            accounts = env["fayvad.mail.account"].create(
                [
                    {"local_part": f"{prefix}-user{n}", "domain_id": domain.id, "quota": 10 * MB}
                    for domain in domains
                    for n in range(MAILBOXES)
                ]
            )
            accounts._queue_provisioning()
            return len(accounts)

    def _states(self, org_ids):
        with self.registry.cursor() as cr:
            cr.execute(
                SQL("SELECT DISTINCT state FROM fayvad_mail_job WHERE organization_id IN %s", tuple(org_ids))
            )
            return {state for (state,) in cr.fetchall()}
