-- Every user index: size, scans, and the unused / duplicate / invalid findings.
-- PostgreSQL 15 added UNIQUE NULLS NOT DISTINCT (pg_index.indnullsnotdistinct): two unique
-- indexes that differ only there are not duplicates. indexes_post_160000.sql adds last_idx_scan.
--
-- pg_relation_size and pg_get_indexdef take an AccessShareLock (pg_get_indexdef on the table),
-- so they would queue behind an ACCESS EXCLUSIVE lock on the index or its table (the `locked`
-- relations, _locked_relations.sql). Such an index gets null bytes, columns and definition and
-- size_skipped = true; everything else comes from the catalogs, which take no such lock.
WITH /* vhdiag */ locked AS (
-- include: _locked_relations.sql
),
idx AS (
    SELECT i.indexrelid, i.indrelid, i.indnkeyatts,
           n.nspname, t.relname AS table_name, c.relname AS index_name, am.amname,
           i.indisprimary, i.indisunique, i.indisvalid, con.conname,
           EXISTS (SELECT 1 FROM locked AS l WHERE l.oid IN (i.indexrelid, i.indrelid)) AS size_skipped,
           -- Same access method, key and INCLUDE columns, expressions, predicate, operator
           -- classes, collations and DESC/NULLS FIRST options: the same index. Up to PostgreSQL 16
           -- stored expression trees record where each node stood in the CREATE INDEX text (their
           -- "location" fields; 17 writes -1), so that is blanked before comparing ('.' = colon).
           concat_ws(' | ', c.relam, i.indkey, i.indclass, i.indcollation, i.indoption,
                     coalesce(regexp_replace(i.indexprs::text, ' .location -?[0-9]+', '', 'g'), ''),
                     coalesce(regexp_replace(i.indpred::text, ' .location -?[0-9]+', '', 'g'), ''),
                     i.indnullsnotdistinct
           ) AS same_as
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_class AS t ON t.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = t.relnamespace
    JOIN pg_am AS am ON am.oid = c.relam
    LEFT JOIN pg_constraint AS con
           ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
),
-- Among valid indexes that are the same, keep the primary key, then one backing a constraint,
-- then a unique one, then the first by name (then oid); the others are duplicates of it.
ranked AS (
    SELECT x.indexrelid,
           CASE WHEN row_number() OVER w > 1 THEN first_value(x.index_name) OVER w END AS duplicate_of
    FROM idx AS x
    WHERE x.indisvalid
    WINDOW w AS (PARTITION BY x.indrelid, x.same_as
                 ORDER BY x.indisprimary DESC, x.conname IS NOT NULL DESC, x.indisunique DESC,
                          x.index_name, x.indexrelid)
)
SELECT x.nspname AS schema,
       x.table_name AS "table",
       x.index_name AS "index",
       x.amname AS method,
       CASE WHEN NOT x.size_skipped THEN pg_total_relation_size(x.indexrelid) END AS bytes,
       x.size_skipped,
       s.idx_scan AS scans,
       s.idx_tup_read AS tup_read,
       s.idx_tup_fetch AS tup_fetch,
       x.indisvalid AS valid,
       x.indisprimary AS "primary",
       x.indisunique AS "unique",
       x.conname AS "constraint",
       coalesce(s.idx_scan = 0 AND x.indisvalid AND NOT x.indisunique AND NOT x.indisprimary
                AND x.conname IS NULL, false) AS unused,
       r.duplicate_of,
       CASE WHEN NOT x.size_skipped THEN
           array_to_string(ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                                 FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k), ', ')
       END AS columns,
       CASE WHEN NOT x.size_skipped THEN pg_get_indexdef(x.indexrelid) END AS definition
FROM idx AS x
LEFT JOIN ranked AS r ON r.indexrelid = x.indexrelid
LEFT JOIN pg_stat_user_indexes AS s ON s.indexrelid = x.indexrelid
ORDER BY x.nspname, x.table_name, x.index_name
