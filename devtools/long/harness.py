"""What the long tests drive for real: Odoo servers (prefork, ``--workers``)
and Odoo processes running the job runner on one database, the PostgreSQL
cluster (restarted), the Modoboa (stopped and started), and direct SQL to
check what happened. ``./dev test --long`` describes them in FAYVAD_LONG_*
environment variables."""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg2
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from devtools import serve  # noqa: E402
from devtools.modoboa import Modoboa  # noqa: E402

ENV = os.environ


def setting(name):
    value = ENV.get(f"FAYVAD_LONG_{name}")
    if not value:
        raise RuntimeError(f"FAYVAD_LONG_{name} is not set: run these tests with ./dev test --long")
    return value


PYTHON = ENV.get("FAYVAD_LONG_PYTHON") or sys.executable
WORK = Path(ENV.get("FAYVAD_LONG_WORK", "/tmp"))
LOGS = WORK / "long-logs"


class Database:
    """psycopg2 connections to the long tests' database (autocommit)."""

    def __init__(self):
        self.info = json.loads(setting("PG"))
        self.name = setting("DB")

    def connect(self):
        conn = psycopg2.connect(
            host=self.info["socket_dir"], port=self.info["port"], user=self.info["user"], dbname=self.name
        )
        conn.autocommit = True
        return conn

    def query(self, sql, params=None):
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def value(self, sql, params=None):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def pg_ctl(self, action):
        """``restart`` or ``stop`` / ``start`` the PostgreSQL cluster itself."""
        info = self.info
        cmd = [str(Path(info["bindir"]) / "pg_ctl"), "-D", info["data"], "-w", "-t", "60"]
        if action == "stop":
            cmd += ["-m", "fast", "stop"]
        else:
            opts = (
                f"-c listen_addresses='' -k {info['socket_dir']} -p {info['port']} "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            )
            cmd += ["-o", opts, "-l", info["log"], "-m", "fast", action]
        if info.get("os_user"):
            cmd = ["runuser", "-u", info["os_user"], "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90)


class OdooServer(serve.OdooServer):
    """``odoo`` serving the long tests' database with ``--workers``."""

    def __init__(self, name, workers=2, extra=()):
        super().__init__(PYTHON, setting("ODOO_CONF"), setting("DB"), LOGS, name, workers, extra)


def odoo_script(code, name="script"):
    """Run Python ``code`` (``registry`` and ``environment(cr)`` at hand) on
    the long tests' database in a new Odoo process; what it printed last,
    as JSON (``print(json.dumps(...))``)."""
    return serve.odoo_script(PYTHON, setting("ODOO_CONF"), setting("DB"), LOGS, code, name, WORK, 600)


def start_odoo_script(code, name):
    """The same, in the background: the Popen (its output is JSON lines)."""
    return serve.start_odoo_script(PYTHON, setting("ODOO_CONF"), setting("DB"), LOGS, code, name, WORK)


def modoboa():
    info = json.loads(setting("MODOBOA"))
    return Modoboa(
        info["cache_dir"],
        info["instance_dir"],
        info["port"],
        info["redis_port"],
        log=lambda *_: None,
        pg=json.loads(setting("PG")),
    )


class ModoboaApi:
    def __init__(self):
        self.url = ENV["FAYVAD_TEST_MODOBOA_URL"]
        self.token = ENV["FAYVAD_TEST_MODOBOA_TOKEN"]

    def get(self, path, **params):
        response = requests.get(
            f"{self.url}/api/v2{path}",
            params=params,
            headers={"Authorization": f"Token {self.token}"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def accounts_of(self, domain_name):
        domains = [
            d for d in self.get("/domains/", search=domain_name)["results"] if d["name"] == domain_name
        ]
        if not domains:
            return []
        found, page = [], 1
        while True:
            data = self.get("/accounts/", domain=domains[0]["pk"], page_size=100, page=page)
            found += data["results"]
            if not data.get("next"):
                return found
            page += 1

    def requests_in_log(self, method, path, status):
        """How many ``method path`` requests the Modoboa server answered with ``status``."""
        log = modoboa().server_log
        needle = f'"{method} {path} HTTP/1.1" {status}'
        return sum(line.count(needle) for line in log.read_text(errors="replace").splitlines())


def kill_group(proc, sig=signal.SIGKILL):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(30)
