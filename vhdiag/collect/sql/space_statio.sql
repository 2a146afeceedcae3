-- Per user table: how often its heap and index blocks were found in shared buffers, as a
-- percentage of the blocks it asked for (pg_statio_user_tables; cumulative since the statistics
-- reset). Null where nothing was read yet. The runbook's "cache hit ratio" per table.
SELECT /* vhdiag */ s.schemaname AS schema,
       s.relname AS "table",
       (100.0 * s.heap_blks_hit / nullif(s.heap_blks_hit + s.heap_blks_read, 0))::float8 AS heap_hit_pct,
       (100.0 * s.idx_blks_hit / nullif(s.idx_blks_hit + s.idx_blks_read, 0))::float8 AS index_hit_pct
FROM pg_statio_user_tables AS s
