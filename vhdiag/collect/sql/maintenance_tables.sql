-- Vacuum and analyze state of every user table, with autovacuum's own decision rule
-- (src/backend/postmaster/autovacuum.c, relation_needs_vacanalyze), PostgreSQL 13+:
--   vacuum  when n_dead_tup > threshold + scale_factor * reltuples,
--           or n_ins_since_vacuum > insert_threshold + insert_scale_factor * reltuples (13+,
--           insert_threshold -1 disables it), or age(relfrozenxid) > freeze_max_age, or
--           mxid_age(relminmxid) > multixact_freeze_max_age;
--   analyze when n_mod_since_analyze > analyze_threshold + analyze_scale_factor * reltuples.
-- Per-table reloptions override the settings; a table may only lower the freeze ages.
-- reltuples -1 (never vacuumed or analyzed, 14+) counts as 0. PostgreSQL 18 caps the
-- dead-tuple threshold at autovacuum_vacuum_max_threshold (missing_ok gives NULL before,
-- and least() ignores NULL). needs_vacuum ignores autovacuum_enabled on purpose: a table with
-- autovacuum off needs a manual VACUUM all the more. suggestion is text, never executed.
WITH /* vhdiag */ g AS (
    SELECT current_setting('autovacuum_vacuum_threshold')::float8 AS vac_base,
           current_setting('autovacuum_vacuum_scale_factor')::float8 AS vac_scale,
           current_setting('autovacuum_vacuum_insert_threshold')::float8 AS ins_base,
           current_setting('autovacuum_vacuum_insert_scale_factor')::float8 AS ins_scale,
           current_setting('autovacuum_analyze_threshold')::float8 AS anl_base,
           current_setting('autovacuum_analyze_scale_factor')::float8 AS anl_scale,
           current_setting('autovacuum_vacuum_max_threshold', true)::float8 AS vac_max,
           current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
           current_setting('autovacuum_multixact_freeze_max_age')::bigint AS mxid_freeze_max_age
), t AS (
    SELECT s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup,
           s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
           s.vacuum_count, s.autovacuum_count, s.analyze_count, s.autoanalyze_count,
           s.n_mod_since_analyze, s.n_ins_since_vacuum,
           CASE WHEN c.relkind <> 'p' THEN age(c.relfrozenxid) END AS xid_age,
           CASE WHEN c.relkind <> 'p' THEN mxid_age(c.relminmxid) END AS mxid_age,
           greatest(c.reltuples, 0)::float8 AS reltuples,
           coalesce(o.enabled::boolean, true) AS autovacuum_enabled,
           least(o.freeze_max_age::bigint, g.freeze_max_age) AS freeze_max_age,
           least(o.mxid_freeze_max_age::bigint, g.mxid_freeze_max_age) AS mxid_freeze_max_age,
           least(coalesce(o.vac_base::float8, g.vac_base)
                 + coalesce(o.vac_scale::float8, g.vac_scale) * greatest(c.reltuples, 0),
                 CASE WHEN coalesce(o.vac_max::float8, g.vac_max) >= 0
                      THEN coalesce(o.vac_max::float8, g.vac_max) END) AS vacuum_threshold,
           CASE WHEN coalesce(o.ins_base::float8, g.ins_base) >= 0
                THEN coalesce(o.ins_base::float8, g.ins_base)
                     + coalesce(o.ins_scale::float8, g.ins_scale) * greatest(c.reltuples, 0)
           END AS insert_vacuum_threshold,
           coalesce(o.anl_base::float8, g.anl_base)
               + coalesce(o.anl_scale::float8, g.anl_scale) * greatest(c.reltuples, 0) AS analyze_threshold,
           c.relkind
    FROM pg_stat_user_tables s
    JOIN pg_class c ON c.oid = s.relid
    CROSS JOIN g
    CROSS JOIN LATERAL (
        SELECT max(option_value) FILTER (WHERE option_name = 'autovacuum_enabled') AS enabled,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_threshold') AS vac_base,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_scale_factor') AS vac_scale,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_max_threshold') AS vac_max,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_insert_threshold') AS ins_base,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_insert_scale_factor') AS ins_scale,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_threshold') AS anl_base,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_scale_factor') AS anl_scale,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_freeze_max_age') AS freeze_max_age,
               max(option_value) FILTER (WHERE option_name = 'autovacuum_multixact_freeze_max_age')
                   AS mxid_freeze_max_age
        FROM pg_options_to_table(c.reloptions)
    ) o
), d AS (
    SELECT t.*,
           coalesce(t.xid_age > t.freeze_max_age OR t.mxid_age > t.mxid_freeze_max_age, false) AS needs_freeze,
           t.relkind <> 'p' AND (t.n_dead_tup > t.vacuum_threshold
                                 OR coalesce(t.n_ins_since_vacuum > t.insert_vacuum_threshold, false))
               AS dead_or_inserted,
           t.relkind <> 'p' AND t.n_mod_since_analyze > t.analyze_threshold AS needs_analyze
    FROM t
)
SELECT d.schemaname AS schema,
       d.relname AS "table",
       d.n_live_tup,
       d.n_dead_tup,
       100.0 * d.n_dead_tup / nullif(d.n_live_tup + d.n_dead_tup, 0) AS dead_tup_pct,
       d.last_vacuum, d.last_autovacuum, d.last_analyze, d.last_autoanalyze,
       d.vacuum_count, d.autovacuum_count, d.analyze_count, d.autoanalyze_count,
       d.n_mod_since_analyze,
       d.n_ins_since_vacuum,
       d.xid_age,
       d.mxid_age,
       d.autovacuum_enabled,
       d.freeze_max_age,
       d.mxid_freeze_max_age,
       d.reltuples,
       d.vacuum_threshold,
       d.insert_vacuum_threshold,
       d.analyze_threshold,
       d.dead_or_inserted OR d.needs_freeze AS needs_vacuum,
       d.needs_freeze,
       d.needs_analyze,
       CASE WHEN d.needs_freeze AND d.needs_analyze THEN format('VACUUM (FREEZE, ANALYZE) %I.%I;', d.schemaname, d.relname)
            WHEN d.needs_freeze THEN format('VACUUM (FREEZE) %I.%I;', d.schemaname, d.relname)
            WHEN d.dead_or_inserted AND d.needs_analyze THEN format('VACUUM (ANALYZE) %I.%I;', d.schemaname, d.relname)
            WHEN d.dead_or_inserted THEN format('VACUUM %I.%I;', d.schemaname, d.relname)
            WHEN d.needs_analyze THEN format('ANALYZE %I.%I;', d.schemaname, d.relname)
       END AS suggestion
FROM d
ORDER BY d.dead_or_inserted OR d.needs_freeze DESC, d.n_dead_tup DESC, d.schemaname, d.relname
