"""Window sums (vhdiag/history/sums.py): a read from the hour and day sums gives exactly the frame
the raw deltas give, on SQLite and PostgreSQL stores, before and after retention.

The history is planted through ``History.record`` (the write path of ``vhdiag snapshot``): 20
statements snapshotted every 30 minutes from 2026-11-20 17:10 to 2026-11-22 01:10 UTC, so two
days and 31 hours are complete, with a one-hour gap (notes "gap"), statements that stand still
for a while, two that appear halfway (notes "new") and no ``plans`` counter (it stays NA).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from vhdiag.history import History
from vhdiag.history import schema as S

START = pd.Timestamp("2026-11-20 17:10", tz="UTC")
END = pd.Timestamp("2026-11-22 01:10", tz="UTC")
GAP = pd.Timestamp("2026-11-21 09:40", tz="UTC")  # none at 09:40 and 10:10: 10:40 comes 90 min after 09:10
INTS = ["calls", "rows", "shared_blks_hit", "shared_blks_read", "shared_blks_dirtied", "shared_blks_written",
        "local_blks_hit", "local_blks_read", "temp_blks_read", "temp_blks_written", "wal_records", "wal_fpi",
        "wal_bytes"]
FLOATS = ["total_exec_ms", "total_plan_ms", "shared_blk_read_ms", "shared_blk_write_ms", "temp_blk_read_ms",
          "temp_blk_write_ms"]


@pytest.fixture(params=["sqlite", "pg18", "pg15"])
def store_url(request, tmp_path, servers):
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    server = servers.get(request.param)
    name = f"sums_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    with server.admin("postgres") as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn(name)


def _frames(rng, stmts, ts, n_visible):
    head = {"ts": ts, "server_version_num": 180001, "postmaster_start": pd.Timestamp("2026-01-01", tz="UTC"),
            "pgss_version": "1.12", "pgss_stats_reset": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_dealloc": 0,
            "max_connections": 100, "reads_all_stats": True}
    return {"statements": stmts.iloc[:n_visible].copy(), "header": head, "notes": []}


def _plant(url) -> History:
    rng = np.random.default_rng(13)
    n = 20
    stmts = pd.DataFrame({"queryid": np.arange(1, n + 1, dtype=np.int64) * 7919, "userid": 10, "dbid": 5,
                          "toplevel": True, "user": "app", "database": "vendhub",
                          "query": [f"SELECT {i} FROM t WHERE id = $1" for i in range(n)],
                          "stats_since": pd.NaT})
    for c in INTS:
        stmts[c] = rng.integers(0, 1000, n)
    for c in FLOATS:
        stmts[c] = rng.random(n) * 100
    history = History(url)
    ts, i = START, 0
    while ts <= END:
        if i:
            moving = rng.random(n) < 0.8               # some statements stand still in an interval
            calls = rng.integers(1, 30, n) * moving
            for c in INTS:
                stmts[c] += calls * (1 if c in ("calls", "rows") else rng.integers(0, 9, n))
            for c in FLOATS:
                stmts[c] += calls * rng.random(n)
        stmts["mean_exec_ms"] = stmts["total_exec_ms"] / stmts["calls"].clip(lower=1)
        stmts["stddev_exec_ms"] = stmts["mean_exec_ms"] * rng.random(n) / 2
        if ts not in (GAP, GAP + pd.Timedelta(minutes=30)):
            history.record(_frames(rng, stmts, ts, n if ts > pd.Timestamp("2026-11-21 12:00", tz="UTC") else n - 2),
                           "planted")
        ts += pd.Timedelta(minutes=30)
        i += 1
    return history


WINDOWS = [
    (None, None),
    ("2026-11-20T17:00:00Z", "2026-11-22T00:00:00Z"),
    ("2026-11-20T23:30:00Z", "2026-11-21T23:59:59Z"),
    ("2026-11-21T05:00:00Z", "2026-11-21T06:00:00Z"),   # one whole hour
    ("2026-11-21T05:10:00Z", "2026-11-21T05:50:00Z"),   # inside an hour: raw deltas only
    ("2026-11-21T09:00:00Z", "2026-11-21T11:00:00Z"),   # the gap
    ("2026-11-20T18:20:00Z", None),
]


def _drop_sums(history):
    with history.engine.begin() as conn:
        conn.execute(S.statement_sums.delete())
        conn.execute(S.statement_sum_spans.delete())


def _assert_same(got, want):
    assert list(got.columns) == list(want.columns)
    assert dict(got.dtypes) == dict(want.dtypes)
    got = got.sort_values(["queryid"]).reset_index(drop=True)
    want = want.sort_values(["queryid"]).reset_index(drop=True)
    exact = [c for c in got.columns if c not in FLOATS + ["mean_exec_ms", "stddev_exec_ms", "rows_per_call",
                                                             "cache_hit_pct", "total_exec_ms"]]
    pd.testing.assert_frame_equal(got[exact], want[exact], check_exact=True)
    # Floats are summed in another order (hours, then days): equal to the last few bits.
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_a_read_from_the_sums_is_the_read_from_the_raw_deltas(store_url):
    history = _plant(store_url)
    with history.engine.connect() as conn:
        spans = conn.execute(sa.select(S.statement_sum_spans.c.span_s, S.statement_sum_spans.c.start)).all()
    days = sorted(pd.Timestamp(s).tz_localize(None) if pd.Timestamp(s).tzinfo is None else
                  pd.Timestamp(s).tz_convert(None) for span, s in spans if span == 86400)
    hours = [s for span, s in spans if span == 3600]
    # Days (11-20 00:00, 11-21 00:00] and (11-21 00:00, 11-22 00:00]; hours from (11-20 17:00, 18:00], the
    # first snapshot's, to (11-22 00:00, 01:00], which the last snapshot (01:10) completes.
    assert days == [pd.Timestamp("2026-11-20"), pd.Timestamp("2026-11-21")]
    assert len(hours) == 32
    with_sums = [history.statements(since, until) for since, until in WINDOWS]
    assert [len(f) for f in with_sums] == [20, 20, 20, 17, 16, 18, 20]
    assert [int(f["intervals"].max()) for f in with_sums] == [53, 50, 43, 2, 1, 2, 52]
    assert with_sums[0]["notes"].value_counts().to_dict() == {"gap": 18, "new": 2}
    assert with_sums[0]["plans"].isna().all()
    _drop_sums(history)
    for (since, until), got in zip(WINDOWS, with_sums):
        _assert_same(got, history.statements(since, until))
    # A later snapshot sums what it completes again, the same way.
    assert history.update_sums("planted") == 32 + 2
    for (since, until), want in zip(WINDOWS, with_sums):
        _assert_same(history.statements(since, until), want)
    history.close()


def test_whole_days_are_read_from_their_sums(store_url):
    """The day's sum is what a week's read takes for that day (not its 72 raw deltas): a sum
    changed by hand shows in the read."""
    history = _plant(store_url)
    before = history.statements("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z")
    w = S.statement_sums
    with history.engine.begin() as conn:
        sid = conn.execute(sa.select(S.statements.c.id).where(S.statements.c.queryid == 7919)).scalar_one()
        conn.execute(w.update().where(w.c.span_s == 86400, w.c.statement_id == sid).values(calls=w.c.calls + 1000))
    after = history.statements("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z")
    delta = after.set_index("queryid")["calls"] - before.set_index("queryid")["calls"]
    assert delta[7919] == 1000 and (delta.drop(7919) == 0).all()
    history.close()


def test_retention_forgets_the_sums_of_what_it_prunes(store_url):
    history = _plant(store_url)
    # Raw snapshots before 2026-11-21 12:00 are rolled up into statement_hourly.
    history.prune(raw_days=1, now=pd.Timestamp("2026-11-22 12:00", tz="UTC"))
    with history.engine.connect() as conn:
        starts = [pd.Timestamp(s) for (s,) in conn.execute(sa.select(S.statement_sum_spans.c.start))]
        starts += [pd.Timestamp(s) for (s,) in conn.execute(sa.select(S.statement_sums.c.start).distinct())]
    assert starts and min(s.tz_localize("UTC") if s.tzinfo is None else s for s in starts) == \
        pd.Timestamp("2026-11-21 12:00", tz="UTC")
    with_sums = [history.statements(since, until) for since, until in WINDOWS]
    _drop_sums(history)
    for (since, until), got in zip(WINDOWS, with_sums):
        _assert_same(got, history.statements(since, until))
    history.close()
