"""Window reads of the history store, aggregated in SQL so a week of 5,000 statements stays cheap.

A window is (since, until]: a snapshot's deltas cover the interval that *ends* at its ts. Raw
deltas and hourly roll-ups (what retention leaves of pruned snapshots) are both read and summed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..redact import redact_secrets
from . import schema as S
from . import sums
from .deltas import counter_diff
from .tablerows import table_rows, table_snapshots

SUMMED = [c for c in S.STATEMENT_COUNTERS]
# A literal, not a parameter: SQLite uses the partial index statement_deltas_noted only when the
# query's condition is the index's own (note != '').
NO_NOTE = sa.literal_column("''")

STATEMENT_WINDOW_COLUMNS = [
    "queryid", "userid", "dbid", "user", "database", "toplevel", "query",
    "calls", "total_exec_ms", "mean_exec_ms", "stddev_exec_ms", "plans", "total_plan_ms", "rows",
    "rows_per_call", "shared_blks_hit", "shared_blks_read", "cache_hit_pct", "shared_blks_dirtied",
    "shared_blks_written", "local_blks_hit", "local_blks_read", "temp_blks_read", "temp_blks_written",
    "shared_blk_read_ms", "shared_blk_write_ms", "temp_blk_read_ms", "temp_blk_write_ms",
    "wal_records", "wal_fpi", "wal_bytes", "intervals", "complete", "notes", "first_ts", "last_ts",
]

SERIES_COLUMNS = ["ts", "interval_s", "user", "database", "toplevel", "calls", "calls_per_s", "total_exec_ms",
                  "mean_exec_ms", "stddev_exec_ms", "rows", "shared_blks_hit", "shared_blks_read",
                  "temp_blks_written", "complete", "note"]
GROWTH_COLUMNS = ["schema", "table", "start_ts", "end_ts", "days", "start_total_bytes", "end_total_bytes",
                  "growth_bytes", "growth_bytes_per_day", "start_n_live_tup", "end_n_live_tup", "n_dead_tup",
                  "n_tup_ins", "n_tup_upd", "n_tup_del", "seq_scan", "idx_scan", "samples", "complete"]
DATABASE_SERIES_COLUMNS = ["ts", "database", "interval_s", "size_bytes", "commits", "rollbacks", "tps",
                           "rollback_pct", "cache_hit_pct", "deadlocks", "temp_bytes", "connections",
                           "max_connections", "complete", "events"]
TABLE_SERIES_COLUMNS = ["ts", "schema", "table", "total_bytes", "n_live_tup", "n_dead_tup"]


def _between(q, col, since, until):
    if since is not None:
        q = q.where(col > since.to_pydatetime())
    if until is not None:
        q = q.where(col <= until.to_pydatetime())
    return q


def utc_series(series: pd.Series) -> pd.Series:
    """Stored times as tz-aware UTC (SQLite hands back naive UTC text, PostgreSQL aware values),
    in nanoseconds as the live collectors' (pandas would pick microseconds for some inputs)."""
    if not len(series):
        return series.astype("datetime64[ns, UTC]")
    return pd.to_datetime(series, utc=True, format="mixed").astype("datetime64[ns, UTC]")


def as_live(frame: pd.DataFrame, strings=(), ints=(), bools=()) -> pd.DataFrame:
    """The dtypes the live collectors give the same columns (vhdiag/collect/_base.py DTYPES):
    text ``string`` (read_sql gives pandas' default ``str``), counts ``Int64``, flags
    ``boolean``; so live and history frames concatenate and merge without casts."""
    for c in strings:
        frame[c] = frame[c].astype("string")
    for c in ints:
        frame[c] = frame[c].astype("Int64")
    for c in bools:
        frame[c] = frame[c].astype("boolean")
    return frame


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    calls = frame["calls"].astype("Float64")
    nz = calls.where(calls > 0)
    frame["mean_exec_ms"] = frame["total_exec_ms"] / nz
    var = frame["sumsq_exec_ms2"] / nz - frame["mean_exec_ms"] ** 2
    frame["stddev_exec_ms"] = np.sqrt(var.clip(lower=0))
    frame["rows_per_call"] = frame["rows"] / nz
    touched = (frame["shared_blks_hit"] + frame["shared_blks_read"]).astype("Float64")
    frame["cache_hit_pct"] = 100 * frame["shared_blks_hit"] / touched.where(touched > 0)
    return frame


def statements_window(conn, target_id: int, since, until) -> pd.DataFrame:
    d, s, h, w = S.statement_deltas, S.snapshots, S.statement_hourly, S.statement_sums
    # Whole days and hours of the window come summed (history/sums.py); the raw deltas fill in
    # the rest. A week of 5,000 statements changing every 15 minutes is 3.36 million raw rows.
    runs, raw_ranges = sums.plan(conn, target_id, since, until)
    complete_int = sa.case((d.c.complete, 1), else_=0)
    raw = sa.select(d.c.statement_id, *[sa.func.sum(getattr(d.c, c)).label(c) for c in SUMMED],
                    sa.func.count().label("intervals"), sa.func.min(complete_int).label("complete"),
                    sa.func.min(s.c.ts).label("first_ts"), sa.func.max(s.c.ts).label("last_ts")) \
        .join(s, s.c.id == d.c.snapshot_id).where(s.c.target_id == target_id, sums.where_raw(s.c.ts, raw_ranges)) \
        .group_by(d.c.statement_id)
    summed = sa.select(w.c.statement_id, *[sa.func.sum(getattr(w.c, c)).label(c) for c in SUMMED],
                       sa.func.sum(w.c.intervals).label("intervals"), sa.func.min(w.c.complete).label("complete"),
                       sa.func.min(w.c.first_ts).label("first_ts"), sa.func.max(w.c.last_ts).label("last_ts")) \
        .where(sums.where_runs(w, target_id, runs)).group_by(w.c.statement_id)
    # A roll-up row of hour H covers (H, H + 1h]: it counts when that hour overlaps the window,
    # so windows over rolled-up history are hour-granular.
    hour_since = since - pd.Timedelta(hours=1) if since is not None else None
    hourly = _between(
        sa.select(h.c.statement_id, *[sa.func.sum(getattr(h.c, c)).label(c) for c in SUMMED],
                  sa.func.sum(h.c.intervals).label("intervals"),
                  sa.func.min(sa.case((h.c.complete, 1), else_=0)).label("complete"),
                  sa.func.min(h.c.hour).label("first_ts"), sa.func.max(h.c.hour).label("last_ts"))
        .where(h.c.target_id == target_id), h.c.hour, hour_since, None)
    if until is not None:
        hourly = hourly.where(h.c.hour < until.to_pydatetime())
    hourly = hourly.group_by(h.c.statement_id)
    parts = [pd.read_sql(q, conn) for q in ([raw] if raw_ranges else []) + ([summed] if runs else []) + [hourly]]
    parts = [p for p in parts if len(p)]
    notes = _notes(conn, target_id, since, until)
    if not parts:
        return _empty_window()
    frame = pd.concat(parts, ignore_index=True)
    frame["first_ts"], frame["last_ts"] = utc_series(frame["first_ts"]), utc_series(frame["last_ts"])
    grouped = frame.groupby("statement_id")
    # min_count=1: a counter this server never had (plans before 1.8) stays NA, not 0.
    frame = grouped[SUMMED].sum(min_count=1).join(grouped.agg(
        intervals=("intervals", "sum"), complete=("complete", "min"), first_ts=("first_ts", "min"),
        last_ts=("last_ts", "max"))).reset_index()
    keys = pd.read_sql(sa.select(S.statements.c.id.label("statement_id"), S.statements.c.queryid,
                                 S.statements.c.userid, S.statements.c.dbid, S.statements.c.user,
                                 S.statements.c.database, S.statements.c.toplevel, S.statements.c.query)
                       .where(S.statements.c.target_id == target_id), conn)
    frame = frame.merge(keys, on="statement_id", how="left")
    frame["query"] = frame["query"].map(redact_secrets)  # a store an older vhdiag wrote may hold secrets
    for c in SUMMED:
        frame[c] = frame[c].astype("Float64" if c in S._FLOAT_COUNTERS else "Int64")
    frame = _derive(frame)
    frame["complete"] = frame["complete"].astype(bool)
    as_live(frame, strings=("user", "database", "query"), bools=("toplevel",))
    frame["notes"] = frame["statement_id"].map(lambda sid: notes.get(sid, "")).astype("string")
    for c in ("queryid", "userid", "dbid", "intervals"):
        frame[c] = frame[c].astype("Int64")
    frame = frame.sort_values("total_exec_ms", ascending=False, kind="stable")
    return frame[STATEMENT_WINDOW_COLUMNS].reset_index(drop=True)


def _notes(conn, target_id, since, until) -> dict:
    d, s, h = S.statement_deltas, S.snapshots, S.statement_hourly
    q1 = _between(sa.select(d.c.statement_id, d.c.note).distinct()
                  .join(s, s.c.id == d.c.snapshot_id)
                  .where(s.c.target_id == target_id, d.c.note != NO_NOTE), s.c.ts, since, until)
    q2 = _between(sa.select(h.c.statement_id, h.c.note).distinct()
                  .where(h.c.target_id == target_id, h.c.note != ""), h.c.hour,
                  since - pd.Timedelta(hours=1) if since is not None else None, None)
    if until is not None:
        q2 = q2.where(h.c.hour < until.to_pydatetime())
    found: dict[int, set] = {}
    for q in (q1, q2):
        for sid, note in conn.execute(q):
            found.setdefault(sid, set()).update(n for n in note.split(",") if n)
    return {sid: ",".join(sorted(v)) for sid, v in found.items()}


def _empty_window() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="Float64") for c in STATEMENT_WINDOW_COLUMNS})
    for c in ("queryid", "userid", "dbid", "calls", "plans", "rows", "intervals"):
        frame[c] = frame[c].astype("Int64")
    for c in ("user", "database", "query", "notes"):
        frame[c] = frame[c].astype("string")
    frame["toplevel"] = frame["toplevel"].astype("boolean")
    frame["complete"] = frame["complete"].astype(bool)
    frame["first_ts"] = frame["first_ts"].astype("datetime64[ns, UTC]")
    frame["last_ts"] = frame["last_ts"].astype("datetime64[ns, UTC]")
    return frame


def statement_series(conn, target_id: int, queryid: int, since, until) -> pd.DataFrame:
    """One statement's delta rows per snapshot (one per role and database it ran as).

    The statement's ids are named first (``IN``), so each snapshot's row is found by the delta
    table's key: joined on the queryid alone, SQLite read every delta row of every snapshot in the
    window and looked its statement up, 0.3-0.4 s a statement on a week of 5,000 statements
    (benchmarks/weekly_run.py)."""
    d, s, st = S.statement_deltas, S.snapshots, S.statements
    ids = sa.select(st.c.id).where(st.c.target_id == target_id, st.c.queryid == queryid)
    q = _between(
        sa.select(s.c.ts, s.c.interval_s, st.c.user, st.c.database, st.c.toplevel,
                  *[getattr(d.c, c) for c in SUMMED], d.c.complete, d.c.note)
        .join(s, s.c.id == d.c.snapshot_id).join(st, st.c.id == d.c.statement_id)
        .where(s.c.target_id == target_id, d.c.statement_id.in_(ids)), s.c.ts, since, until)
    frame = pd.read_sql(q.order_by(s.c.ts), conn)
    frame["ts"] = utc_series(frame["ts"])
    for c in SUMMED:
        frame[c] = frame[c].astype("Float64" if c in S._FLOAT_COUNTERS else "Int64")
    frame = _derive(frame)
    frame["calls_per_s"] = frame["calls"] / frame["interval_s"]
    frame["complete"] = frame["complete"].astype(bool)
    as_live(frame, strings=("user", "database", "note"), bools=("toplevel",))
    return frame[SERIES_COLUMNS]


def table_growth(conn, target_id: int, since, until) -> pd.DataFrame:
    # The window's start is the last observation at or before `since`, so growth covers it all
    # (after retention, table rows exist for one snapshot a day: look among those). Rows are
    # stored only when they change: tablerows.py gives them back one per snapshot and table.
    snaps = table_snapshots(conn, target_id, until)
    window = snaps
    if since is not None:
        before = snaps[snaps["ts"] <= since]
        window = snaps[snaps["ts"] >= (before["ts"].max() if len(before) else since)]
    frame = table_rows(conn, target_id, snaps, window)
    cols = GROWTH_COLUMNS
    if frame.empty:
        return pd.DataFrame(columns=cols)
    frame["ts"] = utc_series(frame["ts"])
    frame = frame[~frame["size_skipped"].astype(bool)]
    counters = ["n_tup_ins", "n_tup_upd", "n_tup_del", "seq_scan", "idx_scan"]
    diffs = counter_diff(frame, ["schema", "table"], counters)
    summed = diffs.groupby(["schema", "table"]).agg(
        {**{c: "sum" for c in counters}, "complete": "all"}) if len(diffs) else None
    g = frame.sort_values("ts").groupby(["schema", "table"])
    first, last = g.first(), g.last()
    out = pd.DataFrame({
        "start_ts": first["ts"], "end_ts": last["ts"],
        "start_total_bytes": first["total_bytes"].astype("Int64"),
        "end_total_bytes": last["total_bytes"].astype("Int64"),
        "start_n_live_tup": first["n_live_tup"].astype("Int64"), "end_n_live_tup": last["n_live_tup"].astype("Int64"),
        "n_dead_tup": last["n_dead_tup"].astype("Int64"), "samples": g.size(),
    })
    out["days"] = (out["end_ts"] - out["start_ts"]).dt.total_seconds() / 86400
    out["growth_bytes"] = out["end_total_bytes"] - out["start_total_bytes"]
    out["growth_bytes_per_day"] = out["growth_bytes"].astype("Float64") / out["days"].where(out["days"] > 0)
    for c in counters:
        out[c] = summed[c].astype("Int64") if summed is not None else pd.NA
    out["complete"] = summed["complete"].reindex(out.index).fillna(True).astype(bool) if summed is not None else True
    out = as_live(out.reset_index(), strings=("schema", "table")).sort_values("growth_bytes", ascending=False,
                                                                               kind="stable")
    return out[cols].reset_index(drop=True)


def database_series(conn, target_id: int, since, until) -> pd.DataFrame:
    d, s, a = S.database_stats, S.snapshots, S.activity_counts
    q = sa.select(s.c.ts, s.c.interval_s, s.c.max_connections, s.c.events, d.c.database,
                  *[getattr(d.c, c) for c in S.DATABASE_FIELDS]) \
        .join(s, s.c.id == d.c.snapshot_id).where(s.c.target_id == target_id)
    if since is not None:  # one observation before the window, to diff the first interval
        start = conn.execute(sa.select(sa.func.max(s.c.ts)).where(
            s.c.target_id == target_id, s.c.ts <= since.to_pydatetime())).scalar()
        q = q.where(s.c.ts >= (start if start is not None else since.to_pydatetime()))
    if until is not None:
        q = q.where(s.c.ts <= until.to_pydatetime())
    frame = pd.read_sql(q, conn)
    cols = DATABASE_SERIES_COLUMNS
    if frame.empty:
        return pd.DataFrame(columns=cols)
    frame["ts"] = utc_series(frame["ts"])
    counters = ["xact_commit", "xact_rollback", "blks_read", "blks_hit", "deadlocks", "temp_bytes"]
    diffs = counter_diff(frame, ["database"], counters)
    snap = frame[["ts", "database", "interval_s", "size_bytes", "max_connections", "events"]]
    out = diffs.merge(snap, on=["ts", "database"], how="left")
    conns = pd.read_sql(sa.select(s.c.ts, sa.func.sum(a.c.connections).label("connections"))
                        .join(s, s.c.id == a.c.snapshot_id).where(s.c.target_id == target_id)
                        .group_by(s.c.ts), conn)
    conns["ts"] = utc_series(conns["ts"])
    out = out.merge(conns, on="ts", how="left")
    out["commits"] = out["xact_commit"].astype("Int64")
    out["rollbacks"] = out["xact_rollback"].astype("Int64")
    xacts = (out["xact_commit"] + out["xact_rollback"]).astype("Float64")
    out["tps"] = xacts / out["interval_s"]
    out["rollback_pct"] = 100 * out["xact_rollback"] / xacts.where(xacts > 0)
    touched = (out["blks_hit"] + out["blks_read"]).astype("Float64")
    out["cache_hit_pct"] = 100 * out["blks_hit"] / touched.where(touched > 0)
    out["deadlocks"] = out["deadlocks"].astype("Int64")
    out["temp_bytes"] = out["temp_bytes"].astype("Int64")
    out["size_bytes"] = out["size_bytes"].astype("Int64")
    out["connections"] = out["connections"].astype("Int64")
    out["max_connections"] = out["max_connections"].astype("Int64")
    restarted = out["events"].fillna("").str.contains("restart")
    out["complete"] = out["complete"] & ~restarted
    as_live(out, strings=("database", "events"))
    return out[cols].sort_values(["ts", "database"]).reset_index(drop=True)


def table_series(conn, target_id: int, since, until) -> pd.DataFrame:
    """Per snapshot and table: ts, schema, table, total_bytes, n_live_tup, n_dead_tup (sizes skipped
    behind a lock left out), for growth forecasts."""
    snaps = table_snapshots(conn, target_id, until)
    window = snaps[snaps["ts"] > since] if since is not None else snaps
    frame = table_rows(conn, target_id, snaps, window)
    frame = frame[~frame["size_skipped"].astype(bool)]
    frame = frame[["ts", "schema", "table", "total_bytes", "n_live_tup", "n_dead_tup"]]
    frame = frame.sort_values(["ts", "schema", "table"], kind="stable").reset_index(drop=True)
    frame["ts"] = utc_series(frame["ts"]) if len(frame) else pd.Series([], dtype="datetime64[ns, UTC]")
    return as_live(frame, strings=("schema", "table"), ints=("total_bytes", "n_live_tup", "n_dead_tup"))
