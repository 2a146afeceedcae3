"""activity: sessions, locks and connection counts, with real idle transactions and lock waits."""
import threading
import time

import pandas as pd
import psycopg
import pytest

import vhdiag
import workload
from helpers import dtypes_of, eventually, scratch_database
from vhdiag.collect import activity

SCRATCH_DB = "vh_scratch_activity"


@pytest.fixture(scope="module")
def scratch(pg):
    """A database of this module's own, with a table to lock."""
    with scratch_database(pg, SCRATCH_DB):
        with pg.admin(SCRATCH_DB) as conn:
            conn.execute("CREATE TABLE lockme (id int)")
        yield SCRATCH_DB


@pytest.fixture
def lowpriv(pg):
    t = vhdiag.connect(pg.dsn(user=workload.LOWPRIV_USER, password=workload.LOWPRIV_PASSWORD))
    yield t
    t.close()


def test_dtypes_match_the_mappings(target, idle_in_transaction):
    assert activity.collect(target).dtypes.astype(str).to_dict() == dtypes_of(activity.COLUMNS)
    assert activity.connections(target).dtypes.astype(str).to_dict() == dtypes_of(activity.CONNECTIONS_COLUMNS)
    summary = activity.summary(target)
    assert summary.dtypes.astype(str).to_dict() == dtypes_of(activity.SUMMARY_COLUMNS)
    assert len(summary) == 1
    assert target.notices == {}


def test_own_backend_is_left_out(target):
    own = int(target.query("SELECT pg_backend_pid() AS pid")["pid"].iloc[0])
    df = activity.collect(target)
    # The pool holds one connection: the one that just ran both queries.
    assert own not in set(df["pid"])
    assert set(df["backend_type"]) == {"client backend"}
    assert "checkpointer" in set(activity.collect(target, all_backends=True)["backend_type"])


def test_idle_in_transaction_session(pg, target, idle_in_transaction):
    slept = 0.5
    time.sleep(slept)
    df = activity.collect(target)
    rows = df[df["application"] == workload.IDLE_APP]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["pid"] == idle_in_transaction.info.backend_pid
    assert (row["database"], row["user"], row["backend_type"]) == (workload.DB, "postgres", "client backend")
    assert row["state"] == "idle in transaction"
    # Its last query: the fixture's, unless another test has used the shared session since.
    with pg.admin("postgres") as admin:
        last_query, exact_query_id = admin.execute(
            "SELECT query, query_id FROM pg_stat_activity WHERE pid = %s",
            (idle_in_transaction.info.backend_pid,)).fetchone()
    assert row["query"] == last_query and last_query.startswith("SELECT ")
    assert not row["query_hidden"] and not row["waiting"]
    assert row["state_duration_s"] >= slept
    assert row["xact_duration_s"] >= row["state_duration_s"]
    assert pd.isna(row["query_duration_s"])  # not running a query
    assert row["blocked_by_count"] == 0 and row["blocking_count"] == 0
    assert pd.isna(row["blocked_by"]) and pd.isna(row["blocking"])
    assert pd.isna(row["client_addr"]) and row["client_port"] == -1  # Unix socket
    assert row["xact_start"].tzinfo is not None and str(row["xact_start"].tz) == "UTC"
    # query_id (PostgreSQL 14+) is 64-bit: read as text and kept exact, where float64 would round.
    assert exact_query_id is not None and row["query_id"] == exact_query_id

    summary = activity.summary(target).iloc[0]
    assert summary["idle_in_transaction"] >= 1
    assert summary["oldest_idle_in_transaction_s"] >= slept


def test_blocked_session_shows_its_blocker(pg, target, scratch):
    holder = psycopg.connect(pg.dsn(scratch, via="socket"), application_name="vh-test-holder")
    holder.execute("LOCK TABLE lockme IN ACCESS EXCLUSIVE MODE")
    waiter = psycopg.connect(pg.dsn(scratch, via="socket"), application_name="vh-test-waiter", autocommit=True)
    waiter.execute("SET statement_timeout = '20s'")
    result = {}

    def wait_for_lock():
        try:
            result["rows"] = waiter.execute("SELECT count(*) FROM lockme").fetchone()[0]
        except psycopg.Error as exc:  # pragma: no cover - reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=wait_for_lock)
    thread.start()
    try:
        df = eventually(lambda: activity.collect(target),
                        lambda d: d.loc[d["application"] == "vh-test-waiter", "waiting"].eq(True).any())
        w = df[df["application"] == "vh-test-waiter"].iloc[0]
        h = df[df["application"] == "vh-test-holder"].iloc[0]
        assert w["pid"] == waiter.info.backend_pid and h["pid"] == holder.info.backend_pid
        assert w["waiting"] and w["state"] == "active"
        assert (w["wait_event_type"], w["wait_event"]) == ("Lock", "relation")
        assert w["blocked_by"] == str(holder.info.backend_pid)
        assert w["blocked_by_count"] == 1 and w["blocking_count"] == 0
        assert w["query"] == "SELECT count(*) FROM lockme"
        assert w["query_duration_s"] >= 0
        assert not h["waiting"] and h["state"] == "idle in transaction"
        assert h["blocking"] == str(waiter.info.backend_pid) and h["blocking_count"] == 1

        assert activity.summary(target).iloc[0]["waiting_sessions"] == 1
        conns = activity.connections(target)
        mine = conns[conns["application"] == "vh-test-waiter"].iloc[0]
        assert (mine["database"], mine["state"], mine["connections"], mine["waiting"]) == (scratch, "active", 1, 1)
    finally:
        holder.rollback()
        thread.join(timeout=20)
        holder.close()
        waiter.close()
    assert result == {"rows": 0}


def test_connections_count_by_application(pg, target, scratch):
    app = f"vh-test-conns-{pg.id}"
    conns = [psycopg.connect(pg.dsn(scratch, via="socket"), application_name=app) for _ in range(3)]
    try:
        conns[0].execute("SELECT 1")  # leaves it idle in transaction
        df = activity.connections(target)
        mine = df[df["application"] == app]
        assert sorted(zip(mine["state"], mine["connections"])) == [("idle", 2), ("idle in transaction", 1)]
        assert set(mine["database"]) == {scratch} and set(mine["user"]) == {"postgres"}

        total = int(df["connections"].sum())
        assert set(df["total_connections"]) == {total}
        assert set(df["max_connections"]) == {100}          # vhdiag.server.BASE_SETTINGS
        assert set(df["superuser_reserved_connections"]) == {3}
        if pg.major >= 16:
            assert set(df["reserved_connections"]) == {0}
        else:
            assert df["reserved_connections"].isna().all()
        assert set(df["free_connections"]) == {100 - 3 - total}
        assert set(df["used_pct"]) == {total}               # of 100

        summary = activity.summary(target).iloc[0]
        assert summary["total_connections"] == total
        assert summary["idle_in_transaction"] >= 2          # this one and the planted one
        assert summary["used_pct"] == total
    finally:
        for c in conns:
            c.close()
    # A backend leaves pg_stat_activity a moment after its client closes.
    after = eventually(lambda: activity.connections(target), lambda d: not d["application"].eq(app).any())
    assert not after["application"].eq(app).any()


def test_low_privilege_role_sees_hidden_rows(pg, lowpriv, idle_in_transaction):
    df = activity.collect(lowpriv)
    assert df.dtypes.astype(str).to_dict() == dtypes_of(activity.COLUMNS)
    row = df[df["pid"] == idle_in_transaction.info.backend_pid].iloc[0]
    assert row["query_hidden"] and row["query"] == "<insufficient privilege>"
    assert pd.isna(row["state"]) and pd.isna(row["xact_start"])
    # Still visible to anyone: who and where.
    assert (row["database"], row["user"], row["application"]) == (workload.DB, "postgres", workload.IDLE_APP)
    assert not row["waiting"] and row["blocked_by_count"] == 0
    assert lowpriv.notices == {
        "activity:hidden": f"role {workload.LOWPRIV_USER} cannot see the state and query of other roles' "
                           f"sessions: GRANT pg_read_all_stats TO {workload.LOWPRIV_USER};"}

    conns = activity.connections(lowpriv)
    hidden = conns[(conns["application"] == workload.IDLE_APP)]
    assert hidden["state"].isna().all() and hidden["connections"].sum() == 1
    summary = activity.summary(lowpriv).iloc[0]
    assert summary["hidden"] >= 1 and summary["total_connections"] == conns["connections"].sum()
