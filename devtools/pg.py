"""A private PostgreSQL cluster: OS server binaries, data in the cache,
unix socket only (no TCP), no system service touched.

PostgreSQL refuses to run as root, so as root the server runs as an
unprivileged OS user (``postgres`` when the Debian package created it, else
a ``fayvad-pg`` system user this tool creates) that is given access to the
cluster's directories only.
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from .common import DevError, apt_install, grant_traverse, rmtree, run, say

SUPERUSER = "odoo"


def _bindir():
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if candidates:
        return candidates[0].parent
    found = shutil.which("postgres")
    return Path(found).parent if found else None


def server_bindir():
    bindir = _bindir()
    if bindir is None:
        apt_install(["postgresql"], "the PostgreSQL server binaries are missing")
        bindir = _bindir()
        if bindir is None:
            raise DevError("PostgreSQL server binaries not found after installing them")
    return bindir


def _server_user():
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "fayvad-pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "fayvad-pg"],
        what="creating the fayvad-pg system user",
    )
    return "fayvad-pg"


class Cluster:
    def __init__(self, root, port, log):
        self.root = Path(root)
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.port = port
        self.log = Path(log)
        self.bindir = None
        self.user = None
        self.started = False

    @property
    def socket_path(self):
        return self.socket_dir / f".s.PGSQL.{self.port}"

    def _own_postmaster_alive(self):
        pidfile = self.data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return False
        return True

    def check_port(self):
        """Raise if the socket is served by something that is not this
        cluster (a cluster of ours left running by a crash is fine)."""
        if not self.socket_path.exists() or self._own_postmaster_alive():
            return
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.socket_path))
            except OSError:
                return  # stale socket file
        raise DevError(
            f"PostgreSQL port {self.port} is busy (socket {self.socket_path}): stop that server or set FAYVAD_PG_PORT"
        )

    def _as_server(self, cmd, what):
        return run(cmd, user=self.user, log=self.log, what=what)

    def ensure(self):
        self.bindir = server_bindir()
        self.user = _server_user()
        self.check_port()
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if self.user:
            grant_traverse(self.root, self.user)
            for path in (self.root, self.socket_dir):
                shutil.chown(path, self.user)
            shutil.chown(self.log, self.user)
            grant_traverse(self.log, self.user)
        if not (self.data / "PG_VERSION").exists():
            rmtree(self.data)
            say(f"creating a PostgreSQL cluster in {self.data}")
            try:
                self._as_server(
                    [
                        self.bindir / "initdb",
                        "-D",
                        self.data,
                        "-U",
                        SUPERUSER,
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                        "--no-sync",
                    ],
                    "initdb",
                )
            except BaseException:
                rmtree(self.data)
                raise
        return self

    def start(self):
        if self._own_postmaster_alive():
            self.stop()  # left running by an interrupted earlier run
        opts = (
            f"-c listen_addresses='' -k {self.socket_dir} -p {self.port} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self._as_server(
            [self.bindir / "pg_ctl", "-D", self.data, "-o", opts, "-l", self.log, "-w", "-t", "60", "start"],
            "starting PostgreSQL",
        )
        self.started = True
        return self

    def stop(self):
        if not self._own_postmaster_alive():
            return
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        self.started = False

    # -- client ---------------------------------------------------------------
    def psql(self, sql, db="postgres"):
        out = run(
            [
                self.bindir / "psql",
                "-h",
                self.socket_dir,
                "-p",
                self.port,
                "-U",
                SUPERUSER,
                "-d",
                db,
                "-XAtqc",
                sql,
            ],
            what="psql",
        )
        return out.strip()

    def database_exists(self, name):
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"

    def drop_database(self, name):
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def describe(self):
        """What the long tests need to connect to, and restart, this cluster."""
        return {
            "bindir": str(self.bindir),
            "data": str(self.data),
            "socket_dir": str(self.socket_dir),
            "port": self.port,
            "user": SUPERUSER,
            "os_user": self.user,
            "log": str(self.log),
        }

    def copy_database(self, source, target):
        """``target`` as a copy of ``source`` (which nobody may be using)."""
        self.drop_database(target)
        self.psql(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')

    def odoo_options(self):
        return {
            "db_host": str(self.socket_dir),
            "db_port": str(self.port),
            "db_user": SUPERUSER,
            "db_password": "False",
        }
