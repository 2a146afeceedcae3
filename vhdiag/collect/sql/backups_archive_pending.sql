-- WAL segments waiting to be archived: the .ready files of pg_wal/archive_status
-- (pg_ls_archive_statusdir, PostgreSQL 12+; superuser or pg_monitor).
SELECT /* vhdiag */ count(*) AS pending_wal_files
FROM pg_ls_archive_statusdir() AS f
WHERE f.name LIKE '%.ready'
