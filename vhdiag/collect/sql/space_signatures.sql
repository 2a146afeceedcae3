-- What tells a snapshot whether a table's size can have changed since the last one, without
-- sizing it (sizing opens every fork of the table, its indexes and TOAST: most of a snapshot's
-- time on the server at 10,000 tables). One md5 per table over:
-- - pg_class.relfilenode of the table and of each of its indexes: TRUNCATE, VACUUM FULL, CLUSTER,
--   REINDEX, a rewriting ALTER TABLE and REFRESH MATERIALIZED VIEW give new files (and move no
--   row counter when the table held no live rows); CREATE/DROP INDEX changes the list;
-- - the statistics counters of rows inserted, updated, deleted, live and dead;
-- - the (auto)vacuum counts of the table and of its TOAST table: a VACUUM may truncate the heap
--   and creates the free space and visibility maps.
-- Only catalogs and the cumulative statistics (shared memory) are read: no lock on any table.
SELECT /* vhdiag */ c.oid::bigint AS oid,
       n.nspname AS schema,
       c.relname AS "table",
       md5(concat_ws(' ', c.relfilenode,
                     (SELECT string_agg(ic.relfilenode::text, ',' ORDER BY ic.oid)
                      FROM pg_index AS i JOIN pg_class AS ic ON ic.oid = i.indexrelid
                      WHERE i.indrelid = c.oid),
                     pg_stat_get_tuples_inserted(c.oid), pg_stat_get_tuples_updated(c.oid),
                     pg_stat_get_tuples_deleted(c.oid), pg_stat_get_live_tuples(c.oid),
                     pg_stat_get_dead_tuples(c.oid),
                     pg_stat_get_vacuum_count(c.oid), pg_stat_get_autovacuum_count(c.oid),
                     pg_stat_get_vacuum_count(c.reltoastrelid), pg_stat_get_autovacuum_count(c.reltoastrelid)))
       AS sig
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
