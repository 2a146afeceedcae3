"""Findings of the slow-query report: one dict each, with what to do next in the runbook's words.

Kinds (``kind``, default severity):

- ``slow_query`` (warning; critical over ``critical_ms``): mean execution time over ``slow_ms``;
- ``missing_index`` (warning): a top statement filters a table with heavy sequential scans on
  columns no index leads with; subject ``schema.table``, suggestion the ``CREATE INDEX CONCURRENTLY``;
- ``regression`` (warning; critical over ``critical_ms``): slower (mean) or costlier (total) than
  in the baseline, beyond both the ratio and the floor;
- ``new_query`` (info; warning when slow): not in the baseline and a large share of DB time;
- ``frequent_query`` (info): a cheap statement making a large share of all calls;
- ``plan_change`` (warning): its generic plan differs from the previous report's;
- ``incomplete_data`` (info): resets, restarts, evictions or gaps in the window;
- ``no_history`` (info): figures are cumulative since the last statistics reset.

Query findings are for queries and DML (what EXPLAIN takes): a slow ``CREATE INDEX`` or
``VACUUM`` is maintenance, shown in the rankings but not a finding.

Every finding has ``kind, severity, subject, title, detail, suggestion, queryid, query``
(``queryid``/``query`` null for table and data findings) and ``metrics`` (numbers behind it).
"""
from __future__ import annotations

import math
import re

import pandas as pd

from .query_text import is_explainable, sleeps
from .slow_queries import RUNBOOK

_EXPLAIN_HINT = "-- see where the time goes (replace $1, $2, ... with real values first):\nEXPLAIN (ANALYZE, BUFFERS) "


def finding(kind, severity, subject, title, detail, suggestion, queryid=None, query=None, **metrics) -> dict:
    return {"kind": kind, "severity": severity, "subject": str(subject), "title": title, "detail": detail,
            "suggestion": suggestion, "queryid": _int(queryid), "query": query if isinstance(query, str) else None,
            "metrics": {k: _plain(v) for k, v in metrics.items()}}


def _int(v):
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else int(v)


def _plain(v):
    if v is None or (not isinstance(v, (str, list, dict)) and pd.isna(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isinf(v):
        return None
    return round(v, 3) if isinstance(v, float) else v


def _ms(v) -> str:
    v = float(v)
    if v >= 10_000:
        return f"{v / 1000:,.1f} s"
    return f"{v:,.1f} ms" if v >= 1 else f"{v:.3f} ms"


def plural(n, word: str, many: str | None = None) -> str:
    """``plural(1, "call")`` -> "1 call"; ``plural(2, "call")`` -> "2 calls"."""
    n = int(n)
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def short_sql(q, n: int = 70) -> str:
    """A statement on one line, cut at ``n`` characters: how findings name a statement."""
    text = " ".join(str(q or "").split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def change_words(pct) -> str:
    """A change against the baseline as people say it: "+35 %", "-60 %", "12x" (not "+1100 %")."""
    if pct is None or (isinstance(pct, float) and not math.isfinite(pct)):
        return "n/a"
    if pct >= 200:
        return f"{pct / 100 + 1:,.0f}x"
    return f"{pct:+.0f} %"


_SINGLE_ROW = re.compile(r"\bwhere\b.*=\s*\$\d+", re.I | re.S)


def diagnosis(rec) -> tuple[str, str]:
    """(why this statement is slow, what to do), fitted to what its counters show: advice for an
    index is wrong for a statement that sleeps, and a cache is wrong for one that spills to disk."""
    query = rec.get("query") or ""
    explain = f"{_EXPLAIN_HINT}{_stmt(query)};"
    if sleeps(query):
        return ("It spends its time in pg_sleep(): it waits on purpose, and no index or cache makes that faster.",
                "-- Find out why the application sleeps inside the database (a retry loop, a throttle, a test "
                "left in) and move the wait out of it: the session holds a connection, and any locks, while it sleeps.")
    temp = _num(rec.get("temp_blks"))
    if temp and temp > 0:
        return (f"It spills sorts or hashes to disk ({plural(temp, 'temp block')}).",
                "-- Give it more work_mem (SET work_mem = '64MB' in its session, or ALTER ROLE ... SET work_mem), "
                f"or sort and hash fewer rows; the spilling node shows in:\n{explain}")
    rows = _num(rec.get("rows_per_call"))
    if rows and rows >= 10_000:
        return (f"It returns {rows:,.0f} rows per call.",
                f"-- runbook 2, Slow Queries: {RUNBOOK['archive']}; page or aggregate in the database instead of "
                f"fetching every row:\n{explain}")
    hit = _num(rec.get("cache_hit_pct"))
    if hit is not None and hit < 90:
        return (f"It reads most of its blocks from disk (cache hit {hit:.0f} %).",
                f"-- runbook 2, Slow Queries: {RUNBOOK['index']} on the columns it filters on (section 5 of "
                f"this report), then compare:\n{explain}")
    return ("", f"-- runbook 2, Slow Queries: {RUNBOOK['optimize']}; {RUNBOOK['index']}. See where the time goes:\n"
                f"{explain}")


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _stmt(q) -> str:
    q = (q or "").strip().rstrip(";")
    return q if len(q) <= 2000 else q[:2000] + " ..."


def _who(rec) -> str:
    return f"«{short_sql(rec['query'])}» ({rec['user']}@{rec['database']}, queryid {rec['queryid']})"


def _incomplete(rec) -> str:
    return "" if rec.get("complete", True) else f" Figures incomplete: {rec.get('notes') or 'see data completeness'}."


def slow_query_findings(*, slow: pd.DataFrame, regressions: pd.DataFrame | None = None,
                        new: pd.DataFrame | None = None, frequent: pd.DataFrame | None = None,
                        advice: pd.DataFrame | None = None, plan_changes: pd.DataFrame | None = None,
                        completeness: dict | None = None, cumulative: bool = False, slow_ms: float = 1000.0,
                        critical_ms: float = 5000.0, window_s: float | None = None, subject: str = "") -> list[dict]:
    """All findings, most severe first (then in the order above)."""
    out: list[dict] = []

    def records(frame):
        return [r for r in (frame.to_dict("records") if frame is not None else []) if is_explainable(r["query"])]

    for rec in records(slow):
        mean = float(rec["mean_exec_ms"])
        cause, todo = diagnosis(rec)
        out.append(finding(
            "slow_query", "critical" if mean > critical_ms else "warning", rec["queryid"],
            f"Slow query: {short_sql(rec['query'], 50)}: mean {_ms(mean)} over {plural(rec['calls'], 'call')}",
            f"{_who(rec)} ran {plural(rec['calls'], 'time')} at a mean of {_ms(mean)} (stddev "
            f"{_ms(rec['stddev_exec_ms'] or 0)}), {_ms(rec['total_exec_ms'])} in all: over the runbook's "
            f"{slow_ms:g} ms. {cause}{_incomplete(rec)}".rstrip(),
            todo, rec["queryid"], rec["query"], mean_exec_ms=mean, calls=rec["calls"],
            total_exec_ms=rec["total_exec_ms"]))
    for rec in (advice.to_dict("records") if advice is not None else []):
        where = f"{rec['schema']}.{rec['table']}"
        out.append(finding(
            "missing_index", "warning", where, f"Missing index: {where} ({rec['columns']})",
            f"{plural(rec['seq_scan'], 'sequential scan')} read {int(rec['seq_tup_read']):,} rows of {where}; "
            f"{_who(rec)}, {_ms(rec['total_exec_ms'])} of DB time, filters it on {rec['columns']}, which no "
            f"index leads with.{rec.get('hypopg') or ''}",
            f"{rec['suggestion']}\n-- runbook 2, Slow Queries: {RUNBOOK['index']}. CONCURRENTLY builds it "
            "without blocking writes; run it by hand, then ANALYZE and compare the plan.",
            rec["queryid"], rec["query"], table=where, columns=rec["columns"], seq_scan=rec["seq_scan"],
            seq_tup_read=rec["seq_tup_read"], total_exec_ms=rec["total_exec_ms"]))
    for rec in records(regressions):
        mean, before = float(rec["mean_exec_ms"]), float(rec["mean_before_ms"])
        parts = []
        if "mean" in rec["why"]:
            parts.append(f"mean {_ms(before)} -> {_ms(mean)} ({rec['mean_ratio']:.1f}x)")
        if "total" in rec["why"]:
            parts.append(f"total {_ms(rec['total_before_ms'])} -> {_ms(rec['total_exec_ms'])} "
                         f"({rec['total_ratio']:.1f}x per hour; calls {int(rec['calls_before']):,} -> "
                         f"{int(rec['calls']):,})")
        cause, todo = diagnosis(rec)
        out.append(finding(
            "regression", "critical" if mean > critical_ms else "warning", rec["queryid"],
            f"Regression: {short_sql(rec['query'], 50)}: " + "; ".join(parts),
            f"{_who(rec)} against the baseline: " + "; ".join(parts) + f". {cause}{_incomplete(rec)}".rstrip(),
            "-- Check what changed since the baseline (a deployment, the data volume, the plan).\n" + todo,
            rec["queryid"], rec["query"], why=rec["why"], mean_before_ms=before, mean_exec_ms=mean,
            mean_ratio=rec["mean_ratio"], total_before_ms=rec["total_before_ms"],
            total_exec_ms=rec["total_exec_ms"], extra_ms=rec["extra_ms"]))
    for rec in records(new):
        if not rec.get("significant"):
            continue
        mean = float(rec["mean_exec_ms"])
        out.append(finding(
            "new_query", "warning" if mean > slow_ms else "info", rec["queryid"],
            f"New query: {short_sql(rec['query'], 50)}: {rec['share_pct']:.0f}% of DB time",
            f"{_who(rec)} did not run in the baseline; now {plural(rec['calls'], 'call')}, {_ms(rec['total_exec_ms'])} "
            f"({rec['share_pct']:.1f}% of DB time), mean {_ms(mean)}.",
            f"-- runbook 2, Slow Queries: {RUNBOOK['optimize']}. Which deployment brought it? Its plan:\n"
            f"{_EXPLAIN_HINT}{_stmt(rec['query'])};",
            rec["queryid"], rec["query"], share_pct=rec["share_pct"], calls=rec["calls"], mean_exec_ms=mean))
    for rec in records(frequent):
        rate = f", {rec['calls'] / window_s:,.1f} per second" if window_s else ""
        rows = _num(rec.get("rows_per_call"))
        if rows is not None and rows <= 1 and _SINGLE_ROW.search(rec["query"] or ""):
            # One row per call, looked up by a parameter, thousands of times: the N+1 pattern.
            title = f"N+1 query: {plural(rec['calls'], 'single-row lookup')} ({rec['calls_share_pct']:.0f}% of calls)"
            detail = (f"{_who(rec)} fetched one row per call, {plural(rec['calls'], 'time')}{rate} "
                      f"({rec['calls_share_pct']:.1f}% of all calls) at {_ms(rec['mean_exec_ms'])} each: the "
                      "application looks rows up one at a time, likely in a loop over another result.")
            todo = (f"-- runbook 2, High CPU Usage / Slow Queries: {RUNBOOK['cache']} in the application, or fetch "
                      f"the rows in one query with an array of keys (WHERE id = ANY($1)); it runs as:\n"
                      f"{_stmt(rec['query'])};")
        else:
            title = f"Frequent query: {short_sql(rec['query'], 50)}: {rec['calls_share_pct']:.0f}% of all calls"
            detail = (f"{_who(rec)} ran {plural(rec['calls'], 'time')}{rate} ({rec['calls_share_pct']:.1f}% of all "
                      f"calls) at {_ms(rec['mean_exec_ms'])} each: cheap alone, costly in round trips and CPU.")
            todo = (f"-- runbook 2, High CPU Usage / Slow Queries: {RUNBOOK['cache']} (in the application, or "
                      f"batch the calls into one query); it runs as:\n{_stmt(rec['query'])};")
        out.append(finding("frequent_query", "info", rec["queryid"], title, detail, todo, rec["queryid"],
                           rec["query"], calls=rec["calls"], calls_share_pct=rec["calls_share_pct"],
                           mean_exec_ms=rec["mean_exec_ms"]))
    for rec in (plan_changes.to_dict("records") if plan_changes is not None else []):
        out.append(finding(
            "plan_change", "warning", rec["queryid"], f"Plan change: {short_sql(rec['query'], 50)}",
            f"{_who(rec)}: the generic plan was "
            f"{rec['before']} (cost {rec['before_cost']}) in {rec['before_report'] or 'the previous report'}, "
            f"now {rec['after']} (cost {rec['after_cost']}).",
            f"-- runbook 2, Slow Queries: {RUNBOOK['optimize']}. If the new plan is worse, refresh statistics "
            f"(ANALYZE the tables it reads) and compare:\nEXPLAIN (GENERIC_PLAN) {_stmt(rec['query'])};",
            rec["queryid"], rec["query"], before=rec["before"], after=rec["after"],
            before_cost=rec["before_cost"], after_cost=rec["after_cost"]))
    if completeness is not None and (len(completeness["events"]) or completeness["messages"]):
        events = completeness["events"]
        what = [f"{pd.Timestamp(ts):%Y-%m-%d %H:%M:%S} UTC: {e or n}"
                for ts, e, n in zip(events["ts"], events["events"], events["notes"])]
        what += completeness["messages"]
        out.append(finding(
            "incomplete_data", "info", subject, "Some figures are incomplete",
            f"{len(completeness['statements'])} statements have incomplete figures; " + "; ".join(what[:10]) + ".",
            "-- keep `vhdiag snapshot` running every 15 minutes (cron) and do not reset pg_stat_statements; "
            "marked figures undercount what happened.", events=len(events)))
    if cumulative:
        out.append(finding(
            "no_history", "info", subject, "No history: figures since the last statistics reset",
            "The history store holds no snapshots of this target in the window, so every figure is cumulative "
            "since pg_stat_statements was last reset; there is no baseline, no regression and no drill-down.",
            "vhdiag snapshot --dsn env:DATABASE_URL   # from cron every 15 minutes"))
    order = {"critical": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda f: order[f["severity"]])
