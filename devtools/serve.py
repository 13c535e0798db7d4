"""Odoo processes for the long tests and the scale benchmark: a server
with ``--workers`` on one database, and one-off Python snippets run with an
Odoo environment in a process of their own (standard library only)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO, free_port, stop_process, wait_http
from .odoo import launcher_in

PRELUDE = """
import json, os, sys, time
os.unlink(sys.argv[0])  # read already: nothing is left behind if this process is killed
sys.path.insert(0, REPO)  # devtools/odoo_hooks.py
import odoo
from odoo.tools import config
config.parse_config(["-c", sys.argv[1], "-d", sys.argv[2], "--logfile", sys.argv[3], "--log-level=info"])
odoo.service.server.load_server_wide_modules()
registry = odoo.modules.registry.Registry(sys.argv[2])
def environment(cr):
    return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True, "mail_create_nolog": True})
"""


class OdooServer:
    """``odoo`` serving ``db`` with ``--workers`` (prefork, as in production)."""

    def __init__(self, python, conf, db, logs, name, workers=2, extra=()):
        self.python, self.conf, self.db = str(python), str(conf), db
        self.name = name
        self.workers = workers
        self.extra = list(extra)
        self.port = free_port()
        self.gevent_port = free_port()  # two servers may run side by side
        self.log = Path(logs) / f"odoo-{name}.log"
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.python,
            str(launcher_in(self.log.parent)),
            "-c",
            self.conf,
            "-d",
            self.db,
            f"--http-port={self.port}",
            f"--gevent-port={self.gevent_port}",
            f"--workers={self.workers}",
            "--max-cron-threads=0",
            "--limit-time-real=600",
            "--limit-time-cpu=600",
            "--limit-memory-soft=2147483648",
            "--limit-memory-hard=4294967296",
            f"--logfile={self.log}",
            "--log-level=info",
            *self.extra,
        ]
        self.proc = subprocess.Popen(
            cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        if not wait_http(f"{self.url}/web/health", 120, proc=self.proc):
            self.stop()
            raise RuntimeError(f"Odoo {self.name} did not start; see {self.log}")
        return self

    def worker_pids(self):
        """The processes serving requests (the server's children)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def stop(self):
        stop_process(self.proc, timeout=30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _script_command(python, conf, db, logs, name, code, workdir):
    Path(logs).mkdir(parents=True, exist_ok=True)
    script = Path(workdir) / f"odoo-{name}-{os.getpid()}-{time.monotonic_ns()}.py"
    script.write_text(f"REPO = {str(REPO)!r}\n" + PRELUDE + code)
    return script, [str(python), str(script), str(conf), db, str(Path(logs) / f"odoo-{name}.log")]


def odoo_script(python, conf, db, logs, code, name="script", workdir=None, timeout=3600):
    """Run ``code`` (with ``registry`` and ``environment(cr)`` at hand) in a
    new Odoo process on ``db``; what it printed last, as JSON."""
    script, cmd = _script_command(python, conf, db, logs, name, code, workdir or logs)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        script.unlink(missing_ok=True)
    if proc.returncode:
        raise RuntimeError(f"odoo script {name} failed: {proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def start_odoo_script(python, conf, db, logs, code, name, workdir=None):
    """The same in the background: the Popen (its output: JSON lines)."""
    _script, cmd = _script_command(python, conf, db, logs, name, code, workdir or logs)
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def peak_rss_mb(pid):
    """The largest resident set a process has had (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit("devtools.serve is a library")
