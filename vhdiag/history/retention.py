"""Retention: raw snapshots for ``raw_days`` (14), roll-ups for ``rollup_days`` (400).

What a pruned snapshot leaves behind:
- statement deltas are summed into ``statement_hourly`` (per statement and UTC hour; the
  completeness flag is the AND of the intervals, notes the union); per hour, the top
  ``keep_top`` (200) statements by time and by calls keep rows of their own, the rest are folded
  into one "(other statements)" row, so totals stay exact and a year stays small;
- cumulative and gauge rows are thinned, not summed: database stats and connection counts keep
  the last snapshot of each hour, table and index stats each relation's last row of each day,
  moved to the day's last snapshot (table growth is a daily question; hourly rows for 1,000
  tables would be most of a year's store);
- the events of dropped snapshots (reset, restart, ...) move to the snapshot kept after them,
  and kept snapshots get their interval to the previous kept one, so rates stay right.
"""
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from . import schema as S
from . import sums

CHUNK = 500


def _in_chunks(conn, stmt_factory, ids):
    ids = [int(i) for i in ids]
    for i in range(0, len(ids), CHUNK):
        conn.execute(stmt_factory(ids[i:i + CHUNK]))


def prune(conn, *, raw_days: float, rollup_days: float, now: pd.Timestamp, keep_top: int = 200) -> dict:
    cutoff = (now - pd.Timedelta(days=raw_days)).floor("h")
    horizon = now - pd.Timedelta(days=rollup_days)
    s = S.snapshots
    sums.forget(conn, max(cutoff, horizon))   # before the raw deltas they summed go
    old = pd.read_sql(sa.select(s.c.id, s.c.target_id, s.c.ts, s.c.events)
                      .where(s.c.ts < cutoff.to_pydatetime()), conn)
    result = {"rolled_up_snapshots": 0, "hourly_rows": 0, "deleted_snapshots": 0, "expired_snapshots": 0}
    if len(old):
        old["ts"] = pd.to_datetime(old["ts"], utc=True, format="mixed")
        old["hour"] = old["ts"].dt.floor("h")
        old["day"] = old["ts"].dt.floor("D")
        result["hourly_rows"] = _roll_up_statements(conn, old, keep_top)
        # Which raw snapshots already went through a previous prune (they have no deltas left and
        # are the kept last-of-hour ones) does not matter: thinning is idempotent.
        old = old.sort_values("ts")
        last_of_hour = set(old.groupby(["target_id", "hour"])["id"].last())
        last_of_day = set(old.groupby(["target_id", "day"])["id"].last())
        drop_hourly = [i for i in old["id"] if i not in last_of_hour]
        for table in (S.database_stats, S.activity_counts, *S.SNAPSHOT_TABLES):
            _in_chunks(conn, lambda ids, t=table: t.delete().where(t.c.snapshot_id.in_(ids)), drop_hourly)
        for table, key in ((S.table_stats, ["schema", "table"]), (S.index_stats, ["schema", "index"])):
            _thin_daily(conn, table, key, old, last_of_day)
        _carry_events(conn, old, last_of_hour)
        _in_chunks(conn, lambda ids: s.delete().where(s.c.id.in_(ids)), drop_hourly)
        result["rolled_up_snapshots"] = len(old)
        result["deleted_snapshots"] = len(drop_hourly)
        _fix_intervals(conn, old["target_id"].unique())
    # Past the roll-up horizon nothing is kept.
    expired = [r[0] for r in conn.execute(sa.select(s.c.id).where(s.c.ts < horizon.to_pydatetime()))]
    for table in (S.database_stats, S.activity_counts, *S.SNAPSHOT_TABLES, S.table_stats, S.index_stats,
                  S.statement_deltas):
        _in_chunks(conn, lambda ids, t=table: t.delete().where(t.c.snapshot_id.in_(ids)), expired)
    _in_chunks(conn, lambda ids: s.delete().where(s.c.id.in_(ids)), expired)
    conn.execute(S.statement_hourly.delete().where(S.statement_hourly.c.hour < horizon.to_pydatetime()))
    conn.execute(S.check_results.delete().where(S.check_results.c.ts < horizon.to_pydatetime()))
    result["expired_snapshots"] = len(expired)
    # Statement texts nothing refers to any more.
    st = S.statements
    conn.execute(st.delete().where(
        ~sa.exists().where(S.statement_deltas.c.statement_id == st.c.id),
        ~sa.exists().where(S.statement_hourly.c.statement_id == st.c.id),
        ~sa.exists().where(S.statement_last.c.statement_id == st.c.id),
        ~sa.exists().where(S.statement_sums.c.statement_id == st.c.id)))
    return result


OTHER_QUERY = "(other statements: folded together by retention)"


def _roll_up_statements(conn, old: pd.DataFrame, keep_top: int) -> int:
    """Sum deltas per statement and hour; keep the hour's ``keep_top`` statements by time and by
    calls, fold the rest into one "(other statements)" row per hour, so a year of roll-ups of a
    5,000-statement server stays small (the long tail of rarely run statements is what a year
    view needs least)."""
    d = S.statement_deltas
    ids = [int(i) for i in old["id"]]
    parts = []
    for i in range(0, len(ids), CHUNK):
        parts.append(pd.read_sql(sa.select(d).where(d.c.snapshot_id.in_(ids[i:i + CHUNK])), conn))
    deltas = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if deltas.empty:
        return 0
    deltas = deltas.merge(old[["id", "target_id", "hour"]], left_on="snapshot_id", right_on="id")
    keys = ["target_id", "hour", "statement_id"]
    grouped = deltas.groupby(keys)
    hourly = grouped[S.STATEMENT_COUNTERS].sum(min_count=1)
    hourly["intervals"] = grouped.size()
    hourly["complete"] = grouped["complete"].all()
    noted = deltas[deltas["note"] != ""]
    notes = noted.groupby(keys)["note"].agg(lambda n: ",".join(sorted({x for v in n for x in v.split(",")})))
    hourly["note"] = notes.reindex(hourly.index).fillna("")
    hourly = hourly.reset_index()

    by_hour = hourly.groupby(["target_id", "hour"])
    keep = (by_hour["total_exec_ms"].rank(method="first", ascending=False) <= keep_top) | \
           (by_hour["calls"].rank(method="first", ascending=False) <= keep_top)
    tail = hourly[~keep]
    hourly = hourly[keep]
    if len(tail):
        folded = tail.groupby(["target_id", "hour"])
        other = folded[S.STATEMENT_COUNTERS].sum(min_count=1)
        other["intervals"] = folded["intervals"].max()
        other["complete"] = folded["complete"].all()
        other["note"] = "folded"
        other = other.reset_index()
        other["statement_id"] = [_other_statement(conn, int(t)) for t in other["target_id"]]
        hourly = pd.concat([hourly, other], ignore_index=True)
    rows = []
    for rec in hourly.astype(object).where(hourly.notna(), None).to_dict("records"):
        rec["hour"] = pd.Timestamp(rec["hour"]).to_pydatetime()
        rec["complete"] = bool(rec["complete"])
        rows.append(rec)
    conn.execute(S.statement_hourly.insert(), rows)
    _in_chunks(conn, lambda chunk: d.delete().where(d.c.snapshot_id.in_(chunk)), ids)
    return len(rows)


def _other_statement(conn, target_id: int) -> int:
    """The statements row that folded roll-ups point to (queryid 0, user and database 0)."""
    st = S.statements
    found = conn.execute(sa.select(st.c.id).where(st.c.target_id == target_id, st.c.queryid == 0,
                                                  st.c.userid == 0, st.c.dbid == 0)).scalar()
    if found is not None:
        return found
    return conn.execute(st.insert().values(
        target_id=target_id, userid=0, dbid=0, queryid=0, toplevel=True, user=None, database=None,
        query=OTHER_QUERY, first_seen=pd.Timestamp.now(tz="UTC").to_pydatetime())).inserted_primary_key[0]


def _thin_daily(conn, table, key: list[str], old: pd.DataFrame, last_of_day: set) -> None:
    """Table and index rows of each old day come down to one per relation: its last row of the
    day (its state at the day's end), moved to the day's last snapshot. Rows are written only
    when they change (history/sparse.py), so the day's last snapshot alone would miss the
    relations that did not change late in the day; a relation dropped that day keeps no row.
    A day whose snapshots all wrote every row (before schema version 4) just keeps its last."""
    strip = [int(i) for i in old["id"] if i not in last_of_day]
    with_rows = set()
    for i in range(0, len(strip), CHUNK):
        with_rows.update(r[0] for r in conn.execute(
            sa.select(table.c.snapshot_id).distinct().where(table.c.snapshot_id.in_(strip[i:i + CHUNK]))))
    s = S.snapshots
    for (tid, day), group in old[old["id"].isin(with_rows)].groupby(["target_id", "day"]):
        day_snaps = old[(old["target_id"] == tid) & (old["day"] == day)].sort_values("ts")
        ids = [int(i) for i in day_snaps["id"]]
        keeper, others = ids[-1], ids[:-1]
        sizing = dict(conn.execute(sa.select(s.c.id, s.c.sizing).where(s.c.id.in_(ids))).all())
        if all(v is None for v in sizing.values()):
            _in_chunks(conn, lambda chunk: table.delete().where(table.c.snapshot_id.in_(chunk)), others)
            continue
        rows = pd.concat([pd.read_sql(sa.select(table).where(table.c.snapshot_id.in_(ids[i:i + CHUNK])), conn)
                          for i in range(0, len(ids), CHUNK)], ignore_index=True)
        dense = any(v == "full" or (v is None and i in set(rows["snapshot_id"])) for i, v in sizing.items())
        rows["_pos"] = rows["snapshot_id"].map({i: n for n, i in enumerate(ids)})
        last = rows.sort_values("_pos", kind="stable").groupby(key, sort=False).tail(1)
        if dense:   # the keeper holds every relation there is: a dropped one is simply absent
            last = last[last["sizing"].fillna("") != "gone"]
        _in_chunks(conn, lambda chunk: table.delete().where(table.c.snapshot_id.in_(chunk)), ids)
        last = last.drop(columns=["_pos"]).assign(snapshot_id=keeper)
        if len(last):
            conn.execute(table.insert(), last.astype(object).where(last.notna(), None).to_dict("records"))
        if table is S.table_stats:
            _in_chunks(conn, lambda chunk: s.update().where(s.c.id.in_(chunk)).values(sizing=None), others)
            if dense:
                conn.execute(s.update().where(s.c.id == keeper).values(sizing="full"))


def _carry_events(conn, old: pd.DataFrame, kept: set) -> None:
    """Events of snapshots about to go move to the kept snapshot of their hour."""
    for (_, _), group in old.groupby(["target_id", "hour"]):
        events = sorted({e for v in group["events"] for e in str(v).split(",") if e})
        keeper = [i for i in group["id"] if i in kept][-1]
        conn.execute(S.snapshots.update().where(S.snapshots.c.id == int(keeper)).values(events=",".join(events)))


def _fix_intervals(conn, target_ids) -> None:
    s = S.snapshots
    for tid in target_ids:
        rows = conn.execute(sa.select(s.c.id, s.c.ts).where(s.c.target_id == int(tid)).order_by(s.c.ts)).all()
        prev = None
        for sid, ts in rows:
            ts = pd.Timestamp(ts)
            if prev is not None:
                conn.execute(s.update().where(s.c.id == sid).values(interval_s=(ts - prev).total_seconds()))
            prev = ts
