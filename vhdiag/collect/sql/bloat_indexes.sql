-- Estimated btree-index bloat from the statistics, read-only and built-ins only: the query of
-- ioguix/pgsql-bloat-estimation (btree/btree_bloat.sql, BSD licence), trimmed to user indexes.
-- It sizes each index from pg_class.reltuples and pg_stats (null_frac, avg_width of each key
-- column: of the table, or of the index for an expression) at its fillfactor (btree default
-- 90), and compares with pg_class.relpages. Both come from the last VACUUM or ANALYZE, so the
-- estimate is as fresh as they are. is_na: a key of type "name" (64 bytes, pg_stats
-- understates it), or a key column without statistics: the estimate is not reliable.
SELECT /* vhdiag */ nspname AS schema, tblname AS "table", idxname AS "index",
       bs * relpages::bigint AS real_bytes,
       bs * est_pages_ff::bigint AS expected_bytes,
       CASE WHEN relpages > est_pages_ff THEN bs * (relpages - est_pages_ff)::bigint ELSE 0 END AS bloat_bytes,
       CASE WHEN relpages > est_pages_ff THEN 100 * (relpages - est_pages_ff)::float8 / relpages ELSE 0 END
           AS bloat_pct,
       fillfactor,
       reltuples,
       is_na
FROM (
    SELECT coalesce(1 + ceil(reltuples / floor((bs - pageopqdata - pagehdr) * fillfactor
                                                / (100 * (4 + nulldatahdrwidth)::float8))), 0) AS est_pages_ff,
           bs, nspname, tblname, idxname, relpages, fillfactor, reltuples, is_na
    FROM (
        SELECT maxalign, bs, nspname, tblname, idxname, reltuples, relpages, fillfactor,
               (index_tuple_hdr_bm
                + maxalign - CASE WHEN index_tuple_hdr_bm % maxalign = 0 THEN maxalign
                                  ELSE index_tuple_hdr_bm % maxalign END
                + nulldatawidth
                + maxalign - CASE WHEN nulldatawidth = 0 THEN 0
                                  WHEN nulldatawidth::integer % maxalign = 0 THEN maxalign
                                  ELSE nulldatawidth::integer % maxalign END
               )::numeric AS nulldatahdrwidth,
               pagehdr, pageopqdata, is_na
        FROM (
            SELECT n.nspname, i.tblname, i.idxname, i.reltuples, i.relpages, i.fillfactor,
                   current_setting('block_size')::numeric AS bs,
                   CASE WHEN version() ~ 'mingw32' OR version() ~ '64-bit|x86_64|ppc64|ia64|amd64|aarch64'
                        THEN 8 ELSE 4 END AS maxalign,
                   24 AS pagehdr,
                   16 AS pageopqdata,
                   CASE WHEN max(coalesce(s.null_frac, 0)) = 0 THEN 8 ELSE 8 + ((32 + 8 - 1) / 8) END
                       AS index_tuple_hdr_bm,
                   sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) AS nulldatawidth,
                   max(CASE WHEN i.atttypid = 'pg_catalog.name'::regtype THEN 1 ELSE 0 END) > 0
                       OR count(s.attname) < count(*) AS is_na
            FROM (
                SELECT ct.relname AS tblname, ct.relnamespace, ic.idxname, ic.reltuples, ic.relpages,
                       ic.fillfactor, coalesce(a1.attname, a2.attname) AS attname,
                       coalesce(a1.atttypid, a2.atttypid) AS atttypid,
                       CASE WHEN a1.attnum IS NULL THEN ic.idxname ELSE ct.relname END AS attrelname
                FROM (
                    SELECT ci.relname AS idxname, greatest(ci.reltuples, 0) AS reltuples, ci.relpages,
                           i.indrelid AS tbloid, i.indexrelid AS idxoid,
                           coalesce(substring(array_to_string(ci.reloptions, ' ')
                                              FROM 'fillfactor=([0-9]+)')::smallint, 90) AS fillfactor,
                           string_to_array(textin(int2vectorout(i.indkey)), ' ')::int[] AS indkey,
                           generate_series(1, i.indnatts) AS attpos
                    FROM pg_catalog.pg_index i
                    JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid
                    JOIN pg_catalog.pg_namespace ni ON ni.oid = ci.relnamespace
                    WHERE ci.relam = (SELECT oid FROM pg_catalog.pg_am WHERE amname = 'btree')
                      AND ci.relpages > 0
                      AND ni.nspname NOT IN ('pg_catalog', 'information_schema')
                      AND ni.nspname !~ '^pg_toast'
                ) AS ic
                JOIN pg_catalog.pg_class ct ON ct.oid = ic.tbloid
                LEFT JOIN pg_catalog.pg_attribute a1
                       ON ic.indkey[ic.attpos] <> 0 AND a1.attrelid = ic.tbloid AND a1.attnum = ic.indkey[ic.attpos]
                LEFT JOIN pg_catalog.pg_attribute a2
                       ON ic.indkey[ic.attpos] = 0 AND a2.attrelid = ic.idxoid AND a2.attnum = ic.attpos
            ) i
            JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
            LEFT JOIN pg_catalog.pg_stats s
                   ON s.schemaname = n.nspname AND s.tablename = i.attrelname AND s.attname = i.attname
            GROUP BY 1, 2, 3, 4, 5, 6
        ) AS rows_data_stats
    ) AS rows_hdr_pdg_stats
) AS relation_stats
ORDER BY bloat_bytes DESC, nspname, tblname, idxname
