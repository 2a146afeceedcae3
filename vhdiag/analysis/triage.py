"""Triage in the middle of an incident: the runbook's "Common Issues & Solutions" (section 2)
decided from what the database shows now. Pure: frames in, frames and verdicts out.

- ``burning_now``: the runbook's High CPU Usage diagnosis is ``SELECT * FROM pg_stat_statements
  ORDER BY total_time DESC LIMIT 10``, which ranks by time *since the last reset*: a statement that
  was heavy last week tops it while today's fire is invisible. Two samples N seconds apart, each
  entry matched by (userid, dbid, queryid, toplevel), give the time spent *in the interval*. An
  entry only in the second sample (new, or evicted and re-added) counts whole, and so does one
  whose counters went down (a reset of that entry): vhdiag never resets anything itself.
- ``connections``: "SELECT count(*) FROM pg_stat_activity" against "SHOW max_connections" and the
  runbook's 20/30 thresholds, broken down by state, application, user and client address, with
  the sessions idle in transaction (the usual leak behind "too many connections").
- ``blocking``: the blocking tree of ``Target.locks()`` as one entry per root blocker.
- ``long_running``: statements active and transactions open longer than the settings allow.
- ``verdicts``: one line per runbook issue (High CPU Usage, Database Connection Issues, Slow
  Queries) from that evidence, with the runbook's solutions in its order and the commands to run
  by hand as text (``SELECT pg_terminate_backend(pid)`` for an idle-in-transaction root blocker,
  ``CREATE INDEX CONCURRENTLY`` from the slow-query index advice). vhdiag never runs them.
"""
from __future__ import annotations

import pandas as pd

from . import slow_queries as sq
from .findings import _ms, plural, short_sql

KEYS = ["userid", "dbid", "queryid", "toplevel"]
COUNTERS = ["calls", "total_exec_ms", "rows", "shared_blks_hit", "shared_blks_read", "temp_blks_read",
            "temp_blks_written"]
BURNING_COLUMNS = ["queryid", "user", "database", "toplevel", "calls", "total_exec_ms", "mean_exec_ms", "ms_per_s",
                   "share_pct", "rows", "shared_blks_read", "new", "query"]
IDLE_STATES = ("idle in transaction", "idle in transaction (aborted)")

# Runbook 2 "Common Issues & Solutions": each issue's solutions, in the runbook's order.
SOLUTIONS = {
    "High CPU Usage": ["Increase replica count (auto-scaling)", "Optimize slow queries", "Add database indexes",
                       "Clear cache", "Restart application"],
    "Database Connection Issues": ["Increase connection pool size", "Close idle connections",
                                   "Restart connection pooler", "Increase database max_connections",
                                   "Optimize query performance"],
    "Slow Queries": ["Add database indexes", "Optimize query logic", "Cache query results",
                     "Increase database resources", "Archive old data"],
}
LEVELS = ("ok", "warning", "critical")


# -- what is burning now ----------------------------------------------------------------------
def statement_delta(before: pd.DataFrame, after: pd.DataFrame, monitoring_user: str | None = None) -> pd.DataFrame:
    """Per pg_stat_statements entry of ``after``: its counters minus those of the same entry in
    ``before`` (``Target.statements()`` frames). Entries with no activity in between are dropped;
    vhdiag's own statements and rows whose queryid this role may not see are left out."""
    keys = [k for k in KEYS if k in after.columns and (k != "toplevel" or after[k].notna().any())]
    a = after[after["queryid"].notna()].copy()
    a = sq.exclude_own(a, monitoring_user)[0]
    b = before[before["queryid"].notna()][keys + COUNTERS]
    merged = a.merge(b, on=keys, how="left", suffixes=("", "_before"), indicator=True)
    merged["new"] = merged["_merge"] == "left_only"
    restarted = merged["calls"].astype("Float64") < merged["calls_before"].astype("Float64")
    whole = merged["new"] | restarted.fillna(False).astype(bool)
    for c in COUNTERS:
        now = pd.to_numeric(merged[c]).astype("Float64")
        then = pd.to_numeric(merged[f"{c}_before"]).astype("Float64").fillna(0)
        merged[c] = now.where(whole, now - then)
    out = merged[(merged["calls"].fillna(0) > 0) | (merged["total_exec_ms"].fillna(0) > 0)].copy()
    calls = out["calls"].where(out["calls"] > 0)
    out["mean_exec_ms"] = out["total_exec_ms"] / calls
    return out.drop(columns=[c for c in out.columns if c.endswith("_before")] + ["_merge"]).reset_index(drop=True)


def burning_now(delta: pd.DataFrame, interval_s: float, top_n: int = 10) -> pd.DataFrame:
    """The ``top_n`` statements by execution time in the interval: ``ms_per_s`` is that time per
    second of wall clock (1000 = one session busy with it all along), ``share_pct`` of the
    interval's top-level statement time; ``new``: first seen in the second sample."""
    if delta is None or delta.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in BURNING_COLUMNS})
    out = delta.copy()
    out["toplevel"] = out["toplevel"].astype("boolean").fillna(True).astype(bool)
    total = out.loc[out["toplevel"], "total_exec_ms"].sum()
    out["share_pct"] = (100 * out["total_exec_ms"] / total if total > 0 else pd.NA)
    out["share_pct"] = out["share_pct"].astype("Float64")
    out["ms_per_s"] = (out["total_exec_ms"] / float(interval_s)).astype("Float64")
    out = out.sort_values(["total_exec_ms", "calls"], ascending=False, kind="stable")
    return out.head(top_n)[BURNING_COLUMNS].reset_index(drop=True)


# -- connections ------------------------------------------------------------------------------
def connections(activity: pd.DataFrame, limits: dict, *, warning: float, critical: float,
                idle_s: float) -> dict:
    """The connection picture: ``total`` (client connections, vhdiag's own included: they hold
    slots too) against ``max_connections`` and the thresholds, ``level`` (ok, warning over
    ``warning``, critical over ``critical`` or with no slot left), counts by state, application,
    user and client address (from ``activity``, vhdiag's own left out), and the sessions idle in
    transaction, oldest first (``over`` true past ``idle_s``)."""
    total = int(limits.get("total_connections") or 0)
    free = limits.get("free_connections")
    level = "ok"
    if total > warning:
        level = "warning"
    if total > critical or (free is not None and not pd.isna(free) and int(free) <= 0):
        level = "critical"
    a = activity.copy()
    a["state"] = a["state"].astype("string").fillna("(hidden)")
    a["client"] = a["client_addr"].astype("string").fillna("local socket")

    def count(col: str, name: str) -> pd.DataFrame:
        c = a[col].astype("string").fillna("").value_counts(dropna=False)
        c = c.rename_axis(name).reset_index(name="connections")
        return c.sort_values(["connections", name], ascending=[False, True], kind="stable").reset_index(drop=True)
    idle = a[a["state"].isin(IDLE_STATES)].copy()
    idle["age_s"] = idle["state_duration_s"]
    idle["xact_age_s"] = idle["xact_duration_s"]
    idle["over"] = idle["age_s"].fillna(0) > idle_s
    idle = idle.sort_values("xact_age_s", ascending=False, kind="stable")[
        ["pid", "application", "user", "client", "state", "age_s", "xact_age_s", "blocking_count", "over", "query"]]
    return {"total": total, "max_connections": _int(limits.get("max_connections")), "free": _int(free),
            "used_pct": _float(limits.get("used_pct")), "warning": warning, "critical": critical, "level": level,
            "by_state": count("state", "state"), "by_application": count("application", "application"),
            "by_user": count("user", "user"), "by_client": count("client", "client"),
            "idle_in_transaction": idle.reset_index(drop=True)}


# -- long-running statements and transactions ------------------------------------------------
LONG_COLUMNS = ["pid", "application", "user", "state", "kind", "query_s", "xact_s", "waiting", "query"]


def long_running(activity: pd.DataFrame, *, long_query_s: float, long_transaction_s: float) -> pd.DataFrame:
    """Sessions with a statement active over ``long_query_s`` or a transaction open over
    ``long_transaction_s``: ``kind`` says which (``statement``, ``transaction`` or both), longest first;
    ``waiting``: it waits for a lock (the blocking tree says on whom)."""
    q = activity["query_duration_s"].astype("Float64")
    x = activity["xact_duration_s"].astype("Float64")
    stmt = ((activity["state"] == "active") & (q > long_query_s)).fillna(False).astype(bool)
    xact = (x > long_transaction_s).fillna(False).astype(bool)
    out = activity[stmt | xact].copy()
    out["kind"] = [", ".join(k for k, on in (("statement", s), ("transaction", t)) if on)
                   for s, t in zip(stmt[stmt | xact], xact[stmt | xact])]
    out["query_s"] = out["query_duration_s"]
    out["xact_s"] = out["xact_duration_s"]
    out = out.sort_values("xact_s", ascending=False, kind="stable", na_position="last")
    return out[LONG_COLUMNS].reset_index(drop=True)


# -- who blocks whom -------------------------------------------------------------------------
ENTRY_KEYS = ["pid", "application", "user", "state", "age_s", "locktype", "mode", "relation", "query"]


def blocking(locks: pd.DataFrame) -> list[dict]:
    """One entry per root blocker of ``Target.locks()`` (its order: oldest chain first), with
    ``waiters``: every session behind it, each with its ``depth`` and ``blocked_by``."""
    out: list[dict] = []
    for rec in locks.to_dict("records"):
        entry = {k: _plain(rec.get(k)) for k in ENTRY_KEYS}
        if int(rec["depth"]) == 0 or not out:
            out.append({**entry, "waiters": []})
        else:
            out[-1]["waiters"].append({**entry, "depth": int(rec["depth"]),
                                       "blocked_by": [int(p) for p in rec.get("blocked_by") or []]})
    return [e for e in out if e["waiters"]]


# -- verdicts ---------------------------------------------------------------------------------
def verdicts(burning: pd.DataFrame, conns: dict, blockers: list[dict], long: pd.DataFrame, *,
             interval_s: float, slow_ms: float, critical_ms: float, busy_sessions: float,
             advice: pd.DataFrame | None = None) -> list[dict]:
    """One verdict per runbook issue: ``issue``, ``level`` (ok, warning, critical), ``verdict`` (one
    line), ``evidence`` (lines), ``solutions`` (the runbook's, in order) and ``commands`` (text to
    run by hand; vhdiag runs none)."""
    index_sql = [] if advice is None else [s for s in advice["suggestion"] if isinstance(s, str)]
    return [_cpu(burning, interval_s, busy_sessions, index_sql), _connections(conns, blockers),
            _slow(burning, long, slow_ms, critical_ms, index_sql)]


def _verdict(issue, level, verdict, evidence, commands) -> dict:
    return {"issue": issue, "level": level, "verdict": verdict, "evidence": list(evidence),
            "solutions": list(SOLUTIONS[issue]), "commands": list(commands)}


def _cpu(burning, interval_s, busy_sessions, index_sql) -> dict:
    top = burning[burning["toplevel"].astype(bool)] if len(burning) else burning
    busy = float(top["total_exec_ms"].sum()) / 1000 / float(interval_s) if len(top) else 0.0
    evidence = [f"statements executed for {busy:.2f} s per second over the last {interval_s:.1f} s "
                "(vhdiag cannot see the host's CPU: check it with top, runbook 2)"]
    if len(top):
        r = top.iloc[0]
        evidence.append(f"top statement: {short_sql(r['query'])} ({_ms(r['total_exec_ms'])} in "
                        f"{plural(int(r['calls']), 'call')}, {float(r['share_pct'] or 0):.0f} % of the time)")
    level = "warning" if busy >= busy_sessions else "ok"
    verdict = (f"the database is busy: {busy:.2f} sessions executing on average (threshold {busy_sessions:g})"
               if level != "ok" else f"the database is not busy: {busy:.2f} sessions executing on average")
    return _verdict("High CPU Usage", level, verdict, evidence, index_sql if level != "ok" else [])


def _connections(conns, blockers) -> dict:
    total, level = conns["total"], conns["level"]
    evidence = [f"{total} client connections of max_connections {conns['max_connections']} "
                f"({conns['free']} free); runbook thresholds: warning > {conns['warning']:g}, "
                f"critical > {conns['critical']:g}"]
    idle = conns["idle_in_transaction"]
    if len(idle):
        oldest = idle.iloc[0]
        evidence.append(f"{plural(len(idle), 'session')} idle in transaction, the oldest pid {int(oldest['pid'])} "
                        f"({oldest['application'] or 'no application_name'}) for {float(oldest['age_s'] or 0):.0f} s")
    commands = []
    for b in blockers:
        n = len(b["waiters"])
        evidence.append(f"pid {b['pid']} ({b['application'] or 'no application_name'}, user {b['user']}, "
                        f"{b['state']}) blocks {plural(n, 'session')} for {float(b['age_s'] or 0):.0f} s")
        if b["state"] in IDLE_STATES:
            who = b["application"] or "no application_name"
            commands.append(f"SELECT pg_terminate_backend({b['pid']});  -- {who}, "
                            f"idle in transaction, blocks {plural(n, 'session')}")
            level = "critical"
        else:
            commands.append(f"SELECT pg_cancel_backend({b['pid']});  -- {b['application'] or 'no application_name'}, "
                            f"{b['state']}, blocks {plural(n, 'session')}")
            level = max(level, "warning", key=LEVELS.index)
    if blockers:
        verdict = f"{plural(sum(len(b['waiters']) for b in blockers), 'session')} wait behind " \
                  f"{plural(len(blockers), 'root blocker')}; {total} connections ({conns['level']})"
    elif conns["level"] != "ok":
        verdict = f"too many connections: {total} (over {conns['critical' if level == 'critical' else 'warning']:g})"
    else:
        verdict = f"{total} connections, under the runbook's {conns['warning']:g}; no session blocks another"
    return _verdict("Database Connection Issues", level, verdict, evidence, commands)


def _slow(burning, long, slow_ms, critical_ms, index_sql) -> dict:
    slow = burning[burning["mean_exec_ms"].astype("Float64").fillna(0) > slow_ms] if len(burning) else burning
    running = long[long["kind"].str.contains("statement")] if len(long) else long
    waiting = running["waiting"].fillna(False).astype(bool) if len(running) else []
    stmts, blocked = (running[~waiting], running[waiting]) if len(running) else (running, running)
    evidence = [f"{plural(len(slow), 'statement')} with a mean over {_ms(slow_ms)} in the interval"]
    evidence += [f"{short_sql(r['query'])}: mean {_ms(r['mean_exec_ms'])} over {plural(int(r['calls']), 'call')}"
                 for r in slow.head(3).to_dict("records")]
    evidence += [f"pid {r['pid']} ({r['application'] or 'no application_name'}) has run "
                 f"{short_sql(r['query'])} for {float(r['query_s']):.0f} s" for r in stmts.head(3).to_dict("records")]
    if len(blocked):
        evidence.append(f"{plural(len(blocked), 'long statement')} only wait for a lock (Database Connection Issues)")
    worst = float(slow["mean_exec_ms"].max()) if len(slow) else 0.0
    level = "critical" if worst > critical_ms or len(stmts) else ("warning" if len(slow) else "ok")
    if level == "ok":
        verdict = f"no statement over {_ms(slow_ms)} in the interval, none running long" + (
            f" (but {plural(len(blocked), 'lock wait')})" if len(blocked) else "")
    else:
        verdict = (f"{plural(len(slow), 'slow statement')} in the interval"
                   + (f", {plural(len(stmts), 'statement')} running long now" if len(stmts) else ""))
    return _verdict("Slow Queries", level, verdict, evidence, index_sql if level != "ok" else [])


def _int(v):
    return None if v is None or pd.isna(v) else int(v)


def _float(v):
    return None if v is None or pd.isna(v) else round(float(v), 3)


def _plain(v):
    if v is None or (not isinstance(v, (str, list, dict)) and pd.isna(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
    return round(v, 3) if isinstance(v, float) else v


# -- findings (the report's summary.json) ----------------------------------------------------
KINDS = {"High CPU Usage": "triage_cpu", "Database Connection Issues": "triage_connections",
         "Slow Queries": "triage_slow_queries"}


def findings(verdicts_: list[dict], blockers: list[dict], subject: str) -> list[dict]:
    """The verdicts that are not ok, then one finding per root blocker (critical when it is idle
    in transaction), each with what to do next: the runbook's solutions and the commands."""
    from .findings import finding
    out = []
    for v in verdicts_:
        if v["level"] == "ok":
            continue
        todo = "\n".join(v["commands"] + [f"{i}. {s}" for i, s in enumerate(v["solutions"], 1)])
        out.append(finding(KINDS[v["issue"]], v["level"], subject, f"{v['issue']}: {v['verdict']}",
                           "; ".join(v["evidence"]), todo))
    for b in blockers:
        idle = b["state"] in IDLE_STATES
        who = b["application"] or "no application_name"
        cmd = f"SELECT pg_{'terminate' if idle else 'cancel'}_backend({b['pid']});"
        out.append(finding("triage_blocker", "critical" if idle else "warning", subject,
                           f"pid {b['pid']} ({who}) blocks {plural(len(b['waiters']), 'session')}",
                           f"user {b['user']}, {b['state']} for {float(b['age_s'] or 0):.0f} s, holds {b['mode']} on "
                           f"{b['relation'] or b['locktype']}; waiting: " + ", ".join(
                               f"pid {w['pid']} ({w['application'] or 'no application_name'})" for w in b["waiters"]),
                           cmd, query=b["query"], pid=b["pid"], application=b["application"], user=b["user"],
                           age_s=b["age_s"], waiters=len(b["waiters"])))
    return out
