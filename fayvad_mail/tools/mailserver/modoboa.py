"""Modoboa 2.x backend (REST API v2, ``Authorization: Token``).

Facts this relies on (measured on Modoboa 2.12, see MODOBOA-NOTES.md and
tests/data/modoboa/): quotas are whole MB, sent as numbers and returned as
strings; ``?search=`` matches substrings, so lookups filter on the exact
name; create answers omit the DKIM key (GET again); DELETE does not delete
(``POST .../delete/`` does); deleting a domain leaves its accounts behind.
"""

from . import register
from .base import MailServerClient, NotFound, Refused, RemoteDomain, RemoteMailbox, Unavailable

PAGE_SIZE = 100
MB = 1024 * 1024


def _int(value):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


@register("modoboa")
class ModoboaClient(MailServerClient):
    def _headers(self):
        return {"Authorization": f"Token {self._token}", "Accept": "application/json"}

    def _error_message(self, response):
        try:
            data = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        if isinstance(data, dict):
            parts = []
            for key, value in data.items():
                text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
                parts.append(text if key in ("detail", "error", "non_field_errors") else f"{key}: {text}")
            return " | ".join(parts)[:500]
        return str(data)[:500]

    def _pages(self, path, params):
        params = dict(params, page_size=PAGE_SIZE)
        page = 1
        while True:
            data = self._request("GET", path, params=dict(params, page=page))
            if isinstance(data, list):  # unpaginated answer
                yield from data
                return
            yield from data.get("results", [])
            if not data.get("next"):
                return
            page += 1

    # -- domains -----------------------------------------------------------------------
    @staticmethod
    def _domain(data):
        return RemoteDomain(
            id=data["pk"],
            name=data["name"],
            enabled=bool(data.get("enabled")),
            quota_mb=_int(data.get("quota")),
            default_mailbox_quota_mb=_int(data.get("default_mailbox_quota")),
            dkim_public_key=data.get("dkim_public_key") or "",
            dkim_selector=data.get("dkim_key_selector") or "",
        )

    def check(self):
        self._request("GET", "/api/v2/domains/", params={"page_size": 1})

    def list_domains(self):
        return [self._domain(d) for d in self._pages("/api/v2/domains/", {})]

    def find_domain(self, name):
        for data in self._pages("/api/v2/domains/", {"search": name}):
            if data.get("name") == name:
                return self._domain(data)
        return None

    def get_domain(self, domain_id):
        return self._domain(self._request("GET", f"/api/v2/domains/{domain_id}/"))

    def ensure_domain(self, name, quota_mb, default_mailbox_quota_mb):
        remote = self.find_domain(name)
        if remote is None:
            payload = {
                "name": name,
                "type": "domain",
                "enabled": True,
                "quota": quota_mb,
                "default_mailbox_quota": default_mailbox_quota_mb,
                "enable_dkim": True,
            }
            try:
                created = self._request("POST", "/api/v2/domains/", payload)
            except Refused as exc:
                remote = self.find_domain(name)  # created by an earlier attempt that timed out
                if remote is None:
                    raise exc from None
            else:
                remote = self._domain(created)
        if not remote.dkim_public_key:
            remote = self._ensure_dkim(remote)
        return remote

    def _ensure_dkim(self, remote):
        """Turn DKIM on and have the key generated; the key comes on a GET."""
        data = self._request("GET", f"/api/v2/domains/{remote.id}/")
        if not data.get("enable_dkim"):
            self._request("PATCH", f"/api/v2/domains/{remote.id}/", {"enable_dkim": True})
            data = self._request("GET", f"/api/v2/domains/{remote.id}/")
        if not data.get("dkim_public_key"):
            self._request("POST", f"/api/v2/domains/{remote.id}/dkim/generate/", {})
            data = self._request("GET", f"/api/v2/domains/{remote.id}/")
        return self._domain(data)

    def ensure_domain_admin(self, domain, username, password):
        remote = self.find_domain(domain)
        if remote is None:
            raise NotFound(f"domain {domain} does not exist on the mail server")
        admins = self._request("GET", f"/api/v2/domains/{remote.id}/administrators/") or []
        if any(admin.get("username") == username for admin in admins):
            return
        account = self._find_account(username)
        if account is None:
            payload = {
                "username": username,
                "role": "DomainAdmins",
                "password": password,
                "mailbox": {"use_domain_quota": True},
            }
            try:
                account = self._request("POST", "/api/v2/accounts/", payload)
            except Refused:
                account = self._find_account(username)
                if account is None:
                    raise
        self._request("POST", f"/api/v2/domains/{remote.id}/administrators/add/", {"account": account["pk"]})

    def update_domain(self, domain_id, quota_mb=None, default_mailbox_quota_mb=None, enabled=None):
        payload = {}
        if quota_mb is not None:
            payload["quota"] = quota_mb
        if default_mailbox_quota_mb is not None:
            payload["default_mailbox_quota"] = default_mailbox_quota_mb
        if enabled is not None:
            payload["enabled"] = enabled
        self._request("PATCH", f"/api/v2/domains/{domain_id}/", payload)

    def delete_domain(self, domain_id):
        try:
            self._request("POST", f"/api/v2/domains/{domain_id}/delete/", {"keep_folder": False})
        except NotFound:
            return

    # -- mailboxes ---------------------------------------------------------------------
    @staticmethod
    def _mailbox(data):
        mailbox = data.get("mailbox") or {}
        quota_mb = _int(mailbox.get("quota"))
        usage = mailbox.get("quota_usage")
        used = None
        if usage is not None and quota_mb:
            used = round(_int(usage) * quota_mb * MB / 100)  # Modoboa tells whole percent of the quota
        return RemoteMailbox(
            id=data["pk"],
            email=mailbox.get("full_address") or data.get("username"),
            active=bool(data.get("is_active")),
            quota_mb=quota_mb,
            used_bytes=used,
            is_domain_admin=data.get("role") == "DomainAdmins",
        )

    def _find_account(self, username):
        for data in self._pages("/api/v2/accounts/", {"search": username}):
            if data.get("username") == username:
                return data
        return None

    def find_mailbox(self, email):
        data = self._find_account(email)
        return self._mailbox(data) if data else None

    def get_mailbox(self, mailbox_id):
        return self._mailbox(self._request("GET", f"/api/v2/accounts/{mailbox_id}/"))

    def ensure_mailbox(self, email, password, quota_mb, first_name="", last_name=""):
        existing = self._find_account(email)
        if existing is None:
            payload = {
                "username": email,
                "role": "SimpleUsers",
                "password": password,
                "first_name": first_name,
                "last_name": last_name,
                "mailbox": {"use_domain_quota": False, "quota": quota_mb},
            }
            try:
                self._request("POST", "/api/v2/accounts/", payload)
            except Refused:
                if self._find_account(email) is None:
                    raise
            existing = self._find_account(email)
            if existing is None:
                raise Unavailable(f"{email} was created but cannot be read back")
        return self._mailbox(existing)

    def update_mailbox(self, mailbox_id, quota_mb=None, active=None, password=None):
        payload = {}
        if quota_mb is not None:
            payload["mailbox"] = {"quota": quota_mb, "use_domain_quota": False}
        if active is not None:
            payload["is_active"] = active
        if password is not None:
            payload["password"] = password
        if payload:
            self._request("PATCH", f"/api/v2/accounts/{mailbox_id}/", payload)

    def delete_mailbox(self, mailbox_id):
        try:
            self._request("POST", f"/api/v2/accounts/{mailbox_id}/delete/", {"keepdir": False})
        except NotFound:
            return

    def list_mailboxes(self, domain=None):
        params = {}
        if domain is not None:
            remote = self.find_domain(domain)
            if remote is None:
                return []
            params["domain"] = remote.id
        return [self._mailbox(d) for d in self._pages("/api/v2/accounts/", params) if d.get("mailbox")]
