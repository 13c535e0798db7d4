"""Running totals per company that the usage summary reads instead of every
organization, mailbox and payment: its organizations by state, its live
mailboxes (count, active, bytes used), and per day its payments and
refunds by currency.

PostgreSQL keeps them: statement-level triggers on the watched table add
one row of differences per statement and key (insert only, so concurrent
transactions never wait for one another on a shared row), and a cron
folds each key's rows into one. Nothing in Odoo writes them; whatever
writes the watched rows (ORM, SQL, a bulk load) moves the totals with it,
in the same transaction."""

from odoo import api, fields, models
from odoo.tools import SQL

from ..fields import ByteSize


class FayvadMailTally(models.AbstractModel):
    """What the running totals share: their trigger, their recount and how
    their rows are folded. A tally model names the table it watches, its
    key columns (the same names in both tables), and for each of its
    figures the SQL of a watched row's part (``r``) and whether the parts
    are added up (``sum``) or the largest is kept (``max``)."""

    _name = "fayvad.mail.tally"
    _description = "Running Totals"
    _log_access = False

    _tally_table = None  # the watched table
    _tally_key = ()  # columns a total is kept for
    _tally_figures = ()  # (column, "sum" | "max", SQL of a row's part)
    _tally_where = "TRUE"  # the watched rows that count
    _tally_moves = ()  # columns of the watched rows whose change moves a figure

    def init(self):
        if self._abstract:
            return
        cr = self.env.cr
        function = SQL.identifier(f"{self._table}_add")
        cr.execute(self._trigger_function(function))
        watched = SQL.identifier(self._tally_table)
        for op, referencing in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            trigger = SQL.identifier(f"{self._table}_add_{op.lower()}")
            cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON %s", trigger, watched))
            cr.execute(
                SQL(
                    "CREATE TRIGGER %s AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION %s()",
                    trigger,
                    SQL(op),
                    watched,
                    SQL(referencing),
                    function,
                )
            )
        cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS %s ON %s (%s)",
                SQL.identifier(f"{self._table}_key_idx"),
                SQL.identifier(self._table),
                self._columns(self._tally_key),
            )
        )
        self._rebuild()

    # -- the SQL ------------------------------------------------------------------------------
    @staticmethod
    def _columns(columns, alias=None):
        """``"a"."x", "a"."y"``."""
        return SQL(", ").join(
            SQL.identifier(alias, column) if alias else SQL.identifier(column) for column in columns
        )

    def _names(self):
        return [column for column, _how, _expr in self._tally_figures]

    def _parts(self, sign, rows):
        """The parts of ``rows`` (a table or a subquery, aliased ``r``), with
        ``sign`` 1 (rows that came) or -1 (rows that went)."""
        figures = SQL(", ").join(
            SQL("%s * (%s) AS %s", SQL(sign), SQL(expr), SQL.identifier(column))
            if how == "sum"
            else SQL("CASE WHEN %s > 0 THEN %s END AS %s", SQL(sign), SQL(expr), SQL.identifier(column))
            for column, how, expr in self._tally_figures
        )
        return SQL(
            "SELECT %s, %s FROM %s r WHERE %s",
            self._columns(self._tally_key, "r"),
            figures,
            rows,
            SQL(self._tally_where),
        )

    def _insert(self, *parts):
        """The INSERT of the differences ``parts`` add up to, one row per key
        (none where they cancel out)."""
        moved = SQL(" OR ").join(
            SQL("sum(%s) <> 0", SQL.identifier("d", column))
            if how == "sum"
            else SQL("max(%s) IS NOT NULL", SQL.identifier("d", column))
            for column, how, _expr in self._tally_figures
        )
        return SQL(
            "INSERT INTO %s (%s, %s) SELECT %s, %s FROM (%s) d WHERE %s GROUP BY %s HAVING %s",
            SQL.identifier(self._table),
            self._columns(self._tally_key),
            self._columns(self._names()),
            self._columns(self._tally_key, "d"),
            self._folded("d"),
            SQL(" UNION ALL ").join(parts),
            SQL(" AND ").join(SQL("%s IS NOT NULL", SQL.identifier("d", k)) for k in self._tally_key),
            self._columns(self._tally_key, "d"),
            moved,
        )

    def _folded(self, alias=None):
        return SQL(", ").join(
            SQL("%s(%s)", SQL(how), SQL.identifier(alias, column) if alias else SQL.identifier(column))
            for column, how, _expr in self._tally_figures
        )

    def _trigger_function(self, name):
        """A statement-level trigger function adding what a statement
        changed; an UPDATE leaving the key and every ``_tally_moves`` column
        as they were adds nothing."""
        moves = (*self._tally_key, *self._tally_moves)

        def changed(side):
            return SQL(
                "(SELECT %s.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (%s) IS DISTINCT FROM (%s))",
                SQL(side),
                self._columns(moves, "o"),
                self._columns(moves, "n"),
            )

        return SQL(
            """
            CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN %s;
                ELSIF TG_OP = 'DELETE' THEN %s;
                ELSE %s;
                END IF;
                RETURN NULL;
            END $$
            """,
            name,
            self._insert(self._parts("1", SQL("new_rows"))),
            self._insert(self._parts("-1", SQL("old_rows"))),
            self._insert(self._parts("-1", changed("o")), self._parts("1", changed("n"))),
        )

    # -- upkeep ------------------------------------------------------------------------------
    @api.model
    def _rebuild(self):
        """Recount from the watched table (installation, upgrade)."""
        self.env.cr.execute(SQL("DELETE FROM %s", SQL.identifier(self._table)))
        self.env.cr.execute(self._insert(self._parts("1", SQL.identifier(self._tally_table))))

    @api.model
    def _compact(self):
        """Fold every key's rows into one, in one statement: rows that
        concurrent transactions add meanwhile are not seen, so they stay."""
        table, keys = SQL.identifier(self._table), self._columns(self._tally_key)
        self.env.cr.execute(
            SQL(
                """
                WITH gone AS (
                    DELETE FROM %(table)s
                     WHERE (%(keys)s) IN (SELECT %(keys)s FROM %(table)s GROUP BY %(keys)s HAVING count(*) > 1)
                 RETURNING *
                )
                INSERT INTO %(table)s (%(keys)s, %(columns)s)
                SELECT %(keys)s, %(folded)s FROM gone GROUP BY %(keys)s
                """,
                table=table,
                keys=keys,
                columns=self._columns(self._names()),
                folded=self._folded(),
            )
        )
        return self.env.cr.rowcount

    @api.model
    def _cron_compact(self):
        for model in TALLIES:
            self.env[model]._compact()


TALLIES = ("fayvad.mail.organization.tally", "fayvad.mail.account.tally", "fayvad.mail.revenue.tally")
LIVE = "r.state <> 'terminated'"


class FayvadMailOrganizationTally(models.Model):
    """Per company: its organizations, active and suspended ones."""

    _name = "fayvad.mail.organization.tally"
    _inherit = ["fayvad.mail.tally"]
    _description = "Organizations of a Company"
    _log_access = False
    _tally_table = "fayvad_mail_organization"
    _tally_key = ("company_id",)
    _tally_figures = (
        ("organizations", "sum", "1"),
        ("active_organizations", "sum", "(r.state = 'active')::int"),
        ("suspended_organizations", "sum", "(r.state = 'suspended')::int"),
    )
    _tally_moves = ("state",)

    company_id = fields.Many2one("res.company", required=True, ondelete="cascade", readonly=True)
    organizations = fields.Integer(readonly=True)
    active_organizations = fields.Integer(readonly=True)
    suspended_organizations = fields.Integer(readonly=True)


class FayvadMailAccountTally(models.Model):
    """Per company: its live mailboxes, active ones and the bytes used by
    their latest readings; ``latest`` is the last day any of these figures
    speaks of (a mailbox's creation or reading), so they hold for every
    period that ends on or after it."""

    _name = "fayvad.mail.account.tally"
    _inherit = ["fayvad.mail.tally"]
    _description = "Mailboxes of a Company"
    _log_access = False
    _tally_table = "fayvad_mail_account"
    _tally_key = ("company_id",)
    _tally_figures = (
        ("accounts", "sum", f"({LIVE})::int"),
        ("active_accounts", "sum", "(r.state = 'active')::int"),
        ("used", "sum", f"CASE WHEN {LIVE} AND r.usage_date IS NOT NULL THEN r.storage_used ELSE 0 END"),
        ("latest", "max", f"CASE WHEN {LIVE} THEN GREATEST(r.create_date::date, r.usage_date) END"),
    )
    _tally_moves = ("state", "storage_used", "usage_date", "create_date")

    company_id = fields.Many2one("res.company", required=True, ondelete="cascade", readonly=True)
    accounts = fields.Integer(readonly=True)
    active_accounts = fields.Integer(readonly=True)
    used = ByteSize(readonly=True)
    latest = fields.Date(readonly=True)


class FayvadMailRevenueTally(models.Model):
    """Per company, day, currency and kind: the payments received or the
    refunds (absolute amounts) of its billing events."""

    _name = "fayvad.mail.revenue.tally"
    _inherit = ["fayvad.mail.tally"]
    _description = "Revenue of a Company's Day"
    _log_access = False
    _tally_table = "fayvad_mail_billing_event"
    _tally_key = ("company_id", "date", "currency_id", "event_type")
    _tally_figures = (("amount", "sum", "abs(COALESCE(r.amount, 0))"),)
    _tally_where = "r.event_type IN ('payment_received', 'refund')"
    _tally_moves = ("amount",)

    company_id = fields.Many2one("res.company", required=True, ondelete="cascade", readonly=True)
    date = fields.Date(required=True, readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, ondelete="cascade", readonly=True)
    event_type = fields.Char(required=True, readonly=True)
    amount = fields.Monetary(readonly=True)
