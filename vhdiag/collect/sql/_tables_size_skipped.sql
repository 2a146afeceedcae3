-- The end of the `rels` CTE of the table queries (space_tables*.sql), written once here: which
-- relations are user tables, and whether sizing one would wait (size_skipped). The query writes
-- `rels AS (`, `SELECT` and the pg_class columns it wants, ending in a comma, then this include.
--
-- Sizing a table opens the table, each of its indexes, its TOAST table and the TOAST table's
-- index (pg_indexes_size, pg_total_relation_size), so the table is skipped when any of them is
-- in `locked` (_locked_relations.sql). User tables: tables, partitioned tables and materialized
-- views outside the catalogs and the TOAST schemas.
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
