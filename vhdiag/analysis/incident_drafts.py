"""The texts an incident needs written: the impact in words, the runbook's three messages
(runbook 8 "Communication Templates") and the post-mortem draft (runbook 3 "Post-Mortem (24
hours)"), pre-filled with the facts; every place a person must write is marked **[TO FILL: ...]**.
Pure functions over a dict of facts: no database, no file.
"""
from __future__ import annotations

import pandas as pd

from .incident import METRICS, STEPS, TIME_KEYS, TO_FILL, duration_words, fmt_ts, hhmm


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
