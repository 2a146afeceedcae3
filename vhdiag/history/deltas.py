"""Cumulative counters to per-interval deltas, without ever resetting anything.

pg_stat_statements and the statistics views count since their last reset. vhdiag never resets
pg_stat_statements (a reset would break every other consumer of the view, and managed
hosts often forbid it): it diffs consecutive snapshots instead, and says when a diff cannot be
trusted. A delta is never negative. Each delta row carries:

- ``complete``: the numbers are exactly what happened in the interval;
- ``note``: why not, or what else happened: ``new`` (first seen in this interval, counted from
  zero), ``reset`` (someone reset pg_stat_statements: counted since the reset, what came before it
  in the interval is lost), ``evicted`` (the entry was deallocated and re-created: stats_since
  moved, PostgreSQL 17+, or counters went down), ``dealloc`` (entries were evicted in the
  interval, pg_stat_statements_info.dealloc rose, and before 17 we cannot tell which: any diff
  may miss calls), ``restart`` (the server restarted), ``upgrade`` (major version changed: queryids
  changed), ``gap`` (the interval is much longer than usual: a snapshot is missing; the numbers
  are exact but cover a longer time).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import STATEMENT_COUNTERS

KEY = ["userid", "dbid", "queryid", "toplevel"]

# Interval events that make "counted since zero" the only honest reading of every statement.
RESTARTING_EVENTS = ("reset", "upgrade")


def add_sumsq(frame: pd.DataFrame) -> pd.DataFrame:
    """The cumulative sum of squares of execution times, from pgss' population stddev and mean."""
    calls = frame["calls"].astype("Float64")
    mean = frame["mean_exec_ms"].astype("Float64")
    std = frame["stddev_exec_ms"].astype("Float64")
    out = frame.copy()
    out["sumsq_exec_ms2"] = calls * (std * std + mean * mean)
    return out


def detect_events(prev: dict | None, cur: dict, recent_intervals_s: list[float]) -> list[str]:
    """What happened between two snapshots, from their header rows (dicts)."""
    if prev is None:
        return ["baseline"]
    events = []
    if cur.get("server_version_num") and prev.get("server_version_num") and \
            cur["server_version_num"] // 10000 != prev["server_version_num"] // 10000:
        events.append("upgrade")
    if _differs(cur.get("postmaster_start"), prev.get("postmaster_start")):
        events.append("restart")
    if _differs(cur.get("pgss_stats_reset"), prev.get("pgss_stats_reset")):
        events.append("reset")
    # What the role may see changed (a GRANT pg_read_all_stats), or the extension was updated
    # (1.9 split nested statements into toplevel=false keys): statements that were there all
    # along appear as new keys. Their counters are history, not this interval: a new baseline.
    if prev.get("reads_all_stats") is not None and cur.get("reads_all_stats") is not None and \
            bool(prev["reads_all_stats"]) != bool(cur["reads_all_stats"]):
        events.append("visibility")
    if prev.get("pgss_version") and cur.get("pgss_version") and prev["pgss_version"] != cur["pgss_version"]:
        events.append("extension_update")
    if cur.get("pgss_dealloc") is not None and prev.get("pgss_dealloc") is not None and \
            cur["pgss_dealloc"] > prev["pgss_dealloc"]:
        events.append("dealloc")
    interval = cur.get("interval_s")
    if interval and len(recent_intervals_s) >= 3 and interval > 2.5 * float(np.median(recent_intervals_s)):
        events.append("gap")
    return events


def _differs(a, b) -> bool:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return False
    return _as_utc(a) != _as_utc(b)


def _as_utc(value) -> pd.Timestamp:
    """Stores hand back naive UTC (SQLite) or aware timestamps; compare them as aware UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# Events after which this interval's statement counters start a new baseline: no deltas.
BASELINE_EVENTS = ("baseline", "visibility", "extension_update")


def statement_deltas(prev: pd.DataFrame, cur: pd.DataFrame, events: list[str],
                     prev_ts: pd.Timestamp | None = None) -> pd.DataFrame:
    """Deltas for the statements whose counters changed since ``prev``.

    ``prev``: the last cumulative values we stored (KEY, STATEMENT_COUNTERS, stats_since).
    ``cur``: the collector's frame with sumsq added. Returns KEY + STATEMENT_COUNTERS +
    complete + note, only for statements that changed; on a baseline, nothing.
    """
    if any(e in events for e in BASELINE_EVENTS):
        return pd.DataFrame(columns=KEY + STATEMENT_COUNTERS + ["complete", "note"])
    merged = cur.merge(prev, on=KEY, how="left", suffixes=("", "_prev"), indicator=True)
    has_prev = (merged.pop("_merge") == "both").to_numpy()
    if prev_ts is not None:
        # A key we never saw whose entry is older than the previous snapshot (stats_since, 17+)
        # was there all along, unseen: its counters are history. It becomes known, not counted.
        since_all = pd.to_datetime(merged["stats_since"], utc=True)
        existed = (~has_prev) & (since_all <= prev_ts).fillna(False).to_numpy(dtype=bool)
        merged = merged[~existed].reset_index(drop=True)
        has_prev = has_prev[~existed]

    def col(name, suffix=""):
        return merged[name + suffix].astype("Float64")

    changed = ~has_prev
    for c in ("calls", "plans", "total_exec_ms", "rows"):
        changed = changed | (col(c).fillna(-1) != col(c, "_prev").fillna(-1)).to_numpy(dtype=bool)
    went_down = np.zeros(len(merged), dtype=bool)
    for c in ("calls", "total_exec_ms", "rows"):
        went_down |= (col(c) < col(c, "_prev")).fillna(False).to_numpy(dtype=bool)
    went_down &= has_prev
    since, since_prev = merged["stats_since"], merged["stats_since_prev"]
    recreated = has_prev & (since.notna() & since_prev.notna()).to_numpy() & \
        (pd.to_datetime(since, utc=True) > pd.to_datetime(since_prev, utc=True)).fillna(False).to_numpy(dtype=bool)
    has_since = since.notna().to_numpy()

    from_zero = ~has_prev | went_down | recreated
    if any(e in events for e in RESTARTING_EVENTS):
        from_zero = np.ones(len(merged), dtype=bool)

    out = merged.loc[changed, KEY].copy()
    for c in STATEMENT_COUNTERS:
        now, before = col(c)[changed], col(c, "_prev")[changed]
        delta = now.where(pd.Series(from_zero[changed], index=now.index), now - before)
        out[c] = delta.clip(lower=0)

    notes, complete = [], []
    dealloc = "dealloc" in events
    for hp, wd, rc, hs in zip(has_prev[changed], went_down[changed], recreated[changed], has_since[changed]):
        if "upgrade" in events:
            note, ok = "upgrade", False
        elif "reset" in events:
            note, ok = ("reset", False) if hp else ("new", False)
        elif not hp:
            note, ok = "new", not dealloc
        elif rc or wd:
            note, ok = ("restart" if "restart" in events and not rc else "evicted"), False
        elif dealloc and not hs:
            note, ok = "dealloc", False
        else:
            note, ok = "", True
        if "gap" in events:
            note = f"{note},gap" if note else "gap"
        notes.append(note)
        complete.append(ok)
    out["complete"] = complete
    out["note"] = notes
    return out.reset_index(drop=True)


def counter_diff(frame: pd.DataFrame, keys: list[str], counters: list[str], ts: str = "ts") -> pd.DataFrame:
    """Per-interval differences of cumulative counters within each key, in time order.

    A counter that went down (a stats reset or restart) gives its new value, the count since
    the reset, and ``complete`` False for that row; the first row of each key has no delta.
    """
    frame = frame.sort_values(keys + [ts])
    grouped = frame.groupby(keys, sort=False, dropna=False)
    out = frame[keys + [ts]].copy()
    complete = pd.Series(True, index=frame.index)
    for c in counters:
        cur = frame[c].astype("Float64")
        prev = grouped[c].shift(1).astype("Float64")
        down = (cur < prev).fillna(False)
        out[c] = (cur - prev).where(~down, cur)
        complete &= ~down
    out["complete"] = complete
    first = grouped.cumcount() == 0
    return out[~first].reset_index(drop=True)
