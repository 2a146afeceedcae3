-- Sequences with the share of their range used, PostgreSQL 13+ (pg_sequence since 10).
-- Built on pg_sequence rather than the pg_sequences view, which reads every sequence's last
-- value with pg_sequence_last_value(): that takes an AccessShareLock, so it would queue behind
-- an ACCESS EXCLUSIVE lock held or awaited by another session (DROP, ALTER ... RENAME in an
-- open transaction) and fail on lock_timeout. Such a sequence gets locked = true and a NULL
-- last_value. last_value is also NULL when the sequence was never called and when the role
-- lacks SELECT and USAGE on it: `readable` tells those apart. used_pct counts from min_value
-- up (from max_value down for a descending sequence), in numeric so a bigint range cannot
-- overflow.
WITH /* vhdiag */ locked AS (
    SELECT DISTINCT l.relation
    FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
), s AS (
    SELECT n.nspname, c.relname, format_type(q.seqtypid, NULL) AS data_type,
           q.seqstart, q.seqmin, q.seqmax, q.seqincrement, q.seqcycle,
           has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
           c.oid IN (SELECT relation FROM locked) AS locked,
           c.oid
    FROM pg_sequence q
    JOIN pg_class c ON c.oid = q.seqrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT pg_is_other_temp_schema(n.oid)
), v AS (
    SELECT s.*,
           CASE WHEN s.readable AND NOT s.locked THEN pg_sequence_last_value(s.oid) END AS last_value
    FROM s
)
SELECT v.nspname AS schema,
       v.relname AS sequence,
       v.data_type,
       v.seqstart AS start_value,
       v.seqmin AS min_value,
       v.seqmax AS max_value,
       v.seqincrement AS increment_by,
       v.last_value,
       (CASE WHEN v.seqincrement > 0
             THEN 100.0 * (v.last_value::numeric - v.seqmin) / nullif(v.seqmax::numeric - v.seqmin, 0)
             ELSE 100.0 * (v.seqmax::numeric - v.last_value) / nullif(v.seqmax::numeric - v.seqmin, 0)
        END)::float8 AS used_pct,
       v.seqcycle AS cycle,
       v.readable,
       v.locked,
       statement_timestamp() AS ts
FROM v
ORDER BY used_pct DESC NULLS LAST, v.nspname, v.relname
