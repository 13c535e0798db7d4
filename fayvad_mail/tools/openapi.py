"""The OpenAPI 3.1 document of the ERP integration routes, served at
/fayvad_api/erp/openapi.json. Tests check real answers against it."""

from ..const import ERROR_CODES
from .validation import EVENT_TYPES, EVENTS_PAGE_MAX

TOO_LARGE = "Request body above the limit (1 MiB by default), refused before it is read"

INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}


def nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties, required=None, extra=True):
    """An object of ``properties``, all of them required unless ``required`` says which."""
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
    }
    if not extra:
        schema["additionalProperties"] = False
    return schema


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def error_response(description, codes, webhook=False):
    """An error answer whose ``error_code`` is one of ``codes``."""
    schema = {
        "allOf": [
            ref("WebhookError") if webhook else ref("Error"),
            {"properties": {"error_code": {"enum": list(codes)}}},
        ]
    }
    return {
        "description": f"{description} ({', '.join(codes)})",
        "content": {"application/json": {"schema": schema}},
    }


def provisioning_response(description, result_schema, outcome):
    """201 done, 202 pending, 500 refused: the result, with what tells them apart."""
    extra = {
        "201": {"properties": {"provisioned": {"const": True}}},
        "202": {
            "properties": {"provisioned": {"const": False}, "provisioning_status": {"const": "pending"}},
            "required": ["provisioning_status"],
        },
        "500": {
            "properties": {
                "provisioned": {"const": False},
                "provisioning_status": {"const": "failed"},
                "error_code": {"const": "PROVISIONING_FAILED"},
            },
            "required": ["provisioning_status", "error", "error_code"],
        },
    }[outcome]
    return json_response(description, {"allOf": [ref(result_schema), extra]})


def json_response(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SCHEMAS = {
    "Error": obj(
        {
            "error": STR,
            "error_code": {"type": "string", "enum": ERROR_CODES},
            "details": {"type": "object", "additionalProperties": {"type": "array", "items": STR}},
        },
        required=["error", "error_code"],
    ),
    "WebhookError": obj(
        {
            "processed": {"const": False},
            "error": STR,
            "error_code": {"type": "string", "enum": ERROR_CODES},
            "details": {"type": "object", "additionalProperties": {"type": "array", "items": STR}},
        },
        required=["processed", "error", "error_code"],
    ),
    "UsageSummary": obj(
        {
            "period": obj({"start_date": DATE, "end_date": DATE}),
            "summary": obj(
                {
                    "total_organizations": INT,
                    "active_organizations": INT,
                    "suspended_organizations": INT,
                    "total_users": INT,
                    "active_users": INT,
                    "total_storage_gb": NUM,
                    "total_revenue": NUM,
                    "currency": STR,
                }
            ),
            "organizations": {"type": "array", "items": ref("OrganizationUsage")},
            "billing_events": {"type": "array", "items": ref("BillingEvent")},
            "pagination": obj({"total": INT, "offset": INT, "limit": nullable(INT), "count": INT}),
            "events_pagination": obj({"total": INT, "offset": INT, "limit": nullable(INT), "count": INT}),
        },
        required=["period", "summary", "organizations", "billing_events"],
    ),
    "OrganizationUsage": obj(
        {
            "id": INT,
            "name": STR,
            "odoo_customer_id": INT,
            "state": STR,
            "users": obj({"total": INT, "active": INT, "inactive": INT}),
            "storage": obj({"used_gb": NUM, "limit_gb": NUM, "percentage": NUM}),
            "subscription": nullable(
                obj({"plan_name": nullable(STR), "amount": NUM, "currency": STR, "status": STR})
            ),
            "email_accounts": {
                "type": "array",
                "items": obj({"id": INT, "email": STR, "active": BOOL, "quota": INT, "used": INT}),
            },
            "domains": {"type": "array", "items": obj({"id": INT, "name": STR, "state": STR})},
            "aliases": {
                "type": "array",
                "items": obj(
                    {
                        "id": INT,
                        "email": STR,
                        "recipients": {"type": "array", "items": STR},
                        "active": BOOL,
                        "kind": {"type": "string", "enum": ["alias", "catchall", "forward"]},
                    }
                ),
            },
            "domain_aliases": {"type": "array", "items": obj({"id": INT, "name": STR, "domain_id": INT})},
        },
        required=["id", "name", "odoo_customer_id", "users", "storage", "subscription"],
    ),
    "BillingEvent": obj(
        {
            "id": INT,
            "organization_id": INT,
            "event_type": STR,
            "event_date": DATE,
            "quantity": NUM,
            "unit_price": NUM,
            "amount": NUM,
            "currency": STR,
            "description": STR,
            "odoo_synced": BOOL,
        }
    ),
    "OrganizationRequest": obj(
        {
            "organization_data": obj(
                {
                    "name": {"type": "string", "maxLength": 200},
                    "domain": STR,
                    "odoo_customer_id": {"type": "integer", "minimum": 1},
                    "max_users": {"type": "integer", "minimum": 1, "default": 10},
                    "max_storage_gb": {"type": "integer", "minimum": 1, "default": 50},
                    "plan_id": nullable({"type": "integer", "minimum": 1}),
                    "contact_info": obj(
                        {
                            "primary_email": {"type": "string", "format": "email"},
                            "phone": STR,
                            "address": STR,
                        },
                        required=[],
                    ),
                },
                required=["name", "domain", "odoo_customer_id"],
            )
        }
    ),
    "OrganizationResult": obj(
        {
            "provisioned": BOOL,
            "provisioning_status": {"type": "string", "enum": ["pending", "failed"]},
            "organization": obj(
                {
                    "id": INT,
                    "name": STR,
                    "domain_name": STR,
                    "odoo_customer_id": INT,
                    "max_users": INT,
                    "max_storage_gb": INT,
                    "is_active": BOOL,
                    "state": STR,
                    "created_at": DATETIME,
                }
            ),
            "subscription": nullable(
                obj({"id": INT, "plan_name": nullable(STR), "status": STR, "amount": NUM})
            ),
            "provisioning_details": obj(
                {
                    "domain_created": BOOL,
                    "dns_records_generated": BOOL,
                    "initial_admin_created": BOOL,
                    "domain_verified": {
                        "type": "boolean",
                        "description": "whether the DNS proved the customer holds the domain (the "
                        "`verification` TXT record, or MX records pointing only at the mail server); "
                        "checked by a cron, first every few minutes, for up to 30 days",
                    },
                    "receives_mail": {
                        "type": "boolean",
                        "description": "whether the mail server delivers the domain's mail and lets its "
                        "mailboxes log in: once verified, or at once when the company does not require "
                        "verification",
                    },
                    "dns_records": {
                        "type": "array",
                        "description": "the records the customer publishes, the ownership TXT record first, "
                        "with what the last DNS check found",
                        "items": obj(
                            {
                                "purpose": {"enum": ["verification", "mx", "spf", "dkim", "dmarc"]},
                                "type": {"enum": ["TXT", "MX"]},
                                "name": STR,
                                "value": STR,
                                "priority": INT,
                                "status": {
                                    "enum": [
                                        "waiting",
                                        "to_publish",
                                        "published",
                                        "missing",
                                        "different",
                                        "unknown",
                                    ]
                                },
                            }
                        ),
                    },
                }
            ),
            "error": STR,
            "error_code": STR,
        },
        required=["provisioned", "organization", "subscription", "provisioning_details"],
    ),
    "EmailAccountRequest": obj(
        {
            "email_account_data": obj(
                {
                    "organization_id": {"type": "integer", "minimum": 1},
                    "address": STR,
                    "domain": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "id of a domain of the organization",
                    },
                    "quota": {"type": "integer", "minimum": 1048576, "description": "bytes"},
                    "user_info": obj(
                        {
                            "first_name": {"type": "string", "maxLength": 30},
                            "last_name": {"type": "string", "maxLength": 30},
                            "password": {
                                "type": "string",
                                "minLength": 8,
                                "maxLength": 128,
                                "writeOnly": True,
                                "description": "generated when absent; must follow the mail server's "
                                "password policy (400 VALIDATION_ERROR naming the rule otherwise)",
                            },
                        },
                        required=[],
                    ),
                },
                required=["organization_id", "address", "domain"],
            )
        }
    ),
    "EmailAccountResult": obj(
        {
            "provisioned": BOOL,
            "provisioning_status": {"type": "string", "enum": ["pending", "failed"]},
            "email_account": obj(
                {
                    "id": INT,
                    "email": STR,
                    "first_name": STR,
                    "last_name": STR,
                    "quota": INT,
                    "organization_id": INT,
                    "domain_id": INT,
                    "state": STR,
                }
            ),
            "provisioning_details": obj(
                {"mailbox_created": BOOL, "user_profile_created": BOOL, "quota_set": BOOL}
            ),
            "error": STR,
            "error_code": STR,
        },
        required=["provisioned", "email_account", "provisioning_details"],
    ),
    "AliasRequest": obj(
        {
            "alias_data": obj(
                {
                    "organization_id": {"type": "integer", "minimum": 1},
                    "domain": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "id of a domain of the organization",
                    },
                    "address": {
                        "type": "string",
                        "maxLength": 64,
                        "description": 'local part ("sales"); "" makes the domain\'s catch-all',
                    },
                    "recipients": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 100,
                        "items": {"type": "string", "format": "email"},
                    },
                    "description": {"type": "string", "maxLength": 200},
                },
                required=["organization_id", "domain", "address", "recipients"],
            )
        }
    ),
    "AliasResult": obj(
        {
            "provisioned": BOOL,
            "provisioning_status": {"type": "string", "enum": ["pending", "failed"]},
            "alias": obj(
                {
                    "id": INT,
                    "email": STR,
                    "recipients": {"type": "array", "items": STR},
                    "organization_id": INT,
                    "domain_id": INT,
                    "state": STR,
                }
            ),
            "error": STR,
            "error_code": STR,
        },
        required=["provisioned", "alias"],
    ),
    "DomainAliasRequest": obj(
        {
            "domain_alias_data": obj(
                {
                    "organization_id": {"type": "integer", "minimum": 1},
                    "domain": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "id of the target domain, a domain of the organization",
                    },
                    "name": {"type": "string", "maxLength": 253, "description": "the other domain name"},
                }
            )
        }
    ),
    "DomainAliasResult": obj(
        {
            "provisioned": BOOL,
            "provisioning_status": {"type": "string", "enum": ["pending", "failed"]},
            "domain_alias": obj(
                {
                    "id": INT,
                    "name": STR,
                    "domain_id": INT,
                    "organization_id": INT,
                    "state": STR,
                    "dns_records": {
                        "type": "array",
                        "items": STR,
                        "description": "zone-file lines to publish (MX, SPF, DMARC)",
                    },
                }
            ),
            "error": STR,
            "error_code": STR,
        },
        required=["provisioned", "domain_alias"],
    ),
    "BillingWebhook": obj(
        {
            "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
            "organization_id": {"type": "integer", "minimum": 1},
            "billing_data": obj(
                {
                    "amount": {"type": ["number", "string"], "description": "positive decimal"},
                    "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
                    "description": {"type": "string", "maxLength": 500},
                    "invoice_id": STR,
                },
                required=[],
            ),
            "timestamp": DATETIME,
        },
        required=["event_type", "organization_id"],
    ),
    "WebhookResult": obj(
        {
            "processed": {"const": True},
            "webhook_id": STR,
            "organization_id": INT,
            "event_type": STR,
            "processed_at": DATETIME,
            "duplicate": BOOL,
        }
    ),
}

AUTH_ERRORS = {
    "401": error_response("Missing, malformed, unknown or expired API key", ["AUTHENTICATION_FAILED"]),
    "403": error_response("The key's user is not in the ERP API group", ["PERMISSION_DENIED"]),
    "405": error_response("Wrong HTTP method", ["METHOD_NOT_ALLOWED"]),
}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Same key and body replays the first answer; same key, other body: 409 CONFLICT.",
}


def _provision(summary, request_schema, result_schema, conflicts, not_found):
    responses = {
        "201": provisioning_response("Provisioned on the mail server", result_schema, "201"),
        "202": provisioning_response(
            "Accepted; the mail server is slow or down and a cron finishes the job", result_schema, "202"
        ),
        "400": error_response("Invalid request or already exists", ["VALIDATION_ERROR", *conflicts]),
        **AUTH_ERRORS,
        "409": error_response("Idempotency-Key reused with another body, or still in progress", ["CONFLICT"]),
        "413": error_response(TOO_LARGE, ["PAYLOAD_TOO_LARGE"]),
        "500": provisioning_response(
            "The mail server refused (PROVISIONING_FAILED); the records stay, in state failed",
            result_schema,
            "500",
        ),
    }
    if not_found:
        responses["404"] = error_response("Unknown organization or domain", not_found)
    return {
        "post": {
            "summary": summary,
            "security": [{"token": []}, {"bearer": []}],
            "parameters": [IDEMPOTENCY],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref(request_schema)}},
            },
            "responses": responses,
        }
    }


def _webhook(summary, extra_parameters=()):
    return {
        "post": {
            "summary": summary,
            "parameters": [
                *extra_parameters,
                {
                    "name": "Webhook-Id",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 255},
                    "description": "The sender's id of the event (X-Webhook-Id too): a repeat with the "
                    "same id is applied once. Without it, an event naming an invoice is identified by "
                    "(organization, event_type, invoice_id, timestamp), any other by its body.",
                },
                {
                    "name": "X-Webhook-Signature",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^sha256=[0-9a-fA-F]{64}$"},
                    "description": "sha256=<hex HMAC-SHA256 of the raw body with a live shared secret>; "
                    "or sign with the Standard Webhooks headers instead",
                },
                {
                    "name": "webhook-signature",
                    "in": "header",
                    "required": False,
                    "schema": STR,
                    "description": "Standard Webhooks: v1,<base64 HMAC-SHA256 of 'id.timestamp.body'>, "
                    "several space-separated during a rotation; with webhook-id and webhook-timestamp "
                    "(Unix seconds, within 5 minutes)",
                },
                {"name": "webhook-timestamp", "in": "header", "required": False, "schema": STR},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("BillingWebhook")}},
            },
            "responses": {
                "200": json_response(
                    "Applied, or a repeat of an applied delivery (duplicate: true)", ref("WebhookResult")
                ),
                "400": error_response(
                    "Bad signature, no secret configured, or invalid payload",
                    ["INVALID_WEBHOOK_SIGNATURE", "VALIDATION_ERROR"],
                    webhook=True,
                ),
                "404": error_response(
                    "Unknown organization or webhook URL",
                    ["ORGANIZATION_NOT_FOUND", "NOT_FOUND"],
                    webhook=True,
                ),
                "405": error_response("Wrong HTTP method", ["METHOD_NOT_ALLOWED"]),
                "413": error_response(TOO_LARGE, ["PAYLOAD_TOO_LARGE"]),
                "500": error_response(
                    "The event could not be applied", ["WEBHOOK_PROCESSING_FAILED"], webhook=True
                ),
            },
        }
    }


def or_empty(schema):
    """A query parameter that may also be sent empty, meaning its default."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def openapi_document():
    query = [
        {"name": "organization_id", "in": "query", "schema": or_empty({"type": "integer", "minimum": 1})},
        {
            "name": "start_date",
            "in": "query",
            "schema": or_empty(DATE),
            "description": "inclusive; default (also when empty): 1st of this month",
        },
        {
            "name": "end_date",
            "in": "query",
            "schema": or_empty(DATE),
            "description": "inclusive; default (also when empty): today",
        },
        {
            "name": "include_details",
            "in": "query",
            "schema": or_empty(
                {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$"}
            ),
            "description": "true, false, 1 or 0, in any case",
        },
        {
            "name": "limit",
            "in": "query",
            "schema": or_empty({"type": "integer", "minimum": 1, "maximum": 1000}),
            "description": "a page of organizations (answer: pagination); billing_events then lists "
            "the events of the page's organizations only; summary still counts every organization",
        },
        {"name": "offset", "in": "query", "schema": or_empty({"type": "integer", "minimum": 0})},
        {
            "name": "events_limit",
            "in": "query",
            "schema": or_empty({"type": "integer", "minimum": 1, "maximum": EVENTS_PAGE_MAX}),
            "description": "a page of billing_events, oldest first (answer: events_pagination)",
        },
        {"name": "events_offset", "in": "query", "schema": or_empty({"type": "integer", "minimum": 0})},
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fayvad_mail ERP integration API",
            "version": "1.0.0",
            "description": "Usage summary, provisioning and billing webhooks, served by Odoo. "
            "Every error is JSON: {error, error_code[, details]}.",
        },
        "servers": [{"url": "/fayvad_api/erp"}, {"url": "/erp"}],
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Token <api key>",
                },
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": SCHEMAS,
        },
        "paths": {
            "/usage-summary/": {
                "get": {
                    "summary": "Usage summary of the period",
                    "security": [{"token": []}, {"bearer": []}],
                    "parameters": query,
                    "responses": {
                        "200": json_response("The summary", ref("UsageSummary")),
                        "400": error_response("Invalid query", ["VALIDATION_ERROR"]),
                        "404": error_response("Unknown organization", ["ORGANIZATION_NOT_FOUND"]),
                        **AUTH_ERRORS,
                    },
                }
            },
            "/metrics/": {
                "get": {
                    "summary": "Monitoring figures in the Prometheus text format",
                    "description": "Provisioning jobs by type and state, finished jobs and success ratios "
                    "per window (1h, 24h, 7d), request-to-done seconds (median, 95th percentile), the queue's "
                    "depth and oldest job, webhook deliveries by outcome (a counter), the billing sync's "
                    "backlog and failures, the usage-reading lag, domains by verification and the last DNS "
                    "check; for the API user's companies. The same few SQL aggregates whatever the number "
                    "of organizations.",
                    "security": [{"token": []}, {"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "The figures (text exposition format 0.0.4)",
                            "content": {"text/plain; version=0.0.4": {"schema": STR}},
                        },
                        **AUTH_ERRORS,
                    },
                }
            },
            "/provision/organization/": _provision(
                "Provision an organization",
                "OrganizationRequest",
                "OrganizationResult",
                ["ORGANIZATION_ALREADY_EXISTS", "ODOO_CUSTOMER_ID_EXISTS"],
                None,
            ),
            "/provision/email-account/": _provision(
                "Provision an email account",
                "EmailAccountRequest",
                "EmailAccountResult",
                ["EMAIL_ACCOUNT_ALREADY_EXISTS"],
                ["ORGANIZATION_NOT_FOUND", "DOMAIN_NOT_FOUND"],
            ),
            "/provision/alias/": _provision(
                "Provision an alias or a catch-all",
                "AliasRequest",
                "AliasResult",
                ["ALIAS_ALREADY_EXISTS"],
                ["ORGANIZATION_NOT_FOUND", "DOMAIN_NOT_FOUND"],
            ),
            "/provision/domain-alias/": _provision(
                "Provision a domain alias",
                "DomainAliasRequest",
                "DomainAliasResult",
                ["ORGANIZATION_ALREADY_EXISTS"],
                ["ORGANIZATION_NOT_FOUND", "DOMAIN_NOT_FOUND"],
            ),
            "/webhooks/billing/": _webhook("Billing webhook (company secret)"),
            "/webhooks/billing/{token}/": _webhook(
                "Billing webhook of one organization (its own secret)",
                [{"name": "token", "in": "path", "required": True, "schema": STR}],
            ),
        },
    }
