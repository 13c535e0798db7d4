"""Modoboa 2.x backend (REST API v2, ``Authorization: Token``).

Facts this relies on (measured on Modoboa 2.12, see MODOBOA-NOTES.md and
tests/data/modoboa/NOTES.md):

- quotas are whole MB, sent as numbers and returned as strings; ``0`` means
  unlimited;
- ``?search=`` matches substrings (accounts) or prefixes (domains), so every
  lookup filters the results on the exact name;
- lists are paginated (``count``/``next``/``results``), except a domain's
  ``administrators/``;
- create answers omit the DKIM key (GET the domain again), ``full_address``
  and ``quota_usage``;
- ``DELETE`` does not delete, ``POST .../delete/`` does; deleting a domain
  leaves its accounts behind, so they are deleted first;
- ``mailbox.quota_usage`` is a whole percent of the quota, truncated: the
  bytes used are known to 1% of the quota only (see ``_mailbox``).
"""

import html
import re

from ..units import MB
from . import register
from .base import (
    UNCHANGED,
    MailServerClient,
    NotFound,
    Refused,
    RemoteAlias,
    RemoteDomain,
    RemoteDomainAlias,
    RemoteMailbox,
)

PAGE_SIZE = 100
MAX_PAGES = 1000  # 100,000 objects: a guard against a server that never ends its list
API = "/api/v2"
_TAGS = re.compile(r"<[^>]+>")


def _int(value):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _flatten(value, prefix=""):
    """Modoboa's error bodies as ``field: message`` strings."""
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            inner = "" if key in ("detail", "error", "non_field_errors") else f"{prefix}{key}"
            parts += _flatten(item, f"{inner}." if inner else "")
        return parts
    if isinstance(value, list):
        return [part for item in value for part in _flatten(item, prefix)]
    text = str(value)
    return [f"{prefix[:-1]}: {text}" if prefix else text]


@register("modoboa")
class ModoboaClient(MailServerClient):
    def _headers(self):
        return {"Authorization": f"Token {self._token}", "Accept": "application/json"}

    def _error_reason(self, response):
        """Modoboa answers ``{"error": ...}``, ``{"detail": ...}`` or field
        errors ``{"field": ["message"]}``; Django-level errors (production
        500, bad Host) are HTML pages."""
        try:
            data = response.json()
        except ValueError:
            text = " ".join(html.unescape(_TAGS.sub(" ", response.text or "")).split())
            return f"HTTP {response.status_code}" + (f": {text[:120]}" if text else "")
        return " | ".join(_flatten(data)) or f"HTTP {response.status_code}"

    def _gone_or(self, shape, method, path, payload=None):
        """``method path``, its answer shaped by ``shape``; None when the
        object is not (or no longer) on the server: deleting what is gone
        succeeds, reading it finds nothing."""
        try:
            answer = self._request(method, path, payload)
        except NotFound:
            return None
        return shape(answer) if shape else None

    def _pages(self, path, params=None):
        """Every object of a list, page after page."""
        params = dict(params or {}, page_size=PAGE_SIZE)
        for page in range(1, MAX_PAGES + 1):
            data = self._request("GET", path, params=dict(params, page=page))
            if isinstance(data, list):  # an unpaginated answer
                yield from data
                return
            results = (data or {}).get("results") or []
            yield from results
            if not data.get("next") or not results:
                return

    # -- domains -------------------------------------------------------------------------
    @staticmethod
    def _domain(data):
        return RemoteDomain(
            id=data["pk"],
            name=data["name"],
            enabled=bool(data.get("enabled")),
            quota_mb=_int(data.get("quota")),
            default_mailbox_quota_mb=_int(data.get("default_mailbox_quota")),
            dkim_enabled=bool(data.get("enable_dkim")),
            dkim_public_key=data.get("dkim_public_key") or "",
            dkim_selector=data.get("dkim_key_selector") or "",
        )

    def check(self):
        self._request("GET", f"{API}/domains/", params={"page_size": 1})

    def list_domains(self):
        return list(self.iter_domains())

    def iter_domains(self):
        for data in self._pages(f"{API}/domains/"):
            yield self._domain(data)

    def find_domain(self, name):
        name = name.lower()
        for data in self._pages(f"{API}/domains/", {"search": name}):
            if data.get("name") == name:
                return self._domain(data)
        return None

    def get_domain(self, domain_id):
        return self._domain(self._request("GET", f"{API}/domains/{domain_id}/"))

    def ensure_domain(self, name, quota_mb, default_mailbox_quota_mb, enabled=True):
        remote = self.find_domain(name)
        if remote is None:
            remote = self._create_domain(name, quota_mb, default_mailbox_quota_mb, enabled)
        if not remote.dkim_enabled:
            # Modoboa generates the key when DKIM is switched on
            self._request("PATCH", f"{API}/domains/{remote.id}/", {"enable_dkim": True})
        if not remote.dkim_public_key:
            remote = self.get_domain(remote.id)  # create/PATCH answers show no key
        return remote

    def _create_domain(self, name, quota_mb, default_mailbox_quota_mb, enabled):
        payload = {
            "name": name,
            "type": "domain",
            "enabled": bool(enabled),
            "quota": int(quota_mb),
            "default_mailbox_quota": int(default_mailbox_quota_mb),
            "enable_dkim": True,
        }
        try:
            return self._domain(self._request("POST", f"{API}/domains/", payload))
        except Refused:
            remote = self.find_domain(name)  # created by an earlier attempt whose answer was lost
            if remote is None:
                raise
            return remote

    def update_domain(self, domain_id, quota_mb=None, default_mailbox_quota_mb=None, enabled=None):
        payload = {}
        if quota_mb is not None:
            payload["quota"] = int(quota_mb)
        if default_mailbox_quota_mb is not None:
            payload["default_mailbox_quota"] = int(default_mailbox_quota_mb)
        if enabled is not None:
            payload["enabled"] = bool(enabled)
        if payload:
            self._request("PATCH", f"{API}/domains/{domain_id}/", payload)

    def delete_domain(self, domain_id):
        self._gone_or(None, "POST", f"{API}/domains/{domain_id}/delete/", {"keep_folder": False})

    def list_domain_admins(self, domain_id):
        admins = self._request("GET", f"{API}/domains/{domain_id}/administrators/") or []
        return [(admin["id"], admin.get("username") or "") for admin in admins]

    def ensure_domain_admin(self, domain, username, password):
        """The administrator is a login without a mailbox: it holds no mail
        and takes nothing of the domain quota. The v2 API ignores a
        ``domains`` list on account creation, hence ``administrators/add``."""
        username = username.lower()
        remote = self.find_domain(domain)
        if remote is None:
            raise NotFound(f"the domain {domain} does not exist on the mail server")
        for admin_id, admin_name in self.list_domain_admins(remote.id):
            if admin_name == username:
                return admin_id
        account = self._find_account(username)
        if account is None:
            payload = {"username": username, "role": "DomainAdmins", "password": password}
            try:
                account = self._request("POST", f"{API}/accounts/", payload)
            except Refused:
                account = self._find_account(username)  # an earlier attempt created it
                if account is None:
                    raise
        elif account.get("mailbox"):
            raise Refused(f"{username} is a mailbox on the mail server, not an administrator login")
        self._request("POST", f"{API}/domains/{remote.id}/administrators/add/", {"account": account["pk"]})
        return account["pk"]

    # -- accounts and mailboxes -----------------------------------------------------------------
    @staticmethod
    def _mailbox(data, created=False):
        """``quota_usage`` is int(bytes * 100 / quota): the usage is known
        to be in [p%, p+1%) of the quota. We report the lower bound, so a
        figure is never above what the mailbox holds and is short of it by
        less than 1% of the quota (under 10.5 MB for a 1 GiB mailbox)."""
        mailbox = data.get("mailbox") or {}
        quota_mb = _int(mailbox.get("quota"))
        usage = mailbox.get("quota_usage")
        used = None
        if usage is not None and quota_mb:
            used = _int(usage) * quota_mb * MB // 100
        return RemoteMailbox(
            id=data["pk"],
            email=(mailbox.get("full_address") or data.get("username") or "").lower(),
            active=bool(data.get("is_active")),
            quota_mb=quota_mb,
            used_bytes=used,
            usage_percent=None if usage is None else _int(usage),
            is_domain_admin=data.get("role") == "DomainAdmins",
            has_mailbox=bool(data.get("mailbox")),
            created=created,
            message_limit=mailbox.get("message_limit"),
        )

    def _find_account(self, username):
        """The account whose login is exactly ``username`` (the search also
        returns every address that merely contains it)."""
        username = username.lower()
        for data in self._pages(f"{API}/accounts/", {"search": username}):
            if (data.get("username") or "").lower() == username:
                return data
        return None

    def find_mailbox(self, email):
        data = self._find_account(email)
        return self._mailbox(data) if data else None

    def get_mailbox(self, mailbox_id):
        return self._mailbox(self._request("GET", f"{API}/accounts/{mailbox_id}/"))

    def ensure_mailbox(self, email, password, quota_mb, first_name="", last_name=""):
        email = email.lower()
        existing = self._find_account(email)
        if existing is None:
            payload = {
                "username": email,
                "role": "SimpleUsers",
                "password": password,
                "first_name": first_name or "",
                "last_name": last_name or "",
                "mailbox": {"use_domain_quota": False, "quota": int(quota_mb)},
            }
            try:
                return self._mailbox(self._request("POST", f"{API}/accounts/", payload), created=True)
            except Refused:
                existing = self._find_account(email)  # an earlier attempt created it
                if existing is None:
                    raise
        remote = self._mailbox(existing)
        if not remote.has_mailbox:
            raise Refused(f"{email} exists on the mail server as a login without a mailbox")
        return remote

    def update_mailbox(self, mailbox_id, quota_mb=None, active=None, password=None, message_limit=UNCHANGED):
        payload = {}
        if quota_mb is not None:
            payload["mailbox"] = {"quota": int(quota_mb), "use_domain_quota": False}
        if message_limit is not UNCHANGED:
            payload.setdefault("mailbox", {})["message_limit"] = message_limit
        if active is not None:
            payload["is_active"] = bool(active)
        if password is not None:
            payload["password"] = password
        if payload:
            answer = self._request("PATCH", f"{API}/accounts/{mailbox_id}/", payload)
            if active is not None:
                self._keep_own_delivery((answer or {}).get("username") or self.get_mailbox(mailbox_id).email)

    def _keep_own_delivery(self, email):
        """Keep the mailbox's own address delivering to it, whatever its login.

        Disabling an account makes Modoboa disable the aliases whose only
        recipient it is, its hidden self-alias included, and enabling it
        again restores none of them; the admin API cannot reach the hidden
        one. Its mail would then go to the domain's catch-all, or bounce. A
        visible alias from the address to itself does the hidden one's work,
        and this client turns it back on after each change of login."""
        email = email.lower()
        own = self.find_alias(email)
        if own is None:
            self._create_alias(email, [email])
        elif not own.enabled and email in own.recipients:
            self.update_alias(own.id, email, own.recipients, True, own.description, own.expire_at)

    def delete_mailbox(self, mailbox_id):
        self._gone_or(None, "POST", f"{API}/accounts/{mailbox_id}/delete/", {"keepdir": False})

    def list_mailboxes(self, domain_id, usage=True):
        params = {"domain": domain_id, "ordering": "username"}
        mailboxes = [self._mailbox(d) for d in self._pages(f"{API}/accounts/", params) if d.get("mailbox")]
        if usage and self.storage is not None and mailboxes:  # the bytes, as Dovecot counts them
            used = self.storage.used_bytes(mailbox.email for mailbox in mailboxes)
            for mailbox in mailboxes:
                mailbox.used_bytes = used.get(mailbox.email, 0)
        return mailboxes

    # -- aliases (catch-alls and forwards are aliases) -------------------------------------------------
    @staticmethod
    def _alias(data, created=False):
        return RemoteAlias(
            id=data["pk"],
            address=(data.get("address") or "").lower(),
            enabled=bool(data.get("enabled")),
            recipients=tuple(sorted(r.lower() for r in data.get("recipients") or ())),
            description=data.get("description") or "",
            expire_at=(data.get("expire_at") or None) and data["expire_at"][:10],
            created=created,
        )

    @staticmethod
    def _alias_payload(address, recipients, enabled, description, expire_at):
        return {
            "address": address,
            "recipients": list(recipients),
            "enabled": bool(enabled),
            "description": description or "",
            "expire_at": f"{expire_at}T23:59:59Z" if expire_at else None,
        }

    def find_alias(self, address):
        address = address.lower()
        for data in self._pages(f"{API}/aliases/", {"search": address}):
            if (data.get("address") or "").lower() == address:
                return self._alias(data)
        return None

    def get_alias(self, alias_id):
        return self._gone_or(self._alias, "GET", f"{API}/aliases/{alias_id}/")

    def list_aliases(self, domain_name):
        """The domain's aliases, without the mailboxes' own deliveries (an
        address to itself, see ``_keep_own_delivery``): those are part of
        their mailbox, as Modoboa's hidden self-aliases are."""
        aliases = [self._alias(d) for d in self._pages(f"{API}/aliases/", {"domain": domain_name})]
        return [alias for alias in aliases if alias.recipients != (alias.address,)]

    def ensure_alias(self, address, recipients, enabled=True, description="", expire_at=None):
        existing = self.find_alias(address)
        if existing is not None:
            return existing
        return self._create_alias(address, recipients, enabled, description, expire_at)

    def _create_alias(self, address, recipients, enabled=True, description="", expire_at=None):
        """Create an alias known not to exist (one an earlier attempt created is found)."""
        payload = self._alias_payload(address.lower(), recipients, enabled, description, expire_at)
        try:
            return self._alias(self._request("POST", f"{API}/aliases/", payload), created=True)
        except Refused:
            existing = self.find_alias(address)  # an earlier attempt created it
            if existing is None:
                raise
            return existing

    def update_alias(self, alias_id, address, recipients, enabled=True, description="", expire_at=None):
        payload = self._alias_payload(address.lower(), recipients, enabled, description, expire_at)
        self._request("PUT", f"{API}/aliases/{alias_id}/", payload)

    def delete_alias(self, alias_id):
        """Delete the alias; a forward that keeps a copy (its address is
        among its recipients) becomes its mailbox's own delivery instead."""
        alias = self.get_alias(alias_id)
        if alias is None:
            return
        if alias.address in alias.recipients and alias.recipients != (alias.address,):
            self.update_alias(alias.id, alias.address, [alias.address], True, "", None)
            return
        self._gone_or(None, "DELETE", f"{API}/aliases/{alias_id}/")

    # -- domain aliases --------------------------------------------------------------------------
    @staticmethod
    def _domain_alias(data, created=False):
        target = data.get("target")
        return RemoteDomainAlias(
            id=data["pk"],
            name=(data.get("name") or "").lower(),
            target_id=target.get("pk") if isinstance(target, dict) else target,
            enabled=bool(data.get("enabled")),
            created=created,
        )

    def _all_domain_aliases(self, params=None):
        return [self._domain_alias(d) for d in self._pages(f"{API}/domainaliases/", params)]

    def find_domain_alias(self, name):
        name = name.lower()
        found = [alias for alias in self._all_domain_aliases() if alias.name == name]
        return found[0] if found else None

    def get_domain_alias(self, alias_id):
        return self._gone_or(self._domain_alias, "GET", f"{API}/domainaliases/{alias_id}/")

    def list_domain_aliases(self, domain_name):
        return self._all_domain_aliases({"domain": domain_name})

    def ensure_domain_alias(self, name, target_id, enabled=True):
        existing = self.find_domain_alias(name)
        if existing is not None:
            return existing
        payload = {"name": name.lower(), "target": target_id, "enabled": bool(enabled)}
        try:
            return self._domain_alias(self._request("POST", f"{API}/domainaliases/", payload), created=True)
        except Refused:
            existing = self.find_domain_alias(name)  # an earlier attempt created it
            if existing is None:
                raise
            return existing

    def update_domain_alias(self, alias_id, name, target_id, enabled=True):
        payload = {"name": name.lower(), "target": target_id, "enabled": bool(enabled)}
        self._request("PUT", f"{API}/domainaliases/{alias_id}/", payload)

    def delete_domain_alias(self, alias_id):
        self._gone_or(None, "DELETE", f"{API}/domainaliases/{alias_id}/")
