"""What the post-mortem shows and sends: the drafts (``postmortem.md`` and the three messages of
runbook 8 "Communication Templates") from the report's facts, and the notebook's summary and
hypothesis tables. The notebook holds no logic: ``postmortem_view.summary_rows(report)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..analysis import incident as I
from ..analysis import incident_drafts as D

if TYPE_CHECKING:
    from .postmortem import PostmortemReport


def drafts(r: PostmortemReport, p, times, name) -> None:
    """Fill ``r.markdown``, ``r.messages`` and the artefacts written beside the HTML."""
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
             "start": r.start, "end": r.end, "impact": D.impact_lines(imp), "impact_short": "; ".join(short),
             "budget": budget, "notes": r.notes, "timeline": r.timeline, "response": r.response,
             "escalation": r.escalation, "hypotheses": r.hypotheses, "service": p["service"],
             "actions": [], **{k: times[s] for s, k in zip(I.STEPS, I.TIME_KEYS)}}
    r.markdown = D.postmortem_markdown(facts)
    r.messages = D.messages(facts)
    r.artefacts.update({"md": r.markdown, "status_page.txt": r.messages["status_page"],
                        "customer.txt": r.messages["customer"], "team.txt": r.messages["team"]})


def summary_rows(r: PostmortemReport) -> pd.DataFrame:
    rows = [("target", r.target_display)]
    if r.found:
        rows += [("title", r.title), ("severity", r.severity_rule),
                 ("start", I.fmt_ts(r.start)), ("end", I.fmt_ts(r.end)),
                 ("duration", I.duration_words(r.end - r.start)), ("window", r.how)]
        rows += [("impact", line) for line in D.impact_lines(r.impact)]
    else:
        rows += [("searched", f"{I.fmt_ts(r.since)} to {I.fmt_ts(r.until)}"), ("result", "no incident found")]
    return pd.DataFrame(rows, columns=["what", "value"])


def hypothesis_rows(r: PostmortemReport) -> pd.DataFrame:
    rows = []
    for h in r.hypotheses:
        rows += [(h["rank"], h["title"], "for", x) for x in h["for"]]
        rows += [(h["rank"], h["title"], "against", x) for x in h["against"]]
    return pd.DataFrame(rows, columns=["rank", "hypothesis", "evidence", "row"])
