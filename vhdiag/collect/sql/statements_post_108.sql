-- pg_stat_statements 1.8 (PostgreSQL 13): planning is tracked (pg_stat_statements.track_planning),
-- so total_time etc. split into total_plan_time/total_exec_time and friends, with the new plans
-- counter; WAL usage arrives (wal_records, wal_fpi, wal_bytes, numeric). No toplevel yet.
-- {pgss} is the extension's schema, quoted by the driver.
WITH /* vhdiag */ me AS (
    SELECT r.oid AS userid, pg_has_role(r.oid, 'pg_read_all_stats', 'USAGE') AS reads_all
    FROM pg_roles AS r
    WHERE r.rolname = current_user
)
SELECT s.queryid,
       s.userid::bigint AS userid,
       s.dbid::bigint AS dbid,
       r.rolname AS "user",
       d.datname AS database,
       s.query,
       NOT (coalesce(me.reads_all, false) OR s.userid = me.userid) AS query_hidden,
       s.plans,
       s.total_plan_time AS total_plan_ms,
       s.mean_plan_time AS mean_plan_ms,
       s.min_plan_time AS min_plan_ms,
       s.max_plan_time AS max_plan_ms,
       s.stddev_plan_time AS stddev_plan_ms,
       s.calls,
       s.total_exec_time AS total_exec_ms,         -- total_time before 1.8
       s.mean_exec_time AS mean_exec_ms,           -- mean_time before 1.8
       s.min_exec_time AS min_exec_ms,             -- min_time before 1.8
       s.max_exec_time AS max_exec_ms,             -- max_time before 1.8
       s.stddev_exec_time AS stddev_exec_ms,       -- stddev_time before 1.8
       s.rows,
       s.shared_blks_hit,
       s.shared_blks_read,
       s.shared_blks_dirtied,
       s.shared_blks_written,
       s.local_blks_hit,
       s.local_blks_read,
       s.local_blks_dirtied,
       s.local_blks_written,
       s.temp_blks_read,
       s.temp_blks_written,
       s.blk_read_time AS shared_blk_read_ms,      -- shared_blk_read_time from 1.11
       s.blk_write_time AS shared_blk_write_ms,    -- shared_blk_write_time from 1.11
       s.wal_records,
       s.wal_fpi,
       s.wal_bytes::bigint AS wal_bytes            -- numeric in the view
FROM {pgss}.pg_stat_statements AS s
LEFT JOIN me ON true
LEFT JOIN pg_roles AS r ON r.oid = s.userid
LEFT JOIN pg_database AS d ON d.oid = s.dbid
ORDER BY total_exec_ms DESC NULLS LAST
