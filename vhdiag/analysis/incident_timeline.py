"""An incident's timeline: the metrics' threshold crossings, peaks and recoveries, and the
database's own events from the history store's snapshots (restarts and resets, configuration
changes, DDL, connection bursts, idle-in-transaction sessions, lock pile-ups), merged into one
table in UTC (runbook 3 "Post-Mortem (24 hours)": document the incident). Pure functions over
frames: no database, no file.
"""
from __future__ import annotations

import pandas as pd

from .findings import plural
from .incident import METRICS, TIMELINE_COLUMNS, value


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
