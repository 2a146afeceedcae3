"""Window sums: each complete hour's and day's statement deltas, summed once, so that a week's
read sums seven days' rows instead of 672 snapshots'.

Why: issue 13 asks ``History.statements(since="7d")`` over a week of 15-minute snapshots of
5,000 statements, every statement changing every interval, in under 2 s. That is 3.36 million
delta rows of 21 counters, and SQLite alone takes 6 s to sum and group them whatever the SQL
(3.6 s for the sums without grouping, 1.6 s to group the rows without summing anything;
benchmarks/history_read.py). Summed ahead, the same week is at most 7 days, 46 hours and 8
snapshots of rows, whatever the window's bounds.

A sum of span ``span_s`` (3600 or 86400) starting at ``start`` holds, per statement, the deltas of
the target's snapshots with ``start < ts <= start + span_s`` (windows are ``(since, until]``, and
so are the sums), how many there were, whether all were complete, and the first and last ts.
It is written once the target has a snapshot after ``start + span_s``; snapshots never go in out
of order (the writer refuses one), so a sum never changes afterwards. Retention deletes every
sum that began before its cutoff (retention.py) together with the raw deltas it prunes; the
reader then takes that span from the raw deltas and the hourly roll-ups, as it did before.
Sums only make reads faster: a read gives the same frame with or without them.
"""
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from . import schema as S

SPANS = {86400: "D", 3600: "h"}   # span_s -> pandas frequency; the reader takes days first
HOUR, DAY = 3600, 86400


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def build(conn, target_id: int) -> int:
    """Sum every complete hour, then every complete day, not summed yet; returns how many spans.

    Called after each snapshot (History.record) under the store's write lock: usually one
    hour or none. A store from before version 4 gets its whole raw history summed once."""
    s = S.snapshots
    lo, hi = conn.execute(sa.select(sa.func.min(s.c.ts), sa.func.max(s.c.ts))
                          .where(s.c.target_id == target_id)).one()
    if hi is None:
        return 0
    lo, hi = _utc(lo), _utc(hi)
    made = 0
    for span in (HOUR, DAY):   # hours first: days are summed from them
        step = pd.Timedelta(seconds=span)
        last = conn.execute(sa.select(sa.func.max(S.statement_sum_spans.c.start)).where(
            S.statement_sum_spans.c.target_id == target_id, S.statement_sum_spans.c.span_s == span)).scalar()
        start = _utc(last) + step if last is not None else lo.ceil(SPANS[span]) - step
        while start + step < hi:
            # Skip a stretch without snapshots (the target was not watched) in one step.
            nxt = conn.execute(sa.select(sa.func.min(s.c.ts)).where(
                s.c.target_id == target_id, s.c.ts > start.to_pydatetime())).scalar()
            nxt = _utc(nxt)
            if nxt > start + step:
                start = nxt.ceil(SPANS[span]) - step
                continue
            _sum_span(conn, target_id, span, start)
            made += 1
            start += step
    return made


def _sum_span(conn, target_id: int, span: int, start: pd.Timestamp) -> None:
    t, end = S.statement_sums, start + pd.Timedelta(seconds=span)
    counters = [c for c in S.STATEMENT_COUNTERS]
    if span == HOUR:
        d, s = S.statement_deltas, S.snapshots
        source = sa.select(
            sa.literal(target_id), sa.literal(span), sa.literal(start.to_pydatetime(), S.TS), d.c.statement_id,
            *[sa.func.sum(getattr(d.c, c)) for c in counters], sa.func.count(),
            sa.func.min(sa.case((d.c.complete, 1), else_=0)), sa.func.min(s.c.ts), sa.func.max(s.c.ts),
        ).join(s, s.c.id == d.c.snapshot_id).where(
            s.c.target_id == target_id, s.c.ts > start.to_pydatetime(), s.c.ts <= end.to_pydatetime()
        ).group_by(d.c.statement_id)
    else:  # a day from its hours (every hour before the day's end is summed by now)
        h = t.alias("hours")
        source = sa.select(
            sa.literal(target_id), sa.literal(span), sa.literal(start.to_pydatetime(), S.TS), h.c.statement_id,
            *[sa.func.sum(getattr(h.c, c)) for c in counters], sa.func.sum(h.c.intervals),
            sa.func.min(h.c.complete), sa.func.min(h.c.first_ts), sa.func.max(h.c.last_ts),
        ).where(h.c.target_id == target_id, h.c.span_s == HOUR, h.c.start >= start.to_pydatetime(),
                h.c.start < end.to_pydatetime()).group_by(h.c.statement_id)
    conn.execute(t.insert().from_select(
        ["target_id", "span_s", "start", "statement_id", *counters, "intervals", "complete", "first_ts", "last_ts"],
        source))
    conn.execute(S.statement_sum_spans.insert().values(target_id=target_id, span_s=span,
                                                       start=start.to_pydatetime()))


def forget(conn, before: pd.Timestamp) -> None:
    """Retention: sums that began before ``before`` go (their raw deltas are being pruned)."""
    for table in (S.statement_sums, S.statement_sum_spans):
        conn.execute(table.delete().where(table.c.start < before.to_pydatetime()))


def plan(conn, target_id: int, since, until) -> tuple[list, list]:
    """Which sums a window ``(since, until]`` reads, and the raw ranges left between them.

    Returns ``(sums, raw)``: ``sums`` as ``(span_s, first start, last start)`` runs of
    consecutive spans, ``raw`` as ``(lo, hi)`` ranges meaning ``lo < ts <= hi`` (None: unbounded).
    Whole days inside the window first, then whole hours outside those days."""
    p = S.statement_sum_spans
    q = sa.select(p.c.span_s, p.c.start).where(p.c.target_id == target_id)
    if since is not None:
        q = q.where(p.c.start >= since.to_pydatetime())
    if until is not None:
        q = q.where(p.c.start < until.to_pydatetime())
    built = sorted((int(span), _utc(start)) for span, start in conn.execute(q))
    chosen: list[tuple[pd.Timestamp, pd.Timestamp, int]] = []
    for span in SPANS:
        step = pd.Timedelta(seconds=span)
        for kind, start in built:
            end = start + step
            if kind != span or (until is not None and end > until):
                continue
            if any(start < e and end > b for b, e, _ in chosen):
                continue
            chosen.append((start, end, span))
    chosen.sort()
    runs: list[list] = []
    for start, end, span in chosen:
        if runs and runs[-1][0] == span and runs[-1][2] + pd.Timedelta(seconds=span) == start:
            runs[-1][2] = start
        else:
            runs.append([span, start, start])
    raw, cur = [], since
    for start, end, _ in chosen:
        if cur is None or start > cur:
            raw.append((cur, start))
        cur = end
    if until is None or cur is None or cur < until:
        raw.append((cur, until))
    return [tuple(r) for r in runs], raw


def where_runs(table, target_id: int, runs) -> sa.ColumnElement:
    """The sums of ``runs`` (from ``plan``): each term a range of the primary key, so that
    SQLite reads only those rows (with target_id outside the OR it scans the target's sums)."""
    return sa.or_(sa.false(), *[sa.and_(table.c.target_id == target_id, table.c.span_s == span,
                            table.c.start >= first.to_pydatetime(),
                            table.c.start <= last.to_pydatetime()) for span, first, last in runs])


def where_raw(ts, raw) -> sa.ColumnElement:
    """The snapshots of the ``raw`` ranges (from ``plan``)."""
    terms = []
    for lo, hi in raw:
        parts = [ts > lo.to_pydatetime()] if lo is not None else []
        if hi is not None:
            parts.append(ts <= hi.to_pydatetime())
        terms.append(sa.and_(*parts) if parts else sa.true())
    return sa.or_(sa.false(), *terms)
