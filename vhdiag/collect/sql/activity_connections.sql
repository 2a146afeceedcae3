-- Client connections grouped by database, user, application and state (PostgreSQL 13+),
-- with the server's limits and totals repeated on every row. vhdiag's own connection is
-- counted: it holds a slot like any other. Sessions of other roles hidden from a role
-- without pg_read_all_stats are counted with a NULL state. reserved_connections exists
-- from PostgreSQL 16 (missing_ok gives NULL before).
WITH /* vhdiag */ c AS MATERIALIZED (
    SELECT a.datname, a.usename, a.application_name, a.state, a.wait_event_type
    FROM pg_stat_activity a
    WHERE a.backend_type = 'client backend'
       OR (a.backend_type IS NULL AND a.datid IS NOT NULL)
), limits AS (
    SELECT current_setting('max_connections')::int AS max_connections,
           current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
           current_setting('reserved_connections', true)::int AS reserved_connections,
           (SELECT count(*) FROM c) AS total_connections
)
SELECT c.datname AS database,
       c.usename AS "user",
       c.application_name AS application,
       c.state,
       count(*) AS connections,
       count(*) FILTER (WHERE c.wait_event_type = 'Lock') AS waiting,
       l.total_connections,
       l.max_connections,
       l.superuser_reserved_connections,
       l.reserved_connections,
       l.max_connections - l.superuser_reserved_connections - coalesce(l.reserved_connections, 0)
           - l.total_connections AS free_connections,
       100.0 * l.total_connections / l.max_connections AS used_pct,
       statement_timestamp() AS ts
FROM c CROSS JOIN limits l
GROUP BY c.datname, c.usename, c.application_name, c.state,
         l.total_connections, l.max_connections, l.superuser_reserved_connections, l.reserved_connections
ORDER BY count(*) DESC, c.datname, c.usename, c.application_name, c.state
