-- a copied database must not drive the production mail server:
-- forget the API tokens and point the servers nowhere
UPDATE fayvad_mail_server
   SET token_encrypted = NULL,
       url = 'http://neutralized.invalid',
       active = false;

-- and leave its provisioning queue alone
UPDATE fayvad_mail_job
   SET state = 'cancelled',
       last_error = 'Cancelled when the database was neutralized.'
 WHERE state = 'pending';

-- webhook secrets of production must not be valid on a copy, and pending
-- mailbox passwords are dropped
UPDATE fayvad_mail_webhook_secret
   SET expires_at = now() AT TIME ZONE 'UTC';
UPDATE fayvad_mail_account
   SET pending_password = NULL;

-- passwords waiting to be shown once in the portal
DELETE FROM fayvad_mail_password_reveal;
