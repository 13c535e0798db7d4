"""18.0.1.1.0 -> 18.0.1.2.0: domain verification.

- Every domain gets a verification token of its own (adding the column gave
  them all the same default).
- Domains already on the mail server were hosted before verification
  existed: they are verified ("in service before verification existed"),
  so that an upgrade never stops a customer's mail. Their DNS records are
  checked by the cron as any verified domain's; the others wait for their
  customer's DNS like a new domain.
"""

import secrets

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    cr.execute("SELECT id FROM fayvad_mail_domain")
    for (domain_id,) in cr.fetchall():
        cr.execute(
            "UPDATE fayvad_mail_domain SET verification_token = %s WHERE id = %s",
            (secrets.token_hex(16), domain_id),
        )
    cr.execute(
        """
        UPDATE fayvad_mail_domain
           SET verification_state = 'verified', verified_how = 'existing', verified_at = now() at time zone 'UTC'
         WHERE state IN ('active', 'suspended') OR remote_id IS NOT NULL AND remote_id > 0
        """
    )
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["fayvad.mail.domain"].search([])._refresh_dns_records()  # the ownership record to publish
