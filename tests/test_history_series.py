"""``History.statement_series``: one statement's deltas per snapshot, read by the delta table's key.

The slow-query report draws its top five statements over the window from this read. On a week of
5,000 statements (benchmarks/weekly_run.py) SQLite joined the window's snapshots to *all* their
delta rows and looked each one's statement up to keep the one queryid: 3.4 million lookups, 0.3-0.4 s
a statement, 1.5 s of the report. Naming the statement's ids first lets each snapshot find its row
by ``(snapshot_id, statement_id)``. The planted history (through ``History.record``): one queryid
run by two roles (two statement rows), the same queryid under a second target, and a statement
that stands still in one interval; the series must be exactly those deltas, on SQLite and on
PostgreSQL 18 and 15 stores.
"""
from __future__ import annotations

import os
import sqlite3
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from vhdiag.history import History

START = pd.Timestamp("2026-11-16 00:15", tz="UTC")
QID = 4242
CALLS = {"app": [3, 0, 5, 2], "report": [1, 1, 1, 1]}   # per interval; app stands still in the second


@pytest.fixture(params=["sqlite", "pg18", "pg15"])
def store_url(request, tmp_path, servers):
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    server = servers.get(request.param)
    name = f"series_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    with server.admin("postgres") as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn(name)


def _frames(ts, calls: dict, other: int) -> dict:
    rows = [{"queryid": QID, "userid": uid, "user": user, "calls": calls[user]}
            for uid, user in ((10, "app"), (11, "report"))]
    rows.append({"queryid": 7, "userid": 10, "user": "app", "calls": other})
    stmts = pd.DataFrame(rows).assign(dbid=5, toplevel=True, database="vendhub", stats_since=pd.NaT)
    stmts["query"] = ["SELECT * FROM t WHERE id = $1"] * 2 + ["SELECT 1"]
    stmts["rows"] = stmts["calls"]
    stmts["total_exec_ms"] = stmts["calls"] * 2.0
    stmts["mean_exec_ms"] = stmts["total_exec_ms"] / stmts["calls"].clip(lower=1)
    stmts["stddev_exec_ms"] = 0.0
    head = {"ts": ts, "server_version_num": 180001, "postmaster_start": pd.Timestamp("2026-01-01", tz="UTC"),
            "pgss_version": "1.12", "pgss_stats_reset": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_dealloc": 0,
            "max_connections": 100, "reads_all_stats": True}
    return {"statements": stmts, "header": head, "notes": []}


def _plant(url) -> History:
    history = History(url)
    totals = {"app": 10, "report": 10}
    for i in range(len(CALLS["app"]) + 1):
        ts = START + pd.Timedelta(minutes=15 * i)
        if i:
            for user in totals:
                totals[user] += CALLS[user][i - 1]
        history.record(_frames(ts, dict(totals), 100 + 9 * i), "planted")
        # A second target with the same queryid, moving faster: never in "planted"'s series.
        history.record(_frames(ts, {u: 1000 + 50 * i for u in totals}, 1), "other")
    return history


def test_series_is_the_statements_deltas_of_its_target_only(store_url):
    history = _plant(store_url)
    try:
        series = history.statement_series(QID, target="planted")
        for user, calls in CALLS.items():   # a statement standing still has no row in that interval
            mine = series[series["user"] == user].sort_values("ts")
            assert list(mine["calls"]) == [c for c in calls if c]
            assert list(mine["ts"]) == [START + pd.Timedelta(minutes=15 * i) for i in range(1, 5) if calls[i - 1]]
        assert set(series["user"]) == {"app", "report"}       # nothing of target "other", nor queryid 7
        assert list(series["total_exec_ms"][series["user"] == "app"]) == [6.0, 10.0, 4.0]
        window = history.statement_series(QID, START + pd.Timedelta(minutes=15), START + pd.Timedelta(minutes=45),
                                          target="planted")
        assert sorted(window["calls"]) == [1, 1, 5]           # (since, until]: the 2nd and 3rd intervals
        assert history.statement_series(999, target="planted").empty
    finally:
        history.close()


def test_series_reads_each_snapshots_row_by_key_on_sqlite(tmp_path):
    history = _plant(str(tmp_path / "history.sqlite"))
    seen = []

    @sa.event.listens_for(history.engine, "before_cursor_execute")
    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    try:
        assert len(history.statement_series(QID, target="planted")) == 7
    finally:
        history.close()
    reads = [(sql, params) for sql, params in seen if "statement_deltas" in sql]
    assert len(reads) == 1, reads
    sql, params = reads[0]
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        plan = [row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
    deltas = [line for line in plan if "statement_deltas" in line]
    assert deltas and all("statement_id=?" in line and not line.startswith("SCAN") for line in deltas), plan
