-- WAL archiving: pg_stat_archiver's one row with the archiving settings, PostgreSQL 13+.
-- archive_command shows '(disabled)' while archive_mode is off, so whether it is set is read
-- from pg_settings.reset_val, the configured value; only that it is set is returned, never
-- the command (it may carry credentials). archive_library exists from PostgreSQL 15 (no
-- pg_settings row before: NULL). Counting the segments waiting to be archived (.ready files)
-- needs pg_ls_archive_statusdir(), granted to pg_monitor; its EXECUTE privilege is checked
-- when a plan starts, even in an untaken CASE branch, so backups_archive_pending.sql runs
-- apart, only when can_list_archive_status.
SELECT /* vhdiag */ a.archived_count,
       a.last_archived_wal,
       a.last_archived_time,
       extract(epoch FROM statement_timestamp() - a.last_archived_time)::float8 AS last_archived_age_s,
       a.failed_count,
       a.last_failed_wal,
       a.last_failed_time,
       extract(epoch FROM statement_timestamp() - a.last_failed_time)::float8 AS last_failed_age_s,
       a.stats_reset,
       current_setting('archive_mode') AS archive_mode,
       (SELECT s.reset_val <> '' FROM pg_settings s WHERE s.name = 'archive_command') AS archive_command_set,
       (SELECT nullif(s.reset_val, '') FROM pg_settings s WHERE s.name = 'archive_library') AS archive_library,
       (SELECT s.setting::float8 FROM pg_settings s WHERE s.name = 'archive_timeout') AS archive_timeout_s,
       has_function_privilege('pg_ls_archive_statusdir()', 'EXECUTE') AS can_list_archive_status,
       pg_is_in_recovery() AS in_recovery,
       statement_timestamp() AS ts
FROM pg_stat_archiver a
