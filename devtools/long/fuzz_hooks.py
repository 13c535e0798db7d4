"""Schemathesis hooks of the long tests' fuzzing run (loaded through
SCHEMATHESIS_HOOKS, in the fuzzer's own virtualenv).

- Most webhook bodies are signed with the live company secret (the
  generated signature header is replaced), so that the fuzzer reaches the
  payload validation and the processing code, not only the signature check.
- Most email-account and alias requests point at a real organization and domain, and
  most webhooks at a real organization, so that those routes get past the
  lookups.
- Every answer is written down (operation, status, error code, content
  type) in FUZZ_LOG for the test to judge."""

import hashlib
import hmac
import json
import os
import random

import schemathesis
from schemathesis.core.parameters import ParameterLocation

SECRET = os.environ["FUZZ_WEBHOOK_SECRET"]
ORG_TOKEN = os.environ["FUZZ_ORG_TOKEN"]  # the organization's own webhook URL ...
ORG_SECRET = os.environ["FUZZ_ORG_SECRET"]  # ... and its own secret
ORG_ID = int(os.environ["FUZZ_ORG_ID"])
DOMAIN_ID = int(os.environ["FUZZ_DOMAIN_ID"])
LOG = os.environ["FUZZ_LOG"]
RANDOM = random.Random(int(os.environ.get("FUZZ_SEED", "1")))
SEEN = {}


def _label(case):
    return f"{case.operation.method.upper()} {case.operation.path}"


def _negative_at(case, location):
    """Whether the generator made this part of the case invalid on purpose."""
    meta = getattr(case, "_meta", None)
    return bool(meta and meta.is_negative_at(location))


def _positive(case):
    meta = getattr(case, "_meta", None)
    return meta is None or not meta.generation.mode.is_negative


@schemathesis.hook
def before_call(context, case, kwargs):
    """Positive cases get real ids and a valid signature (they must then be
    accepted or refused for a reason of our own); a negative case is left
    as generated, except that a webhook whose body is invalid on purpose is
    signed, so that the body's validation (not the signature) refuses it."""
    path = case.operation.path
    body = case.body
    positive = _positive(case)
    SEEN[id(case)] = {"generated_as": "positive" if positive else "negative"}
    if (
        positive
        and path.startswith("/provision/")
        and path != "/provision/organization/"
        and isinstance(body, dict)
    ):
        data = body.get("email_account_data", body.get("alias_data", body.get("domain_alias_data")))
        if isinstance(data, dict) and RANDOM.random() < 0.7:
            data["organization_id"] = ORG_ID
            if RANDOM.random() < 0.8:
                data["domain"] = DOMAIN_ID
    secret = SECRET
    if path.startswith("/webhooks/billing/{token}") and positive and RANDOM.random() < 0.8:
        case.path_parameters = {**(case.path_parameters or {}), "token": ORG_TOKEN}
        secret = ORG_SECRET
    if path.startswith("/webhooks/billing"):
        if positive and isinstance(body, dict) and RANDOM.random() < 0.6:
            body["organization_id"] = ORG_ID
        signable = positive or (
            _negative_at(case, ParameterLocation.BODY) and not _negative_at(case, ParameterLocation.HEADER)
        )
        if signable and isinstance(body, dict | list | str | int | float | bool) and RANDOM.random() < 0.8:
            try:
                # exactly what requests sends for json=body (the body stays the
                # generated value, so the fuzzer still judges it as generated)
                raw = json.dumps(body, allow_nan=False).encode()
            except (TypeError, ValueError):
                return
            headers = dict(case.headers or {})
            headers["X-Webhook-Signature"] = (
                "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            )
            headers["Content-Type"] = "application/json"
            case.headers = headers


def _header(response, name):
    for key, value in (response.headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list | tuple) else value
    return ""


@schemathesis.hook
def after_call(context, case, response):
    try:
        error_code = response.json().get("error_code") if response.content else None
    except (ValueError, AttributeError):
        error_code = "<not json>"
    line = {
        "operation": _label(case),
        "status": response.status_code,
        "error_code": error_code,
        "content_type": _header(response, "Content-Type"),
        **SEEN.pop(id(case), {}),
    }
    with open(LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
