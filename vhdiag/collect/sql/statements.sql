-- pg_stat_statements 1.3 to 1.7 (PostgreSQL 9.5 to 12; a newer server keeps this version after
-- pg_upgrade until ALTER EXTENSION pg_stat_statements UPDATE). One set of timings, total_time
-- and friends, which measure execution only: planning was not tracked before 1.8. Block I/O
-- time is blk_read_time/blk_write_time. No plan, WAL, JIT or toplevel columns (null here).
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
       -- pg_stat_statements shows '<insufficient privilege>' and a NULL queryid for statements
       -- of other roles unless the viewer has the privileges of pg_read_all_stats.
       NOT (coalesce(me.reads_all, false) OR s.userid = me.userid) AS query_hidden,
       s.calls,
       s.total_time AS total_exec_ms,              -- total_exec_time from 1.8
       s.mean_time AS mean_exec_ms,                -- mean_exec_time from 1.8
       s.min_time AS min_exec_ms,                  -- min_exec_time from 1.8
       s.max_time AS max_exec_ms,                  -- max_exec_time from 1.8
       s.stddev_time AS stddev_exec_ms,            -- stddev_exec_time from 1.8
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
       s.blk_write_time AS shared_blk_write_ms     -- shared_blk_write_time from 1.11
FROM {pgss}.pg_stat_statements AS s
LEFT JOIN me ON true
LEFT JOIN pg_roles AS r ON r.oid = s.userid
LEFT JOIN pg_database AS d ON d.oid = s.dbid
ORDER BY total_exec_ms DESC NULLS LAST
