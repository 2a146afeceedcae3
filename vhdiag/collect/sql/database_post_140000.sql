-- pg_stat_database for every database but template0/template1 and the shared-objects row.
-- PostgreSQL 14 added the session counters: session_time, active_time,
-- idle_in_transaction_time (ms), sessions, sessions_abandoned, sessions_fatal, sessions_killed.
SELECT /* vhdiag */ d.datname AS database,
       CASE WHEN has_database_privilege(d.datid, 'CONNECT')
                 OR pg_has_role('pg_read_all_stats', 'USAGE')
            THEN pg_database_size(d.datid) END AS size_bytes,
       d.numbackends,
       d.xact_commit,
       d.xact_rollback,
       100.0 * d.xact_rollback / nullif(d.xact_commit + d.xact_rollback, 0) AS rollback_pct,
       d.blks_read,
       d.blks_hit,
       100.0 * d.blks_hit / nullif(d.blks_hit + d.blks_read, 0) AS cache_hit_pct,
       d.tup_returned,
       d.tup_fetched,
       d.tup_inserted,
       d.tup_updated,
       d.tup_deleted,
       d.conflicts,
       d.temp_files,
       d.temp_bytes,
       d.deadlocks,
       d.checksum_failures,
       d.checksum_last_failure,
       d.blk_read_time AS blk_read_ms,
       d.blk_write_time AS blk_write_ms,
       d.session_time AS session_time_ms,
       d.active_time AS active_time_ms,
       d.idle_in_transaction_time AS idle_in_transaction_time_ms,
       d.sessions,
       d.sessions_abandoned,
       d.sessions_fatal,
       d.sessions_killed,
       d.stats_reset,
       pg_postmaster_start_time() AS server_start,
       now() AS ts
FROM pg_stat_database d
WHERE d.datid <> 0
  AND d.datname NOT IN ('template0', 'template1')
ORDER BY d.datname
