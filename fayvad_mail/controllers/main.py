"""The ERP integration HTTP API: parse, authenticate, hand over to a model,
answer JSON. Routes are served under /fayvad_api/erp/ and /erp/, with and
without the trailing slash (never a redirect)."""

import functools
import os

from werkzeug.wsgi import wrap_file

from odoo import SUPERUSER_ID, fields, http
from odoo.http import request

from ..models.ir_http import max_body_bytes
from ..tools.api_errors import ApiError, json_error_response, validation_error
from ..tools.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..tools.openapi import openapi_document
from ..tools.validation import (
    ValidationFailed,
    validate_alias,
    validate_domain_alias,
    validate_email_account,
    validate_organization,
    validate_usage_query,
)
from . import answers

PREFIXES = ("/fayvad_api/erp", "/erp")
STREAM_CHUNK = 64 * 1024  # bytes of a streamed answer sent at a time


def api_routes(path):
    return [f"{prefix}{path}{slash}" for prefix in PREFIXES for slash in ("", "/")]


ROUTE = {"type": "http", "csrf": False, "save_session": False, "max_content_length": max_body_bytes}


def api_endpoint(*methods, error_code="INTERNAL_ERROR"):
    """Check the HTTP method, turn ApiError / ValidationFailed into JSON
    errors; anything else is left to ir.http._handle_error (JSON too)."""

    def decorator(func):
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            if request.httprequest.method not in methods:
                return json_error_response(
                    ApiError(
                        405, "METHOD_NOT_ALLOWED", f"Use {' or '.join(methods)} on this route", allow=methods
                    )
                )
            try:
                return func(self, *args, **kwargs)
            except ValidationFailed as exc:
                return json_error_response(validation_error(exc.details))
            except ApiError as exc:
                return json_error_response(exc)

        return wrapper

    return decorator


class FayvadMailApi(http.Controller):
    @http.route(
        api_routes("/usage-summary"),
        auth="fayvad_api",
        readonly=True,
        **ROUTE,
    )
    @api_endpoint("GET")
    def usage_summary(self, **params):
        query = validate_usage_query(request.httprequest.args, fields.Date.context_today(request.env.user))
        answer = request.env["fayvad.mail.usage.summary"]._answer(query)
        size = answer.seek(0, os.SEEK_END)
        answer.seek(0)
        response = request.make_response(
            wrap_file(request.httprequest.environ, answer, STREAM_CHUNK),
            headers=[("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(size))],
        )
        response.direct_passthrough = True
        return response

    @http.route(api_routes("/metrics"), auth="fayvad_api", readonly=True, **ROUTE)
    @api_endpoint("GET")
    def metrics(self, **params):
        """Prometheus: the figures of the API user's companies."""
        text = request.env["fayvad.mail.monitoring"].sudo()._metrics(request.env.user.company_ids.ids)
        return request.make_response(text, headers=[("Content-Type", METRICS_CONTENT_TYPE)])

    @http.route(api_routes("/provision/organization"), auth="fayvad_api", **ROUTE)
    @api_endpoint("POST")
    def provision_organization(self, **params):
        return self._provision("organization", validate_organization)

    @http.route(api_routes("/provision/email-account"), auth="fayvad_api", **ROUTE)
    @api_endpoint("POST")
    def provision_email_account(self, **params):
        return self._provision("email_account", validate_email_account)

    @http.route(api_routes("/provision/alias"), auth="fayvad_api", **ROUTE)
    @api_endpoint("POST")
    def provision_alias(self, **params):
        return self._provision("alias", validate_alias)

    @http.route(api_routes("/provision/domain-alias"), auth="fayvad_api", **ROUTE)
    @api_endpoint("POST")
    def provision_domain_alias(self, **params):
        return self._provision("domain_alias", validate_domain_alias)

    def _provision(self, kind, validate):
        raw = request.httprequest.get_data(cache=True)
        key = request.httprequest.headers.get("Idempotency-Key")
        # what the API creates is no chatter news (its state changes are), and the API user
        # follows none of it: it reads no notifications
        env = request.env(
            context=dict(
                request.env.context,
                fayvad_mail_api=True,
                mail_create_nolog=True,
                mail_create_nosubscribe=True,
            )
        )
        status, body = answers.handle(env, kind, raw, validate, key)
        return request.make_json_response(body, status=status)

    # signed, not logged in: no user to look up (auth="public" would find the public user's
    # record on every delivery); the delivery is received as the superuser
    @http.route(api_routes("/webhooks/billing"), auth="none", **ROUTE)
    @api_endpoint("POST")
    def billing_webhook(self, **params):
        return self._webhook(token=None)

    @http.route(api_routes("/webhooks/billing/<string:token>"), auth="none", **ROUTE)
    @api_endpoint("POST")
    def billing_webhook_organization(self, token, **params):
        return self._webhook(token=token)

    def _webhook(self, token):
        httprequest = request.httprequest
        request.update_env(user=SUPERUSER_ID)
        status, body = (
            request.env["fayvad.mail.webhook.delivery"]
            .sudo()
            .with_context(fayvad_mail_api=True)
            ._receive(
                raw=httprequest.get_data(cache=True),
                headers=dict(httprequest.headers),
                remote_addr=httprequest.remote_addr,
                token=token,
            )
        )
        return request.make_json_response(body, status=status)

    @http.route(api_routes("/openapi.json"), auth="none", **ROUTE)
    @api_endpoint("GET")
    def openapi(self, **params):
        return request.make_json_response(openapi_document())

    @http.route([f"{prefix}/<path:rest>" for prefix in PREFIXES], auth="none", **ROUTE)
    def not_found(self, rest, **params):
        return json_error_response(ApiError(404, "NOT_FOUND", "No such API route"))
