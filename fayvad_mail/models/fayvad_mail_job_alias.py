from odoo import models

from ..tools.mailserver import Unavailable


class FayvadMailJob(models.Model):
    """The steps of aliases, catch-alls, forwards and domain aliases on the
    mail server, idempotent like the others: each looks the alias up by its
    exact address (or name) and makes it what Odoo says now."""

    _inherit = "fayvad.mail.job"

    @staticmethod
    def _alias_fields(alias):
        """What the server should hold. Suspension keeps aliases delivering
        (soft suspension: mail is still received)."""
        return {
            "address": alias.address,
            "recipients": sorted(alias._recipient_list()),
            "enabled": bool(alias.enabled),
            "description": alias.description or "",
            "expire_at": alias.expire_at.isoformat() if alias.expire_at else None,
        }

    def _step_create_alias(self, client):
        """Create the alias, or make the one Odoo created (its remote id)
        what Odoo says now; never another object that has the address."""
        alias = self.alias_id
        if "terminated" in (alias.state, alias.organization_id.state):
            return
        wanted = self._alias_fields(alias)
        remote = client.get_alias(alias.remote_id) if alias.remote_id else None
        if remote is None:  # never created, or deleted on the server since: Odoo's is created
            remote = client.ensure_alias(**wanted)
        have = {
            "address": remote.address,
            "recipients": sorted(remote.recipients),
            "enabled": remote.enabled,
            "description": remote.description,
            "expire_at": remote.expire_at,
        }
        if have != wanted:
            client.update_alias(remote.id, **wanted)
        vals = {"remote_id": remote.id}
        if alias.state in ("draft", "provisioning", "failed"):
            vals["state"] = "active"
        alias.write(vals)

    _step_update_alias = _step_create_alias

    def _step_delete_alias(self, client):
        """Delete the alias Odoo created (by its remote id); one that has
        the same address now is another's and stays."""
        alias = self.alias_id
        if alias.remote_id:
            client.delete_alias(alias.remote_id)
        alias.remote_id = False

    def _sync_org_aliases(self, client):
        """Give the organization's aliases back the state Odoo says:
        disabling a login makes Modoboa disable the aliases whose only
        recipient it is, and enabling it again does not restore them."""
        aliases = self.env["fayvad.mail.alias"].search(
            [("organization_id", "=", self.organization_id.id), ("state", "=", "active")]
        )
        for domain in aliases.domain_id:
            remote = {alias.address: alias for alias in client.list_aliases(domain.name)}
            for alias in aliases.filtered(lambda a, d=domain: a.domain_id == d):
                have = remote.get(alias.address)
                if have and have.enabled != alias.enabled:
                    client.update_alias(have.id, **self._alias_fields(alias))

    # -- domain aliases ------------------------------------------------------------------------------
    def _step_create_domain_alias(self, client):
        alias = self.domain_alias_id
        if "terminated" in (alias.state, alias.organization_id.state):
            return
        target = client.find_domain(alias.domain_id.name)
        if target is None:
            raise Unavailable(self.env._("%s is not on the mail server yet.", alias.domain_id.name))
        remote = client.get_domain_alias(alias.remote_id) if alias.remote_id else None
        if remote is None:
            remote = client.ensure_domain_alias(alias.name, target.id, enabled=alias.enabled)
        if (remote.name, remote.target_id, remote.enabled) != (alias.name, target.id, alias.enabled):
            client.update_domain_alias(remote.id, alias.name, target.id, enabled=alias.enabled)
        vals = {"remote_id": remote.id}
        if alias.state in ("draft", "provisioning", "failed"):
            vals["state"] = "active"
        alias.write(vals)

    _step_update_domain_alias = _step_create_domain_alias

    def _step_delete_domain_alias(self, client):
        """Delete the domain alias Odoo created (by its remote id) only."""
        alias = self.domain_alias_id
        if alias.remote_id:
            client.delete_domain_alias(alias.remote_id)
        alias.remote_id = False
