-- Roles as the evening check's "security-relevant changes" compare them, PostgreSQL 13+: only
-- pg_roles (readable by every role; never pg_authid, which needs superuser), so whether a role
-- has a password cannot be seen (pg_roles shows '********' for all). pg_has_role(..., 'MEMBER')
-- follows indirect grants; a superuser is a member of everything and is listed as superuser.
-- The predefined pg_* roles cannot log in and are left out.
SELECT /* vhdiag */ r.rolname AS role,
       r.rolsuper AS superuser,
       r.rolcanlogin AS login,
       r.rolvaliduntil AS valid_until,
       pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER') AS pg_read_server_files,
       pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER') AS pg_write_server_files,
       pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER') AS pg_execute_server_program
FROM pg_roles r
WHERE r.rolname !~ '^pg_'
ORDER BY r.rolname
