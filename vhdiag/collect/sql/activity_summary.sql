-- One row: client connections by state, the limits, and the oldest idle transaction and
-- longest running query (PostgreSQL 13+). Counts include vhdiag's own connection, as
-- activity_connections.sql does; the durations leave it out. `hidden` counts sessions of
-- other roles whose state a role without pg_read_all_stats cannot see; waiting_sessions
-- still counts them when pg_blocking_pids says they wait.
WITH /* vhdiag */ c AS MATERIALIZED (
    SELECT a.pid, a.state, a.wait_event_type, a.xact_start, a.query_start, a.state_change,
           a.pid = pg_backend_pid() AS is_self,
           CASE WHEN a.backend_type IS NULL THEN cardinality(pg_blocking_pids(a.pid)) > 0 END AS hidden_waiting
    FROM pg_stat_activity a
    WHERE a.backend_type = 'client backend'
       OR (a.backend_type IS NULL AND a.datid IS NOT NULL)
)
SELECT count(*) AS total_connections,
       count(*) FILTER (WHERE c.state = 'active') AS active,
       count(*) FILTER (WHERE c.state = 'idle') AS idle,
       count(*) FILTER (WHERE c.state = 'idle in transaction') AS idle_in_transaction,
       count(*) FILTER (WHERE c.state = 'idle in transaction (aborted)') AS idle_in_transaction_aborted,
       count(*) FILTER (WHERE c.state IS NULL) AS hidden,
       count(*) FILTER (WHERE c.wait_event_type = 'Lock' OR c.hidden_waiting) AS waiting_sessions,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
       current_setting('reserved_connections', true)::int AS reserved_connections,
       100.0 * count(*) / current_setting('max_connections')::int AS used_pct,
       max(extract(epoch FROM statement_timestamp() - c.state_change)::float8)
           FILTER (WHERE c.state LIKE 'idle in transaction%') AS oldest_idle_in_transaction_s,
       max(extract(epoch FROM statement_timestamp() - c.query_start)::float8)
           FILTER (WHERE c.state = 'active' AND NOT c.is_self) AS longest_query_s,
       max(extract(epoch FROM statement_timestamp() - c.xact_start)::float8)
           FILTER (WHERE NOT c.is_self) AS longest_transaction_s,
       statement_timestamp() AS ts
FROM c
