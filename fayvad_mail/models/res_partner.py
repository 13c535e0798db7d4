from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    fayvad_organization_ids = fields.One2many(
        "fayvad.mail.organization", "partner_id", string="Mail Hosting Organizations"
    )
