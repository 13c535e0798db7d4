from odoo import fields, models, tools
from odoo.tools import SQL

from ..const import OPEN_PAYMENT_STATES

BUCKETS = [
    ("0_current", "Not Due"),
    ("1_30", "1-30 Days"),
    ("2_60", "31-60 Days"),
    ("3_90", "61-90 Days"),
    ("4_older", "Older"),
]


class FayvadMailReceivableAgeing(models.Model):
    """What customers owe on their mail hosting invoices, by how late it is
    (a database view, read fresh every time: the buckets move with today)."""

    _name = "fayvad.mail.receivable.ageing"
    _description = "Mail Hosting Receivables by Age"
    _auto = False
    _order = "date_due"

    invoice_id = fields.Many2one("account.move", readonly=True)
    organization_id = fields.Many2one("fayvad.mail.organization", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    date_due = fields.Date(string="Due Date", readonly=True)
    days_late = fields.Integer(readonly=True, aggregator="max")
    bucket = fields.Selection(BUCKETS, string="Age", readonly=True)
    amount_residual = fields.Monetary(string="Amount Due", readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                """
                CREATE VIEW %s AS (
                    SELECT m.id, m.id AS invoice_id, m.fayvad_organization_id AS organization_id,
                           m.partner_id, m.company_id, m.invoice_date_due AS date_due,
                           GREATEST(CURRENT_DATE - m.invoice_date_due, 0) AS days_late,
                           CASE WHEN m.invoice_date_due >= CURRENT_DATE THEN '0_current'
                                WHEN CURRENT_DATE - m.invoice_date_due <= 30 THEN '1_30'
                                WHEN CURRENT_DATE - m.invoice_date_due <= 60 THEN '2_60'
                                WHEN CURRENT_DATE - m.invoice_date_due <= 90 THEN '3_90'
                                ELSE '4_older' END AS bucket,
                           m.amount_residual_signed AS amount_residual
                      FROM account_move m
                     WHERE m.fayvad_organization_id IS NOT NULL AND m.state = 'posted'
                       AND m.move_type IN ('out_invoice', 'out_refund')
                       AND m.payment_state IN %s
                )
                """,
                SQL.identifier(self._table),
                OPEN_PAYMENT_STATES,
            )
        )
