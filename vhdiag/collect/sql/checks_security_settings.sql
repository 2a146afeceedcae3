-- The two settings the evening check judges: ssl and password_encryption (md5 is deprecated
-- since PostgreSQL 18; scram-sha-256 has been the default since 14). Readable by every role.
SELECT /* vhdiag */ current_setting('ssl') AS ssl,
       current_setting('password_encryption') AS password_encryption
