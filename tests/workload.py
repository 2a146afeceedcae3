"""The planted workload every integration test reads: known objects with certain numbers.

Built once per server (session scope) in database ``planted``. Everything that a test may
assert on is a constant here, so tests compare against numbers, not against "not empty".
"""
from __future__ import annotations

import time

import psycopg

DB = "planted"
NOPGSS_DB = "nopgss"            # a database where pg_stat_statements is not created
LOWPRIV_USER = "vh_lowpriv"     # can log in, not superuser, no pg_read_all_stats
LOWPRIV_PASSWORD = "lowpriv-Secret-41"
APP_USER = "vh_app"             # runs the planted workload, so its statements belong to another role

ORDERS_ROWS = 100_000
SEQ_QUERY = "SELECT count(*) FROM orders WHERE customer_id = $1"  # as pg_stat_statements normalizes it
SEQ_QUERY_CALLS = 25            # each one a full sequential scan of orders (no index on customer_id)
CHEAP_QUERY_CALLS = 500         # SELECT amount FROM orders WHERE id = $1, by primary key
SLEEP_QUERY_CALLS = 3           # SELECT pg_sleep($1) with 0.05 s: mean exec >= 50 ms
EVENTS_ROWS = 10_000
EVENTS_DELETED = 4_000          # machine_events has autovacuum off: exactly this many dead tuples
UNUSED_INDEX = "orders_note_idx"                 # never scanned, not unique
DUPLICATE_INDEX = "orders_created_at_idx2"       # same key as orders_created_at_idx
DUPLICATED_INDEX = "orders_created_at_idx"
INVALID_INDEX = "dupes_v_key"                    # a failed CREATE UNIQUE INDEX CONCURRENTLY
NEAR_END_SEQUENCE = "ticket_no_seq"              # smallint sequence at 32000 of 32767
IDLE_APP = "planted-idle-in-tx"                  # application_name of the idle-in-transaction session

SETUP_SQL = f"""
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL,
    amount numeric(10,2) NOT NULL,
    created_at timestamptz NOT NULL,
    note text
);
INSERT INTO orders (customer_id, amount, created_at, note)
SELECT g % 5000, (g % 997) / 10.0, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute',
       'order ' || g
FROM generate_series(1, {ORDERS_ROWS}) AS g;
ALTER TABLE orders SET (autovacuum_enabled = false);  -- sizes and counters stay put during tests
CREATE INDEX {UNUSED_INDEX} ON orders (note);
CREATE INDEX {DUPLICATED_INDEX} ON orders (created_at);
CREATE INDEX {DUPLICATE_INDEX} ON orders (created_at);

CREATE TABLE machine_events (id int PRIMARY KEY, machine_id int, payload text)
    WITH (autovacuum_enabled = false);
INSERT INTO machine_events SELECT g, g % 100, repeat('x', 50) FROM generate_series(1, {EVENTS_ROWS}) g;
DELETE FROM machine_events WHERE id <= {EVENTS_DELETED};

CREATE TABLE dupes (v int);
INSERT INTO dupes VALUES (1), (1);

CREATE SEQUENCE {NEAR_END_SEQUENCE} AS smallint;
SELECT setval('{NEAR_END_SEQUENCE}', 32000);

GRANT SELECT ON ALL TABLES IN SCHEMA public TO {APP_USER};
ANALYZE orders;
"""


def build(server) -> None:
    """Create roles, databases and the planted workload on a running LocalServer."""
    with server.admin() as conn:
        conn.execute(f"CREATE ROLE {LOWPRIV_USER} LOGIN PASSWORD '{LOWPRIV_PASSWORD}'")
        conn.execute(f"CREATE ROLE {APP_USER} LOGIN")
        conn.execute(f"CREATE DATABASE {DB}")
        conn.execute(f"CREATE DATABASE {NOPGSS_DB}")
    with server.admin(DB) as conn:
        conn.execute(SETUP_SQL)
        # A failed concurrent unique build leaves an INVALID index behind.
        try:
            conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {INVALID_INDEX} ON dupes (v)")
        except psycopg.errors.UniqueViolation:
            pass
        # Start statistics from a known zero, so counts below are exact. This session's own
        # counters (the index builds' scans) reach shared memory only when it next goes idle, at
        # most once a second: force them out before the reset, or they land after it.
        flush_stats(conn)
        conn.execute("SELECT pg_stat_reset()")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("ANALYZE orders, machine_events")
        flush_stats(conn)
    run_workload(server)


def run_workload(server) -> None:
    """The queries, as another role than the superuser; the session closes so stats flush."""
    dsn = server.dsn(DB, user=APP_USER, via="socket")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(SEQ_QUERY_CALLS):
            conn.execute("SELECT count(*) FROM orders WHERE customer_id = %s", (i,))
        for i in range(CHEAP_QUERY_CALLS):
            conn.execute("SELECT amount FROM orders WHERE id = %s", (i + 1,))
        for _ in range(SLEEP_QUERY_CALLS):
            conn.execute("SELECT pg_sleep(%s)", (0.05,))
    # The session's exit flushes its table statistics, a moment after close() returns: wait for
    # them rather than flush from the session, which would add statements to APP_USER's set.
    with server.admin(DB) as admin:
        deadline = time.monotonic() + 30
        while admin.execute("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'orders'"
                            ).fetchone()[0] < SEQ_QUERY_CALLS:
            if time.monotonic() > deadline:
                raise RuntimeError("the planted workload's statistics never arrived")
            time.sleep(0.05)


def flush_stats(conn) -> None:
    """Push this session's pending table statistics to shared memory now (PostgreSQL 15+)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")


def open_idle_in_transaction(server) -> psycopg.Connection:
    """A session left 'idle in transaction'. It takes no table lock: it lives for the whole test
    session, and tests that LOCK planted tables must not queue behind it."""
    conn = psycopg.connect(server.dsn(DB, via="socket"), application_name=IDLE_APP)
    conn.execute("SELECT now()")
    return conn
