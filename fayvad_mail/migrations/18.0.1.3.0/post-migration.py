"""18.0.1.2.0 -> 18.0.1.3.0: the import's dry run reads in the background.

Imports read before were read whole, in one request: their domains are
listed and read, so that their progress says so.
"""


def migrate(cr, version):
    if not version:
        return
    cr.execute("UPDATE fayvad_mail_import SET listed = TRUE WHERE state != 'draft'")
    cr.execute(
        """
        UPDATE fayvad_mail_import_line l SET contents_read = TRUE
          FROM fayvad_mail_import i
         WHERE i.id = l.import_id AND i.state != 'draft' AND l.kind = 'domain'
        """
    )
