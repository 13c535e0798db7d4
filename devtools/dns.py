"""A real DNS server for ``./dev test`` and ``./dev run``: Knot (Debian's
``knot`` package), authoritative for the root zone on a loopback port, so
that any domain name the tests or the demo use can be given records.

The zone is one file; whoever publishes records rewrites it and asks Knot to
reload it (``knotc zone-reload``, a few milliseconds). Domain checks of the
addon ask it through the ``fayvad_mail.dns_nameservers`` setting.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .common import DevError, apt_install, stop_process

HOST = "127.0.0.1"
HEAD = """$TTL 60
. IN SOA ns.fayvad.test. hostmaster.fayvad.test. 1 60 60 600 60
. IN NS ns.fayvad.test.
ns.fayvad.test. IN A 127.0.0.1
"""

CONFIG = """server:
    rundir: "{dir}"
    pidfile: "{dir}/knot.pid"
    listen: {host}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: "{dir}/knot.log"
    any: warning
database:
    storage: "{dir}/db"
control:
    listen: "{dir}/knot.sock"
template:
  - id: default
    storage: "{dir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: .
    file: "root.zone"
"""


def ensure_installed():
    if not (shutil.which("knotd") and shutil.which("knotc")):
        apt_install(["knot"], "domain verification is tested against a real DNS server")
    if not shutil.which("knotd"):
        raise DevError("knotd is missing: install Debian's knot package (apt-get install knot)")


class DnsServer:
    """Knot on ``HOST:port``, its files in ``workdir``."""

    def __init__(self, workdir, port):
        self.dir = Path(workdir)
        self.port = port
        self.proc = None

    @property
    def address(self):
        """The ``fayvad_mail.dns_nameservers`` setting that asks it."""
        return f"{HOST}:{self.port}"

    @property
    def zone(self):
        return self.dir / "root.zone"

    @property
    def control(self):
        return self.dir / "knot.sock"

    def env(self):
        """What the tests read to publish records."""
        return {
            "FAYVAD_TEST_DNS": self.address,
            "FAYVAD_TEST_DNS_ZONE": str(self.zone),
            "FAYVAD_TEST_DNS_CONTROL": str(self.control),
        }

    def start(self, lines=(), timeout=15):
        ensure_installed()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "db").mkdir(exist_ok=True)
        config = self.dir / "knot.conf"
        config.write_text(CONFIG.format(dir=self.dir, host=HOST, port=self.port))
        self.write_zone(lines, reload=False)
        log = open(self.dir / "knotd.out", "ab")  # noqa: SIM115 (open while it runs)
        try:
            self.proc = subprocess.Popen(
                ["knotd", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "knotd.out").read_text(errors="replace")[-500:]
                self.stop()
                raise DevError(f"the DNS server (knotd) did not answer on {self.address}: {tail}")
            time.sleep(0.05)
        return self

    def _answers(self):
        """Whether it answers a query for the zone's SOA (a minimal DNS packet)."""
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            try:
                sock.sendto(query, (HOST, self.port))
                return sock.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def write_zone(self, lines, reload=True):
        """Serve exactly ``lines`` (zone file lines with absolute names)."""
        tmp = self.zone.with_suffix(".tmp")
        tmp.write_text(HEAD + "".join(f"{line}\n" for line in lines))
        tmp.replace(self.zone)
        if reload:
            subprocess.run(
                ["knotc", "-s", str(self.control), "-b", "zone-reload", "."],
                check=True,
                capture_output=True,
                timeout=30,
            )

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
