"""What the weekly handoff reads of the store besides the windows of ``reads.py``: the indexes
each snapshot saw, and the ``vhdiag check`` runs of a window (runbook 10 "Handoff Procedure":
review recent changes, verify monitoring is working).

Both are plain reads (``History._read``: never creates or upgrades a store). Index sizes are
thinned to one snapshot a day after ``raw_days`` (retention), so on older weeks an index made and
dropped within a day may not show; the handoff names the snapshots it compared.
"""
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from . import schema as S
from .reads import _between
from .values import utc_frame


def index_series(history, since=None, until=None, target: str | None = None) -> pd.DataFrame:
    """One row per snapshot in [the last one at or before ``since``, ``until``] and index it saw:
    ``ts, schema, table, index`` (the first snapshot is the state the window starts from)."""
    since, until = history._window(since, until)
    s, i = S.snapshots, S.index_stats
    with history._read() as conn:
        tid = history._target_id(conn, target)
        q = sa.select(s.c.ts, i.c.schema, i.c.table, i.c.index).join(s, s.c.id == i.c.snapshot_id) \
            .where(s.c.target_id == tid)
        if since is not None:
            lo = conn.execute(sa.select(sa.func.max(s.c.ts)).where(
                s.c.target_id == tid, s.c.ts <= since.to_pydatetime(),
                sa.exists().where(i.c.snapshot_id == s.c.id))).scalar()
            q = q.where(s.c.ts >= (lo if lo is not None else since.to_pydatetime()))
        if until is not None:
            q = q.where(s.c.ts <= until.to_pydatetime())
        frame = pd.read_sql(q.order_by(s.c.ts), conn)
    return utc_frame(frame, "ts")


def check_runs(history, since=None, until=None, target: str | None = None) -> pd.DataFrame:
    """Every recorded check result in (since, until]: ``ts, kind, check, status, evidence, fix``
    (one ``ts`` per run), oldest first."""
    since, until = history._window(since, until)
    c = S.check_results
    with history._read() as conn:
        tid = history._target_id(conn, target)
        q = sa.select(c.c.ts, c.c.kind, c.c.check, c.c.status, c.c.evidence, c.c.fix).where(c.c.target_id == tid)
        frame = pd.read_sql(_between(q, c.c.ts, since, until).order_by(c.c.ts, c.c.id), conn)
    return utc_frame(frame, "ts")


def last_check_run(history, until=None, target: str | None = None, passed_only: bool = False):
    """(ts, kind, worst status) of the newest check run at or before ``until`` (of a run with no
    failed check when ``passed_only``), or None."""
    runs = check_runs(history, None, until, target)
    if not len(runs):
        return None
    order = {"pass": 0, "warn": 1, "fail": 2}
    per_run = runs.groupby(["ts", "kind"])["status"].agg(lambda v: max(v, key=lambda x: order.get(x, 2)))
    per_run = per_run.reset_index().sort_values("ts")
    if passed_only:
        per_run = per_run[per_run["status"] != "fail"]
    if not len(per_run):
        return None
    last = per_run.iloc[-1]
    return last["ts"], last["kind"], last["status"]
