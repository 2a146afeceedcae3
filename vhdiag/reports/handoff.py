"""The on-call handoff: one page for the engineer taking the pager (runbook 10 "On-Call
Rotation", Handoff Procedure: review incidents from previous week, check pending tasks, verify
monitoring is working, review recent changes, confirm contact information).

It runs last in ``vhdiag report weekly``, after the slow-query and capacity reports of the week,
and reads what is already there rather than measuring again:

- the history store: the week's snapshots (gaps, restarts, versions), settings and indexes
  between snapshots, DDL among the statements, and the ``vhdiag check`` runs;
- the metrics source (``-p metrics=``, default ``[checks] metrics``; the store's own series
  always): threshold breaches, and a metric that stopped arriving;
- the week's report folder (``reports_dir``): the other reports' ``summary.json`` (their open
  findings are the pending tasks), failed runs, post-mortems whose window touches the week, and
  last week's ``handoff.summary.json`` (what changed since).

The logic is ``vhdiag.analysis.handoff``; this module only gathers its inputs.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..analysis import handoff as H
from ..config import resolve_config
from ..timeparse import parse_duration
from .base import Param, Report, resolve_params
from .data import open_inputs
from .periods import period_name, period_words, resolve_window

TITLE = "On-call handoff"
DESCRIPTION = "the week's incidents and breaches, pending tasks, monitoring health, recent changes, contacts"

PARAMS = [
    Param("metrics", str, help="metric history for breaches: a CSV/Parquet file, a Prometheus URL or the store; "
          "empty: the store's own series only", setting="checks.metrics"),
    Param("min_duration", str, help="a breach shorter than this is noise (a duration: 5m)",
          setting="checks.metrics_min_duration", duration=True),
    Param("snapshot_gap", str, help="no snapshot for longer than this is a gap in monitoring (a duration)",
          setting="handoff.snapshot_gap", duration=True),
    Param("metrics_quiet_after", str, help="a metric whose last sample is older than this at the week's end "
          "went quiet (a duration)", setting="handoff.metrics_quiet_after", duration=True),
    Param("reports_dir", str, "", "where this target's reports are (the week's summaries)", internal=True),
]

UNTRACKED = ("extension versions other than pg_stat_statements' are not in the history store: compare "
             "SELECT extname, extversion FROM pg_extension with last week's by hand")


@dataclass
class HandoffReport(Report):
    week: str = ""
    breaches: pd.DataFrame | None = None
    postmortems: list = field(default_factory=list)     # {period, title, words, link}
    checks: pd.DataFrame | None = None
    failed_reports: list = field(default_factory=list)  # (name, reason)
    pending: pd.DataFrame | None = None
    settings_changes: pd.DataFrame | None = None
    ddl: list = field(default_factory=list)
    index_changes: pd.DataFrame | None = None
    server_events: pd.DataFrame | None = None
    gaps: pd.DataFrame | None = None
    quiet: pd.DataFrame | None = None
    health: pd.DataFrame | None = None
    since_last_week: pd.DataFrame | None = None
    previous_week: str = ""
    contacts: pd.DataFrame | None = None
    reports_read: list = field(default_factory=list)


def build(target=None, history=None, since=None, until=None, target_name=None, *, window=None,
          statement_timeout_ms=None, config=None, **params) -> HandoffReport:
    """The handoff of ``since``..``until`` (a week for ``vhdiag report weekly``), no kernel needed."""
    cfg = resolve_config(config)
    p = resolve_params(PARAMS, params, "handoff", cfg)
    start, end = resolve_window(since or None, until or None, None if since else window)
    inputs = open_inputs(target, history, target_name, statement_timeout_ms)
    try:
        return _build(inputs, p, cfg, start, end)
    finally:
        inputs.close()


def _build(inputs, p, cfg, start, end) -> HandoffReport:
    from .postmortem import _ddl
    db, store, name = inputs.db, inputs.store, inputs.target_name
    week = period_name(start, end)
    r = HandoffReport(name="handoff", title=TITLE, target=name, target_display=db.display, since=start, until=end,
                      params=p, week=week)
    folder = Path(p["reports_dir"]) if p["reports_dir"] else None
    summaries = _summaries(folder, week) if folder else []
    r.reports_read = [s["report"] for s in summaries]
    r.failed_reports = _failures(folder, week) if folder else []
    r.postmortems = _postmortems(folder, week, start, end) if folder else []
    if folder is None:
        r.notes.append("no report folder given: no pending tasks or post-mortems (vhdiag report weekly passes it)")
    # incidents: breaches, from the source given and the store's own series
    metrics, quiet_from = _metrics(inputs, p, cfg, start, end, r.notes)
    from ..metrics import breaches
    br = breaches(metrics, cfg, p["min_duration"]) if len(metrics) else None
    r.breaches = H.breach_rows(br, start, end)
    runs = None
    empty_snaps = pd.DataFrame(columns=["ts", "events", "server_version_num", "pgss_version"])
    snaps = inputs.snapshots if inputs.has_history else empty_snaps
    if inputs.has_history:
        from ..history import changes
        view = store.incident_view(start, end, target=name)
        r.settings_changes = H.settings_changes(view["settings"], start)
        r.ddl = _ddl(store, name, start, end, db.capabilities.user)
        r.index_changes = H.index_changes(changes.index_series(store, start, end, target=name), start)
        runs = changes.check_runs(store, start, end, target=name)
        last = changes.last_check_run(store, end, target=name)
        good = changes.last_check_run(store, end, target=name, passed_only=True)
    else:
        r.notes.append(f"the history store holds no snapshots of {name}: no changes, gaps or checks "
                       "(run vhdiag snapshot every 15 minutes and vhdiag check morning daily)")
        r.settings_changes, r.index_changes = H.settings_changes(None, start), H.index_changes(None, start)
        last = good = None
    r.notes.append(UNTRACKED)
    r.checks = H.check_rows(runs)
    r.server_events = H.server_events(snaps, start)
    r.gaps = H.snapshot_gaps(snaps["ts"], start, end, parse_duration(p["snapshot_gap"]))
    r.quiet = H.quiet_metrics(quiet_from, sorted(set(quiet_from["metric"])) if len(quiet_from) else [], end,
                              parse_duration(p["metrics_quiet_after"]))
    r.pending = H.pending_tasks(summaries, week)
    previous = _previous(folder, start, end) if folder else None
    r.previous_week = period_name(start - (end - start), start) if previous is not None else ""
    r.since_last_week = H.since_last_week(r.pending, previous)
    r.health = _health(snaps, start, end, last, good, p, len(r.gaps), len(r.quiet))
    r.contacts = pd.DataFrame([{"level": k.replace("level", "level "), "who": v.get("who", ""),
                                "when": _when(v)} for k, v in sorted(cfg["escalation"].items())])
    in_week = last is not None and last[0] > start
    r.findings = H.findings(subject=name, breaches=r.breaches, postmortems=r.postmortems, checks=r.checks,
                            failed_reports=r.failed_reports, settings=r.settings_changes, ddl=r.ddl,
                            indexes=r.index_changes, events=r.server_events, gaps=r.gaps, quiet=r.quiet,
                            last_check=last if in_week or not inputs.has_history else None, pending=r.pending,
                            metrics_source=p["metrics"])
    return r


def _metrics(inputs, p, cfg, start, end, notes):
    """(the week's metrics for breaches, the source's metrics since a week before for "went quiet")."""
    import vhdiag
    frames, source = [], pd.DataFrame(columns=["ts", "metric", "value", "labels"])
    if p["metrics"]:
        source = vhdiag.load_metrics(p["metrics"], start - (end - start), end, config=cfg)
        frames.append(source[(source["ts"] >= start) & (source["ts"] <= end)])
    else:
        notes.append("no metrics source (-p metrics=SOURCE or [checks] metrics): breaches of the store's own "
                     "series only (connections)")
    if inputs.store is not None and inputs.has_history:
        own = vhdiag.load_metrics(inputs.store.url, start, end, config=cfg, target=inputs.target_name)
        have = set(frames[0]["metric"]) if frames else set()
        frames.append(own[~own["metric"].isin(have)])
    frames = [f for f in frames if len(f)]
    m = pd.concat(frames, ignore_index=True) if frames else source.iloc[0:0]
    return m, source


def _read(path: Path) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    return None


def _summaries(folder: Path, week: str) -> list[dict]:
    """The week's other reports' summaries (the handoff's own excluded), by name."""
    found = [_read(p) for p in sorted((folder / week).glob("*.summary.json")) if p.name != "handoff.summary.json"]
    return [s for s in found if s and isinstance(s.get("findings"), list)]


def _failures(folder: Path, week: str) -> list[tuple[str, str]]:
    """Reports of the week whose newest run failed: (name, reason)."""
    newest: dict[str, dict] = {}
    for path in list((folder / ".failed").glob(f"{week}-*/*.report.json")) + list((folder / week).glob("*.report.json")):
        m = _read(path)
        if m and m.get("period") == week and m.get("name") != "handoff":
            if m["name"] not in newest or m.get("generated_at", "") > newest[m["name"]].get("generated_at", ""):
                newest[m["name"]] = m
    return [(n, m.get("reason", "")) for n, m in sorted(newest.items()) if m.get("status") == "failed"]


def _postmortems(folder: Path, week: str, start, end) -> list[dict]:
    """Post-mortems whose window touches the week, oldest first, with a link from the week's folder."""
    out = []
    for path in sorted(folder.glob("*/postmortem.report.json")):
        m = _read(path)
        if not m or m.get("status") != "ok":
            continue
        lo, hi = pd.Timestamp(m["since"]), pd.Timestamp(m["until"])
        if hi >= start and lo < end:
            s = _read(path.with_name("postmortem.summary.json")) or {}
            sev = next((f["metrics"].get("priority") for f in s.get("findings", []) if f.get("kind") == "severity"), "")
            out.append({"period": path.parent.name, "title": f"{sev + ' ' if sev else ''}{m.get('period_words', '')}",
                        "words": m.get("period_words", ""), "link": f"../{path.parent.name}/{m['html']}", "since": lo})
    return sorted(out, key=lambda x: x["since"])


def _previous(folder: Path, start, end) -> dict | None:
    return _read(folder / period_name(start - (end - start), start) / "handoff.summary.json")


def _when(level: dict) -> str:
    if "after_down_minutes" in level:
        return f"service down over {level['after_down_minutes']} min"
    minutes = level.get("after_unresolved_minutes", 0)
    return "first responder" if not minutes else f"unresolved after {minutes} min"


def _health(snaps, start, end, last, good, p, n_gaps, n_quiet) -> pd.DataFrame:
    inside = snaps[(snaps["ts"] > start) & (snaps["ts"] <= end)] if len(snaps) else snaps
    if len(inside):
        step = inside["ts"].sort_values().diff().median()
        every = "" if pd.isna(step) else (f", about every {H.hours(step):g} h" if step >= pd.Timedelta(hours=2)
                                          else f", about every {step.total_seconds() / 60:.0f} min")
        snap = f"{len(inside)} in the week{every}; the last {H.fmt(inside['ts'].max())}"
    else:
        snap = "none in the week"
    rows = [("snapshots", snap),
            ("snapshot gaps", f"{n_gaps} longer than {p['snapshot_gap']}" if n_gaps else f"none longer than {p['snapshot_gap']}"),
            ("last check", f"{last[1]} {H.fmt(last[0])}: {last[2]}" if last else "none recorded"),
            ("last successful check", f"{good[1]} {H.fmt(good[0])} ({good[2]})" if good else "none recorded"),
            ("metrics source", (f"{n_quiet} metric(s) went quiet" if n_quiet else "every metric kept arriving")
             if p["metrics"] else "none given (-p metrics=SOURCE or [checks] metrics)")]
    return pd.DataFrame(rows, columns=["what", "state"])


# -- what the notebook shows --------------------------------------------------------------------
def overview(r: HandoffReport) -> pd.DataFrame:
    counts = r.counts()
    rows = [("target", r.target_display), ("week", period_words(r.since, r.until)),
            ("incidents", f"{len(r.breaches)} threshold breach(es), {len(r.postmortems)} post-mortem(s), "
                          f"{len(r.checks)} check(s) failed or warned"),
            ("pending tasks", f"{len(r.pending)} from {', '.join(r.reports_read) or 'no report'}"),
            ("recent changes", f"{len(r.settings_changes)} setting(s), {len(r.ddl)} DDL, "
                               f"{len(r.index_changes)} index change(s), {len(r.server_events)} server event(s)"),
            ("findings", ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none")]
    return pd.DataFrame(rows, columns=["what", "value"])


def postmortem_links(r: HandoffReport):
    from .tables import Html, esc
    if not r.postmortems:
        return Html("<p><em>no post-mortem report of this week in the report folder</em></p>")
    return Html("<ul>" + "".join(f'<li><a href="{esc(x["link"])}">post-mortem {esc(x["title"])}</a></li>'
                                 for x in r.postmortems) + "</ul>")


def breach_table(r: HandoffReport) -> pd.DataFrame:
    """The breaches, without the labels column when no metric has labels."""
    b = r.breaches
    return b.drop(columns="labels") if b is not None and (b["labels"].fillna("{}") == "{}").all() else b


def worst_first(r: HandoffReport) -> list[dict]:
    return H.by_severity(r.findings)


def ddl_rows(r: HandoffReport) -> pd.DataFrame:
    return pd.DataFrame([{"ts": d["ts"], "query": d["query"]} for d in r.ddl], columns=["ts", "query"])
