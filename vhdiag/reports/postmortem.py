"""The post-mortem report: what happened and when, how fast the team responded against the
runbook, the probable causes, and the drafts to send (runbook 3 "Post-Mortem (24 hours)":
document the incident, identify the root cause, plan improvements, update the runbook; runbook 8
"Communication Templates"; runbook 9 "Escalation Procedures").

It reads the metric history (a file, Prometheus, or the history store's own series) and the
database's history (``vhdiag snapshot``: statement deltas, settings, connections by application,
blocked and blocking sessions). The window is the report's ``--since``/``--until``, or found
from the threshold breaches and database events around ``-p around=TIME``. Bad input (times out
of order, a malformed events file) is refused before any kernel starts and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..analysis import incident as I
from ..analysis.incident_causes import causes
from ..analysis import incident_timeline as T
from ..analysis import slow_queries as sq
from ..config import resolve_config
from ..timeparse import parse_duration
from .base import Report, resolve_params
from .data import open_inputs
from .postmortem_params import PARAMS, check_params, read_events, run_window
from .postmortem_view import drafts

TITLE = "Post-mortem"
DESCRIPTION = "an incident's window, impact, timeline, response against the runbook, probable causes and drafts"


@dataclass
class PostmortemReport(Report):
    found: bool = False
    how: str = ""
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    view_since: pd.Timestamp | None = None     # what the plots show
    view_until: pd.Timestamp | None = None
    severity: str = ""
    severity_rule: str = ""
    severity_given: bool = False
    impact: dict = field(default_factory=dict)
    budget: pd.DataFrame | None = None
    metrics: pd.DataFrame | None = None
    breaches: pd.DataFrame | None = None
    timeline: pd.DataFrame | None = None
    response: pd.DataFrame | None = None
    escalation: pd.DataFrame | None = None
    hypotheses: list = field(default_factory=list)
    changes: pd.DataFrame | None = None
    connections: pd.DataFrame | None = None
    writes: pd.DataFrame | None = None
    completeness: dict | None = None
    messages: dict = field(default_factory=dict)
    markdown: str = ""
    thresholds: dict = field(default_factory=dict)


def build(target=None, history=None, since=None, until=None, target_name=None, *, window=None,
          statement_timeout_ms=None, config=None, **params) -> PostmortemReport:
    """The post-mortem of the incident in ``since``..``until`` or around ``around=``, no kernel needed."""
    p = resolve_params(PARAMS, params, "postmortem", config)
    check_params(p)
    if p["around"] and not since:
        since, until, window = run_window(p, None, None, None)
    elif not p["around"]:
        since, until, window = run_window(p, since, until, window)
    from .periods import resolve_window
    lo, hi = resolve_window(since or None, until or None, None if since else window)
    user_events = read_events(p["events"]) if p["events"] else None
    inputs = open_inputs(target, history, target_name, statement_timeout_ms)
    try:
        return _build(inputs, p, lo, hi, user_events, resolve_config(config))
    finally:
        inputs.close()


def _load_metrics(inputs, p, lo, hi, cfg, notes) -> tuple[pd.DataFrame, set]:
    """The five metrics from the source given and, for what it lacks, the history store's own
    series; also the metrics that came from the store (one point per snapshot: too coarse to set
    the window's edges when a finer source is given)."""
    import vhdiag
    frames, coarse = [], set()
    if p["metrics"]:
        frames.append(vhdiag.load_metrics(p["metrics"], lo, hi, config=cfg))
    if inputs.store is not None and inputs.has_history:
        own = vhdiag.load_metrics(inputs.store.url, lo, hi, config=cfg, target=inputs.target_name)
        have = set(frames[0]["metric"]) if frames else set()
        own = own[own["metric"].isin([m for m in I.METRICS if m not in have])]
        coarse = set(own["metric"]) if p["metrics"] else set()
        frames.append(own)
    m = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["ts", "metric", "value", "labels"])
    m = m[m["metric"].isin(list(I.METRICS))].sort_values("ts").reset_index(drop=True)
    missing = [I.METRICS[k] for k in I.METRICS if k not in set(m["metric"])]
    if missing:
        where = "" if p["metrics"] else " (no metrics source: give -p metrics=FILE_OR_URL)"
        notes.append(f"not seen{where}: {', '.join(missing)}; the impact and severity rest on what was seen")
    return m, coarse


def _ddl(store, name, lo, hi, caps_user) -> list[dict]:
    """DDL statements that ran in (lo, hi], each at the first snapshot interval it ran in."""
    from ..analysis.query_text import is_ddl
    try:
        stmts = store.statements(lo, hi, target=name)
    except Exception:  # noqa: BLE001 - no statements history
        return []
    stmts = sq.exclude_own(stmts, caps_user)[0]
    out = []
    for r in stmts[stmts["query"].map(is_ddl)].itertuples():
        series = store.statement_series(int(r.queryid), lo, hi, target=name)
        ran = series[series["calls"].fillna(0) > 0].sort_values("ts")
        if len(ran):
            first = ran.iloc[0]
            begin = first["ts"] - pd.Timedelta(seconds=float(first["interval_s"] or 0))
            out.append({"ts": first["ts"], "queryid": int(r.queryid),
                        "query": f"{' '.join(str(r.query).split())[:200]} (ran between {begin:%H:%M:%S} and "
                                 f"{first['ts']:%H:%M:%S})"})
    return out


def _build(inputs, p, lo, hi, user_events, cfg) -> PostmortemReport:
    from ..metrics import breaches as find_breaches
    db, store, name = inputs.db, inputs.store, inputs.target_name
    notes: list[str] = []
    thresholds = cfg["thresholds"]
    r = PostmortemReport(name="postmortem", title=TITLE, target=name, target_display=db.display, since=lo,
                         until=hi, params=p, notes=notes, thresholds={k: thresholds[k] for k in I.METRICS
                                                                       if k in thresholds})
    m, coarse = _load_metrics(inputs, p, lo, hi, cfg, notes)
    br = find_breaches(m, cfg) if len(m) else None
    if br is not None:
        br = br[br["metric"].isin(list(I.METRICS))].reset_index(drop=True)
    snaps = inputs.snapshots
    if not inputs.has_history:
        notes.append(f"no snapshots of {name} in the history store: no database events, statement changes or "
                     "sessions (run vhdiag snapshot every 15 minutes)")
        view, ddl = {}, []
    else:
        view = store.incident_view(lo, hi, target=name)
        ddl = _ddl(store, name, lo, hi, db.capabilities.user)
    in_range = snaps[(snaps["ts"] >= lo) & (snaps["ts"] <= hi)] if len(snaps) else snaps
    events = T.db_events(in_range, view, ddl, thresholds["db_connections"])
    # the window
    if p["around"]:
        db_times = [e["ts"] for e in events if e.get("kind") in ("locks", "connections")]
        fine = br[~br["metric"].isin(coarse)] if br is not None else None
        start, end, r.how = I.find_window(fine, db_times, pd.Timestamp(p["around"]), parse_duration(p["search"]),
                                          parse_duration(p["merge_gap"]))
        r.found = start is not None
    else:
        start, end, r.how = lo, hi, "the window given"
        r.found = bool((br is not None and len(br[(br["end"] >= lo) & (br["start"] <= hi)]))
                       or any(e.get("kind") in ("locks", "connections", "config", "ddl", "restart") for e in events))
    r.start, r.end = start, end
    r.metrics, r.view_since, r.view_until = m, lo, hi
    if not r.found:
        r.breaches = br.iloc[0:0] if br is not None else None
        r.timeline = T.timeline([])
        r.findings = []
        r.notes.append("no incident found: no threshold breach and no database event in the window")
        return r
    if p["around"]:   # the plots show the incident with as much again on each side
        pad = max((end - start), pd.Timedelta(minutes=1))
        r.view_since, r.view_until = max(lo, start - pad), min(hi, end + pad)
    if br is not None:   # by start; at one time, each metric's warning before its critical
        inside = br[(br["end"] >= start) & (br["start"] <= end)]
        r.breaches = inside.assign(_l=(inside["level"] == "critical").astype(int)).sort_values(
            ["start", "metric", "_l"], kind="stable").drop(columns="_l").reset_index(drop=True)
    r.impact = I.impact(m, r.breaches, start, end)
    r.budget = _budget(m, start, end, cfg, p["slo_period_days"])
    # database view: the snapshots that cover the window, and a baseline of the same length before
    d_lo, d_hi = _covering(snaps, start, end)
    lead = pd.Timedelta(minutes=p["lead_minutes"])
    events = [e for e in events if d_lo - lead <= e["ts"] <= d_hi]
    window_frame = base_frame = None
    if inputs.has_history:
        w_raw = sq.exclude_own(store.statements(d_lo, d_hi, target=name), db.capabilities.user)[0]
        b_raw = sq.exclude_own(store.statements(d_lo - (d_hi - d_lo), d_lo, target=name), db.capabilities.user)[0]
        window_frame, base_frame = sq.prepare(w_raw), sq.prepare(b_raw)
        r.changes = _changes(window_frame, base_frame, p["top_n"])
        r.completeness = sq.completeness(window_frame, snaps, d_lo, d_hi)
        r.connections = _connections(view.get("connections"), d_lo, d_hi)
        r.writes = _writes(store, name, d_lo, d_hi, p["top_n"])
    regressions = (sq.regressions(window_frame, base_frame, ratio=p["regression_ratio"],
                                  floor_ms=p["regression_floor_ms"], share_pct=100.0,
                                  window_s=(d_hi - d_lo).total_seconds(), baseline_s=(d_hi - d_lo).total_seconds())
                   if base_frame is not None and len(base_frame) and len(window_frame) else None)
    if regressions is not None:
        regressions = regressions[regressions["mean_exec_ms"] >= p["regression_ratio"] *
                                  regressions["mean_before_ms"]].reset_index(drop=True)
    max_conn = int(snaps["max_connections"].dropna().iloc[-1]) if len(snaps) and snaps["max_connections"].notna().any() \
        else None
    r.hypotheses = causes(imp=r.impact, breaches=r.breaches, events=events, regressions=regressions,
                          user_events=user_events, start=start, conn_thresholds=thresholds["db_connections"],
                          max_connections=max_conn, lead=lead)
    # severity
    sevs = cfg["severities"]
    signals = {"lock_waiters": any(e.get("kind") == "locks" for e in events),
               "connections_critical": any(e.get("kind") == "connections" and
                                           e["connections"] > thresholds["db_connections"]["critical"] for e in events)}
    if p["severity"]:
        r.severity, r.severity_given = p["severity"], True
        r.severity_rule = f"{p['severity']} ({sevs[p['severity']]['impact']}): given"
        proposed = I.propose_severity(r.impact, signals, sevs, p["outage_error_pct"], thresholds)
        r.severity_rule += f"; vhdiag would propose {proposed[1]}"
    else:
        r.severity, r.severity_rule = I.propose_severity(r.impact, signals, sevs, p["outage_error_pct"], thresholds)
    # response against the runbook
    times = {step: (pd.Timestamp(p[key]) if p[key] else None) for step, key in zip(I.STEPS, I.TIME_KEYS)}
    targets = dict(sevs[r.severity])
    targets.setdefault("acknowledge_minutes", targets.get("response_minutes"))
    r.response = I.response(start, times, targets)
    resolved = times["resolve"] or end
    down = I.minutes(end - start) if r.severity == "P1" else 0.0
    r.escalation = I.escalation(start, resolved, down, cfg["escalation"], user_events, times["acknowledge"])
    # timeline
    rows = T.metric_timeline(m, r.breaches, start, end) + events
    if user_events is not None:
        near = user_events[(user_events["ts"] >= start - lead) & (user_events["ts"] <= end + lead)]
        rows += [{"ts": e.ts, "source": "events file", "event": e.kind, "detail": e.description} for e in near.itertuples()]
    done = dict(zip(I.STEPS, ("acknowledged", "assessed", "mitigated", "resolved")))
    rows += [{"ts": t, "source": "response", "event": done[step], "detail": f"{I.minutes(t - start):g} min after the start"}
             for step, t in times.items() if t is not None]
    r.timeline = T.timeline(rows)
    r.title = p["title"] or (f"{r.hypotheses[0]['title'][0].upper()}{r.hypotheses[0]['title'][1:]} on {name}"
                             if r.hypotheses else f"Incident on {name}")
    r.findings = I.findings(subject=name, breaches=r.breaches, severity=r.severity, rule=r.severity_rule,
                            given=r.severity_given, resp=r.response, esc=r.escalation, hypotheses=r.hypotheses,
                            query_changes=regressions, events=events)
    drafts(r, p, times, name)
    return r


def _covering(snaps, start, end):
    """From the last snapshot at or before the start to the first at or after the end."""
    if snaps is None or not len(snaps):
        return start, end
    before, after = snaps[snaps["ts"] <= start]["ts"], snaps[snaps["ts"] >= end]["ts"]
    return (before.max() if len(before) else start), (after.min() if len(after) else end)


def _budget(m, start, end, cfg, period_days) -> pd.DataFrame:
    """Per SLO target: minutes in the incident that missed it, as a share of the period's budget."""
    from ..metrics.thresholds import slo_report
    if not len(m):
        return pd.DataFrame(columns=["metric", "target", "samples", "missed", "minutes_missed", "budget_minutes",
                                     "budget_used_pct"])
    w = m[(m["ts"] >= start) & (m["ts"] <= end)]
    rep = slo_report(w, config=cfg)
    rep = rep[rep["samples"].fillna(0) > 0]
    span = I.minutes(end - start)
    rows = []
    for x in rep.itertuples():
        missed_min = span * x.violations / x.samples if x.samples else 0.0
        budget_min = (100 - x.objective_pct) / 100 * period_days * 24 * 60
        rows.append({"metric": x.metric, "target": f"{x.comparison} {x.target:g}", "samples": int(x.samples),
                     "missed": int(x.violations), "minutes_missed": round(missed_min, 2),
                     "budget_minutes": round(budget_min, 1),
                     "budget_used_pct": round(100 * missed_min / budget_min, 1) if budget_min else None})
    return pd.DataFrame(rows)


def _changes(w, b, top_n) -> pd.DataFrame:
    """Statements whose calls, total or mean time changed most against the baseline."""
    cols = ["queryid", "user", "query", "calls", "calls_before", "total_exec_ms", "total_before_ms",
            "mean_exec_ms", "mean_before_ms", "complete"]
    if w is None or not len(w):
        return pd.DataFrame(columns=cols)
    key = ["queryid", "userid", "dbid"]
    base = b[key + ["calls", "total_exec_ms", "mean_exec_ms"]].rename(columns={
        "calls": "calls_before", "total_exec_ms": "total_before_ms", "mean_exec_ms": "mean_before_ms"}) \
        if b is not None and len(b) else pd.DataFrame(columns=key + ["calls_before", "total_before_ms", "mean_before_ms"])
    out = w.merge(base, on=key, how="left")
    out["_d"] = (out["total_exec_ms"].astype(float) - out["total_before_ms"].astype(float).fillna(0)).abs()
    return out.sort_values("_d", ascending=False).head(top_n)[cols].reset_index(drop=True)


def _connections(conns, lo, hi) -> pd.DataFrame | None:
    """Connections by state and application at the busiest snapshot of the window."""
    if conns is None or not len(conns):
        return None
    inside = conns[(conns["ts"] > lo) & (conns["ts"] <= hi)]
    if not len(inside):
        return None
    peak = inside.groupby("ts")["connections"].sum().idxmax()
    out = inside[inside["ts"] == peak][["ts", "application", "state", "connections"]]
    return out.sort_values("connections", ascending=False).reset_index(drop=True)


def _writes(store, name, lo, hi, top_n) -> pd.DataFrame | None:
    """Tables by rows written in the window, beside the baseline of the same length."""
    try:
        w, b = store.table_growth(lo, hi, target=name), store.table_growth(lo - (hi - lo), lo, target=name)
    except Exception:  # noqa: BLE001 - too little history for growth
        return None
    if w is None or not len(w):
        return None
    cols = [c for c in ("n_tup_ins", "n_tup_upd", "n_tup_del") if c in w.columns]
    if not cols:
        return None
    w = w.assign(writes=w[cols].fillna(0).sum(axis=1))
    if b is not None and len(b) and all(c in b.columns for c in cols):
        b = b.assign(writes_before=b[cols].fillna(0).sum(axis=1))[["schema", "table", "writes_before"]]
        w = w.merge(b, on=["schema", "table"], how="left")
    else:
        w["writes_before"] = pd.NA
    w = w[w["writes"] > 0].sort_values("writes", ascending=False).head(top_n)
    return w[["schema", "table", "writes", "writes_before"]].reset_index(drop=True)
