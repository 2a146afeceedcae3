-- The relations another session holds, or waits for, in ACCESS EXCLUSIVE mode: the body of the
-- `locked` CTE of every query that sizes relations (space_tables*.sql, indexes*.sql), written
-- once here. The query writes `WITH /* vhdiag */ locked AS (`, this include, then `),`.
--
-- The size functions (pg_relation_size, pg_indexes_size, pg_total_relation_size) and
-- pg_get_indexdef take an AccessShareLock on each relation they open, so they queue behind an
-- ACCESS EXCLUSIVE lock, and behind a request for one that is still waiting (a waiting request
-- blocks the later ones too): pg_locks lists both, so `granted` is not filtered on. A query
-- gives such a relation null sizes and size_skipped = true instead of waiting lock_timeout.
-- pg_locks is read once, when the statement starts; a lock taken after that makes the statement
-- fail with LockNotAvailable, and query_skipping_locks (collect/_base.py) runs it again.
-- Relation oids are per database, so only this database's locks count; this session's own
-- locks never block it.
    SELECT DISTINCT l.relation AS oid
    FROM pg_locks AS l
    WHERE l.locktype = 'relation'
      AND l.mode = 'AccessExclusiveLock'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.pid IS DISTINCT FROM pg_backend_pid()
