"""An incident from its metric history and the database's own history: the window, the impact,
the severity, the timeline, the response against the runbook, probable causes and the drafts to
send (runbook 3 "Incident Response" and "Post-Mortem (24 hours)", 8 "Communication Templates",
9 "Escalation Procedures"). Pure functions over frames: no database, no file.

Metric ids are the runbook's five (``cpu_pct``, ``memory_pct``, ``error_rate_pct``,
``response_time_p95_ms``, ``db_connections``); thresholds, severities, response targets and
escalation come from the settings, so a ``vhdiag.toml`` changes them here too.
"""
from __future__ import annotations

import pandas as pd

from .findings import finding, plural

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


# -- timeline ---------------------------------------------------------------------------------
def metric_timeline(metrics: pd.DataFrame, breaches: pd.DataFrame, start, end) -> list[dict]:
    """First warning and critical crossing of each metric, its peak and its recovery."""
    rows = []
    if breaches is None or not len(breaches):
        return rows
    for metric, group in breaches.groupby("metric"):
        name = METRICS.get(metric, metric)
        for level in ("warning", "critical"):
            lv = group[group["level"] == level].sort_values("start")
            if len(lv):
                first = lv.iloc[0]
                rows.append({"ts": first["start"], "source": "metrics", "event": f"{name} {level}",
                             "detail": f"over {value(metric, first['threshold'])} (peak {value(metric, lv['peak'].max())})"})
        sub = metrics[(metrics["metric"] == metric) & (metrics["ts"] >= start) & (metrics["ts"] <= end)]
        if len(sub):
            top = sub.loc[sub["value"].idxmax()]
            rows.append({"ts": top["ts"], "source": "metrics", "event": f"{name} peak",
                         "detail": value(metric, top["value"])})
        warn = group[group["level"] == "warning"].sort_values("end")
        if len(warn) and warn.iloc[-1]["ended_by"] == "recovery":
            rows.append({"ts": warn.iloc[-1]["end"], "source": "metrics", "event": f"{name} recovered",
                         "detail": f"back at or under {value(metric, warn.iloc[-1]['threshold'])}"})
    return rows


def db_events(snapshots: pd.DataFrame, view: dict, ddl: list[dict], conn_thresholds: dict) -> list[dict]:
    """Database events from the history: restarts and resets, configuration changes between
    snapshots, DDL, connection bursts, idle-in-transaction sessions and lock waits. Each is at the
    snapshot that saw it (it happened since the snapshot before)."""
    rows = []
    for r in (snapshots if snapshots is not None else pd.DataFrame(columns=["ts", "events"])).itertuples():
        for ev in [e for e in str(r.events or "").split(",") if e in ("restart", "reset", "crash", "upgrade")]:
            rows.append({"ts": r.ts, "source": "database", "event": f"server {ev}" if ev != "reset" else "stats reset",
                         "detail": "seen by the snapshot (it happened since the one before)", "kind": ev})
    settings = view.get("settings")
    if settings is not None and len(settings):
        prev = None
        for ts, group in settings.groupby("ts"):
            now = dict(zip(group["name"], group["value"]))
            if prev is not None:
                for name in sorted(set(now) | set(prev)):
                    if now.get(name) != prev.get(name):
                        rows.append({"ts": ts, "source": "database", "event": "configuration change",
                                     "detail": f"{name}: {prev.get(name, 'default')} -> {now.get(name, 'default')}",
                                     "kind": "config"})
            prev = now
    for d in ddl:
        rows.append({"ts": d["ts"], "source": "database", "event": "DDL", "detail": d["query"], "kind": "ddl",
                     "queryid": d.get("queryid")})
    conns = view.get("connections")
    if conns is not None and len(conns):
        totals = conns.groupby("ts")["connections"].sum()
        for ts, n in totals.items():
            if n > conn_thresholds["warning"]:
                level = "critical" if n > conn_thresholds["critical"] else "warning"
                rows.append({"ts": ts, "source": "database", "event": "connection burst",
                             "detail": f"{int(n)} connections (over the {level} {conn_thresholds[level]:g})",
                             "kind": "connections", "connections": int(n)})
    for b in lock_pileups(view.get("sessions")):
        rows.append({"ts": b["ts"], "source": "database", "event": "lock waits",
                     "detail": f"{plural(b['waiters'], 'session')} waiting behind pid {b['pid']} "
                               f"(application {b['application'] or '(none)'}, {b['state']} for {b['state_s']:.0f} s)",
                     "kind": "locks", **b})
    sessions = view.get("sessions")
    if sessions is not None and len(sessions):
        idle = sessions[sessions["state"].fillna("").str.startswith("idle in transaction")]
        for pid, group in idle.groupby("pid"):
            first = group.sort_values("ts").iloc[0]
            rows.append({"ts": first["ts"], "source": "database", "event": "idle in transaction",
                         "detail": f"pid {pid} (application {first['application'] or '(none)'}), "
                                   f"idle in transaction for {float(first['state_duration_s'] or 0):.0f} s",
                         "kind": "idle_tx"})
    return rows


def lock_pileups(sessions: pd.DataFrame | None) -> list[dict]:
    """Per snapshot, each root blocker (blocks others, waits on nobody) and how many wait on it,
    directly or down the queue."""
    out = []
    if sessions is None or not len(sessions):
        return out
    for ts, group in sessions.groupby("ts"):
        by_pid = {int(r.pid): r for r in group.itertuples()}
        waiting = {pid: [int(x) for x in str(r.blocked_by).split(",") if x.strip().isdigit()]
                   for pid, r in by_pid.items() if isinstance(r.blocked_by, str) and r.blocked_by}
        roots = [pid for pid, r in by_pid.items() if (r.blocking_count or 0) > 0 and pid not in waiting]
        for root in roots:
            behind = {p for p, blockers in waiting.items() if _reaches(p, root, waiting)}
            r = by_pid[root]
            out.append({"ts": ts, "pid": root, "application": r.application or "", "user": r.user or "",
                        "state": r.state or "", "state_s": float(r.state_duration_s or 0), "waiters": len(behind)})
    return out


def _reaches(pid, root, waiting, seen=None) -> bool:
    seen = seen or set()
    if pid in seen:
        return False
    seen.add(pid)
    blockers = waiting.get(pid, [])
    return root in blockers or any(_reaches(b, root, waiting, seen) for b in blockers)


def timeline(rows: list[dict]) -> pd.DataFrame:
    """One table in UTC, by time (metrics, then database, user, response at the same second)."""
    order = {"metrics": 0, "database": 1, "events file": 2, "response": 3}
    frame = pd.DataFrame([{k: r[k] for k in TIMELINE_COLUMNS} for r in rows], columns=TIMELINE_COLUMNS)
    if frame.empty:
        return frame
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["_o"] = frame["source"].map(order).fillna(9)
    return frame.sort_values(["ts", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


# -- probable causes --------------------------------------------------------------------------
def causes(*, imp: dict, breaches: pd.DataFrame, events: list[dict], regressions: pd.DataFrame | None,
           user_events: pd.DataFrame | None, start, conn_thresholds: dict, max_connections: int | None,
           lead: pd.Timedelta) -> list[dict]:
    """Hypotheses, ranked by the weight of their evidence: each has the rows that support it
    (``for``) and the ones that argue against it (``against``). Only hypotheses with support are
    returned: a quiet window has none."""
    seen = set(imp.get("seen", []))
    b = breaches if breaches is not None else pd.DataFrame(columns=["metric", "level"])
    out = []

    def hyp(key, title, pro, con, suggestion):
        if pro:
            out.append({"cause": key, "title": title, "for": [t for t, _ in pro], "against": [t for t, _ in con],
                        "score": sum(w for _, w in pro) - sum(w for _, w in con), "suggestion": suggestion})

    piles = [e for e in events if e.get("kind") == "locks"]
    conn_peak = max([e["connections"] for e in events if e.get("kind") == "connections"] +
                    ([imp["peak_db_connections"]] if "peak_db_connections" in imp else []), default=None)
    err_up = "error_rate_pct" in set(b["metric"])
    # a lock pile-up: one blocker and many waiters
    pro, con = [], []
    if piles:
        top = max(piles, key=lambda e: e["waiters"])
        pro.append((f"{fmt_ts(top['ts'])}: {plural(top['waiters'], 'session')} waited behind pid {top['pid']} "
                    f"(application {top['application'] or '(none)'}, user {top['user']}, {top['state']} "
                    f"for {top['state_s']:.0f} s)", 3))
        if top["state"].startswith("idle in transaction"):
            pro.append((f"the blocker was idle in transaction: it held its locks while doing nothing", 1))
        if conn_peak and top["waiters"] * 3 >= conn_peak:
            pro.append((f"the waiters were {top['waiters']} of the {conn_peak} connections at the peak", 1))
        if not err_up and "error_rate_pct" in seen:
            con.append(("the error rate stayed under its warning threshold", 1))
    hyp("lock_pileup", "a lock pile-up behind one session", pro, con,
        "find the blocker's code path (application name above) and end its transaction sooner; set "
        "idle_in_transaction_session_timeout; SELECT pg_terminate_backend(PID) ends one by hand")
    # connection pool exhaustion: connections at or near the limit while the error rate climbs
    pro, con = [], []
    near = conn_peak is not None and (conn_peak > conn_thresholds["critical"] or
                                      (max_connections and conn_peak >= 0.9 * max_connections))
    if conn_peak is not None and conn_peak > conn_thresholds["warning"]:
        limit = f" of max_connections {max_connections}" if max_connections else ""
        pro.append((f"connections peaked at {conn_peak}{limit} (warning over {conn_thresholds['warning']:g}, "
                    f"critical over {conn_thresholds['critical']:g})", 2 if near else 1))
        if err_up:
            pro.append(("the error rate climbed over its threshold in the same window", 1))
        if piles:
            top = max(piles, key=lambda e: e["waiters"])
            if top["waiters"] * 3 >= conn_peak:
                con.append((f"{top['waiters']} of the {conn_peak} connections were waiting on locks: the burst "
                            "looks like a symptom of the lock pile-up", 2))
    hyp("connection_exhaustion", "connection pool exhaustion", pro, con,
        "runbook 2 Database Connection Issues: increase the pool size, find connection leaks, restart the "
        "pooler")
    # a regressed query: mean time up (while CPU climbs)
    pro, con = [], []
    if regressions is not None and len(regressions):
        r = regressions.iloc[0]
        pro.append((f"{r['query'][:120]}: mean {r.get('mean_before_ms', float('nan')):.1f} ms in the baseline, "
                    f"{r['mean_exec_ms']:.1f} ms in the window", 2))
        drops = [e for e in events if e.get("kind") == "ddl" and "drop" in str(e["detail"]).lower()]
        if drops:
            pro.append((f"{fmt_ts(drops[0]['ts'])}: DDL {drops[0]['detail'][:120]}", 1))
        if "cpu_pct" in set(b["metric"]):
            pro.append(("CPU climbed over its threshold in the window", 1))
        elif "cpu_pct" in seen:
            con.append(("CPU stayed under its warning threshold", 1))
    hyp("regressed_query", "a regressed query", pro, con,
        "runbook 2 Slow Queries: EXPLAIN the statement, restore the index it lost or add one")
    # memory pressure
    pro, con = [], []
    mem = b[b["metric"] == "memory_pct"] if len(b) else b
    if len(mem):
        pro.append((f"memory over its {mem['level'].iloc[-1]} threshold (peak {mem['peak'].max():.1f} %)",
                    3 if "critical" in set(mem["level"]) else 2))
    hyp("memory_pressure", "memory pressure", pro, con, "runbook 2 High Memory Usage: find the consumer, scale up")
    # a deploy or configuration change just before the onset
    pro = []
    if user_events is not None and len(user_events):
        near_ev = user_events[(user_events["ts"] <= start) & (user_events["ts"] >= start - lead)
                              & user_events["kind"].str.lower().isin(["deploy", "deployment", "release"])]
        for r in near_ev.itertuples():
            pro.append((f"{fmt_ts(r.ts)}: {r.kind} {r.description[:120]} "
                        f"({minutes(start - r.ts):g} min before the onset)", 3))
    hyp("deploy", "a deploy just before the onset", pro, [], "runbook 3 Mitigate: rollback deployment")
    pro = [(f"{fmt_ts(e['ts'])}: {e['detail']}", 2) for e in events
           if e.get("kind") == "config" and start - lead <= e["ts"] <= start + lead]
    hyp("config_change", "a configuration change", pro, [], "revert the setting and reload (SELECT pg_reload_conf())")
    out.sort(key=lambda h: -h["score"])
    for i, h in enumerate(out, 1):
        h["rank"] = i
    return out


# -- findings and drafts ----------------------------------------------------------------------
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


def impact_lines(imp: dict) -> list[str]:
    """The impact in words: peak error rate, share of requests failing, p95, minutes over each threshold."""
    lines = []
    if "peak_error_rate_pct" in imp:
        lines.append(f"Peak error rate {imp['peak_error_rate_pct']:.1f} % at {hhmm(imp['peak_error_rate_pct_at'])} UTC; "
                     f"about {imp['failing_share_pct']:.1f} % of requests failed over the incident")
    if "peak_response_time_p95_ms" in imp:
        lines.append(f"p95 response time up to {imp['peak_response_time_p95_ms']:,.0f} ms")
    if "peak_db_connections" in imp:
        lines.append(f"DB connections up to {imp['peak_db_connections']:.0f}")
    for key, m in sorted(imp.get("minutes_over", {}).items()):
        metric, level = key.split(":")
        lines.append(f"{METRICS.get(metric, metric)}: {duration_words(pd.Timedelta(minutes=m))} over the "
                     f"{level} threshold")
    return lines


def _status(f: dict) -> str:
    return "Resolved" if f.get("resolved_at") is not None else "Monitoring" if f.get("mitigated_at") else "Investigating"


def _span(f: dict) -> str:
    end = f.get("resolved_at") or f["end"]
    return f"{hhmm(f['start'])} and {hhmm(end)} UTC"


def messages(f: dict) -> dict:
    """The runbook's three messages (runbook 8 "Communication Templates"), with the real times,
    impact and status. Keys: status_page, customer, team."""
    sev = f["severity"]
    headline = {"P1": "Service Outage", "P2": "Partial Outage"}.get(sev, "Service Degradation")
    scope = {"P1": "Full", "P2": "Partial"}.get(sev, "Degraded")
    resolved = f.get("resolved_at") is not None
    body = (f"Between {_span(f)} we experienced {'an outage' if sev == 'P1' else 'issues'} affecting "
            f"{'all' if sev == 'P1' else 'some'} users.\nThe issue is resolved and we are monitoring."
            if resolved else "We are experiencing performance issues affecting some users.\nOur team is investigating.")
    status_page = (f"\U0001F534 INCIDENT: {headline}\n\n{body}\n\nStatus: {_status(f)}\nImpact: {scope}\n"
                   f"Started: {pd.Timestamp(f['start']).strftime('%Y-%m-%d %H:%M')} UTC\n"
                   + (f"Resolved: {pd.Timestamp(f['resolved_at']).strftime('%Y-%m-%d %H:%M')} UTC\n" if resolved else ""))
    customer = (f"Subject: Service Incident - {f['service']}\n\n"
                f"We experienced a {'service interruption' if sev in ('P1', 'P2') else 'service degradation'} "
                f"between {_span(f)}.\n"
                + ("Service has been restored and is operating normally.\n" if resolved else
                   f"We are working on it and will update you by {TO_FILL.format('time')}.\n")
                + "\nWe apologize for the inconvenience.\n")
    impact_txt = f.get("impact_short") or TO_FILL.format("impact")
    actions = [f"- {a}" for a in f.get("actions", [])] or [f"- {TO_FILL.format('what was done')}"]
    team = (f"@oncall-team\n\n{sev} Incident: {f['title']}\nStarted: {pd.Timestamp(f['start']).strftime('%Y-%m-%d %H:%M')} UTC\n"
            f"Impact: {impact_txt}\nStatus: {_status(f)}\n\nActions:\n" + "\n".join(actions) + "\n\n"
            + (f"Resolved: {hhmm(f['resolved_at'])} UTC\n" if resolved else f"ETA: {TO_FILL.format('ETA')}\n"))
    return {"status_page": status_page, "customer": customer, "team": team}


def _md_table(frame: pd.DataFrame, columns: list[str]) -> str:
    def cell(v):
        if isinstance(v, pd.Timestamp):
            return fmt_ts(v)
        text = "" if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)) else str(v)
        return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace("`", "'")
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(cell(r[c]) for c in columns) + " |\n" for _, r in frame.iterrows())


def postmortem_markdown(f: dict) -> str:
    """``postmortem.md``: the runbook's post-mortem (runbook 3 "Post-Mortem (24 hours)": document
    the incident, identify the root cause, plan improvements, update the runbook), pre-filled with
    the facts; every place a person must write is marked **[TO FILL: ...]**."""
    lines = [f"# Post-mortem: {f['title']}", "",
             f"*Draft by vhdiag from the metric history and the database's history of {f['target']}; "
             f"every **[TO FILL: ...]** needs a person. Due within 24 hours of a P1 (runbook 3).*", "",
             "## Incident", "",
             f"- **Severity:** {f['severity_rule']}",
             f"- **Start:** {fmt_ts(f['start'])}",
             f"- **End:** {fmt_ts(f['end'])} ({duration_words(f['end'] - f['start'])}, from the metrics)"]
    for step, key in zip(STEPS, TIME_KEYS):
        when = fmt_ts(f[key]) if f.get(key) is not None else TO_FILL.format("time")
        lines.append(f"- **{key.split('_')[0].capitalize()}:** {when}")
    lines += ["- **Impact:**"] + [f"  - {x}" for x in f["impact"]] + [
        f"  - Customers affected: {TO_FILL.format('who was affected, from the application side')}"]
    if f.get("budget"):
        lines.append(f"  - Error budget used: {f['budget']}")
    for note in f.get("notes", []):
        lines.append(f"- *Not seen:* {note}")
    lines += ["", "### What happened", "", TO_FILL.format("two or three sentences a reader outside the team follows"),
              "", "### Timeline (UTC)", "", _md_table(f["timeline"], ["ts", "source", "event", "detail"])
              if len(f["timeline"]) else "No event in the window.", "",
              "### Response against the runbook", "",
              _md_table(f["response"], ["step", "at", "minutes", "target_minutes", "verdict"]), "",
              _md_table(f["escalation"], ["level", "who", "rule", "required", "recorded"]), "",
              "## Root cause", "",
              "Probable causes found by vhdiag, ranked. **They are hypotheses**: confirm or reject each.", ""]
    if f["hypotheses"]:
        for h in f["hypotheses"]:
            lines.append(f"{h['rank']}. **{h['title']}**")
            lines += [f"   - for: {x}" for x in h["for"]] + [f"   - against: {x}" for x in h["against"]]
    else:
        lines.append("vhdiag found no probable cause in the data it had.")
    lines += ["", f"Root cause: {TO_FILL.format('the confirmed cause, and why it happened')}", "",
              "## Improvements", ""]
    lines += [f"- [ ] {h['suggestion']} ({TO_FILL.format('owner, due date')})" for h in f["hypotheses"][:2]]
    lines += [f"- [ ] {TO_FILL.format('what prevents a recurrence; what detects it sooner')}", "",
              "## Runbook updates", "", f"- {TO_FILL.format('what the runbook lacked or got wrong for this incident')}",
              ""]
    return "\n".join(lines)
