"""What ``./dev`` (and the long tests and benchmarks) do inside Odoo, with an
environment ``env`` of the database: not part of the addon, whose models
carry no command-line hooks."""

API_KEY_SCOPE = "fayvad_mail.erp_api"
DEMO_MAILBOX_PASSWORD = "Fayvad-Demo-2026"  # ./dev run's demo mailboxes (docs/development.md)


def new_api_key(env, login):
    """``./dev api-key LOGIN``: a new persistent API key of the addon's scope for that user."""
    user = env["res.users"].search([("login", "=", login)], limit=1)
    if not user:
        raise ValueError(f"no user with login {login}")
    return (
        env["res.users.apikeys"]
        .with_user(user)
        .sudo()
        ._generate(API_KEY_SCOPE, "fayvad_mail ERP API (./dev api-key)", None)
    )


def webhook_secret(env, organization_id=None, base_url=""):
    """``./dev webhook-secret [ORG_ID]``: a live secret (created if none) of the
    company, or ``"<url> <secret>"`` of that organization."""
    Secret = env["fayvad.mail.webhook.secret"].sudo()
    if organization_id is None:
        company, organization = env.ref("base.main_company"), None
    else:
        organization = env["fayvad.mail.organization"].browse(organization_id).exists()
        if not organization:
            raise ValueError(f"organization {organization_id} does not exist")
        company = organization.company_id
    live = Secret._live_secrets(company, organization)
    secret = (
        live[0]
        if live
        else Secret.create(
            {"company_id": company.id, "organization_id": organization and organization.id}
        ).secret
    )
    if organization is None:
        return secret
    return f"{base_url}/fayvad_api/erp/webhooks/billing/{organization.webhook_token}/ {secret}"


def configure_local_server(env, url, token, password_policy=None, dns=None, doveadm=None):
    """``./dev run``: make the local Modoboa the company's server (with the
    password policy that Modoboa was configured to enforce; storage read
    from its Dovecot, ``doveadm`` = (URL, API key)), domain checks ask the
    local DNS server (``dns``, ``host:port``), and queue what the demo
    organizations need on it."""
    Server = env["fayvad.mail.server"]
    server = Server.with_context(active_test=False).search([("url", "=", url)], limit=1)
    vals = {
        **Server._password_policy_vals(password_policy or {}),
        "name": "Local Modoboa",
        "url": url,
        "token": token,
        "server_type": "modoboa",
        "mail_host": "mail.fayvad.test",
        "active": True,
        "sequence": 1,
    }
    if doveadm:
        vals.update(doveadm_url=doveadm[0], doveadm_key=doveadm[1])
    if server:
        server.write(vals)
    else:
        server = Server.create(vals)
    if dns:
        env["ir.config_parameter"].sudo().set_param("fayvad_mail.dns_nameservers", dns)
    orgs = env["fayvad.mail.organization"].search([("mail_server_id", "=", False)])
    orgs.mail_server_id = server
    # the demo's mailboxes get a password people know (else each says its password was never set)
    Job = env["fayvad.mail.job"]
    demo = (
        env["fayvad.mail.account"]
        .search([("state", "!=", "terminated")])
        .filtered(lambda account: not account.remote_id or account.password_dropped)
    )
    for account in demo:
        account._set_pending_password(DEMO_MAILBOX_PASSWORD)
        if account.remote_id:
            Job._enqueue("set_password", account=account)
    server._repair_drift()
    # the portal's Pay works: Odoo's demo payment provider (installed with the demo data), in test mode
    demo_provider = env.ref("payment.payment_provider_demo", raise_if_not_found=False)
    if demo_provider and demo_provider.state == "disabled":
        demo_provider.write({"state": "test", "is_published": True})
    return server


def provision_now(env, rounds=30):
    """Run the queued provisioning jobs now (``./dev run``'s first start: the
    demo domains' DKIM keys are known before their DNS is written)."""
    Job = env["fayvad.mail.job"]
    for _ in range(rounds):
        if not Job._cron_run():
            break


def demo_mailboxes(env):
    """The addresses of the mailboxes that receive mail: on the mail server,
    suspended ones included, of domains that receive (verified ones, when the
    company requires verification). ``./dev run`` greets each with a first message."""
    accounts = env["fayvad.mail.account"].search(
        [("state", "in", ("active", "suspended")), ("remote_id", "!=", False)]
    )
    return sorted(accounts.filtered(lambda account: account.domain_id.mail_enabled).mapped("email"))


def zone_lines(env, names=None):
    """The zone file lines of the records to publish of the domains named
    ``names``, or of every verified domain (the demo's customers published
    theirs): what ``./dev run``'s DNS server serves."""
    Domain = env["fayvad.mail.domain"]
    if names is None:
        domains = Domain.search([("verification_state", "=", "verified"), ("state", "!=", "terminated")])
    else:
        domains = Domain.search([("name", "in", list(names))])
        missing = set(names) - set(domains.mapped("name"))
        if missing:
            raise ValueError(f"no domain named {', '.join(sorted(missing))}")
    return [record.zone_line for record in domains.dns_record_ids if record.value]


def start_import(env, domain_filter=""):
    """``./dev import-server``: a new import from the first active mail
    server (what ``./dev run`` configured), its dry run started (the import's
    cron reads the server in the background); its id."""
    env = env(su=True)
    server = env["fayvad.mail.server"].search([("active", "=", True)], order="sequence, id", limit=1)
    if not server:
        raise ValueError("no active mail server: run ./dev run once")
    run = env["fayvad.mail.import"].create({"server_id": server.id, "domain_filter": domain_filter or False})
    run.action_read()
    return run.id


def run_import_cron(env, run_id):
    """The import's cron, here, until the run waits for nobody (when no
    ``./dev run`` runs it in the background)."""
    run = env["fayvad.mail.import"].sudo().browse(run_id)
    while run.state in ("reading", "importing"):
        errors = run.read_error_count
        env["fayvad.mail.import"]._cron_import()
        env.cr.commit()
        run.invalidate_recordset()
        if run.read_error_count > errors:
            raise ValueError(run.last_error)


def import_report(env, run_id):
    """What the run found (or imported), with each conflict."""
    run = env["fayvad.mail.import"].sudo().browse(run_id)
    server = run.server_id
    lines = [
        f"import {run.id} from {server.name} ({server.url}): {run.progress_total} "
        f"domain{'' if run.progress_total == 1 else 's'}, "
        f"{run.create_count} objects to import, {run.link_count} already in Odoo, {run.conflict_count} conflicts"
    ]
    conflicts = (
        env["fayvad.mail.import.line"]
        .sudo()
        .search([("import_id", "=", run.id), ("action", "=", "conflict")])
    )
    lines += [f"  conflict: {line.kind} {line.name}: {line.problem}" for line in conflicts]
    if run.state == "done":
        lines.append(f"imported: {run.imported_count} objects; nothing was changed on the mail server")
    return lines


def apply_import(env, run_id):
    """The import of the run's preview, started (the import's cron does it)."""
    env["fayvad.mail.import"].sudo().browse(run_id).action_import()
