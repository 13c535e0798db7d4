"""Shared fixtures of fayvad_mail's tests."""

from contextlib import contextmanager
from unittest.mock import patch

from odoo.tests import TransactionCase, new_test_user

from odoo.addons.fayvad_mail.models.fayvad_mail_organization import MB

GROUPS = {
    "user": "fayvad_mail.fayvad_mail_group_user",
    "accountant": "fayvad_mail.fayvad_mail_group_accountant",
    "admin": "fayvad_mail.fayvad_mail_group_admin",
    "api": "fayvad_mail.fayvad_mail_group_api",
}


class FayvadMailCase(TransactionCase):
    """A company with a plan, a customer and helpers to build organizations.
    Mail-server calls are not made: jobs are queued, the runner is not
    triggered (tests that need it run it themselves)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.server = cls.env["fayvad.mail.server"].create(
            {
                "name": "Test server",
                "url": "http://127.0.0.1:9",
                "token": "t" * 40,
                "mail_host": "mx.test.example",
            }
        )
        cls.plan = cls.env["fayvad.mail.plan"].create(
            {
                "name": "Test Plan",
                "monthly_price": 50.0,
                "included_users": 2,
                "price_per_extra_user": 5.0,
                "max_users": 5,
                "max_storage_gb": 10,
                "default_mailbox_quota_mb": 1024,
            }
        )
        cls.partner = cls.env["res.partner"].create({"name": "Test Customer", "is_company": True})
        cls._trigger_patch = patch.object(
            type(cls.env["fayvad.mail.job"]), "_trigger_runner", lambda self: None
        )
        cls._trigger_patch.start()
        cls.addClassCleanup(cls._trigger_patch.stop)

    @contextmanager
    def assertRefused(self, exception, regex=None):
        """Like assertRaisesRegex, and what the failed call wrote is rolled
        back (Odoo's assertRaises works in a savepoint)."""
        with self.assertRaises(exception) as caught:
            yield caught
        if regex:
            self.assertRegex(str(caught.exception), regex)

    @classmethod
    def make_user(cls, login, *groups, company=None, **kwargs):
        company = company or cls.company
        return new_test_user(
            cls.env,
            login=login,
            groups=",".join(["base.group_user", *(GROUPS[g] for g in groups)]),
            company_id=company.id,
            company_ids=[company.id],
            **kwargs,
        )

    @classmethod
    def make_org(cls, name="Org", domain="org.example", partner=None, plan=None, **vals):
        partner = partner or cls.env["res.partner"].create({"name": f"{name} customer"})
        org = cls.env["fayvad.mail.organization"].create(
            {
                "name": name,
                "partner_id": partner.id,
                "plan_id": (plan if plan is not None else cls.plan).id,
                "mail_server_id": cls.server.id,
                "max_users": 5,
                "max_storage_gb": 10,
                **vals,
            }
        )
        if domain:
            cls.env["fayvad.mail.domain"].create({"name": domain, "organization_id": org.id})
        return org

    @classmethod
    def make_account(cls, org, local, quota_mb=1024, **vals):
        return cls.env["fayvad.mail.account"].create(
            {"local_part": local, "domain_id": org.domain_ids[:1].id, "quota": quota_mb * MB, **vals}
        )
