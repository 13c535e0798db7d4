import logging
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..const import (
    DNS_CHECK_FIRST_MINUTES,
    DNS_CHECK_MAX_HOURS,
    DNS_HEALTH_CHECK_HOURS,
    VERIFICATION_DAYS,
    VERIFICATION_STATES,
)
from ..tools.dnscheck import (
    DIFFERENT,
    MISSING,
    PUBLISHED,
    DnsSettingError,
    check_domain,
    make_resolver,
    parse_nameservers,
)
from . import (
    fayvad_mail_domain,  # noqa: F401  (the model extended below)
    fayvad_mail_queue,  # noqa: F401  (the engine inherited below)
)

_logger = logging.getLogger(__name__)

NAMESERVERS_PARAM = "fayvad_mail.dns_nameservers"
DNS_CHECK_BUDGET = 60  # seconds a run of the cron may spend; it triggers itself to go on
BROKEN_PURPOSES = ("mx", "dkim")  # a verified domain whose MX or DKIM breaks is told


def _new_token(_records=None):
    return secrets.token_hex(16)


class FayvadMailDomain(models.Model):
    """Domain verification: a domain is hosted for whoever proves they hold
    it. Its DNS shows the TXT record ``fayvad-verification=<token>``, or MX
    records pointing only at the mail server. Until then, when the company
    requires it, the domain is on the mail server but disabled (no mail is
    delivered for it, nobody logs in). A cron checks new domains often, then
    less and less often, for 30 days; the same check reports each record to
    publish (MX, SPF, DKIM, DMARC) as published, missing or different."""

    _name = "fayvad.mail.domain"
    _inherit = ["fayvad.mail.domain", "fayvad.mail.queue", "mail.activity.mixin"]

    verification_token = fields.Char(readonly=True, copy=False, default=_new_token)
    verification_state = fields.Selection(
        VERIFICATION_STATES,
        string="Ownership",
        default="pending",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
        index=True,
    )
    verified_at = fields.Datetime(string="Verified On", readonly=True, copy=False)
    verified_how = fields.Selection(
        [
            ("txt", "TXT record"),
            ("mx", "MX records"),
            ("existing", "In service before verification existed"),
            ("imported", "Imported from the mail server, in service there"),
            ("manual", "Verified by an administrator"),
        ],
        string="Verified By",
        readonly=True,
        copy=False,
    )
    mail_enabled = fields.Boolean(
        string="Receives Mail",
        compute="_compute_mail_enabled",
        help="Whether the mail server delivers its mail and lets its mailboxes log in: once its "
        "ownership is verified, or at once when the company does not require verification.",
    )
    dns_checked_at = fields.Datetime(string="DNS Last Checked", readonly=True, copy=False)
    dns_next_check = fields.Datetime(
        string="DNS Next Check", readonly=True, copy=False, default=fields.Datetime.now, index=True
    )
    dns_check_count = fields.Integer(string="DNS Checks", readonly=True, copy=False)
    dns_problem = fields.Char(
        string="DNS Did Not Answer",
        readonly=True,
        copy=False,
        help="The lookups the last check got no answer for (a timeout, SERVFAIL): not a verification.",
    )
    dns_broken = fields.Boolean(
        string="DNS Records Broken",
        readonly=True,
        copy=False,
        help="Verified, but its MX or DKIM record is no longer published as asked. It keeps working on "
        "the mail server; mail to it or signed by it may be lost or rejected elsewhere.",
    )

    @api.depends("verification_state", "organization_id.company_id.fayvad_require_domain_verification")
    def _compute_mail_enabled(self):
        for domain in self:
            domain.mail_enabled = (
                domain.verification_state == "verified"
                or not domain.organization_id.company_id.fayvad_require_domain_verification
            )

    # -- actions ----------------------------------------------------------------------------------
    def action_verify_now(self):
        """Check the DNS now (the back office's button)."""
        self.env["res.users"]._fayvad_require("accountant")
        self.sudo()._dns_check_now()
        return True

    def action_mark_verified(self):
        """An administrator vouches for the domain (a customer who cannot
        publish a record): verified as if its DNS proved it."""
        self.env["res.users"]._fayvad_require("admin")
        for domain in self.filtered(lambda d: d.verification_state != "verified"):
            domain._verified("manual")
        return True

    def _portal_verify(self):
        """The customer's *Verify now*: a check, unless one ran less than a
        minute ago; what the page says ("verified", "dns_checked",
        "dns_recent")."""
        self.ensure_one()
        if self.state == "terminated":
            raise UserError(self.env._("This domain is no longer hosted."))
        recent = self.dns_checked_at and self.dns_checked_at > fields.Datetime.now() - timedelta(minutes=1)
        if recent:
            return "dns_recent"
        was = self.verification_state
        self._dns_check_now()
        self.env["fayvad.mail.provisioning"]._run_jobs_now("organization", self.organization_id.id)
        return "verified" if was != "verified" and self.verification_state == "verified" else "dns_checked"

    def _dns_check_now(self):
        """Check each domain now, whatever its schedule; what the check found
        is on the domain and its records."""
        for domain in self:
            domain._lock_dns_row()
            domain._dns_check()

    def _lock_dns_row(self):
        self.env.cr.execute(SQL("SELECT id FROM fayvad_mail_domain WHERE id = %s FOR NO KEY UPDATE", self.id))

    # -- the check --------------------------------------------------------------------------------
    @api.model
    def _dns_resolver(self):
        setting = self.env["ir.config_parameter"].sudo().get_param(NAMESERVERS_PARAM, "")
        try:
            return make_resolver(parse_nameservers(setting))
        except DnsSettingError as exc:
            raise UserError(
                self.env._(
                    "The DNS name servers setting (%(param)s) is wrong: %(why)s",
                    param=NAMESERVERS_PARAM,
                    why=exc,
                )
            ) from None

    def _mail_hosts(self):
        server = self.organization_id.mail_server_id
        return {server.mail_host or f"mail.{self.name}"}

    def _dns_check(self, resolver=None):
        """Ask the DNS about the domain, record what it found, verify it when
        its ownership shows, and schedule the next check."""
        self.ensure_one()
        now = fields.Datetime.now()
        found = check_domain(
            resolver or self._dns_resolver(),
            self.name,
            self.verification_token,
            self._mail_hosts(),
            self.dkim_selector or "modoboa",
            self.dkim_public_key,
        )
        before = {record.purpose: record.status for record in self.dns_record_ids}
        for record in self.dns_record_ids:
            status = found.records.get(record.purpose)
            if status and record.status != "waiting":
                record.write({"status": status.status, "found": status.found or False, "checked_at": now})
        self.write(
            {
                "dns_checked_at": now,
                "dns_check_count": self.dns_check_count + 1,
                "dns_problem": "; ".join(found.problems) or False,
            }
        )
        if found.owned and self.verification_state != "verified":
            self._verified(found.how)
        if self.verification_state == "verified":
            self._dns_health(found, before)
        self._schedule_dns_check(now)
        return found

    def _verified(self, how):
        """Ownership proven: the domain may receive mail (the job queue
        enables it on the mail server)."""
        was_enabled = self.mail_enabled
        self.write(
            {"verification_state": "verified", "verified_at": fields.Datetime.now(), "verified_how": how}
        )
        self.message_post(
            body=self.env._(
                "Ownership of %(domain)s verified (%(how)s).",
                domain=self.name,
                how=dict(self._fields["verified_how"].selection)[how],
            )
        )
        if not was_enabled and self.state == "active":
            self.env["fayvad.mail.job"]._enqueue("update_domain_quota", organization=self.organization_id)

    def _dns_health(self, found, before):
        """A verified domain whose MX or DKIM record, once published, breaks
        (missing, or different) is told: an activity for the accountants, a
        banner in the portal; it is never disabled. The flag clears, and the
        activity is done, once both are published again."""
        broke = [
            purpose
            for purpose in BROKEN_PURPOSES
            if before.get(purpose) == PUBLISHED and found.records[purpose].status in (MISSING, DIFFERENT)
        ]
        if broke and not self.dns_broken:
            self.dns_broken = True
            names = ", ".join(purpose.upper() for purpose in broke)
            for user in self.env["res.users"]._fayvad_members("accountant")[:5]:
                self.activity_schedule(
                    "mail.mail_activity_data_todo",
                    user_id=user.id,
                    summary=self.env._("DNS of %(domain)s broken: %(what)s", domain=self.name, what=names),
                    note=self.env._(
                        "%(domain)s no longer publishes its %(what)s record as asked. Mail to it or signed "
                        "by it may be lost or rejected. Ask the customer to publish the records shown on "
                        "the domain.",
                        domain=self.name,
                        what=names,
                    ),
                )
        elif self.dns_broken and all(found.records[p].status == PUBLISHED for p in BROKEN_PURPOSES):
            self.dns_broken = False
            self.activity_ids.action_feedback(feedback=self.env._("The records are published again."))

    def _schedule_dns_check(self, now):
        """Next check: a new domain often (5 minutes), then less and less
        often (at most 12 hours apart) until 30 days from its creation,
        when the accountants are told; a verified one daily."""
        if self.verification_state == "verified":
            self.dns_next_check = now + timedelta(hours=DNS_HEALTH_CHECK_HOURS)
            return
        if self.verification_state == "expired":
            self.dns_next_check = False  # "Verify now" still works
            return
        if now >= self.create_date + timedelta(days=VERIFICATION_DAYS):
            self._give_up_verification()
            return
        delay = min(DNS_CHECK_FIRST_MINUTES * 2 ** max(self.dns_check_count - 1, 0), DNS_CHECK_MAX_HOURS * 60)
        self.dns_next_check = now + timedelta(minutes=delay)

    def _give_up_verification(self):
        self.write({"verification_state": "expired", "dns_next_check": False})
        org = self.organization_id
        for user in self.env["res.users"]._fayvad_members("accountant")[:5]:
            org.activity_schedule(
                "mail.mail_activity_data_todo",
                user_id=user.id,
                summary=self.env._("%s was not verified in time", self.name),
                note=self.env._(
                    "Its DNS showed neither the verification TXT record nor MX records pointing at the "
                    "mail server for %(days)s days. The domain stays disabled on the mail server. Ask "
                    "the customer to publish the records, then click Verify Now; or terminate it.",
                    days=VERIFICATION_DAYS,
                ),
            )

    # -- the cron ---------------------------------------------------------------------------------
    @api.model
    def _cron_check_dns(self, budget=DNS_CHECK_BUDGET):
        """Check the domains whose check is due (several workers at once:
        each domain is taken by one, ``SKIP LOCKED``), within ``budget``
        seconds, then trigger the cron again when some are left."""
        resolver = self._dns_resolver()
        now = fields.Datetime.now()

        def take(tried):
            return self._queue_take(
                SQL(
                    """SELECT id FROM fayvad_mail_domain
                        WHERE dns_next_check <= %s AND state IN ('provisioning', 'active', 'suspended')
                          AND verification_state != 'expired' AND NOT (id = ANY(%s))
                        ORDER BY dns_next_check LIMIT 20""",
                    now,
                    list(tried) or [0],
                ),
                SQL("dns_next_check <= %s", now),
            )

        def work(domain):
            try:
                with self.env.cr.savepoint():
                    domain._dns_check(resolver)
            except Exception as exc:  # one bad domain never stops the others
                _logger.warning("DNS check of domain %s failed", domain.id, exc_info=True)
                domain.write(
                    {
                        "dns_problem": self.env._("The check failed: %s", type(exc).__name__),
                        "dns_next_check": now + timedelta(minutes=DNS_CHECK_FIRST_MINUTES),
                    }
                )

        done, spent = self._queue_work(take, work, limit=10_000, budget=budget)
        if spent:
            self.env.ref("fayvad_mail.fayvad_mail_dns_cron")._trigger()
        return done
