"""Shared helpers of the ``./dev`` tool: errors, paths, processes, ports.

Standard library only: this runs with the system Python before any
virtualenv exists.
"""

import contextlib
import errno
import fcntl
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADDON = REPO / "fayvad_mail"


class DevError(Exception):
    """A failure explained in one line; ``./dev`` prints it and exits 1."""


def say(msg):
    print(f"dev: {msg}", file=sys.stderr, flush=True)


def cache_dir():
    """The cache holding everything ``./dev`` builds (outside the checkout)."""
    explicit = os.environ.get("FAYVAD_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().resolve() / "fayvad_mail"


def vault_key(cache):
    """The key that encrypts the addon's stored secrets in ``./dev``'s Odoo
    instances (odoo.conf's ``fayvad_mail_vault_key``): made once, kept in the
    cache (mode 600) so that ``./dev run``'s database stays readable."""
    path = Path(cache) / "vault.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_urlsafe(48) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip()


def env_port(name, default):
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise DevError(f"{name}={raw!r} is not a TCP port number")
    return int(raw)


def is_disk_full(exc_or_text):
    if isinstance(exc_or_text, OSError):
        return exc_or_text.errno == errno.ENOSPC
    return "No space left on device" in str(exc_or_text)


def run(cmd, *, log=None, env=None, cwd=None, what=None, user=None, timeout=None):
    """Run a command to completion; on failure raise DevError naming ``what``.

    Output goes to ``log`` (a path, appended) or is captured; the last lines
    are shown in the error so the cause is visible without opening files.
    """
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    what = what or " ".join(str(c) for c in cmd[:3])
    if log:
        log = Path(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
    else:
        out = subprocess.PIPE
    try:
        proc = subprocess.run(
            [str(c) for c in cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except OSError as exc:
        if is_disk_full(exc):
            raise DevError(f"disk full during {what}") from exc
        raise DevError(f"{what} failed: {exc}") from exc
    finally:
        if log:
            out.close()
    if proc.returncode:
        text = log.read_bytes()[-6000:] if log else (proc.stdout or b"")
        text = text.decode(errors="replace")
        if is_disk_full(text):
            raise DevError(f"disk full during {what}")
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-3:])
        where = f" (log: {log})" if log else ""
        raise DevError(f"{what} failed{where}: {tail}")
    return (proc.stdout or b"").decode(errors="replace") if not log else ""


def port_free(port, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_port(port, name, env_name):
    if not port_free(port):
        raise DevError(f"port {port} ({name}) is busy on 127.0.0.1: stop what uses it or set {env_name}")


def free_port(avoid=()):
    """A port free on 127.0.0.1 now, none of ``avoid`` (ports promised to
    services not started yet)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port


def wait_http(url, timeout, proc=None, headers=None):
    """Wait until ``url`` answers any HTTP status; False on timeout or exit."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def stop_process(proc, timeout=15):
    """SIGTERM a child's process group, then SIGKILL; safe to call twice."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def exclusive_lock(path, busy_message):
    """Hold an flock on ``path`` for the block; DevError if someone has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise DevError(busy_message) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def terminate_on_sigterm():
    """Turn SIGTERM (and SIGHUP) into KeyboardInterrupt so cleanup runs."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


@contextlib.contextmanager
def shielded(message="still stopping: everything started is being stopped"):
    """Let the block run to its end whatever signal comes: a second Ctrl-C
    (or SIGTERM) while stopping must not leave services behind. The signal
    is acknowledged, not obeyed; each stop in the block has its own timeout."""
    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.getsignal(signum) for signum in signums}

    def handler(signum, frame):
        say(message)

    for signum in signums:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def pid_file_process(path, marker):
    """The pid recorded in ``path`` when that process is alive and its
    command line holds ``marker`` (guards against pid reuse), else None."""
    try:
        pid = int(Path(path).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if marker in cmdline else None


def stop_pid_group(pid, timeout=15):
    """SIGTERM the process group of ``pid`` (a session leader), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def apt_install(packages, why):
    """Install Debian packages when running as root; DevError otherwise."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise DevError(f"{why}: install the Debian packages {' '.join(packages)} (needs root)")
    say(f"installing {' '.join(packages)} with apt-get ({why})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log = cache_dir() / "logs" / "apt.log"
    try:
        run(["apt-get", "install", "-y", "-q", *packages], env=env, log=log, what="apt-get install")
    except DevError:
        run(["apt-get", "update", "-q"], env=env, log=log, what="apt-get update")
        run(["apt-get", "install", "-y", "-q", *packages], env=env, log=log, what="apt-get install")


def grant_traverse(path, user):
    """Let ``user`` (a name or a uid) reach ``path``: add search permission on
    each parent directory it cannot cross (an ACL entry when possible, else o+x)."""
    uid = user if isinstance(user, int) else pwd.getpwnam(user).pw_uid
    for parent in reversed(Path(path).parents):
        st = parent.stat()
        if st.st_mode & 0o001 or st.st_uid == uid:
            continue
        if shutil.which("setfacl"):
            run(["setfacl", "-m", f"u:{uid}:x", parent], what=f"granting {user} access to {parent}")
        else:
            parent.chmod(st.st_mode | 0o001)
