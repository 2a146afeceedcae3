"""An incident from its metric history and the database's own history: the window, the impact,
the severity, the response against the runbook and the findings (runbook 3 "Incident Response",
9 "Escalation Procedures"). Pure functions over frames: no database, no file.

Metric ids are the runbook's five (``cpu_pct``, ``memory_pct``, ``error_rate_pct``,
``response_time_p95_ms``, ``db_connections``); thresholds, severities, response targets and
escalation come from the settings, so a ``vhdiag.toml`` changes them here too.

This module also holds the incident's vocabulary (metric names, units, response steps) and the
formats its siblings share: ``incident_timeline`` (what happened and when), ``incident_causes``
(the ranked hypotheses) and ``incident_drafts`` (the post-mortem and the messages to send).
"""
from __future__ import annotations

import pandas as pd

from .findings import finding

METRICS = {"cpu_pct": "CPU", "memory_pct": "Memory", "error_rate_pct": "Error rate",
           "response_time_p95_ms": "Response time (p95)", "db_connections": "DB connections"}
UNITS = {"cpu_pct": " %", "memory_pct": " %", "error_rate_pct": " %", "response_time_p95_ms": " ms",
         "db_connections": ""}
STEPS = ("acknowledge", "assess", "mitigate", "resolve")
TIME_KEYS = ("acknowledged_at", "assessed_at", "mitigated_at", "resolved_at")
TIMELINE_COLUMNS = ["ts", "source", "event", "detail"]
TO_FILL = "**[TO FILL: {}]**"


def fmt_ts(ts) -> str:
    return "" if ts is None or pd.isna(ts) else pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def hhmm(ts) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%H:%M")


def minutes(delta) -> float:
    return round(pd.Timedelta(delta).total_seconds() / 60, 2)


def duration_words(delta) -> str:
    """``pd.Timedelta`` as people say it: "45 s", "12 min", "1 h 05 min"."""
    sec = int(round(pd.Timedelta(delta).total_seconds()))
    if sec < 60:
        return f"{sec} s"
    if sec < 3600:
        return f"{sec // 60} min" + (f" {sec % 60:02d} s" if sec % 60 and sec < 600 else "")
    return f"{sec // 3600} h {sec % 3600 // 60:02d} min"


def value(metric: str, v) -> str:
    v = float(v)
    return f"{v:,.0f}{UNITS.get(metric, '')}" if abs(v) >= 100 else f"{v:,.1f}{UNITS.get(metric, '')}"


# -- the window -------------------------------------------------------------------------------
def find_window(breaches: pd.DataFrame, db_times: list, around, search: pd.Timedelta,
                merge_gap: pd.Timedelta) -> tuple[pd.Timestamp | None, pd.Timestamp | None, str]:
    """(start, end, how) of the incident around ``around``: the threshold breach that contains it or
    starts nearest to it within ``search``, grown by every breach that overlaps or follows within
    ``merge_gap``. With no breach, the database events (``db_times``: snapshot times of lock waits,
    connection bursts) within ``search``. (None, None, why) when there is neither."""
    around = pd.Timestamp(around)
    b = breaches if breaches is not None else pd.DataFrame(columns=["start", "end"])
    b = b[(b["end"] >= around - search) & (b["start"] <= around + search)]
    if len(b):
        dist = [pd.Timedelta(0) if s <= around <= e else min(abs(s - around), abs(e - around))
                for s, e in zip(b["start"], b["end"])]
        seed = b.iloc[min(range(len(dist)), key=lambda i: dist[i])]
        start, end = seed["start"], seed["end"]
        grown = True
        while grown:
            grown = False
            for s, e in zip(b["start"], b["end"]):
                if s <= end + merge_gap and e >= start - merge_gap and (s < start or e > end):
                    start, end, grown = min(start, s), max(end, e), True
        return start, end, "from the threshold breaches around the given time"
    near = sorted(t for t in db_times if abs(t - around) <= search)
    if near:
        return near[0], near[-1], "from the database events around the given time (no metric breach)"
    return None, None, "no threshold breach and no database event within the search range"


# -- impact and severity ----------------------------------------------------------------------
def impact(metrics: pd.DataFrame, breaches: pd.DataFrame, start, end) -> dict:
    """Peaks, the share of requests failing (mean error rate), minutes over each threshold."""
    out: dict = {"seen": sorted(set(metrics["metric"])) if metrics is not None and len(metrics) else []}
    if metrics is not None and len(metrics):
        w = metrics[(metrics["ts"] >= start) & (metrics["ts"] <= end)]
        for metric in METRICS:
            sub = w[w["metric"] == metric]
            if len(sub):
                top = sub.loc[sub["value"].idxmax()]
                out[f"peak_{metric}"] = float(top["value"])
                out[f"peak_{metric}_at"] = top["ts"]
        err = w[w["metric"] == "error_rate_pct"]
        if len(err):
            out["failing_share_pct"] = round(float(err["value"].mean()), 2)
    over = {}
    if breaches is not None:
        for r in breaches.itertuples():
            s, e = max(r.start, start), min(r.end, end)
            if e > s:
                key = f"{r.metric}:{r.level}"
                over[key] = round(over.get(key, 0) + minutes(e - s), 2)
    out["minutes_over"] = over
    return out


def propose_severity(imp: dict, db_signals: dict, severities: dict, outage_error_pct: float,
                     thresholds: dict) -> tuple[str, str]:
    """(P1..P4, the rule applied) from the runbook's definitions: P1 complete outage, P2 partial
    outage, P3 degraded performance, P4 minor issue (runbook 3 "Incident Severity Levels")."""
    def say(p, why):
        return p, f"{p} ({severities[p]['impact']}): {why}"
    err, rt = imp.get("peak_error_rate_pct"), imp.get("peak_response_time_p95_ms")
    err_t, rt_t = thresholds["error_rate_pct"], thresholds["response_time_p95_ms"]
    if err is not None and err >= outage_error_pct:
        return say("P1", f"the error rate reached {err:.1f} %, at or above {outage_error_pct:g} % "
                         "(vhdiag counts that as a complete outage)")
    if err is not None and err > err_t["critical"]:
        return say("P2", f"the error rate reached {err:.1f} %, over the critical {err_t['critical']:g} % "
                         f"but under {outage_error_pct:g} %: requests failed for part of the users")
    if err is not None and err > err_t["warning"]:
        return say("P3", f"the error rate reached {err:.1f} %, over the warning {err_t['warning']:g} % only")
    if rt is not None and rt > rt_t["warning"]:
        return say("P3", f"the p95 response time reached {rt:,.0f} ms, over {rt_t['warning']:g} ms, "
                         "while requests kept succeeding")
    if err is None and rt is None:
        if db_signals.get("lock_waiters") or db_signals.get("connections_critical"):
            return say("P3", "no error rate or response time data: proposed from the database alone "
                             "(lock waits or connections over the critical threshold degrade service); "
                             "confirm it from the application's side")
        return say("P4", "no error rate or response time data, and the database showed only minor signs")
    return say("P4", "no user-facing metric crossed a threshold; only infrastructure metrics did")


# -- response against the runbook -------------------------------------------------------------
def response(start, times: dict, targets: dict) -> pd.DataFrame:
    """Time to acknowledge, assess, mitigate and resolve against the severity's targets (minutes
    from the start; a step the runbook gives no target for has none)."""
    rows = []
    for step in STEPS:
        at = times.get(step)
        target = targets.get(f"{step}_minutes")
        took = minutes(at - start) if at is not None else None
        met = None if at is None or target is None else took <= target
        rows.append({"step": step, "at": at, "minutes": took, "target_minutes": target,
                     "met": met, "verdict": "not given" if at is None else "no target for this severity"
                     if target is None else ("met" if met else f"missed by {took - target:.1f} min")})
    return pd.DataFrame(rows)


def escalation(start, resolved, down_minutes: float, levels: dict, user_events: pd.DataFrame,
               acknowledged=None) -> pd.DataFrame:
    """Which escalation levels the runbook required (runbook 9: level 2 after 15 min unresolved,
    level 3 after 30, level 4 when the service was down over an hour) and whether an ``escalation``
    event in the events file records it."""
    unresolved = minutes(resolved - start)
    rows = []
    for key, lvl in sorted(levels.items()):
        n = int(key.replace("level", ""))
        if "after_down_minutes" in lvl:
            limit, basis, span = lvl["after_down_minutes"], "down", down_minutes
        else:
            limit, basis, span = lvl["after_unresolved_minutes"], "unresolved", unresolved
        required = span > limit if basis == "down" or limit > 0 else True
        esc = user_events[user_events["kind"].str.lower() == "escalation"] if user_events is not None else None
        seen = esc[esc["description"].str.contains(f"level {n}", case=False) |
                   esc["description"].str.contains(lvl["who"], case=False)] if esc is not None else None
        reached = fmt_ts(seen["ts"].min()) if seen is not None and len(seen) else ""
        if n == 1 and acknowledged is not None and not reached:
            reached = f"acknowledged {fmt_ts(acknowledged)}"
        rows.append({"level": n, "who": lvl["who"], "rule": f"{basis} over {limit:g} min" if limit else "always",
                     "required": bool(required), "recorded": reached or ("not recorded in the events file"
                                                                       if required else "")})
    return pd.DataFrame(rows)


# -- findings ---------------------------------------------------------------------------------
def findings(*, subject, breaches, severity, rule, given, resp, esc, hypotheses, query_changes, events) -> list[dict]:
    out = []
    for r in (breaches.itertuples() if breaches is not None else []):
        out.append(finding("metric_breach", "critical" if r.level == "critical" else "warning", r.metric,
                           f"{METRICS.get(r.metric, r.metric)} over its {r.level} threshold for "
                           f"{minutes(r.end - r.start):g} min", f"{fmt_ts(r.start)} to {fmt_ts(r.end)}, peak "
                           f"{value(r.metric, r.peak)} (threshold {value(r.metric, r.threshold)})", "",
                           start=r.start.isoformat(), end=r.end.isoformat(), peak=r.peak, level=r.level))
    out.append(finding("severity", "info", subject, f"Severity {severity} ({'given' if given else 'proposed'})",
                       rule, "" if given else "confirm it, or give -p severity=P1..P4", priority=severity,
                       given=given))
    for r in resp.itertuples():
        if r.met is not None:
            out.append(finding("response_sla", "info" if r.met else "warning", r.step,
                               f"{r.step.capitalize()} after {r.minutes:g} min (target {r.target_minutes:g})",
                               r.verdict, "", minutes=r.minutes, target_minutes=r.target_minutes, met=bool(r.met)))
    for r in esc.itertuples():
        if r.required and r.level > 1:
            out.append(finding("escalation", "warning" if "not recorded" in r.recorded else "info", f"level{r.level}",
                               f"Escalation level {r.level} ({r.who}) was required", f"rule: {r.rule}; "
                               f"recorded: {r.recorded}", "record it in the events file as kind escalation",
                               level=r.level))
    for h in hypotheses:
        out.append(finding("cause_hypothesis", "warning" if h["rank"] == 1 else "info", h["cause"],
                           f"Hypothesis {h['rank']}: {h['title']}", "for: " + "; ".join(h["for"]) +
                           (" | against: " + "; ".join(h["against"]) if h["against"] else ""), h["suggestion"],
                           rank=h["rank"], score=h["score"], evidence_for=h["for"], evidence_against=h["against"]))
    for r in (query_changes.itertuples() if query_changes is not None else []):
        out.append(finding("query_change", "warning", str(r.queryid), f"Mean time {r.mean_before_ms:.1f} -> "
                           f"{r.mean_exec_ms:.1f} ms", f"calls {r.calls}", "EXPLAIN it (runbook 2 Slow Queries)",
                           queryid=r.queryid, query=r.query, mean_before_ms=r.mean_before_ms,
                           mean_exec_ms=r.mean_exec_ms))
    for e in events:
        out.append(finding("db_event", "info", e.get("kind", "db"), f"{e['event']} at {fmt_ts(e['ts'])}",
                           str(e["detail"]), "", ts=pd.Timestamp(e["ts"]).isoformat()))
    return out

