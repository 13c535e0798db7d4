import logging
import threading
from datetime import datetime, time

from psycopg2.extensions import TransactionRollbackError

from odoo import api, fields, models

from ..const import LIVE_ACCOUNT_STATES
from ..fields import ByteSize
from ..tools.mailserver import MailServerError, NotFound, Unavailable
from ..tools.units import GB
from .fayvad_mail_cron_mixin import cron_error_message

_logger = logging.getLogger(__name__)

USAGE_BATCH = 20  # domains per cron call


class FayvadMailUsageSnapshot(models.Model):
    """Storage of one mailbox on one day, as read from the mail server."""

    _name = "fayvad.mail.usage.snapshot"
    _description = "Mailbox Usage Snapshot"
    _order = "date desc, id desc"
    _rec_name = "account_id"

    account_id = fields.Many2one("fayvad.mail.account", required=True, ondelete="cascade", index=True)
    organization_id = fields.Many2one(related="account_id.organization_id", store=True, index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    date = fields.Date(required=True, default=fields.Date.context_today, index=True)
    bytes_used = ByteSize(string="Bytes Used", required=True, aggregator="sum")
    gb_used = fields.Float(
        string="Storage (GB)", compute="_compute_gb_used", store=True, digits=(16, 3), aggregator="sum"
    )

    _sql_constraints = [
        ("account_date_unique", "UNIQUE(account_id, date)", "An account has one usage snapshot per day."),
        ("bytes_positive", "CHECK(bytes_used >= 0)", "Storage used cannot be negative."),
    ]

    @api.depends("bytes_used")
    def _compute_gb_used(self):
        for snapshot in self:
            snapshot.gb_used = snapshot.bytes_used / GB

    @api.model
    def _record(self, account, bytes_used, date=None):
        """Store today's (or ``date``'s) usage of ``account``, replacing an
        earlier reading of the same day, and update the account's figure
        when this is its latest reading."""
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        snapshot = self.search([("account_id", "=", account.id), ("date", "=", date)], limit=1)
        if snapshot:
            snapshot.bytes_used = bytes_used
        else:
            snapshot = self.create({"account_id": account.id, "date": date, "bytes_used": bytes_used})
        if not account.usage_date or account.usage_date <= date:
            account.write({"storage_used": bytes_used, "usage_date": date})
        return snapshot

    @api.model
    def _usage_on(self, accounts, day):
        """{account id: bytes} from each account's latest snapshot on or before
        ``day``: one probe of the (account_id, date) index per account, so
        the time does not grow with the length of the history."""
        if not accounts:
            return {}
        self.env.cr.execute(
            """
            SELECT account.id, latest.bytes_used
              FROM unnest(%s::int[]) AS account(id)
              JOIN LATERAL (
                   SELECT bytes_used FROM fayvad_mail_usage_snapshot
                    WHERE account_id = account.id AND date <= %s
                 ORDER BY date DESC
                    LIMIT 1
                   ) latest ON TRUE
            """,
            [list(accounts.ids), day],
        )
        return dict(self.env.cr.fetchall())

    # -- reading usage from the mail server -------------------------------------------------
    @api.model
    def _usage_domains_domain(self):
        """Domains on a mail server whose usage was not read today."""
        today = datetime.combine(fields.Date.context_today(self), time.min)
        return [
            ("state", "=", "active"),
            ("organization_id.state", "in", LIVE_ACCOUNT_STATES),
            ("organization_id.mail_server_id", "!=", False),
            "|",
            ("usage_read_at", "=", False),
            ("usage_read_at", "<", today),
        ]

    @api.model
    def _cron_read_usage(self, limit=USAGE_BATCH):
        """Read the storage used by each mailbox from the mail server and
        store today's snapshots: ``limit`` domains per call, one savepoint
        (and one paginated list of accounts) per domain, the domains read
        least recently first. A server that does not answer is left for
        the next run; a domain the server does not know is skipped today.
        A domain that fails otherwise keeps the error on its form and the
        cron goes on with the others."""
        testing = getattr(threading.current_thread(), "testing", False)
        Domain = self.env["fayvad.mail.domain"].sudo()
        domains = Domain.search(
            self._usage_domains_domain(), order="usage_read_at asc nulls first, id", limit=limit
        )
        clients, down, done = {}, set(), 0
        for domain in domains:
            server = domain.organization_id.mail_server_id
            if server in down:
                continue
            try:
                with self.env.cr.savepoint():
                    if server not in clients:
                        clients[server] = server._client()
                    self._read_domain_usage(clients[server], domain)
            except Unavailable as exc:
                _logger.warning("usage of %s not read, %s does not answer: %s", domain.name, server.name, exc)
                down.add(server)
                continue
            except TransactionRollbackError as exc:  # a job or a user wrote the domain meanwhile
                _logger.info(
                    "usage of %s not read, concurrent update (%s): next run", domain.name, exc.pgcode
                )
                continue
            except MailServerError as exc:
                _logger.warning("usage of %s not read: %s", domain.name, exc)
                domain.write(
                    {
                        "usage_read_at": fields.Datetime.now(),
                        "cron_error": f"Usage: {cron_error_message(exc)}",
                        "cron_error_date": fields.Datetime.now(),
                    }
                )
            except Exception as exc:  # a bug or bad data: this domain only, the next run tries again
                _logger.exception("usage of %s not read", domain.name)
                domain.write(
                    {
                        "cron_error": f"Usage: {cron_error_message(exc)}",
                        "cron_error_date": fields.Datetime.now(),
                    }
                )
                if not testing:
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                continue
            else:
                if (domain.cron_error or "").startswith("Usage:"):
                    domain.write({"cron_error": False, "cron_error_date": False})
            done += 1
            if not testing:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        remaining = 0 if down else Domain.search_count(self._usage_domains_domain())
        if done:  # the usage summary's totals got a row per mailbox read: fold them soon
            cron = self.env.ref("fayvad_mail.fayvad_mail_tally_cron", raise_if_not_found=False)
            if cron:
                cron.sudo()._trigger()
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return done

    @api.model
    def _read_domain_usage(self, client, domain):
        """Snapshots of the live accounts of ``domain`` from one list of the
        server. Modoboa reports a whole percent of the quota, truncated: the
        bytes stored are the lower bound, short by less than 1% of the quota."""
        remote_domain = client.find_domain(domain.name)
        if remote_domain is None:
            raise NotFound(f"the domain {domain.name} does not exist on the mail server")
        remote = {mailbox.email: mailbox for mailbox in client.list_mailboxes(remote_domain.id)}
        today = fields.Date.context_today(self)
        accounts = domain.with_context(active_test=False).account_ids
        for account in accounts.filtered(lambda a: a.state in LIVE_ACCOUNT_STATES):
            mailbox = remote.get(account.email)
            if mailbox is not None and mailbox.used_bytes is not None:
                self._record(account, mailbox.used_bytes, today)
        accounts.filtered(lambda a: a.state in LIVE_ACCOUNT_STATES)._check_quota_alerts()
        domain.organization_id._check_quota_alerts()
        domain.usage_read_at = fields.Datetime.now()
