"""Hosting-company-sized data written with SQL bulk inserts into the real
tables (every constraint holds): organizations with their customer,
domain, mailboxes, subscription, billing events and daily usage snapshots.
Used by the query-count tests and by ``./dev bench --scale``; far faster
than the ORM, which would take hours for a million events."""

from odoo.tools import SQL

GIB = 1024**3
EVENT_TYPES = ("payment_received", "user_added", "subscription_updated", "payment_failed", "refund")


def bulk_organizations(
    env, company, plan, count, accounts=10, events=100, snapshot_days=30, event_days=365, end=None, tag="bulk"
):
    """Create ``count`` organizations of ``company`` on ``plan``; each has a
    customer, one domain, ``accounts`` mailboxes with ``snapshot_days``
    daily usage snapshots up to ``end`` (the latest kept on the mailbox,
    the domain marked read then, as the usage cron leaves them), an active
    subscription and ``events`` billing events spread over the
    ``event_days`` days up to ``end``. One organization in ten is suspended
    for non-payment. Returns the new organizations' ids."""
    cr = env.cr
    env.flush_all()
    end = end or env.cr.now().date()
    currency = (plan.currency_id or company.currency_id).id
    params = {
        "count": count,
        "company": company.id,
        "plan": plan.id,
        "currency": currency,
        "price": float(plan.monthly_price or 10.0),
        "uid": env.uid,
        "tag": tag,
        "accounts": accounts,
        "events": events,
        "days": snapshot_days,
        "event_days": max(event_days, 1),
        "end": end,
        "gib": GIB,
        "types": list(EVENT_TYPES),
    }

    def run(query):
        cr.execute(SQL(query, **{k: v for k, v in params.items() if f"%({k})s" in query}))

    cr.execute(SQL("SELECT COALESCE(max(id), 0) FROM fayvad_mail_organization"))
    params["after"] = cr.fetchone()[0]
    run(
        """
        WITH partner AS (
            INSERT INTO res_partner (name, complete_name, type, active, is_company, autopost_bills,
                                     company_id, create_uid, write_uid, create_date, write_date)
            SELECT %(tag)s || ' customer ' || i, %(tag)s || ' customer ' || i, 'contact', true, true, 'ask',
                   %(company)s, %(uid)s, %(uid)s, now() - interval '400 days', now() - interval '400 days'
              FROM generate_series(1, %(count)s) i
         RETURNING id, name
        )
        INSERT INTO fayvad_mail_organization
               (partner_id, company_id, plan_id, name, state, suspension_reason, max_users, max_storage_gb,
                default_mailbox_quota_mb, webhook_token, create_uid, write_uid, create_date, write_date)
        SELECT id, %(company)s, %(plan)s, replace(name, ' customer ', ' org '),
               CASE WHEN mod(id, 10) = 0 THEN 'suspended' ELSE 'active' END,
               CASE WHEN mod(id, 10) = 0 THEN 'non_payment' END,
               %(accounts)s + 5, 50, 1024, md5(random()::text || id),
               %(uid)s, %(uid)s, now() - interval '400 days', now() - interval '400 days'
          FROM partner
        """
    )
    run(
        """
        INSERT INTO fayvad_mail_domain (organization_id, company_id, name, state, admin_created, usage_read_at,
                                        verification_token, verification_state, verified_how,
                                        create_uid, write_uid, create_date, write_date)
        SELECT o.id, o.company_id, lower(%(tag)s) || '-' || o.id || '.bulk.example', 'active', true,
               least(now() at time zone 'UTC', %(end)s::date + interval '1 day' - interval '1 second'),
               md5(random()::text || o.id), 'verified', 'txt',
               %(uid)s, %(uid)s, o.create_date, o.create_date
          FROM fayvad_mail_organization o WHERE o.id > %(after)s
        """
    )
    run(
        """
        INSERT INTO fayvad_mail_account (domain_id, organization_id, company_id, local_part, email,
                                         first_name, last_name, state, active, quota, storage_used,
                                         usage_date, create_uid, write_uid, create_date, write_date)
        SELECT d.id, o.id, o.company_id, 'user' || j, 'user' || j || '@' || d.name, 'User', 'No ' || j,
               CASE WHEN o.state = 'suspended' THEN 'suspended' ELSE 'active' END, true, %(gib)s,
               mod(o.id * 7919 + j * 104729, 1000) * 1000000, %(end)s,
               %(uid)s, %(uid)s, o.create_date, o.create_date
          FROM fayvad_mail_organization o
          JOIN fayvad_mail_domain d ON d.organization_id = o.id
         CROSS JOIN generate_series(1, %(accounts)s) j
         WHERE o.id > %(after)s
        """
    )
    run(
        """
        INSERT INTO fayvad_mail_subscription (organization_id, company_id, partner_id, plan_id, currency_id,
                                              name, state, date_start, period_start, period_end, paid_until,
                                              amount, failed_payment_count,
                                              create_uid, write_uid, create_date, write_date)
        SELECT o.id, o.company_id, o.partner_id, o.plan_id, %(currency)s, o.name,
               CASE WHEN o.state = 'suspended' THEN 'past_due' ELSE 'active' END,
               %(end)s - 365, date_trunc('month', %(end)s::date)::date,
               (date_trunc('month', %(end)s::date) + interval '1 month - 1 day')::date,
               (date_trunc('month', %(end)s::date) + interval '1 month - 1 day')::date,
               %(price)s, 0, %(uid)s, %(uid)s, o.create_date, o.create_date
          FROM fayvad_mail_organization o WHERE o.id > %(after)s
        """
    )
    run(
        """
        INSERT INTO fayvad_mail_billing_event
               (organization_id, company_id, partner_id, subscription_id, currency_id, event_type, date,
                quantity, unit_price, amount, description, external_invoice_id, sync_state, odoo_synced,
                chargeable, sync_attempts, create_uid, write_uid, create_date, write_date)
        SELECT o.id, o.company_id, o.partner_id, s.id, %(currency)s,
               (%(types)s::varchar[])[1 + mod(k, 5)],
               %(end)s::date - mod(k * 7 + o.id, %(event_days)s), 1, %(price)s, %(price)s,
               'Bulk event ' || k, 'INV-' || o.id || '-' || k, 'done', true,
               (%(types)s::varchar[])[1 + mod(k, 5)] IN ('user_added', 'subscription_updated'), 0,
               %(uid)s, %(uid)s, now(), now()
          FROM fayvad_mail_organization o
          JOIN fayvad_mail_subscription s ON s.organization_id = o.id
         CROSS JOIN generate_series(1, %(events)s) k
         WHERE o.id > %(after)s
        """
    )
    run(
        """
        INSERT INTO fayvad_mail_usage_snapshot (account_id, organization_id, company_id, date, bytes_used,
                                                gb_used, create_uid, write_uid, create_date, write_date)
        SELECT a.id, a.organization_id, a.company_id, %(end)s::date - k,
               greatest(a.storage_used - k * 1000000, 0), greatest(a.storage_used - k * 1000000, 0) / 1e9,
               %(uid)s, %(uid)s, now(), now()
          FROM fayvad_mail_account a
         CROSS JOIN generate_series(0, %(days)s - 1) k
         WHERE a.organization_id > %(after)s
        """
    )
    cr.execute(SQL("SELECT id FROM fayvad_mail_organization WHERE id > %s ORDER BY id", params["after"]))
    ids = [row[0] for row in cr.fetchall()]
    env.invalidate_all()
    return ids
