-- What a snapshot stores of every user table (history table_stats): sizes, row counts, scans.
-- Sizes are taken only where :all_sizes is true (the day's full sizing) or for the tables in
-- :oids (their signature, space_signatures.sql, moved since the last snapshot); the others get
-- null sizes and sized = false, and the store carries their last sizes forward.
--
-- As in space_tables.sql, a table whose heap, indexes or TOAST relations another session holds
-- (or waits for) in ACCESS EXCLUSIVE mode gets null sizes and size_skipped = true, never a lock
-- wait (_locked_relations.sql, _tables_size_skipped.sql); CASE evaluates the size functions only
-- for the relations it sizes.
WITH /* vhdiag */ locked AS (
-- include: _locked_relations.sql
),
rels AS (
    SELECT c.oid, n.nspname, c.relname, c.reltoastrelid,
-- include: _tables_size_skipped.sql
),
picked AS (
    SELECT r.*, NOT r.size_skipped AND (:all_sizes OR r.oid = ANY (CAST(:oids AS oid[]))) AS sized
    FROM rels AS r
),
sized AS (
    SELECT p.*,
           CASE WHEN p.sized THEN
               pg_relation_size(p.oid, 'main') + pg_relation_size(p.oid, 'fsm')
               + pg_relation_size(p.oid, 'vm') + pg_relation_size(p.oid, 'init')
           END AS table_bytes,
           CASE WHEN p.sized THEN pg_indexes_size(p.oid) END AS index_bytes,
           CASE WHEN p.sized THEN
               CASE WHEN p.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(p.reltoastrelid) END
           END AS toast_bytes
    FROM picked AS p
)
SELECT z.nspname AS schema,
       z.relname AS "table",
       z.table_bytes + z.index_bytes + z.toast_bytes AS total_bytes,
       z.table_bytes,
       z.index_bytes,
       z.toast_bytes,
       z.size_skipped,
       z.sized,
       s.n_live_tup,
       s.n_dead_tup,
       s.seq_scan,
       s.seq_tup_read,
       s.idx_scan,
       s.n_tup_ins,
       s.n_tup_upd,
       s.n_tup_del
FROM sized AS z
LEFT JOIN pg_stat_user_tables AS s ON s.relid = z.oid
