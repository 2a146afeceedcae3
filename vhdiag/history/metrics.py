"""Metric history kept in the history store, in the metric frame's shape (ts, metric, value, labels).

Two kinds: what snapshots measured themselves (per snapshot, over all databases of the target:
``db_connections``, ``database_size_bytes``, ``tps``, ``rollback_pct``, ``cache_hit_pct``), and
points imported from files with ``vhdiag metrics import`` (CPU, memory, ... exported from
Railway or any dashboard). Labels carry ``target``, the target's name in the store.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..errors import ConfigError
from ..metrics.frame import labels_json
from . import schema as S
from .store import History

SNAPSHOT_METRICS = ["db_connections", "database_size_bytes", "tps", "rollback_pct", "cache_hit_pct"]


def load_metrics(url: str, since=None, until=None, step=None, queries=None, target: str | None = None) -> pd.DataFrame:
    """Every target's metrics, or only ``target``'s (a name the store does not hold is an error
    naming the ones it does)."""
    wanted = set(queries) if queries else None
    parts = []
    with History(url) as history:
        names = list(history.targets()["name"])
        if target is not None:
            with history.engine.connect() as conn:
                history._target_id(conn, target)
            names = [target]
        for name in names:
            labels = labels_json({"target": name})
            series = history.database_series(since=since, until=until, target=name)
            if len(series):
                parts.append(_snapshot_metrics(series, labels))
            parts.append(_imported(history, name, since, until))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "metric": [], "value": [], "labels": []})
    if wanted is not None:
        frame = frame[frame["metric"].isin(wanted)]
    if step is not None and len(frame):
        frame = (frame.assign(ts=frame["ts"].dt.floor(pd.Timedelta(step)))
                 .groupby(["metric", "labels", "ts"], as_index=False)["value"].mean())
    return frame.reset_index(drop=True)


def _snapshot_metrics(series: pd.DataFrame, labels: str) -> pd.DataFrame:
    per_ts = series.groupby("ts").agg(
        db_connections=("connections", "max"), database_size_bytes=("size_bytes", "sum"),
        tps=("tps", "sum"), commits=("commits", "sum"), rollbacks=("rollbacks", "sum"))
    xacts = (per_ts["commits"] + per_ts["rollbacks"]).astype("Float64")
    per_ts["rollback_pct"] = 100 * per_ts["rollbacks"] / xacts.where(xacts > 0)
    hits = series.assign(hit=series["cache_hit_pct"]).groupby("ts")["hit"].mean()
    per_ts["cache_hit_pct"] = hits
    long = per_ts[SNAPSHOT_METRICS].reset_index().melt(id_vars="ts", var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype("float64")
    long = long.dropna(subset=["value"])
    long["labels"] = labels
    return long[["ts", "metric", "value", "labels"]]


def _imported(history: History, name: str, since, until) -> pd.DataFrame:
    since, until = history._window(since, until)
    p = S.metric_points
    with history.engine.connect() as conn:
        tid = history._target_id(conn, name)
        q = sa.select(p.c.ts, p.c.metric, p.c.value, p.c.labels).where(p.c.target_id == tid)
        if since is not None:
            q = q.where(p.c.ts >= since.to_pydatetime())
        if until is not None:
            q = q.where(p.c.ts <= until.to_pydatetime())
        frame = pd.read_sql(q, conn)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="mixed") if len(frame) else \
        pd.Series([], dtype="datetime64[ns, UTC]")
    frame["labels"] = [labels_json({**json.loads(text or "{}"), "target": name}) for text in frame["labels"]]
    return frame


def import_metrics(url: str | None, frame: pd.DataFrame, target_name: str) -> int:
    """Store a metric frame's points for ``target_name``; points already stored are replaced.

    The frame is checked first, as a file is when loaded (``vhdiag.metrics.files``): every value
    finite, one value per series and time. A frame built by hand gets the same one-line errors."""
    frame = _valid_points(frame)
    with History(url) as history:
        with history._write() as conn, conn.begin():
            tid = history._lock_target(conn, target_name)
            rows = [{"target_id": tid, "metric": m, "labels": l, "ts": t.tz_convert("UTC").to_pydatetime(),
                     "value": float(v)}
                    for t, m, v, l in zip(frame["ts"], frame["metric"], frame["value"], frame["labels"])]
            p = S.metric_points
            # Replace what the store holds for each series over the file's time range, once, then insert.
            for (metric, labels), series in frame.groupby(["metric", "labels"]):
                lo, hi = series["ts"].min().to_pydatetime(), series["ts"].max().to_pydatetime()
                conn.execute(p.delete().where(p.c.target_id == tid, p.c.metric == metric, p.c.labels == labels,
                                              p.c.ts >= lo, p.c.ts <= hi))
            for i in range(0, len(rows), 5000):
                conn.execute(p.insert(), rows[i:i + 5000])
    return len(rows)


def _valid_points(frame) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame) or not {"ts", "metric", "value", "labels"} <= set(frame.columns):
        raise ConfigError("import_metrics() needs a metric frame with columns ts, metric, value, labels: "
                          "get one from vhdiag.metrics.load_metrics()")
    frame = frame.reset_index(drop=True)
    values = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    ts = pd.to_datetime(frame["ts"], utc=True, errors="coerce")
    for bad, problem in ((ts.isna().to_numpy(), "has no time: every point needs one"),
                         (~np.isfinite(values.to_numpy()), "is not a finite number")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            when = "" if pd.isna(ts[i]) else f" at {ts[i].isoformat()}"
            raise ConfigError(f"metric frame row {i + 1}: {frame['metric'][i]} = {frame['value'][i]}{when} {problem}: "
                              f"fix or drop the row (a missing sample is no row)")
    frame = frame.assign(value=values, ts=ts)
    key = ["metric", "labels", "ts"]
    repeated = frame[frame.duplicated(key, keep=False)]
    conflicting = repeated.groupby(key, sort=False)["value"].transform("nunique") > 1
    if conflicting.any():
        rows = repeated[conflicting]
        first = rows.iloc[0]
        other = rows[(rows["metric"] == first["metric"]) & (rows["labels"] == first["labels"])
                     & (rows["ts"] == first["ts"]) & (rows["value"] != first["value"])].iloc[0]
        raise ConfigError(f"metric frame rows {rows.index[0] + 1} and {other.name + 1} give {first['metric']} "
                          f"{first['labels']} at {first['ts'].isoformat()} two values ({first['value']:g} and "
                          f"{other['value']:g}): keep one")
    return frame.drop_duplicates(key, keep="last")
