from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install")
class TestInstall(HttpCase):
    def test_health_and_menu(self):
        response = self.url_open("/web/health")
        self.assertEqual(response.status_code, 200)
        menu = self.env.ref("fayvad_mail.fayvad_mail_menu_root")
        self.assertEqual(menu.name, "Mail Hosting")
        admin = self.env.ref("base.user_admin")
        for group in ("user", "accountant", "admin", "api"):
            self.assertTrue(admin.has_group(f"fayvad_mail.fayvad_mail_group_{group}"), group)
