"""Pure Python helpers of fayvad_mail: no ORM in here."""
