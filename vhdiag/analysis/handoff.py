"""The on-call handoff, from frames to sections and findings (runbook 10 "On-Call Rotation",
Handoff Procedure: "1. Review incidents from previous week 2. Check pending tasks 3. Verify
monitoring is working 4. Review recent changes 5. Confirm contact information").

Pure: the report (``vhdiag/reports/handoff.py``) reads the store, the metrics and the week's report
summaries and hands the frames here. Each function returns a frame the page shows; ``findings()``
turns them into the handoff's ``summary.json``. Pending tasks are copies of other reports' findings:
they carry ``metrics.from_report``, so the index does not count them twice.
"""
from __future__ import annotations

import pandas as pd

from .findings import finding, plural

ORDER = {"critical": 0, "warning": 1, "info": 2}
CHECK_ORDER = {"pass": 0, "warn": 1, "fail": 2}
SERVER_EVENTS = {"restart": "server restart", "crash": "server crash (restart after a crash)",
                 "upgrade": "major upgrade", "reset": "pg_stat_statements reset"}


def fmt(ts) -> str:
    return "" if ts is None or pd.isna(ts) else pd.Timestamp(ts).strftime("%a %d %b %H:%M UTC")


def hours(delta) -> float:
    return round(pd.Timedelta(delta).total_seconds() / 3600, 1)


# -- 1. incidents ------------------------------------------------------------------------------
def by_severity(found: list[dict]) -> list[dict]:
    """Findings most severe first (stable: within a severity, in the page's order)."""
    return sorted(found, key=lambda f: ORDER.get(f["severity"], 3))


def breach_rows(breaches: pd.DataFrame | None, since, until) -> pd.DataFrame:
    """The threshold breaches that overlap the week, by start (metrics.breaches' frame)."""
    cols = ["metric", "level", "start", "end", "duration_min", "peak", "threshold", "labels"]
    if breaches is None or not len(breaches):
        return pd.DataFrame(columns=cols)
    b = breaches[(breaches["end"] >= since) & (breaches["start"] < until)].copy()
    b["duration_min"] = (b["duration_s"] / 60).round(1)
    return b[cols].reset_index(drop=True)


def check_rows(runs: pd.DataFrame | None) -> pd.DataFrame:
    """Per check that failed or warned in the week: its worst status, how often, the last bad
    evidence and its fix (the store's ``check_results``)."""
    cols = ["check", "status", "runs", "failed", "warned", "last_bad", "evidence", "fix"]
    if runs is None or not len(runs):
        return pd.DataFrame(columns=cols)
    rows = []
    for check, g in runs.groupby("check", sort=True):
        bad = g[g["status"].isin(["warn", "fail"])].sort_values("ts")
        if not len(bad):
            continue
        last = bad.iloc[-1]
        worst = max(bad["status"], key=lambda s: CHECK_ORDER.get(s, 2))
        rows.append({"check": check, "status": worst, "runs": g["ts"].nunique(),
                     "failed": int((g["status"] == "fail").sum()), "warned": int((g["status"] == "warn").sum()),
                     "last_bad": last["ts"], "evidence": last["evidence"], "fix": last["fix"]})
    out = pd.DataFrame(rows, columns=cols)
    out["_o"] = [-CHECK_ORDER.get(s, 0) for s in out["status"]]
    return out.sort_values(["_o", "check"], kind="stable").drop(columns="_o").reset_index(drop=True)


# -- 4. recent changes -------------------------------------------------------------------------
def settings_changes(settings: pd.DataFrame | None, since) -> pd.DataFrame:
    """Settings whose value changed between two snapshots, the later one inside the week
    (``setting_values``: settings not at their default; gone from the list = back to default)."""
    cols = ["ts", "name", "before", "after"]
    rows = []
    if settings is not None and len(settings):
        prev = None
        for ts, g in settings.groupby("ts", sort=True):
            now = dict(zip(g["name"], g["value"]))
            if prev is not None and ts > since:
                for name in sorted(set(now) | set(prev)):
                    if now.get(name) != prev.get(name):
                        rows.append({"ts": ts, "name": name, "before": prev.get(name, "default"),
                                     "after": now.get(name, "default")})
            prev = now
    return pd.DataFrame(rows, columns=cols)


def index_changes(indexes: pd.DataFrame | None, since) -> pd.DataFrame:
    """Indexes that appeared or went between two snapshots, the later one inside the week."""
    cols = ["ts", "change", "schema", "table", "index"]
    rows = []
    if indexes is not None and len(indexes):
        prev = None
        for ts, g in indexes.groupby("ts", sort=True):
            now = {(r.schema, r.index): r.table for r in g.itertuples()}
            if prev is not None and ts > since:
                rows += [{"ts": ts, "change": "new", "schema": k[0], "table": now[k], "index": k[1]}
                         for k in sorted(set(now) - set(prev))]
                rows += [{"ts": ts, "change": "dropped", "schema": k[0], "table": prev[k], "index": k[1]}
                         for k in sorted(set(prev) - set(now))]
            prev = now
    return pd.DataFrame(rows, columns=cols)


def server_events(snapshots: pd.DataFrame | None, since) -> pd.DataFrame:
    """Restarts, crashes, upgrades and statistics resets the snapshots saw, and changes of the
    server's and pg_stat_statements' versions (the extension versions the store records)."""
    cols = ["ts", "event", "detail"]
    rows = []
    if snapshots is not None and len(snapshots):
        snaps = snapshots.sort_values("ts")
        prev = None
        for r in snaps.itertuples():
            if r.ts > since:
                for ev in [e for e in str(r.events or "").split(",") if e in SERVER_EVENTS]:
                    rows.append({"ts": r.ts, "event": SERVER_EVENTS[ev],
                                 "detail": "seen by the snapshot (it happened since the one before)"})
                if prev is not None:
                    for col, what in (("server_version_num", "PostgreSQL version"),
                                      ("pgss_version", "pg_stat_statements version")):
                        a, b = getattr(prev, col), getattr(r, col)
                        if pd.notna(a) and pd.notna(b) and a != b:
                            rows.append({"ts": r.ts, "event": f"{what} changed", "detail": f"{a} -> {b}"})
            prev = r
    return pd.DataFrame(rows, columns=cols)


# -- 3. monitoring health ----------------------------------------------------------------------
def snapshot_gaps(times, since, until, max_gap: pd.Timedelta) -> pd.DataFrame:
    """Stretches of the week longer than ``max_gap`` with no snapshot (the week's edges count:
    no snapshot at all is one gap over the whole week)."""
    cols = ["start", "end", "hours"]
    ts = sorted(pd.Timestamp(t) for t in times)
    before = [t for t in ts if t <= since]
    inside = [t for t in ts if since < t <= until]
    points = ([before[-1]] if before else [since]) + inside + [until]
    rows = [{"start": max(a, since), "end": b, "hours": hours(b - max(a, since))}
            for a, b in zip(points, points[1:]) if b - max(a, since) > max_gap]
    return pd.DataFrame(rows, columns=cols)


def quiet_metrics(metrics: pd.DataFrame | None, expected, until, quiet_after: pd.Timedelta) -> pd.DataFrame:
    """Metrics of the source whose last sample is more than ``quiet_after`` before the week's end
    (or that sent none): a source that went quiet alerts on nothing."""
    cols = ["metric", "last_sample", "quiet_hours"]
    rows = []
    last = metrics.groupby("metric")["ts"].max() if metrics is not None and len(metrics) else pd.Series(dtype=object)
    for m in expected:
        t = last.get(m)
        if t is None or pd.isna(t):
            rows.append({"metric": m, "last_sample": None, "quiet_hours": None})
        elif until - t > quiet_after:
            rows.append({"metric": m, "last_sample": t, "quiet_hours": hours(until - t)})
    return pd.DataFrame(rows, columns=cols)


# -- 2. pending tasks and 5. since last week ---------------------------------------------------
def pending_tasks(summaries: list[dict], week: str) -> pd.DataFrame:
    """The open findings of the week's reports, most severe first (then by report, as found),
    each with the command to run by hand: its suggestion, else the report to read."""
    cols = ["severity", "report", "kind", "subject", "title", "command", "queryid"]
    rows = []
    for s in summaries:
        for f in s.get("findings", []):
            command = (f.get("suggestion") or "").strip() or f"vhdiag report {s['report']} --week {week}"
            rows.append({"severity": f["severity"], "report": s["report"], "kind": f["kind"],
                         "subject": f["subject"], "title": f["title"], "command": command,
                         "queryid": f.get("queryid")})
    out = pd.DataFrame(rows, columns=cols)
    out["_o"] = out["severity"].map(ORDER)
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


def _key(report, kind, subject, title) -> tuple:
    return (report, kind, subject, title)


def since_last_week(pending: pd.DataFrame, previous: dict | None) -> pd.DataFrame:
    """This week's pending tasks against last week's handoff (its ``summary.json``): new, still
    open, resolved (gone from the reports)."""
    cols = ["status", "severity", "report", "title"]
    if previous is None:
        return pd.DataFrame(columns=cols)
    before = {}
    for f in previous.get("findings", []):
        if f.get("kind") == "pending_task":
            m = f.get("metrics", {})
            before[_key(m.get("from_report"), m.get("from_kind"), f["subject"], f["title"])] = f["severity"]
    now = {_key(r.report, r.kind, r.subject, r.title): r.severity for r in pending.itertuples()}
    rows = [{"status": "new" if k not in before else "still open", "severity": sev, "report": k[0], "title": k[3]}
            for k, sev in now.items()]
    rows += [{"status": "resolved", "severity": sev, "report": k[0], "title": k[3]}
             for k, sev in before.items() if k not in now]
    return pd.DataFrame(rows, columns=cols)


# -- the findings ------------------------------------------------------------------------------
def findings(*, subject, breaches, postmortems, checks, failed_reports, settings, ddl, indexes, events,
             gaps, quiet, last_check, pending, metrics_source: str = "") -> list[dict]:
    """The handoff's findings: incidents, changes, monitoring health, then the pending tasks."""
    out = []
    for b in breaches.itertuples():
        out.append(finding("breach", "critical" if b.level == "critical" else "warning", b.metric,
                           f"{b.metric} over its {b.level} threshold {b.threshold:g} for {b.duration_min:g} min "
                           f"from {fmt(b.start)}", f"peak {b.peak:g}", "vhdiag report postmortem -p around="
                           f"{pd.Timestamp(b.start).isoformat()} -p metrics={metrics_source or 'SOURCE'}", level=b.level,
                           start=b.start, end=b.end, peak=b.peak))
    for p in postmortems:
        out.append(finding("postmortem", "info", p["period"], f"Post-mortem: {p['title']}", p.get("words", ""),
                           "", link=p["link"]))
    for c in checks.itertuples():
        out.append(finding("check", "critical" if c.status == "fail" else "warning", c.check,
                           f"check {c.check}: {c.status} ({plural(c.failed, 'failure')}, {c.warned} warned, "
                           f"of {plural(c.runs, 'run')})", str(c.evidence), str(c.fix), status=c.status,
                           failed=c.failed, warned=c.warned))
    for name, reason in failed_reports:
        out.append(finding("report_failed", "warning", name, f"the {name} report failed this week", reason,
                           "see the partial notebook in the index"))
    for s in settings.itertuples():
        out.append(finding("settings_change", "info", s.name, f"{s.name}: {s.before} -> {s.after}",
                           f"between the snapshots before {fmt(s.ts)}", "", ts=s.ts))
    for d in ddl:
        out.append(finding("ddl", "info", "ddl", f"DDL: {d['query'].split(' (ran between')[0][:120]}", d["query"], "",
                           queryid=d["queryid"],
                           query=d["query"], ts=d["ts"]))
    for i in indexes.itertuples():
        out.append(finding(f"index_{i.change}", "info", f"{i.schema}.{i.index}",
                           f"{i.change} index {i.schema}.{i.index} on {i.table}", f"seen by the snapshot of {fmt(i.ts)}",
                           "", ts=i.ts))
    for e in events.itertuples():
        sev = "warning" if ("restart" in e.event or "crash" in e.event) else "info"
        out.append(finding("server_event", sev, e.event, f"{e.event} ({fmt(e.ts)})", e.detail, "", ts=e.ts))
    for g in gaps.itertuples():
        out.append(finding("snapshot_gap", "warning", "snapshots", f"no snapshot for {g.hours:g} h from {fmt(g.start)}",
                           f"{fmt(g.start)} to {fmt(g.end)}", "check the cron line of vhdiag snapshot "
                           "(*/15 * * * *) and its mail", start=g.start, end=g.end))
    for q in quiet.itertuples():
        what = f"no sample of {q.metric} this week" if q.last_sample is None or pd.isna(q.last_sample) else \
            f"{q.metric} quiet for {q.quiet_hours:g} h before the week's end"
        out.append(finding("metrics_quiet", "warning", q.metric, what, f"last sample {fmt(q.last_sample) or 'none'}",
                           "check the exporter and the metrics source (vhdiag metrics SOURCE --since 24h)"))
    if last_check is None:
        out.append(finding("no_check", "warning", "checks", "no vhdiag check recorded this week", "",
                           "schedule 0 9 * * * vhdiag check morning (runbook 1, Daily Operations)"))
    for t in pending.itertuples():
        out.append(finding("pending_task", t.severity, t.subject, t.title, f"from the {t.report} report",
                           t.command, queryid=t.queryid, from_report=t.report, from_kind=t.kind))
    return out
