-- pg_stat_statements 1.11 (PostgreSQL 17): blk_read_time/blk_write_time renamed to
-- shared_blk_read_time/shared_blk_write_time, with new local_blk_read_time/local_blk_write_time
-- beside them; adds jit_deform_count/jit_deform_time, and stats_since/minmax_stats_since (when
-- the entry, and its min/max values, started counting: a reset can now clear
-- min/max only).
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
       s.toplevel,
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
       s.shared_blk_read_time AS shared_blk_read_ms,    -- blk_read_time before 1.11
       s.shared_blk_write_time AS shared_blk_write_ms,  -- blk_write_time before 1.11
       s.local_blk_read_time AS local_blk_read_ms,
       s.local_blk_write_time AS local_blk_write_ms,
       s.temp_blk_read_time AS temp_blk_read_ms,
       s.temp_blk_write_time AS temp_blk_write_ms,
       s.wal_records,
       s.wal_fpi,
       s.wal_bytes::bigint AS wal_bytes,           -- numeric in the view
       s.jit_functions,
       s.jit_generation_time AS jit_generation_ms,
       s.jit_inlining_count,
       s.jit_inlining_time AS jit_inlining_ms,
       s.jit_optimization_count,
       s.jit_optimization_time AS jit_optimization_ms,
       s.jit_emission_count,
       s.jit_emission_time AS jit_emission_ms,
       s.jit_deform_count,
       s.jit_deform_time AS jit_deform_ms,
       s.stats_since,
       s.minmax_stats_since
FROM {pgss}.pg_stat_statements AS s
LEFT JOIN me ON true
LEFT JOIN pg_roles AS r ON r.oid = s.userid
LEFT JOIN pg_database AS d ON d.oid = s.dbid
ORDER BY total_exec_ms DESC NULLS LAST
