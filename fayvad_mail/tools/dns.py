"""The DNS records a customer publishes for a hosted mail domain.

The mail server gives no ready records; they follow from the domain, the
mail host and the DKIM key (MODOBOA-NOTES: MX, SPF, DMARC, DKIM)."""

import textwrap

VERIFICATION_PREFIX = "fayvad-verification="


def clean_key(public_key):
    """The base64 body of a PEM public key (or the key itself)."""
    lines = [line.strip() for line in (public_key or "").splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


def dns_records(domain, mail_host, dkim_selector, dkim_public_key, verification_token=None):
    """List of dicts (purpose, record_type, name, value, priority, status):
    the ownership TXT record first (when there is a token), then MX, SPF,
    DKIM and DMARC."""
    key = clean_key(dkim_public_key)
    verification = [
        {
            "purpose": "verification",
            "record_type": "TXT",
            "name": f"{domain}.",
            "value": f"{VERIFICATION_PREFIX}{verification_token}",
            "priority": 0,
            "status": "to_publish",
        }
    ]
    return verification * bool(verification_token) + [
        {
            "purpose": "mx",
            "record_type": "MX",
            "name": f"{domain}.",
            "value": f"{mail_host}.",
            "priority": 10,
            "status": "to_publish",
        },
        {
            "purpose": "spf",
            "record_type": "TXT",
            "name": f"{domain}.",
            "value": "v=spf1 mx ~all",
            "priority": 0,
            "status": "to_publish",
        },
        {
            "purpose": "dkim",
            "record_type": "TXT",
            "name": f"{dkim_selector}._domainkey.{domain}.",
            "value": f"v=DKIM1;k=rsa;p={key}" if key else "",
            "priority": 0,
            "status": "to_publish" if key else "waiting",
        },
        {
            "purpose": "dmarc",
            "record_type": "TXT",
            "name": f"_dmarc.{domain}.",
            "value": "v=DMARC1; p=quarantine; pct=100;",
            "priority": 0,
            "status": "to_publish",
        },
    ]


def zone_line(record_type, name, value, priority=0):
    """The record as a line of a BIND zone file; TXT split in 255-byte strings."""
    if record_type == "MX":
        return f"{name} IN MX {priority} {value}"
    chunks = textwrap.wrap(value, 255, break_long_words=True, break_on_hyphens=False) or [""]
    return f"{name} IN TXT " + " ".join(f'"{chunk}"' for chunk in chunks)
