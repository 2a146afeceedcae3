"""The slow-query report: which statements burn the database's time, which got worse than in
the baseline, and what to do about each (runbook 2 *Slow Queries* and *High CPU Usage*,
runbook 6 *Query Optimization*), over a window.

Figures are per-interval deltas from the history store (``vhdiag snapshot``); without history
they are pg_stat_statements' cumulative counters since its last reset, and say so. Every
threshold comes from the settings (``[statements]``, ``[tables]``, ``[reports]`` and the
runbook's response-time threshold), so a ``vhdiag.toml`` changes what the report flags.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..analysis import findings as F
from ..analysis import plans as P
from ..analysis import slow_queries as sq
from .base import Param, Report, resolve_params
from .data import open_inputs
from .periods import baseline_window, period_name, resolve_window

TITLE = "Slow queries"
DESCRIPTION = "top statements by time, regressions, new statements, index advice and plan changes"

PARAMS = [
    Param("top_n", int, help="rows per ranking; statements drilled into and planned", setting="reports.top_n",
          minimum=1),
    Param("slow_ms", float, help="a slow query has a mean execution time over this (runbook 6)",
          setting="statements.slow_query_ms", minimum=0),
    Param("critical_ms", float, help="a slow query or regression is critical over this mean (runbook: "
          "response time > 5 s)", setting="thresholds.response_time_p95_ms.critical", minimum=0),
    Param("regression_ratio", float, help="a regression is at least this many times the baseline",
          setting="statements.regression_ratio", minimum=1),
    Param("regression_floor_ms", float, help="... and at least this many ms slower, so jitter never counts",
          setting="statements.regression_floor_ms", minimum=0),
    Param("regression_share_pct", float, help="a total-time regression or a new statement adds this share "
          "of DB time", setting="statements.regression_share_pct", minimum=0),
    Param("frequent_share_pct", float, help="a cheap statement making this share of all calls is a cache "
          "(or N+1) candidate", setting="statements.frequent_share_pct", minimum=0),
    Param("frequent_min_calls", int, help="... when it ran at least this many times",
          setting="statements.frequent_min_calls", minimum=1),
    Param("seq_scan_min_rows", int, help="heavy sequential scans read at least this many rows per scan",
          setting="tables.seq_scan_min_rows", minimum=1),
    Param("plans", bool, help="generic plans and hypopg costs (PostgreSQL 16+; only statements naming nothing "
          "user-defined); false: no EXPLAIN at all", setting="reports.plans"),
    Param("baseline_since", str, "", "baseline start; empty: the period of the same length before the window"),
    Param("baseline_until", str, "", "baseline end; empty: the window's start"),
    Param("exclude_roles", str, "", "comma-separated roles left out (vhdiag's own statements always are)"),
    Param("reports_dir", str, "", "where earlier reports of this target are (plan changes)", internal=True),
]

DRILL_DOWN = 5  # statements plotted over the window


@dataclass
class SlowQueryReport(Report):
    """``Report`` plus the frames the notebook shows (see the notebook's sections)."""

    source: str = "history"            # or "cumulative" (no history yet)
    server_version: str = ""
    baseline_since: pd.Timestamp | None = None
    baseline_until: pd.Timestamp | None = None
    window: pd.DataFrame | None = None
    baseline: pd.DataFrame | None = None
    excluded: pd.DataFrame | None = None
    headline: dict = field(default_factory=dict)
    top_total: pd.DataFrame | None = None
    rankings: dict = field(default_factory=dict)      # RANKINGS key -> frame
    slow: pd.DataFrame | None = None
    frequent: pd.DataFrame | None = None
    regressions: pd.DataFrame | None = None
    new: pd.DataFrame | None = None
    heavy: pd.DataFrame | None = None
    advice: pd.DataFrame | None = None
    hypopg: pd.DataFrame | None = None
    hypopg_message: str = ""
    plans: list = field(default_factory=list)
    plan_message: str = ""
    previous_report: str = ""
    has_previous_plans: bool = False
    plan_changes: pd.DataFrame | None = None
    completeness: dict | None = None
    series: dict = field(default_factory=dict)        # str(queryid) -> per-interval frame
    drill_since: pd.Timestamp | None = None

    @property
    def cumulative(self) -> bool:
        return self.source == "cumulative"


def build(target=None, history=None, since=None, until=None, target_name=None, *, window=None,
          statement_timeout_ms=None, config=None, **params) -> SlowQueryReport:
    """The slow-query report over ``since``..``until`` (or ``window`` back from now), no kernel
    needed: ``build(target="env:DATABASE_URL", since="7d").findings``."""
    p = resolve_params(PARAMS, params, "slow_queries", config)
    start, end = resolve_window(since or None, until or None, None if since else window)
    b_start, b_end = baseline_window(start, end, p["baseline_since"], p["baseline_until"])
    inputs = open_inputs(target, history, target_name, statement_timeout_ms)
    try:
        return _build(inputs, p, start, end, b_start, b_end)
    finally:
        inputs.close()


def _build(inputs, p, start, end, b_start, b_end) -> SlowQueryReport:
    from ..collect import plans as plan_sql
    db, store, name = inputs.db, inputs.store, inputs.target_name
    caps = db.capabilities
    notes = []
    if inputs.has_history:
        raw_window = store.statements(start, end, target=name)
        raw_base = store.statements(b_start, b_end, target=name)
        source = "history"
    else:
        if store is not None:
            notes.append(f"the history store holds no snapshots of {name} "
                         f"(it has: {', '.join(store.targets()['name'])}; name one with --target-name)")
        raw_window, raw_base, source = sq.from_cumulative(db.statements()), None, "cumulative"
    kept, excluded = sq.exclude_own(raw_window, caps.user, p["exclude_roles"])
    w = sq.prepare(kept)
    b = sq.prepare(sq.exclude_own(raw_base, caps.user, p["exclude_roles"])[0]) if raw_base is not None else None
    if b is not None and b.empty:
        b = None
    window_s, baseline_s = (end - start).total_seconds(), (b_end - b_start).total_seconds()
    top_n = p["top_n"]

    r = SlowQueryReport(name="slow_queries", title=TITLE, target=name, target_display=db.display, since=start,
                        until=end, params=p, notes=notes, source=source,
                        server_version=caps.server_version.split(" on ")[0], baseline_since=b_start,
                        baseline_until=b_end, window=w, baseline=b, excluded=excluded)
    r.headline = sq.headline(w, b, top=5, window_s=window_s, baseline_s=baseline_s)
    r.rankings = {key: sq.top_by(w, key, top_n) for key in sq.RANKINGS}
    r.top_total = r.rankings["total_time"]
    r.slow = sq.slow(w, p["slow_ms"])
    r.frequent = sq.frequent(w, p["frequent_share_pct"], p["frequent_min_calls"], p["slow_ms"])
    if b is not None:
        r.regressions = sq.regressions(w, b, ratio=p["regression_ratio"], floor_ms=p["regression_floor_ms"],
                                       share_pct=p["regression_share_pct"], window_s=window_s, baseline_s=baseline_s)
        r.new = sq.new_queries(w, b, share_pct=p["regression_share_pct"])
    plans_config = {"reports": {"plans": p["plans"]}}
    tables = db.tables()
    r.heavy = sq.seq_scan_tables(tables, p["seq_scan_min_rows"])
    r.advice = sq.index_advice(r.top_total, r.heavy, db.indexes(), tables)
    if len(r.advice):
        r.hypopg, r.hypopg_message = plan_sql.hypopg_costs(db, r.advice, plans_config)
        if len(r.hypopg):
            costs = {row.queryid: row for row in r.hypopg.itertuples()}
            r.advice["hypopg"] = [f" hypopg: planner cost {costs[q].cost_without} without, {costs[q].cost_with} "
                                  "with the index." if q in costs and costs[q].cost_with is not None else ""
                                  for q in r.advice["queryid"]]
    r.plans, r.plan_message = plan_sql.generic_plans(db, r.top_total, plans_config)
    previous, r.previous_report = _previous_plans(p["reports_dir"], name, period_name(start, end))
    r.has_previous_plans = bool(previous)
    r.plan_changes = P.changes(r.plans, previous, r.previous_report)
    if not r.cumulative:
        r.completeness = sq.completeness(w, inputs.snapshots, start, end)
        r.series = {str(q): sq.per_interval(store.statement_series(int(q), start, end, target=name))
                    for q in r.top_total["queryid"].head(min(top_n, DRILL_DOWN))}
        r.drill_since = _covered_from(inputs.snapshots, start, end)
        uncovered = (r.drill_since - start) if r.drill_since is not None else pd.Timedelta(0)
        if uncovered > max((end - start) / 10, pd.Timedelta(minutes=15)):
            r.notes.append(f"the history covers the window only from {r.drill_since:%Y-%m-%d %H:%M} UTC "
                           "(the first snapshot in it); the drill-down shows that part")
    r.findings = F.slow_query_findings(
        slow=r.slow, regressions=r.regressions, new=r.new, frequent=r.frequent, advice=r.advice,
        plan_changes=r.plan_changes, completeness=r.completeness, cumulative=r.cumulative, slow_ms=p["slow_ms"],
        critical_ms=p["critical_ms"], window_s=window_s, subject=name)
    r.artefacts["plans"] = {"target": name, "since": start.isoformat(), "until": end.isoformat(),
                            "generated_at": pd.Timestamp.now(tz="UTC").isoformat(),
                            "plans": [{k: v for k, v in rec.items() if k != "plan"} for rec in r.plans]}
    return r


def _covered_from(snapshots: pd.DataFrame, start, end):
    """Where the history of the window starts: the first interval inside it."""
    if snapshots is None or not len(snapshots):
        return None
    inside = snapshots[(snapshots["ts"] > start) & (snapshots["ts"] <= end)]
    if not len(inside):
        return None
    first = inside.sort_values("ts").iloc[0]
    begin = first["ts"] - pd.Timedelta(seconds=float(first["interval_s"])) if pd.notna(first["interval_s"]) \
        else first["ts"]
    return max(begin, start)


def _previous_plans(reports_dir: str, target_name: str, period: str) -> tuple[list[dict], str]:
    """The plans saved by the newest earlier report of this target (another period than this one):
    (records, its period), or ([], "")."""
    if not reports_dir:
        return [], ""
    best = None
    for path in Path(reports_dir).glob("*/slow_queries.plans.json"):
        if path.parent.name == period or path.parent.name.startswith("."):
            continue
        with contextlib.suppress(ValueError, OSError, KeyError):
            data = json.loads(path.read_text())
            if data.get("target") == target_name and (best is None or data["generated_at"] > best[0]["generated_at"]):
                best = (data, path.parent.name)
    return (best[0]["plans"], best[1]) if best else ([], "")
