"""Running Odoo from the cached environment: config file, database
install/upgrade, the server, and one-off shell snippets."""

import hashlib
import json
import secrets
import subprocess
from pathlib import Path

from .common import ADDON, DevError, run, vault_key

DEMO_PAYMENT_MODULE = "payment_demo"
ADDON_NAME = ADDON.name


def addon_hash():
    """Hash of the addon's files: an upgrade is needed when it changes."""
    digest = hashlib.sha256()
    for path in sorted(ADDON.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(ADDON)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


ODOO_PID_FILE = "odoo.pid"  # the served Odoo's pid, next to its config
LAUNCHER = """\
# written by ./dev: starts Odoo as its odoo-bin does
__import__("os").environ["TZ"] = "UTC"
import odoo

odoo.cli.main()
"""


def launcher_in(directory):
    """``directory``/odoo-bin, written if missing: Odoo started like its own
    ``odoo-bin`` (the prefork server starts its websocket process with
    ``sys.argv[0]``, which ``python -m odoo`` leaves unusable)."""
    launcher = Path(directory) / "odoo-bin"
    if not launcher.exists():
        Path(directory).mkdir(parents=True, exist_ok=True)
        launcher.write_text(LAUNCHER)
    return launcher


class Odoo:
    def __init__(self, env, cluster, workdir, http_port, db, logfile=None, extra=None):
        self.env = env
        self.cluster = cluster
        self.workdir = Path(workdir)
        self.http_port = http_port
        self.db = db
        self.logfile = Path(logfile) if logfile else None
        self.extra = extra or {}
        self.config = self.workdir / "odoo.conf"

    def write_config(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        options = {
            "addons_path": ",".join(str(p) for p in self.env.addons_paths),
            "data_dir": str(self.workdir / "data"),
            # one database, no dbfilter: Odoo then never lists the databases for a request
            # without a session (every API call), which costs a connection and a query
            "db_name": self.db,
            "list_db": "False",
            "http_interface": "127.0.0.1",
            "http_port": str(self.http_port),
            "admin_passwd": secrets.token_urlsafe(24),
            "without_demo": "False",
            "max_cron_threads": "1",
            # the key of the addon's secrets at rest: from the configuration, never the database
            "fayvad_mail_vault_key": vault_key(self.env.cache),
            **self.cluster.odoo_options(),
            **self.extra,
        }
        if self.logfile:
            options["logfile"] = str(self.logfile)
        lines = ["[options]"] + [f"{key} = {value}" for key, value in options.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o600)
        return self

    def command(self, *args, subcommand=None):
        """Odoo's command line, through a launcher script (``launcher_in``)."""
        sub = [subcommand] if subcommand else []
        return [str(self.env.python), str(launcher_in(self.workdir)), *sub, "-c", str(self.config), *args]

    def install(self, log, demo=True):
        """Create the database with the addon; drop it again if that fails."""
        # with the demo data, Odoo's demo payment provider too: the portal's Pay works
        modules = f"{ADDON_NAME},{DEMO_PAYMENT_MODULE}" if demo else ADDON_NAME
        args = ["-d", self.db, "-i", modules, "--stop-after-init", "--log-level=warn"]
        if not demo:
            args.append("--without-demo=all")
        try:
            run(self.command(*args), log=log, what=f"installing {ADDON_NAME} in database {self.db}")
        except BaseException:
            self.cluster.drop_database(self.db)
            raise

    def upgrade(self, log):
        run(
            self.command("-d", self.db, "-u", ADDON_NAME, "--stop-after-init", "--log-level=warn"),
            log=log,
            what=f"upgrading {ADDON_NAME} in database {self.db}",
        )

    def ensure_database(self, log, marker):
        """Install or upgrade ``db`` so it runs the checkout's addon."""
        state = {"addon": addon_hash()}
        marker = Path(marker)
        if not self.cluster.database_exists(self.db):
            self.install(log)
            marker.write_text(json.dumps(state))
            return "installed"
        try:
            known = json.loads(marker.read_text())
        except (OSError, ValueError):
            known = None
        if known != state:
            self.upgrade(log)
            marker.write_text(json.dumps(state))
            return "upgraded"
        return "current"

    def shell(self, code, what):
        """Run Python ``code`` in ``odoo shell`` on the database, commit, and
        return what it printed. Errors raised as DevError (one line)."""
        script = (
            "import sys\n"
            "try:\n"
            + "".join(f"    {line}\n" for line in code.strip().splitlines())
            + "    env.cr.commit()\n"
            "except Exception as exc:\n"
            "    env.cr.rollback()\n"
            "    print('ERROR: %s' % (getattr(exc, 'args', [exc])[0] if getattr(exc, 'args', None) else exc))\n"
        )
        proc = subprocess.run(
            self.command("-d", self.db, "--no-http", "--log-level=critical", subcommand="shell"),
            input=script,
            text=True,
            capture_output=True,
            check=False,
        )
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        errors = [line[7:] for line in lines if line.startswith("ERROR: ")]
        if proc.returncode or errors:
            detail = errors[-1] if errors else (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise DevError(f"{what}: {detail}")
        return lines

    @property
    def pid_file(self):
        return self.workdir / ODOO_PID_FILE

    def serve(self, *args):
        """Start the server in its own session; its pid is kept in
        ``pid_file`` so that a later run can stop it if this one is killed."""
        proc = subprocess.Popen(self.command(*args), start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc
