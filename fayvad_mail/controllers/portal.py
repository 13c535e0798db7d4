"""The customer's side, in Odoo's portal: ``/my/mail`` shows the customer's
organization, its mailboxes, aliases, domains and DNS records, the settings
of its mail clients, and lets it add, change and delete mailboxes and
aliases, and move up to a bigger plan, within its plan.

Every page checks the record with the portal user's own rights (the record
rules of security/fayvad_mail_portal_security.xml) before it reads or
changes it as superuser, as Odoo's own portal pages do; changes are for the
customer's own portal users only (an internal user is answered 403), and go
through the model methods the HTTP API and the back office use. A new
password is answered with a redirect to a page that shows it once
(POST/redirect/GET): reloading that page never posts the form again."""

from werkzeug.exceptions import Forbidden

from odoo import http
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request

from odoo.addons.account.controllers.portal import PortalAccount

from ..tools.api_errors import ApiError
from ..tools.units import MB
from ..tools.validation import ValidationFailed, validate_alias_data, validate_email_account_data

# what the page says after a change that succeeded (?done=...)
DONE = {
    "quota": "The quota is changed; the mail server follows within a minute.",
    "deactivated": "The mailbox is deactivated: nobody can log in to it.",
    "activated": "The mailbox is active again.",
    "deleted": "The mailbox is deleted, with its mail.",
    "alias": "The alias is added; it delivers within a minute.",
    "alias_deleted": "The alias is deleted.",
    "forward": "The forwarding is changed; the mailbox keeps its copy.",
    "plan": "Your plan is changed; the new limits apply now.",
    "domain": "The domain is added: publish its records below to prove it is yours.",
    "verified": "Your domain is verified: it receives mail within a minute.",
    "dns_checked": "Your DNS was checked: each record's status is below.",
    "dns_recent": "Your DNS was checked less than a minute ago: each record's status is below.",
}
ROUTE = {"type": "http", "auth": "user", "website": True}
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class MailHostingPortal(PortalAccount):
    # -- /my ---------------------------------------------------------------------------------
    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "mail_mailbox_count" in counters:
            Account = request.env["fayvad.mail.account"]
            values["mail_mailbox_count"] = Account.search_count([]) if Account.has_access("read") else 0
        return values

    def _get_account_searchbar_filters(self):
        filters = super()._get_account_searchbar_filters()
        filters["mail_hosting"] = {
            "label": request.env._("Mail hosting"),
            "domain": [("fayvad_organization_id", "!=", False)],
        }
        return filters

    # -- pages -------------------------------------------------------------------------------
    @http.route("/my/mail", methods=["GET"], **ROUTE)
    def portal_my_mail(self, **kw):
        Org = request.env["fayvad.mail.organization"]
        orgs = Org.search([]) if Org.has_access("read") else Org
        if len(orgs) == 1:
            return self._render_organization(orgs.sudo())
        values = self._prepare_portal_layout_values()
        values.update(page_name="mail_hosting", organizations=orgs.sudo())
        return request.render("fayvad_mail.portal_my_mail_list", values)

    @http.route("/my/mail/<int:org_id>", methods=["GET"], **ROUTE)
    def portal_my_mail_organization(self, org_id, done=None, **kw):
        org = self._checked("fayvad.mail.organization", org_id)
        return self._render_organization(org, message=DONE.get(done))

    @http.route("/my/mail/password/<string:token>", methods=["GET"], **ROUTE)
    def portal_mail_password(self, token, **kw):
        """The new password, shown once; a reload says it was shown."""
        values, password = request.env["fayvad.mail.password.reveal"]._take(token)
        layout = self._prepare_portal_layout_values()
        if values is None:
            layout.update(page_name="mail_hosting_password", organization=None, account=None, password=None)
        else:
            account = values["account"].sudo()
            layout.update(values, page_name="mail_hosting_password", account=account, password=password)
            layout["organization"] = account.organization_id
            layout["mail_settings"] = account.organization_id.mail_server_id._mail_settings()
        return request.render("fayvad_mail.portal_my_mail_password", layout, headers=NO_STORE)

    @http.route("/my/mail/<int:org_id>/plan", methods=["GET"], **ROUTE)
    def portal_mail_plan_preview(self, org_id, plan_id=None, **kw):
        """What moving up to a plan charges now, before the customer confirms."""
        org = self._checked("fayvad.mail.organization", org_id)
        plan = org._portal_upgrades().filtered(lambda p: p.id == _to_int(plan_id))
        if not plan:
            return request.redirect(f"/my/mail/{org.id}")
        amount, currency, share = org._plan_change_preview(plan)
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="mail_hosting_organization",
            organization=org,
            plan=plan,
            amount=amount,
            currency=currency,
            share=round(share * 100, 1),
        )
        return request.render("fayvad_mail.portal_my_mail_plan", values)

    # -- changes -----------------------------------------------------------------------------
    @http.route("/my/mail/<int:org_id>/mailboxes", methods=["POST"], **ROUTE)
    def portal_mail_add_mailbox(self, org_id, local_part="", first_name="", last_name="", quota_mb="", **kw):
        org = self._checked("fayvad.mail.organization", org_id, change=True)
        form = {
            "local_part": local_part,
            "first_name": first_name,
            "last_name": last_name,
            "quota_mb": quota_mb,
        }
        chosen = kw.get("password") or ""
        password = chosen or org.mail_server_id._password_policy().generate()
        quota = _to_int(quota_mb) if quota_mb.strip() else None
        if quota_mb.strip() and (quota is None or quota < 1):
            return self._render_organization(
                org,
                form=form,
                errors={"quota": ["The quota is a whole number of MB, 1 at least."]},
                status=400,
            )
        data = {
            "organization_id": org.id,
            "address": local_part,
            "domain": _to_int(kw.get("domain_id")) or org.primary_domain_id.id,
            "user_info": {"first_name": first_name, "last_name": last_name, "password": password},
        }
        if quota is not None:
            data["quota"] = quota * MB
        try:
            account, outcome = (
                request.env["fayvad.mail.provisioning"]
                .sudo()
                ._provision("email_account", validate_email_account_data(data))
            )
        except ValidationFailed as exc:
            return self._render_organization(org, form=form, errors=_form_errors(exc.details), status=400)
        except ApiError as exc:
            return self._render_organization(
                org, form=form, errors=_form_errors(exc.details or {"": [exc.message]}), status=exc.status
            )
        except UserError as exc:
            return self._render_organization(org, form=form, errors={"mailbox": [exc.args[0]]}, status=400)
        return self._reveal(account, password, created=True, outcome=outcome[0])

    @http.route("/my/mail/mailbox/<int:account_id>/quota", methods=["POST"], **ROUTE)
    def portal_mail_mailbox_quota(self, account_id, quota_mb="", **kw):
        account = self._checked("fayvad.mail.account", account_id, change=True)
        quota = _to_int(quota_mb)
        if quota is None or quota < 1:
            return self._render_organization(
                account.organization_id,
                errors={f"mailbox_{account.id}": ["The quota is a whole number of MB, 1 at least."]},
                status=400,
            )
        return self._change(account, "quota", lambda: account.write({"quota": quota * MB}))

    @http.route("/my/mail/mailbox/<int:account_id>/password", methods=["POST"], **ROUTE)
    def portal_mail_mailbox_password(self, account_id, **kw):
        account = self._checked("fayvad.mail.account", account_id, change=True)
        try:
            with request.env.cr.savepoint():
                password = account._reset_password(kw.get("password") or None)
        except (UserError, ValidationError) as exc:
            return self._render_organization(
                account.organization_id, errors={f"mailbox_{account.id}": [exc.args[0]]}, status=400
            )
        request.env["fayvad.mail.provisioning"].sudo()._run_jobs_now("email_account", account.id)
        return self._reveal(account, password)

    @http.route("/my/mail/mailbox/<int:account_id>/deactivate", methods=["POST"], **ROUTE)
    def portal_mail_mailbox_deactivate(self, account_id, **kw):
        account = self._checked("fayvad.mail.account", account_id, change=True)
        return self._change(account, "deactivated", lambda: account._suspend_mailbox("customer"))

    @http.route("/my/mail/mailbox/<int:account_id>/activate", methods=["POST"], **ROUTE)
    def portal_mail_mailbox_activate(self, account_id, **kw):
        account = self._checked("fayvad.mail.account", account_id, change=True)
        return self._change(account, "activated", lambda: account._unsuspend_mailbox("customer"))

    @http.route("/my/mail/mailbox/<int:account_id>/delete", methods=["POST"], **ROUTE)
    def portal_mail_mailbox_delete(self, account_id, **kw):
        account = self._checked("fayvad.mail.account", account_id, change=True)
        return self._change(account, "deleted", account.action_terminate)

    @http.route("/my/mail/mailbox/<int:account_id>/forward", methods=["POST"], **ROUTE)
    def portal_mail_mailbox_forward(self, account_id, recipients="", **kw):
        """Forward the mailbox's mail to ``recipients`` (it keeps its copy); none: stop."""
        account = self._checked("fayvad.mail.account", account_id, change=True)
        return self._change(account, "forward", lambda: account._set_forward(recipients))

    @http.route("/my/mail/<int:org_id>/aliases", methods=["POST"], **ROUTE)
    def portal_mail_add_alias(self, org_id, local_part="", recipients="", **kw):
        org = self._checked("fayvad.mail.organization", org_id, change=True)
        form = {"alias_local_part": local_part, "alias_recipients": recipients}
        data = {
            "organization_id": org.id,
            "domain": _to_int(kw.get("domain_id")) or org.primary_domain_id.id,
            "address": local_part,
            "recipients": [r.strip() for r in recipients.replace(",", "\n").splitlines() if r.strip()],
        }
        try:
            org._check_customer_may_change()
            request.env["fayvad.mail.provisioning"].sudo()._provision("alias", validate_alias_data(data))
        except ValidationFailed as exc:
            return self._render_organization(org, form=form, errors=_form_errors(exc.details), status=400)
        except ApiError as exc:
            return self._render_organization(
                org,
                form=form,
                errors=_form_errors(exc.details or {"alias": [exc.message]}),
                status=exc.status,
            )
        except UserError as exc:
            return self._render_organization(org, form=form, errors={"alias": [exc.args[0]]}, status=400)
        return request.redirect(f"/my/mail/{org.id}?done=alias#fayvad_mail_aliases")

    @http.route("/my/mail/alias/<int:alias_id>/delete", methods=["POST"], **ROUTE)
    def portal_mail_delete_alias(self, alias_id, **kw):
        alias = self._checked("fayvad.mail.alias", alias_id, change=True)
        org = alias.organization_id
        try:
            with request.env.cr.savepoint():
                org._check_customer_may_change()
                alias.action_delete()
        except (UserError, ValidationError) as exc:
            return self._render_organization(org, errors={"alias": [exc.args[0]]}, status=400)
        return request.redirect(f"/my/mail/{org.id}?done=alias_deleted#fayvad_mail_aliases")

    @http.route("/my/mail/<int:org_id>/domains", methods=["POST"], **ROUTE)
    def portal_mail_add_domain(self, org_id, name="", **kw):
        """Claim another domain: made on the mail server at once, and
        verified like the first (the records to publish are on the page)."""
        org = self._checked("fayvad.mail.organization", org_id, change=True)
        try:
            with request.env.cr.savepoint():
                org.sudo()._add_domain(name)
        except (UserError, ValidationError) as exc:
            return self._render_organization(
                org, form={"domain_name": name}, errors={"domain": [exc.args[0]]}, status=400
            )
        request.env["fayvad.mail.provisioning"].sudo()._run_jobs_now("organization", org.id)
        return request.redirect(f"/my/mail/{org.id}?done=domain#domains")

    @http.route("/my/mail/domain/<int:domain_id>/verify", methods=["POST"], **ROUTE)
    def portal_mail_domain_verify(self, domain_id, **kw):
        """Ask the DNS now (at most once a minute a domain)."""
        domain = self._checked("fayvad.mail.domain", domain_id, change=True)
        outcome = domain._portal_verify()
        return request.redirect(f"/my/mail/{domain.organization_id.id}?done={outcome}#domains")

    @http.route("/my/mail/<int:org_id>/plan", methods=["POST"], **ROUTE)
    def portal_mail_plan_upgrade(self, org_id, plan_id=None, **kw):
        org = self._checked("fayvad.mail.organization", org_id, change=True)
        plan = request.env["fayvad.mail.plan"].sudo().browse(_to_int(plan_id) or 0).exists()
        try:
            with request.env.cr.savepoint():
                org._upgrade_plan(plan)
        except (UserError, ValidationError) as exc:
            return self._render_organization(org, errors={"plan": [exc.args[0]]}, status=400)
        request.env["fayvad.mail.job"].sudo()._trigger_runner()
        return request.redirect(f"/my/mail/{org.id}?done=plan")

    # -- helpers -----------------------------------------------------------------------------
    def _checked(self, model, record_id, change=False):
        """The record as superuser, once the portal user may read it; 404
        otherwise (whether it exists or not). A change (``change``) is made
        for the customer only: an internal user, whatever its groups, is
        answered 403 and changes nothing (the back office is its place)."""
        if change and not request.env.user._is_portal():
            raise Forbidden(request.env._("Only the customer's own portal users change mail hosting here."))
        try:
            record = self._document_check_access(model, record_id)
        except (AccessError, MissingError):
            raise request.not_found() from None
        if model in ("fayvad.mail.account", "fayvad.mail.alias") and record.state == "terminated":
            raise request.not_found()
        return record

    def _change(self, account, done, action):
        """Apply ``action`` to the mailbox, or nothing of it; run its jobs now."""
        try:
            with request.env.cr.savepoint():
                account._check_customer_may_change()
                action()
        except (UserError, ValidationError) as exc:
            return self._render_organization(
                account.organization_id, errors={f"mailbox_{account.id}": [exc.args[0]]}, status=400
            )
        request.env["fayvad.mail.provisioning"].sudo()._run_jobs_now("email_account", account.id)
        return request.redirect(f"/my/mail/{account.organization_id.id}?done={done}")

    def _reveal(self, account, password, created=False, outcome=None):
        """Redirect to the page that shows ``password`` once (POST/redirect/GET)."""
        token = request.env["fayvad.mail.password.reveal"]._keep(
            account,
            password,
            created=created,
            pending=outcome == "pending" or account.state == "provisioning",
            failed=outcome == "failed",
        )
        return request.redirect(f"/my/mail/password/{token}")

    def _render_organization(self, org, form=None, errors=None, message=None, status=200):
        values = self._prepare_portal_layout_values()
        values.update(org._portal_values())
        values.update(
            page_name="mail_hosting_organization",
            form=form or {},
            errors=errors or {},
            message=message,
        )
        return request.render("fayvad_mail.portal_my_mail", values, status=status)


def _to_int(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _form_errors(details):
    """The API's field paths as the form's field names, messages as people read them."""
    names = {
        "email_account_data.address": "local_part",
        "email_account_data.quota": "quota",
        "email_account_data.user_info.first_name": "first_name",
        "email_account_data.user_info.last_name": "last_name",
        "email_account_data.user_info.password": "password",
        "alias_data.address": "alias_local_part",
        "alias_data.recipients": "alias_recipients",
    }
    errors = {}
    for path, messages in details.items():
        field = names.get(path) or ("alias" if path.startswith("alias_data") else "mailbox")
        errors.setdefault(field, []).extend(
            message.replace("Must be at least 1048576 bytes (1 MiB).", "At least 1 MB.")
            for message in messages
        )
    return errors
