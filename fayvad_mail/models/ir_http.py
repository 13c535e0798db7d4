import logging

from werkzeug.datastructures import ImmutableMultiDict

from odoo import models
from odoo.http import request

from ..const import GROUP_API
from ..tools.api_errors import (
    DEFAULT_MAX_BODY,
    ApiAbort,
    ApiError,
    api_error_of,
    is_api_request,
    json_error_response,
)
from ..tools.prefork import raise_listen_backlog

_logger = logging.getLogger(__name__)

# query parameters Odoo would pass as keyword arguments named like the route's own
RESERVED_PARAMS = {"self"}


def max_body_bytes(_controller=None):
    """The largest request body the API reads (``max_content_length`` of its routes)."""
    try:
        value = request.env["ir.config_parameter"].sudo().get_param("fayvad_mail.max_body_bytes")
        return max(int(value), 1) if value else DEFAULT_MAX_BODY
    except Exception:  # no database at hand, or a bad value: the default
        return DEFAULT_MAX_BODY


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
        if not request.env.user._is_internal() or not request.env.user.has_group(GROUP_API):
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
            error = api_error_of(exception, max_body_bytes())
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
