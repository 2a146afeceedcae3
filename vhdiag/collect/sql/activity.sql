-- One row per client backend of pg_stat_activity, vhdiag's own excluded (PostgreSQL 13).
-- Durations are seconds up to statement_timestamp(). blocked_by lists the
-- pids holding a lock the session waits for (pg_blocking_pids), computed only for sessions
-- waiting on a Lock and for hidden ones. A role without pg_read_all_stats sees other roles'
-- sessions with query '<insufficient privilege>' and NULL state, times and backend_type:
-- those connected to a database are kept, marked by query_hidden.
WITH /* vhdiag */ a AS MATERIALIZED (
    SELECT a.*,
           CASE WHEN a.wait_event_type = 'Lock' OR a.backend_type IS NULL
                THEN pg_blocking_pids(a.pid) END AS blockers
    FROM pg_stat_activity a
    WHERE a.pid <> pg_backend_pid()
)
SELECT a.pid,
       a.datname AS database,
       a.usename AS "user",
       a.application_name AS application,
       host(a.client_addr) AS client_addr,
       a.client_port,
       a.backend_type,
       a.state,
       a.wait_event_type,
       a.wait_event,
       coalesce(a.wait_event_type = 'Lock', cardinality(a.blockers) > 0) AS waiting,
       nullif(array_to_string(a.blockers, ','), '') AS blocked_by,
       coalesce(cardinality(a.blockers), 0) AS blocked_by_count,
       nullif(array_to_string(ARRAY(SELECT w.pid FROM a AS w WHERE a.pid = ANY (w.blockers) ORDER BY w.pid),
                              ','), '') AS blocking,
       (SELECT count(*) FROM a AS w WHERE a.pid = ANY (w.blockers)) AS blocking_count,
       a.backend_start,
       a.xact_start,
       a.query_start,
       a.state_change,
       extract(epoch FROM statement_timestamp() - a.state_change)::float8 AS state_duration_s,
       extract(epoch FROM statement_timestamp() - a.xact_start)::float8 AS xact_duration_s,
       CASE WHEN a.state = 'active'
            THEN extract(epoch FROM statement_timestamp() - a.query_start)::float8
       END AS query_duration_s,
       age(a.backend_xmin) AS xmin_age,
       NULL::text AS query_id,
       a.query,
       a.query = '<insufficient privilege>' AS query_hidden,
       statement_timestamp() AS ts
FROM a
WHERE a.backend_type = 'client backend'
   OR (a.backend_type IS NULL AND a.datid IS NOT NULL)
   OR CAST(:all_backends AS boolean)
ORDER BY a.xact_start NULLS LAST, a.backend_start NULLS LAST, a.pid
