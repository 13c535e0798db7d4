"""Billing webhook signatures (pure Python).

Two schemes are accepted on the webhook routes:

- ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (the API
  document's);
- Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id``,
  ``webhook-timestamp`` (Unix seconds, within 5 minutes of now) and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``,
  several space-separated signatures during a rotation. The HMAC key is the
  secret's bytes; a Standard Webhooks sender is configured with
  ``whsec_<base64 of those bytes>`` (:func:`standard_secret`).

Every comparison is constant-time, every secret is tried (timing does not
tell which one matched), and an empty secret never verifies."""

import base64
import hashlib
import hmac
import re
import time

TOLERANCE = 300  # seconds between webhook-timestamp and now
MIN_SECRET_BYTES = 24
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureRefused(Exception):
    """The delivery's signature headers are unusable; str() says why, for the caller."""


def sign(secret, raw):
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def standard_secret(secret):
    """The ``whsec_...`` form of ``secret`` that Standard Webhooks senders are given."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def standard_sign(secret, msg_id, timestamp, raw):
    signed = f"{msg_id}.{timestamp}.".encode() + raw
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def _first_match(candidates, expected_of, given):
    found = None
    for secret in candidates:
        expected = expected_of(secret)
        for value in given:
            if hmac.compare_digest(expected, value) and found is None:
                found = secret
    return found


def verify(headers, raw, secrets, now=None):
    """The first of ``secrets`` that signed this delivery by either scheme,
    else None. Raises SignatureRefused when Standard Webhooks headers are
    incomplete or the timestamp is outside the tolerance."""
    lower = {name.lower(): value for name, value in headers.items()}
    candidates = [secret for secret in secrets if secret]
    found = None
    standard = lower.get("webhook-signature")
    if standard is not None:
        msg_id, stamp = lower.get("webhook-id", "").strip(), lower.get("webhook-timestamp", "").strip()
        if not msg_id or not _TIMESTAMP.fullmatch(stamp):
            raise SignatureRefused(
                "webhook-signature needs webhook-id and webhook-timestamp (Unix seconds) headers"
            )
        now = time.time() if now is None else now
        if abs(now - int(stamp)) > TOLERANCE:
            raise SignatureRefused("webhook-timestamp is more than 5 minutes away from the server's time")
        given = [part[3:].encode() for part in standard.split() if part.startswith("v1,")]
        found = _first_match(
            candidates, lambda secret: standard_sign(secret, msg_id, stamp, raw)[3:].encode(), given
        )
    legacy = lower.get("x-webhook-signature", "").strip().lower()
    if found is None and legacy.startswith("sha256="):
        found = _first_match(candidates, lambda secret: sign(secret, raw).encode(), [legacy.encode()])
    return found


def matching_secret(header, raw, secrets):
    """The first of ``secrets`` whose ``X-Webhook-Signature`` of the raw body
    equals ``header``, else None (kept for callers of the single scheme)."""
    return verify({"X-Webhook-Signature": header or ""}, raw, secrets)
