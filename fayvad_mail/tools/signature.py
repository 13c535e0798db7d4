"""HMAC-SHA256 webhook signatures: ``X-Webhook-Signature: sha256=<hex>``."""

import hashlib
import hmac


def sign(secret, raw):
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def matching_secret(header, raw, secrets):
    """The first of ``secrets`` whose signature of the raw body equals the
    header (constant-time comparison), else None. No secret: None."""
    if not header or not header.startswith("sha256="):
        return None
    given = header.strip().lower().encode()
    found = None
    for secret in secrets:
        # compare with every secret, so timing does not tell which one matched
        if hmac.compare_digest(sign(secret, raw).encode(), given) and found is None:
            found = secret
    return found
