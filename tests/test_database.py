"""database: pg_stat_database counters moved by real rollbacks, deadlocks and sessions."""
import threading

import pandas as pd
import psycopg
import pytest

import vhdiag
import workload
from helpers import dtypes_of, eventually, scratch_database
from vhdiag.collect import database

SCRATCH_DB = "vh_scratch_database"
NOCONNECT_DB = "vh_scratch_noconnect"


@pytest.fixture(scope="module")
def scratch(pg):
    """A database only this module connects to, so its counters move only when we say."""
    with scratch_database(pg, SCRATCH_DB), scratch_database(pg, NOCONNECT_DB):
        with pg.admin("postgres") as conn:
            conn.execute(f"REVOKE CONNECT ON DATABASE {NOCONNECT_DB} FROM PUBLIC")
        with pg.admin(SCRATCH_DB) as conn:
            conn.execute("CREATE TABLE pair (id int PRIMARY KEY, v int)")
            conn.execute("INSERT INTO pair VALUES (1, 0), (2, 0)")
        yield SCRATCH_DB


def _row(t, db: str) -> pd.Series:
    df = database.collect(t)
    return df[df["database"] == db].iloc[0]


def _settled(t, db: str, column: str, expected: int) -> pd.Series:
    """The row once ``column`` reached ``expected``: a backend flushes its counters on exit,
    a moment after its client closes."""
    return eventually(lambda: _row(t, db), lambda r: r[column] >= expected)


def test_columns_rows_and_dtypes(pg, target, scratch, idle_in_transaction):
    df = database.collect(target)
    assert df.dtypes.astype(str).to_dict() == dtypes_of(database.COLUMNS)
    assert list(df["database"]) == sorted(["postgres", workload.DB, workload.NOPGSS_DB, scratch, NOCONNECT_DB])
    assert (df["size_bytes"] > 0).all()
    with pg.admin("postgres") as conn:
        size = conn.execute("SELECT pg_database_size(%s)", (workload.DB,)).fetchone()[0]
    planted = df[df["database"] == workload.DB].iloc[0]
    assert planted["size_bytes"] == size
    assert planted["numbackends"] >= 2                       # vhdiag and the workload's idle session
    assert planted["cache_hit_pct"] == pytest.approx(
        100 * planted["blks_hit"] / (planted["blks_hit"] + planted["blks_read"]))
    assert (df["server_start"] == target.capabilities.postmaster_start).all()
    assert str(df["ts"].dt.tz) == "UTC" and df["ts"].nunique() == 1
    # Session counters arrived in PostgreSQL 14; data checksums are on by default from 18.
    assert planted["sessions"] >= 1 and planted["session_time_ms"] > 0
    assert (planted["checksum_failures"] == 0) if pg.major >= 18 else pd.isna(planted["checksum_failures"])
    assert target.notices == {}


def test_rollbacks_counted_exactly(pg, target, scratch):
    n = 7
    before = _row(target, scratch)
    with psycopg.connect(pg.dsn(scratch, via="socket")) as conn:
        for _ in range(n):
            conn.execute("SELECT 1")
            conn.rollback()
    after = _settled(target, scratch, "xact_rollback", before["xact_rollback"] + n)
    assert after["xact_rollback"] == before["xact_rollback"] + n
    assert after["rollback_pct"] == pytest.approx(
        100 * after["xact_rollback"] / (after["xact_commit"] + after["xact_rollback"]))


def test_a_real_deadlock_is_counted(pg, target, scratch):
    before = _row(target, scratch)
    a = psycopg.connect(pg.dsn(scratch, via="socket"))
    b = psycopg.connect(pg.dsn(scratch, via="socket"))
    errors = []
    try:
        for conn in (a, b):
            conn.execute("SET deadlock_timeout = '100ms'")
            conn.execute("SET statement_timeout = '20s'")
        a.execute("UPDATE pair SET v = 1 WHERE id = 1")
        b.execute("UPDATE pair SET v = 2 WHERE id = 2")

        def cross(conn, row_id):
            try:
                conn.execute("UPDATE pair SET v = 3 WHERE id = %s", (row_id,))
            except psycopg.errors.DeadlockDetected as exc:
                errors.append(exc)
            finally:
                conn.rollback()

        threads = [threading.Thread(target=cross, args=(a, 2)), threading.Thread(target=cross, args=(b, 1))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=20)
    finally:
        a.close()
        b.close()
    assert len(errors) == 1                                  # one victim, the other went through
    after = _settled(target, scratch, "deadlocks", before["deadlocks"] + 1)
    assert after["deadlocks"] == before["deadlocks"] + 1


@pytest.mark.pg(">= 14")
def test_sessions_counted_and_killed(pg, target, scratch):
    before = _row(target, scratch)
    for _ in range(3):
        psycopg.connect(pg.dsn(scratch, via="socket")).close()
    victim = psycopg.connect(pg.dsn(scratch, via="socket"))
    with pg.admin("postgres") as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (victim.info.backend_pid,)).fetchone()[0]
    victim.close()
    after = eventually(lambda: _row(target, scratch),
                       lambda r: r["sessions"] >= before["sessions"] + 4 and r["sessions_killed"] >= 1)
    assert after["sessions"] == before["sessions"] + 4
    assert after["sessions_killed"] == before["sessions_killed"] + 1
    assert after["session_time_ms"] > before["session_time_ms"]


def test_unconnectable_database_has_null_size_and_a_notice(pg, scratch):
    t = vhdiag.connect(pg.dsn(user=workload.LOWPRIV_USER, password=workload.LOWPRIV_PASSWORD))
    try:
        df = database.collect(t)
        assert df.dtypes.astype(str).to_dict() == dtypes_of(database.COLUMNS)
        sizes = dict(zip(df["database"], df["size_bytes"]))
        assert pd.isna(sizes[NOCONNECT_DB])
        assert all(size > 0 for db, size in sizes.items() if db != NOCONNECT_DB)
        assert t.notices == {"database:size": (
            f"role {workload.LOWPRIV_USER} may not connect to {NOCONNECT_DB}, so size_bytes is null there: "
            f"GRANT pg_read_all_stats TO {workload.LOWPRIV_USER};")}
    finally:
        t.close()
