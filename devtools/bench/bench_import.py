"""Importing what a mail server hosts (docs/onboarding.md), at the size of a
hosting business: 1,000 domains with 10 mailboxes and an alias each, made
on the bench's Modoboa by Modoboa's own bulk import, are read (the dry run)
and imported by the import's cron in an Odoo process of its own, committing
as in production. Timed next to its floor measured in the same run: simply
listing the same objects through the same client (``iter_domains``, then
each domain's mailboxes, aliases and domain aliases), in a process of its
own too. Memory: how much the work adds to each process's resident set
once Odoo is loaded (its peak, the kernel's VmHWM reset when the work
starts); 100 domains are imported the same way, to show it flat in the
number of domains."""

import crypt
import json
import os
import tempfile
import uuid
import warnings
from pathlib import Path

from devtools.bench.figures import record
from devtools.modoboa import Modoboa
from devtools.serve import odoo_script

SIZES = (100, 1_000)  # domains
MAILBOXES = 10  # a domain, besides an alias to its first mailbox
PASSWORD = "Bench-Imported-1"

PEAK = """
def _status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
def start_peak():
    # Odoo is loaded: from here, the peak is the work's (writing 5 resets the kernel's VmHWM)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status_mb("VmRSS")
def peak_mb():
    return _status_mb("VmHWM")
def env_of(cr):
    return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})  # as the cron's: tracking and chatter on
"""

SETUP = """
from devtools.odoo_hooks import configure_local_server
with registry.cursor() as cr:
    env = env_of(cr)
    server = configure_local_server(env, URL, TOKEN)
    plan = env["fayvad.mail.plan"].create({
        "name": "Bench Import Plan", "monthly_price": 10, "included_users": 10, "max_users": 10,
        "max_storage_gb": 100, "max_aliases": 10, "max_domain_aliases": 1,
    })
    cr.commit()
    print(json.dumps({"server": server.id, "plan": plan.id}))
"""

LISTING = """
with registry.cursor() as cr:
    client = env_of(cr)["fayvad.mail.server"].browse(SERVER)._client()
    base_mb = start_peak()
    started = time.monotonic()
    domains = mailboxes = aliases = 0
    for domain in client.iter_domains():
        if PREFIX not in domain.name:
            continue
        domains += 1
        mailboxes += len(client.list_mailboxes(domain.id, usage=False))
        aliases += len(client.list_aliases(domain.name))
        client.list_domain_aliases(domain.name)
    seconds = time.monotonic() - started
print(json.dumps({"seconds": seconds, "domains": domains, "mailboxes": mailboxes, "aliases": aliases,
                  "base_mb": base_mb, "peak_mb": peak_mb()}))
"""

IMPORT = """
with registry.cursor() as cr:
    env = env_of(cr)
    Import = env["fayvad.mail.import"]
    run = Import.create({"server_id": SERVER, "domain_filter": PREFIX, "plan_id": PLAN})
    cr.commit()
    base_mb = start_peak()
    started = time.monotonic()
    run.action_read()
    cr.commit()
    while run.state == "reading":
        Import._cron_import()  # commits as it goes
    read_seconds = time.monotonic() - started
    to_import, conflicts = run.create_count, run.conflict_count
    run.action_import()
    cr.commit()
    while run.state == "importing":
        Import._cron_import()
    seconds = time.monotonic() - started
    cr.execute(
        "SELECT count(*) FROM fayvad_mail_account WHERE email LIKE %s", ["%@" + PREFIX + "%"]
    )
    mailboxes = cr.fetchone()[0]
    print(json.dumps({
        "seconds": seconds, "read_seconds": read_seconds, "to_import": to_import, "conflicts": conflicts,
        "imported": run.imported_count, "mailboxes": mailboxes, "state": run.state,
        "base_mb": base_mb, "peak_mb": peak_mb(),
    }))
"""


def _odoo():
    config = json.loads(os.environ["FAYVAD_BENCH_ODOO"])
    return config["python"], config["conf"], config["db"], config["logs"]


def _script(code, name, **values):
    constants = "".join(f"{key} = {value!r}\n" for key, value in values.items())
    return odoo_script(*_odoo(), constants + PEAK + code, name=name, timeout=7200)


def _make_on_modoboa(modoboa, prefix, count):
    """``count`` domains with their mailboxes and an alias, by Modoboa's own
    bulk import (passwords given hashed, as a migration brings them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hashed = "{SHA512-CRYPT}" + crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
    rows = []
    for i in range(count):
        name = f"{prefix}-{i:04d}.example"
        rows.append(f"domain;{name};0;10;True")
        rows += [
            f"account;user{n}@{name};{hashed};User;{n};True;SimpleUsers;user{n}@{name};10"
            for n in range(MAILBOXES)
        ]
        rows.append(f"alias;sales@{name};True;user0@{name}")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as out:
        out.write("\n".join(rows) + "\n")
    try:
        modoboa.load_csv(Path(out.name))
    finally:
        os.unlink(out.name)


def test_import_next_to_listing():
    config = json.loads(os.environ["FAYVAD_BENCH_MODOBOA"])
    modoboa = Modoboa(
        config["cache"], config["instance"], config["port"], config["redis_port"], log=None, pg=config["pg"]
    )
    setup = _script(SETUP, "import-setup", URL=modoboa.url, TOKEN=modoboa.token)
    prefixes = {count: f"bimp{count}-{uuid.uuid4().hex[:6]}" for count in SIZES}
    for count, prefix in prefixes.items():  # all made first: what is timed runs back to back
        _make_on_modoboa(modoboa, prefix, count)
    growth = {}
    for count, prefix in prefixes.items():
        listing = _script(LISTING, "import-listing", SERVER=setup["server"], PREFIX=prefix)
        assert (listing["domains"], listing["mailboxes"]) == (count, count * MAILBOXES), listing
        run = _script(IMPORT, "import", SERVER=setup["server"], PLAN=setup["plan"], PREFIX=prefix)
        objects = count * (2 + MAILBOXES)
        assert (run["state"], run["to_import"], run["conflicts"]) == ("done", objects, 0), run
        assert (run["imported"], run["mailboxes"]) == (objects, count * MAILBOXES), run
        growth[count] = round(run["peak_mb"] - run["base_mb"], 1)
        record(
            "import",
            f"{count} domains / {count * MAILBOXES} mailboxes",
            listing_s=round(listing["seconds"], 1),
            import_s=round(run["seconds"], 1),
            of_which_dry_run_s=round(run["read_seconds"], 1),
            x_listing=round(run["seconds"] / listing["seconds"], 2),
            # the resident set once Odoo is loaded, and the most the work added to it
            base_mb=run["base_mb"],
            peak_added_mb=growth[count],
            listing_peak_added_mb=round(listing["peak_mb"] - listing["base_mb"], 1),
        )
    small, big = SIZES
    record(
        "import",
        f"memory the work added, {big} vs {small} domains",
        small_mb=growth[small],
        big_mb=growth[big],
    )
