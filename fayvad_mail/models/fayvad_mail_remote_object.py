from odoo import api, models
from odoo.exceptions import UserError


class FayvadMailRemoteObject(models.AbstractModel):
    """The life of a record that one kind of job keeps on the mail server
    (aliases, domain aliases): ``create_<kind>``, ``update_<kind>`` and
    ``delete_<kind>`` jobs, whose ``<kind>_id`` is the record. The record has
    ``state``, ``active``, ``remote_id`` and ``domain_id``."""

    _name = "fayvad.mail.remote.object"
    _description = "Record Kept on the Mail Server"
    _job_kind = None  # "alias", "domain_alias"

    def _counted_domain(self):
        """What of the organization's records its plan counts, beyond being live."""
        return []

    @api.model
    def _live_count(self, org):
        """The organization's records the plan counts (deleted ones are not)."""
        return self.with_context(active_test=False).search_count(
            [("organization_id", "=", org.id), ("state", "!=", "terminated"), *self._counted_domain()]
        )

    def _enqueue_job(self, action, depends_on=None):
        Job = self.env["fayvad.mail.job"]
        return Job._enqueue(f"{action}_{self._job_kind}", depends_on=depends_on, **{self._job_kind: self})

    def _jobs_before(self):
        """The pending or failed job its creation waits for: its domain's."""
        return self.env["fayvad.mail.job"].search(
            [
                ("domain_id", "=", self.domain_id.id),
                ("job_type", "=", "create_domain"),
                ("state", "in", ("pending", "failed")),
            ],
            order="id desc",
            limit=1,
        )

    def _push_changes(self):
        """Queue an update of what is (or will be) on the server."""
        for record in self.filtered(lambda r: r.state in ("active", "provisioning", "failed")):
            record._enqueue_job("update")

    def action_provision(self):
        self.env["res.users"]._fayvad_require("admin")
        for record in self:
            if record.state not in ("draft", "failed"):
                raise UserError(self.env._("%s is already on the mail server.", record.display_name))
        self._queue_provisioning()
        return True

    def action_delete(self):
        """Remove it from the mail server (and credit it when it was billed);
        Odoo keeps the record, terminated."""
        self.env["res.users"]._fayvad_require("accountant")
        for record in self.filtered(lambda r: r.state != "terminated"):
            on_server = record.state not in ("draft", "failed") or record.remote_id
            record.write({"state": "terminated", "active": False})
            self.env["fayvad.mail.billing.event"]._on_alias_change(record, added=False)
            if on_server:
                record._enqueue_job("delete")
        return True

    def _resume_provisioning(self):
        """Carry on with a record whose creation is pending or failed."""
        Job = self.env["fayvad.mail.job"].sudo()
        for record in self:
            jobs = Job.search(
                [
                    (f"{self._job_kind}_id", "=", record.id),
                    ("job_type", "=", f"create_{self._job_kind}"),
                    ("state", "in", ("pending", "failed")),
                ]
            )
            if not jobs:
                record._queue_provisioning()
                continue
            jobs.filtered(lambda j: j.state == "failed").action_retry()
            record.state = "provisioning"

    def _queue_provisioning(self):
        for record in self:
            record.state = "provisioning"
            record._enqueue_job("create", depends_on=record._jobs_before())
