-- Every user table, partitioned table and materialized view: sizes, tuple counts, scans.
-- PostgreSQL 13 to 15; space_tables_post_160000.sql adds last_seq_scan and n_tup_newpage_upd.
--
-- A table that another session holds or waits for in ACCESS EXCLUSIVE mode (the table, an index,
-- its TOAST table or the TOAST index) gets null sizes and size_skipped = true instead of waiting
-- for lock_timeout: _locked_relations.sql and _tables_size_skipped.sql, shared with the other
-- sizing queries, say why. CASE evaluates the size functions only for the relations not skipped.
WITH /* vhdiag */ locked AS (
-- include: _locked_relations.sql
),
rels AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples, c.reltoastrelid,
-- include: _tables_size_skipped.sql
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
