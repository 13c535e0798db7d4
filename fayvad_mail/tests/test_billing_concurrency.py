"""Two workers sync billing events of one organization and month at the
same moment, each in its own transaction on its own connection, and the
second one's snapshot was taken before the first committed its new draft
invoice: the database still holds one draft per organization, period and
currency, and the second event lands on it at the next run.

This needs committed data (created with a real cursor, deleted afterwards)."""

import time

from odoo import SUPERUSER_ID, fields
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger

from odoo.addons.fayvad_mail.tests.common import delete_committed, new_env

CONTEXT = {"tracking_disable": True, "mail_create_nolog": True}


@tagged("post_install", "-at_install")
class TestBillingConcurrency(TransactionCase):
    def test_two_workers_make_one_draft_invoice_per_period(self):
        org_id, event_ids = self._commit_fixture()
        self.addCleanup(self._cleanup, org_id)
        first, second = self.registry.cursor(), self.registry.cursor()
        try:
            envs = [new_env(cr, SUPERUSER_ID, CONTEXT) for cr in (first, second)]
            for env in envs:  # both transactions take their snapshot now, before either drafts
                env.cr.execute("SELECT count(*) FROM account_move")
            Event = [env["fayvad.mail.billing.event"] for env in envs]
            self.assertTrue(Event[0].browse(event_ids[0])._sync())
            first.commit()
            with mute_logger("odoo.sql_db", "odoo.addons.fayvad_mail.models.fayvad_mail_billing_event"):
                synced = Event[1].browse(event_ids[1])._sync()
            second.commit()
        finally:
            first.close()
            second.close()
        self.assertFalse(synced, "the second worker could not make a second draft")
        with self.registry.cursor() as cr:
            env = new_env(cr, SUPERUSER_ID, CONTEXT)
            late = env["fayvad.mail.billing.event"].browse(event_ids[1])
            self.assertEqual(late.sync_state, "pending", "kept, to be synced again")
            self.assertIn("at the same moment", late.last_error)
            late.next_sync_at = False  # its retry is due: the next run
            self.assertTrue(late._sync())
            drafts = env["account.move"].search(
                [("fayvad_organization_id", "=", org_id), ("state", "=", "draft")]
            )
            self.assertEqual(len(drafts), 1, "one draft for the organization's month")
            self.assertEqual(len(drafts.invoice_line_ids), 2, "with both events on it")
            self.assertEqual(env["fayvad.mail.billing.event"].browse(event_ids).mapped("invoice_id"), drafts)
            cr.rollback()  # nothing of the retry kept: the cleanup deletes the rest

    def _commit_fixture(self):
        with self.registry.cursor() as cr:
            env = new_env(cr, SUPERUSER_ID, CONTEXT)
            partner = env["res.partner"].create({"name": f"Race billing customer {time.time()}"})
            org = env["fayvad.mail.organization"].create(
                {"name": "Race billing", "partner_id": partner.id, "state": "active", "mail_server_id": False}
            )
            today = fields.Date.today()
            events = env["fayvad.mail.billing.event"].create(
                [
                    {
                        "organization_id": org.id,
                        "event_type": "user_added",
                        "date": today,
                        "quantity": 1,
                        "unit_price": price,
                        "description": f"Race line {price}",
                    }
                    for price in (5.0, 7.0)
                ]
            )
            return org.id, events.ids

    def _cleanup(self, org_id):
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "UPDATE fayvad_mail_billing_event SET invoice_id = NULL, invoice_line_id = NULL "
                    "WHERE organization_id = %s",
                    org_id,
                )
            )
            cr.execute(SQL("DELETE FROM account_move WHERE fayvad_organization_id = %s", org_id))
        delete_committed(self.registry, [org_id])
