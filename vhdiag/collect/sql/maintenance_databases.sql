-- Transaction ID and multixact ID age per database, every database including the templates
-- (template0's age grows too), PostgreSQL 13+. Wraparound is at 2^31 - 1 = 2147483647;
-- autovacuum forces an anti-wraparound vacuum past autovacuum_freeze_max_age.
SELECT /* vhdiag */ d.datname AS database,
       age(d.datfrozenxid) AS xid_age,
       mxid_age(d.datminmxid) AS mxid_age,
       current_setting('autovacuum_freeze_max_age')::bigint AS autovacuum_freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::bigint AS autovacuum_multixact_freeze_max_age,
       100.0 * age(d.datfrozenxid) / 2147483647 AS wraparound_pct,
       100.0 * age(d.datfrozenxid) / current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age_pct,
       100.0 * mxid_age(d.datminmxid) / 2147483647 AS mxid_wraparound_pct,
       2147483647 - age(d.datfrozenxid) AS xids_left,
       d.datallowconn AS allow_connections,
       statement_timestamp() AS ts
FROM pg_database d
ORDER BY age(d.datfrozenxid) DESC, d.datname
