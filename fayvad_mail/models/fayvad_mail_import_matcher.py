"""What an import's dry run makes of what it read on the mail server."""

from ..tools.units import GB, MB


class ImportMatcher:
    """What each object of a part of the server (a few domains and what they
    hold) becomes in Odoo: the preview's lines, with the customer and the
    plan of each new organization."""

    def __init__(self, run, snapshot):
        self.run = run
        self.env = run.env
        self.snapshot = snapshot
        sudo = self.env(su=True)
        self.Org = sudo["fayvad.mail.organization"]
        self.Domain = sudo["fayvad.mail.domain"].with_context(active_test=False)
        self.Account = sudo["fayvad.mail.account"].with_context(active_test=False)
        self.Alias = sudo["fayvad.mail.alias"].with_context(active_test=False)
        self.DomainAlias = sudo["fayvad.mail.domain.alias"].with_context(active_test=False)
        # what Odoo has of the snapshot's objects, one query a kind (not one an object)
        domain_alias_names = {alias.name for item in snapshot for alias in item["domain_aliases"]}
        self.domains = self._live(
            self.Domain, "name", {item["domain"].name for item in snapshot} | domain_alias_names
        )
        self.accounts = self._live(
            self.Account, "email", {mb.email for item in snapshot for mb in item["mailboxes"]}
        )
        self.aliases = self._live(
            self.Alias, "address", {a.address for item in snapshot for a in item["aliases"]}
        )
        self.domain_aliases = self._live(self.DomainAlias, "name", domain_alias_names)
        self.plans = self.env["fayvad.mail.plan"].search(
            [("company_id", "in", (run.company_id.id, False))], order="monthly_price, max_users, id"
        )

    @staticmethod
    def _live(model, field, values):
        """{value: record} of ``model``'s records not terminated whose ``field`` is one of ``values``."""
        if not values:
            return {}
        records = model.search([(field, "in", list(values)), ("state", "!=", "terminated")])
        return {record[field]: record for record in records}

    def lines(self):
        """[(the domain's line, the lines of what it holds)] of each domain of
        the snapshot; what depends on other domains (the one customer's plan,
        recipients in other domains) is the run's to check once all are read."""
        found = []
        for item in self.snapshot:
            domain_line, children = self._domain_lines(item)
            for sequence, child in enumerate(children, start=1):
                child["sequence"] = sequence
            found.append((domain_line, children))
        return found

    # -- domains ---------------------------------------------------------------------------------
    def _domain_lines(self, item):
        remote = item["domain"]
        line = self._line(
            "domain",
            remote.name,
            remote,
            remote.id,
            remote.enabled,
            quota_mb=remote.quota_mb,
            default_quota_mb=remote.default_mailbox_quota_mb,
            dkim_selector=remote.dkim_selector or False,
            dkim_public_key=remote.dkim_public_key or False,
        )
        existing = self.domains.get(remote.name, self.Domain)
        if existing:
            line["domain_id"] = existing.id
            if existing.organization_id.mail_server_id == self.run.server_id and existing.remote_id in (
                0,
                remote.id,
            ):
                line["action"] = "link"
            else:
                line.update(
                    action="conflict",
                    problem=self.env._(
                        "already belongs to the organization %s (on another mail server or another object)",
                        existing.organization_id.display_name,
                    ),
                )
        children = (
            [self._mailbox_line(remote, mb) for mb in item["mailboxes"]]
            + [self._alias_line(remote, alias, item["mailboxes"]) for alias in item["aliases"]]
            + [self._domain_alias_line(remote, alias) for alias in item["domain_aliases"]]
        )
        if line["action"] == "conflict":
            for child in children:
                if child["action"] == "create":
                    child.update(action="conflict", problem=self.env._("its domain is in conflict"))
        if line["action"] == "create":
            needs = self._needs(children)
            if self.run.grouping == "domain":
                line["partner_id"] = self._customer(remote.name).id
                # a customer has one organization: the domain joins the one Odoo has
                joined = self.Org.search([("partner_id", "=", line["partner_id"])], limit=1)
                line["organization_id"] = joined.id
                plan, problem = (joined.plan_id, False) if joined else self._plan(needs)
                line["plan_id"] = plan.id
                if joined and joined.mail_server_id != self.run.server_id:
                    problem = self.env._(
                        "its customer's organization %s is on another mail server", joined.display_name
                    )
                elif joined:
                    problem = " ".join(
                        joined._room_problems(
                            users=needs["users"],
                            storage=needs["storage"],
                            aliases=needs["aliases"],
                            domain_aliases=needs["domain_aliases"],
                        ).values()
                    )
                if problem:
                    line.update(action="conflict", problem=problem)
                    for child in children:
                        if child["action"] == "create":
                            child.update(action="conflict", problem=self.env._("its domain is in conflict"))
        return line, children

    def _needs(self, children):
        imported = [c for c in children if c["action"] in ("create", "link")]
        return self._totals(
            sum(1 for c in imported if c["kind"] == "mailbox"),
            sum(c.get("quota_mb") or 0 for c in imported if c["kind"] == "mailbox"),
            sum(1 for c in imported if c["kind"] in ("alias", "catchall")),
            sum(1 for c in imported if c["kind"] == "domain_alias"),
        )

    @staticmethod
    def _totals(users, quota_mb, aliases, domain_aliases):
        """What an organization must hold, as ``_plan`` and ``_room_problems`` count it."""
        return {
            "users": users,
            "storage": quota_mb * MB,
            "aliases": aliases,
            "domain_aliases": domain_aliases,
        }

    def _customer(self, domain_name):
        """The partner whose e-mail is at the domain, or whose website is it (companies first)."""
        Partner = self.env["res.partner"].with_context(active_test=True)
        for criteria in (
            [("email", "=ilike", f"%@{domain_name}")],
            ["|", ("website", "=ilike", f"%//{domain_name}%"), ("website", "=ilike", f"%.{domain_name}%")],
            [("website", "=ilike", f"{domain_name}%")],
        ):
            partner = Partner.search(criteria, order="is_company desc, id", limit=1)
            if partner:
                return partner.commercial_partner_id
        return Partner.browse()

    def _plan(self, needs):
        """(plan, problem): the run's plan, or the cheapest active plan of
        the company whose limits hold ``needs``."""
        Plan = self.env["fayvad.mail.plan"]

        def fits(plan):
            return (
                plan.max_users >= needs["users"]
                and plan.max_storage_gb * GB >= needs["storage"]
                and plan.max_aliases >= needs["aliases"]
                and plan.max_domain_aliases >= needs["domain_aliases"]
            )

        described = self.env._(
            "%(users)s mailboxes, %(gb).1f GB of quotas, %(aliases)s aliases, %(domain_aliases)s domain aliases",
            users=needs["users"],
            gb=needs["storage"] / GB,
            aliases=needs["aliases"],
            domain_aliases=needs["domain_aliases"],
        )
        if self.run.plan_id:
            if fits(self.run.plan_id):
                return self.run.plan_id, False
            return self.run.plan_id, self.env._(
                "does not fit the plan %(plan)s (%(needs)s)", plan=self.run.plan_id.name, needs=described
            )
        for plan in self.plans:
            if fits(plan):
                return plan, False
        return Plan.browse(), self.env._("no plan fits it (%s)", described)

    # -- what a domain holds -----------------------------------------------------------------------
    @staticmethod
    def _line(kind, name, domain, remote_id, enabled, **values):
        """A preview line of an object of ``domain``, to import until found otherwise."""
        return {
            "kind": kind,
            "name": name,
            "domain_name": domain.name,
            "remote_id": remote_id,
            "enabled": enabled,
            "action": "create",
            **values,
        }

    def _mailbox_line(self, domain, remote):
        line = self._line(
            "mailbox",
            remote.email,
            domain,
            remote.id,
            remote.active,
            quota_mb=remote.quota_mb,
            message_limit=remote.message_limit or 0,
        )
        existing = self.accounts.get(remote.email, self.Account)
        if existing:
            line["account_id"] = existing.id
            if existing.quota_mb != remote.quota_mb:
                line.update(
                    action="conflict",
                    problem=self.env._(
                        "exists in Odoo with a quota of %(odoo)s MB, %(server)s MB on the server",
                        odoo=existing.quota_mb,
                        server=remote.quota_mb,
                    ),
                )
            elif existing.remote_id not in (0, remote.id):
                line.update(
                    action="conflict", problem=self.env._("exists in Odoo as another object of the server")
                )
            else:
                line["action"] = "link"
        elif not remote.quota_mb:
            line.update(
                action="conflict",
                problem=self.env._("has no quota on the server; in Odoo every mailbox has one"),
            )
        return line

    def _alias_line(self, domain, remote, mailboxes):
        own = {mb.email for mb in mailboxes}
        recipients = list(remote.recipients)
        if remote.address.startswith("@"):
            kind = "catchall"
        elif remote.address in own:
            kind = "forward"
        else:
            kind = "alias"
        line = self._line(
            kind, remote.address, domain, remote.id, remote.enabled, recipients="\n".join(recipients)
        )
        existing = self.aliases.get(remote.address, self.Alias)
        if kind == "forward" and remote.address not in recipients:
            line.update(
                action="conflict",
                problem=self.env._("a forward that keeps no copy: Odoo's forwards keep the mailbox's copy"),
            )
        elif existing:
            line["alias_id"] = existing.id
            if sorted(existing._recipient_list()) != sorted(recipients):
                line.update(
                    action="conflict",
                    problem=self.env._(
                        "exists in Odoo with other recipients: %s", ", ".join(existing._recipient_list())
                    ),
                )
            else:
                line["action"] = "link"
        return line

    def _domain_alias_line(self, domain, remote):
        # the server lists a domain's aliases by the domain they are an alias of
        line = self._line("domain_alias", remote.name, domain, remote.id, remote.enabled, target=domain.name)
        existing = self.domain_aliases.get(remote.name, self.DomainAlias)
        other_domain = self.domains.get(remote.name, self.Domain)
        if existing:
            line["domain_alias_id"] = existing.id
            if existing.domain_id.name == line["target"]:
                line["action"] = "link"
            else:
                line.update(
                    action="conflict",
                    problem=self.env._("exists in Odoo for the domain %s", existing.domain_id.name),
                )
        elif other_domain:
            line.update(action="conflict", problem=self.env._("is a domain of its own in Odoo"))
        return line
