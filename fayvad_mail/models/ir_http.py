import json
import logging

import psycopg2
import werkzeug.exceptions
import werkzeug.wrappers
from werkzeug.datastructures import ImmutableMultiDict

from odoo import http, models
from odoo.exceptions import AccessDenied, AccessError
from odoo.http import request
from odoo.sql_db import PoolError

from ..tools.api_errors import ApiError

_logger = logging.getLogger(__name__)

API_PREFIXES = ("/fayvad_api/", "/erp/")
API_GROUP = "fayvad_mail.fayvad_mail_group_api"
DEFAULT_MAX_BODY = 1024 * 1024  # bytes; ir.config_parameter fayvad_mail.max_body_bytes
# query parameters Odoo would pass as keyword arguments named like the route's own
RESERVED_PARAMS = {"self"}


def max_body_bytes(_controller=None):
    """The largest request body the API reads (``max_content_length`` of its routes)."""
    try:
        value = request.env["ir.config_parameter"].sudo().get_param("fayvad_mail.max_body_bytes")
        return max(int(value), 1) if value else DEFAULT_MAX_BODY
    except Exception:  # no database at hand, or a bad value: the default
        return DEFAULT_MAX_BODY


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
    return request.make_json_response(error.body(), status=error.status, headers=headers)


def api_error_of(exception):
    """The caller's answer to an exception raised under the API prefixes:
    its own status and a message written for the caller, never the
    exception's text (that goes to the server log)."""
    if isinstance(exception, ApiError):
        return exception
    if isinstance(exception, werkzeug.exceptions.RequestEntityTooLarge):
        return ApiError(
            413, "PAYLOAD_TOO_LARGE", f"The request body is larger than the {max_body_bytes()} bytes accepted"
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


LISTEN_BACKLOG = 128  # connections the kernel queues for Odoo's workers (capped by net.core.somaxconn)


def raise_listen_backlog():
    """Odoo's prefork server listens with a backlog of 8 connections per
    worker: a burst of deliveries beyond it (billing systems send them in
    bursts) is reset by the kernel before any worker sees it. A larger
    backlog queues them until a worker is free."""
    from odoo.service import server as odoo_server

    running = odoo_server.server
    sock = getattr(running, "socket", None)
    if isinstance(running, odoo_server.PreforkServer) and sock is not None:
        try:
            sock.listen(max(LISTEN_BACKLOG, 8 * running.population))
        except OSError:  # closed meanwhile
            return


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    def _register_hook(self):
        super()._register_hook()
        raise_listen_backlog()

    @classmethod
    def _auth_method_fayvad_api(cls):
        """``Authorization: Token <key>`` (or ``Bearer <key>``): an API key of
        fayvad_mail's scope whose user is in the ERP API group."""
        header = request.httprequest.headers.get("Authorization", "")
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if (
            scheme.lower() not in ("token", "bearer")
            or not key
            or not key.isascii()
            or not key.isprintable()
            or " " in key
            or len(key) > 256
        ):
            raise ApiAbort(
                ApiError(
                    401,
                    "AUTHENTICATION_FAILED",
                    "Authentication required: send 'Authorization: Token <api key>'",
                )
            )
        user_id = request.env["res.users.apikeys"].sudo()._fayvad_check_credentials(key)
        if not user_id:
            _logger.info(
                "fayvad_mail API: rejected an unknown or expired key from %s", request.httprequest.remote_addr
            )
            raise ApiAbort(ApiError(401, "AUTHENTICATION_FAILED", "Invalid or expired API key"))
        request.update_env(user=user_id)
        if not request.env.user._is_internal() or not request.env.user.has_group(API_GROUP):
            raise ApiAbort(
                ApiError(403, "PERMISSION_DENIED", "This API key's user is not allowed to use the ERP API")
            )
        request.update_context(**request.env.user.context_get())

    @classmethod
    def _pre_dispatch(cls, rule, args):
        super()._pre_dispatch(rule, args)  # applies the route's max_content_length
        httprequest = request.httprequest
        if not is_api_request(httprequest):
            return
        # The API reads its JSON body itself, once, within the size limit (413
        # before anything is read when the announced length is too large).
        # No form is parsed from it, and no query parameter can collide with
        # the route's own arguments.
        httprequest.get_data(cache=True)
        httprequest.form = ImmutableMultiDict()
        httprequest.files = ImmutableMultiDict()
        if RESERVED_PARAMS & set(httprequest.args):
            httprequest.args = ImmutableMultiDict(
                [(k, v) for k, v in httprequest.args.items(multi=True) if k not in RESERVED_PARAMS]
            )

    @classmethod
    def _handle_error(cls, exception):
        """Under the API's prefixes, every error is JSON: no HTML page, no
        traceback, no SQL text."""
        if request and is_api_request(request.httprequest):
            if isinstance(exception, ApiAbort):
                return exception
            error = api_error_of(exception)
            if error.status >= 500:
                _logger.error(
                    "fayvad_mail API: unexpected error on %s", request.httprequest.path, exc_info=exception
                )
            elif error.status == 413:
                _logger.warning(
                    "fayvad_mail API: body of %s bytes refused on %s from %s",
                    request.httprequest.content_length,
                    request.httprequest.path,
                    request.httprequest.remote_addr,
                )
            return json_error_response(error)
        return super()._handle_error(exception)


# Errors raised before Odoo reaches ir.http (the database or its connection
# pool unavailable, a registry that cannot load) are answered by the HTTP
# dispatcher with an HTML page: under the API prefixes, JSON instead (503: the
# caller may retry). This takes effect in every process that imported the
# addon (load it with --load=base,web,fayvad_mail to cover requests served
# before any registry is loaded).
if not hasattr(http.HttpDispatcher, "_fayvad_mail_handle_error"):
    http.HttpDispatcher._fayvad_mail_handle_error = http.HttpDispatcher.handle_error


def _dispatcher_handle_error_json(self, exc):
    if not is_api_request(self.request.httprequest) or isinstance(exc, ApiAbort):
        return self._fayvad_mail_handle_error(exc)
    error = api_error_of(exc)
    if error.status == 500 or not self.request.db:
        # here, Odoo could not reach the database (the API's routes only exist in one)
        _logger.warning(
            "fayvad_mail API: %s answered 503: %s", self.request.httprequest.path, type(exc).__name__
        )
        error = UNAVAILABLE
    headers = [("Cache-Control", "no-store")]
    if error.status == 503:
        headers.append(("Retry-After", "5"))
    return werkzeug.wrappers.Response(
        json.dumps(error.body()), status=error.status, headers=headers, content_type="application/json"
    )


http.HttpDispatcher.handle_error = _dispatcher_handle_error_json
