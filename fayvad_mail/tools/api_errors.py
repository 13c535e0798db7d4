"""Errors of the HTTP API: a status, a machine code and a human message;
which answer an exception raised under the API's prefixes gets; the JSON
response of an error."""

import json

import psycopg2
import werkzeug.exceptions
import werkzeug.wrappers

from odoo.exceptions import AccessDenied, AccessError
from odoo.sql_db import PoolError

API_PREFIXES = ("/fayvad_api/", "/erp/")
DEFAULT_MAX_BODY = 1024 * 1024  # bytes; ir.config_parameter fayvad_mail.max_body_bytes


class ApiError(Exception):
    """Raised by controllers and models; answered as
    ``{"error": message, "error_code": code[, "details": ...]}``."""

    def __init__(self, status, code, message, details=None, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.extra = extra

    def body(self):
        body = {**self.extra, "error": self.message, "error_code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def validation_error(details, message="Request data validation failed"):
    return ApiError(400, "VALIDATION_ERROR", message, details=details)


def is_api_request(httprequest):
    return httprequest.path.startswith(API_PREFIXES)


def json_error_response(error):
    """The JSON response of an ApiError (headers included)."""
    headers = [("Cache-Control", "no-store")]
    if error.status == 503:
        headers.append(("Retry-After", "5"))
    if error.status == 401:
        headers.append(("WWW-Authenticate", "Token"))
    if error.status == 405 and error.extra.get("allow"):
        headers.append(("Allow", ", ".join(error.extra.pop("allow"))))
    return werkzeug.wrappers.Response(
        json.dumps(error.body()), status=error.status, headers=headers, content_type="application/json"
    )


def api_error_of(exception, max_body=DEFAULT_MAX_BODY):
    """The caller's answer to an exception raised under the API prefixes:
    its own status and a message written for the caller, never the
    exception's text (that goes to the server log)."""
    if isinstance(exception, ApiError):
        return exception
    if isinstance(exception, werkzeug.exceptions.RequestEntityTooLarge):
        return ApiError(
            413, "PAYLOAD_TOO_LARGE", f"The request body is larger than the {max_body} bytes accepted"
        )
    if isinstance(exception, werkzeug.exceptions.NotFound):
        return ApiError(404, "NOT_FOUND", "No such API route")
    if isinstance(exception, werkzeug.exceptions.MethodNotAllowed):
        return ApiError(405, "METHOD_NOT_ALLOWED", "Method not allowed")
    if isinstance(exception, werkzeug.exceptions.BadRequest):
        return ApiError(
            400,
            "VALIDATION_ERROR",
            "The request is malformed",
            details={"request": ["Malformed HTTP request."]},
        )
    if isinstance(exception, (AccessError, AccessDenied)):
        return ApiError(403, "PERMISSION_DENIED", "This API key's user may not do this")
    if isinstance(exception, werkzeug.exceptions.HTTPException) and exception.code and exception.code < 500:
        return ApiError(exception.code, "VALIDATION_ERROR", "The request cannot be served")
    if isinstance(exception, psycopg2.OperationalError | psycopg2.InterfaceError | PoolError):
        return UNAVAILABLE  # the database went away (restarted, unreachable): retry
    return ApiError(500, "INTERNAL_ERROR", "Internal error; the request was not applied")


UNAVAILABLE = ApiError(503, "SERVICE_UNAVAILABLE", "The service is unavailable; retry later")


class ApiAbort(werkzeug.exceptions.HTTPException):
    """An HTTP exception carrying a ready JSON response: Odoo answers it
    as is, also when raised during authentication."""

    def __init__(self, error):
        super().__init__(description=error.message, response=json_error_response(error))
        self.code = error.status
