"""space.tables(): sizes and counters of every user table, never waiting on a lock."""
import threading
import time

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

import vhdiag
import workload
from helpers import exclusive_lock, scratch_database
from vhdiag.collect import _base, space

CASES_DB = "vh_space_cases"
CASES_SQL = '''
CREATE SCHEMA "Mixed ""Case""";
CREATE TABLE "Mixed ""Case"""."Big Table" (id int PRIMARY KEY, body text);
-- 20 values of 200 kB each, stored out of line and uncompressed (EXTERNAL): TOAST holds them
ALTER TABLE "Mixed ""Case"""."Big Table" ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO "Mixed ""Case"""."Big Table"
SELECT g, repeat(md5(g::text), 6400) FROM generate_series(1, 20) AS g;
CREATE TABLE never_analyzed (x int) WITH (autovacuum_enabled = false);
CREATE TABLE measurements (ts date NOT NULL, v int) PARTITION BY RANGE (ts);
CREATE TABLE measurements_2026 PARTITION OF measurements
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO measurements SELECT date '2026-01-01' + g % 365, g FROM generate_series(1, 1000) AS g;
CREATE MATERIALIZED VIEW measurement_totals AS SELECT ts, sum(v) AS v FROM measurements GROUP BY ts;
ANALYZE measurements_2026;
'''


def by_table(df: pd.DataFrame, schema: str = "public") -> dict[str, pd.Series]:
    rows = df[df["schema"] == schema]
    assert rows["table"].is_unique
    return {row["table"]: row for _, row in rows.iterrows()}


def server_sizes(pg, dbname: str = workload.DB) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(schema, table) -> (pg_total_relation_size, pg_table_size, pg_indexes_size), read by hand."""
    with pg.admin(dbname) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid), pg_table_size(c.oid),"
            "       pg_indexes_size(c.oid)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            "   AND n.nspname !~ '^pg_toast'").fetchall()
    return {(s, t): (total, table, index) for s, t, total, table, index in rows}


def flush_stats(conn) -> None:
    """Make this session's counters visible to others now (PostgreSQL 15+).

    A backend publishes its counters when it goes idle, at most once a second, and when it
    exits, which happens after the client has moved on. Forcing the next flush and sending one
    more statement makes the flush happen before that statement runs.
    """
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")


@pytest.fixture(scope="module")
def cases(pg):
    """A database of its own with a mixed-case schema, TOAST, a partitioned table and a matview."""
    with scratch_database(pg, CASES_DB):
        with pg.admin(CASES_DB) as conn:
            conn.execute(CASES_SQL)
            if pg.major >= 15:
                flush_stats(conn)
        yield pg.dsn(CASES_DB)


def test_columns_and_dtypes(target):
    df = target.tables()
    assert list(df.columns) == list(space.COLUMNS) + list(space.EXTRA_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        c: str(pd.Series([], dtype=_base.DTYPES[k]).dtype) for c, k in {**space.COLUMNS, **space.EXTRA_COLUMNS}.items()}


def test_planted_counters(target):
    rows = by_table(target.tables())
    assert {"orders", "machine_events", "dupes"} <= set(rows)
    orders, events = rows["orders"], rows["machine_events"]
    assert (orders["relkind"], orders["kind"]) == ("r", "table")
    assert orders["n_live_tup"] == workload.ORDERS_ROWS
    assert orders["n_dead_tup"] == 0
    assert orders["estimated_rows"] == workload.ORDERS_ROWS  # ANALYZE orders in the setup
    # The planted queries, exactly: the setup flushed its own counters before pg_stat_reset().
    assert orders["seq_scan"] == workload.SEQ_QUERY_CALLS
    assert orders["seq_tup_read"] == workload.SEQ_QUERY_CALLS * workload.ORDERS_ROWS
    assert orders["idx_scan"] == workload.CHEAP_QUERY_CALLS
    # machine_events: autovacuum off, so the deleted rows stay dead.
    assert events["n_live_tup"] == workload.EVENTS_ROWS - workload.EVENTS_DELETED
    assert events["n_dead_tup"] == workload.EVENTS_DELETED
    assert events["dead_tup_pct"] == pytest.approx(100 * workload.EVENTS_DELETED / workload.EVENTS_ROWS)
    assert events["n_tup_del"] == 0  # the delete ran before the reset; live/dead come from ANALYZE
    assert events["estimated_rows"] == workload.EVENTS_ROWS - workload.EVENTS_DELETED  # ANALYZE in the setup
    assert not rows["dupes"]["size_skipped"] and rows["dupes"]["toast_bytes"] == 0  # (v int): no TOAST


def test_sizes_match_the_server(pg, target):
    # Autovacuum may add a visibility map to orders between two reads: compare a stable moment.
    for _ in range(5):
        before = server_sizes(pg)
        df = target.tables()
        if server_sizes(pg) == before:
            break
    else:
        pytest.fail("table sizes kept changing")
    for _, row in df.iterrows():
        total, table, index = before[(row["schema"], row["table"])]
        assert row["total_bytes"] == row["table_bytes"] + row["index_bytes"] + row["toast_bytes"]
        # pg_table_size counts the TOAST table in; tables() keeps it apart
        got = (row["total_bytes"], row["table_bytes"] + row["toast_bytes"], row["index_bytes"])
        assert got == (total, table, index)
    assert not df["size_skipped"].any()
    assert df["total_bytes"].is_monotonic_decreasing
    orders = by_table(df)["orders"]
    assert orders["table_bytes"] > orders["toast_bytes"] > 0


def test_kinds_quoting_and_toast(pg, cases):
    with vhdiag.connect(cases) as t:
        df = t.tables()
    sizes = server_sizes(pg, CASES_DB)
    assert set(zip(df["schema"], df["table"])) == set(sizes)  # nothing from pg_catalog or pg_toast
    big = by_table(df, 'Mixed "Case"')["Big Table"]
    assert big["toast_bytes"] > 20 * 200_000 > big["table_bytes"]
    assert big["total_bytes"] == sizes[('Mixed "Case"', "Big Table")][0]
    rows = by_table(df)
    kinds = [(rows[n]["relkind"], rows[n]["kind"])
             for n in ("measurements", "measurements_2026", "measurement_totals")]
    assert kinds == [("p", "partitioned table"), ("r", "table"), ("m", "materialized view")]
    assert rows["measurements"]["total_bytes"] == 0  # a partitioned table has no storage of its own
    assert rows["measurements_2026"]["n_live_tup"] == 1000
    assert rows["measurements_2026"]["estimated_rows"] == 1000
    assert pd.isna(rows["never_analyzed"]["estimated_rows"])
    assert pd.isna(rows["never_analyzed"]["dead_tup_pct"])  # 0 live, 0 dead
    assert df.iloc[0]["table"] == "Big Table"  # largest first


@pytest.mark.pg(">= 16")
def test_last_seq_scan(target):
    orders = by_table(target.tables())["orders"]
    assert target.capabilities.postmaster_start < orders["last_seq_scan"] <= pd.Timestamp.now(tz="UTC")


@pytest.mark.pg("< 16")
def test_last_seq_scan_absent_before_16(target):
    df = target.tables()
    assert df["last_seq_scan"].isna().all() and df["n_tup_newpage_upd"].isna().all()


@pytest.mark.pg(">= 15")  # pg_stat_force_next_flush()
def test_seq_scan_counts_every_scan(pg, target):
    """Exact: three more full scans of orders show as exactly three more seq_scan."""
    before = by_table(target.tables())["orders"]
    with psycopg.connect(pg.dsn(via="socket"), autocommit=True) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")  # one scan, not one per worker
        for i in range(3):  # amount has no index; a text of its own in pg_stat_statements
            conn.execute("SELECT count(*) FROM orders WHERE amount < %s", (i,))
        flush_stats(conn)
    after = by_table(target.tables())["orders"]
    assert after["seq_scan"] - before["seq_scan"] == 3
    assert after["seq_tup_read"] - before["seq_tup_read"] == 3 * workload.ORDERS_ROWS
    assert after["n_live_tup"] == workload.ORDERS_ROWS


def test_locked_table_is_skipped_not_waited_for(pg, target):
    with exclusive_lock(pg, "orders"):
        start = time.monotonic()
        df = target.tables()
        elapsed_ms = (time.monotonic() - start) * 1000
    # Had it waited, lock_timeout (100 ms) would have failed the statement.
    assert elapsed_ms < min(target.statement_timeout_ms, 2000)
    rows = by_table(df)
    orders = rows["orders"]
    assert orders["size_skipped"]
    assert orders[["total_bytes", "table_bytes", "index_bytes", "toast_bytes"]].isna().all()
    assert orders["n_live_tup"] == workload.ORDERS_ROWS  # the counters are still read
    assert not rows["machine_events"]["size_skipped"] and rows["machine_events"]["total_bytes"] > 0
    assert df.iloc[-1]["table"] == "orders"  # unknown size sorts last


def test_locked_index_skips_its_table(pg, cases):
    # REINDEX INDEX holds ACCESS EXCLUSIVE on the index only (SHARE on the table), and
    # pg_indexes_size would wait for it.
    locker = psycopg.connect(pg.dsn(CASES_DB, via="socket"))
    try:
        locker.execute('REINDEX INDEX "Mixed ""Case"""."Big Table_pkey"')
        with vhdiag.connect(cases) as t:
            df = t.tables()
    finally:
        locker.rollback()
        locker.close()
    assert by_table(df, 'Mixed "Case"')["Big Table"]["size_skipped"]
    assert df["size_skipped"].sum() == 1


def test_waiting_lock_request_is_skipped_too(pg, cases):
    """A queued ACCESS EXCLUSIVE request blocks later AccessShareLocks, so it counts as a lock."""
    holder = psycopg.connect(pg.dsn(CASES_DB, via="socket"))
    waiter = psycopg.connect(pg.dsn(CASES_DB, via="socket"))
    holder.execute("SELECT 1 FROM never_analyzed LIMIT 1")  # AccessShareLock, kept
    waiter.execute("SET lock_timeout = '10s'")
    thread = threading.Thread(target=_try, args=(waiter, "LOCK TABLE never_analyzed IN ACCESS EXCLUSIVE MODE"))
    thread.start()
    try:
        _wait_for_waiting_lock(holder, "never_analyzed")
        with vhdiag.connect(cases) as t:
            rows = by_table(t.tables())
    finally:
        holder.rollback()   # lets the waiter through
        thread.join()
        waiter.rollback()
        holder.close()
        waiter.close()
    assert rows["never_analyzed"]["size_skipped"]
    assert not rows["measurements_2026"]["size_skipped"]


def _try(conn, statement):
    try:
        conn.execute(statement)
    except psycopg.Error:
        pass


def _wait_for_waiting_lock(conn, table):
    with psycopg.connect(conn.info.dsn, autocommit=True) as probe:
        for _ in range(100):
            if probe.execute("SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                             (table,)).fetchone()[0]:
                return
            time.sleep(0.02)
    pytest.fail(f"no waiting lock on {table}")


class _FlakyTarget:
    """Fails with the given errors first, then returns a frame."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def query(self, sql, params=None):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return pd.DataFrame({"x": [1]})


def _dbapi_error(orig):
    return sa.exc.OperationalError("SELECT ...", {}, orig)


def test_a_lock_taken_mid_statement_is_retried():
    lock = _dbapi_error(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"))
    t = _FlakyTarget(lock, lock)
    assert _base.query_skipping_locks(t, "SELECT 1")["x"].tolist() == [1]
    assert t.calls == 3
    t = _FlakyTarget(lock, lock, lock)
    with pytest.raises(sa.exc.OperationalError):
        _base.query_skipping_locks(t, "SELECT 1")
    assert t.calls == 3


def test_other_errors_are_not_retried():
    t = _FlakyTarget(_dbapi_error(psycopg.errors.QueryCanceled("canceling statement due to statement timeout")))
    with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        _base.query_skipping_locks(t, "SELECT 1")
    assert t.calls == 1


def test_cache_hits_and_the_capacity_reports_bloat_estimate(pg, target):
    """Per table: heap and index cache hit from pg_statio_user_tables, and the heap bloat the
    capacity report estimates (dead rows' share of the heap), with its method named."""
    from vhdiag.analysis.capacity_maintenance import BLOAT_METHOD
    df = target.tables().set_index(["schema", "table"])
    with pg.admin() as conn:
        hit = dict(conn.execute(
            "SELECT relname, round((100.0 * heap_blks_hit / nullif(heap_blks_hit + heap_blks_read, 0))::numeric, 6)"
            " FROM pg_statio_user_tables").fetchall())
    orders = df.loc[("public", "orders")]
    assert orders["heap_hit_pct"] == pytest.approx(float(hit["orders"]), abs=0.5)   # the workload runs on
    assert 0 <= orders["heap_hit_pct"] <= 100 and 0 <= orders["index_hit_pct"] <= 100
    events = df.loc[("public", "machine_events")]
    share = 100 * workload.EVENTS_DELETED / workload.EVENTS_ROWS
    assert events["bloat_pct"] == pytest.approx(share)
    assert events["bloat_bytes"] == round(events["table_bytes"] * share / 100)
    assert orders["bloat_pct"] == 0 and orders["bloat_bytes"] == 0           # no dead row planted there
    assert set(df["bloat_method"]) == {BLOAT_METHOD}
