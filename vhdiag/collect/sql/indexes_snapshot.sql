-- What a snapshot stores of every user index (history index_stats): its table, bytes and scans.
-- The full indexes.sql also builds each index's definition and key columns (pg_get_indexdef,
-- three calls per index) and ranks duplicates, which the store keeps none of: at 20,000
-- indexes that was over half a second of the server's time per snapshot.
--
-- Sizes are taken only where :all_sizes is true (the day's full sizing) or for the indexes of
-- the tables in :oids (whose signature moved, space_signatures.sql): the others get null bytes
-- and sized = false, and the store carries their last size forward.
--
-- Sizes skip an index whose table or itself another session holds (or waits for) in ACCESS
-- EXCLUSIVE mode, as in indexes.sql (_locked_relations.sql): null bytes and size_skipped = true,
-- never a lock wait.
WITH /* vhdiag */ locked AS (
-- include: _locked_relations.sql
),
idx AS (
    SELECT i.indexrelid, i.indrelid, n.nspname, t.relname AS table_name, c.relname AS index_name,
           EXISTS (SELECT 1 FROM locked AS l WHERE l.oid IN (i.indexrelid, i.indrelid)) AS size_skipped
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_class AS t ON t.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = t.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
)
SELECT x.nspname AS schema,
       x.table_name AS "table",
       x.index_name AS "index",
       CASE WHEN x.sized THEN pg_total_relation_size(x.indexrelid) END AS bytes,
       x.size_skipped,
       x.sized,
       s.idx_scan AS scans
FROM (SELECT idx.*, NOT idx.size_skipped AND (:all_sizes OR idx.indrelid = ANY (CAST(:oids AS oid[]))) AS sized
      FROM idx) AS x
LEFT JOIN pg_stat_user_indexes AS s ON s.indexrelid = x.indexrelid
