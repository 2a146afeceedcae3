"""Table and index rows, written only when they change (schema version 4).

A snapshot of 10,000 tables wrote 30,000 rows, most of them the same as the snapshot before
(issue 13 measured that writing only the changed ones roughly halves the store). Now:

- ``table_last`` and ``index_last`` hold each target's last written rows; a snapshot writes the
  rows that differ from them (any stored field), a row marked ``gone`` for each relation no
  longer there, and updates the last rows;
- a table the snapshot did not size (its signature did not move, vhdiag/collect/sizing.py) gets
  its last sizes carried forward (``sizing`` = ``carried``; ``sized`` when measured now);
- the day's full sizing (``snapshots.sizing`` = ``full``) writes every row, so each day has one
  snapshot holding every relation: reads start from it, and retention thins per relation.

``history/reads.py`` turns the rows back into one per snapshot and table (``table_rows``), so
the frames read are those the store gave when every snapshot wrote every row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from . import schema as S
from .values import plain_column

TABLE_SIZES = ["total_bytes", "table_bytes", "index_bytes", "toast_bytes"]


def write_tables(writer, conn, target_id: int, snap_id: int, frame, full: bool) -> int:
    """Write the tables frame of one snapshot; returns the number of rows written."""
    return _write(writer, conn, target_id, snap_id, frame, full, stats=S.table_stats, last=S.table_last,
                  key=["schema", "table"], values=[*S.TABLE_FIELDS, "size_skipped"], sizes=TABLE_SIZES,
                  keep_sig=True)


def write_indexes(writer, conn, target_id: int, snap_id: int, frame, full: bool) -> int:
    """Write the indexes frame of one snapshot; returns the number of rows written."""
    return _write(writer, conn, target_id, snap_id, frame, full, stats=S.index_stats, last=S.index_last,
                  key=["schema", "index"], values=["table", "bytes", "scans"], sizes=["bytes"], keep_sig=False)


def _differs(a: pd.Series, b: pd.Series) -> pd.Series:
    """Row by row: the values differ (NA equals NA only)."""
    a = a.astype(object).where(a.notna(), None).to_numpy()
    b = b.where(b.notna(), None).to_numpy(dtype=object)
    return pd.Series(~(a == b), dtype=bool)


def _write(writer, conn, target_id, snap_id, frame, full, *, stats, last, key, values, sizes, keep_sig) -> int:
    if frame is None:
        return 0
    cur = frame.reset_index(drop=True).copy()
    if "size_skipped" not in cur:
        cur["size_skipped"] = False
    cur["size_skipped"] = cur["size_skipped"].fillna(False).astype(bool)
    # A frame without ``sized`` (collected without a plan, or made by hand) was sized whole.
    sized = cur["sized"].fillna(False).astype(bool) if "sized" in cur else pd.Series(True, index=cur.index)
    sig = cur["sig"].astype(object) if "sig" in cur else pd.Series([None] * len(cur), dtype=object)
    prev = _read_last(conn, last, target_id, key, values, keep_sig)
    # The last rows aligned to the current ones by key (an index lookup, not a merge).
    cur_keys, prev_keys = _keys(cur, key), _keys(prev, key)
    at = pd.Index(prev_keys).get_indexer(cur_keys)
    known = at >= 0
    merged = prev.take(np.where(known, at, 0)).reset_index(drop=True) if len(prev) else \
        pd.DataFrame({c: pd.Series([None] * len(cur), dtype=object) for c in prev.columns})
    if len(prev) and not known.all():
        merged.loc[~known, :] = None
    carry = pd.Series(~sized.to_numpy() & ~cur["size_skipped"].to_numpy() & known)
    if carry.any():
        for c in sizes:
            cur[c] = cur[c].where(~carry, merged[c].astype(cur[c].dtype))
    changed = pd.Series(~known)
    for c in values:
        changed |= _differs(cur[c], merged[c])
    cur["sizing"] = ["skipped" if k else "sized" if z else "carried"
                     for k, z in zip(cur["size_skipped"].to_numpy(), sized.to_numpy())]
    written = cur if full else cur[changed.to_numpy()]
    stored = [*values, "sizing"]
    gone = prev[pd.Index(cur_keys).get_indexer(prev_keys) < 0] if len(prev) else prev
    tomb = pd.DataFrame({**{k: gone[k] for k in key}, "sizing": "gone"})
    if "table" in values and "table" not in key:
        tomb["table"] = gone["table"].to_numpy()
    for c in values:
        if c not in tomb:
            tomb[c] = False if c == "size_skipped" else None
    rows = pd.concat([written[key + stored], tomb[key + stored]], ignore_index=True) if len(tomb) else written[key + stored]
    _insert(writer, conn, stats, rows, key + stored, snapshot_id=snap_id)
    # The last rows: what changed (or whose signature moved) replaces what the store held.
    cur["sig"] = sig.where(~cur["size_skipped"], None) if keep_sig else None
    update = changed.copy()
    if keep_sig:
        update |= _differs(cur["sig"], merged["sig"])
    last_cols = key + values + (["sig"] if keep_sig else [])
    if full:
        conn.execute(last.delete().where(last.c.target_id == target_id))
        replace, drop = cur, []
    else:
        replace = cur[update.to_numpy()]
        drop = list(zip(*(replace[k] for k in key))) + list(zip(*(gone[k] for k in key)))
    if drop:
        conn.execute(last.delete().where(last.c.target_id == target_id, *[last.c[k] == sa.bindparam("k_" + k)
                                                                          for k in key]),
                     [{"k_" + k: v for k, v in zip(key, d)} for d in drop])
    _insert(writer, conn, last, replace, last_cols, target_id=target_id)
    return len(rows)


def _keys(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    """One string per row for the key columns (NUL cannot occur in a PostgreSQL name)."""
    out = frame[key[0]].astype(object).astype(str)
    for k in key[1:]:
        out = out + "\0" + frame[k].astype(object).astype(str)
    return out.to_numpy(dtype=object)


def _read_last(conn, last, target_id, key, values, keep_sig) -> pd.DataFrame:
    cols = key + values + (["sig"] if keep_sig else [])
    # Plain tuples from the driver: SQLAlchemy's Row objects were a third of the write at 30,000 rows.
    query = sa.select(*[last.c[c] for c in cols]).where(last.c.target_id == int(target_id))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})))
        result = cursor.fetchall()
    finally:
        cursor.close()
    data = list(zip(*result)) if result else [()] * len(cols)
    # Object columns of plain Python values: compared as such (_differs), typed only when carried.
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(cols, data)}, columns=cols)


def _insert(writer, conn, table, frame, columns, **const) -> None:
    """Rows of ``frame[columns]`` plus constant columns, in one executemany."""
    if frame is None or not len(frame):
        return
    names = [*const, *columns]
    data = [[v] * len(frame) for v in const.values()] + [plain_column(frame[c]) for c in columns]
    if writer.is_sqlite:
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in names)}) "
                             f"VALUES ({', '.join('?' * len(names))})", list(zip(*data)))
        return
    conn.execute(table.insert(), [dict(zip(names, row)) for row in zip(*data)])


def size_plan(conn, name: str, now: pd.Timestamp):
    """What the next snapshot of target ``name`` sizes (vhdiag/collect/sizing.py): every table
    when no full sizing was recorded yet this UTC day, else those whose signature moved."""
    from ..collect.sizing import SizePlan
    tid = conn.execute(sa.select(S.targets.c.id).where(S.targets.c.name == name)).scalar()
    if tid is None:
        return SizePlan(full=True)
    s, t = S.snapshots, S.table_last
    last_full = conn.execute(sa.select(sa.func.max(s.c.ts)).where(s.c.target_id == tid, s.c.sizing == "full")).scalar()
    if last_full is None:
        return SizePlan(full=True)
    last_full = pd.Timestamp(last_full)
    last_full = last_full.tz_localize("UTC") if last_full.tzinfo is None else last_full.tz_convert("UTC")
    if last_full.floor("D") < now.tz_convert("UTC").floor("D"):
        return SizePlan(full=True)
    known = {(a, b): g for a, b, g in conn.execute(
        sa.select(t.c.schema, t.c.table, t.c.sig).where(t.c.target_id == tid, t.c.sig.isnot(None)))}
    return SizePlan(full=False, known=known)
