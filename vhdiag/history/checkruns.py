"""What each ``vhdiag check`` run found, kept in the history store (``check_results``, schema 3),
so the next run can say what is new "since the previous check". History's check half."""
from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa

from . import names
from . import schema as S
from .values import py_value


class CheckRuns:
    """Mixed into History (store.py), which gives ``_write``, ``_read`` and ``_lock_target``."""

    def record_checks(self, name: str, kind: str, ts, results: list[dict]) -> None:
        """Store one ``vhdiag check`` run (one transaction): each result's check, status,
        evidence, fix and ``items`` (the subjects it saw, for the next run's "new since")."""
        with self._write() as conn, conn.begin():
            target_id = self._lock_target(conn, name)
            rows = [{"target_id": target_id, "ts": py_value(pd.Timestamp(ts)), "kind": kind, "check": r["check"],
                     "status": r["status"], "evidence": r["evidence"], "fix": r.get("fix") or "",
                     "items": json.dumps(list(r.get("items") or []))} for r in results]
            if rows:
                conn.execute(S.check_results.insert(), rows)

    def previous_checks(self, name: str, before=None) -> tuple[pd.Timestamp | None, dict]:
        """The newest recorded check run of target ``name`` (before ``before``): its time and, per
        check, the newest run that had it (an evening-only check's is the previous evening's)
        ``{check: {"status", "evidence", "fix", "items", "ts"}}``; ``(None, {})`` when there is none."""
        c = S.check_results
        with self._read() as conn:
            row = names.find(conn, name)
            if row is None:
                return None, {}
            q = sa.select(sa.func.max(c.c.ts)).where(c.c.target_id == row[0])
            if before is not None:
                q = q.where(c.c.ts < py_value(pd.Timestamp(before)))
            ts = conn.execute(q).scalar()
            if ts is None:
                return None, {}
            latest = sa.select(c.c.check, sa.func.max(c.c.ts).label("ts")).where(
                c.c.target_id == row[0], c.c.ts <= ts).group_by(c.c.check).subquery()
            found = conn.execute(sa.select(c).join(latest, (c.c.check == latest.c.check) & (c.c.ts == latest.c.ts))
                                 .where(c.c.target_id == row[0])).mappings().all()
        def utc_ts(v):
            v = pd.Timestamp(v)
            return v.tz_localize("UTC") if v.tzinfo is None else v.tz_convert("UTC")
        ts = utc_ts(ts)
        return ts, {r["check"]: {"status": r["status"], "evidence": r["evidence"], "fix": r["fix"],
                                 "items": json.loads(r["items"] or "[]"), "ts": utc_ts(r["ts"])} for r in found}
