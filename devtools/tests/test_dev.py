"""Tests of the ``./dev`` tool itself: its failure cases give one clear line,
a non-zero status, and leave nothing half-installed behind.

They run the real ``./dev`` script in a subprocess with a throwaway cache.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "dev"


def dev(*args, cache, env=None, timeout=120):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ODOO_SRC", "FAYVAD_"))}
    environ["FAYVAD_CACHE"] = str(cache)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(DEV), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.startswith("dev: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def leftovers(cache):
    """What an aborted install left in the cache (logs are fine)."""
    return sorted(p.name for p in Path(cache).iterdir() if p.name not in ("logs", "run.lock"))


def test_help_lists_every_command(tmp_path):
    proc = dev("--help", cache=tmp_path)
    assert proc.returncode == 0
    for command in ("run", "test", "bench", "build", "lint", "api-key", "webhook-secret", "mail-server"):
        assert f"\n  {command}" in proc.stdout
    assert "ODOO_SRC" in proc.stdout and "FAYVAD_CACHE" in proc.stdout


def test_unknown_command_fails(tmp_path):
    proc = dev("frobnicate", cache=tmp_path)
    assert proc.returncode != 0


def test_odoo_src_of_another_version_is_refused(tmp_path):
    fake = tmp_path / "odoo17"
    (fake / "odoo").mkdir(parents=True)
    (fake / "odoo" / "release.py").write_text("version_info = (17, 0, 0, 'final', 0, '')\n")
    cache = tmp_path / "cache"
    proc = dev("test", cache=cache, env={"ODOO_SRC": str(fake)})
    assert proc.returncode == 1
    assert "holds Odoo 17.0, not Odoo 18.0" in error_line(proc)
    assert leftovers(cache) == []


def test_odoo_src_without_odoo_is_refused(tmp_path):
    cache = tmp_path / "cache"
    proc = dev("test", cache=cache, env={"ODOO_SRC": str(tmp_path)})
    assert proc.returncode == 1
    assert "is not an Odoo source" in error_line(proc)
    assert leftovers(cache) == []


def test_no_odoo_src_and_no_network(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "cache"
    proc = dev("test", cache=cache, env={"FAYVAD_ODOO_ARCHIVE_URL": f"http://127.0.0.1:{port}/odoo.tar.gz"})
    assert proc.returncode == 1
    line = error_line(proc)
    assert "ODOO_SRC is not set and Odoo 18.0 cannot be downloaded" in line
    assert leftovers(cache) == []


def test_http_port_busy(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = dev("run", cache=tmp_path, env={"FAYVAD_HTTP_PORT": str(port)}, timeout=30)
    assert proc.returncode == 1
    assert f"port {port} (Odoo) is busy" in error_line(proc)
    assert leftovers(tmp_path) == []


def test_postgres_port_busy(tmp_path):
    sockdir = tmp_path / "pg" / "run"
    sockdir.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sockdir / ".s.PGSQL.5433"))
        sock.listen()
        with socket.socket() as tcp:  # keep the other ports free, whatever runs here
            tcp.bind(("127.0.0.1", 0))
            http_port = tcp.getsockname()[1]
        proc = dev(
            "run",
            cache=tmp_path,
            env={"FAYVAD_HTTP_PORT": str(http_port), "FAYVAD_MODOBOA_PORT": "1", "FAYVAD_REDIS_PORT": "2"},
            timeout=30,
        )
    if "is busy on 127.0.0.1" in proc.stderr:
        pytest.skip("the loopback test ports are not free here")
    assert proc.returncode == 1
    assert "PostgreSQL port 5433 is busy" in error_line(proc)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_during_install_leaves_nothing(tmp_path):
    import odoo

    odoo_src = Path(odoo.__file__).resolve().parent.parent  # the cache's copy of Odoo: a valid ODOO_SRC
    cache = tmp_path / "small"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(cache)], check=True)
    try:
        proc = dev("test", cache=cache, env={"ODOO_SRC": str(odoo_src)}, timeout=300)
        assert proc.returncode == 1
        assert "disk full" in error_line(proc)
        assert leftovers(cache) == []
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)


# -- ./dev run and impatient users ----------------------------------------------------
BUILT = ("odoo", "venv", "modoboa-venv", "modoboa-template")


def _built_cache(tmp_path):
    """A throwaway cache whose virtualenvs, Odoo copy and Modoboa template are
    the real cache's (built by the ./dev test running this), so that
    ``./dev run`` only has its own database and services to make."""
    real = Path(os.environ.get("FAYVAD_CACHE") or Path.home() / ".cache" / "fayvad_mail")
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in BUILT:
        if not (real / name).exists():
            pytest.skip(f"{real / name} is not built (./dev test builds it)")
        (cache / name).symlink_to(real / name)
    return cache


def _free_ports(count):
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class DevRun:
    """``./dev run`` in its own session, as a terminal runs it."""

    def __init__(self, cache, ports):
        http, modoboa, redis, pg, dns, smtp, submission, imap, doveadm = ports
        self.ports = ports
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ODOO_SRC", "FAYVAD_"))}
        self.env.update(
            FAYVAD_CACHE=str(cache),
            FAYVAD_HTTP_PORT=str(http),
            FAYVAD_MODOBOA_PORT=str(modoboa),
            FAYVAD_REDIS_PORT=str(redis),
            FAYVAD_PG_PORT=str(pg),
            FAYVAD_DNS_PORT=str(dns),
            FAYVAD_SMTP_PORT=str(smtp),
            FAYVAD_SUBMISSION_PORT=str(submission),
            FAYVAD_IMAP_PORT=str(imap),
            FAYVAD_DOVEADM_PORT=str(doveadm),
        )
        self.log = cache / f"dev-run-{len(list(cache.glob('dev-run-*')))}.log"
        self.proc = None

    def start(self, timeout=600):
        handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(DEV), "run"],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Odoo is serving" in self.log.read_text():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"./dev run did not start:\n{self.log.read_text()[-3000:]}")

    def output(self):
        return self.log.read_text()


def _processes_of(cache):
    """Processes that run in, or name, the throwaway cache (PostgreSQL, Redis,
    Modoboa, Odoo), as (pid, command line)."""
    root = str(cache)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if root in cmdline or cwd.startswith(root):
            found.append((int(entry.name), cmdline.strip()))
    return found


def _wait_gone(cache, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _processes_of(cache):
        time.sleep(0.5)
    return _processes_of(cache)


def test_run_survives_a_second_ctrl_c_and_a_kill_9(tmp_path):
    cache = _built_cache(tmp_path)
    ports = _free_ports(9)
    # a second Ctrl-C while stopping: everything started is stopped all the same
    run = DevRun(cache, ports).start()
    assert any("knotd" in cmd for _pid, cmd in _processes_of(cache)), (
        "Odoo, Modoboa, Redis, the DNS server run"
    )
    os.killpg(run.proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.proc.wait(120) == 0, run.output()[-3000:]
    assert _wait_gone(cache) == [], run.output()[-3000:]
    assert "still stopping" in run.output()

    # kill -9: its services live on; the next ./dev run stops them and serves
    run = DevRun(cache, ports).start()
    run.proc.kill()
    run.proc.wait(30)
    left = _processes_of(cache)
    assert any("odoo" in cmd for _pid, cmd in left), left
    again = DevRun(cache, ports).start()
    assert "left running" in again.output()
    os.killpg(again.proc.pid, signal.SIGTERM)
    assert again.proc.wait(120) == 0, again.output()[-3000:]
    assert _wait_gone(cache) == [], again.output()[-3000:]


@pytest.fixture(scope="module")
def dev_run(tmp_path_factory):
    """One ``./dev run`` (its first start: a new database, a new Modoboa),
    stopped after the module's tests, which leave nothing running."""
    cache = _built_cache(tmp_path_factory.mktemp("dev-run"))
    run = DevRun(cache, _free_ports(9)).start()
    run.cache = cache
    yield run
    os.killpg(run.proc.pid, signal.SIGTERM)
    run.proc.wait(120)
    assert _wait_gone(cache) == [], run.output()[-3000:]


def test_dev_run_keeps_modoboa_in_its_postgresql_and_greets_the_demo_mailboxes(dev_run):
    """Modoboa's database is the private cluster's; every demo mailbox holds a
    first message, read over IMAP with the demo password."""
    import imaplib

    from devtools.odoo_hooks import DEMO_MAILBOX_PASSWORD
    from devtools.pg import Cluster

    ports = dev_run.ports
    cluster = Cluster(dev_run.cache / "pg", ports[3], dev_run.cache / "logs" / "postgres.log").ensure()
    domains = cluster.psql("SELECT name FROM admin_domain ORDER BY name", db="modoboa").split()
    assert "fayvad.example" in domains, domains
    greeted = re.search(r"delivered a first message to (\d+) of the (\d+) demo mailboxes", dev_run.output())
    assert greeted, dev_run.output()[-3000:]
    mailboxes = cluster.psql(
        "SELECT m.address || '@' || d.name FROM admin_mailbox m JOIN admin_domain d ON d.id = m.domain_id "
        "WHERE d.enabled",  # the domains that receive mail
        db="modoboa",
    ).split()
    assert int(greeted[1]) == int(greeted[2]) == len(mailboxes) > 1, (greeted[0], mailboxes)
    imap = imaplib.IMAP4("127.0.0.1", ports[7])
    try:
        imap.login("cto@fayvad.example", DEMO_MAILBOX_PASSWORD)
        status, data = imap.select("INBOX", readonly=True)
        assert (status, data) == ("OK", [b"1"]), data
        _status, parts = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Welcome to your demo mailbox" in parts[0][1]
    finally:
        imap.logout()
    usage = cluster.psql("SELECT bytes FROM admin_quota WHERE username = 'cto@fayvad.example'", db="modoboa")
    assert int(usage) > 0, "Dovecot wrote what the mailbox holds into Modoboa's table"


def test_import_server_follows_the_import_dev_run_does(dev_run):
    """``./dev import-server`` starts an import that ``./dev run``'s Odoo reads
    and imports in the background (its cron), and follows it to the end."""
    import requests

    cache, ports, run = dev_run.cache, dev_run.ports, dev_run
    api = f"http://127.0.0.1:{ports[1]}/api/v2"
    token = (cache / "modoboa-instance" / "token").read_text().strip()
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    name = f"legacy-{os.getpid()}-{time.monotonic_ns() % 10**6}.example"
    for path, body in (
        (
            "/domains/",
            {"name": name, "quota": 0, "default_mailbox_quota": 10, "enabled": True, "type": "domain"},
        ),
        (
            "/accounts/",
            {
                "username": f"anna@{name}",
                "role": "SimpleUsers",
                "password": "Imported-Passw0rd-1",
                "mailbox": {"use_domain_quota": False, "quota": 10},
            },
        ),
        ("/aliases/", {"address": f"sales@{name}", "recipients": [f"anna@{name}"], "enabled": True}),
    ):
        response = session.post(f"{api}{path}", json=body, timeout=60)
        assert response.status_code == 201, response.text[:300]
    env = {key: value for key, value in run.env.items() if key.startswith("FAYVAD_")}

    dry = dev("import-server", "--filter", name, cache=cache, env=env, timeout=600)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "reading the server in ./dev run's Odoo" in dry.stdout, dry.stdout
    assert "1 domain, 3 objects to import, 0 already in Odoo, 0 conflicts" in dry.stdout, dry.stdout
    assert "dry run: nothing imported" in dry.stdout

    applied = dev("import-server", "--filter", name, "--apply", cache=cache, env=env, timeout=600)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "in ./dev run's Odoo" in applied.stdout
    assert "imported: 3 objects; nothing was changed on the mail server" in applied.stdout, applied.stdout

    again = dev("import-server", "--filter", name, cache=cache, env=env, timeout=600)
    assert "0 objects to import, 3 already in Odoo" in again.stdout, again.stdout
