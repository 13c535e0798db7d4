"""What each mailbox holds, in bytes, as Dovecot counts it: its doveadm HTTP
API (https://doc.dovecot.org/admin_manual/doveadm_http_api/), which every
Dovecot that stores the mail answers once given a ``doveadm_api_key`` and an
HTTP listener of its ``doveadm`` service.

Modoboa's own API tells a whole percent of the quota only (nothing at all
for a mailbox without a quota); Dovecot knows the bytes."""

import base64

from .base import HttpClient, Unavailable

EX_NOUSER = 67  # doveadm's exit code for a user it does not know
BATCH = 100  # mailboxes asked a request


class DovecotStorage(HttpClient):
    def _headers(self):
        key = base64.b64encode(self._token.encode()).decode()
        return {"Authorization": f"X-Dovecot-API {key}", "Accept": "application/json"}

    def used_bytes(self, emails):
        """{email: bytes} of the mailboxes Dovecot knows among ``emails``: the
        sum of the virtual sizes of all their folders (``doveadm mailbox
        status -t vsize '*'``), what IMAP clients see and its quota counts."""
        emails = list(emails)
        found = {}
        for start in range(0, len(emails), BATCH):
            batch = emails[start : start + BATCH]
            commands = [
                [
                    "mailboxStatus",
                    {"user": email, "field": ["vsize"], "mailboxMask": ["*"], "totalSum": True},
                    str(i),
                ]
                for i, email in enumerate(batch)
            ]
            for kind, body, tag in self._request("POST", "/doveadm/v1", commands) or []:
                email = batch[int(tag)]
                if kind == "doveadmResponse" and body:
                    found[email] = int(body[0].get("vsize") or 0)
                elif kind == "error" and body.get("exitCode") != EX_NOUSER:
                    raise Unavailable(f"doveadm could not tell the size of {email}: {body}")
        return found
