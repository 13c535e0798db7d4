"""The HTTP layer around Odoo's dispatcher for the API's prefixes: errors
raised before Odoo reaches ir.http (the database or its connection pool
unavailable, a registry that cannot load) are answered with JSON instead of
an HTML page (503: the caller may retry);. This takes effect in every
process that imported the addon (load it with --load=base,web,fayvad_mail to
cover requests served before any registry is loaded)."""

import logging

from odoo import http

from ..tools.api_errors import UNAVAILABLE, ApiAbort, api_error_of, is_api_request, json_error_response

_logger = logging.getLogger(__name__)

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
    return json_error_response(error)


http.HttpDispatcher.handle_error = _dispatcher_handle_error_json
