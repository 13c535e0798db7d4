"""The rest of a mail server next to the private Modoboa: Postfix, Dovecot,
OpenDKIM, Modoboa's policy daemon and a sink for mail to other domains, wired
to Modoboa's database the way Modoboa's installer wires them (see
../shared/spec/MODOBOA-NOTES.md, "The whole mail server").

    stack = MailStack(modoboa, workdir, Ports.free())
    stack.start()       # ~2-3 s: Postfix, Dovecot, OpenDKIM, policy daemon, sink
    ... SMTP on stack.ports.smtp, submission (AUTH) on .submission, IMAP on .imap ...
    stack.stop()

Everything listens on 127.0.0.1 and lives in ``workdir`` (configuration,
queue, mail, logs). Nothing leaves the machine: mail for domains the server
does not host goes to ``smtp-sink``, which writes each message to
``workdir/sink``. Dovecot writes what each mailbox holds, in bytes, into
Modoboa's ``admin_quota`` table (its dict server) and answers the doveadm
HTTP API (``quotaGet``, ``mailboxStatus``) on ``ports.doveadm``.

Modoboa's database is PostgreSQL (devtools.modoboa.Database), as on
Modoboa's installer: Postfix's maps, Dovecot's logins, deliveries and quota
dictionary, and the policy daemon all read it through the cluster's unix
socket.
"""

import contextlib
import dataclasses
import email.message
import email.utils
import hashlib
import json
import os
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .common import DevError, apt_install, env_port, free_port, grant_traverse, stop_pid_group, stop_process
from .modoboa import ModoboaError

HOST = "127.0.0.1"
MAIL_UID = 5000  # owner of the stored mail (Modoboa's installer calls it vmail)
HOSTNAME = "mail.fayvad.test"
PACKAGES = ["postfix", "postfix-pgsql", "dovecot-imapd", "dovecot-lmtpd", "dovecot-pgsql", "opendkim"]


@dataclasses.dataclass
class Ports:
    smtp: int
    submission: int
    imap: int
    lmtp: int
    auth: int
    policy: int
    sink: int
    doveadm: int
    quota: int
    dkim: int

    @classmethod
    def free(cls, avoid=(), **fixed):
        """The ``fixed`` ports, and for the others ports free now, each
        different, none of ``avoid``."""
        taken, ports = {*avoid, *fixed.values()}, dict(fixed)
        for field in dataclasses.fields(cls):
            if field.name not in ports:
                ports[field.name] = free_port(taken)
                taken.add(ports[field.name])
        return cls(**ports)

    @classmethod
    def for_run(cls, avoid=()):
        """``./dev run``'s: fixed ports for what people and Odoo reach (set
        by FAYVAD_SMTP_PORT, ... when taken), any free one for the rest,
        none of ``avoid`` (the other services' ports)."""
        return cls.free(
            avoid,
            smtp=env_port("FAYVAD_SMTP_PORT", 2525),
            submission=env_port("FAYVAD_SUBMISSION_PORT", 2587),
            imap=env_port("FAYVAD_IMAP_PORT", 2143),
            doveadm=env_port("FAYVAD_DOVEADM_PORT", 2180),
        )


def ensure_installed():
    if (
        all(shutil.which(tool) for tool in ("postfix", "dovecot", "doveadm", "smtp-sink", "opendkim"))
        and Path("/usr/lib/dovecot/modules/dict/libdriver_pgsql.so").exists()
        and Path("/usr/lib/postfix/postfix-pgsql.so").exists()
    ):
        return
    subprocess.run(
        ["debconf-set-selections"],
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        check=False,
        capture_output=True,
    )
    apt_install(PACKAGES, "the tests deliver real mail (SMTP, IMAP)")


# -- Postfix ------------------------------------------------------------------------------
# The queries of Modoboa 2.12's `generate_postfix_maps` for PostgreSQL.
POSTFIX_MAPS = {
    "sql-domains.cf": "SELECT name FROM admin_domain WHERE name='%s' AND type='domain' AND enabled",
    "sql-domain-aliases.cf": (
        "SELECT dom.name FROM admin_domain dom INNER JOIN admin_domainalias domal ON dom.id=domal.target_id "
        "WHERE domal.name='%s' AND domal.enabled AND dom.enabled"
    ),
    "sql-aliases.cf": (
        "SELECT alr.address FROM modoboa_admin_aliasrecipient AS alr "
        "INNER JOIN admin_alias AS al ON alr.alias_id=al.id "
        "WHERE al.enabled AND al.address='%s' AND (al.expire_at IS NULL OR al.expire_at>now())"
    ),
    "sql-maintain.cf": (
        "SELECT '450 Requested mail action not taken: mailbox unavailable' "
        "FROM admin_mailbox mb INNER JOIN admin_domain dom ON mb.domain_id=dom.id "
        "INNER JOIN admin_mailboxoperation mbop ON mbop.mailbox_id=mb.id "
        "WHERE dom.name='%d' AND mb.address='%u' LIMIT 1"
    ),
    "sql-sender-login-map.cf": (
        "SELECT email FROM core_user WHERE email='%s' AND is_active "
        "UNION SELECT mb.address || '@' || dom.name FROM admin_mailbox mb "
        "INNER JOIN admin_senderaddress sad ON sad.mailbox_id=mb.id "
        "INNER JOIN admin_domain dom ON dom.id=mb.domain_id WHERE sad.address='%s' "
        "UNION SELECT mb.address || '@' || dom.name FROM admin_mailbox mb "
        "INNER JOIN modoboa_admin_aliasrecipient alr ON alr.r_mailbox_id=mb.id "
        "INNER JOIN admin_domain dom ON dom.id=mb.domain_id "
        "INNER JOIN admin_alias al ON alr.alias_id=al.id WHERE al.enabled AND al.address='%s'"
    ),
}

MAIN_CF = """\
compatibility_level = 3.6
config_directory = {dir}/postfix
queue_directory = {dir}/queue
data_directory = {dir}/postfix-data
maillog_file = {dir}/logs/postfix.log
maillog_file_prefixes = {dir}/logs
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = {host}
inet_protocols = ipv4
myhostname = {hostname}
myorigin = $myhostname
mydestination =
mynetworks =
smtpd_banner = $myhostname ESMTP
biff = no
smtputf8_enable = no
append_dot_mydomain = no
alias_maps =
alias_database =
recipient_delimiter = +
mailbox_size_limit = 0
unknown_local_recipient_reject_code = 550
unverified_recipient_reject_code = 550
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native

virtual_transport = lmtp:inet:{host}:{lmtp}
virtual_mailbox_domains = pgsql:{dir}/postfix/sql-domains.cf
virtual_alias_domains = pgsql:{dir}/postfix/sql-domain-aliases.cf
virtual_alias_maps = pgsql:{dir}/postfix/sql-aliases.cf
smtpd_sender_login_maps = pgsql:{dir}/postfix/sql-sender-login-map.cf
# Mail for any other domain: the local sink, never the Internet.
relayhost = [{host}]:{sink}

smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:{host}:{auth}
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_helo_required = yes
disable_vrfy_command = yes

# Every recipient is checked through Dovecot (an LMTP probe): unknown users
# are refused at RCPT, as on Modoboa's installer. Answers are kept a second
# (not a month), so tests see a change at once.
address_verify_map = proxy:btree:$data_directory/verify_cache
proxy_write_maps = $address_verify_map
address_verify_negative_expire_time = 1s
address_verify_negative_refresh_time = 1s
address_verify_positive_expire_time = 1s
address_verify_positive_refresh_time = 1s
address_verify_poll_delay = 1s

smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
# A message larger than what its recipient has left is refused at RCPT
# (Dovecot's quota-status service, told the SIZE the sender announced).
smtpd_recipient_restrictions =
    check_recipient_access pgsql:{dir}/postfix/sql-maintain.cf,
    reject_unverified_recipient,
    reject_unauth_destination,
    check_policy_service inet:{host}:{quota}
# Daily sending limits (Modoboa's policy daemon): checked at RCPT, counted
# at the end of each message; it closes its connection after each request.
policy_service = check_policy_service inet:{host}:{policy}
smtpd_policy_service_request_limit = 1
# What a mail client sends is signed by OpenDKIM (the submission service's milter).
milter_default_action = accept
"""

# smtpd keeps what trivial-rewrite answered about a domain for as long as
# it lives (100 connections in production): one connection a process here,
# so that a domain enabled a moment ago is taken at once.
SERVICES = """\
{host}:{smtp} inet n - n - - smtpd
  -o max_use=1
{host}:{submission} inet n - n - - smtpd
  -o max_use=1
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_security_level=none
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_recipient_restrictions=$policy_service,permit_sasl_authenticated,reject
  -o smtpd_end_of_data_restrictions=$policy_service
  -o smtpd_milters=inet:{host}:{dkim}
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

# -- Dovecot ------------------------------------------------------------------------------
DOVECOT_CONF = """\
base_dir = {dovecot_run}
state_dir = {dir}/dovecot/state
log_path = {dir}/logs/dovecot.log
protocols = imap lmtp
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password is answered at once (production waits 2 s): tests try many.
auth_failure_delay = 0
first_valid_uid = {uid}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins quota
default_internal_user = dovecot
default_login_user = dovenull
postmaster_address = postmaster@{hostname}
hostname = {hostname}
doveadm_api_key = {doveadm_key}

protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
protocol lmtp {{
  mail_plugins = $mail_plugins quota
}}
passdb {{
  driver = sql
  args = {dir}/dovecot/sql.conf.ext
}}
userdb {{
  driver = sql
  args = {dir}/dovecot/sql.conf.ext
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp}
  }}
}}
service auth {{
  inet_listener {{
    address = {host}
    port = {auth}
  }}
}}
service auth-worker {{
  user = root
}}
service dict {{
  user = root
  unix_listener dict {{
    mode = 0666
  }}
}}
service quota-status {{
  executable = quota-status -p postfix
  client_limit = 1
  inet_listener {{
    address = {host}
    port = {quota}
  }}
}}
service doveadm {{
  inet_listener http {{
    address = {host}
    port = {doveadm}
  }}
}}
dict {{
  quota = pgsql:{dir}/dovecot/dict.conf.ext
}}
plugin {{
  # Sizes as IMAP clients see them (CRLF line ends): the quota, Modoboa's
  # admin_quota table and doveadm's mailbox status all count the same bytes.
  quota = dict:User quota::proxy::quota
  quota_vsizes = yes
  quota_status_success = DUNNO
  quota_status_nouser = DUNNO
  quota_status_overquota = "552 5.2.2 Mailbox is full"
}}
"""

DOVECOT_SQL = """\
driver = pgsql
connect = {dsn}
default_pass_scheme = SHA512-CRYPT
# Logins: active users of enabled domains only (Modoboa's installer).
password_query = SELECT u.email AS user, u.password FROM core_user u \\
  INNER JOIN admin_mailbox mb ON u.id=mb.user_id INNER JOIN admin_domain dom ON mb.domain_id=dom.id \\
  WHERE u.email='%u' AND u.is_active AND dom.enabled
# Delivery (LMTP) looks users up whatever their state: a suspended mailbox keeps its mail.
user_query = SELECT '{mail}/%d/%n' AS home, {uid} AS uid, {uid} AS gid, \\
  '*:bytes=' || mb.quota || 'M' AS quota_rule \\
  FROM admin_mailbox mb INNER JOIN admin_domain dom ON mb.domain_id=dom.id \\
  WHERE mb.address='%n' AND dom.name='%d'
iterate_query = SELECT email AS user FROM core_user WHERE email LIKE '%%@%%'
"""

DOVECOT_DICT = """\
connect = {dsn}
map {{
  pattern = priv/quota/storage
  table = admin_quota
  username_field = username
  value_field = bytes
}}
map {{
  pattern = priv/quota/messages
  table = admin_quota
  username_field = username
  value_field = messages
}}
"""


# -- OpenDKIM ------------------------------------------------------------------------------
# Signs with the keys Modoboa generated, as its installer sets OpenDKIM up; the
# installer's tables are SQL queries of Modoboa's database (OpenDBX), here they
# are files that follow it (``MailStack._follow_dkim``).
OPENDKIM_CONF = """\
Syslog no
Socket inet:{dkim}@{host}
PidFile {dir}/opendkim/opendkim.pid
Mode s
Canonicalization relaxed/simple
SignatureAlgorithm rsa-sha256
KeyTable file:{dir}/opendkim/KeyTable
SigningTable refile:{dir}/opendkim/SigningTable
# The keys sit under the cache, whose parents (/tmp for a clone there) others may write.
RequireSafeKeys no
"""
# a line a domain: name, selector, key path (none has a space)
DKIM_QUERY = (
    "SELECT name || ' ' || dkim_key_selector || ' ' || dkim_private_key_path FROM admin_domain "
    "WHERE enable_dkim AND dkim_private_key_path != '' ORDER BY name"
)


class MailStack:
    """Postfix, Dovecot, the policy daemon and a sink for ``modoboa`` (a
    devtools.modoboa.Modoboa), their files in ``workdir``."""

    def __init__(self, modoboa, workdir, ports):
        self.modoboa = modoboa
        self.dir = Path(workdir)
        self.ports = ports
        self.procs = {}
        # Dovecot's sockets: a unix socket's path has at most 107 bytes, and the
        # work directory may be deep (a pytest tmp_path): a short one of its own
        digest = hashlib.sha1(str(self.dir.absolute()).encode()).hexdigest()[:12]
        self.dovecot_run = Path(tempfile.gettempdir()) / f"fayvad-dovecot-{digest}"

    @property
    def sink(self):
        return self.dir / "sink"

    @property
    def doveadm_key(self):
        path = self.dir / "doveadm.key"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(16))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def doveadm_url(self):
        return f"http://{HOST}:{self.ports.doveadm}"

    def env(self):
        """What the tests read to reach it."""
        return {
            "FAYVAD_TEST_SMTP": f"{HOST}:{self.ports.smtp}",
            "FAYVAD_TEST_SUBMISSION": f"{HOST}:{self.ports.submission}",
            "FAYVAD_TEST_IMAP": f"{HOST}:{self.ports.imap}",
            "FAYVAD_TEST_DOVEADM_URL": self.doveadm_url,
            "FAYVAD_TEST_DOVEADM_KEY": self.doveadm_key,
            "FAYVAD_TEST_MAIL_SINK": str(self.sink),
            "FAYVAD_TEST_DOVECOT_CONF": str(self.dir / "dovecot" / "dovecot.conf"),
        }

    def describe(self):
        return (
            f"SMTP {HOST}:{self.ports.smtp}, submission {HOST}:{self.ports.submission} (AUTH PLAIN), "
            f"IMAP {HOST}:{self.ports.imap}, doveadm HTTP {HOST}:{self.ports.doveadm}; "
            f"mail to other domains lands in {self.sink}"
        )

    def deliver(self, recipients, subject, text, sender=f"postmaster@{HOSTNAME}"):
        """Send one message to ``recipients`` through Postfix's SMTP port, as
        another mail server would; the recipients it refused, with its answers."""
        message = email.message.EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, ", ".join(recipients), subject
        message["Date"] = email.utils.formatdate(localtime=True)
        message["Message-ID"] = email.utils.make_msgid(domain=HOSTNAME)
        message.set_content(text)
        with smtplib.SMTP(HOST, self.ports.smtp, timeout=60) as smtp:
            return smtp.send_message(message, from_addr=sender, to_addrs=list(recipients))

    # -- configuration ------------------------------------------------------------------
    def _configure(self):
        database = self.modoboa.database
        values = dict(
            dict(dataclasses.asdict(self.ports)),
            dir=self.dir,
            host=HOST,
            hostname=HOSTNAME,
            uid=MAIL_UID,
            dsn=database.dsn(),
            mail=self.dir / "mail",
            doveadm_key=self.doveadm_key,
            dovecot_run=self.dovecot_run,
        )
        for sub in (
            "postfix",
            "queue",
            "postfix-data",
            "dovecot/state",
            "logs",
            "mail",
            "sink",
        ):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        postfix = self.dir / "postfix"
        (postfix / "main.cf").write_text(MAIN_CF.format(**values))
        (postfix / "master.cf").write_text(SERVICES.format(**values))
        for name, query in POSTFIX_MAPS.items():
            (postfix / name).write_text(
                f"hosts = {database.url()}\nuser = {database.pg['user']}\n"
                f"dbname = {database.name}\nquery = {query}\n"
            )
        self.dovecot_run.mkdir(mode=0o755, exist_ok=True)
        (self.dir / "opendkim").mkdir(exist_ok=True)
        (self.dir / "opendkim" / "opendkim.conf").write_text(OPENDKIM_CONF.format(**values))
        self._dkim_tables()
        dovecot = self.dir / "dovecot"
        (dovecot / "dovecot.conf").write_text(DOVECOT_CONF.format(**values))
        (dovecot / "sql.conf.ext").write_text(DOVECOT_SQL.format(**values))
        (dovecot / "dict.conf.ext").write_text(DOVECOT_DICT.format(**values))
        for path in (dovecot / "sql.conf.ext", dovecot / "dict.conf.ext"):
            path.chmod(0o600)
        os.chown(self.dir / "mail", MAIL_UID, MAIL_UID)
        for path in (self.sink, self.dir / "postfix-data"):
            shutil.chown(path, "postfix", "postfix")
        for path in (self.dir / "mail", self.sink):
            grant_traverse(path, "postfix")
            grant_traverse(path, "dovecot")
        grant_traverse(self.dir / "mail", MAIL_UID)
        grant_traverse(database.pg["socket_dir"], "postfix")  # its lookups run as user postfix

    def _dkim_tables(self):
        """Write OpenDKIM's tables from Modoboa's domains; whether they changed."""
        try:
            found = self.modoboa.database.psql(DKIM_QUERY)
        except ModoboaError:
            return False  # being restarted or replaced: the next round reads it
        rows = [line.split(" ", 2) for line in found.splitlines()]
        keys = "".join(f"{name} {name}:{selector}:{path}\n" for name, selector, path in rows)
        signing = "".join(f"*@{name} {name}\n" for name, _selector, _path in rows)
        table = self.dir / "opendkim" / "KeyTable"
        if table.exists() and table.read_text() == keys:
            return False
        for name, text in (("SigningTable", signing), ("KeyTable", keys)):
            path = self.dir / "opendkim" / name
            path.with_suffix(".tmp").write_text(text)
            path.with_suffix(".tmp").replace(path)
        return True

    def _follow_dkim(self, stopped):
        """Keep OpenDKIM's tables what Modoboa's database says (twice a
        second), and have it read them again when they change."""
        while not stopped.wait(0.5):
            proc = self.procs.get("opendkim")
            if proc is not None and self._dkim_tables():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGUSR1)

    # -- run / stop ---------------------------------------------------------------------
    def start(self, timeout=30):
        ensure_installed()
        self.stop()
        self._configure()
        deadline = time.monotonic() + timeout
        logs = self.dir / "logs"
        self.procs["sink"] = _spawn(
            [
                "smtp-sink",
                "-u",
                "postfix",
                "-R",
                str(self.sink),
                "-d",
                "%Y%m%d%H/%M.",
                f"{HOST}:{self.ports.sink}",
                "20",
            ],
            logs / "sink.log",
        )
        self.procs["policy"] = _spawn(
            [
                str(self.modoboa.python),
                "manage.py",
                "policy_daemon",
                "--host",
                HOST,
                "--port",
                str(self.ports.policy),
            ],
            logs / "policy.log",
            cwd=self.modoboa.instance_dir / "instance",
            env=self.modoboa.server_env(),
        )
        self.procs["dovecot"] = _spawn(
            ["dovecot", "-F", "-c", str(self.dir / "dovecot" / "dovecot.conf")], logs / "dovecot.out"
        )
        self.procs["opendkim"] = _spawn(
            ["opendkim", "-f", "-x", str(self.dir / "opendkim" / "opendkim.conf")], logs / "opendkim.log"
        )
        self._stopped = threading.Event()
        threading.Thread(target=self._follow_dkim, args=(self._stopped,), daemon=True).start()
        _run(["postfix", "-c", str(self.dir / "postfix"), "start"], "starting Postfix")
        try:
            for name, port in (
                ("the sink", self.ports.sink),
                ("Dovecot (IMAP)", self.ports.imap),
                ("Dovecot (LMTP)", self.ports.lmtp),
                ("Dovecot (quota status)", self.ports.quota),
                ("Postfix", self.ports.smtp),
                ("Postfix (submission)", self.ports.submission),
                ("the policy daemon", self.ports.policy),
                ("OpenDKIM", self.ports.dkim),
            ):
                self._wait_port(name, port, deadline)
        except BaseException:
            self.stop()
            raise
        (self.dir / "run.json").write_text(
            json.dumps({name: [proc.pid, " ".join(proc.args[-3:])] for name, proc in self.procs.items()})
        )
        return self

    def _wait_port(self, name, port, deadline):
        while True:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((HOST, port)) == 0:
                    return
            dead = [n for n, proc in self.procs.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise DevError(
                    f"the mail server did not start: {name} is not answering on {HOST}:{port}"
                    + (f" ({', '.join(dead)} exited)" if dead else "")
                    + f"; logs in {self.dir / 'logs'}"
                )
            time.sleep(0.05)

    def stop(self):
        """Stop what it started, or what an interrupted run of it left (by
        the pids of ``run.json``, each checked against its command line)."""
        if getattr(self, "_stopped", None) is not None:
            self._stopped.set()
        if (self.dir / "postfix" / "main.cf").exists():
            subprocess.run(
                ["postfix", "-c", str(self.dir / "postfix"), "stop"],
                capture_output=True,
                check=False,
                timeout=60,
            )
        for proc in self.procs.values():
            stop_process(proc)
        self.procs = {}
        run_file = self.dir / "run.json"
        if run_file.exists():
            for pid, marker in json.loads(run_file.read_text()).values():
                if marker in _cmdline(pid):
                    stop_pid_group(pid)
            run_file.unlink()
        shutil.rmtree(self.dovecot_run, ignore_errors=True)


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _spawn(cmd, log, cwd=None, env=None):
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,  # Dovecot keeps its caller's stderr open: its own session
        )


def _run(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if proc.returncode:
        raise DevError(f"{what} failed: {(proc.stdout + proc.stderr).decode(errors='replace')[-600:]}")
