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
MAX_REASON = 500


class MailServerError(Exception):
    """A mail-server call that did not succeed. ``retryable`` says whether
    trying again later may help (timeouts, outages) or not (a refusal);
    ``reason`` is the server's own explanation when it gave one."""

    retryable = True

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason or message


class Unavailable(MailServerError):
    """Down, unreachable, too slow, throttling or failing internally: retry later."""

    retryable = True


class Refused(MailServerError):
    """The server understood and refused the request: retrying won't help."""

    retryable = False


class NotFound(Refused):
    """The object does not exist on the server."""


class BudgetSpent(Unavailable):
    """The caller's time budget ran out before the work was done (an API
    request that waits for the mail server): carry on later, at once."""


UNCHANGED = object()  # update_mailbox(): leave this value as it is


@dataclass
class RemoteDomain:
    id: int
    name: str
    enabled: bool
    quota_mb: int
    default_mailbox_quota_mb: int
    dkim_enabled: bool = False
    dkim_public_key: str = ""
    dkim_selector: str = ""


@dataclass
class RemoteMailbox:
    """An account of the mail server (a login), with its mailbox when it
    has one. ``used_bytes`` is None when the server did not tell."""

    id: int
    email: str
    active: bool
    quota_mb: int
    used_bytes: int | None = None
    usage_percent: int | None = None
    is_domain_admin: bool = False
    has_mailbox: bool = True
    created: bool = False  # True when ensure_mailbox() created it in this call
    message_limit: int | None = None  # messages it may send per day (None: no limit)


@dataclass
class RemoteDomainAlias:
    """Another domain name delivering to a domain of the server."""

    id: int
    name: str
    target_id: int
    enabled: bool
    created: bool = False


@dataclass
class RemoteAlias:
    """An alias of the mail server: ``name@domain`` (``@domain`` for a
    catch-all) delivering to ``recipients``."""

    id: int
    address: str
    enabled: bool
    recipients: tuple = ()
    description: str = ""
    expire_at: str | None = None
    created: bool = False  # True when ensure_alias() created it in this call


def redact(value):
    """A copy of a JSON-like value with every secret-looking field masked."""
    if isinstance(value, dict):
        return {k: ("***" if SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def secret_values(value):
    """The values of the secret-looking fields of a JSON-like value."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if SECRET_KEYS.search(str(key)) and isinstance(item, str) and item:
                found.append(item)
            else:
                found += secret_values(item)
    elif isinstance(value, list):
        for item in value:
            found += secret_values(item)
    return found


class HttpClient:
    """An HTTP API of the mail system, called through ``_request``."""

    def __init__(self, url, token, timeout, deadline=None):
        self.url = (url or "").rstrip("/")
        self._token = token or ""
        self.timeout = timeout
        self.deadline = deadline  # time.monotonic() by which every call must be over (None: no limit)
        self._session = requests.Session()

    def __repr__(self):  # never show the token
        return f"<{type(self).__name__} {self.url}>"

    # -- the one request method ----------------------------------------------------
    def _headers(self):
        raise NotImplementedError

    def _error_reason(self, response):
        """A short reason from an error response (JSON detail or status)."""
        try:
            data = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        return json.dumps(data, ensure_ascii=False)

    def _scrub(self, text, payload=None):
        """``text`` without the token or any secret of ``payload``."""
        for secret in [self._token, *secret_values(payload)]:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _request(self, method, path, payload=None, params=None, expect=(200, 201, 202, 204)):
        """Send one request; return its decoded JSON (or None when empty).

        - timeouts, connection errors, 5xx and 429 answers raise
          :class:`Unavailable` (retry later);
        - 404 raises :class:`NotFound`; other 4xx and 3xx raise
          :class:`Refused` with the server's reason.

        Bodies are logged (debug) with secrets masked; the token and the
        passwords sent never reach a log line or an error message.
        """
        if not self.url:
            raise Refused("the mail server has no URL configured")
        url = f"{self.url}{path}"
        timeout = self._timeout_now(method, path)
        started = time.monotonic()
        if _logger.isEnabledFor(logging.DEBUG):
            body = self._scrub(json.dumps(redact(payload)), payload)[:MAX_LOGGED_BODY]
            _logger.debug("mail server %s %s params=%s body=%s", method, path, params, body)
        try:
            response = self._session.request(
                method,
                url,
                json=payload,
                params=params,
                headers=self._headers(),
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as exc:
            if self.deadline is not None and time.monotonic() >= self.deadline - 0.05:
                raise BudgetSpent(f"{method} {path}: the time budget ran out while waiting") from exc
            raise Unavailable(f"{method} {path}: no answer within {timeout[1]:g}s") from exc
        except requests.exceptions.ConnectionError as exc:
            raise Unavailable(f"{method} {path}: cannot connect to {self.url}") from exc
        except requests.exceptions.RequestException as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__}") from exc
        elapsed = (time.monotonic() - started) * 1000
        status = response.status_code
        _logger.info("mail server %s %s -> %s (%.0f ms)", method, path, status, elapsed)
        if status in expect:
            return self._decode(method, path, response, payload)
        reason = self._scrub(self._error_reason(response), payload)[:MAX_REASON]
        _logger.info("mail server %s %s refused: %s", method, path, reason)
        if status == 429 or status >= 500:
            raise Unavailable(f"{method} {path}: HTTP {status}: {reason}", status=status, reason=reason)
        if status == 404:
            raise NotFound(f"{method} {path}: not found ({reason})", status=status, reason=reason)
        if status in (401, 403):
            raise Refused(
                f"{method} {path}: the mail server refused the token (HTTP {status})",
                status=status,
                reason=reason,
            )
        raise Refused(f"{method} {path}: {reason}", status=status, reason=reason)

    def _decode(self, method, path, response, payload):
        if not response.content:
            return None
        try:
            data = response.json()
        except ValueError as exc:
            raise Unavailable(f"{method} {path}: the answer is not JSON") from exc
        if _logger.isEnabledFor(logging.DEBUG):
            body = self._scrub(json.dumps(redact(data)), payload)[:MAX_LOGGED_BODY]
            _logger.debug("mail server answer %s", body)
        return data

    def _timeout_now(self, method, path):
        """(connect, read) timeouts for a call starting now: the configured
        ones, cut to what is left of the deadline, so that a caller with a
        budget never waits beyond it, however many calls a step makes."""
        connect, read = self.timeout if isinstance(self.timeout, tuple | list) else (self.timeout,) * 2
        if self.deadline is None:
            return connect, read
        left = self.deadline - time.monotonic()
        if left <= 0.05:
            raise BudgetSpent(f"{method} {path}: not sent, the time budget is spent")
        return min(connect, left), min(read, left)


class MailServerClient(HttpClient):
    """Base of the backends. Every ``ensure_*``/``delete_*`` method is
    idempotent: repeating a call that already took effect on the server
    succeeds and changes nothing. ``storage`` (a DovecotStorage), when
    given, tells each mailbox's bytes in place of the server's figure."""

    def __init__(self, url, token, timeout, deadline=None, storage=None):
        super().__init__(url, token, timeout, deadline=deadline)
        self.storage = storage

    # -- the interface ---------------------------------------------------------------
    def check(self):
        """Raise unless the server answers with the configured token."""
        raise NotImplementedError

    def list_domains(self):
        """Every domain: list of RemoteDomain."""
        raise NotImplementedError

    def iter_domains(self):
        """Every domain, RemoteDomain after RemoteDomain, as the server's pages come."""
        yield from self.list_domains()

    def find_domain(self, name):
        """RemoteDomain with exactly this name, or None."""
        raise NotImplementedError

    def ensure_domain(self, name, quota_mb, default_mailbox_quota_mb, enabled=True):
        """Create the domain (DKIM on; ``enabled``: it receives mail) unless it
        exists; RemoteDomain. The DKIM key may still be empty when the
        server generates it later."""
        raise NotImplementedError

    def update_domain(self, domain_id, quota_mb=None, default_mailbox_quota_mb=None, enabled=None):
        raise NotImplementedError

    def delete_domain(self, domain_id):
        """Delete the domain (its accounts must be gone first); no error if absent."""
        raise NotImplementedError

    def ensure_domain_admin(self, domain, username, password):
        """Create the domain's administrator login (no mailbox) unless it
        exists, and make it administer ``domain``; returns its id."""
        raise NotImplementedError

    def list_domain_admins(self, domain_id):
        """The administrators of a domain: list of (id, username)."""
        raise NotImplementedError

    def find_mailbox(self, email):
        """RemoteMailbox whose login is exactly ``email``, or None."""
        raise NotImplementedError

    def get_mailbox(self, mailbox_id):
        """RemoteMailbox of that id (the one Odoo created); NotFound when it is gone."""
        raise NotImplementedError

    def ensure_mailbox(self, email, password, quota_mb, first_name="", last_name=""):
        """Create the mailbox unless it exists; RemoteMailbox (``created``
        tells whether this call created it)."""
        raise NotImplementedError

    def update_mailbox(self, mailbox_id, quota_mb=None, active=None, password=None, message_limit=UNCHANGED):
        """Change what is given; ``message_limit=None`` removes the daily sending limit."""
        raise NotImplementedError

    def delete_mailbox(self, mailbox_id):
        """Delete the account and its mailbox; no error if already gone."""
        raise NotImplementedError

    def list_mailboxes(self, domain_id, usage=True):
        """The mailboxes of a domain (by the server's domain id), with
        used_bytes when the server tells (and ``usage``): list of RemoteMailbox."""
        raise NotImplementedError

    def find_alias(self, address):
        """RemoteAlias whose address is exactly ``address``, or None."""
        raise NotImplementedError

    def get_alias(self, alias_id):
        """RemoteAlias of that id (the one Odoo created), or None when it is gone."""
        raise NotImplementedError

    def list_aliases(self, domain_name):
        """The aliases of a domain (catch-all and forwards included): list of RemoteAlias."""
        raise NotImplementedError

    def ensure_alias(self, address, recipients, enabled=True, description="", expire_at=None):
        """Create the alias unless it exists; RemoteAlias (``created`` tells
        whether this call created it, else it is as found)."""
        raise NotImplementedError

    def update_alias(self, alias_id, address, recipients, enabled=True, description="", expire_at=None):
        """Set every field of the alias."""
        raise NotImplementedError

    def delete_alias(self, alias_id):
        """Delete the alias; no error if already gone."""
        raise NotImplementedError

    def find_domain_alias(self, name):
        """RemoteDomainAlias of exactly that name, or None."""
        raise NotImplementedError

    def get_domain_alias(self, alias_id):
        """RemoteDomainAlias of that id (the one Odoo created), or None when it is gone."""
        raise NotImplementedError

    def list_domain_aliases(self, domain_name):
        """The domain aliases pointing at that domain: list of RemoteDomainAlias."""
        raise NotImplementedError

    def ensure_domain_alias(self, name, target_id, enabled=True):
        """Create the domain alias unless it exists; RemoteDomainAlias."""
        raise NotImplementedError

    def update_domain_alias(self, alias_id, name, target_id, enabled=True):
        raise NotImplementedError

    def delete_domain_alias(self, alias_id):
        """Delete it; no error if already gone."""
        raise NotImplementedError
