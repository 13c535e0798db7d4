"""A private, local Modoboa 2.12 mail-server instance for development and tests.

Standard library and PostgreSQL's client programs only (Python 3.11). Nothing
of Modoboa lives in this repository: ``ensure_installed`` builds a virtualenv
from PyPI and a migrated template instance in a cache directory, ``prepare``
copies the template into an instance directory and its database into a
PostgreSQL cluster (devtools.pg), ``start`` runs Redis and Django's server for
it on 127.0.0.1 only.

    mb = Modoboa(cache_dir, instance_dir, port=18080, redis_port=16380, pg=cluster.describe())
    mb.ensure_installed()      # minutes the first time, then < 0.2 s
    mb.prepare(fresh=True)     # copy of the template and its database: ~0.5 s
    mb.start()                 # ~1.5 s until the REST API answers
    ... use mb.url, mb.token (header "Authorization: Token <token>") ...
    mb.stop()

Modoboa's database is PostgreSQL, as in production: database ``modoboa`` of
the cluster ``pg`` describes (reached by its unix socket), which Postfix,
Dovecot and the policy daemon read too (devtools.mailstack).

Layout of the cache (cache_dir)::

    modoboa-venv/          virtualenv with modoboa==2.12.0 (its dependencies pinned)
    modoboa-template/      deployed + migrated instance, superuser "admin"
                           (password "password") with an API token;
                           modoboa.dump: its database (pg_dump)
    modoboa-install.log    output of the last install steps
    modoboa.lock           serialises concurrent installs

Layout of an instance (instance_dir)::

    instance/              the Django project (manage.py, instance/settings.py)
    database.json          where its database is (read by settings.py)
    token                  the admin's API token
    dkim/                  DKIM private keys (parameter admin.dkim_keys_storage_dir)
    redis/                 Redis working directory (no persistence)
    logs/server.log, logs/redis.log
    run.json               pids and ports of the running processes
    sent-mail/             mail Django would have sent (file backend)
"""

from __future__ import annotations

import contextlib
import ctypes.util
import fcntl
import hashlib
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.parse
import urllib.request

from .pg import Cluster, server_bindir

__all__ = ["MODOBOA_VERSION", "Database", "Modoboa", "ModoboaError"]

MODOBOA_VERSION = "2.12.0"

# The password policy the instance enforces (keywords of fayvad_mail's
# PasswordPolicy): the API document's, at least 8 characters, nothing more.
DEFAULT_PASSWORD_POLICY = {"min_length": 8, "upper": 0, "lower": 0, "digits": 0, "specials": 0}

# Bump when the recipe changes in a way the hashed texts below do not show.
RECIPE_REVISION = "2"
DATABASE = "modoboa"  # the instance's database in its PostgreSQL cluster

PROJECT = "instance"  # name of the Django project created by `deploy`
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "password"  # set by Modoboa's load_initial_data
HOST = "127.0.0.1"

# The versions that `pip install modoboa==2.12.0` resolved to on CPython 3.11 when
# this recipe was written and tested: pinned so that a later release of a
# dependency cannot change (or break) a rebuilt environment.
PINNED_REQUIREMENTS = [
    "aiosmtplib==5.1.3",
    "asgiref==3.13.0",
    "attrs==26.1.0",
    "bcrypt==5.0.0",
    "caldav==3.6.0",
    "calendaring-config==0.5.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "croniter==7.0.0",
    "cryptography==50.0.2",
    "defusedxml==0.7.1",
    "dj-database-url==3.1.2",
    "Django==5.2.18",
    "django-cors-headers==4.9.0",
    "django-environ==0.14.0",
    "django-filter==26.2",
    "django-oauth-toolkit==3.4.1",
    "django-otp==1.7.5",
    "django-phonenumber-field==8.5.0",
    "django-rename-app==0.1.7",
    "django-reversion==6.4.0",
    "django-rq==4.2.0",
    "django-xforwardedfor-middleware==2.0",
    "djangorestframework==3.18.3",
    "dnspython==2.8.0",
    "drf-nested-routers==0.95.3",
    "drf-spectacular==0.30.0",
    "feedparser==6.0.14",
    "feedparser-sgmllib==2.1.0",
    "fido2==2.2.1",
    "filelock==4.3.1",
    "h11==0.16.0",
    "html2text==2025.4.15",
    "icalendar==7.3.2",
    "icalendar-searcher==1.3.0",
    "idna==3.20",
    "inflection==0.5.1",
    "jh2==5.0.15",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "jwcrypto==1.6.1",
    "libpass==1.9.4",
    "lxml==6.1.3",
    "lxml_html_clean==0.4.6",
    "modoboa==2.12.0",
    "niquests==3.21.2",
    "oath==1.4.5",
    "oauthlib==4.0.1",
    "ovh==1.2.0",
    "packaging==26.4",
    "phonenumbers==9.0.43",
    "pillow==13.0.0",
    "progressbar33==2.4",
    "psycopg==3.3.9",
    "psycopg-binary==3.3.9",
    "pycparser==3.12",
    "python-dateutil==2.9.0.post0",
    "python-magic==0.4.27",
    "pytz==2026.6",
    "PyYAML==6.0.4",
    "qh3==2.1.0",
    "qrcode==8.2",
    "recurring-ical-events==3.8.2",
    "redis==8.1.0",
    "referencing==0.37.0",
    "reportlab==5.1.0",
    "requests==2.34.2",
    "requests-file==3.0.1",
    "requests-oauthlib==2.0.0",
    "rpds-py==2026.9.1",
    "rq==3.0.0",
    "rrdtool-bindings==0.5.0",
    "sievelib==1.6.0",
    "six==1.17.0",
    "sqlparse==0.6.1",
    "tldextract==5.4.0",
    "typing_extensions==4.16.0",
    "tzdata==2026.6",
    "uritemplate==4.2.0",
    "urllib3==2.8.0",
    "urllib3-future==2.25.904",
    "vobject==0.9.9",
    "wassima==2.1.5",
    "x-wr-timezone==2.0.1",
]

# Appended to the settings.py that `modoboa-admin.py deploy` writes.
SETTINGS_APPEND = r"""

# ---------------------------------------------------------------------------
# fayvad_mail devtools: private instance for development and tests.
# Everything stays on 127.0.0.1; the instance directory can be copied/moved.
# ---------------------------------------------------------------------------
import os as _fm_os

_FM_INSTANCE_DIR = _fm_os.path.dirname(BASE_DIR)

import json as _fm_json

# The database: where devtools put this instance's (database.json: PostgreSQL,
# NAME, USER, HOST = the cluster's socket directory, PORT), whatever directory
# the instance was copied to.
with open(_fm_os.path.join(_FM_INSTANCE_DIR, "database.json")) as _fm_fh:
    DATABASES["default"].update(_fm_json.load(_fm_fh))

# Host headers: "127.0.0.1:<port>" is accepted through "127.0.0.1" (Django drops
# the port before comparing).
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# Redis of this instance (its port is chosen when the instance starts).
REDIS_URL = _fm_os.environ.get("FAYVAD_MODOBOA_REDIS_URL", REDIS_URL)
for _fm_queue in RQ_QUEUES.values():
    _fm_queue["URL"] = REDIS_URL
    # Run background jobs (DKIM key generation, ...) inside the request.
    _fm_queue["ASYNC"] = False
CACHES["default"]["LOCATION"] = REDIS_URL

# Test suites send many requests per second: never answer 429.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    _fm_scope: "1000000/second" for _fm_scope in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
}

# Mailbox passwords: exactly the policy of the fayvad_mail server record that
# points here (password-policy.json, written by devtools; by default the API
# document's: at least 8 characters, nothing more). Modoboa's stock list also
# refuses common or all-digit passwords, passwords like the user name, and
# demands upper case, lower case and digits.
try:
    with open(_fm_os.path.join(_FM_INSTANCE_DIR, "password-policy.json")) as _fm_fh:
        _FM_POLICY = _fm_json.load(_fm_fh)
except FileNotFoundError:
    _FM_POLICY = {}
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": int(_FM_POLICY.get("min_length", 8))},
    },
    {
        "NAME": "modoboa.core.password_validation.ComplexityValidator",
        "OPTIONS": {_fm_rule: int(_FM_POLICY.get(_fm_rule, 0)) for _fm_rule in ("upper", "lower", "digits", "specials")},
    },
]

# No calls to api.modoboa.org from the dashboard.
DISABLE_DASHBOARD_EXTERNAL_QUERIES = True
PID_FILE_STORAGE_PATH = _fm_os.path.join(_FM_INSTANCE_DIR, "run")

# Mail that Django would send is written to files instead.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = _fm_os.path.join(_FM_INSTANCE_DIR, "sent-mail")

# No syslog here (/dev/log may not exist): log to stderr (logs/server.log),
# including the tracebacks of 500 errors, which Django would only mail.
for _fm_name in ("syslog-auth", "syslog-mail", "syslog"):
    LOGGING["handlers"][_fm_name] = {
        "class": "logging.StreamHandler",
        "formatter": "syslog",
    }
LOGGING["handlers"]["console"] = {"class": "logging.StreamHandler"}
LOGGING["loggers"]["django"]["handlers"] = ["console"]
LOGGING["loggers"]["django.server"] = {  # one line per request
    "handlers": ["console"], "level": "INFO", "propagate": False,
}
"""

# Appended to the project's urls.py: answer errors that happen outside DRF's
# views as JSON too (DRF views already do; Modoboa's own exceptions under /api/
# become {"error": "..."} through its CommonExceptionCatcher middleware).
URLS_APPEND = r"""

# fayvad_mail devtools: JSON instead of HTML error pages (DEBUG stays off).
from django.http import JsonResponse as _FmJsonResponse


def _fm_json_error(status, detail):
    def view(request, exception=None):
        return _FmJsonResponse({"detail": detail}, status=status)

    return view


handler400 = _fm_json_error(400, "Bad request.")
handler403 = _fm_json_error(403, "Permission denied.")
handler404 = _fm_json_error(404, "Not found.")


def handler500(request):
    return _FmJsonResponse({"detail": "Server error."}, status=500)
"""

# Global parameters written into the database (LocalConfig._parameters).
# admin.dkim_keys_storage_dir is set per instance by prepare().
TEMPLATE_PARAMETERS = {
    "core": {"enable_api_communication": False, "check_new_versions": False, "send_statistics": False},
}

VENV_MARKER = ".fayvad-recipe"
TEMPLATE_MARKER = ".fayvad-recipe"
INSTANCE_MARKER = ".fayvad-recipe"


class ModoboaError(Exception):
    """Something went wrong; str() is a one-line human message."""


def _hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _base_python() -> str:
    """The interpreter the virtualenv is made from (not a venv's own python)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _venv_recipe() -> str:
    return _hash(
        RECIPE_REVISION, MODOBOA_VERSION, " ".join(PINNED_REQUIREMENTS), "%d.%d" % sys.version_info[:2]
    )


def _template_recipe() -> str:
    return _hash(
        _venv_recipe(),
        SETTINGS_APPEND,
        URLS_APPEND,
        json.dumps(TEMPLATE_PARAMETERS, sort_keys=True),
        PROJECT,
        ADMIN_USERNAME,
        str(server_bindir()),  # its database dump is restored by this PostgreSQL's pg_restore
    )


def _read_text(path: pathlib.Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _tail(path: pathlib.Path, lines: int = 8) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read().decode(errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in data.splitlines() if line.strip()][-lines:]


def _port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (bind test, like the servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """Environment for the child processes: nothing from the caller's Python/Django."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONSTARTUP",
            "VIRTUAL_ENV",
            "DJANGO_SETTINGS_MODULE",
            "PYTHONSAFEPATH",
        )
    }
    env.setdefault("LANG", "C.UTF-8")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _pid_cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


class Database:
    """An instance's database: ``name`` in the PostgreSQL cluster that ``pg``
    describes (devtools.pg.Cluster.describe(): bindir, socket_dir, port,
    user), reached by its unix socket with PostgreSQL's own client programs."""

    def __init__(self, pg: dict, name: str = DATABASE):
        self.pg = dict(pg)
        self.name = name

    def _program(self, name: str, *args: str, stdin: str | None = None, what: str) -> str:
        command = [
            str(pathlib.Path(self.pg["bindir"]) / name),
            "-h",
            str(self.pg["socket_dir"]),
            "-p",
            str(self.pg["port"]),
            "-U",
            self.pg["user"],
            *args,
        ]
        proc = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False, timeout=300)
        if proc.returncode:
            raise ModoboaError(f"{what} ({self.name}): {(proc.stderr or proc.stdout).strip()[-500:]}")
        return proc.stdout.strip()

    def psql(self, sql: str, db: str | None = None, **variables) -> str:
        """Run ``sql`` (``:'name'`` quotes a variable given as a keyword); its rows, one a line."""
        args = ["-d", db or self.name, "-XAtq", "-v", "ON_ERROR_STOP=1"]
        for key, value in variables.items():
            args += ["-v", f"{key}={value}"]
        return self._program("psql", *args, stdin=sql, what="psql")

    def exists(self) -> bool:
        return (
            self.psql("SELECT 1 FROM pg_database WHERE datname = :'name'", db="postgres", name=self.name)
            == "1"
        )

    def create(self, dump: pathlib.Path | None = None) -> None:
        """A new, empty database (an old one is dropped), or a copy of ``dump``."""
        self.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', db="postgres")
        self.psql(f'CREATE DATABASE "{self.name}"', db="postgres")
        if dump is not None:
            self._program(
                "pg_restore", "--no-owner", "--no-privileges", "-d", self.name, str(dump), what="pg_restore"
            )

    def dump(self, path: pathlib.Path) -> None:
        self._program("pg_dump", "-Fc", "--no-owner", "-f", str(path), self.name, what="pg_dump")

    def django(self) -> dict:
        """Django's DATABASES entry (database.json of the instance)."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.name,
            "USER": self.pg["user"],
            "PASSWORD": "",
            "HOST": str(self.pg["socket_dir"]),
            "PORT": str(self.pg["port"]),
            "OPTIONS": {},
        }

    def url(self) -> str:
        """postgresql://user@<socket directory>:port/name: ``deploy --dburl``,
        and Postfix's ``hosts`` (whose ``unix:`` form knows no port)."""
        socket_dir = urllib.parse.quote(str(self.pg["socket_dir"]), safe="")
        return f"postgresql://{self.pg['user']}@{socket_dir}:{self.pg['port']}/{self.name}"

    def dsn(self) -> str:
        """libpq's connection string (Dovecot's ``connect``, psycopg2's dsn)."""
        return (
            f"host={self.pg['socket_dir']} port={self.pg['port']} dbname={self.name} user={self.pg['user']}"
        )

    def set_parameters(self, values: dict[str, dict]) -> None:
        """Merge global parameters into Modoboa's LocalConfig row (read per request)."""
        found = self.psql("SELECT id || ' ' || _parameters::text FROM core_localconfig ORDER BY id LIMIT 1")
        if not found:
            raise ModoboaError(f"{self.name}: no core_localconfig row (was the instance deployed?)")
        row_id, text = found.split(" ", 1)
        params = json.loads(text or "{}")
        for app, app_values in values.items():
            params.setdefault(app, {}).update(app_values)
        self.psql(
            "UPDATE core_localconfig SET _parameters = :'params' WHERE id = :'id'",
            params=json.dumps(params),
            id=row_id,
        )

    def read_token(self) -> str:
        token = self.psql(
            "SELECT t.key FROM authtoken_token t JOIN core_user u ON u.id = t.user_id WHERE u.username = :'name'",
            name=ADMIN_USERNAME,
        )
        if not token:
            raise ModoboaError(f"no API token for {ADMIN_USERNAME!r} in {self.name}")
        return token


class Modoboa:
    """One private Modoboa instance on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        cache_dir: pathlib.Path,
        instance_dir: pathlib.Path,
        port: int,
        redis_port: int,
        log=print,
        pg: dict | None = None,
    ):
        """``pg``: the PostgreSQL cluster of its database (Cluster.describe());
        without it, the instance can only be stopped."""
        self.cache_dir = pathlib.Path(cache_dir).expanduser().absolute()
        self.instance_dir = pathlib.Path(instance_dir).expanduser().absolute()
        self.port = int(port)
        self.redis_port = int(redis_port)
        if self.port == self.redis_port:
            raise ModoboaError(f"port and redis_port must differ (both {self.port})")
        self.log = log or (lambda *_: None)
        self.password_policy = dict(DEFAULT_PASSWORD_POLICY)
        self.venv_dir = self.cache_dir / "modoboa-venv"
        self.template_dir = self.cache_dir / "modoboa-template"
        self.install_log = self.cache_dir / "modoboa-install.log"
        self._children: dict[int, subprocess.Popen] = {}
        self._database = Database(pg) if pg else None

    # ------------------------------------------------------------------ paths
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def database(self) -> Database:
        if self._database is None:
            raise ModoboaError("this Modoboa was given no PostgreSQL cluster (pg=...)")
        return self._database

    @property
    def token(self) -> str:
        token = _read_text(self.instance_dir / "token")
        if not token:
            token = self.database.read_token()
        return token

    @property
    def python(self) -> pathlib.Path:
        return self.venv_dir / "bin" / "python"

    @property
    def server_log(self) -> pathlib.Path:
        return self.instance_dir / "logs" / "server.log"

    @property
    def redis_log(self) -> pathlib.Path:
        return self.instance_dir / "logs" / "redis.log"

    @property
    def _run_file(self) -> pathlib.Path:
        return self.instance_dir / "run.json"

    @property
    def _project_dir(self) -> pathlib.Path:
        return self.instance_dir / PROJECT

    # ---------------------------------------------------------------- install
    def is_installed(self) -> bool:
        """Venv and template present and built by the current recipe (cheap)."""
        return (
            _read_text(self.venv_dir / VENV_MARKER) == _venv_recipe()
            and os.path.exists(self.python)  # also false when its base python is gone
            and _read_text(self.template_dir / TEMPLATE_MARKER) == _template_recipe()
        )

    def ensure_installed(self) -> None:
        """Install what is missing: apt packages, the venv, the template. Idempotent."""
        if self.is_installed() and shutil.which("redis-server") and shutil.which("openssl"):
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._install_lock():
            if self.install_log.exists() and self.install_log.stat().st_size > 1 << 20:
                self.install_log.unlink()
            venv_ok = _read_text(self.venv_dir / VENV_MARKER) == _venv_recipe() and os.path.exists(
                self.python
            )
            self._ensure_system_packages(building_venv=not venv_ok)
            if not venv_ok:
                self._build_venv()
            if _read_text(self.template_dir / TEMPLATE_MARKER) != _template_recipe():
                self._build_template()

    @contextlib.contextmanager
    def _install_lock(self):
        with open(self.cache_dir / "modoboa.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.log("modoboa: another process is installing Modoboa, waiting for it ...")
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _ensure_system_packages(self, building_venv: bool) -> None:
        missing = []
        if not shutil.which("redis-server"):
            missing.append("redis-server")
        if not shutil.which("openssl"):
            missing.append("openssl")
        if building_venv:
            if not os.path.exists("/usr/include/rrd.h"):
                missing.append("librrd-dev")  # rrdtool-bindings is built from source
            if not shutil.which("gcc"):
                missing.append("gcc")
            if ctypes.util.find_library("magic") is None:
                missing.append("libmagic1")  # python-magic
            include = sysconfig.get_paths()["include"]
            if not os.path.exists(os.path.join(include, "Python.h")):
                if include.startswith("/usr/include/"):
                    missing.append("python%d.%d-dev" % sys.version_info[:2])
                else:
                    raise ModoboaError(
                        f"Python headers missing ({include}/Python.h): "
                        f"rrdtool-bindings cannot be built for {_base_python()}"
                    )
        if not missing:
            return
        command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise ModoboaError(f"missing system packages for Modoboa; run as root: {' '.join(command)}")
        self.log(f"modoboa: apt-get install {' '.join(missing)} ...")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if self._run_logged(command, "apt-get install", env=env, check=False) != 0:
            self._run_logged(["apt-get", "update"], "apt-get update", env=env, check=False)
            self._run_logged(command, "apt-get install", env=env)

    def _run_logged(self, command: list[str], what: str, *, cwd=None, env=None, check: bool = True) -> int:
        """Run a command, its output appended to modoboa-install.log."""
        with open(self.install_log, "a") as fh:
            fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}: {' '.join(map(str, command))}\n")
            fh.flush()
            proc = subprocess.run(
                command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
            )
        if check and proc.returncode != 0:
            tail = " | ".join(_tail(self.install_log, 3))
            raise ModoboaError(f"{what} failed (exit {proc.returncode}), see {self.install_log}: {tail}")
        return proc.returncode

    def _build_venv(self) -> None:
        started = time.monotonic()
        self.log(f"modoboa: creating {self.venv_dir} with modoboa=={MODOBOA_VERSION} (about a minute) ...")
        partial = self.cache_dir / "modoboa-venv.partial"
        shutil.rmtree(partial, ignore_errors=True)
        env = _clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        self._run_logged([_base_python(), "-m", "venv", str(partial)], "python -m venv", env=env)
        constraints = partial / "constraints.txt"
        constraints.write_text("\n".join(PINNED_REQUIREMENTS) + "\n")
        # --no-compile: byte-code is compiled after the move, so that tracebacks
        # show the final paths.
        self._run_logged(
            [
                str(partial / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--no-compile",
                "-c",
                str(constraints),
                f"modoboa=={MODOBOA_VERSION}",
                "psycopg[binary]",  # its PostgreSQL driver (pinned above)
            ],
            "pip install modoboa",
            env=env,
        )
        # Scripts carry the build path in their shebang/activate lines: point them
        # at the final path (the venv itself is relocatable).
        for script in (partial / "bin").iterdir():
            if script.is_symlink() or not script.is_file():
                continue
            try:
                text = script.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if str(partial) in text:
                script.write_text(text.replace(str(partial), str(self.venv_dir)))
        (partial / VENV_MARKER).write_text(_venv_recipe() + "\n")
        self._replace_dir(partial, self.venv_dir)
        self._run_logged(
            [
                str(self.python),
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                str(next((self.venv_dir / "lib").glob("python*/site-packages"))),
            ],
            "compileall",
            env=env,
            check=False,
        )
        self.log(f"modoboa: virtualenv ready in {time.monotonic() - started:.0f} s")

    def _replace_dir(self, new: pathlib.Path, final: pathlib.Path) -> None:
        """Atomically put `new` at `final` (an old `final` is removed afterwards)."""
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        new.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def _build_template(self) -> None:
        """Deploy and migrate an instance on a PostgreSQL cluster of its own,
        keep its project and a dump of its database."""
        started = time.monotonic()
        self.log(f"modoboa: deploying the template instance {self.template_dir} ...")
        partial = self.cache_dir / "modoboa-template.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        env = _clean_env()
        rport = _free_port()
        build_pg = self.cache_dir / "modoboa-template-pg"  # removed once the database is dumped
        shutil.rmtree(build_pg, ignore_errors=True)
        cluster = Cluster(build_pg, _free_port(), build_pg / "postgres.log")
        redis = self._spawn_redis(partial, rport, partial / "redis.log")
        try:
            cluster.ensure().start()
            db = Database(cluster.describe())
            db.create()
            (partial / "database.json").write_text(json.dumps(db.django()) + "\n")
            self._wait_redis(redis, rport, 10, partial / "redis.log")
            # `deploy` exits 0 even when a step failed: look at its output.
            command = [
                str(self.python),
                str(self.venv_dir / "bin" / "modoboa-admin.py"),
                "deploy",
                PROJECT,
                "--dburl",
                f"default:{db.url()}",
                "--domain",
                HOST,
                "--redisurl",
                f"redis://{HOST}:{rport}/0",
                "--admin-username",
                ADMIN_USERNAME,
            ]
            mark = self.install_log.stat().st_size if self.install_log.exists() else 0
            self._run_logged(command, "modoboa-admin.py deploy", cwd=partial, env=env)
            with open(self.install_log, "rb") as fh:
                fh.seek(mark)
                output = fh.read().decode(errors="replace")
            if "failed, check your configuration" in output:
                raise ModoboaError(f"modoboa-admin.py deploy failed, see {self.install_log}")
            project = partial / PROJECT
            settings = project / PROJECT / "settings.py"
            settings.write_text(settings.read_text() + SETTINGS_APPEND)
            with open(project / PROJECT / "urls.py", "a") as fh:
                fh.write(URLS_APPEND)
            manage_env = _clean_env(FAYVAD_MODOBOA_REDIS_URL=f"redis://{HOST}:{rport}/0")
            self._run_logged(
                [str(self.python), "manage.py", "check"], "manage.py check", cwd=project, env=manage_env
            )
            self._run_logged(
                [str(self.python), "manage.py", "drf_create_token", ADMIN_USERNAME],
                "manage.py drf_create_token",
                cwd=project,
                env=manage_env,
            )
            (partial / "token").write_text(db.read_token() + "\n")
            db.set_parameters(TEMPLATE_PARAMETERS)
            db.dump(partial / "modoboa.dump")
            (partial / "database.json").unlink()
            (partial / "dkim").mkdir()
            (partial / TEMPLATE_MARKER).write_text(_template_recipe() + "\n")
            self._smoke_test(partial, cluster.describe())
        finally:
            self._terminate_group(redis.pid, redis)
            cluster.stop()
            shutil.rmtree(build_pg, ignore_errors=True)
        (partial / "redis.log").unlink(missing_ok=True)
        self._replace_dir(partial, self.template_dir)
        self.log(f"modoboa: template ready in {time.monotonic() - started:.0f} s")

    def _smoke_test(self, template: pathlib.Path, pg: dict) -> None:
        """Copy the fresh template, start it, and check that the API answers."""
        smoke_dir = template.with_name(template.name + ".smoke")
        shutil.rmtree(smoke_dir, ignore_errors=True)
        port = _free_port()
        redis_port = _free_port()
        while redis_port == port:
            redis_port = _free_port()
        smoke = Modoboa(self.cache_dir, smoke_dir, port, redis_port, log=lambda *_: None, pg=pg)
        smoke._database = Database(pg, "modoboa_smoke")
        smoke._copy_template(template)
        try:
            smoke.start(timeout=60)
            status, _body = smoke.request("GET", "/api/v2/domains/")
            if status != 200:
                raise ModoboaError(f"template smoke test: GET /api/v2/domains/ answered {status}")
        finally:
            smoke.stop()
            shutil.rmtree(smoke_dir, ignore_errors=True)

    # ---------------------------------------------------------------- prepare
    def prepare(self, fresh: bool = False) -> bool:
        """Create instance_dir and its database from the template when
        missing, stale, or fresh=True; whether it did."""
        self.ensure_installed()
        self._remove_leftovers()
        marker = _read_text(self.instance_dir / INSTANCE_MARKER)
        if self.instance_dir.exists():
            if marker is None and any(self.instance_dir.iterdir()):
                raise ModoboaError(
                    f"{self.instance_dir} exists and is not a Modoboa instance: refusing to overwrite it"
                )
            if marker is not None and marker != _template_recipe() and not fresh:
                self.log(f"modoboa: {self.instance_dir} was made by an older recipe: recreating it")
                fresh = True
            if marker is None:
                fresh = True  # an empty directory
        if not fresh and self.instance_dir.exists() and not self.database.exists():
            self.log(f"modoboa: database {self.database.name} is gone: recreating the instance")
            fresh = True
        if fresh or not self.instance_dir.exists():
            if self._running_pids():
                self.stop()
            self._copy_template(self.template_dir)
        # Always point the DKIM key directory at this instance (it may have moved).
        (self.instance_dir / "dkim").mkdir(exist_ok=True)
        (self.instance_dir / "password-policy.json").write_text(json.dumps(self.password_policy) + "\n")
        self.database.set_parameters({"admin": {"dkim_keys_storage_dir": str(self.instance_dir / "dkim")}})
        return fresh

    def _copy_template(self, template: pathlib.Path) -> None:
        self.instance_dir.parent.mkdir(parents=True, exist_ok=True)
        partial = self.instance_dir.with_name(f".{self.instance_dir.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(template, partial, symlinks=True, ignore=shutil.ignore_patterns("modoboa.dump"))
        for sub in ("logs", "redis", "sent-mail", "run"):
            (partial / sub).mkdir(exist_ok=True)
        for key in (partial / "dkim").glob("*"):
            key.unlink()
        (partial / "database.json").write_text(json.dumps(self.database.django()) + "\n")
        self.database.create(template / "modoboa.dump")
        self._replace_dir(partial, self.instance_dir)

    def _remove_leftovers(self) -> None:
        parent = self.instance_dir.parent
        if parent.is_dir():
            shutil.rmtree(parent / f".{self.instance_dir.name}.old", ignore_errors=True)
            for path in parent.glob(f".{self.instance_dir.name}.partial-*"):
                pid = path.name.rsplit("-", 1)[-1]
                if not (pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid()):
                    shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------ run / stop
    def start(self, timeout: float = 60) -> None:
        """Start Redis and the Django server; return when the REST API answers."""
        if not (self.instance_dir / INSTANCE_MARKER).exists():
            self.prepare()
        running = self._running_pids()
        if running:
            info = self._read_run_file()
            if (
                info.get("port") == self.port
                and info.get("redis_port") == self.redis_port
                and set(running) == {"server", "redis"}
                and self._api_status(2) == 200
            ):
                return  # already up
            self.stop()
        for name, port in (("Modoboa", self.port), ("Redis", self.redis_port)):
            if not _port_is_free(port):
                raise ModoboaError(f"cannot start {name}: port {HOST}:{port} is already in use")
        for sub in ("logs", "redis", "sent-mail", "run"):
            (self.instance_dir / sub).mkdir(exist_ok=True)
        deadline = time.monotonic() + timeout
        redis = self._spawn_redis(self.instance_dir / "redis", self.redis_port, self.redis_log)
        self._write_run_file(redis=redis.pid)
        try:
            self._wait_redis(redis, self.redis_port, max(1.0, deadline - time.monotonic()), self.redis_log)
            server = self._spawn_server()
            self._write_run_file(redis=redis.pid, server=server.pid)
            self._wait_api(server, deadline)
        except BaseException:
            self.stop()
            raise

    def _spawn_redis(self, workdir: pathlib.Path, port: int, logfile: pathlib.Path) -> subprocess.Popen:
        workdir.mkdir(parents=True, exist_ok=True)
        return self._spawn(
            [
                "redis-server",
                "--bind",
                HOST,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--logfile",
                "",
            ],
            workdir,
            logfile,
            mode="wb",
        )

    def _wait_redis(self, proc: subprocess.Popen, port: int, timeout: float, logfile: pathlib.Path) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise ModoboaError(
                    f"redis-server exited ({proc.returncode}) on port {port}; "
                    f"{logfile}: " + " | ".join(_tail(logfile, 5))
                )
            try:
                with socket.create_connection((HOST, port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ModoboaError(
                    f"redis-server did not answer on {HOST}:{port} within "
                    f"{timeout:.0f} s; {logfile}: " + " | ".join(_tail(logfile, 5))
                )
            time.sleep(0.05)

    def server_env(self) -> dict[str, str]:
        """The environment of this instance's Django processes (its Redis)."""
        return _clean_env(FAYVAD_MODOBOA_REDIS_URL=f"redis://{HOST}:{self.redis_port}/0")

    def load_csv(self, path: pathlib.Path) -> None:
        """Objects made on this Modoboa by its own bulk import (``manage.py
        modo import``: domains, accounts with their mailboxes, aliases; the
        passwords given hashed), as a hosting business's server has them."""
        self._run_logged(
            [str(self.python), "manage.py", "modo", "import", str(path)],
            "manage.py modo import",
            cwd=self._project_dir,
            env=self.server_env(),
        )

    def _spawn_server(self) -> subprocess.Popen:
        env = self.server_env()
        # a restart appends: the log tells the whole story
        return self._spawn(
            [
                str(self.python),
                "manage.py",
                "runserver",
                f"{HOST}:{self.port}",
                "--noreload",
                "--skip-checks",
            ],
            self._project_dir,
            self.server_log,
            mode="ab",
            env=env,
        )

    def _spawn(self, cmd, cwd, logfile, mode, env=None) -> subprocess.Popen:
        """Start ``cmd`` in a session of its own, its output in ``logfile``."""
        with open(logfile, mode) as out:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        return proc

    def _wait_api(self, proc: subprocess.Popen, deadline: float) -> None:
        last = None
        while True:
            if proc.poll() is not None:
                raise ModoboaError(
                    f"the Modoboa server exited ({proc.returncode}) before answering; "
                    f"last lines of {self.server_log}: " + " | ".join(_tail(self.server_log, 4))
                )
            status = self._api_status(2)
            if status == 200:
                return
            last = status if status is not None else last
            if time.monotonic() > deadline:
                got = f"last answer {last}" if last else "no answer"
                raise ModoboaError(
                    f"Modoboa did not come up on {self.url} in time ({got}); "
                    f"last lines of {self.server_log}: " + " | ".join(_tail(self.server_log, 4))
                )
            time.sleep(0.1)

    def _api_status(self, timeout: float) -> int | None:
        try:
            status, _body = self.request("GET", "/api/v2/domains/?page_size=1", timeout=timeout)
            return status
        except (OSError, http.client.HTTPException):
            return None

    def request(
        self, method: str, path: str, body=None, *, token: str | None = None, timeout: float = 30
    ) -> tuple[int, object]:
        """Small helper: one API call with the admin token; returns (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Token {token or self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode(errors="replace")
        try:
            return status, (json.loads(text) if text else None)
        except ValueError:
            return status, text

    def stop(self) -> None:
        """Stop the server and Redis (SIGTERM, SIGKILL after 5 s). Safe to call twice."""
        info = self._read_run_file()
        for name in ("server", "redis"):
            pid = info.get(name)
            if pid and self._owns(pid):
                self._terminate_group(pid, self._children.get(pid))
        for proc in list(self._children.values()):  # started here, not recorded (yet)
            if proc.poll() is None:
                self._terminate_group(proc.pid, proc)
        self._children = {pid: p for pid, p in self._children.items() if p.poll() is None}
        with contextlib.suppress(FileNotFoundError):
            self._run_file.unlink()

    def leftover(self) -> bool:
        """Whether a server or Redis of this instance, recorded in its run
        file by an earlier run, is still alive."""
        return bool(self._running_pids())

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): requests hang until resume()."""
        self._signal_server(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_server(signal.SIGCONT)

    def is_running(self) -> bool:
        return bool(self._running_pids())

    def _signal_server(self, sig: int) -> None:
        pid = self._read_run_file().get("server")
        if not pid or not self._owns(pid):
            raise ModoboaError(f"the Modoboa server of {self.instance_dir} is not running")
        os.killpg(pid, sig)

    def _terminate_group(self, pid: int, proc: subprocess.Popen | None, grace: float = 5) -> None:
        def alive() -> bool:
            if proc is not None:
                return proc.poll() is None
            return _pid_alive(pid)

        for sig in (signal.SIGTERM, signal.SIGCONT):  # SIGCONT: a paused server must see SIGTERM
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
            self._children.pop(pid, None)

    def _owns(self, pid: int) -> bool:
        """The pid is alive and works inside this instance (guards against pid reuse)."""
        if not _pid_alive(pid):
            return False
        cwd = _pid_cwd(pid)
        if cwd is None:
            return False
        cwd = cwd.removesuffix(" (deleted)")
        root = os.path.realpath(self.instance_dir)
        return cwd == root or cwd.startswith(root + os.sep)

    def _running_pids(self) -> dict[str, int]:
        info = self._read_run_file()
        return {name: info[name] for name in ("server", "redis") if info.get(name) and self._owns(info[name])}

    def _read_run_file(self) -> dict:
        try:
            return json.loads(self._run_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_run_file(self, **pids: int) -> None:
        data = {"port": self.port, "redis_port": self.redis_port, "url": self.url, **pids}
        tmp = self._run_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self._run_file)
