"""What the slow-query notebook shows: one function per section, each a list of things to
``display()``. The notebook holds no logic: ``display(*slow_queries_view.headline(report))``.
"""
from __future__ import annotations

import pandas as pd

from .. import plot
from . import tables
from ..analysis import findings as F
from ..analysis import slow_queries as sq
from .slow_queries import SlowQueryReport

NO_HISTORY = ("every figure is cumulative since pg_stat_statements was last reset; there is no baseline, no "
              "regression and no drill-down. Run `vhdiag snapshot` every 15 minutes to get them.")


def overview(r: SlowQueryReport) -> pd.DataFrame:
    """The report's first table: target, window, baseline, where the figures come from."""
    fmt = "%Y-%m-%d %H:%M:%S"
    rows = [("target", f"{r.target_display} ({r.server_version})"),
            ("window (UTC)", f"{r.since:{fmt}} to {r.until:{fmt}}"),
            ("baseline (UTC)", f"{r.baseline_since:{fmt}} to {r.baseline_until:{fmt}}" if r.baseline is not None
             else "none: no snapshots in it"),
            ("figures", "cumulative since stats reset, no history" if r.cumulative
             else f"deltas from the history store ({r.target})"),
            ("statements", f"{len(r.window)} ({len(r.excluded)} of vhdiag's own monitoring left out)")]
    return pd.DataFrame(rows, columns=["what", "value"])


def intro(r: SlowQueryReport) -> list:
    parts = [tables.table(overview(r))]
    if r.cumulative:
        parts.append(tables.Html('<p style="font-size: 15px; color: #a40;"><b>Since stats reset, no history:</b> '
                                + tables.esc(NO_HISTORY) + "</p>"))
    return parts + [tables.paragraph(note) for note in r.notes]


def headline_lines(r: SlowQueryReport) -> list[str]:
    h = r.headline
    line = (f"Total execution time {F._ms(h['total_exec_ms'])} over {F.plural(h['calls'], 'call')} of "
            f"{F.plural(h['statements'], 'statement')}")
    if r.baseline is not None:
        line += (f"; the baseline had {F._ms(h['baseline_total_exec_ms'])} over "
                 f"{F.plural(h['baseline_calls'], 'call')} (time {F.change_words(h['total_change_pct'])}, "
                 f"calls {F.change_words(h['calls_change_pct'])}, per hour).")
    else:
        line += "."
    lines = [line]
    if h["top_share_pct"] is not None:
        lines.append(f"The top {F.plural(h['top'], 'statement')} make {h['top_share_pct']:.0f} % of that time.")
    lines.append("Findings: " + ", ".join(f"{n} {s}" for s, n in r.counts().items()) + " (section 8).")
    return lines


def headline(r: SlowQueryReport) -> list:
    parts = [tables.paragraph(line) for line in headline_lines(r)]
    parts.append(tables.bullets(f"[{f['severity']}] {f['title']}" for f in r.findings[:r.params["top_n"]]))
    if len(r.top_total):
        parts.append(plot.top(r.top_total, by="share_pct", title="Share of total execution time, top statements"))
    return parts


def rankings(r: SlowQueryReport) -> list:
    top_n, slow_ms, parts = r.params["top_n"], r.params["slow_ms"], []
    for key, (_, title) in sq.RANKINGS.items():
        parts += [tables.Html(f"<h3>Top {top_n} {tables.esc(title)}</h3>"), tables.table(r.rankings[key], sq.RANK_COLUMNS)]
        if key == "mean_time":
            parts += [tables.Html(f"<h4>Every statement over {slow_ms:g} ms mean: {len(r.slow)}</h4>"),
                      tables.table(r.slow, sq.RANK_COLUMNS, max_rows=3 * top_n, empty=f"none over {slow_ms:g} ms")]
    return parts


def long_lists(r: SlowQueryReport) -> list:
    """For the executed notebook only (the HTML cuts them): every slow statement, the first 500."""
    return [r.slow, r.window[sq.RANK_COLUMNS].head(500)]


def regressions(r: SlowQueryReport) -> list:
    if r.baseline is None:
        why = ("No baseline: the history store has no snapshots in "
               f"{r.baseline_since:%Y-%m-%d %H:%M} to {r.baseline_until:%Y-%m-%d %H:%M} UTC."
               if not r.cumulative else "No baseline without history.")
        return [tables.paragraph(why, "Nothing to compare.")]
    top_n = r.params["top_n"]
    return [tables.Html(f"<h3>Regressions: {len(r.regressions)}</h3>"),
            tables.table(r.regressions, sq.REGRESSION_COLUMNS, max_rows=top_n, empty="none"),
            tables.Html(f"<h3>New statements (not in the baseline): {len(r.new)}</h3>"),
            tables.table(r.new, sq.RANK_COLUMNS, max_rows=top_n, empty="none")]


def drilldown(r: SlowQueryReport) -> list:
    if r.cumulative:
        return [tables.paragraph("No drill-down without history: cumulative counters have no time series.")]
    if not r.series:
        return [tables.paragraph("No statement ran in the window.")]
    top = r.top_total.head(len(r.series))
    return [plot.drilldown(r.series, r.drill_since or r.since, r.until,
                            "Calls and mean execution time per snapshot interval",
                            queries=dict(zip(top["queryid"].astype(str), top["query"]))),
            tables.table(top, ["queryid", "user", "database", "query"])]


def plan_lines(r: SlowQueryReport) -> list[tuple[str, str]]:
    """(heading, plan text or why there is none) per planned statement."""
    return [(f"{F.short_sql(rec['query'], 300)} ({rec['user']}, queryid {rec['queryid']})",
             rec.get("text") or rec.get("note") or rec.get("error") or "not planned") for rec in r.plans]


def index_advice(r: SlowQueryReport) -> list:
    top_n = r.params["top_n"]
    parts = [tables.Html("<h3>Tables with heavy sequential scans</h3>"),
             tables.table(r.heavy, sq.SEQ_COLUMNS, max_rows=top_n,
                         empty=f"none: no table's sequential scans read {r.params['seq_scan_min_rows']:,} rows "
                               "or more on average"),
             tables.Html("<h3>Suggested indexes</h3>"),
             tables.table(r.advice, ["schema", "table", "columns", "suggestion", "queryid", "total_exec_ms", "query"],
                         empty="none: no top statement filters such a table on unindexed columns")]
    if len(r.advice):
        parts.append(tables.paragraph(r.hypopg_message))
        if r.hypopg is not None and len(r.hypopg):
            parts.append(tables.table(r.hypopg))
    parts += [tables.Html(f"<h3>Generic plans of the top {top_n} statements</h3>"), tables.paragraph(r.plan_message)]
    for heading, text in plan_lines(r):
        parts += [tables.paragraph(heading), tables.code(text)]
    return parts


def plan_changes(r: SlowQueryReport) -> list:
    if not r.plans:
        return [tables.paragraph("No plans in this report, so nothing to compare.")]
    if not r.has_previous_plans:
        return [tables.paragraph("No earlier plans: this is the first report of this target with generic plans "
                                "here; the next one compares against it.")]
    return [tables.paragraph(f"Compared with the report of {r.previous_report}: {len(r.plan_changes)} plan changes."),
            tables.table(r.plan_changes, ["queryid", "before", "after", "before_cost", "after_cost", "query"],
                        empty="none")]


def completeness(r: SlowQueryReport) -> list:
    if r.cumulative:
        return [tables.paragraph("Cumulative counters since the last reset: statements evicted or reset before now "
                                "are not counted, and nothing tells when each call happened.")]
    comp = r.completeness
    parts = [tables.bullets(comp["messages"]),
             tables.table(comp["events"], ["ts", "interval_s", "events", "notes"],
                         empty="No reset, restart, eviction or gap in the window: every figure is complete.")]
    if len(comp["statements"]):
        parts += [tables.Html(f"<h3>Statements with incomplete figures: {len(comp['statements'])}</h3>"),
                  tables.table(comp["statements"], sq.RANK_COLUMNS, max_rows=r.params["top_n"])]
    return parts


def findings_list(r: SlowQueryReport) -> list:
    return [tables.findings_table(r.findings, max_rows=5 * r.params["top_n"])]
