"""``triage(target)``: the runbook's common issues (section 2: High CPU Usage, Database Connection
Issues, Slow Queries) diagnosed live, for the on-call engineer in the middle of an incident.

It reads with the collectors only (each query read-only, bounded by the Target's statement and
lock timeouts, marked ``/* vhdiag */`` and left out of the rankings): pg_stat_statements twice,
``sample_s`` apart, then activity, connections and the blocking tree once, and, when a statement
burns time, the tables and indexes for the slow-query report's index advice. Nothing is reset,
terminated or created: the commands in the verdicts are text (vhdiag/analysis/triage.py).

``Triage.refresh()`` is what ``vhdiag triage --watch`` calls: the previous second sample becomes
the next first one, so a refresh costs one light round (statements, activity, connections,
locks) and no index advice.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pandas as pd

from .analysis import triage as T
from .config import resolve_config

SECTIONS = ("burning_now", "connections", "blocking", "long_running", "verdicts")


@dataclass
class Triage:
    """What ``triage()`` returns: the five sections, and the two samples' times."""

    target: str                          # user@host:port/db, never a password
    since: pd.Timestamp                  # first sample
    until: pd.Timestamp                  # second sample
    interval_s: float
    burning_now: pd.DataFrame
    connections: dict
    blocking: list
    long_running: pd.DataFrame
    verdicts: list
    advice: pd.DataFrame | None = None
    notes: list = field(default_factory=list)
    _statements: pd.DataFrame | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        c = self.connections
        conns = {k: v for k, v in c.items() if not isinstance(v, pd.DataFrame)}
        conns.update({k: _records(v) for k, v in c.items() if isinstance(v, pd.DataFrame)})
        return {"schema_version": 1, "kind": "triage", "target": self.target, "since": self.since.isoformat(),
                "until": self.until.isoformat(), "interval_s": round(self.interval_s, 3),
                "burning_now": _records(self.burning_now), "connections": conns, "blocking": self.blocking,
                "long_running": _records(self.long_running), "verdicts": self.verdicts, "notes": list(self.notes)}

    def as_json(self) -> str:
        """The sections as JSON (control characters escaped as ``\\u001b``, DEL too)."""
        return json.dumps(self.as_dict(), indent=1, default=str).replace("\x7f", "\\u007f")


def settings(config=None) -> dict:
    """The thresholds triage uses, from the settings (defaults.toml under vhdiag.toml)."""
    cfg = resolve_config(config)
    return {"interval_s": float(cfg["triage"]["interval_s"]), "long_query_s": float(cfg["triage"]["long_query_s"]),
            "busy_sessions": float(cfg["triage"]["busy_sessions"]),
            "long_transaction_s": float(cfg["checks"]["long_transaction_s"]),
            "idle_in_transaction_s": float(cfg["checks"]["idle_in_transaction_s"]),
            "warning": float(cfg["thresholds"]["db_connections"]["warning"]),
            "critical": float(cfg["thresholds"]["db_connections"]["critical"]),
            "slow_ms": float(cfg["statements"]["slow_query_ms"]),
            "critical_ms": float(cfg["thresholds"]["response_time_p95_ms"]["critical"]),
            "top_n": int(cfg["reports"]["top_n"]), "seq_scan_min_rows": int(cfg["tables"]["seq_scan_min_rows"])}


def triage(target, sample_s: float | None = None, *, config=None, advice: bool = True, previous=None,
           sleep=time.sleep) -> Triage:
    """Sample pg_stat_statements, wait ``sample_s`` (default ``[triage] interval_s``, 10 s), sample
    again and read the rest: ``triage(vhdiag.connect(...)).verdicts``. ``previous`` (a Triage)
    supplies the first sample instead (``--watch``)."""
    s = settings(config)
    sample_s = s["interval_s"] if sample_s is None else float(sample_s)
    user = target.capabilities.user
    notes = []
    if previous is not None and previous._statements is not None:
        before, since = previous._statements, previous.until
    else:
        before, since = target.statements(), _now()
        sleep(sample_s)
    after, until = target.statements(), _now()
    interval_s = max((until - since).total_seconds(), 1e-3)
    delta = T.statement_delta(before, after, user)
    burning = T.burning_now(delta, interval_s, s["top_n"])
    hidden = int(after["query_hidden"].fillna(False).astype(bool).sum())
    if hidden:
        notes.append(f"{hidden} statements of other roles are hidden from {user}: GRANT pg_read_all_stats")
    activity = target.activity()
    limits = target.connections().iloc[0].to_dict()
    conns = T.connections(activity, limits, warning=s["warning"], critical=s["critical"],
                          idle_s=s["idle_in_transaction_s"])
    blockers = T.blocking(target.locks())
    long = T.long_running(activity, long_query_s=s["long_query_s"], long_transaction_s=s["long_transaction_s"])
    index_advice = _advice(target, burning, s["seq_scan_min_rows"]) if advice and len(burning) else None
    verdicts = T.verdicts(burning, conns, blockers, long, interval_s=interval_s, slow_ms=s["slow_ms"],
                          critical_ms=s["critical_ms"], busy_sessions=s["busy_sessions"], advice=index_advice)
    return Triage(target.display, since, until, interval_s, burning, conns, blockers, long, verdicts,
                  index_advice, notes + list(target.notices.values()), after)


def _advice(target, burning: pd.DataFrame, seq_scan_min_rows: int) -> pd.DataFrame:
    """The slow-query report's index advice for the statements burning now."""
    from .analysis import slow_queries as sq
    tables = target.tables()
    heavy = sq.seq_scan_tables(tables, seq_scan_min_rows)
    return sq.index_advice(burning, heavy, target.indexes(), tables)


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _records(frame: pd.DataFrame) -> list[dict]:
    if frame is None or frame.empty:
        return []
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))
