"""Table rows per snapshot, from a store that writes only the rows that changed (history/sparse.py).

A table's state at a snapshot is its last row at or before it, until one of three things ends it:
a later row, a ``gone`` row (dropped), or a *dense* snapshot that has no row for it (a full
sizing, ``snapshots.sizing`` = ``full``, and every snapshot written before schema version 4,
write a row for every table there is). ``table_rows`` expands the stored rows to one per
snapshot and table over a window, exactly the rows the store held when every snapshot wrote every
row, so table growth and the series read the same as before (with sizes carried forward
between the daily full sizings). It reads from the last dense snapshot at or before the window's
start: every table there is has a row there or after it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from . import schema as S

KEY = ["schema", "table"]
FIELDS = [*S.TABLE_FIELDS, "size_skipped"]


def _ns(series: pd.Series) -> np.ndarray:
    return series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)


def table_snapshots(conn, target_id: int, until) -> pd.DataFrame:
    """The target's snapshots that collected tables (ts <= until): id, ts, dense."""
    from .reads import utc_series
    s, t = S.snapshots, S.table_stats
    has_rows = sa.exists().where(t.c.snapshot_id == s.c.id)
    q = sa.select(s.c.id, s.c.ts, s.c.sizing, has_rows.label("has_rows")).where(s.c.target_id == target_id)
    if until is not None:
        q = q.where(s.c.ts <= until.to_pydatetime())
    snaps = pd.read_sql(q.order_by(s.c.ts), conn)
    snaps["ts"] = utc_series(snaps["ts"])
    has = snaps["has_rows"].astype(bool)
    snaps["dense"] = (snaps["sizing"] == "full") | (snaps["sizing"].isna() & has)
    return snaps[snaps["sizing"].notna() | has].reset_index(drop=True)


def table_rows(conn, target_id: int, snaps: pd.DataFrame, window: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot of ``window`` (a slice of ``table_snapshots``) and table present at it:
    ts, schema, table, TABLE_FIELDS, size_skipped."""
    from .reads import utc_series
    t, s = S.table_stats, S.snapshots
    cols = ["ts", *KEY, *FIELDS]
    if window.empty:
        return pd.DataFrame(columns=cols)
    first, last = window["ts"].iloc[0], window["ts"].iloc[-1]
    dense = snaps[snaps["dense"]]
    anchor = dense[dense["ts"] <= first]["ts"].max() if len(dense) else None
    base = sa.select(s.c.ts, t.c.schema, t.c.table).join(s, s.c.id == t.c.snapshot_id) \
        .where(s.c.target_id == target_id, s.c.ts <= last.to_pydatetime())
    if anchor is not None and pd.notna(anchor):
        base = base.where(s.c.ts >= anchor.to_pydatetime())
    gone = sa.or_(t.c.sizing.is_(None), t.c.sizing != "gone")
    rows = pd.read_sql(base.add_columns(*[t.c[c] for c in FIELDS]).where(gone), conn)
    tombs = pd.read_sql(base.where(t.c.sizing == "gone"), conn)
    if rows.empty:
        return pd.DataFrame(columns=cols)
    rows["ts"], tombs["ts"] = utc_series(rows["ts"]), utc_series(tombs["ts"])
    rows = rows.sort_values([*KEY, "ts"], kind="stable").reset_index(drop=True)
    r_ts = _ns(rows["ts"])
    # Each row holds until the table's next row or tombstone, or the next dense snapshot.
    marks = pd.concat([rows[[*KEY, "ts"]].assign(_row=np.arange(len(rows))),
                       tombs[[*KEY, "ts"]].assign(_row=-1)], ignore_index=True)
    marks = marks.sort_values([*KEY, "ts", "_row"], kind="stable")
    nxt = marks.groupby(KEY, sort=False)["ts"].shift(-1)
    marks = marks.assign(_next=nxt)
    marks = marks[marks["_row"] >= 0].set_index("_row").sort_index()
    end = np.full(len(rows), np.iinfo(np.int64).max, dtype=np.int64)
    has_next = marks["_next"].notna().to_numpy()
    end[has_next] = _ns(marks["_next"][has_next])
    dense_ts = _ns(dense["ts"]) if len(dense) else np.array([], dtype=np.int64)
    k = np.searchsorted(dense_ts, r_ts, side="right")
    next_dense = np.where(k < len(dense_ts), dense_ts[np.minimum(k, max(len(dense_ts) - 1, 0))] if len(dense_ts)
                          else 0, np.iinfo(np.int64).max)
    end = np.minimum(end, next_dense)
    w_ts = _ns(window["ts"])
    lo = np.searchsorted(w_ts, r_ts, side="left")
    hi = np.searchsorted(w_ts, end, side="left")
    count = np.clip(hi - lo, 0, None)
    pick = np.repeat(np.arange(len(rows)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    out = rows.iloc[pick].reset_index(drop=True)
    out["ts"] = window["ts"].iloc[np.repeat(lo, count) + offset].reset_index(drop=True)
    return out[cols]
