"""An incident's probable causes: hypotheses (a lock pile-up, connection pool exhaustion, a
regressed query, memory pressure, a deploy or a configuration change just before the onset), each
with the evidence for and against it, ranked by its weight (runbook 3 "Post-Mortem (24 hours)":
identify the root cause; runbook 2's diagnoses for the suggestions). They are hypotheses for a
person to confirm. Pure functions over frames: no database, no file.
"""
from __future__ import annotations

import pandas as pd

from .findings import plural
from .incident import fmt_ts, minutes


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
