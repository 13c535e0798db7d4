"""Plain pytest tests of the ERP API's request validation (no database)."""

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from odoo.addons.fayvad_mail.tests.samples import SAMPLE_EMAIL_ACCOUNT, SAMPLE_ORGANIZATION
from odoo.addons.fayvad_mail.tools.validation import (
    EVENT_TYPES,
    ValidationFailed,
    parse_json_object,
    validate_billing_webhook,
    validate_email_account,
    validate_organization,
    validate_usage_query,
)

REQUIRED = "This field is required."
NOT_INT = "Must be an integer."
NOT_STRING = "Must be a string."
NOT_OBJECT = "Must be an object."
MISSING = object()  # a field left out of the request body
TODAY = date(2025, 7, 15)

# Values every integer field (minimum 1) rejects, with the message.
BAD_INTEGERS = [
    ("5", NOT_INT),
    ("", NOT_INT),
    (True, NOT_INT),
    (False, NOT_INT),
    (5.0, NOT_INT),
    (5.5, NOT_INT),
    ([5], NOT_INT),
    ({"id": 5}, NOT_INT),
    (0, "Must be at least 1."),
    (-1, "Must be at least 1."),
    (2**31, "Must be at most 2147483647."),
]
GOOD_INTEGERS = [1, 2, 67890, 2**31 - 1]
BAD_STRINGS = [5, 5.5, True, ["x"], {"x": "y"}]


def failure(validator, *args):
    with pytest.raises(ValidationFailed) as info:
        validator(*args)
    return info.value


def details(validator, *args):
    return failure(validator, *args).details


def _build(wrapper, base, changes):
    data = {**base, **changes}
    data = {key: value for key, value in data.items() if value is not MISSING}
    return {wrapper: data} if wrapper else data


def org_body(**changes):
    base = {"name": "Acme Corporation", "domain": "acme.com", "odoo_customer_id": 67890}
    return _build("organization_data", base, changes)


def account_body(**changes):
    base = {"organization_id": 2, "address": "john.doe", "domain": 2}
    return _build("email_account_data", base, changes)


def webhook_body(**changes):
    return _build(None, {"event_type": "payment_failed", "organization_id": 2}, changes)


# --- parse_json_object -------------------------------------------------------------------------


def test_parse_json_object_accepts_an_object():
    assert parse_json_object(b' \n{"a": 1, "b": {"c": [1, 2]}}\n ') == {"a": 1, "b": {"c": [1, 2]}}
    assert parse_json_object('{"name": "Bücher"}'.encode()) == {"name": "Bücher"}


def test_parse_json_object_ignores_a_utf8_byte_order_mark():
    assert parse_json_object(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n\t "])
def test_parse_json_object_rejects_an_empty_body(raw):
    assert list(details(parse_json_object, raw)) == ["body"]
    assert "empty" in details(parse_json_object, raw)["body"][0]


def test_parse_json_object_rejects_invalid_utf8():
    assert details(parse_json_object, b'{"name": "\xff\xfe"}') == {
        "body": ["The request body is not valid UTF-8."]
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"{'a': 1}",
        b'{"a": 1,}',
        b'{"a": }',
        b'{"a": 1} {"b": 2}',
        b"hello",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_parse_json_object_rejects_malformed_json(raw):
    (message,) = details(parse_json_object, raw)["body"]
    assert message.startswith("Malformed JSON")


def test_parse_json_object_reasons():
    assert details(parse_json_object, b'{"a": NaN}') == {"body": ["Malformed JSON: NaN is not valid JSON."]}
    huge = b'{"a": ' + b"9" * 5000 + b"}"
    assert details(parse_json_object, huge) == {"body": ["Malformed JSON: a number has too many digits."]}
    assert details(parse_json_object, b"[" * 100_000) == {"body": ["Malformed JSON: nested too deeply."]}
    assert parse_json_object(b'{"a": -' + b"9" * 100 + b"}") == {"a": -int("9" * 100)}


def test_parse_json_object_says_where_the_json_breaks():
    assert details(parse_json_object, b'{\n"a": }') == {
        "body": ["Malformed JSON: Expecting value (line 2, column 6)."]
    }


@pytest.mark.parametrize(
    "raw, kind",
    [
        (b"[]", "an array"),
        (b'[{"a": 1}]', "an array"),
        (b'"text"', "a string"),
        (b"5", "a number"),
        (b"-5.5", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
def test_parse_json_object_rejects_json_that_is_not_an_object(raw, kind):
    assert details(parse_json_object, raw) == {"body": [f"Must be a JSON object, not {kind}."]}


# --- ValidationFailed --------------------------------------------------------------------------


def test_validation_failed_carries_details_and_a_summary():
    exc = ValidationFailed({"organization_data.domain": ["A.", "B."], "organization_data.name": ["C."]})
    assert isinstance(exc, Exception)
    assert exc.details == {"organization_data.domain": ["A.", "B."], "organization_data.name": ["C."]}
    assert str(exc) == (
        "Request data validation failed: organization_data.domain: A. B.; organization_data.name: C."
    )


def test_validation_failed_summary_names_the_bad_field():
    exc = failure(validate_organization, org_body(domain="localhost"))
    assert str(exc).startswith("Request data validation failed: organization_data.domain: The domain name ")


# --- validate_organization ---------------------------------------------------------------------


def test_organization_document_sample():
    body = json.loads(
        """{"organization_data": {
            "name": "Acme Corporation", "domain": "acme.com", "odoo_customer_id": 67890,
            "max_users": 100, "max_storage_gb": 100, "plan_id": 2,
            "contact_info": {"primary_email": "admin@acme.com", "phone": "+1234567890",
                             "address": "123 Business St, City, State 12345"}}}"""
    )
    assert validate_organization(body) == SAMPLE_ORGANIZATION["organization_data"]


def test_organization_minimal_request_leaves_optional_fields_none():
    assert validate_organization(org_body()) == {
        "name": "Acme Corporation",
        "domain": "acme.com",
        "odoo_customer_id": 67890,
        "max_users": None,
        "max_storage_gb": None,
        "plan_id": None,
        "contact_info": {"primary_email": None, "phone": None, "address": None},
    }


def test_organization_null_optional_fields_are_absent():
    body = org_body(max_users=None, max_storage_gb=None, plan_id=None, contact_info=None)
    clean = validate_organization(body)
    assert clean["max_users"] is clean["max_storage_gb"] is clean["plan_id"] is None
    assert clean["contact_info"] == {"primary_email": None, "phone": None, "address": None}


def test_organization_ignores_unknown_fields():
    body = org_body(color="blue", contact_info={"fax": "123", "phone": "1"})
    body["extra"] = {"anything": [1, 2]}
    clean = validate_organization(body)
    assert "color" not in clean
    assert clean["contact_info"] == {"primary_email": None, "phone": "1", "address": None}


@pytest.mark.parametrize("body", [{}, {"organization_data": None}, {"name": "Acme", "domain": "acme.com"}])
def test_organization_requires_the_wrapper(body):
    assert details(validate_organization, body) == {"organization_data": [REQUIRED]}


@pytest.mark.parametrize("wrapper", ["acme", 5, True, [], [{"name": "Acme"}]])
def test_organization_wrapper_must_be_an_object(wrapper):
    assert details(validate_organization, {"organization_data": wrapper}) == {
        "organization_data": [NOT_OBJECT]
    }


@pytest.mark.parametrize("body", [[], "text", 5, None])
def test_organization_body_must_be_an_object(body):
    assert list(details(validate_organization, body)) == ["body"]


def test_organization_empty_wrapper_reports_every_required_field():
    assert details(validate_organization, {"organization_data": {}}) == {
        "organization_data.name": [REQUIRED],
        "organization_data.domain": [REQUIRED],
        "organization_data.odoo_customer_id": [REQUIRED],
    }


@pytest.mark.parametrize(
    "value, expected",
    [("A", "A"), ("Acme Corporation", "Acme Corporation"), ("  Acme  ", "Acme"), ("é" * 200, "é" * 200)],
)
def test_organization_name_accepted(value, expected):
    assert validate_organization(org_body(name=value))["name"] == expected


@pytest.mark.parametrize(
    "value, message",
    [
        (MISSING, REQUIRED),
        (None, REQUIRED),
        ("", "Must not be blank."),
        ("   ", "Must not be blank."),
        ("x" * 201, "At most 200 characters."),
        *((value, NOT_STRING) for value in BAD_STRINGS),
    ],
)
def test_organization_name_rejected(value, message):
    assert details(validate_organization, org_body(name=value)) == {"organization_data.name": [message]}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("acme.com", "acme.com"),
        ("ACME.COM", "acme.com"),
        ("Acme.Com.", "acme.com"),
        ("  acme.com  ", "acme.com"),
        ("mail.example.co.uk", "mail.example.co.uk"),
        ("my-company.io", "my-company.io"),
        ("Bücher.de", "xn--bcher-kva.de"),
        ("bücher.de.", "xn--bcher-kva.de"),
        ("münchen.DE", "xn--mnchen-3ya.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ],
)
def test_organization_domain_normalised(value, expected):
    assert validate_organization(org_body(domain=value))["domain"] == expected


@pytest.mark.parametrize(
    "value",
    ["", "   ", ".", "localhost", "acme", "a_b.com", "-acme.com", "acme-.com", "acme..com", "ac me.com",
     "acme.c0m", "acme.c", "☃.com", "admin@acme.com", "x" * 64 + ".com", ("a" * 60 + ".") * 5 + "com"],
)  # fmt: skip
def test_organization_domain_rejected(value):
    (message,) = details(validate_organization, org_body(domain=value))["organization_data.domain"]
    assert message.startswith("The domain name ")
    assert message.endswith(".")


@pytest.mark.parametrize(
    "value, message", [(MISSING, REQUIRED), (None, REQUIRED), *((v, NOT_STRING) for v in BAD_STRINGS)]
)
def test_organization_domain_wrong_type(value, message):
    assert details(validate_organization, org_body(domain=value)) == {"organization_data.domain": [message]}


@pytest.mark.parametrize("value", GOOD_INTEGERS)
def test_organization_customer_id_accepted(value):
    assert validate_organization(org_body(odoo_customer_id=value))["odoo_customer_id"] == value


@pytest.mark.parametrize("value, message", [(MISSING, REQUIRED), (None, REQUIRED), *BAD_INTEGERS])
def test_organization_customer_id_rejected(value, message):
    assert details(validate_organization, org_body(odoo_customer_id=value)) == {
        "organization_data.odoo_customer_id": [message]
    }


@pytest.mark.parametrize("field", ["max_users", "max_storage_gb", "plan_id"])
@pytest.mark.parametrize("value", GOOD_INTEGERS)
def test_organization_optional_integers_accepted(field, value):
    assert validate_organization(org_body(**{field: value}))[field] == value


@pytest.mark.parametrize("field", ["max_users", "max_storage_gb", "plan_id"])
@pytest.mark.parametrize("value, message", BAD_INTEGERS)
def test_organization_optional_integers_rejected(field, value, message):
    assert details(validate_organization, org_body(**{field: value})) == {
        f"organization_data.{field}": [message]
    }


@pytest.mark.parametrize(
    "value, expected",
    [
        ("admin@acme.com", "admin@acme.com"),
        ("  admin@acme.com ", "admin@acme.com"),
        ("Admin@ACME.COM.", "Admin@acme.com"),
        ("first.last+tag@mail.example.org", "first.last+tag@mail.example.org"),
        ("info@bücher.de", "info@xn--bcher-kva.de"),
        ("", None),
        (None, None),
    ],
)
def test_organization_primary_email_accepted(value, expected):
    clean = validate_organization(org_body(contact_info={"primary_email": value}))
    assert clean["contact_info"]["primary_email"] == expected


@pytest.mark.parametrize(
    "value",
    ["admin", "admin.acme.com", "@acme.com", "admin@", "a@b@acme.com", "john doe@acme.com", "admin@acme com",
     ".admin@acme.com", "ad..min@acme.com", "admin@localhost", "admin@acme_corp.com", "x" * 65 + "@acme.com"],
)  # fmt: skip
def test_organization_primary_email_rejected(value):
    errors = details(validate_organization, org_body(contact_info={"primary_email": value}))
    assert list(errors) == ["organization_data.contact_info.primary_email"]


def test_organization_primary_email_length():
    address = "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "example.com"  # 256 characters
    errors = details(validate_organization, org_body(contact_info={"primary_email": address}))
    assert errors == {"organization_data.contact_info.primary_email": ["At most 254 characters."]}
    ok = "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "examp.com"  # 254 characters
    assert (
        validate_organization(org_body(contact_info={"primary_email": ok}))["contact_info"]["primary_email"]
        == ok
    )


@pytest.mark.parametrize("field", ["primary_email", "phone", "address"])
def test_organization_contact_strings_must_be_strings(field):
    for value in BAD_STRINGS:
        errors = details(validate_organization, org_body(contact_info={field: value}))
        assert errors == {f"organization_data.contact_info.{field}": [NOT_STRING]}


@pytest.mark.parametrize("field, limit", [("phone", 64), ("address", 500)])
def test_organization_contact_string_lengths(field, limit):
    clean = validate_organization(org_body(contact_info={field: "9" * limit}))
    assert clean["contact_info"][field] == "9" * limit
    errors = details(validate_organization, org_body(contact_info={field: "9" * (limit + 1)}))
    assert errors == {f"organization_data.contact_info.{field}": [f"At most {limit} characters."]}


def test_organization_blank_contact_strings_are_absent():
    clean = validate_organization(org_body(contact_info={"phone": "  ", "address": ""}))
    assert clean["contact_info"] == {"primary_email": None, "phone": None, "address": None}


@pytest.mark.parametrize("value", ["admin@acme.com", 5, True, [], [{"phone": "1"}]])
def test_organization_contact_info_must_be_an_object(value):
    assert details(validate_organization, org_body(contact_info=value)) == {
        "organization_data.contact_info": [NOT_OBJECT]
    }


def test_organization_reports_every_bad_field_at_once():
    body = org_body(
        name="x" * 201,
        domain="not a domain",
        odoo_customer_id="67890",
        max_users=0,
        max_storage_gb=True,
        plan_id=2.0,
        contact_info={"primary_email": "nobody", "phone": "1" * 65, "address": 5},
    )
    errors = details(validate_organization, body)
    assert list(errors) == [
        "organization_data.name",
        "organization_data.domain",
        "organization_data.odoo_customer_id",
        "organization_data.max_users",
        "organization_data.max_storage_gb",
        "organization_data.plan_id",
        "organization_data.contact_info.primary_email",
        "organization_data.contact_info.phone",
        "organization_data.contact_info.address",
    ]
    assert errors["organization_data.max_users"] == ["Must be at least 1."]
    assert errors["organization_data.plan_id"] == [NOT_INT]
    assert all(len(messages) == 1 for messages in errors.values())


# --- validate_email_account --------------------------------------------------------------------


def test_email_account_document_sample():
    body = copy.deepcopy(SAMPLE_EMAIL_ACCOUNT)
    assert validate_email_account(body) == {
        "organization_id": 2,
        "address": "john.doe",
        "domain_id": 2,
        "quota": 1073741824,
        "first_name": "John",
        "last_name": "Doe",
        "password": "securepassword123",
    }


def test_email_account_minimal_request():
    assert validate_email_account(account_body()) == {
        "organization_id": 2,
        "address": "john.doe",
        "domain_id": 2,
        "quota": None,
        "first_name": "",
        "last_name": "",
        "password": None,
    }


def test_email_account_null_optional_fields_are_absent():
    clean = validate_email_account(account_body(quota=None, user_info=None))
    assert (clean["quota"], clean["first_name"], clean["last_name"], clean["password"]) == (
        None,
        "",
        "",
        None,
    )
    clean = validate_email_account(account_body(user_info={"first_name": None, "password": None}))
    assert (clean["first_name"], clean["password"]) == ("", None)


def test_email_account_ignores_unknown_fields():
    clean = validate_email_account(account_body(alias="x", user_info={"middle_name": 5}))
    assert clean["address"] == "john.doe"


@pytest.mark.parametrize("body", [{}, {"email_account_data": None}, {"organization_id": 2, "address": "x"}])
def test_email_account_requires_the_wrapper(body):
    assert details(validate_email_account, body) == {"email_account_data": [REQUIRED]}


@pytest.mark.parametrize("wrapper", ["john.doe", 2, False, [], [{"address": "x"}]])
def test_email_account_wrapper_must_be_an_object(wrapper):
    assert details(validate_email_account, {"email_account_data": wrapper}) == {
        "email_account_data": [NOT_OBJECT]
    }


@pytest.mark.parametrize("body", [[], "text", 5, None])
def test_email_account_body_must_be_an_object(body):
    assert list(details(validate_email_account, body)) == ["body"]


def test_email_account_empty_wrapper_reports_every_required_field():
    assert details(validate_email_account, {"email_account_data": {}}) == {
        "email_account_data.organization_id": [REQUIRED],
        "email_account_data.address": [REQUIRED],
        "email_account_data.domain": [REQUIRED],
    }


@pytest.mark.parametrize("field, key", [("organization_id", "organization_id"), ("domain", "domain_id")])
@pytest.mark.parametrize("value", GOOD_INTEGERS)
def test_email_account_ids_accepted(field, key, value):
    assert validate_email_account(account_body(**{field: value}))[key] == value


@pytest.mark.parametrize("field", ["organization_id", "domain"])
@pytest.mark.parametrize("value, message", [(MISSING, REQUIRED), (None, REQUIRED), *BAD_INTEGERS])
def test_email_account_ids_rejected(field, value, message):
    assert details(validate_email_account, account_body(**{field: value})) == {
        f"email_account_data.{field}": [message]
    }


def test_email_account_domain_must_be_an_id_not_a_name():
    assert details(validate_email_account, account_body(domain="acme.com")) == {
        "email_account_data.domain": [NOT_INT]
    }


@pytest.mark.parametrize(
    "value, expected",
    [
        ("john.doe", "john.doe"),
        ("John.Doe", "john.doe"),
        ("  INFO ", "info"),
        ("a", "a"),
        ("first+tag", "first+tag"),
        ("o'brien", "o'brien"),
        ("x" * 64, "x" * 64),
    ],
)
def test_email_account_address_accepted(value, expected):
    assert validate_email_account(account_body(address=value))["address"] == expected


@pytest.mark.parametrize(
    "value", ["", "   ", "john doe", ".john", "john.", "jo..hn", "john@acme.com", "jöhn", 'jo"hn', "x" * 65]
)
def test_email_account_address_rejected(value):
    (message,) = details(validate_email_account, account_body(address=value))["email_account_data.address"]
    assert message.startswith("The address ")


@pytest.mark.parametrize(
    "value, message", [(MISSING, REQUIRED), (None, REQUIRED), *((v, NOT_STRING) for v in BAD_STRINGS)]
)
def test_email_account_address_wrong_type(value, message):
    assert details(validate_email_account, account_body(address=value)) == {
        "email_account_data.address": [message]
    }


@pytest.mark.parametrize("value", [1048576, 1048577, 1073741824, 50 * 10**9, 2**63 - 1])
def test_email_account_quota_accepted(value):
    assert validate_email_account(account_body(quota=value))["quota"] == value


@pytest.mark.parametrize(
    "value, message",
    [
        (1048575, "Must be at least 1048576 bytes (1 MiB)."),
        (1, "Must be at least 1048576 bytes (1 MiB)."),
        (0, "Must be at least 1048576 bytes (1 MiB)."),
        (-1073741824, "Must be at least 1048576 bytes (1 MiB)."),
        (2**63, "Must be at most 9223372036854775807."),
        ("1073741824", NOT_INT),
        (1073741824.0, NOT_INT),
        (True, NOT_INT),
        ([1073741824], NOT_INT),
    ],
)
def test_email_account_quota_rejected(value, message):
    assert details(validate_email_account, account_body(quota=value)) == {
        "email_account_data.quota": [message]
    }


@pytest.mark.parametrize("value", ["john", 5, True, [], [{"first_name": "J"}]])
def test_email_account_user_info_must_be_an_object(value):
    assert details(validate_email_account, account_body(user_info=value)) == {
        "email_account_data.user_info": [NOT_OBJECT]
    }


@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_email_account_names(field):
    assert validate_email_account(account_body(user_info={field: "  Zoë "}))[field] == "Zoë"
    assert validate_email_account(account_body(user_info={field: "x" * 30}))[field] == "x" * 30
    assert validate_email_account(account_body(user_info={field: ""}))[field] == ""
    path = f"email_account_data.user_info.{field}"
    assert details(validate_email_account, account_body(user_info={field: "x" * 31})) == {
        path: ["At most 30 characters."]
    }
    for value in BAD_STRINGS:
        assert details(validate_email_account, account_body(user_info={field: value})) == {path: [NOT_STRING]}


@pytest.mark.parametrize("value", ["12345678", "securepassword123", "x" * 128, "  spaced out  ", "pässwörd"])
def test_email_account_password_accepted_unchanged(value):
    assert validate_email_account(account_body(user_info={"password": value}))["password"] == value


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "At least 8 characters."),
        ("Secr3t!", "At least 8 characters."),
        ("Q" * 129, "At most 128 characters."),
        (12345678, NOT_STRING),
        (True, NOT_STRING),
        (["hunter2hunter2"], NOT_STRING),
    ],
)
def test_email_account_password_rejected(value, message):
    assert details(validate_email_account, account_body(user_info={"password": value})) == {
        "email_account_data.user_info.password": [message]
    }


@pytest.mark.parametrize("password", ["S3cr#t!", "Zq" * 65, "s3cret-but-short"[:7]])
def test_email_account_password_never_appears_in_messages(password):
    exc = failure(
        validate_email_account, account_body(address="bad address", user_info={"password": password})
    )
    assert "email_account_data.user_info.password" in exc.details
    assert password not in str(exc)
    assert password not in repr(exc.args)
    assert password not in json.dumps(exc.details)


def test_email_account_reports_every_bad_field_at_once():
    body = account_body(
        organization_id="2",
        address="not valid",
        domain=None,
        quota=1024,
        user_info={"first_name": "x" * 31, "last_name": 7, "password": "short"},
    )
    errors = details(validate_email_account, body)
    assert list(errors) == [
        "email_account_data.organization_id",
        "email_account_data.address",
        "email_account_data.domain",
        "email_account_data.quota",
        "email_account_data.user_info.first_name",
        "email_account_data.user_info.last_name",
        "email_account_data.user_info.password",
    ]
    assert errors["email_account_data.organization_id"] == [NOT_INT]
    assert errors["email_account_data.address"][0].startswith("The address ")
    assert errors["email_account_data.domain"] == [REQUIRED]
    assert errors["email_account_data.quota"] == ["Must be at least 1048576 bytes (1 MiB)."]
    assert errors["email_account_data.user_info.first_name"] == ["At most 30 characters."]
    assert errors["email_account_data.user_info.last_name"] == [NOT_STRING]
    assert errors["email_account_data.user_info.password"] == ["At least 8 characters."]


# --- validate_billing_webhook ------------------------------------------------------------------


def test_webhook_document_sample():
    body = json.loads(
        """{"event_type": "payment_received", "organization_id": 2,
            "billing_data": {"amount": 99.99, "currency": "USD",
                             "description": "Monthly subscription payment", "invoice_id": "INV-2025-001"},
            "timestamp": "2025-07-28T10:00:00Z"}"""
    )
    clean = validate_billing_webhook(body)
    assert clean == {
        "event_type": "payment_received",
        "organization_id": 2,
        "amount": Decimal("99.99"),
        "currency": "USD",
        "description": "Monthly subscription payment",
        "invoice_id": "INV-2025-001",
        "timestamp": datetime(2025, 7, 28, 10, 0, tzinfo=UTC),
    }
    assert isinstance(clean["amount"], Decimal)
    assert clean["timestamp"].utcoffset().total_seconds() == 0


def test_webhook_minimal_request():
    assert validate_billing_webhook(webhook_body()) == {
        "event_type": "payment_failed",
        "organization_id": 2,
        "amount": None,
        "currency": None,
        "description": None,
        "invoice_id": None,
        "timestamp": None,
    }


def test_webhook_null_optional_fields_are_absent():
    clean = validate_billing_webhook(webhook_body(billing_data=None, timestamp=None))
    assert clean["amount"] is clean["timestamp"] is None
    body = webhook_body(
        billing_data={"amount": None, "currency": None, "description": None, "invoice_id": None}
    )
    assert validate_billing_webhook(body) == validate_billing_webhook(webhook_body())


@pytest.mark.parametrize("billing_data", [MISSING, None, {}, {"amount": None, "currency": "USD"}])
def test_webhook_payment_received_needs_an_amount(billing_data):
    body = webhook_body(event_type="payment_received", billing_data=billing_data)
    assert details(validate_billing_webhook, body) == {
        "billing_data.amount": ["Required for payment_received: the positive amount paid."]
    }


def test_webhook_ignores_unknown_fields():
    body = webhook_body(signature="x", billing_data={"amount": 5, "tax": "oops"})
    assert validate_billing_webhook(body)["amount"] == Decimal("5.00")


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_webhook_event_types_accepted(event_type):
    body = webhook_body(event_type=event_type, billing_data={"amount": 5})
    assert validate_billing_webhook(body)["event_type"] == event_type


def test_webhook_event_types_are_the_documented_ones():
    assert set(EVENT_TYPES) == {
        "subscription_created",
        "subscription_updated",
        "subscription_cancelled",
        "payment_received",
        "payment_failed",
    }


@pytest.mark.parametrize("value", ["refund_issued", "PAYMENT_RECEIVED", " payment_received", "payment", ""])
def test_webhook_unknown_event_type_names_the_allowed_values(value):
    (message,) = details(validate_billing_webhook, webhook_body(event_type=value))["event_type"]
    assert message == (
        "Must be one of: subscription_created, subscription_updated, subscription_cancelled, "
        "payment_received, payment_failed."
    )


@pytest.mark.parametrize(
    "value, message", [(MISSING, REQUIRED), (None, REQUIRED), *((v, NOT_STRING) for v in BAD_STRINGS)]
)
def test_webhook_event_type_wrong_type(value, message):
    assert details(validate_billing_webhook, webhook_body(event_type=value)) == {"event_type": [message]}


@pytest.mark.parametrize("value", GOOD_INTEGERS)
def test_webhook_organization_id_accepted(value):
    assert validate_billing_webhook(webhook_body(organization_id=value))["organization_id"] == value


@pytest.mark.parametrize("value, message", [(MISSING, REQUIRED), (None, REQUIRED), *BAD_INTEGERS])
def test_webhook_organization_id_rejected(value, message):
    assert details(validate_billing_webhook, webhook_body(organization_id=value)) == {
        "organization_id": [message]
    }


@pytest.mark.parametrize("body", [[], [{"event_type": "payment_received"}], "text", 5, None])
def test_webhook_body_must_be_an_object(body):
    assert list(details(validate_billing_webhook, body)) == ["body"]


def test_webhook_empty_object_reports_every_required_field():
    assert details(validate_billing_webhook, {}) == {"event_type": [REQUIRED], "organization_id": [REQUIRED]}


@pytest.mark.parametrize("value", ["99.99", 99.99, 5, True, [], [{"amount": 5}]])
def test_webhook_billing_data_must_be_an_object(value):
    assert details(validate_billing_webhook, webhook_body(billing_data=value)) == {
        "billing_data": [NOT_OBJECT]
    }


@pytest.mark.parametrize(
    "value, expected",
    [
        (99.99, "99.99"),
        (100, "100.00"),
        (0.01, "0.01"),
        (12.5, "12.50"),
        (1e3, "1000.00"),
        ("99.99", "99.99"),
        (" 12.5 ", "12.50"),
        ("5", "5.00"),
        ("99.990", "99.99"),
        ("+7.10", "7.10"),
        (999999999999.99, "999999999999.99"),
        ("999999999999.99", "999999999999.99"),
    ],
)
def test_webhook_amount_accepted(value, expected):
    amount = validate_billing_webhook(webhook_body(billing_data={"amount": value}))["amount"]
    assert isinstance(amount, Decimal)
    assert amount == Decimal(expected)


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "Must be greater than 0."),
        (0.0, "Must be greater than 0."),
        ("0.00", "Must be greater than 0."),
        (-1, "Must be greater than 0."),
        (-99.99, "Must be greater than 0."),
        ("-5", "Must be greater than 0."),
        (0.0000001, "At most 6 decimal places."),
        ("1.0000005", "At most 6 decimal places."),
        (0.1 + 0.2, "At most 6 decimal places."),
        (10**12, "Must be less than 1000000000000."),
        ("1e3", "Must be a number, like 99.99."),
        ("abc", "Must be a number, like 99.99."),
        ("", "Must be a number, like 99.99."),
        ("1,000.00", "Must be a number, like 99.99."),
        ("NaN", "Must be a number, like 99.99."),
        ("Infinity", "Must be a number, like 99.99."),
        (float("nan"), "Must be a number, like 99.99."),
        (float("inf"), "Must be a number, like 99.99."),
        ("$5", "Must be a number, like 99.99."),
        (True, "Must be a number, like 99.99."),
        ([5], "Must be a number, like 99.99."),
        ({"value": 5}, "Must be a number, like 99.99."),
    ],
)
def test_webhook_amount_rejected(value, message):
    assert details(validate_billing_webhook, webhook_body(billing_data={"amount": value})) == {
        "billing_data.amount": [message]
    }


@pytest.mark.parametrize(
    "value, expected", [("USD", "USD"), ("usd", "USD"), ("Eur", "EUR"), (" kes ", "KES")]
)
def test_webhook_currency_accepted(value, expected):
    assert validate_billing_webhook(webhook_body(billing_data={"currency": value}))["currency"] == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("US", "Must be a 3-letter ISO 4217 currency code, like USD."),
        ("USDD", "Must be a 3-letter ISO 4217 currency code, like USD."),
        ("U5D", "Must be a 3-letter ISO 4217 currency code, like USD."),
        ("US D", "Must be a 3-letter ISO 4217 currency code, like USD."),
        ("", "Must be a 3-letter ISO 4217 currency code, like USD."),
        ("€", "Must be a 3-letter ISO 4217 currency code, like USD."),
        (840, NOT_STRING),
        (True, NOT_STRING),
    ],
)
def test_webhook_currency_rejected(value, message):
    assert details(validate_billing_webhook, webhook_body(billing_data={"currency": value})) == {
        "billing_data.currency": [message]
    }


def test_webhook_description():
    check = validate_billing_webhook
    assert check(webhook_body(billing_data={"description": " Monthly "}))["description"] == "Monthly"
    assert check(webhook_body(billing_data={"description": "d" * 500}))["description"] == "d" * 500
    assert check(webhook_body(billing_data={"description": ""}))["description"] is None
    assert details(check, webhook_body(billing_data={"description": "d" * 501})) == {
        "billing_data.description": ["At most 500 characters."]
    }
    for value in BAD_STRINGS:
        assert details(check, webhook_body(billing_data={"description": value})) == {
            "billing_data.description": [NOT_STRING]
        }


@pytest.mark.parametrize(
    "value, expected", [("INV-2025-001", "INV-2025-001"), (" INV-1 ", "INV-1"), ("i" * 128, "i" * 128)]
)
def test_webhook_invoice_id_accepted(value, expected):
    assert (
        validate_billing_webhook(webhook_body(billing_data={"invoice_id": value}))["invoice_id"] == expected
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "Must not be blank."),
        ("   ", "Must not be blank."),
        ("i" * 129, "At most 128 characters."),
        (2025001, NOT_STRING),
        (True, NOT_STRING),
        (["INV-1"], NOT_STRING),
    ],
)
def test_webhook_invoice_id_rejected(value, message):
    assert details(validate_billing_webhook, webhook_body(billing_data={"invoice_id": value})) == {
        "billing_data.invoice_id": [message]
    }


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-07-28T10:00:00Z", datetime(2025, 7, 28, 10, tzinfo=UTC)),
        ("2025-07-28t10:00:00z", datetime(2025, 7, 28, 10, tzinfo=UTC)),
        ("2025-07-28T10:00:00+00:00", datetime(2025, 7, 28, 10, tzinfo=UTC)),
        ("2025-07-28T12:30:00+02:00", datetime(2025, 7, 28, 10, 30, tzinfo=UTC)),
        ("2025-07-28T05:00:00-0500", datetime(2025, 7, 28, 10, tzinfo=UTC)),
        ("2025-07-28T01:00:00+03:00", datetime(2025, 7, 27, 22, tzinfo=UTC)),
        ("2025-07-28T10:00:00.250Z", datetime(2025, 7, 28, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2025-07-28T10:00Z", datetime(2025, 7, 28, 10, tzinfo=UTC)),
        ("2025-07-28 10:00:00", datetime(2025, 7, 28, 10, tzinfo=UTC)),
        (" 2025-07-28T10:00:00Z ", datetime(2025, 7, 28, 10, tzinfo=UTC)),
    ],
)
def test_webhook_timestamp_accepted_as_aware_utc(value, expected):
    moment = validate_billing_webhook(webhook_body(timestamp=value))["timestamp"]
    assert moment == expected
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    ["", "2025-07-28", "10:00:00", "yesterday", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z",
     "2025-07-28T25:00:00Z", "2025-07-28T10:61:00Z", "20250728T100000Z", "28/07/2025 10:00",
     "2025-07-28T10:00:00+25:00", "2025-07-28T10:00:00 UTC", "0001-01-01T00:00:00+01:00"],
)  # fmt: skip
def test_webhook_timestamp_rejected(value):
    assert details(validate_billing_webhook, webhook_body(timestamp=value)) == {
        "timestamp": ["Must be an ISO 8601 date and time, like 2025-07-28T10:00:00Z."]
    }


@pytest.mark.parametrize("value", [1753696800, 1753696800.0, True, ["2025-07-28T10:00:00Z"]])
def test_webhook_timestamp_must_be_a_string(value):
    assert details(validate_billing_webhook, webhook_body(timestamp=value)) == {"timestamp": [NOT_STRING]}


def test_webhook_reports_every_bad_field_at_once():
    body = {
        "event_type": "refund",
        "organization_id": True,
        "billing_data": {"amount": -1, "currency": "dollars", "description": "d" * 501, "invoice_id": ""},
        "timestamp": "now",
    }
    assert list(details(validate_billing_webhook, body)) == [
        "event_type",
        "organization_id",
        "billing_data.amount",
        "billing_data.currency",
        "billing_data.description",
        "billing_data.invoice_id",
        "timestamp",
    ]


# --- validate_usage_query ----------------------------------------------------------------------


def usage(**args):
    return validate_usage_query(args, TODAY)


def usage_errors(**args):
    return details(validate_usage_query, args, TODAY)


def test_usage_defaults():
    assert usage() == {
        "organization_id": None,
        "start_date": date(2025, 7, 1),
        "end_date": date(2025, 7, 15),
        "include_details": False,
        "limit": None,
        "offset": None,
        "events_limit": None,
        "events_offset": None,
    }


def test_usage_defaults_on_the_first_of_the_month():
    clean = validate_usage_query({}, date(2025, 8, 1))
    assert (clean["start_date"], clean["end_date"]) == (date(2025, 8, 1), date(2025, 8, 1))


def test_usage_document_sample():
    clean = usage(start_date="2025-07-01", end_date="2025-07-31")
    assert (clean["start_date"], clean["end_date"]) == (date(2025, 7, 1), date(2025, 7, 31))


def test_usage_empty_values_are_absent():
    assert (
        usage(organization_id="", start_date="", end_date="", include_details="", limit="", offset="")
        == usage()
    )


def test_usage_single_day_and_leap_day():
    clean = usage(start_date="2024-02-29", end_date="2024-02-29")
    assert clean["start_date"] == clean["end_date"] == date(2024, 2, 29)


def test_usage_only_start_date_runs_until_today():
    clean = usage(start_date="2025-01-10")
    assert (clean["start_date"], clean["end_date"]) == (date(2025, 1, 10), TODAY)


def test_usage_only_end_date_starts_on_the_first_of_its_month():
    clean = usage(end_date="2025-03-20")
    assert (clean["start_date"], clean["end_date"]) == (date(2025, 3, 1), date(2025, 3, 20))


def test_usage_start_after_end_is_an_error_on_start_date():
    assert usage_errors(start_date="2025-07-31", end_date="2025-07-01") == {
        "start_date": ["Must not be after end_date."]
    }
    assert usage_errors(start_date="2025-08-01") == {"start_date": ["Must not be after end_date."]}


@pytest.mark.parametrize("field", ["start_date", "end_date"])
@pytest.mark.parametrize(
    "value",
    ["2025-7-1", "2025-07-1", "25-07-01", "2025/07/01", "20250701", "01-07-2025", "2025-02-30", "2025-13-01",
     "2025-00-10", "2025-07-01T00:00:00", " 2025-07-01", "2025-07-01 ", "yesterday", "２０２５-07-01"],
)  # fmt: skip
def test_usage_bad_dates(field, value):
    assert usage_errors(**{field: value}) == {field: ["Must be a real date in YYYY-MM-DD format."]}


@pytest.mark.parametrize(
    "value, expected",
    [("true", True), ("True", True), ("TRUE", True), ("1", True), ("false", False), ("False", False),
     ("FALSE", False), ("0", False)],
)  # fmt: skip
def test_usage_include_details_accepted(value, expected):
    assert usage(include_details=value)["include_details"] is expected


@pytest.mark.parametrize("value", ["yes", "no", "on", "2", "-1", "t", "truee", " true"])
def test_usage_include_details_rejected(value):
    assert usage_errors(include_details=value) == {"include_details": ["Must be one of: true, false, 1, 0."]}


@pytest.mark.parametrize("value, expected", [("1", 1), ("42", 42), ("007", 7), ("2147483647", 2147483647)])
def test_usage_organization_id_accepted(value, expected):
    assert usage(organization_id=value)["organization_id"] == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "Must be at least 1."),
        ("-1", "Must be at least 1."),
        ("2147483648", "Must be at most 2147483647."),
        ("9" * 20, "Must be at most 2147483647."),
        ("9" * 5000, NOT_INT),
        ("abc", NOT_INT),
        ("5.0", NOT_INT),
        ("1e3", NOT_INT),
        ("+5", NOT_INT),
        (" 5", NOT_INT),
        ("5_000", NOT_INT),
        ("٥", NOT_INT),
        ("true", NOT_INT),
    ],
)
def test_usage_organization_id_rejected(value, message):
    assert usage_errors(organization_id=value) == {"organization_id": [message]}


@pytest.mark.parametrize("value, expected", [("1", 1), ("50", 50), ("1000", 1000)])
def test_usage_limit_accepted(value, expected):
    assert usage(limit=value)["limit"] == expected


@pytest.mark.parametrize(
    "value, message",
    [("0", "Must be at least 1."), ("-5", "Must be at least 1."), ("1001", "Must be at most 1000."), ("ten", NOT_INT),
     ("10.5", NOT_INT)],
)  # fmt: skip
def test_usage_limit_rejected(value, message):
    assert usage_errors(limit=value) == {"limit": [message]}


@pytest.mark.parametrize("value, expected", [("0", 0), ("1", 1), ("5000", 5000)])
def test_usage_offset_accepted(value, expected):
    assert usage(offset=value)["offset"] == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("-1", "Must be at least 0."),
        ("x", NOT_INT),
        ("1.0", NOT_INT),
        ("2147483648", "Must be at most 2147483647."),
    ],
)
def test_usage_offset_rejected(value, message):
    assert usage_errors(offset=value) == {"offset": [message]}


def test_usage_reports_every_bad_parameter_at_once():
    assert usage_errors(
        organization_id="x",
        start_date="2025-02-30",
        end_date="tomorrow",
        include_details="maybe",
        limit="0",
        offset="-1",
    ) == {
        "start_date": ["Must be a real date in YYYY-MM-DD format."],
        "end_date": ["Must be a real date in YYYY-MM-DD format."],
        "include_details": ["Must be one of: true, false, 1, 0."],
        "organization_id": [NOT_INT],
        "limit": ["Must be at least 1."],
        "offset": ["Must be at least 0."],
    }


def test_usage_ignores_unknown_parameters_and_reads_werkzeug_multidicts():
    args = MultiDict(
        [("organization_id", "3"), ("organization_id", "4"), ("page", "x"), ("include_details", "1")]
    )
    clean = validate_usage_query(args, TODAY)
    assert clean["organization_id"] == 3
    assert clean["include_details"] is True
