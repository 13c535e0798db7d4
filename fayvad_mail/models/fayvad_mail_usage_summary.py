import json
import tempfile
from datetime import datetime, time

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.api_errors import ApiError
from ..tools.units import GB

EVENT_BATCH = 5000  # billing events encoded at a time (a server-side cursor feeds them)
SPOOL_BYTES = 4 * 1024 * 1024  # an answer larger than this is written to a temporary file


def _money(value, decimals):
    """An amount as a JSON number, with its currency's own decimal places."""
    return round(float(value or 0.0), decimals if decimals is not None else 2)


class FayvadMailUsageSummary(models.AbstractModel):
    """The usage summary of GET /erp/usage-summary/ (CONTRACT.md): counts,
    storage as of the period's end, revenue and billing events of the
    period.

    Everything is read with SQL aggregates and built from rows (not
    records), in a fixed number of queries whatever the number of
    organizations; the organizations in scope come from the ORM's own
    query, so record rules (companies) apply. The answer is written as JSON
    while the billing events are read in batches (a server-side cursor), so
    a summary of every organization does not need the whole answer in
    memory at once."""

    _name = "fayvad.mail.usage.summary"
    _description = "Usage Summary"

    @api.model
    def _summary(self, query):
        """The answer as a dict (tests, small answers)."""
        with self._answer(query) as out:
            return json.loads(out.read())

    @api.model
    def _answer(self, query):
        """The answer as JSON in a file-like object, positioned at its start
        (the caller closes it)."""
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (the caller closes it)
        try:
            self._write_answer(query, out)
        except BaseException:
            out.close()
            raise
        out.seek(0)
        return out

    # -- what is in scope ----------------------------------------------------------------------
    def _scope_domain(self, query):
        """The domain of the organizations in scope (the ORM adds the record
        rules)."""
        Org = self.env["fayvad.mail.organization"]
        end_of_day = datetime.combine(query["end_date"], time.max)
        domain = [("create_date", "<=", end_of_day)]
        if query["organization_id"]:
            if not Org.search_count([("id", "=", query["organization_id"])]):
                raise ApiError(
                    404, "ORGANIZATION_NOT_FOUND", f"Organization {query['organization_id']} not found"
                )
            domain.append(("id", "=", query["organization_id"]))
        return domain

    def _usage(self, end):
        """The bytes of account ``a`` as of ``end``: its latest reading on or
        before that day (none read yet: nothing). The account keeps its
        latest reading; only a period ending before it looks into the
        history (one probe of the (account_id, date) index)."""
        return SQL(
            """CASE WHEN a.usage_date IS NULL THEN 0
                    WHEN a.usage_date <= %(end)s THEN a.storage_used
                    ELSE COALESCE((SELECT s.bytes_used FROM fayvad_mail_usage_snapshot s
                                    WHERE s.account_id = a.id AND s.date <= %(end)s
                                 ORDER BY s.date DESC LIMIT 1), 0) END""",
            end=end,
        )

    def _live_accounts(self, scope, end):
        end_of_day = datetime.combine(end, time.max)
        return SQL(
            "a.organization_id IN %s AND a.create_date <= %s AND a.state != 'terminated'", scope, end_of_day
        )

    # -- the answer ----------------------------------------------------------------------------------
    def _write_answer(self, query, out):
        start, end = query["start_date"], query["end_date"]
        lang = self.env.lang or "en_US"
        self.env.flush_all()
        # these aggregates run for 0.1 s at most: compiling them (JIT) costs more than it saves
        # (EXPLAIN ANALYZE at 100,000 mailboxes: 48 ms of JIT in a 243 ms query)
        self.env.cr.execute("SET LOCAL jit = off")
        Org = self.env["fayvad.mail.organization"]
        domain = self._scope_domain(query)
        scope = Org._search(domain).subselect()
        paged = query["limit"] is not None or query["offset"] is not None
        offset, limit = query["offset"] or 0, query["limit"]
        cr = self.env.cr
        summary = self._totals(domain, scope, start, end)
        rows_scope = scope
        if paged:  # the page's organizations: the primary key's order, read as far as the page
            rows_scope = Org._search(domain, order="id", limit=limit, offset=offset).subselect()
        cr.execute(
            SQL(
                """
                SELECT o.id, o.name, o.partner_id, o.state, o.max_storage_gb,
                       COALESCE(acc.total, 0), COALESCE(acc.active, 0), COALESCE(acc.used, 0),
                       sub.id IS NOT NULL, COALESCE(plan.name->>%(lang)s, plan.name->>'en_US'),
                       sub.amount, cur.name, sub.state, cur.decimal_places
                  FROM fayvad_mail_organization o
                  LEFT JOIN (SELECT a.organization_id, count(*) AS total,
                                    count(*) FILTER (WHERE a.state = 'active') AS active,
                                    sum(%(usage)s) AS used
                               FROM fayvad_mail_account a
                              WHERE %(live)s
                           GROUP BY a.organization_id) acc ON acc.organization_id = o.id
                  LEFT JOIN (SELECT DISTINCT ON (s.organization_id) s.*
                               FROM fayvad_mail_subscription s
                              WHERE s.organization_id IN %(scope)s
                           ORDER BY s.organization_id, (s.state != 'cancelled') DESC,
                                    COALESCE(s.date_start, %(today)s) DESC, s.id DESC) sub
                         ON sub.organization_id = o.id
                  LEFT JOIN fayvad_mail_plan plan ON plan.id = sub.plan_id
                  LEFT JOIN res_currency cur ON cur.id = sub.currency_id
                 WHERE o.id IN %(scope)s
              ORDER BY o.id
                """,
                lang=lang,
                today=fields.Date.context_today(self),
                usage=self._usage(end),
                live=self._live_accounts(rows_scope, end),
                scope=rows_scope,
            )
        )
        page = cr.fetchall()
        page_ids = tuple(row[0] for row in page) or (0,)
        total = summary["total_organizations"]
        details = self._details(page_ids, end) if query["include_details"] else None
        head = {"period": {"start_date": start.isoformat(), "end_date": end.isoformat()}, "summary": summary}
        if paged:
            head["pagination"] = {"total": total, "offset": offset, "limit": limit, "count": len(page)}
        events_scope = SQL("%s", page_ids) if paged else scope
        events_offset, events_limit = query.get("events_offset") or 0, query.get("events_limit")
        if events_limit is not None or events_offset:
            cr.execute(
                SQL(
                    "SELECT count(*) FROM fayvad_mail_billing_event e "
                    "WHERE e.organization_id IN %s AND e.date BETWEEN %s AND %s",
                    events_scope,
                    start,
                    end,
                )
            )
            total = cr.fetchone()[0]
            count = max(0, total - events_offset)
            head["events_pagination"] = {
                "total": total,
                "offset": events_offset,
                "limit": events_limit,
                "count": min(count, events_limit) if events_limit is not None else count,
            }
        text = json.dumps(head, ensure_ascii=False)
        out.write(text[:-1].encode())  # the object stays open for the lists
        out.write(b', "organizations": [')
        for i, row in enumerate(page):
            if i:
                out.write(b", ")
            out.write(json.dumps(self._organization(row, details), ensure_ascii=False).encode())
        out.write(b'], "billing_events": [')
        self._write_events(out, events_scope, start, end, events_offset, events_limit)
        out.write(b"]}")

    def _totals(self, domain, scope, start, end):
        """The ``summary`` part over every organization in scope. A company
        whose every organization is in scope is read from its running
        totals (fayvad_mail_tally.py) while they hold for ``end``; the
        others mailbox by mailbox (one more query). Then the revenue's."""
        cr = self.env.cr
        orgs = self.env["fayvad.mail.organization"]._search(domain)  # record rules applied
        orgs.order, orgs.groupby = None, SQL("fayvad_mail_organization.company_id")
        cr.execute(
            SQL(
                """
                WITH scope AS (%(scope)s)
                SELECT scope.*, COALESCE(o.organizations, 0) AS company_organizations,
                       COALESCE(a.accounts, 0) AS accounts, COALESCE(a.active_accounts, 0) AS active_accounts,
                       COALESCE(a.used, 0) AS used, a.latest
                  FROM scope
                  LEFT JOIN (SELECT company_id, sum(organizations) AS organizations
                               FROM fayvad_mail_organization_tally GROUP BY company_id) o
                         ON o.company_id = scope.company_id
                  LEFT JOIN (SELECT company_id, sum(accounts) AS accounts, sum(active_accounts) AS active_accounts,
                                    sum(used) AS used, max(latest) AS latest
                               FROM fayvad_mail_account_tally GROUP BY company_id) a
                         ON a.company_id = scope.company_id
                """,
                scope=orgs.select(
                    SQL(
                        "fayvad_mail_organization.company_id, count(*) AS organizations, "
                        "count(*) FILTER (WHERE fayvad_mail_organization.state = 'active') AS active, "
                        "count(*) FILTER (WHERE fayvad_mail_organization.state = 'suspended') AS suspended"
                    )
                ),
            )
        )
        companies = cr.dictfetchall()
        # a company whose organizations are all in scope (the same number) is "whole"
        whole = [c for c in companies if c["organizations"] == c["company_organizations"]]
        tallied = [c for c in whole if not c["latest"] or c["latest"] <= end]
        counted = [c["company_id"] for c in companies if c not in tallied]
        users = sum(c["accounts"] for c in tallied)
        active_users = sum(c["active_accounts"] for c in tallied)
        used = sum(c["used"] for c in tallied)
        if counted:
            cr.execute(
                SQL(
                    """
                    SELECT count(*), count(*) FILTER (WHERE a.state = 'active'), COALESCE(sum(%s), 0)
                      FROM fayvad_mail_account a WHERE a.company_id IN %s AND %s
                    """,
                    self._usage(end),
                    tuple(counted),
                    self._live_accounts(scope, end),
                )
            )
            more, more_active, more_used = cr.fetchone()
            users, active_users, used = users + more, active_users + more_active, used + more_used
        return {
            "total_organizations": sum(c["organizations"] for c in companies),
            "active_organizations": sum(c["active"] for c in companies),
            "suspended_organizations": sum(c["suspended"] for c in companies),
            "total_users": users,
            "active_users": active_users,
            "total_storage_gb": round(used / GB, 2),
            "total_revenue": self._revenue(
                scope,
                [c["company_id"] for c in whole],
                [c["company_id"] for c in companies if c not in whole],
                start,
                end,
            ),
            "currency": self.env.company.currency_id.name,
        }

    def _organization(self, row, details):
        org_id, name, partner_id, state, max_gb, total, active, used, has_sub = row[:9]
        limit = max_gb * GB
        entry = {
            "id": org_id,
            "name": name,
            "odoo_customer_id": partner_id,
            "state": state,
            "users": {"total": total, "active": active, "inactive": total - active},
            "storage": {
                "used_gb": round(used / GB, 2),
                "limit_gb": float(max_gb),
                "percentage": round(used * 100 / limit, 2) if limit else 0.0,
            },
            "subscription": {
                "plan_name": row[9] or None,
                "amount": _money(row[10], row[13]),
                "currency": row[11],
                "status": row[12],
            }
            if has_sub
            else None,
        }
        if details is not None:
            accounts, domains, aliases, domain_aliases = details
            entry["email_accounts"] = accounts.get(org_id, [])
            entry["domains"] = domains.get(org_id, [])
            entry["aliases"] = aliases.get(org_id, [])
            entry["domain_aliases"] = domain_aliases.get(org_id, [])
        return entry

    def _details(self, page_ids, end):
        """({org id: [email account]}, {org id: [domain]}) of the page's organizations."""
        cr = self.env.cr
        cr.execute(
            SQL(
                """
                SELECT a.organization_id, a.id, a.email, a.state = 'active', a.quota, %s
                  FROM fayvad_mail_account a
                 WHERE %s
              ORDER BY a.organization_id, a.email
                """,
                self._usage(end),
                self._live_accounts(SQL("%s", page_ids), end),
            )
        )
        accounts = {}
        for org_id, account_id, email, active, quota, used in cr.fetchall():
            accounts.setdefault(org_id, []).append(
                {"id": account_id, "email": email, "active": active, "quota": quota, "used": used}
            )
        cr.execute(
            SQL(
                "SELECT organization_id, id, name, state FROM fayvad_mail_domain "
                "WHERE organization_id IN %s ORDER BY organization_id, name",
                page_ids,
            )
        )
        domains = {}
        for org_id, domain_id, name, state in cr.fetchall():
            domains.setdefault(org_id, []).append({"id": domain_id, "name": name, "state": state})
        return accounts, domains, *self._alias_details(page_ids, end)

    def _alias_details(self, page_ids, end):
        """({org id: [alias]}, {org id: [domain alias]}) that exist on
        ``end``, in one query (a forward's recipients include its mailbox)."""
        self.env.cr.execute(
            SQL(
                """
                SELECT 'alias', al.organization_id, al.id, al.address, al.recipients, al.enabled, al.kind,
                       acc.email, NULL::int
                  FROM fayvad_mail_alias al
                  LEFT JOIN fayvad_mail_account acc ON acc.id = al.account_id
                 WHERE al.organization_id IN %(orgs)s AND al.state != 'terminated' AND al.create_date <= %(end)s
             UNION ALL
                SELECT 'domain_alias', da.organization_id, da.id, da.name, NULL, da.enabled, NULL, NULL, da.domain_id
                  FROM fayvad_mail_domain_alias da
                 WHERE da.organization_id IN %(orgs)s AND da.state != 'terminated' AND da.create_date <= %(end)s
              ORDER BY 2, 4
                """,
                orgs=page_ids,
                end=datetime.combine(end, time.max),
            )
        )
        aliases, domain_aliases = {}, {}
        for row in self.env.cr.fetchall():
            what, org_id, record_id, name, recipients, enabled, kind, mailbox, domain_id = row
            if what == "domain_alias":
                domain_aliases.setdefault(org_id, []).append(
                    {"id": record_id, "name": name, "domain_id": domain_id}
                )
                continue
            listed = (recipients or "").split()
            if kind == "forward" and mailbox and mailbox not in listed:
                listed.append(mailbox)
            aliases.setdefault(org_id, []).append(
                {"id": record_id, "email": name, "recipients": listed, "active": bool(enabled), "kind": kind}
            )
        return aliases, domain_aliases

    def _write_events(self, out, scope, start, end, offset, limit):
        """The period's billing events, oldest first: PostgreSQL writes each
        entry as JSON, a server-side cursor hands them over in batches, and
        they are written as they come (no Python object per event)."""
        query = SQL(
            """
            SELECT json_build_object(
                       'id', e.id, 'organization_id', e.organization_id, 'event_type', e.event_type,
                       'event_date', e.date, 'quantity', round(COALESCE(e.quantity, 0), 2),
                       'unit_price', round(COALESCE(e.unit_price, 0), cur.decimal_places),
                       'amount', round(COALESCE(e.amount, 0), cur.decimal_places),
                       'currency', cur.name, 'description', COALESCE(e.description, ''),
                       'odoo_synced', COALESCE(e.odoo_synced, false))::text
              FROM fayvad_mail_billing_event e
              JOIN res_currency cur ON cur.id = e.currency_id
             WHERE e.organization_id IN %s AND e.date BETWEEN %s AND %s
          ORDER BY e.date, e.id
             LIMIT %s OFFSET %s
            """,
            scope,
            start,
            end,
            limit,
            offset,
        )
        # a cursor is planned for its first rows by default: plan it for all of them
        self.env.cr.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        separator = b""
        with self.env.cr._cnx.cursor(name="fayvad_mail_usage_events") as rows:
            rows.itersize = EVENT_BATCH
            rows.execute(query.code, query.params)
            while batch := rows.fetchmany(EVENT_BATCH):
                out.write(separator + ", ".join(row[0] for row in batch).encode())
                separator = b", "

    def _revenue(self, scope, whole, partly, start, end):
        """Payments received minus refunds dated in the period, in the
        company currency: one row per currency, day and kind, converted.
        The ``whole`` companies (every organization in scope) are read from
        their daily totals, the ``partly`` ones from their events."""
        self.env.cr.execute(
            SQL(
                """
                SELECT t.currency_id, t.date, t.event_type, sum(t.amount)
                  FROM fayvad_mail_revenue_tally t
                 WHERE t.company_id IN %(whole)s AND t.date BETWEEN %(start)s AND %(end)s
              GROUP BY t.currency_id, t.date, t.event_type
             UNION ALL
                SELECT e.currency_id, e.date, e.event_type, sum(abs(e.amount))
                  FROM fayvad_mail_billing_event e
                 WHERE e.company_id IN %(partly)s AND e.organization_id IN %(scope)s
                   AND e.date BETWEEN %(start)s AND %(end)s AND e.event_type IN ('payment_received', 'refund')
              GROUP BY e.currency_id, e.date, e.event_type
                """,
                whole=tuple(whole) or (0,),
                partly=tuple(partly) or (0,),
                scope=scope,
                start=start,
                end=end,
            )
        )
        # fetched before anything else runs a query on this cursor (reading the company does, and
        # would leave its own rows in place of these)
        rows = self.env.cr.fetchall()
        company = self.env.company
        Currency = self.env["res.currency"]
        total = 0.0
        for currency_id, day, kind, amount in rows:
            value = Currency.browse(currency_id)._convert(float(amount), company.currency_id, company, day)
            total += value if kind == "payment_received" else -value
        return _money(total, company.currency_id.decimal_places)
