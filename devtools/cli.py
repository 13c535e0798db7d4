"""``./dev``: the project's one entry point. See ``./dev --help``."""

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

from .bench.figures import describe
from .common import (
    ADDON,
    REPO,
    DevError,
    apt_install,
    cache_dir,
    env_port,
    exclusive_lock,
    free_port,
    pid_file_process,
    require_port,
    rmtree,
    run,
    say,
    shielded,
    stop_pid_group,
    stop_process,
    terminate_on_sigterm,
    wait_http,
)
from .dns import DnsServer
from .mailstack import MailStack, Ports
from .odoo import ODOO_PID_FILE, Odoo, launcher_in
from .odoo_hooks import DEMO_MAILBOX_PASSWORD
from .pg import Cluster
from .pyenv import PythonEnv

DB = "fayvad"

HELP = """\
usage: ./dev COMMAND [ARGS]

commands:
  run                 install (once) and serve Odoo with fayvad_mail at http://127.0.0.1:8069,
                      database "fayvad" with demo data, login admin / admin, and a local
                      Modoboa mail server; Ctrl-C stops everything it started (a second Ctrl-C
                      too), and services a killed ./dev run left behind are stopped first;
                      --workers N serves with Odoo's prefork server as in production (N HTTP
                      workers, 2 cron workers, cron time limit 300 s, websocket on port + 3)
  test [PYTEST_ARGS]  the whole test suite on throwaway databases: pytest-odoo (HTTP and
                      browser tests included, against a real Modoboa), then ruff and pylint-odoo;
                      --long adds the long tests (devtools/long: Odoo with --workers 2 and several
                      processes on one database, faults injected for real, a contract-driven
                      fuzzer, a search of every log for the secrets used), which CI runs too;
                      --no-lint skips the linters, --reuse keeps the test database between runs
  bench [PYTEST_ARGS] speed figures on a throwaway database without demo data, against a fresh
                      local Modoboa: usage summary for 10/100/1000 organizations (time and SQL
                      queries), billing webhook, provisioning API, job runner (1 vs 2 runners),
                      import of 1,000 domains / 10,000 mailboxes next to listing them;
                      prints a table and writes it as JSON to the cache's logs/bench-*.json
  bench --scale       the same at hosting-company scale: 10,000 organizations, 100,000 mailboxes,
                      1M billing events, 3M usage snapshots (SQL bulk inserts), Odoo with
                      --workers 2; each request next to its floor in the same run (~8 min)
  api-key LOGIN       print a new API key (fayvad_mail scope) for that user of database "fayvad"
  webhook-secret [ORG_ID]
                      print the company webhook secret (created if none), or an organization's
                      webhook URL and secret separated by a space
  mail-server         print the local Modoboa's base URL and API token
  screenshots [NAME...]
                      the documentation's screenshots (docs/*.png; or only docs/NAME.png),
                      taken in headless Chromium from the running ./dev run
  dns-publish DOMAIN...
                      publish these domains' records in ./dev run's DNS server (as their
                      customer would): Verify Now then verifies them
  import-server [--filter TEXT] [--apply]
                      the import from ./dev run's mail server (what it already hosts, into Odoo),
                      done by ./dev run's cron in the background and followed here: a dry run
                      that prints what would be imported and the conflicts; --apply imports it
                      (docs/onboarding.md)
  lint                ruff (lint + format check) and pylint-odoo only
  build               the addon as a wheel, the OCA way (whool): prints the path of
                      odoo_addon_fayvad_mail-18.0.*-py3-none-any.whl

environment:
  ODOO_SRC            directory holding Odoo 18.0's "odoo" package; without it Odoo's 18.0
                      nightly source archive is downloaded (FAYVAD_ODOO_ARCHIVE_URL overrides)
  FAYVAD_CACHE        where virtualenvs, PostgreSQL data and logs live (~/.cache/fayvad_mail)
  FAYVAD_HTTP_PORT    Odoo's port for ./dev run (8069)
  FAYVAD_PG_PORT      number of the private PostgreSQL socket (5433; unix socket only)
  FAYVAD_MODOBOA_PORT, FAYVAD_REDIS_PORT
                      the local Modoboa and its Redis (8090, 6390; loopback only)
  FAYVAD_DNS_PORT     the local DNS server of ./dev run (8053, UDP and TCP; loopback only)
"""


# -- shared steps ---------------------------------------------------------------
def _modoboa(cache, instance_dir, port, redis_port, cluster):
    """The Modoboa of ``instance_dir``, its database in ``cluster``."""
    from .modoboa import Modoboa, ModoboaError

    try:
        service = Modoboa(cache, instance_dir, port, redis_port, log=say, pg=cluster.ensure().describe())
        service.ensure_installed()
    except ModoboaError as exc:
        raise DevError(str(exc)) from exc
    return service


def _start_modoboa(service, fresh=False):
    """Prepare and start the Modoboa; whether it was made anew (from the template)."""
    from .modoboa import ModoboaError

    try:
        made = service.prepare(fresh=fresh)
        service.start()
    except ModoboaError as exc:
        service.stop()
        raise DevError(str(exc)) from exc
    return made


def _ensure_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return
    apt_install(["chromium"], "browser tests need Chromium")


# what ./dev runs in an Odoo shell imports its helpers from devtools/odoo_hooks.py
HOOKS = (
    f"import sys; sys.path.insert(0, {str(REPO)!r}); "
    "from devtools.odoo_hooks import apply_import, configure_local_server, demo_mailboxes, import_report, "
    "new_api_key, provision_now, run_import_cron, start_import, webhook_secret, zone_lines"
)


def _main_cluster(cache):
    return Cluster(cache / "pg", env_port("FAYVAD_PG_PORT", 5433), cache / "logs" / "postgres.log")


def _configure_mail_server(odoo, service, dns, mail):
    """The local Modoboa, its Dovecot and the DNS server in database
    ``fayvad``, the demo provisioned on them; the zone file lines its DNS
    serves, and the demo's mailboxes."""
    doveadm = (mail.doveadm_url, mail.doveadm_key)
    lines = odoo.shell(
        f"{HOOKS}\nimport json\n"
        f"configure_local_server(env, {service.url!r}, {service.token!r}, {service.password_policy!r}, "
        f"dns={dns.address!r}, doveadm={doveadm!r})\nprovision_now(env)\n"
        "print(json.dumps([zone_lines(env), demo_mailboxes(env)]))",
        "configuring the local mail server",
    )
    return json.loads(lines[-1])


# -- run ----------------------------------------------------------------------------
def cmd_run(args):
    cache = cache_dir()
    http_port = env_port("FAYVAD_HTTP_PORT", 8069)
    mb_port = env_port("FAYVAD_MODOBOA_PORT", 8090)
    redis_port = env_port("FAYVAD_REDIS_PORT", 6390)
    dns_port = env_port("FAYVAD_DNS_PORT", 8053)
    started = time.monotonic()
    workers = args.workers
    with exclusive_lock(
        cache / "run.lock", "another ./dev run (or ./dev command) is using the cache; stop it first"
    ):
        cluster = _main_cluster(cache)
        _stop_leftovers(cache, mb_port, redis_port)
        require_port(http_port, "Odoo", "FAYVAD_HTTP_PORT")
        if workers:
            require_port(GEVENT_PORT_OFFSET + http_port, "Odoo's websocket server", "FAYVAD_HTTP_PORT")
        require_port(mb_port, "Modoboa", "FAYVAD_MODOBOA_PORT")
        require_port(redis_port, "Modoboa's Redis", "FAYVAD_REDIS_PORT")
        cluster.check_port()
        mail_ports = Ports.for_run(
            avoid={http_port, GEVENT_PORT_OFFSET + http_port, mb_port, redis_port, dns_port}
        )
        for name, port, variable in (
            ("SMTP", mail_ports.smtp, "FAYVAD_SMTP_PORT"),
            ("submission", mail_ports.submission, "FAYVAD_SUBMISSION_PORT"),
            ("IMAP", mail_ports.imap, "FAYVAD_IMAP_PORT"),
            ("doveadm", mail_ports.doveadm, "FAYVAD_DOVEADM_PORT"),
        ):
            require_port(port, name, variable)
        env = PythonEnv(cache).ensure()
        service = _modoboa(cache, cache / "modoboa-instance", mb_port, redis_port, cluster)
        dns = DnsServer(cache / "dns-instance", dns_port)
        mail = MailStack(service, cache / "mail-instance", mail_ports)
        logs = cache / "logs"
        odoo = Odoo(
            env,
            cluster,
            cache / "run",
            http_port,
            DB,
            logfile=logs / "odoo.log",
            extra=_serving(workers, http_port),
        )
        server = None
        try:
            cluster.ensure().start()
            made = _start_modoboa(service)
            odoo.write_config()
            state = odoo.ensure_database(logs / "odoo-install.log", cache / "run" / f"{DB}.installed")
            if made and state != "installed":
                say(
                    f"the local Modoboa was made anew: what database {DB} provisioned before is not on it "
                    f"(to start both afresh: stop, `psql -h {cluster.socket_dir} -p {cluster.port} -U odoo "
                    f"postgres -c 'DROP DATABASE {DB}'`, ./dev run)"
                )
            configured = cache / "run" / "mail-server.configured"
            # the token's digest: a Modoboa made anew from a new template has a new token
            token_digest = hashlib.sha256(service.token.encode()).hexdigest()[:12]
            wanted = f"{service.url} {dns.address} {mail.ports.doveadm} {token_digest}"
            greet = []
            if state != "current" or not configured.exists() or configured.read_text() != wanted:
                zone, greet = _configure_mail_server(odoo, service, dns, mail)
                _zone_file(cache).write_text(json.dumps(zone))
                configured.write_text(wanted)
            dns.start(_published(cache))
            mail.start()
            if greet and (made or state == "installed"):  # new mailboxes: a first message each
                _greet(mail, greet)
            say(f"database {DB}: {state}")
            server = odoo.serve()
            if not wait_http(f"http://127.0.0.1:{http_port}/web/health", 120, proc=server):
                raise DevError(f"Odoo did not start; see {logs / 'odoo.log'}")
            mode = f"{workers} workers and 2 cron workers (prefork)" if workers else "threaded"
            print(
                f"Odoo is serving http://127.0.0.1:{http_port}  (login admin / password admin, "
                f"database {DB}; {mode}; ready in {time.monotonic() - started:.1f}s)\n"
                f"Modoboa: {service.url}  (./dev mail-server prints its token)\n"
                f"DNS: {dns.address}  (the verified demo domains' records; ./dev dns-publish DOMAIN adds one's)\n"
                f"Mail: {mail.describe()}\n"
                f"  (a demo mailbox's password: {DEMO_MAILBOX_PASSWORD}; docs/development.md, 'Mail')\n"
                f"Logs: {logs}/odoo.log, {logs}/postgres.log, {service.server_log}\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            server.wait()
            if server.returncode not in (0, -15):
                raise DevError(f"Odoo exited with status {server.returncode}; see {logs / 'odoo.log'}")
        except KeyboardInterrupt:
            say("stopping")
        finally:
            with shielded():  # a second Ctrl-C must not leave PostgreSQL, Redis or Modoboa behind
                stop_process(server)
                odoo.pid_file.unlink(missing_ok=True)
                mail.stop()
                dns.stop()
                service.stop()
                cluster.stop()
    return 0


WELCOME_TEXT = """\
This message was delivered by ./dev run's own mail server: Postfix took it
over SMTP, Dovecot stored it, and Odoo reads the space it takes from Dovecot.

Reply, or write to another demo mailbox, from any mail client (docs/development.md, "Mail").
"""


def _greet(mail, mailboxes):
    try:
        refused = mail.deliver(mailboxes, "Welcome to your demo mailbox", WELCOME_TEXT)
    except (OSError, smtplib.SMTPException) as exc:
        say(f"the demo mailboxes' first message was not delivered: {exc}")
        return
    say(
        f"delivered a first message to {len(mailboxes) - len(refused)} of the {len(mailboxes)} demo mailboxes"
    )
    for address, answer in refused.items():
        say(f"  {address}: refused ({answer[0]} {answer[1].decode(errors='replace')})")


GEVENT_PORT_OFFSET = 3  # --workers: Odoo's websocket server listens on the HTTP port + 3


def _serving(workers, http_port):
    """Odoo's options for ``./dev run --workers N``: the prefork server as in
    production, with a cron time limit that the job runner's batches fit in
    (the runner spends at most half of it, see fayvad.mail.job)."""
    if not workers:
        return {}
    return {
        "workers": str(workers),
        "gevent_port": str(http_port + GEVENT_PORT_OFFSET),
        "max_cron_threads": "2",
        "limit_time_real_cron": "300",
        "limit_time_real": "120",
        "limit_time_cpu": "60",
        "limit_memory_soft": str(1024 * 1024 * 1024),
        "limit_memory_hard": str(1536 * 1024 * 1024),
        "proxy_mode": "False",
    }


def _zone_file(cache):
    return cache / "run" / "dns-zone.json"


def _published(cache):
    """What ``./dev run``'s DNS serves: the lines kept in the cache."""
    path = _zone_file(cache)
    return json.loads(path.read_text()) if path.exists() else []


def _stop_leftovers(cache, mb_port, redis_port):
    """A ``./dev run`` killed with ``kill -9`` leaves its services running:
    recognise them by their pid files in the cache (Odoo's, Modoboa's run
    file) and stop them, instead of failing on busy ports. PostgreSQL's own
    leftover (its postmaster.pid) is stopped by ``Cluster.start``."""
    from .modoboa import Modoboa

    workdir = cache / "run"
    pid = pid_file_process(workdir / ODOO_PID_FILE, str(workdir / "odoo.conf"))
    if pid:
        say(f"stopping the Odoo (pid {pid}) that an interrupted ./dev run left running")
        stop_pid_group(pid)
    (workdir / ODOO_PID_FILE).unlink(missing_ok=True)
    service = Modoboa(cache, cache / "modoboa-instance", mb_port, redis_port, log=say)
    if service.leftover():
        say("stopping the Modoboa and Redis that an interrupted ./dev run left running")
        service.stop()
    knot = pid_file_process(cache / "dns-instance" / "knot.pid", str(cache / "dns-instance" / "knot.conf"))
    if knot:
        say("stopping the DNS server that an interrupted ./dev run left running")
        stop_pid_group(knot)
    MailStack(service, cache / "mail-instance", None).stop()  # by its run file, when it has one


# -- build ----------------------------------------------------------------------------
def cmd_build(args):
    """The addon as an OCA-style wheel (whool, from the package index); prints its path."""
    cache = cache_dir()
    env = PythonEnv(cache).ensure()
    dist = cache / "dist"
    rmtree(dist)
    run(
        [env.python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ADDON],
        log=cache / "logs" / "build.log",
        what="building the wheel",
    )
    (wheel,) = dist.glob("*.whl")
    print(wheel)
    return 0


# -- commands on the fayvad database ------------------------------------------------
@contextlib.contextmanager
def _fayvad_database():
    """An Odoo on database ``fayvad``, reusing a running ``./dev run``'s
    PostgreSQL or starting it for the duration of the command."""
    cache = cache_dir()
    env = PythonEnv(cache).ensure()
    cluster = _main_cluster(cache)
    if not (cluster.data / "PG_VERSION").exists():
        raise DevError("database fayvad does not exist yet: run ./dev run once")
    cluster.ensure()
    ours = not cluster._own_postmaster_alive()
    if ours:
        cluster.start()
    try:
        if not cluster.database_exists(DB):
            raise DevError("database fayvad does not exist yet: run ./dev run once")
        workdir = Path(tempfile.mkdtemp(prefix="cmd-", dir=cache))
        try:
            yield Odoo(env, cluster, workdir, free_port(), DB).write_config()
        finally:
            rmtree(workdir)
    finally:
        if ours:
            cluster.stop()


def cmd_api_key(args):
    with _fayvad_database() as odoo:
        lines = odoo.shell(f"{HOOKS}\nprint(new_api_key(env, {args.login!r}))", "api-key")
    print(lines[-1])
    return 0


def cmd_webhook_secret(args):
    org = "None" if args.org_id is None else str(args.org_id)
    base = f"http://127.0.0.1:{env_port('FAYVAD_HTTP_PORT', 8069)}"
    with _fayvad_database() as odoo:
        lines = odoo.shell(f"{HOOKS}\nprint(webhook_secret(env, {org}, {base!r}))", "webhook-secret")
    print(lines[-1])
    return 0


def cmd_import_server(args):
    """The import from ``./dev run``'s mail server, followed here: its dry
    run, and with ``--apply`` the import (docs/onboarding.md). The work is
    the import's cron's: ``./dev run``'s Odoo does it in the background
    (interrupting this command leaves it going), or this command when no
    ``./dev run`` is up."""
    base = f"http://127.0.0.1:{env_port('FAYVAD_HTTP_PORT', 8069)}"
    with _fayvad_database() as odoo:

        def hook(code):
            return odoo.shell(f"{HOOKS}\n{code}", "import-server")

        background = wait_http(f"{base}/web/health", 2)
        run_id = int(hook(f"print(start_import(env, {args.filter!r}))")[-1])
        print(f"import {run_id}: reading the server " + ("in ./dev run's Odoo" if background else "here"))
        for step in ("reading", "importing") if args.apply else ("reading",):
            if step == "importing":
                hook(f"apply_import(env, {run_id})")
            if background:
                _follow_import(odoo, run_id, step)
            else:
                hook(f"run_import_cron(env, {run_id})")
            report = hook(f"for line in import_report(env, {run_id}):\n    print(line)")
            print("\n".join(report if step == "reading" else report[-1:]))
        if not args.apply:
            print("dry run: nothing imported (--apply imports)")
    return 0


IMPORT_PROGRESS = """
SELECT i.state, i.listed, coalesce(i.read_error_count, 0),
       count(l.id) FILTER (WHERE l.kind = 'domain'),
       count(l.id) FILTER (WHERE l.kind = 'domain' AND l.contents_read),
       count(l.id) FILTER (WHERE l.kind = 'domain' AND l.action = 'create'),
       count(l.id) FILTER (WHERE l.kind = 'domain' AND l.action = 'create' AND l.imported),
       count(l.id) FILTER (WHERE l.refused),
       coalesce(i.last_error, '')
  FROM fayvad_mail_import i LEFT JOIN fayvad_mail_import_line l ON l.import_id = i.id
 WHERE i.id = {run_id} GROUP BY i.id
"""


def _follow_import(odoo, run_id, step):
    """Print the run's progress (read from the database, as the form shows
    it) while ``./dev run``'s cron works on ``step``."""
    shown = None
    while True:
        row = odoo.cluster.psql(IMPORT_PROGRESS.format(run_id=int(run_id)), db=odoo.db).split("|", 8)
        state, listed, last_error = row[0], row[1], row[8]  # the error last: it may hold a "|"
        read_errors, domains, read, to_import, imported, refused = (int(value) for value in row[2:8])
        if state != step:
            return
        if step == "reading" and listed != "t":
            now = "listing the server's domains"
        elif step == "reading":
            now = f"reading: {read} / {domains} domains"
        else:
            now = f"importing: {imported} / {to_import} domains"
        errors = read_errors + refused
        now += f", {errors} errors so far" + (f" (last: {last_error})" if last_error else "")
        if now != shown:
            print(f"  {now}", flush=True)
            shown = now
        time.sleep(1)


def cmd_dns_publish(args):
    """Publish a domain's records in ``./dev run``'s DNS (its customer did):
    *Verify Now* then verifies it."""
    cache = cache_dir()
    names = json.dumps(args.domains)
    with _fayvad_database() as odoo:
        lines = odoo.shell(
            f"{HOOKS}\nimport json\nprint(json.dumps(zone_lines(env, {names})))", "dns-publish"
        )
    published = _published(cache)
    published += [line for line in json.loads(lines[-1]) if line not in published]
    _zone_file(cache).parent.mkdir(parents=True, exist_ok=True)
    _zone_file(cache).write_text(json.dumps(published))
    dns = DnsServer(cache / "dns-instance", env_port("FAYVAD_DNS_PORT", 8053))
    if pid_file_process(dns.dir / "knot.pid", str(dns.dir / "knot.conf")):
        dns.write_zone(published)
        print(f"published in the DNS of ./dev run ({dns.address}): {', '.join(args.domains)}")
    else:
        print(f"kept for the DNS of the next ./dev run: {', '.join(args.domains)}")
    return 0


def cmd_screenshots(args):
    """The documentation's screenshots, from the running ./dev run."""
    base = f"http://127.0.0.1:{env_port('FAYVAD_HTTP_PORT', 8069)}"
    if not wait_http(f"{base}/web/health", 5):
        raise DevError(f"no Odoo answers at {base}: start ./dev run first")
    _ensure_chromium()
    env = PythonEnv().ensure()  # the DevTools client (websocket-client) is in its requirements
    return subprocess.run(
        [str(env.python), "-m", "devtools.screenshots", base, *args.names], cwd=REPO, check=False
    ).returncode


def cmd_mail_server(args):
    from .modoboa import Modoboa

    cache = cache_dir()
    service = Modoboa(
        cache,
        cache / "modoboa-instance",
        env_port("FAYVAD_MODOBOA_PORT", 8090),
        env_port("FAYVAD_REDIS_PORT", 6390),
        log=say,
    )
    if not (service.instance_dir / "token").exists():
        raise DevError("there is no local Modoboa yet: ./dev run makes it")
    print(f"{service.url} {service.token}")
    return 0


# -- test ---------------------------------------------------------------------------
def _lint(env):
    failures = 0
    for what, cmd in (
        ("ruff check", [env.tool("ruff"), "check", "."]),
        ("ruff format", [env.tool("ruff"), "format", "--check", "."]),
        ("pylint-odoo", [env.tool("pylint"), "--rcfile=.pylintrc-mandatory", "fayvad_mail"]),
    ):
        say(f"{what} ...")
        proc = subprocess.run([str(c) for c in cmd], cwd=REPO, check=False)
        if proc.returncode:
            say(f"{what} FAILED")
            failures += 1
    return failures


def cmd_lint(args):
    env = PythonEnv().ensure()
    return 1 if _lint(env) else 0


def _test_env(service, **extra_env):
    return dict(
        os.environ,
        FAYVAD_TEST_MODOBOA_URL=service.url,
        FAYVAD_TEST_MODOBOA_TOKEN=service.token,
        FAYVAD_TEST_MODOBOA_DSN=service.database.dsn(),
        FAYVAD_TEST_MODOBOA_PASSWORD_POLICY=json.dumps(service.password_policy),
        FAYVAD_TEST_REQUIRE_MODOBOA="1",
        FAYVAD_TEST_NO_SKIPS="1",  # every test runs: a skipped one fails the run
        **extra_env,
    )


def _pytest_cmd(env):
    return [env.python, "-m", "pytest", "-p", "no:cacheprovider"]


def _pytest(env, odoo, service, pytest_args, **extra_env):
    """Run pytest-odoo on ``odoo``'s database, against the Modoboa ``service``;
    its exit status."""
    cmd = [
        *_pytest_cmd(env),
        "-q",
        f"--odoo-config={odoo.config}",
        f"--odoo-database={odoo.db}",
        "--odoo-http",
        *pytest_args,
    ]
    return subprocess.run(
        [str(c) for c in cmd], cwd=REPO, env=_test_env(service, **extra_env), check=False
    ).returncode


LONG_DB = "fayvad_long"
RUNNER_DB = "fayvad_runner"


def _copy_for_runner(cluster, odoo, work):
    """The freshly installed test database, kept for Odoo's own runner (as
    OCA CI runs it: on a new install, not after another suite)."""
    say("Odoo's test runner: copying the freshly installed database ...")
    cluster.copy_database(odoo.db, RUNNER_DB)
    filestore = work / "data" / "filestore"
    if (filestore / odoo.db).exists():
        shutil.copytree(filestore / odoo.db, filestore / RUNNER_DB, dirs_exist_ok=True)


def _odoo_runner(env, cluster, odoo, service, work, extra_env):
    """devtools/runner: Odoo's own test runner, on the database copied by
    ``_copy_for_runner``, finds and passes as many tests as pytest collects."""
    say("Odoo's test runner: running the addon's tests through odoo-bin --test-enable ...")
    conf = work / "odoo-runner.conf"
    lines = [
        line
        for line in odoo.config.read_text()
        .replace(f"db_name = {odoo.db}", f"db_name = {RUNNER_DB}")
        .splitlines()
        if not line.startswith(("logfile", "http_port"))
    ]
    conf.write_text("\n".join([*lines, f"http_port = {free_port()}"]) + "\n")
    runner_env = _test_env(
        service,
        FAYVAD_RUNNER_PYTHON=str(env.python),
        FAYVAD_RUNNER_LAUNCHER=str(launcher_in(work)),
        FAYVAD_RUNNER_CONF=str(conf),
        FAYVAD_RUNNER_DB=RUNNER_DB,
        FAYVAD_RUNNER_LOG=str(work / "odoo-runner.log"),
        FAYVAD_RUNNER_COLLECT_CONF=str(odoo.config),
        FAYVAD_RUNNER_COLLECT_DB=odoo.db,
        **extra_env,
    )
    cmd = [*_pytest_cmd(env), "-p", "no:odoo", "-q", "-s", "devtools/runner"]
    try:
        return subprocess.run([str(c) for c in cmd], cwd=REPO, env=runner_env, check=False).returncode
    finally:
        cluster.drop_database(RUNNER_DB)


def _long_tests(env, cluster, odoo, service, work, cache, extra_env, pytest_args=()):
    """devtools/long on a copy of the test database, served for real."""
    say("long tests: copying the test database ...")
    cluster.copy_database(odoo.db, LONG_DB)
    filestore = work / "data" / "filestore"
    if (filestore / odoo.db).exists():
        shutil.copytree(filestore / odoo.db, filestore / LONG_DB, dirs_exist_ok=True)
    conf = work / "odoo-long.conf"
    text = odoo.config.read_text().replace(f"db_name = {odoo.db}", f"db_name = {LONG_DB}")
    conf.write_text("\n".join(line for line in text.splitlines() if not line.startswith("logfile")) + "\n")
    long_env = _test_env(
        service,
        FAYVAD_LONG_PYTHON=str(env.python),
        FAYVAD_LONG_ODOO_CONF=str(conf),
        FAYVAD_LONG_DB=LONG_DB,
        FAYVAD_LONG_WORK=str(work),
        FAYVAD_LONG_PG=json.dumps(cluster.describe()),
        FAYVAD_LONG_MODOBOA=json.dumps(
            {
                "cache_dir": str(cache),
                "instance_dir": str(service.instance_dir),
                "port": service.port,
                "redis_port": service.redis_port,
            }
        ),
        FAYVAD_LONG_FUZZ_PYTHON=str(_fuzz_python(cache)),
        **extra_env,
    )
    cmd = [*_pytest_cmd(env), "-p", "no:odoo", "-q", "-s"]
    cmd += pytest_args or ["devtools/long"]
    return subprocess.run([str(c) for c in cmd], cwd=REPO, env=long_env, check=False).returncode


def _fuzz_python(cache):
    """The contract-driven fuzzer (schemathesis) in a virtualenv of its own:
    its pins would fight Odoo's."""
    from .pyenv import ensure_tool_venv

    return ensure_tool_venv(
        cache / "fuzz-venv", REPO / "devtools" / "long" / "fuzz-requirements.txt", "the fuzzer"
    )


def cmd_test(args):
    cache = cache_dir()
    env = PythonEnv(cache).ensure()
    _ensure_chromium()
    if args.reuse:  # for quick iterations: keep the test database, upgrade it when the addon changed
        work = cache / ("test-reuse" if args.reuse == "default" else f"test-reuse-{args.reuse}")
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="test-", dir=cache))
    cluster = Cluster(work / "pg", 5432, work / "postgres.log")
    service = _modoboa(cache, work / "modoboa", free_port(), free_port(), cluster)
    status = 1
    secrets_file = work / "secrets-used.txt"  # not a log: the long tests search the logs for these
    secrets_file.unlink(missing_ok=True)
    dns = DnsServer(work / "dns", free_port())
    mail = MailStack(service, work / "mail", Ports.free(avoid={service.port, service.redis_port, dns.port}))
    secrets_env = {"FAYVAD_TEST_SECRETS_FILE": str(secrets_file), **dns.env(), **mail.env()}
    started = time.monotonic()
    try:
        cluster.ensure().start()
        _start_modoboa(service, fresh=True)
        dns.start()
        t0 = time.monotonic()
        mail.start()
        say(
            f"mail server (Postfix, Dovecot, OpenDKIM, policy daemon, sink) started in {time.monotonic() - t0:.1f}s"
        )
        odoo = Odoo(env, cluster, work, free_port(), "fayvad_test", logfile=work / "odoo-test.log")
        odoo.write_config()
        t0 = time.monotonic()
        if args.reuse:
            state = odoo.ensure_database(work / "odoo-install.log", work / "fayvad_test.installed")
            say(f"test database {state} in {time.monotonic() - t0:.0f}s; running pytest")
        else:
            say("installing fayvad_mail (with demo data) in a throwaway database ...")
            odoo.install(work / "odoo-install.log")
            say(f"installed in {time.monotonic() - t0:.0f}s; running pytest")
        if not args.pytest_args:  # the whole suite: Odoo's own runner will run it too
            _copy_for_runner(cluster, odoo, work)
        long_args = [a for a in args.pytest_args or [] if a.startswith("devtools/long")]
        unit_args = [a for a in args.pytest_args or [] if not a.startswith("devtools/long")]
        tests = 0
        if unit_args or not long_args:  # (only long test paths given: only those run)
            tests = _pytest(
                env, odoo, service, unit_args or ["fayvad_mail/tests", "devtools/tests"], **secrets_env
            )
            say(f"pytest done in {time.monotonic() - started:.0f}s")
        if not args.pytest_args:  # the whole suite: Odoo's own runner must find it too
            tests = _odoo_runner(env, cluster, odoo, service, work, secrets_env) or tests
            say(f"Odoo's test runner done in {time.monotonic() - started:.0f}s")
        if args.long:
            tests = _long_tests(env, cluster, odoo, service, work, cache, secrets_env, long_args) or tests
            say(f"long tests done in {time.monotonic() - started:.0f}s")
        lint_failures = 0 if args.no_lint else _lint(env)
        status = 1 if tests or lint_failures else 0
        if tests and not args.reuse:
            say("pytest failed; FAYVAD_KEEP_TEST_LOGS=1 keeps the Odoo log in the cache's logs/last-test")
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    finally:
        mail.stop()
        dns.stop()
        service.stop()
        cluster.stop()
        if os.environ.get("FAYVAD_KEEP_TEST_LOGS"):
            keep = cache / "logs" / "last-test"
            rmtree(keep)
            keep.mkdir(parents=True)
            for log in work.glob("*.log"):
                shutil.copy(log, keep / log.name)
        if not args.reuse:
            rmtree(work)
    return status


# -- bench --------------------------------------------------------------------------
BENCH_DIR = REPO / "devtools" / "bench"


def cmd_bench(args):
    """The benchmarks of devtools/bench on a throwaway database without demo
    data; the figures as a table, and as JSON in the cache's logs/."""
    cache = cache_dir()
    env = PythonEnv(cache).ensure()
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=cache))
    cluster = Cluster(work / "pg", 5432, work / "postgres.log")
    figures = work / "figures.jsonl"
    machine = {"nproc": os.cpu_count(), "load_before": _load()}
    started = time.monotonic()
    service, status = None, 1
    try:
        service = _modoboa(cache, work / "modoboa", free_port(), free_port(), cluster)
        cluster.start()
        _start_modoboa(service, fresh=True)
        odoo = Odoo(env, cluster, work, free_port(), "fayvad_bench", logfile=work / "odoo-bench.log")
        odoo.write_config()
        say("installing fayvad_mail (without demo data) in a throwaway database ...")
        odoo.install(work / "odoo-install.log", demo=False)
        say(f"installed in {time.monotonic() - started:.0f}s; running the benchmarks")
        if args.scale:
            return _bench_scale(env, cluster, odoo, service, work, cache, machine, started)
        pytest_args = args.pytest_args or []
        if not any(".py" in arg for arg in pytest_args):  # options only: every benchmark
            pytest_args += sorted(str(path) for path in BENCH_DIR.glob("bench_*.py"))
        failed = _pytest(
            env,
            odoo,
            service,
            ["-s", *pytest_args],
            FAYVAD_BENCH_FIGURES=str(figures),
            **_bench_context(env, odoo, service, work, cache),
        )
        machine.update(load_after=_load(), seconds=round(time.monotonic() - started))
        if figures.exists():
            _report_figures([json.loads(line) for line in figures.read_text().splitlines()], machine, cache)
        if failed:
            say("a benchmark failed (see above): its figures are missing")
        status = 1 if failed else 0
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    finally:
        if service is not None:
            service.stop()
        cluster.stop()
        rmtree(work)
    return status


def _bench_context(env, odoo, service, work, cache):
    """What benchmarks that run Odoo processes of their own (and Modoboa's
    commands) need to know: as JSON in the environment."""
    conf = work / "odoo-bench-scripts.conf"
    conf.write_text(
        "\n".join(line for line in odoo.config.read_text().splitlines() if not line.startswith("logfile"))
        + "\n"
    )
    return {
        "FAYVAD_BENCH_ODOO": json.dumps(
            {"python": str(env.python), "conf": str(conf), "db": odoo.db, "logs": str(work / "logs")}
        ),
        "FAYVAD_BENCH_MODOBOA": json.dumps(
            {
                "cache": str(cache),
                "instance": str(service.instance_dir),
                "port": service.port,
                "redis_port": service.redis_port,
                "pg": service.database.pg,
            }
        ),
    }


def _bench_scale(env, cluster, odoo, service, work, cache, machine, started):
    """devtools/bench/scale.py on two bulk-filled copies of the database."""
    dbs = {"db_small": "fayvad_scale_1k", "db_big": "fayvad_scale_10k"}
    for db in dbs.values():
        cluster.copy_database(odoo.db, db)
    conf = work / "odoo-scale.conf"
    conf.write_text(
        "\n".join(line for line in odoo.config.read_text().splitlines() if not line.startswith("logfile"))
        + "\n"
    )
    figures = work / "figures.jsonl"
    out = cache / "logs" / f"bench-scale-{datetime.datetime.now():%Y%m%d-%H%M%S}-details.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = {
        "python": str(env.python),
        "conf": str(conf),
        "logs": str(work / "logs"),
        "work": str(work),
        "pg": cluster.describe(),
        "modoboa_url": service.url,
        "modoboa_token": service.token,
        "out": str(out),
        **dbs,
    }
    say("scale: bulk data (10,000 and 1,000 organizations), then Odoo with --workers 2 ...")
    bench_env = dict(os.environ, FAYVAD_BENCH_FIGURES=str(figures))
    proc = subprocess.run(
        [str(env.python), "-m", "devtools.bench.scale", json.dumps(cfg)], cwd=REPO, env=bench_env, check=False
    )
    machine.update(load_after=_load(), seconds=round(time.monotonic() - started))
    if figures.exists():
        _report_figures([json.loads(line) for line in figures.read_text().splitlines()], machine, cache)
    say(f"details (EXPLAIN, every figure) in {out}")
    return proc.returncode


def _load():
    return [round(value, 2) for value in os.getloadavg()]


def _report_figures(rows, machine, cache):
    """Print the figures as a table and keep them in logs/bench-<time>.json."""
    load = " -> ".join("/".join(f"{v:.2f}" for v in machine[key]) for key in ("load_before", "load_after"))
    lines = [
        f"fayvad_mail benchmarks: {machine['nproc']} CPUs, load average {load} (1/5/15 min, "
        f"before -> after), {machine['seconds']}s in all; compare ratios within one run only",
    ]
    widths = [max(len(row[key]) for row in rows) for key in ("benchmark", "case")]
    lines += [
        f"{row['benchmark']:<{widths[0]}}  {row['case']:<{widths[1]}}  {describe(row['figures'])}"
        for row in rows
    ]
    print("\n".join(lines), flush=True)
    out = cache / "logs" / f"bench-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**machine, "figures": rows}, indent=1) + "\n")
    say(f"figures written to {out}")
    _write_bench_table(rows, machine, load)


BENCH_DOC = REPO / "docs" / "benchmarks.md"
BENCH_MARKS = ("<!-- ./dev bench writes this table -->", "<!-- end of the table ./dev bench writes -->")


def _write_bench_table(rows, machine, load):
    """The run's table, dated, in docs/benchmarks.md (between its marks), in
    place of the previous run's: one table, the latest."""
    if not BENCH_DOC.exists():
        return
    text = BENCH_DOC.read_text()
    start, end = (text.find(mark) for mark in BENCH_MARKS)
    if start < 0 or end < start:
        return
    table = [
        BENCH_MARKS[0],
        f"### {datetime.date.today():%Y-%m-%d}",
        "",
        f"One run ({machine['nproc']} CPUs, load average {load} (1/5/15 min, before -> after), "
        f"{machine['seconds']} s in all):",
        "",
        "| benchmark | case | figures |",
        "|---|---|---|",
        *(f"| {row['benchmark']} | {row['case']} | {describe(row['figures'])} |" for row in rows),
        "",
    ]
    BENCH_DOC.write_text(text[:start] + "\n".join(table) + text[end:])
    say(f"the table is in {BENCH_DOC.relative_to(REPO)}")


# -- entry point ---------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev", usage=HELP, add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    sub = parser.add_subparsers(dest="command")
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--workers", type=int, default=0, metavar="N")
    test = sub.add_parser("test")
    test.add_argument("--no-lint", action="store_true")
    test.add_argument("--long", action="store_true")
    test.add_argument("--reuse", nargs="?", const="default", default=None, metavar="NAME")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    bench = sub.add_parser("bench")
    bench.add_argument("--scale", action="store_true")
    bench.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sub.add_parser("lint")
    sub.add_parser("build")
    key = sub.add_parser("api-key")
    key.add_argument("login")
    secret = sub.add_parser("webhook-secret")
    secret.add_argument("org_id", nargs="?", type=int)
    sub.add_parser("mail-server")
    shots = sub.add_parser("screenshots")
    shots.add_argument("names", nargs="*", metavar="NAME", help="only these shots (docs/NAME.png)")
    importing = sub.add_parser("import-server")
    importing.add_argument("--filter", default="", metavar="TEXT", help="only the domains containing TEXT")
    importing.add_argument("--apply", action="store_true", help="import (else a dry run)")
    publish = sub.add_parser("dns-publish")
    publish.add_argument("domains", nargs="+", metavar="DOMAIN")
    args, extra = parser.parse_known_args(argv)
    if args.command == "test" and args.reuse and ("/" in args.reuse or args.reuse.endswith(".py")):
        args.pytest_args = [args.reuse, *(args.pytest_args or [])]  # a path, not a name
        args.reuse = "default"
    if extra and args.command in ("test", "bench"):
        args.pytest_args = extra + (args.pytest_args or [])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.help or not args.command:
        print(HELP, end="")
        return 0 if args.help else 2
    terminate_on_sigterm()
    commands = {
        "run": cmd_run,
        "test": cmd_test,
        "bench": cmd_bench,
        "lint": cmd_lint,
        "build": cmd_build,
        "api-key": cmd_api_key,
        "webhook-secret": cmd_webhook_secret,
        "mail-server": cmd_mail_server,
        "screenshots": cmd_screenshots,
        "dns-publish": cmd_dns_publish,
        "import-server": cmd_import_server,
    }
    try:
        return commands[args.command](args)
    except DevError as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
