"""Real mail for the tests: the Postfix and Dovecot that ``./dev test`` starts
next to its Modoboa (devtools/mailstack.py), spoken to over SMTP, submission
and IMAP as a sender and a mail client would."""

import email
import email.policy
import imaplib
import os
import smtplib
import subprocess
import time
import unittest
import uuid
from email.message import EmailMessage

SMTP = os.environ.get("FAYVAD_TEST_SMTP")
SUBMISSION = os.environ.get("FAYVAD_TEST_SUBMISSION")
IMAP = os.environ.get("FAYVAD_TEST_IMAP")
DOVECOT_CONF = os.environ.get("FAYVAD_TEST_DOVECOT_CONF")
DOVEADM_URL = os.environ.get("FAYVAD_TEST_DOVEADM_URL")
DOVEADM_KEY = os.environ.get("FAYVAD_TEST_DOVEADM_KEY")
SINK = os.environ.get("FAYVAD_TEST_MAIL_SINK")
# Postfix hands mail to Dovecot in the background (its queue): allow for it.
DELIVERY_WAIT = 30


def _address(value):
    host, port = value.rsplit(":", 1)
    return host, int(port)


class RealMail:
    """Mix into a test case (``setup_mail`` in ``setUpClass``)."""

    @classmethod
    def setup_mail(cls):
        if not (SMTP and IMAP and SUBMISSION):
            if os.environ.get("FAYVAD_TEST_REQUIRE_MODOBOA"):
                raise AssertionError("FAYVAD_TEST_SMTP is not set: ./dev test starts Postfix and Dovecot")
            raise unittest.SkipTest("needs the Postfix and Dovecot of ./dev test (FAYVAD_TEST_SMTP)")

    # -- sending --------------------------------------------------------------------------
    @staticmethod
    def message(to, subject=None, body="Hello from the tests.\n", sender="someone@outside.example", size=0):
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        msg["Subject"] = subject or f"test {uuid.uuid4().hex[:12]}"
        msg["Message-ID"] = f"<{uuid.uuid4().hex}@tests.fayvad>"
        msg.set_content(body + ("x" * 76 + "\n") * (size // 77))
        return msg

    def deliver(self, to, subject=None, **kwargs):
        """Send a message to ``to`` as another mail server would (port 25, no
        login); its subject. Refusals raise smtplib's errors."""
        msg = self.message(to, subject, **kwargs)
        with smtplib.SMTP(*_address(SMTP), local_hostname="mx.outside.example", timeout=60) as smtp:
            smtp.send_message(msg)
        return msg["Subject"]

    def submit(self, login, password, to, subject=None):
        """Send a message as ``login``'s mail client does (submission, AUTH)."""
        msg = self.message(to, subject, sender=login)
        with smtplib.SMTP(*_address(SUBMISSION), local_hostname="client.example", timeout=60) as smtp:
            smtp.login(login, password)
            smtp.send_message(msg)
        return msg

    def smtp_login_refused(self, login, password):
        with smtplib.SMTP(*_address(SUBMISSION), local_hostname="client.example", timeout=60) as smtp:
            try:
                smtp.login(login, password)
            except smtplib.SMTPAuthenticationError:
                return True
        return False

    # -- reading --------------------------------------------------------------------------
    def imap_login_refused(self, login, password):
        imap = imaplib.IMAP4(*_address(IMAP), timeout=60)
        try:
            imap.login(login, password)
        except imaplib.IMAP4.error:
            return True
        finally:
            imap.shutdown()
        return False

    def inbox(self, login, password):
        """The messages in ``login``'s INBOX, read over IMAP with ``password``."""
        imap = imaplib.IMAP4(*_address(IMAP), timeout=60)
        try:
            imap.login(login, password)
            imap.select("INBOX", readonly=True)
            _status, data = imap.search(None, "ALL")
            messages = []
            for num in data[0].split():
                _status, parts = imap.fetch(num, "(RFC822)")
                messages.append(email.message_from_bytes(parts[0][1], policy=email.policy.default))
            return messages
        finally:
            imap.logout()

    def subjects(self, login, password):
        return sorted(str(m["Subject"]) for m in self.inbox(login, password))

    def wait_for_subjects(self, login, password, subjects, timeout=DELIVERY_WAIT):
        """Wait until every one of ``subjects`` is in the INBOX; the subjects there."""
        deadline = time.monotonic() + timeout
        while True:
            have = self.subjects(login, password)
            if set(subjects) <= set(have) or time.monotonic() > deadline:
                self.assertLessEqual(set(subjects), set(have), f"not delivered to {login} in {timeout} s")
                return have
            time.sleep(0.1)

    def stored_subjects(self, email_address):
        """What Dovecot holds for the mailbox, whatever its login (doveadm)."""
        out = self.doveadm("fetch", "-u", email_address, "hdr.subject", "mailbox", "*", "all")
        return sorted(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("hdr.subject:")
        )

    def wait_until_stored(self, email_address, subjects, timeout=DELIVERY_WAIT):
        deadline = time.monotonic() + timeout
        while True:
            have = self.stored_subjects(email_address)
            if set(subjects) <= set(have) or time.monotonic() > deadline:
                self.assertLessEqual(set(subjects), set(have), f"not stored for {email_address}")
                return have
            time.sleep(0.1)

    def dovecot_bytes(self, email_address):
        """What the mailbox holds, as Dovecot's own command line counts it."""
        out = self.doveadm("mailbox", "status", "-u", email_address, "-t", "vsize", "*")
        return int(out.strip().split("=", 1)[1])

    @staticmethod
    def doveadm(*args):
        proc = subprocess.run(
            ["doveadm", "-c", DOVECOT_CONF, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode and "doesn't exist" not in proc.stderr:
            raise AssertionError(f"doveadm {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    @staticmethod
    def sink_raw(subject, timeout=DELIVERY_WAIT):
        """The bytes of the message with ``subject`` that left for another
        domain (the sink writes each as it arrives); None if none did."""
        deadline = time.monotonic() + timeout
        while True:
            for root, _dirs, files in os.walk(SINK):
                for name in files:
                    with open(os.path.join(root, name), "rb") as fh:
                        raw = fh.read()
                    if f"Subject: {subject}".encode() in raw:
                        return raw
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    @staticmethod
    def sink_messages():
        """The messages that left for other domains (the sink of ./dev test)."""
        messages = []
        for root, _dirs, files in os.walk(SINK):
            for name in files:
                with open(os.path.join(root, name), "rb") as fh:
                    messages.append(email.message_from_bytes(fh.read(), policy=email.policy.default))
        return messages
