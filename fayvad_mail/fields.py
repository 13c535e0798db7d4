"""Field types fayvad_mail needs beyond Odoo's own."""

from odoo import fields


class ByteSize(fields.Integer):
    """A number of bytes: an Integer stored as ``bigint`` (mailbox quotas and
    usage exceed the 2 GiB of Odoo's ``int4`` integers)."""

    _column_type = ("int8", "int8")
