"""Monitoring of provisioning: figures for the people in Odoo (the mail
server form, the Provisioning Monitor dashboard, an activity when the
success rate falls) and for operations (``GET /erp/metrics``, Prometheus).
Every figure is one SQL aggregate: the same few queries whatever the number
of organizations, mailboxes or jobs."""

from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..const import SUCCESS_RATE_MIN_JOBS, SUCCESS_RATE_THRESHOLD_DEFAULT
from ..tools.metrics import render
from . import fayvad_mail_server  # noqa: F401  (the model extended below)

THRESHOLD_PARAM = "fayvad_mail.success_rate_threshold"
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


def _stats_query(now, where):
    """Per mail server: jobs finished (done, failed) per window, the median
    and 95th percentile of request-to-done seconds, the queue's depth and
    its oldest pending job."""
    finished = [
        SQL(
            "count(*) FILTER (WHERE state = %s AND date_done >= %s) AS %s",
            state,
            now - delta,
            SQL.identifier(f"{state}_{window}"),
        )
        for window, delta in WINDOWS.items()
        for state in ("done", "failed")
    ]
    percentiles = [
        SQL(
            "percentile_cont(%s) WITHIN GROUP (ORDER BY extract(epoch FROM date_done - create_date))"
            " FILTER (WHERE state = 'done' AND date_done >= %s) AS %s",
            fraction,
            now - WINDOWS[window],
            SQL.identifier(f"{label}_{window}"),
        )
        for window in ("24h", "7d")
        for label, fraction in (("median", 0.5), ("p95", 0.95))
    ]
    return SQL(
        """SELECT mail_server_id, GROUPING(mail_server_id) = 1 AS total, %s, %s,
                  count(*) FILTER (WHERE state = 'pending') AS depth,
                  min(create_date) FILTER (WHERE state = 'pending') AS oldest_pending
             FROM fayvad_mail_job
            WHERE %s AND (state = 'pending' OR date_done >= %s)
         GROUP BY ROLLUP (mail_server_id)""",
        SQL(", ").join(finished),
        SQL(", ").join(percentiles),
        where,
        now - WINDOWS["7d"],
    )


def _ratio(row, window):
    """Jobs done among those finished in the window (None: none finished)."""
    done, failed = row[f"done_{window}"], row[f"failed_{window}"]
    return done / (done + failed) if done + failed else None


def _rate(row, window):
    """The same in %."""
    ratio = _ratio(row, window)
    return None if ratio is None else 100.0 * ratio


class FayvadMailServer(models.Model):
    """A mail server's provisioning figures (form tab, Provisioning Monitor)."""

    _name = "fayvad.mail.server"
    _inherit = ["fayvad.mail.server", "mail.activity.mixin"]

    job_success_rate_24h = fields.Float(
        string="Success Rate (24 h, %)", compute="_compute_job_stats", aggregator=False, digits=(5, 1)
    )
    job_success_rate_7d = fields.Float(
        string="Success Rate (7 days, %)", compute="_compute_job_stats", aggregator=False, digits=(5, 1)
    )
    job_finished_24h = fields.Integer(string="Jobs Finished (24 h)", compute="_compute_job_stats")
    job_finished_7d = fields.Integer(string="Jobs Finished (7 days)", compute="_compute_job_stats")
    job_median_seconds_24h = fields.Float(
        string="Median Request to Done (24 h, s)", compute="_compute_job_stats", digits=(12, 1)
    )
    job_p95_seconds_24h = fields.Float(
        string="95th Percentile Request to Done (24 h, s)", compute="_compute_job_stats", digits=(12, 1)
    )
    job_median_seconds_7d = fields.Float(
        string="Median Request to Done (7 days, s)", compute="_compute_job_stats", digits=(12, 1)
    )
    job_p95_seconds_7d = fields.Float(
        string="95th Percentile Request to Done (7 days, s)", compute="_compute_job_stats", digits=(12, 1)
    )
    job_queue_depth = fields.Integer(string="Jobs Waiting", compute="_compute_job_stats")
    job_oldest_pending = fields.Datetime(string="Oldest Waiting Job Since", compute="_compute_job_stats")
    job_failure_reasons = fields.Text(string="Failures by Reason (7 days)", compute="_compute_job_stats")

    def _compute_job_stats(self):
        stats = self.env["fayvad.mail.monitoring"]._job_stats(self.ids)
        reasons = self.env["fayvad.mail.monitoring"]._failure_reasons(self.ids)
        for server in self:
            row = stats.get(server.id)
            server.update(
                {
                    "job_success_rate_24h": row and _rate(row, "24h"),
                    "job_success_rate_7d": row and _rate(row, "7d"),
                    "job_finished_24h": row and row["done_24h"] + row["failed_24h"],
                    "job_finished_7d": row and row["done_7d"] + row["failed_7d"],
                    "job_median_seconds_24h": row and row["median_24h"],
                    "job_p95_seconds_24h": row and row["p95_24h"],
                    "job_median_seconds_7d": row and row["median_7d"],
                    "job_p95_seconds_7d": row and row["p95_7d"],
                    "job_queue_depth": row and row["depth"],
                    "job_oldest_pending": row and row["oldest_pending"],
                    "job_failure_reasons": "\n".join(
                        f"{count} × {reason}" for reason, count in reasons.get(server.id, [])
                    )
                    or False,
                }
            )

    def action_open_failed_jobs(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("fayvad_mail.fayvad_mail_job_action")
        action.update(
            domain=[("mail_server_id", "in", self.ids), ("state", "=", "failed")],
            context={"group_by": ["failure_reason"]},
            view_mode="list,pivot,graph,form",
            views=[(False, "list"), (False, "pivot"), (False, "graph"), (False, "form")],
        )
        return action


class FayvadMailMonitoring(models.AbstractModel):
    _name = "fayvad.mail.monitoring"
    _description = "Mail Hosting Monitoring"

    @api.model
    def _job_stats(self, server_ids=None, company_ids=None, now=None):
        """{server id (None: all of them): figures}, from one query."""
        now = now or fields.Datetime.now()
        where = [SQL("TRUE")]
        if server_ids is not None:
            where.append(SQL("mail_server_id = ANY(%s)", list(server_ids)))
        if company_ids is not None:
            where.append(SQL("company_id = ANY(%s)", list(company_ids)))
        self.env["fayvad.mail.job"].flush_model()
        self.env.cr.execute(_stats_query(now, SQL(" AND ").join(where)))
        rows = self.env.cr.dictfetchall()
        # ROLLUP adds the row of all servers (total); a job without a server yet (never
        # run) is counted in the total only
        stats = {row["mail_server_id"]: row for row in rows if not row["total"] and row["mail_server_id"]}
        stats[None] = next(row for row in rows if row["total"])  # there even when no job matches
        return stats

    @api.model
    def _failure_reasons(self, server_ids, days=7, limit=5):
        """{server id: [(reason, count)]}, most frequent first."""
        self.env["fayvad.mail.job"].flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT mail_server_id, failure_reason, count(*)
                     FROM fayvad_mail_job
                    WHERE state = 'failed' AND date_done >= %s AND mail_server_id = ANY(%s)
                 GROUP BY 1, 2 ORDER BY 3 DESC, 2""",
                fields.Datetime.now() - timedelta(days=days),
                list(server_ids),
            )
        )
        reasons = {}
        for server_id, reason, count in self.env.cr.fetchall():
            if len(reasons.setdefault(server_id, [])) < limit:
                reasons[server_id].append((reason, count))
        return reasons

    # -- the success rate watch ----------------------------------------------------------------
    @api.model
    def _cron_watch_success_rate(self):
        """Each server whose success rate over the last hour fell below the
        threshold (``fayvad_mail.success_rate_threshold``, %) gets one
        activity for the administrators, done once the rate is back."""
        threshold = float(
            self.env["ir.config_parameter"].sudo().get_param(THRESHOLD_PARAM, SUCCESS_RATE_THRESHOLD_DEFAULT)
        )
        servers = self.env["fayvad.mail.server"].sudo().search([])
        stats = self._job_stats(servers.ids)
        summary_prefix = self.env._("Provisioning success rate")
        for server in servers:
            row = stats.get(server.id)
            finished = row["done_1h"] + row["failed_1h"] if row else 0
            rate = _rate(row, "1h") if row else None
            open_ones = server.activity_ids.filtered(lambda a: (a.summary or "").startswith(summary_prefix))
            if finished >= SUCCESS_RATE_MIN_JOBS and rate < threshold:
                if not open_ones:
                    for user in self.env["res.users"]._fayvad_members("admin")[:5]:
                        server.activity_schedule(
                            "mail.mail_activity_data_todo",
                            user_id=user.id,
                            summary=self.env._(
                                "%(prefix)s at %(rate).0f%% on %(server)s",
                                prefix=summary_prefix,
                                rate=rate,
                                server=server.name,
                            ),
                            note=self.env._(
                                "%(failed)s of the %(finished)s jobs finished in the last hour failed (threshold "
                                "%(threshold).0f%%). See the failures by reason on the server.",
                                failed=row["failed_1h"],
                                finished=finished,
                                threshold=threshold,
                            ),
                        )
            elif open_ones and (rate is None or rate >= threshold):
                open_ones.action_feedback(
                    feedback=self.env._("The success rate is back above the threshold.")
                )

    # -- GET /erp/metrics --------------------------------------------------------------------------
    @api.model
    def _metrics(self, company_ids):
        """The Prometheus text of the companies ``company_ids``."""
        now = fields.Datetime.now()
        cr = self.env.cr
        self.env.flush_all()
        families = []

        cr.execute(
            SQL(
                "SELECT job_type, state, count(*) FROM fayvad_mail_job WHERE company_id = ANY(%s) GROUP BY 1, 2",
                company_ids,
            )
        )
        families.append(
            (
                "fayvad_mail_jobs",
                "gauge",
                "Provisioning jobs by type and state.",
                [({"type": t, "state": s}, n) for t, s, n in cr.fetchall()],
            )
        )
        row = self._job_stats(company_ids=company_ids, now=now)[None]
        families += [
            (
                "fayvad_mail_jobs_finished",
                "gauge",
                "Provisioning jobs finished (done or failed for good) in the window.",
                [
                    ({"window": window, "state": state}, row[f"{state}_{window}"])
                    for window in WINDOWS
                    for state in ("done", "failed")
                ],
            ),
            (
                "fayvad_mail_job_success_ratio",
                "gauge",
                "Provisioning jobs done among those finished in the window (NaN: none finished).",
                [({"window": window}, _ratio(row, window)) for window in WINDOWS],
            ),
            (
                "fayvad_mail_job_duration_seconds",
                "gauge",
                "Seconds from request to done of the jobs done in the window.",
                [
                    ({"window": window, "quantile": quantile}, row[f"{label}_{window}"])
                    for window in ("24h", "7d")
                    for label, quantile in (("median", "0.5"), ("p95", "0.95"))
                ],
            ),
            ("fayvad_mail_job_queue_depth", "gauge", "Provisioning jobs waiting.", [({}, row["depth"])]),
            (
                "fayvad_mail_job_oldest_pending_seconds",
                "gauge",
                "Age of the oldest waiting provisioning job (0: none waits).",
                [({}, (now - row["oldest_pending"]).total_seconds() if row["oldest_pending"] else 0)],
            ),
        ]

        cr.execute(
            SQL(
                """SELECT verdict, sum(n) FROM (
                       SELECT COALESCE(verdict, 'received') AS verdict, count(*) AS n
                         FROM fayvad_mail_webhook_delivery WHERE company_id = ANY(%s) GROUP BY 1
                       UNION ALL
                       SELECT label, value FROM fayvad_mail_metric_counter
                        WHERE name = 'webhook_deliveries' AND company_id = ANY(%s)
                   ) t GROUP BY 1""",
                company_ids,
                company_ids,
            )
        )
        families.append(
            (
                "fayvad_mail_webhook_deliveries",
                "counter",
                "Billing webhook deliveries received, by outcome (pruned ones included).",
                [({"outcome": verdict}, n) for verdict, n in cr.fetchall()],
            )
        )

        cr.execute(
            SQL(
                """SELECT count(*) FILTER (WHERE sync_state = 'pending'),
                          count(*) FILTER (WHERE sync_state = 'failed'),
                          min(create_date) FILTER (WHERE sync_state = 'pending')
                     FROM fayvad_mail_billing_event
                    WHERE company_id = ANY(%s) AND sync_state IN ('pending', 'failed')""",
                company_ids,
            )
        )
        backlog, failed, oldest = cr.fetchone()
        families += [
            (
                "fayvad_mail_billing_sync_backlog",
                "gauge",
                "Billing events waiting for their sync into invoices.",
                [({}, backlog)],
            ),
            (
                "fayvad_mail_billing_sync_failed",
                "gauge",
                "Billing events whose sync into invoices failed.",
                [({}, failed)],
            ),
            (
                "fayvad_mail_billing_sync_oldest_pending_seconds",
                "gauge",
                "Age of the oldest billing event waiting for its sync (0: none).",
                [({}, (now - oldest).total_seconds() if oldest else 0)],
            ),
        ]

        cr.execute(
            SQL(
                """SELECT min(COALESCE(usage_read_at, create_date))
                              FILTER (WHERE state IN ('active', 'suspended')),
                          max(dns_checked_at),
                          count(*) FILTER (WHERE verification_state = 'pending' AND state != 'terminated'),
                          count(*) FILTER (WHERE verification_state = 'verified' AND state != 'terminated'),
                          count(*) FILTER (WHERE verification_state = 'expired' AND state != 'terminated'),
                          count(*) FILTER (WHERE dns_broken AND state != 'terminated')
                     FROM fayvad_mail_domain WHERE company_id = ANY(%s)""",
                company_ids,
            )
        )
        oldest_read, last_check, pending, verified, expired, broken = cr.fetchone()
        families += [
            (
                "fayvad_mail_usage_reading_lag_seconds",
                "gauge",
                "Age of the oldest storage reading among the domains in service (0: none in service).",
                [({}, (now - oldest_read).total_seconds() if oldest_read else 0)],
            ),
            (
                "fayvad_mail_domain_verification_last_check_timestamp_seconds",
                "gauge",
                "When a domain's DNS was last checked (Unix time; 0: never).",
                [({}, last_check.timestamp() if last_check else 0)],
            ),
            (
                "fayvad_mail_domains",
                "gauge",
                "Domains not terminated, by ownership verification.",
                [
                    ({"verification": "pending"}, pending),
                    ({"verification": "verified"}, verified),
                    ({"verification": "expired"}, expired),
                ],
            ),
            (
                "fayvad_mail_domains_dns_broken",
                "gauge",
                "Verified domains whose MX or DKIM broke.",
                [({}, broken)],
            ),
        ]
        return render(families)


class FayvadMailMetricCounter(models.Model):
    """What a counter of ``/erp/metrics`` counted of rows deleted since (a
    pruned webhook delivery still counts): counters never go down."""

    _name = "fayvad.mail.metric.counter"
    _description = "Mail Hosting Metric Counter"

    name = fields.Char(required=True)
    company_id = fields.Many2one("res.company", required=True, ondelete="cascade")
    label = fields.Char(required=True)
    value = fields.Integer(required=True, default=0)

    _sql_constraints = [
        ("counter_unique", "UNIQUE(name, company_id, label)", "One row per counter, company and label."),
    ]

    @api.model
    def _add(self, name, counts):
        """Add ``counts`` ({(company id, label): n}) to the counter ``name``."""
        for (company_id, label), count in counts.items():
            self.env.cr.execute(
                SQL(
                    """INSERT INTO fayvad_mail_metric_counter (name, company_id, label, value)
                       VALUES (%s, %s, %s, %s)
                       ON CONFLICT (name, company_id, label) DO UPDATE SET value = fayvad_mail_metric_counter.value + EXCLUDED.value""",
                    name,
                    company_id,
                    label,
                    count,
                )
            )
