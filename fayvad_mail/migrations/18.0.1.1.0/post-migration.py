"""18.0.1.0.0 -> 18.0.1.1.0 (CONTRACT.md, second amendments).

- Upgrade steps that ran from init() at every update run here, once: the
  servers' tokens and webhook secrets of versions that kept them in clear are
  encrypted, indexes nothing uses any more are dropped.
- Secrets at rest were encrypted with a key derived from the database's own
  secret: they are encrypted again with the key of the server's
  configuration (``fayvad_mail_vault_key``), so that a dump alone reveals none.
- Webhook identities were scoped to the company: they are scoped to their
  organization (keys ``<org>:id:...`` and ``<org>:body:...``).
- Billing starts with the service: what exists on the mail server is in
  service since its creation; mailbox suspensions get their owner.
"""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    # indexes of earlier versions that nothing uses any more
    cr.execute("DROP INDEX IF EXISTS fayvad_mail_webhook_delivery_dedup_uniq")
    cr.execute("DROP INDEX IF EXISTS fayvad_mail_billing_event__organization_id_index")
    env["fayvad.mail.vault"]._encrypt_clear_columns()  # from versions that kept them in clear
    env["fayvad.mail.vault"]._reencrypt_from_database_secret()
    cr.execute(
        """
        UPDATE fayvad_mail_webhook_identity
           SET key = organization_id || substring(key FROM '^[0-9]+(:(id|body):.*)$')
         WHERE organization_id IS NOT NULL AND key ~ '^[0-9]+:(id|body):'
        """
    )
    cr.execute(
        """
        UPDATE fayvad_mail_organization o
           SET service_start_date = o.create_date::date
         WHERE service_start_date IS NULL
           AND (o.state IN ('active', 'suspended')
                OR EXISTS (SELECT 1 FROM fayvad_mail_domain d
                            WHERE d.organization_id = o.id AND d.remote_id IS NOT NULL))
        """
    )
    cr.execute(
        """
        UPDATE fayvad_mail_account
           SET service_start_date = create_date::date
         WHERE service_start_date IS NULL AND (state IN ('active', 'suspended') OR remote_id IS NOT NULL)
        """
    )
    cr.execute(
        """
        UPDATE fayvad_mail_account a
           SET suspended_by = CASE WHEN o.state = 'suspended' THEN 'organization' ELSE 'admin' END
          FROM fayvad_mail_organization o
         WHERE o.id = a.organization_id AND a.state = 'suspended' AND a.suspended_by IS NULL
        """
    )
