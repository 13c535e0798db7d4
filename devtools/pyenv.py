"""The cached Python environment: a virtualenv with Odoo 18.0 and the pins.

Layout under the cache directory::

    odoo/            Odoo's ``odoo`` package (and ``addons/`` when the source has one)
    odoo/.installed  JSON marker written last: where it came from, its version
    venv/            virtualenv with requirements*.txt, Odoo on its path
    venv/.installed  JSON marker written last: hash of the pins

Each part is built in a temporary directory and renamed into place, or
removed when anything fails, so an interrupted or failed install leaves
nothing half-done behind.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .common import REPO, DevError, cache_dir, is_disk_full, rmtree, run, say

NIGHTLY_URL = "https://nightly.odoo.com/18.0/nightly/src/odoo_18.0.latest.tar.gz"
REQUIREMENTS = [REPO / "requirements.txt", REPO / "requirements-dev.txt"]


def odoo_version(src):
    """(major, minor) of the Odoo package in ``src`` (a dir holding ``odoo/``)."""
    release = Path(src) / "odoo" / "release.py"
    if not release.is_file():
        return None
    match = re.search(r"^version_info\s*=\s*\((\d+),\s*(\d+)", release.read_text(), re.M)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _check_source(src, origin):
    version = odoo_version(src)
    if version is None:
        raise DevError(f"{origin} is not an Odoo source: no odoo/release.py in {src}")
    if version != (18, 0):
        raise DevError(f"{origin} holds Odoo {version[0]}.{version[1]}, not Odoo 18.0: {src}")


class PythonEnv:
    def __init__(self, cache=None):
        self.cache = Path(cache or cache_dir())
        self.odoo_dir = self.cache / "odoo"
        self.venv = self.cache / "venv"
        self.python = self.venv / "bin" / "python"
        self.logs = self.cache / "logs"

    # -- public -----------------------------------------------------------
    def ensure(self):
        self.cache.mkdir(parents=True, exist_ok=True)
        self._ensure_odoo()
        self._ensure_venv()
        return self

    @property
    def addons_paths(self):
        paths = [self.odoo_dir / "odoo" / "addons"]
        if (self.odoo_dir / "addons").is_dir():
            paths.append(self.odoo_dir / "addons")
        return [*paths, REPO]

    def tool(self, name):
        return self.venv / "bin" / name

    # -- Odoo ---------------------------------------------------------------
    def _ensure_odoo(self):
        src = os.environ.get("ODOO_SRC")
        marker = self._read_marker(self.odoo_dir)
        if src:
            src = Path(src).expanduser().resolve()
            _check_source(src, f"ODOO_SRC={src}")
            if marker and marker.get("source") == str(src) and odoo_version(self.odoo_dir) == (18, 0):
                return
            self._install_odoo_from(src)
        elif marker and odoo_version(self.odoo_dir) == (18, 0):
            return
        else:
            self._install_odoo_from_archive()

    def _install_odoo_from(self, src, origin=None):
        say(f"installing Odoo 18.0 from {origin or src} into {self.odoo_dir}")
        tmp = Path(tempfile.mkdtemp(prefix=".odoo-", dir=self.cache))
        try:
            parts = ["odoo"] + (["addons"] if (src / "addons" / "web").is_dir() else [])
            for part in parts:
                run(["cp", "-a", src / part, tmp / part], what=f"copying Odoo's {part}/")
            self._write_marker(tmp, {"source": str(origin or src), "version": "18.0"})
            rmtree(self.odoo_dir)
            tmp.rename(self.odoo_dir)
        except BaseException as exc:
            rmtree(tmp)
            if isinstance(exc, OSError) and is_disk_full(exc):
                raise DevError(f"disk full while installing Odoo into {self.cache}") from exc
            raise

    def _install_odoo_from_archive(self):
        url = os.environ.get("FAYVAD_ODOO_ARCHIVE_URL", NIGHTLY_URL)
        tmp = Path(tempfile.mkdtemp(prefix=".odoo-download-", dir=self.cache))
        try:
            say(f"ODOO_SRC is not set: downloading Odoo 18.0 from {url}")
            archive = tmp / "odoo.tar.gz"
            try:
                with urllib.request.urlopen(url, timeout=30) as resp, archive.open("wb") as out:
                    shutil.copyfileobj(resp, out)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if isinstance(exc, OSError) and is_disk_full(exc):
                    raise DevError(f"disk full while downloading Odoo into {self.cache}") from exc
                reason = getattr(exc, "reason", exc)
                raise DevError(
                    f"ODOO_SRC is not set and Odoo 18.0 cannot be downloaded from {url} ({reason}); "
                    "set ODOO_SRC to a directory holding Odoo 18.0's odoo package"
                ) from exc
            with tarfile.open(archive) as tar:
                tar.extractall(tmp / "x", filter="data")
            release = next((tmp / "x").glob("*/odoo/release.py"), None) or next(
                (tmp / "x").glob("odoo/release.py"), None
            )
            if release is None:
                raise DevError(f"{url} does not hold an Odoo source tree")
            root = release.parent.parent
            _check_source(root, url)
            self._install_odoo_from(root, origin=url)
        finally:
            rmtree(tmp)

    # -- virtualenv -------------------------------------------------------------
    def _pins_hash(self):
        digest = hashlib.sha256()
        for path in REQUIREMENTS:
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def _pip_install(self, log):
        pip = [self.python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        for path in REQUIREMENTS:
            run([*pip, "-r", path], log=log, what=f"pip install -r {path.name}")

    def _ensure_venv(self):
        # the Odoo copy it runs, by its real path (a cache may reach it through a symlink)
        wanted = {"pins": self._pins_hash(), "odoo": str(self.odoo_dir.resolve()), "python": sys.version}
        marker = self._read_marker(self.venv)
        if marker == wanted and self.python.exists():
            return
        log = self.logs / "pip.log"
        if marker and marker.get("python") == sys.version and marker.get("odoo") == wanted["odoo"]:
            # only the pins changed: install what is new into the existing venv
            say("requirements changed: updating the virtualenv")
            (self.venv / ".installed").unlink()
            self._pip_install(log)
            self._write_marker(self.venv, wanted)
            return
        say(f"creating the virtualenv {self.venv} (pinned requirements; a few minutes the first time)")
        rmtree(self.venv)
        try:
            run([sys.executable, "-m", "venv", self.venv], what="python -m venv")
            self._pip_install(log)
            site = Path(
                subprocess.check_output(
                    [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    text=True,
                ).strip()
            )
            (site / "fayvad_odoo.pth").write_text(f"{self.odoo_dir}\n")
            self._write_marker(self.venv, wanted)
        except BaseException as exc:
            rmtree(self.venv)
            if isinstance(exc, OSError) and is_disk_full(exc):
                raise DevError(f"disk full while creating the virtualenv in {self.cache}") from exc
            raise

    # -- markers -------------------------------------------------------------
    @staticmethod
    def _read_marker(path):
        try:
            return json.loads((Path(path) / ".installed").read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _write_marker(path, data):
        (Path(path) / ".installed").write_text(json.dumps(data))


def ensure_tool_venv(venv, requirements, what):
    """A virtualenv of its own for a test tool whose pins would fight
    Odoo's (built in a temporary place, moved into position when complete);
    its python."""
    venv = Path(venv)
    requirements = Path(requirements)
    wanted = {"pins": hashlib.sha256(requirements.read_bytes()).hexdigest()[:16], "python": sys.version}
    python = venv / "bin" / "python"
    if PythonEnv._read_marker(venv) == wanted and python.exists():
        return python
    say(f"creating the virtualenv of {what} in {venv}")
    partial = venv.with_name(venv.name + ".partial")
    rmtree(partial)
    try:
        run([sys.executable, "-m", "venv", partial], what="python -m venv")
        run(
            [
                partial / "bin" / "python",
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
                requirements,
            ],
            log=venv.parent / "logs" / f"{venv.name}-pip.log",
            what=f"pip install -r {requirements.name}",
        )
        PythonEnv._write_marker(partial, wanted)
        rmtree(venv)
        partial.rename(venv)  # a venv's scripts name their interpreter: fix them up
        for script in (venv / "bin").iterdir():
            if script.is_file() and not script.is_symlink():
                try:
                    text = script.read_text()
                except UnicodeDecodeError:
                    continue
                if str(partial) in text:
                    script.write_text(text.replace(str(partial), str(venv)))
        (venv / "pyvenv.cfg").write_text((venv / "pyvenv.cfg").read_text().replace(str(partial), str(venv)))
    except BaseException:
        rmtree(partial)
        raise
    return python
