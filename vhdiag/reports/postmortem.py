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

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..analysis import incident as I
from ..analysis import slow_queries as sq
from ..config import resolve_config
from ..errors import ConfigError
from ..timeparse import parse_duration, parse_time
from .base import Param, Report, resolve_params
from .data import open_inputs

TITLE = "Post-mortem"
DESCRIPTION = "an incident's window, impact, timeline, response against the runbook, probable causes and drafts"
EVENT_KINDS_HINT = "deploy, config, restart, scaling, escalation, ..."


def _time(text: str) -> str:
    try:
        return parse_time(text).isoformat()
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{text!r} is not a time: give ISO 8601 such as 2026-11-29T12:03:00Z ({exc})") from None


def _duration(text: str) -> str:
    try:
        if parse_duration(text) <= pd.Timedelta(0):
            raise ValueError
    except (ValueError, ConfigError):
        raise ConfigError(f"{text!r} is not a positive duration: give e.g. 2h, 10m") from None
    return text


def _severity(text: str) -> str:
    sev = text.strip().upper()
    if sev not in ("P1", "P2", "P3", "P4"):
        raise ConfigError(f"severity {text!r} is not one of the runbook's P1, P2, P3, P4: e.g. -p severity=P1")
    return sev


def _events_file(text: str) -> str:
    read_events(text)   # malformed: one line, before any kernel starts
    return text


def _metrics_source(text: str) -> str:
    if not re.match(r"^[a-z][a-z0-9+]*://", text) and not Path(text).expanduser().is_file():
        raise ConfigError(f"metrics file {text} does not exist: give a CSV or Parquet file, a Prometheus URL "
                          "or the history store (sqlite:///PATH)")
    return text


PARAMS = [
    Param("around", str, "", "a time inside the incident: the report finds the window from the breaches and "
          "database events around it (instead of --since/--until)", validate=_time),
    Param("search", str, "2h", "how far around `around` to look", validate=_duration),
    Param("title", str, "", "the incident's title; empty: from the top probable cause"),
    Param("severity", str, "", "P1 to P4; empty: proposed from the impact (runbook 3)", validate=_severity),
    Param("acknowledged_at", str, "", "when the alert was acknowledged", validate=_time),
    Param("assessed_at", str, "", "when the impact was assessed", validate=_time),
    Param("mitigated_at", str, "", "when the impact was mitigated", validate=_time),
    Param("resolved_at", str, "", "when the incident was resolved", validate=_time),
    Param("metrics", str, "", "metric history: a CSV/Parquet file or a Prometheus URL; empty: the history "
          "store's own series (connections, TPS)", validate=_metrics_source),
    Param("events", str, "", f"a CSV of ts,kind,description ({EVENT_KINDS_HINT})", validate=_events_file),
    Param("service", str, "VH-M24", "the service named in the customer notification (runbook 8)"),
    Param("outage_error_pct", float, 90.0, "an error rate at or over this is a complete outage (P1); the runbook "
          "gives no number, this is vhdiag's", minimum=0),
    Param("merge_gap", str, "10m", "breaches this close together are one incident", validate=_duration),
    Param("lead_minutes", float, 30.0, "a deploy or config change this long before the onset is a suspect",
          minimum=0),
    Param("slo_period_days", float, 30.0, "the SLO period whose error budget the incident used", minimum=1),
    Param("top_n", int, help="statements and tables shown", setting="reports.top_n", minimum=1),
    Param("regression_ratio", float, help="a query change is at least this many times the baseline mean",
          setting="statements.regression_ratio", minimum=1),
    Param("regression_floor_ms", float, help="... and this many ms slower", setting="statements.regression_floor_ms",
          minimum=0),
]

TIME_PARAMS = ("acknowledged_at", "assessed_at", "mitigated_at", "resolved_at")


def read_events(path) -> pd.DataFrame:
    """The user's events file (CSV ``ts,kind,description``, a header line optional) as
    (ts UTC, kind, description); anything else is one line naming the line."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the events file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    rows = []
    for n, rec in enumerate(csv.reader(io.StringIO(text)), 1):
        if not rec or all(not c.strip() for c in rec):
            continue
        if n == 1 and [c.strip().lower() for c in rec[:3]] == ["ts", "kind", "description"]:
            continue
        if len(rec) != 3:
            raise ConfigError(f"events file {path}, line {n}: expected 3 fields ts,kind,description, got {len(rec)}")
        try:
            ts = parse_time(rec[0].strip())
        except (ValueError, ConfigError):
            raise ConfigError(f"events file {path}, line {n}: {rec[0].strip()!r} is not a time "
                              "(ISO 8601, e.g. 2026-11-29T12:00:00Z)") from None
        if not rec[1].strip():
            raise ConfigError(f"events file {path}, line {n}: the kind is empty ({EVENT_KINDS_HINT})")
        rows.append((ts, rec[1].strip(), rec[2].strip()))
    frame = pd.DataFrame(rows, columns=["ts", "kind", "description"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.sort_values("ts").reset_index(drop=True)


def check_params(p: dict) -> None:
    """Response times in order: acknowledged <= assessed <= mitigated <= resolved."""
    given = [(k, pd.Timestamp(p[k])) for k in TIME_PARAMS if p.get(k)]
    for (a, ta), (b, tb) in zip(given, given[1:]):
        if tb < ta:
            raise ConfigError(f"{b} ({tb:%Y-%m-%d %H:%M:%S} UTC) is before {a} ({ta:%Y-%m-%d %H:%M:%S} UTC): "
                              "the times are reversed; check -p " + b)


def run_window(p: dict, since, until, window, now=None):
    """The runner's window: around +- search when ``around`` is given; else --since/--until,
    which a post-mortem needs (there is no default incident)."""
    if p.get("around"):
        if since or until or window:
            raise ConfigError("give either -p around=TIME or --since/--until, not both")
        at, span = pd.Timestamp(p["around"]), parse_duration(p["search"])
        return (at - span).isoformat(), (at + span).isoformat(), None
    if not since and not window:
        raise ConfigError("a post-mortem needs the incident's time: give --since T --until T, or -p around=TIME")
    return since, until, window


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
    events = I.db_events(in_range, view, ddl, thresholds["db_connections"])
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
        r.timeline = I.timeline([])
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
    r.hypotheses = I.causes(imp=r.impact, breaches=r.breaches, events=events, regressions=regressions,
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
    rows = I.metric_timeline(m, r.breaches, start, end) + events
    if user_events is not None:
        near = user_events[(user_events["ts"] >= start - lead) & (user_events["ts"] <= end + lead)]
        rows += [{"ts": e.ts, "source": "events file", "event": e.kind, "detail": e.description} for e in near.itertuples()]
    done = dict(zip(I.STEPS, ("acknowledged", "assessed", "mitigated", "resolved")))
    rows += [{"ts": t, "source": "response", "event": done[step], "detail": f"{I.minutes(t - start):g} min after the start"}
             for step, t in times.items() if t is not None]
    r.timeline = I.timeline(rows)
    r.title = p["title"] or (f"{r.hypotheses[0]['title'][0].upper()}{r.hypotheses[0]['title'][1:]} on {name}"
                             if r.hypotheses else f"Incident on {name}")
    r.findings = I.findings(subject=name, breaches=r.breaches, severity=r.severity, rule=r.severity_rule,
                            given=r.severity_given, resp=r.response, esc=r.escalation, hypotheses=r.hypotheses,
                            query_changes=regressions, events=events)
    _drafts(r, p, times, name)
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


def _drafts(r: PostmortemReport, p, times, name) -> None:
    imp = r.impact
    short = []
    if "failing_share_pct" in imp:
        short.append(f"{imp['failing_share_pct']:.0f}% of requests failing (peak {imp['peak_error_rate_pct']:.0f}%)")
    if "peak_response_time_p95_ms" in imp:
        short.append(f"p95 response time up to {imp['peak_response_time_p95_ms'] / 1000:.1f} s")
    budget = ""
    if r.budget is not None and len(r.budget):
        top = r.budget.sort_values("budget_used_pct", ascending=False).iloc[0]
        budget = (f"{top['budget_used_pct']:g} % of the {p['slo_period_days']:g}-day budget of {top['metric']} "
                  f"({top['minutes_missed']:.2f} of {top['budget_minutes']:g} min)")
    facts = {"title": r.title, "target": name, "severity": r.severity, "severity_rule": r.severity_rule,
             "start": r.start, "end": r.end, "impact": I.impact_lines(imp), "impact_short": "; ".join(short),
             "budget": budget, "notes": r.notes, "timeline": r.timeline, "response": r.response,
             "escalation": r.escalation, "hypotheses": r.hypotheses, "service": p["service"],
             "actions": [], **{k: times[s] for s, k in zip(I.STEPS, I.TIME_KEYS)}}
    r.markdown = I.postmortem_markdown(facts)
    r.messages = I.messages(facts)
    r.artefacts.update({"md": r.markdown, "status_page.txt": r.messages["status_page"],
                        "customer.txt": r.messages["customer"], "team.txt": r.messages["team"]})


# -- what the notebook shows --------------------------------------------------------------------
def summary_rows(r: PostmortemReport) -> pd.DataFrame:
    rows = [("target", r.target_display)]
    if r.found:
        rows += [("title", r.title), ("severity", r.severity_rule),
                 ("start", I.fmt_ts(r.start)), ("end", I.fmt_ts(r.end)),
                 ("duration", I.duration_words(r.end - r.start)), ("window", r.how)]
        rows += [("impact", line) for line in I.impact_lines(r.impact)]
    else:
        rows += [("searched", f"{I.fmt_ts(r.since)} to {I.fmt_ts(r.until)}"), ("result", "no incident found")]
    return pd.DataFrame(rows, columns=["what", "value"])


def hypothesis_rows(r: PostmortemReport) -> pd.DataFrame:
    rows = []
    for h in r.hypotheses:
        rows += [(h["rank"], h["title"], "for", x) for x in h["for"]]
        rows += [(h["rank"], h["title"], "against", x) for x in h["against"]]
    return pd.DataFrame(rows, columns=["rank", "hypothesis", "evidence", "row"])
