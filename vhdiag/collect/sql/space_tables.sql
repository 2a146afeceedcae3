-- Every user table, partitioned table and materialized view: sizes, tuple counts, scans.
-- PostgreSQL 13 to 15; space_tables_post_160000.sql adds last_seq_scan and n_tup_newpage_upd.
--
-- The size functions take an AccessShareLock on every relation they open (the table, each of
-- its indexes, its TOAST table and the TOAST index), so they queue behind an ACCESS EXCLUSIVE
-- lock that another session holds or is waiting for (a waiting request blocks later ones too).
-- Such a table gets null sizes and size_skipped = true instead of waiting for lock_timeout.
-- CASE evaluates the size functions only for the relations that are not skipped.
WITH /* vhdiag */ locked AS (
    SELECT DISTINCT l.relation AS oid
    FROM pg_locks AS l
    WHERE l.locktype = 'relation'
      AND l.mode = 'AccessExclusiveLock'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.pid IS DISTINCT FROM pg_backend_pid()
),
rels AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples, c.reltoastrelid,
           EXISTS (SELECT 1
                   FROM locked AS l
                   LEFT JOIN pg_index AS i ON i.indexrelid = l.oid
                   WHERE l.oid IN (c.oid, c.reltoastrelid)
                      OR i.indrelid IN (c.oid, c.reltoastrelid)) AS size_skipped
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
),
sized AS (
    SELECT r.*,
           CASE WHEN NOT r.size_skipped THEN
               pg_relation_size(r.oid, 'main') + pg_relation_size(r.oid, 'fsm')
               + pg_relation_size(r.oid, 'vm') + pg_relation_size(r.oid, 'init')
           END AS table_bytes,
           CASE WHEN NOT r.size_skipped THEN pg_indexes_size(r.oid) END AS index_bytes,
           CASE WHEN NOT r.size_skipped THEN
               CASE WHEN r.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(r.reltoastrelid) END
           END AS toast_bytes
    FROM rels AS r
)
SELECT z.nspname AS schema,
       z.relname AS "table",
       z.relkind::text AS relkind,
       CASE z.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                      WHEN 'm' THEN 'materialized view' END AS kind,
       z.table_bytes + z.index_bytes + z.toast_bytes AS total_bytes,
       z.table_bytes,
       z.index_bytes,
       z.toast_bytes,
       z.size_skipped,
       -- reltuples is -1 until the first VACUUM or ANALYZE since PostgreSQL 14 (0 before).
       CASE WHEN z.reltuples >= 0 THEN z.reltuples::bigint END AS estimated_rows,
       s.n_live_tup,
       s.n_dead_tup,
       (100.0 * s.n_dead_tup / nullif(s.n_live_tup + s.n_dead_tup, 0))::float8 AS dead_tup_pct,
       s.seq_scan,
       s.seq_tup_read,
       s.idx_scan,
       s.idx_tup_fetch,
       s.n_tup_ins,
       s.n_tup_upd,
       s.n_tup_del,
       s.n_tup_hot_upd
FROM sized AS z
LEFT JOIN pg_stat_user_tables AS s ON s.relid = z.oid
ORDER BY total_bytes DESC NULLS LAST, z.nspname, z.relname
