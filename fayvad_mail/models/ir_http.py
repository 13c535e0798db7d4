import logging

import werkzeug.exceptions

from odoo import models
from odoo.http import request

from ..tools.api_errors import ApiError

_logger = logging.getLogger(__name__)

API_PREFIXES = ("/fayvad_api/", "/erp/")
API_GROUP = "fayvad_mail.fayvad_mail_group_api"


def json_error_response(error):
    """The JSON response of an ApiError (headers included)."""
    headers = [("Cache-Control", "no-store")]
    if error.status == 401:
        headers.append(("WWW-Authenticate", "Token"))
    if error.status == 405 and error.extra.get("allow"):
        headers.append(("Allow", ", ".join(error.extra.pop("allow"))))
    return request.make_json_response(error.body(), status=error.status, headers=headers)


class ApiAbort(werkzeug.exceptions.HTTPException):
    """An HTTP exception carrying a ready JSON response: Odoo answers it
    as is, also when raised during authentication."""

    def __init__(self, error):
        super().__init__(description=error.message, response=json_error_response(error))
        self.code = error.status


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _auth_method_fayvad_api(cls):
        """``Authorization: Token <key>`` (or ``Bearer <key>``): an API key of
        fayvad_mail's scope whose user is in the ERP API group."""
        header = request.httprequest.headers.get("Authorization", "")
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() not in ("token", "bearer") or not key or " " in key:
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
    def _handle_error(cls, exception):
        """Under the API's prefixes, every error is JSON: no HTML page, no
        traceback, no SQL text."""
        if request and request.httprequest.path.startswith(API_PREFIXES):
            if isinstance(exception, ApiAbort):
                return exception
            if isinstance(exception, ApiError):
                return json_error_response(exception)
            if isinstance(exception, werkzeug.exceptions.NotFound):
                return json_error_response(ApiError(404, "NOT_FOUND", "No such API route"))
            if isinstance(exception, werkzeug.exceptions.MethodNotAllowed):
                return json_error_response(ApiError(405, "METHOD_NOT_ALLOWED", "Method not allowed"))
            _logger.error(
                "fayvad_mail API: unexpected error on %s", request.httprequest.path, exc_info=exception
            )
            return json_error_response(
                ApiError(500, "INTERNAL_ERROR", "Internal error; the request was not applied")
            )
        return super()._handle_error(exception)
