"""What every mail-server backend offers, its errors, and the one method
through which every HTTP request goes."""

import json
import logging
import re
import time
from dataclasses import dataclass

import requests

_logger = logging.getLogger(__name__)

SECRET_KEYS = re.compile(r"pass(word)?|token|secret|authorization|key", re.I)
MAX_LOGGED_BODY = 2000


class MailServerError(Exception):
    """A mail-server call that did not succeed. ``retryable`` says whether
    trying again later may help (timeouts, outages) or not (a refusal)."""

    retryable = True

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class Unavailable(MailServerError):
    """Down, unreachable, too slow or failing internally: retry later."""

    retryable = True


class Refused(MailServerError):
    """The server understood and refused the request: retrying won't help."""

    retryable = False


class NotFound(Refused):
    """The object does not exist on the server."""


@dataclass
class RemoteDomain:
    id: int
    name: str
    enabled: bool
    quota_mb: int
    default_mailbox_quota_mb: int
    dkim_public_key: str = ""
    dkim_selector: str = ""


@dataclass
class RemoteMailbox:
    id: int
    email: str
    active: bool
    quota_mb: int
    used_bytes: int | None = None
    is_domain_admin: bool = False


def redact(value):
    """A copy of a JSON-like value with every secret-looking field masked."""
    if isinstance(value, dict):
        return {k: ("***" if SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class MailServerClient:
    """Base of the backends. Every method is idempotent: repeating a call
    that already took effect on the server succeeds."""

    def __init__(self, url, token, timeout):
        self.url = (url or "").rstrip("/")
        self._token = token
        self.timeout = timeout
        self._session = requests.Session()

    def __repr__(self):  # never show the token
        return f"<{type(self).__name__} {self.url}>"

    def _headers(self):
        raise NotImplementedError

    def _error_message(self, response):
        """A short reason from an error response (JSON detail or status)."""
        try:
            data = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        return json.dumps(data, ensure_ascii=False)[:500]

    def _request(self, method, path, payload=None, params=None, expect=(200, 201, 204)):
        """Send one request; return its decoded JSON (or None).

        Timeouts, connection errors and 5xx/429 answers raise
        :class:`Unavailable`; 404 raises :class:`NotFound`; other 4xx raise
        :class:`Refused` with the server's reason. Bodies are logged with
        secrets masked; the token is never logged.
        """
        if not self.url:
            raise Refused("the mail server has no URL configured")
        url = f"{self.url}{path}"
        started = time.monotonic()
        _logger.debug("mail server %s %s params=%s body=%s", method, url, params, redact(payload))
        try:
            response = self._session.request(
                method,
                url,
                json=payload,
                params=params,
                headers=self._headers(),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as exc:
            raise Unavailable(f"{method} {path}: no answer within {self.timeout[1]:g}s") from exc
        except requests.exceptions.ConnectionError as exc:
            raise Unavailable(f"{method} {path}: cannot connect to {self.url}") from exc
        except requests.exceptions.RequestException as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__}") from exc
        elapsed = (time.monotonic() - started) * 1000
        _logger.info("mail server %s %s -> %s (%.0f ms)", method, path, response.status_code, elapsed)
        if response.status_code in expect:
            if not response.content:
                return None
            try:
                data = response.json()
            except ValueError as exc:
                raise Unavailable(f"{method} {path}: the answer is not JSON") from exc
            _logger.debug("mail server answer %s", json.dumps(redact(data))[:MAX_LOGGED_BODY])
            return data
        reason = self._error_message(response)
        status = response.status_code
        if status == 429 or status >= 500:
            raise Unavailable(f"{method} {path}: {reason}", status=status)
        if status == 404:
            raise NotFound(f"{method} {path}: not found", status=status)
        if status in (401, 403):
            raise Refused(
                f"{method} {path}: the mail server refused the token (HTTP {status})", status=status
            )
        raise Refused(f"{method} {path}: {reason}", status=status)

    # -- the interface -------------------------------------------------------------
    def check(self):
        """Raise unless the server answers with the configured token."""
        raise NotImplementedError

    def find_domain(self, name):
        """RemoteDomain or None."""
        raise NotImplementedError

    def ensure_domain(self, name, quota_mb, default_mailbox_quota_mb):
        """Create the domain (enabled, DKIM on) unless it exists; RemoteDomain."""
        raise NotImplementedError

    def ensure_domain_admin(self, domain, username, password):
        """Create the domain's administrator login unless it exists."""
        raise NotImplementedError

    def update_domain(self, domain_id, **values):
        raise NotImplementedError

    def delete_domain(self, domain_id):
        """Delete the domain (its mailboxes must be gone); no error if absent."""
        raise NotImplementedError

    def list_domains(self):
        raise NotImplementedError

    def find_mailbox(self, email):
        """RemoteMailbox or None."""
        raise NotImplementedError

    def ensure_mailbox(self, email, password, quota_mb, first_name="", last_name=""):
        """Create the mailbox unless it exists; RemoteMailbox."""
        raise NotImplementedError

    def update_mailbox(self, mailbox_id, quota_mb=None, active=None, password=None):
        raise NotImplementedError

    def delete_mailbox(self, mailbox_id):
        """Delete the mailbox; no error if it is already gone."""
        raise NotImplementedError

    def list_mailboxes(self, domain=None):
        """RemoteMailbox list (with used_bytes when the server tells)."""
        raise NotImplementedError
