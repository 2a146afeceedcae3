"""Slow queries: which statements burn the time, which got worse, and what to do about each.

Pure functions over the frames of ``History.statements()`` (deltas over a window) or, when there
is no history yet, ``Target.statements()`` (cumulative since the last reset; see
``from_cumulative``). Thresholds are arguments; their defaults come from the runbook:

- slow: mean execution time over ``slow_ms`` = 1000 ms (runbook 6 "Query Optimization":
  ``WHERE mean_exec_time > 1000``); critical over 5000 ms (runbook "Critical Thresholds":
  response time > 5 s);
- the rankings of runbook 2: ``ORDER BY total_exec_time DESC`` (High CPU Usage; the runbook
  writes ``total_time``, the column's name before PostgreSQL 13) and
  ``ORDER BY mean_exec_time DESC`` (Slow Queries), plus calls, blocks read and temp usage;
- the runbook's remedies, in its words: "Add database indexes", "Optimize query logic", "Cache
  query results", "Archive old data".

Totals and shares count top-level statements only: with ``pg_stat_statements.track = all`` a
statement run inside a function is counted in the function's call too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import query_text

KEY = ["queryid", "userid", "dbid", "toplevel"]

RANK_COLUMNS = ["queryid", "user", "database", "calls", "total_exec_ms", "share_pct", "mean_exec_ms",
                "stddev_exec_ms", "rows_per_call", "cache_hit_pct", "shared_blks_read", "temp_blks",
                "complete", "notes", "query"]

# name -> (column, title); runbook 2 gives the first two.
RANKINGS = {
    "total_time": ("total_exec_ms", "by total time (runbook 2, High CPU Usage: ORDER BY total_exec_time DESC; "
                                    "total_time before PostgreSQL 13)"),
    "mean_time": ("mean_exec_ms", "by mean time (runbook 2, Slow Queries: ORDER BY mean_exec_time DESC)"),
    "calls": ("calls", "by calls"),
    "shared_blks_read": ("shared_blks_read", "by shared blocks read (from disk or the OS cache)"),
    "temp": ("temp_blks", "by temp blocks (sorts and hashes that spilled to disk)"),
}

# Runbook 2 "Slow Queries" / "High CPU Usage" solutions, quoted.
RUNBOOK = {
    "index": "Add database indexes",
    "optimize": "Optimize query logic",
    "cache": "Cache query results",
    "archive": "Archive old data",
}


# -- preparing frames -------------------------------------------------------------------------
def from_cumulative(statements: pd.DataFrame) -> pd.DataFrame:
    """``Target.statements()`` (since the last reset) in the shape of ``History.statements()``."""
    out = statements[~statements["query_hidden"].fillna(False).astype(bool)].copy()
    out = out[out["queryid"].notna()]
    calls = out["calls"].astype("Float64")
    nz = calls.where(calls > 0)
    out["rows_per_call"] = out["rows"].astype("Float64") / nz
    touched = (out["shared_blks_hit"] + out["shared_blks_read"]).astype("Float64")
    out["cache_hit_pct"] = 100 * out["shared_blks_hit"].astype("Float64") / touched.where(touched > 0)
    out["complete"] = True
    out["notes"] = ""
    return out.reset_index(drop=True)


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``temp_blks``, ``share_pct`` (of top-level time) and ``calls_share_pct``; tidy types."""
    out = frame.copy()
    for c in ("calls", "total_exec_ms", "mean_exec_ms", "stddev_exec_ms", "rows_per_call", "cache_hit_pct",
              "shared_blks_read", "temp_blks_read", "temp_blks_written"):
        out[c] = pd.to_numeric(out[c]).astype("Float64")
    out["toplevel"] = out["toplevel"].astype("boolean").fillna(True).astype(bool)
    out["temp_blks"] = out["temp_blks_read"].fillna(0) + out["temp_blks_written"].fillna(0)
    top = out[out["toplevel"]]
    total, calls = top["total_exec_ms"].sum(), top["calls"].sum()
    out["share_pct"] = 100 * out["total_exec_ms"] / total if total > 0 else pd.NA
    out["calls_share_pct"] = 100 * out["calls"] / calls if calls > 0 else pd.NA
    out["share_pct"] = out["share_pct"].astype("Float64")
    out["calls_share_pct"] = out["calls_share_pct"].astype("Float64")
    out["complete"] = out["complete"].astype("boolean").fillna(True).astype(bool)
    out["notes"] = out["notes"].astype("string").fillna("")
    out["query"] = out["query"].astype("string")
    return out.sort_values("total_exec_ms", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def exclude_own(frame: pd.DataFrame, monitoring_user: str | None = None,
                exclude_roles=()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, excluded): vhdiag's own monitoring statements (``query_text.is_own``) and every
    statement of ``exclude_roles`` go to excluded."""
    roles = {r.strip() for r in (exclude_roles.split(",") if isinstance(exclude_roles, str) else exclude_roles)
             if r and r.strip()}
    own = np.array([query_text.is_own(q, u, monitoring_user) or (u in roles)
                    for q, u in zip(frame["query"], frame["user"])], dtype=bool)
    return frame[~own].reset_index(drop=True), frame[own].reset_index(drop=True)


# -- rankings ---------------------------------------------------------------------------------
def top_by(frame: pd.DataFrame, ranking: str, n: int = 10) -> pd.DataFrame:
    """The ``n`` statements first by one of ``RANKINGS``, with the columns every ranking shows."""
    column = RANKINGS[ranking][0]
    ranked = frame[frame[column].fillna(0) > 0].sort_values(column, ascending=False, kind="stable")
    return ranked.head(n)[RANK_COLUMNS].reset_index(drop=True)


def slow(frame: pd.DataFrame, slow_ms: float = 1000.0) -> pd.DataFrame:
    """Every statement whose mean execution time is over ``slow_ms`` (runbook: > 1000 ms), slowest first."""
    hit = frame[frame["mean_exec_ms"].fillna(0) > slow_ms]
    return hit.sort_values("mean_exec_ms", ascending=False, kind="stable")[RANK_COLUMNS].reset_index(drop=True)


def frequent(frame: pd.DataFrame, share_pct: float = 20.0, min_calls: int = 1000,
             slow_ms: float = 1000.0) -> pd.DataFrame:
    """Cheap statements called so often that they make ``share_pct`` of all calls: cache candidates."""
    hit = frame[(frame["calls_share_pct"].fillna(0) >= share_pct) & (frame["calls"].fillna(0) >= min_calls)
                & (frame["mean_exec_ms"].fillna(0) <= slow_ms) & frame["toplevel"]]
    return hit.sort_values("calls", ascending=False, kind="stable")[RANK_COLUMNS + ["calls_share_pct"]] \
        .reset_index(drop=True)


def headline(window: pd.DataFrame, baseline: pd.DataFrame | None = None, *, top: int = 5,
             window_s: float | None = None, baseline_s: float | None = None) -> dict:
    """Total DB time and calls, the share of the ``top`` statements, and the change on the baseline
    (per hour when the two periods differ in length)."""
    top_rows = window[window["toplevel"]]
    total = float(top_rows["total_exec_ms"].sum())
    first = top_rows.sort_values("total_exec_ms", ascending=False).head(top)
    out = {"total_exec_ms": total, "calls": int(top_rows["calls"].sum()), "statements": int(len(window)),
           "top": int(len(first)), "top_share_pct": 100 * float(first["total_exec_ms"].sum()) / total if total else None,
           "incomplete": int((~window["complete"]).sum()), "baseline_total_exec_ms": None,
           "baseline_calls": None, "total_change_pct": None, "calls_change_pct": None}
    if baseline is not None and len(baseline):
        b = baseline[baseline["toplevel"]]
        out["baseline_total_exec_ms"] = float(b["total_exec_ms"].sum())
        out["baseline_calls"] = int(b["calls"].sum())
        scale = (window_s / baseline_s) if window_s and baseline_s else 1.0
        for key, now, before in (("total_change_pct", total, out["baseline_total_exec_ms"]),
                                 ("calls_change_pct", out["calls"], out["baseline_calls"])):
            out[key] = 100 * (now / (before * scale) - 1) if before else None
    return out


# -- against the baseline ---------------------------------------------------------------------
REGRESSION_COLUMNS = ["queryid", "user", "database", "why", "calls_before", "calls", "mean_before_ms",
                      "mean_exec_ms", "mean_ratio", "total_before_ms", "total_exec_ms", "total_ratio",
                      "extra_ms", "complete", "notes", "query"]


def regressions(window: pd.DataFrame, baseline: pd.DataFrame, *, ratio: float = 2.0, floor_ms: float = 10.0,
                share_pct: float = 5.0, window_s: float | None = None, baseline_s: float | None = None) -> pd.DataFrame:
    """Statements that got worse than in the baseline.

    - by mean: the mean is at least ``ratio`` times the baseline's AND at least ``floor_ms``
      slower, so that microsecond jitter (0.01 -> 0.03 ms is 3x) never counts;
    - by total: total time (scaled to the window's length) is at least ``ratio`` times the
      baseline's AND the extra time is at least ``share_pct`` of the window's DB time (and
      ``floor_ms``): more calls of a cheap query only count when they matter.
    """
    base = baseline[KEY + ["calls", "total_exec_ms", "mean_exec_ms"]].rename(columns={
        "calls": "calls_before", "total_exec_ms": "total_before_ms", "mean_exec_ms": "mean_before_ms"})
    m = window.merge(base, on=KEY, how="inner")
    m = m[(m["calls"].fillna(0) > 0) & (m["calls_before"].fillna(0) > 0)].copy()
    scale = (window_s / baseline_s) if window_s and baseline_s else 1.0
    before_mean = m["mean_before_ms"].astype("Float64")
    m["mean_ratio"] = (m["mean_exec_ms"] / before_mean.where(before_mean > 0)).fillna(np.inf)
    expected = m["total_before_ms"].astype("Float64") * scale
    m["total_ratio"] = (m["total_exec_ms"] / expected.where(expected > 0)).fillna(np.inf)
    m["extra_ms"] = m["total_exec_ms"] - expected
    db_time = float(window.loc[window["toplevel"], "total_exec_ms"].sum())
    by_mean = (m["mean_ratio"] >= ratio) & (m["mean_exec_ms"] - m["mean_before_ms"] >= floor_ms)
    by_total = (m["total_ratio"] >= ratio) & (m["extra_ms"] >= max(floor_ms, share_pct / 100 * db_time))
    m["why"] = np.where(by_mean & by_total, "mean,total", np.where(by_mean, "mean", "total"))
    hit = m[(by_mean | by_total).fillna(False).astype(bool)]
    return hit.sort_values("extra_ms", ascending=False, kind="stable")[REGRESSION_COLUMNS].reset_index(drop=True)


def new_queries(window: pd.DataFrame, baseline: pd.DataFrame, *, share_pct: float = 5.0) -> pd.DataFrame:
    """Statements of the window the baseline never saw, with ``significant`` when they make at
    least ``share_pct`` of the window's DB time."""
    seen = baseline[KEY].drop_duplicates()
    m = window.merge(seen, on=KEY, how="left", indicator=True)
    new = m[m["_merge"] == "left_only"].drop(columns="_merge")
    new = new.assign(significant=(new["share_pct"].fillna(0) >= share_pct).astype(bool))
    return new.sort_values("total_exec_ms", ascending=False, kind="stable")[RANK_COLUMNS + ["significant"]] \
        .reset_index(drop=True)


# -- index advice -----------------------------------------------------------------------------
SEQ_COLUMNS = ["schema", "table", "seq_scan", "seq_tup_read", "rows_per_seq_scan", "n_live_tup",
               "total_bytes", "idx_scan"]


def seq_scan_tables(tables: pd.DataFrame, min_rows: int = 10_000) -> pd.DataFrame:
    """Tables whose sequential scans read at least ``min_rows`` rows each on average, most rows first
    (``Target.tables()``: counters since the last statistics reset)."""
    t = tables[tables["seq_scan"].fillna(0) > 0].copy()
    t["rows_per_seq_scan"] = t["seq_tup_read"].astype("Float64") / t["seq_scan"].astype("Float64")
    t = t[t["rows_per_seq_scan"] >= min_rows]
    return t.sort_values("seq_tup_read", ascending=False, kind="stable")[SEQ_COLUMNS].reset_index(drop=True)


ADVICE_COLUMNS = ["schema", "table", "columns", "suggestion", "queryid", "user", "database", "total_exec_ms",
                  "share_pct", "seq_scan", "seq_tup_read", "total_bytes", "query"]


def index_advice(top: pd.DataFrame, heavy: pd.DataFrame, indexes: pd.DataFrame,
                 tables: pd.DataFrame | None = None) -> pd.DataFrame:
    """For each top statement reading a table with heavy sequential scans through predicates no
    valid index leads with: a ``CREATE INDEX CONCURRENTLY`` on the predicate columns (equality
    columns first, then one range column). One row per suggested index, for its costliest query."""
    known = tables if tables is not None else heavy
    heavy_keys = {(s, t): row for s, t, row in zip(heavy["schema"], heavy["table"], heavy.to_dict("records"))}
    leading: dict = {}
    for s, t, cols, valid in zip(indexes["schema"], indexes["table"], indexes["columns"], indexes["valid"]):
        if isinstance(cols, str) and cols and bool(valid):
            leading.setdefault((s, t), set()).add(cols.split(",")[0].strip().strip('"'))
    rows, seen = [], set()
    for rec in top.to_dict("records"):
        if query_text.sleeps(rec["query"]):  # its time is pg_sleep's: an index would not be why it is slow
            continue
        parsed = query_text.shape(rec["query"]) if isinstance(rec["query"], str) else None
        if parsed is None:
            continue
        for ref in parsed.tables:
            key = _resolve_table(ref, known)
            if key not in heavy_keys:
                continue
            cols = parsed.index_columns(ref)
            if not cols:
                continue
            eq = set(parsed.equality.get(ref, [])) or {cols[0]}
            if eq & leading.get(key, set()) or (key, tuple(cols)) in seen or (key, rec["queryid"]) in seen:
                continue
            seen.update({(key, tuple(cols)), (key, rec["queryid"])})
            q = query_text.quote_ident
            sql = f"CREATE INDEX CONCURRENTLY ON {q(key[0])}.{q(key[1])} ({', '.join(q(c) for c in cols)});"
            t = heavy_keys[key]
            rows.append({"schema": key[0], "table": key[1], "columns": ", ".join(cols), "suggestion": sql,
                         "queryid": rec["queryid"], "user": rec["user"], "database": rec["database"],
                         "total_exec_ms": rec["total_exec_ms"], "share_pct": rec["share_pct"],
                         "seq_scan": t["seq_scan"], "seq_tup_read": t["seq_tup_read"],
                         "total_bytes": t["total_bytes"], "query": rec["query"], "_cols": tuple(cols)})
    # An index on (a) is a prefix of one on (a, b), which serves both statements: suggest one.
    rows = [r for r in rows if not any(o is not r and (o["schema"], o["table"]) == (r["schema"], r["table"])
                                       and len(o["_cols"]) > len(r["_cols"]) and o["_cols"][:len(r["_cols"])] == r["_cols"]
                                       for o in rows)]
    return pd.DataFrame(rows, columns=ADVICE_COLUMNS)


def _resolve_table(ref: tuple, tables: pd.DataFrame):
    schema, name = ref
    if schema is not None:
        return (schema, name)
    schemas = list(tables.loc[tables["table"] == name, "schema"])
    if not schemas:
        return None
    return ("public" if "public" in schemas else schemas[0], name)


# -- completeness -----------------------------------------------------------------------------
def completeness(window: pd.DataFrame, snapshots: pd.DataFrame, since=None, until=None) -> dict:
    """What makes the window's figures less than exact, and when: ``events`` (snapshots whose
    interval saw a reset, restart, eviction, gap or upgrade, with collector notes), ``statements``
    (rows with ``complete`` false and their notes) and ``messages`` (coverage of the window)."""
    from ..timeparse import parse_time
    snaps = snapshots.copy()
    since = parse_time(since) if since is not None else None
    until = parse_time(until) if until is not None else None
    if since is not None and len(snaps):
        snaps = snaps[snaps["ts"] > since]
    if until is not None and len(snaps):
        snaps = snaps[snaps["ts"] <= until]
    ev = snaps["events"].fillna("").str.replace("baseline", "").str.strip(",") if len(snaps) else pd.Series(dtype=str)
    notes = snaps["notes"].fillna("") if len(snaps) else pd.Series(dtype=str)
    events = snaps.loc[(ev != "") | (notes != ""), ["ts", "interval_s", "events", "notes"]] if len(snaps) else \
        pd.DataFrame(columns=["ts", "interval_s", "events", "notes"])
    incomplete = window[~window["complete"]][RANK_COLUMNS].reset_index(drop=True)
    messages = []
    if not len(snaps):
        messages.append("no snapshot falls in this window")
    else:
        first, last = snaps["ts"].min(), snaps["ts"].max()
        usual = float(snaps["interval_s"].median()) if snaps["interval_s"].notna().any() else None
        start = first - pd.Timedelta(seconds=float(snaps["interval_s"].iloc[0])) \
            if pd.notna(snaps["interval_s"].iloc[0]) else first
        if since is not None and usual and start - since > pd.Timedelta(seconds=1.5 * usual):
            messages.append(f"the window starts {_fmt_ts(since)} but the first interval in it starts {_fmt_ts(start)}")
        if until is not None and usual and until - last > pd.Timedelta(seconds=1.5 * usual):
            messages.append(f"the last snapshot in the window is {_fmt_ts(last)}, before its end {_fmt_ts(until)}")
    return {"events": events.reset_index(drop=True), "statements": incomplete, "messages": messages}


def _fmt_ts(ts) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


def per_interval(series: pd.DataFrame) -> pd.DataFrame:
    """``History.statement_series()`` summed over users and databases: one row per interval with
    calls, total and mean time, and ``complete`` only when every part was."""
    if series.empty:
        return pd.DataFrame(columns=["ts", "interval_s", "calls", "total_exec_ms", "mean_exec_ms", "complete"])
    g = series.groupby("ts", as_index=False).agg(interval_s=("interval_s", "max"), calls=("calls", "sum"),
                                                  total_exec_ms=("total_exec_ms", "sum"), complete=("complete", "all"))
    calls = g["calls"].astype("Float64")
    g["mean_exec_ms"] = g["total_exec_ms"].astype("Float64") / calls.where(calls > 0)
    return g.sort_values("ts").reset_index(drop=True)
