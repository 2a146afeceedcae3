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

import pandas as pd

from .query_text import is_explainable
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


def _stmt(q) -> str:
    q = (q or "").strip().rstrip(";")
    return q if len(q) <= 2000 else q[:2000] + " ..."


def _who(rec) -> str:
    return f"queryid {rec['queryid']} ({rec['user']}@{rec['database']})"


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
        out.append(finding(
            "slow_query", "critical" if mean > critical_ms else "warning", rec["queryid"],
            f"Slow query: mean {_ms(mean)} over {int(rec['calls'])} calls",
            f"{_who(rec)} ran {int(rec['calls'])} times at a mean of {_ms(mean)} (stddev "
            f"{_ms(rec['stddev_exec_ms'] or 0)}), {_ms(rec['total_exec_ms'])} in all: over the runbook's "
            f"{slow_ms:g} ms.{_incomplete(rec)}",
            f"-- runbook 2, Slow Queries: {RUNBOOK['index']}; {RUNBOOK['optimize']}; {RUNBOOK['cache']}.\n"
            f"{_EXPLAIN_HINT}{_stmt(rec['query'])};",
            rec["queryid"], rec["query"], mean_exec_ms=mean, calls=rec["calls"], total_exec_ms=rec["total_exec_ms"]))
    for rec in (advice.to_dict("records") if advice is not None else []):
        where = f"{rec['schema']}.{rec['table']}"
        out.append(finding(
            "missing_index", "warning", where, f"Missing index: {where} ({rec['columns']})",
            f"{int(rec['seq_scan'])} sequential scans read {int(rec['seq_tup_read']):,} rows of {where}; "
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
                         f"({rec['total_ratio']:.1f}x per hour; calls {int(rec['calls_before'])} -> {int(rec['calls'])})")
        out.append(finding(
            "regression", "critical" if mean > critical_ms else "warning", rec["queryid"],
            "Regression: " + "; ".join(parts),
            f"{_who(rec)} against the baseline: " + "; ".join(parts) + "." + _incomplete(rec),
            f"-- runbook 2, Slow Queries: {RUNBOOK['optimize']}; {RUNBOOK['index']}; {RUNBOOK['archive']} "
            "if the table it reads grew. Check what changed (deployments, data volume, plan):\n"
            f"{_EXPLAIN_HINT}{_stmt(rec['query'])};",
            rec["queryid"], rec["query"], why=rec["why"], mean_before_ms=before, mean_exec_ms=mean,
            mean_ratio=rec["mean_ratio"], total_before_ms=rec["total_before_ms"],
            total_exec_ms=rec["total_exec_ms"], extra_ms=rec["extra_ms"]))
    for rec in records(new):
        if not rec.get("significant"):
            continue
        mean = float(rec["mean_exec_ms"])
        out.append(finding(
            "new_query", "warning" if mean > slow_ms else "info", rec["queryid"],
            f"New query: {rec['share_pct']:.0f}% of DB time",
            f"{_who(rec)} did not run in the baseline; now {int(rec['calls'])} calls, {_ms(rec['total_exec_ms'])} "
            f"({rec['share_pct']:.1f}% of DB time), mean {_ms(mean)}.",
            f"-- runbook 2, Slow Queries: {RUNBOOK['optimize']}. Which deployment brought it? Its plan:\n"
            f"{_EXPLAIN_HINT}{_stmt(rec['query'])};",
            rec["queryid"], rec["query"], share_pct=rec["share_pct"], calls=rec["calls"], mean_exec_ms=mean))
    for rec in records(frequent):
        rate = f", {rec['calls'] / window_s:,.1f} per second" if window_s else ""
        out.append(finding(
            "frequent_query", "info", rec["queryid"],
            f"Frequent query: {rec['calls_share_pct']:.0f}% of all calls",
            f"{_who(rec)} ran {int(rec['calls']):,} times{rate} ({rec['calls_share_pct']:.1f}% of all calls) at "
            f"{_ms(rec['mean_exec_ms'])} each: cheap alone, costly in round trips and CPU.",
            f"-- runbook 2, High CPU Usage / Slow Queries: {RUNBOOK['cache']} (in the application, or batch "
            f"the lookups into one query); it runs as:\n{_stmt(rec['query'])};",
            rec["queryid"], rec["query"], calls=rec["calls"], calls_share_pct=rec["calls_share_pct"],
            mean_exec_ms=rec["mean_exec_ms"]))
    for rec in (plan_changes.to_dict("records") if plan_changes is not None else []):
        out.append(finding(
            "plan_change", "warning", rec["queryid"], "Plan change since the previous report",
            f"queryid {rec['queryid']} ({rec['user']}@{rec['database']}): the generic plan was "
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
