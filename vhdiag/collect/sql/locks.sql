-- Who holds which lock and who waits for it (PostgreSQL 13 to 18: same columns): one row per
-- session in a blocking chain, vhdiag's own left out. A waiter shows the lock it waits for
-- (granted false); a blocker the granted lock it holds on what its waiters want (the strongest,
-- when it holds several there), else its strongest lock. blocked_by is pg_blocking_pids().
-- Relation names resolve in this database only (other databases' oids are shown as such).
-- Bounded: at most 1000 sessions.
WITH /* vhdiag */ a AS MATERIALIZED (
    SELECT a.pid, a.usename, a.application_name, a.datname, a.state, a.query, a.xact_start,
           a.state_change, a.query_start, a.backend_start, a.wait_event_type,
           CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END AS blockers
    FROM pg_stat_activity a
    WHERE a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
), involved AS (
    SELECT a.* FROM a
    WHERE cardinality(a.blockers) > 0 OR EXISTS (SELECT 1 FROM a AS w WHERE a.pid = ANY (w.blockers))
    LIMIT 1000
), l AS MATERIALIZED (
    SELECT l.* FROM pg_locks l WHERE l.pid IN (SELECT pid FROM involved)
), modes(mode, strength) AS (
    VALUES ('AccessShareLock', 1), ('RowShareLock', 2), ('RowExclusiveLock', 3),
           ('ShareUpdateExclusiveLock', 4), ('ShareLock', 5), ('ShareRowExclusiveLock', 6),
           ('ExclusiveLock', 7), ('AccessExclusiveLock', 8)
), chosen AS (
    SELECT i.pid, k.locktype, k.mode, k.relation, k.database, k.transactionid, k.granted
    FROM involved i
    LEFT JOIN LATERAL (
        SELECT x.* FROM (
            (SELECT 0 AS pref, w.locktype, w.mode, w.relation, w.database, w.transactionid, w.granted
             FROM l AS w WHERE w.pid = i.pid AND NOT w.granted LIMIT 1)
            UNION ALL
            (SELECT 1, h.locktype, h.mode, h.relation, h.database, h.transactionid, h.granted
             FROM l AS h
             JOIN l AS w ON NOT w.granted AND w.pid IN (SELECT x.pid FROM involved x WHERE i.pid = ANY (x.blockers))
                        AND w.locktype = h.locktype
                        AND w.database IS NOT DISTINCT FROM h.database
                        AND w.relation IS NOT DISTINCT FROM h.relation
                        AND w.page IS NOT DISTINCT FROM h.page
                        AND w.tuple IS NOT DISTINCT FROM h.tuple
                        AND w.transactionid IS NOT DISTINCT FROM h.transactionid
                        AND w.virtualxid IS NOT DISTINCT FROM h.virtualxid
                        AND w.classid IS NOT DISTINCT FROM h.classid
                        AND w.objid IS NOT DISTINCT FROM h.objid
                        AND w.objsubid IS NOT DISTINCT FROM h.objsubid
             LEFT JOIN modes m ON m.mode = h.mode
             WHERE h.pid = i.pid AND h.granted
             ORDER BY m.strength DESC NULLS LAST LIMIT 1)
            UNION ALL
            (SELECT 2, h.locktype, h.mode, h.relation, h.database, h.transactionid, h.granted
             FROM l AS h LEFT JOIN modes m ON m.mode = h.mode
             WHERE h.pid = i.pid AND h.granted AND h.locktype = 'relation'
             ORDER BY m.strength DESC NULLS LAST LIMIT 1)
        ) AS x ORDER BY x.pref LIMIT 1
    ) AS k ON true
)
SELECT i.pid,
       i.usename AS "user",
       i.application_name AS application,
       i.datname AS database,
       i.state,
       c.locktype AS locktype,
       c.mode AS mode,
       CASE WHEN c.relation IS NULL THEN NULL
            WHEN r.oid IS NOT NULL THEN quote_ident(n.nspname) || '.' || quote_ident(r.relname)
            ELSE 'oid ' || c.relation END AS relation,
       c.transactionid::text AS transactionid,
       coalesce(c.granted, true) AS granted,
       array_to_string(i.blockers, ',') AS blocked_by,
       extract(epoch FROM statement_timestamp()
               - coalesce(CASE WHEN i.wait_event_type = 'Lock' THEN i.state_change END,
                          i.xact_start, i.state_change))::float8 AS age_s,
       i.xact_start,
       i.query,
       statement_timestamp() AS ts
FROM involved i
JOIN chosen c ON c.pid = i.pid
LEFT JOIN pg_class r ON r.oid = c.relation
      AND c.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LEFT JOIN pg_namespace n ON n.oid = r.relnamespace
