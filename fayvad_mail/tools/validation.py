"""Validation of the ERP API's request data (pure Python, no ORM).

Every validator reads one request, collects every problem under its dotted
field path and raises ValidationFailed once; otherwise it returns a clean
dict of normalised values. JSON types are strict: booleans, floats and
numeric strings are not integers. Unknown fields are ignored; null in an
optional field means the field is absent.
"""

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from ..const import WEBHOOK_EVENT_TYPES as EVENT_TYPES
from . import names
from .units import MB

INT32_MAX = 2**31 - 1  # ids and counts are PostgreSQL integers
EVENTS_PAGE_MAX = 10000  # billing events per page of the usage summary
INT64_MAX = 2**63 - 1
MIB = MB  # the smallest quota
REQUIRED = "This field is required."

# an amount's decimal places are checked against its currency's (JPY 0, USD 2, KWD 3) once the
# currency is known; none has more than this
MAX_DECIMALS = 6
_MAX_AMOUNT = Decimal(10**12)
# every pattern is matched whole (fullmatch): "$" would accept a trailing newline
_NUMERIC = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_QUERY_INT = re.compile(r"-?[0-9]{1,20}")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class ValidationFailed(Exception):
    """Bad request data; `details` maps each field path to its messages."""

    def __init__(self, details: dict[str, list[str]]):
        self.details = details
        summary = "; ".join(f"{path}: {' '.join(messages)}" for path, messages in details.items())
        super().__init__(f"Request data validation failed: {summary}")


def text_problem(text):
    """Why ``text`` cannot be stored or used (None when it can): NUL
    characters and unpaired surrogates (``\\ud800``), which no database
    column or protocol carries."""
    if "\x00" in text:
        return "Must not contain NUL characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode (no unpaired surrogates)."
    return None


def _json_type(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", list: "an array", type(None): "null"}.get(type(value), "an object")


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text):
    if len(text.lstrip("-")) > 100:
        raise ValueError("a number has too many digits")
    return int(text)


def parse_json_object(raw: bytes) -> dict:
    """Decode a request body that must be one JSON object."""
    if not raw or not raw.strip():
        raise ValidationFailed({"body": ["The request body is empty; send a JSON object."]})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed({"body": ["The request body is not valid UTF-8."]}) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            {"body": [f"Malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."]}
        ) from None
    except (ValueError, RecursionError) as exc:  # from the hooks above, or deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValidationFailed({"body": [f"Malformed JSON: {reason}."]}) from None
    if not isinstance(data, dict):
        raise ValidationFailed({"body": [f"Must be a JSON object, not {_json_type(data)}."]})
    return data


class _Fields:
    """Reads the fields of one JSON object, recording errors in a shared dict."""

    def __init__(self, data, prefix, errors):
        self.data, self.prefix, self.errors = data, prefix, errors

    def error(self, key, message):
        self.errors.setdefault(self.prefix + key, []).append(message)

    def value(self, key, required):
        value = self.data.get(key)
        if value is None and required:
            self.error(key, REQUIRED)
        return value

    def integer(self, key, required=False, minimum=1, maximum=INT32_MAX, unit=""):
        value = self.value(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, "Must be an integer.")
        elif value < minimum:
            self.error(key, f"Must be at least {minimum}{unit}.")
        elif value > maximum:
            self.error(key, f"Must be at most {maximum}.")
        else:
            return value
        return None

    def string(
        self, key, required=False, max_length=None, min_length=0, strip=True, blank=True, single_line=False
    ):
        """A string; ``single_line``: a name, where CR, LF, TAB and every other
        control character are refused."""
        value = self.value(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(key, "Must be a string.")
            return None
        problem = text_problem(value) or (single_line and names.control_character_problem(value))
        if problem:
            self.error(key, problem)
            return None
        text = value.strip(" ") if strip else value  # spaces only: a newline or tab is an error
        if not blank and not text.strip():
            self.error(key, "Must not be blank.")
        elif len(text) < min_length:
            self.error(key, f"At least {min_length} characters.")
        elif max_length is not None and len(text) > max_length:
            self.error(key, f"At most {max_length} characters.")
        else:
            return text
        return None

    def object(self, key, required=False):
        """The nested object's fields; an empty one when absent or invalid."""
        value = self.value(key, required)
        if value is not None and not isinstance(value, dict):
            self.error(key, "Must be an object.")
        return _Fields(value if isinstance(value, dict) else {}, f"{self.prefix}{key}.", self.errors)

    def name(self, key, normalize, subject, required=False):
        """A domain name or local part, normalised by tools.names."""
        text = self.string(key, required=required)
        return None if text is None else self.normalized(key, normalize, text, subject)

    def normalized(self, key, normalize, text, subject):
        try:
            return normalize(text)
        except names.InvalidName as exc:
            self.error(key, f"The {subject} {exc}.")
            return None

    def email(self, key, max_length=254):
        text = self.string(key, max_length=max_length)
        if not text:
            return None
        local, _at, domain = text.rpartition("@")
        if not local or "@" in local or any(char.isspace() for char in text):
            self.error(key, "Must be an e-mail address like name@example.com.")
            return None
        if self.normalized(key, names.normalize_local_part, local, "local part") is None:
            return None
        domain = self.normalized(key, names.normalize_domain, domain, "domain name")
        if domain is None:
            return None
        address = f"{local}@{domain}"
        if len(address) > max_length:
            self.error(key, f"At most {max_length} characters.")
            return None
        return address

    def email_list(self, key, required=False, max_items=100):
        """A non-empty list of e-mail addresses, normalised, without repeats."""
        value = self.value(key, required)
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            self.error(key, "Must be a non-empty list of e-mail addresses.")
            return None
        if len(value) > max_items:
            self.error(key, f"At most {max_items} addresses.")
            return None
        clean, valid = [], True
        for i, item in enumerate(value):
            problem = "Must be a string." if not isinstance(item, str) else text_problem(item)
            if problem is None:
                try:
                    address = names.normalize_email(item)
                except names.InvalidName as exc:
                    problem = f"The address {exc}."
            if problem:
                self.error(key, f"Item {i}: {problem}")
                valid = False
            elif address not in clean:
                clean.append(address)
        return clean if valid else None

    def choice(self, key, allowed):
        text = self.string(key, required=True, strip=False)
        if text is None or text in allowed:
            return text
        self.error(key, f"Must be one of: {', '.join(allowed)}.")
        return None

    def currency(self, key):
        text = self.string(key)
        if text is None or _CURRENCY.fullmatch(text.upper()):
            return text and text.upper()
        self.error(key, "Must be a 3-letter ISO 4217 currency code, like USD.")
        return None

    def amount(self, key):
        value = self.value(key, False)
        if value is None:
            return None
        if isinstance(value, str) and _NUMERIC.fullmatch(value.strip(" ")):
            value = Decimal(value.strip(" "))
        elif isinstance(value, float):
            value = Decimal(repr(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        else:
            self.error(key, "Must be a number, like 99.99.")
            return None
        if not value.is_finite():
            self.error(key, "Must be a number, like 99.99.")
        elif value <= 0:
            self.error(key, "Must be greater than 0.")
        elif value >= _MAX_AMOUNT:
            self.error(key, f"Must be less than {_MAX_AMOUNT}.")
        elif value != value.quantize(Decimal(1).scaleb(-MAX_DECIMALS)):
            self.error(key, f"At most {MAX_DECIMALS} decimal places.")
        else:
            return value
        return None

    def timestamp(self, key):
        text = self.string(key)
        if text is None:
            return None
        text = text.upper()
        try:
            if not _DATETIME.fullmatch(text):
                raise ValueError
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            self.error(key, "Must be an ISO 8601 date and time, like 2025-07-28T10:00:00Z.")
            return None


def _top(body, errors):
    if not isinstance(body, dict):
        raise ValidationFailed({"body": [f"Must be a JSON object, not {_json_type(body)}."]})
    return _Fields(body, "", errors)


def _raise_if(errors):
    if errors:
        raise ValidationFailed(errors)


def _wrapped(body, key, errors):
    data = _top(body, errors).object(key, required=True)
    _raise_if(errors)  # without its wrapper object, no field can be checked
    return data


def validate_organization(body: dict) -> dict:
    """POST /erp/provision/organization/"""
    errors = {}
    data = _wrapped(body, "organization_data", errors)
    clean = {
        "name": data.string("name", required=True, max_length=200, blank=False, single_line=True),
        "domain": data.name("domain", names.normalize_domain, "domain name", required=True),
        "odoo_customer_id": data.integer("odoo_customer_id", required=True),
        "max_users": data.integer("max_users"),
        "max_storage_gb": data.integer("max_storage_gb"),
        "plan_id": data.integer("plan_id"),
    }
    contact = data.object("contact_info")
    clean["contact_info"] = {
        "primary_email": contact.email("primary_email"),
        "phone": contact.string("phone", max_length=64) or None,
        "address": contact.string("address", max_length=500) or None,
    }
    _raise_if(errors)
    return clean


def _mailbox_local_part(value):
    return names.check_not_reserved(names.normalize_local_part(value))


def validate_email_account(body: dict) -> dict:
    """POST /erp/provision/email-account/"""
    errors = {}
    data = _wrapped(body, "email_account_data", errors)
    clean = {
        "organization_id": data.integer("organization_id", required=True),
        "address": data.name("address", _mailbox_local_part, "address", required=True),
        "domain_id": data.integer("domain", required=True),
        "quota": data.integer("quota", minimum=MIB, maximum=INT64_MAX, unit=" bytes (1 MiB)"),
    }
    user = data.object("user_info")
    clean |= {
        "first_name": user.string("first_name", max_length=30, single_line=True) or "",
        "last_name": user.string("last_name", max_length=30, single_line=True) or "",
        "password": user.string("password", min_length=8, max_length=128, strip=False),
    }
    _raise_if(errors)
    return clean


def validate_email_account_data(data: dict) -> dict:
    """The fields of an email account (what ``email_account_data`` holds),
    as the portal's form gives them; errors under the API's field paths."""
    return validate_email_account({"email_account_data": data})


def _alias_local_part(value):
    """The local part of an alias; empty for the domain's catch-all."""
    return "" if value == "" else names.check_not_reserved(names.normalize_local_part(value))


def validate_alias(body: dict) -> dict:
    """POST /erp/provision/alias/"""
    errors = {}
    data = _wrapped(body, "alias_data", errors)
    clean = {
        "organization_id": data.integer("organization_id", required=True),
        "domain_id": data.integer("domain", required=True),
        "address": data.name("address", _alias_local_part, "address", required=True),
        "recipients": data.email_list("recipients", required=True),
        "description": data.string("description", max_length=200, single_line=True) or "",
    }
    _raise_if(errors)
    return clean


def validate_alias_data(data: dict) -> dict:
    """The fields of an alias (what ``alias_data`` holds), as the portal's form gives them."""
    return validate_alias({"alias_data": data})


def validate_domain_alias(body: dict) -> dict:
    """POST /erp/provision/domain-alias/"""
    errors = {}
    data = _wrapped(body, "domain_alias_data", errors)
    clean = {
        "organization_id": data.integer("organization_id", required=True),
        "domain_id": data.integer("domain", required=True),
        "name": data.name("name", names.normalize_domain, "domain name", required=True),
    }
    _raise_if(errors)
    return clean


def validate_billing_webhook(body: dict) -> dict:
    """POST /erp/webhooks/billing/ (the body has no wrapper object)."""
    errors = {}
    data = _top(body, errors)
    clean = {
        "event_type": data.choice("event_type", EVENT_TYPES),
        "organization_id": data.integer("organization_id", required=True),
    }
    billing = data.object("billing_data")
    clean |= {
        "amount": billing.amount("amount"),
        "currency": billing.currency("currency"),
        "description": billing.string("description", max_length=500, single_line=True) or None,
        "invoice_id": billing.string("invoice_id", max_length=128, blank=False, single_line=True),
        "timestamp": data.timestamp("timestamp"),
    }
    if clean["event_type"] == "payment_received" and billing.data.get("amount") is None:
        billing.error("amount", "Required for payment_received: the positive amount paid.")
    _raise_if(errors)
    return clean


def _query_int(args, key, errors, minimum, maximum=INT32_MAX):
    text = args.get(key) or ""
    if not text:
        return None
    if not _QUERY_INT.fullmatch(text):
        errors[key] = ["Must be an integer."]
        return None
    value = int(text)
    if value < minimum:
        errors[key] = [f"Must be at least {minimum}."]
    elif value > maximum:
        errors[key] = [f"Must be at most {maximum}."]
    else:
        return value
    return None


def _query_date(args, key, errors):
    text = args.get(key) or ""
    if not text:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        errors[key] = ["Must be a real date in YYYY-MM-DD format."]
        return None


def validate_usage_query(args: Mapping[str, str], today: date) -> dict:
    """GET /erp/usage-summary/ query parameters (strings; empty means absent)."""
    errors = {}
    start = _query_date(args, "start_date", errors)
    end = _query_date(args, "end_date", errors)
    include_details = _BOOLEANS.get((args.get("include_details") or "false").lower())
    if include_details is None:
        errors["include_details"] = ["Must be one of: true, false, 1, 0."]
    clean = {
        "organization_id": _query_int(args, "organization_id", errors, 1),
        "start_date": start,
        "end_date": end,
        "include_details": bool(include_details),
        "limit": _query_int(args, "limit", errors, 1, 1000),
        "offset": _query_int(args, "offset", errors, 0),
        "events_limit": _query_int(args, "events_limit", errors, 1, EVENTS_PAGE_MAX),
        "events_offset": _query_int(args, "events_offset", errors, 0),
    }
    if "end_date" not in errors and "start_date" not in errors:
        clean["end_date"] = end = end or today
        clean["start_date"] = start = start or end.replace(day=1)
        if start > end:
            errors["start_date"] = ["Must not be after end_date."]
    _raise_if(errors)
    return clean
