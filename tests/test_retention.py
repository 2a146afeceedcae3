"""Retention on a store built from synthetic snapshots two weeks in the past: what prune keeps,
folds and drops, and that the totals a window reports do not change."""
import numpy as np
import pandas as pd
import sqlalchemy as sa

from vhdiag.history import History
from vhdiag.history import schema as S
from vhdiag.history.retention import OTHER_QUERY

NOW = pd.Timestamp("2026-11-27 12:00", tz="UTC")
START = NOW - pd.Timedelta(days=3)   # 3 days of 15-minute snapshots: 288 of them
N_STATEMENTS = 30


def _frames(i, counters):
    statements = pd.DataFrame({
        "queryid": np.arange(1, N_STATEMENTS + 1, dtype=np.int64) * 7919, "userid": 10, "dbid": 5,
        "toplevel": True, "user": "app", "database": "vendhub",
        "query": [f"SELECT {k} FROM t{k}" for k in range(N_STATEMENTS)],
        "stats_since": pd.Timestamp("2026-01-01", tz="UTC"),
    })
    # Statement k runs k+1 times per interval, 2 ms each.
    counters += np.arange(1, N_STATEMENTS + 1)
    statements["calls"] = counters.copy()
    statements["rows"] = counters.copy()
    statements["total_exec_ms"] = counters * 2.0
    statements["mean_exec_ms"] = 2.0
    statements["stddev_exec_ms"] = 0.0
    tables = pd.DataFrame({"schema": ["public"], "table": ["t"], "size_skipped": [False],
                           **{c: [8192 * (i + 1)] for c in S.TABLE_FIELDS}})
    database = pd.DataFrame({"database": ["vendhub"], **{c: [1000 * (i + 1)] for c in S.DATABASE_FIELDS},
                             "stats_reset": [None]})
    return {"statements": statements, "tables": tables, "indexes": None, "database": database,
            "activity": pd.DataFrame({"state": ["active"], "connections": [3]}), "notes": [],
            "header": {"ts": START + pd.Timedelta(minutes=15 * i), "server_version_num": 180001,
                       "postmaster_start": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_version": "1.12",
                       "pgss_stats_reset": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_dealloc": 0,
                       "max_connections": 100}}


def build(url, snapshots=3 * 96):
    history = History(url)
    counters = np.zeros(N_STATEMENTS, dtype=np.int64)
    for i in range(snapshots):
        history.record(_frames(i, counters), "synthetic")
    return history


def test_prune_rolls_up_folds_and_keeps_totals(tmp_path):
    history = build(str(tmp_path / "h.sqlite"))
    before = history.statements(since=START, until=NOW)
    assert int(before["calls"].sum()) == (3 * 96 - 1) * sum(range(1, N_STATEMENTS + 1))

    result = history.prune(raw_days=1, rollup_days=400, now=NOW, keep_top=5)
    # The two days before the cutoff were rolled up: 48 hours of 4 snapshots each.
    assert result["rolled_up_snapshots"] == 2 * 96
    assert result["deleted_snapshots"] == 2 * 96 - 2 * 24
    # Per hour: 5 by time and 5 by calls (the same five here) plus one folded row.
    assert result["hourly_rows"] == 2 * 24 * 6

    after = history.statements(since=START, until=NOW)
    assert int(after["calls"].sum()) == int(before["calls"].sum())
    assert after["total_exec_ms"].sum() == before["total_exec_ms"].sum()
    other = after[after["query"] == OTHER_QUERY].iloc[0]
    assert "folded" in other["notes"]
    # The busiest statement kept its own rows all along: its window total is unchanged.
    top = before.iloc[0]
    assert after.set_index("queryid").loc[top["queryid"], "calls"] == top["calls"]

    snaps = history.snapshots()
    old = snaps[snaps["ts"] < NOW - pd.Timedelta(days=1)]
    assert len(old) == 2 * 24   # the last snapshot of each hour
    assert (old["interval_s"].iloc[1:] == 3600).all()
    growth = history.table_growth(since=START, until=NOW).iloc[0]
    assert growth["end_total_bytes"] == 8192 * 3 * 96
    with history.engine.connect() as conn:
        days_of_table_rows = conn.execute(sa.text(
            "SELECT count(*) FROM table_stats t JOIN snapshots s ON s.id = t.snapshot_id "
            "WHERE s.ts < :cut"), {"cut": (NOW - pd.Timedelta(days=1)).to_pydatetime()}).scalar()
    assert days_of_table_rows == 3   # one per UTC day: the 24th, 25th and 26th

    # Pruning again changes nothing; past the roll-up horizon everything goes.
    assert history.prune(raw_days=1, rollup_days=400, now=NOW, keep_top=5)["hourly_rows"] == 0
    gone = history.prune(raw_days=1, rollup_days=2, now=NOW, keep_top=5)
    assert gone["expired_snapshots"] == 24   # the kept last-of-hour snapshots of the first day
    assert history.statements(until=NOW - pd.Timedelta(days=2)).empty
    assert (history.snapshots()["ts"] >= NOW - pd.Timedelta(days=2)).all()


def test_zone_aware_times_are_stored_as_utc(tmp_path):
    history = History(str(tmp_path / "h.sqlite"))
    counters = np.zeros(N_STATEMENTS, dtype=np.int64)
    frames = _frames(0, counters)
    frames["header"]["ts"] = pd.Timestamp("2026-11-27 14:00", tz="Europe/Berlin")
    history.record(frames, "synthetic")
    assert list(history.snapshots()["ts"]) == [pd.Timestamp("2026-11-27 13:00", tz="UTC")]


def test_metrics_import_keeps_every_series(tmp_path):
    from vhdiag.history.metrics import import_metrics, load_metrics
    ts = pd.date_range("2026-11-01", periods=4000, freq="min", tz="UTC")
    frame = pd.concat([pd.DataFrame({"ts": ts, "metric": m, "value": float(i), "labels": "{}"})
                       for i, m in enumerate(["cpu_pct", "db_connections", "memory_pct"])], ignore_index=True)
    url = str(tmp_path / "h.sqlite")
    assert import_metrics(url, frame, "synthetic") == 12000
    stored = load_metrics(f"sqlite:///{url}")
    assert stored.groupby("metric").size().to_dict() == {"cpu_pct": 4000, "db_connections": 4000, "memory_pct": 4000}
