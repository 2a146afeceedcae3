"""The triage report: ``vhdiag triage`` saved as HTML, so it can be attached to the incident and
read by the post-mortem (runbook 2, "Common Issues & Solutions", diagnosed live).

Its period is "now": the runner names the folder by the sampling window that starts when the
run starts (``2026-11-29T174557_2026-11-29T174607``), so every triage of an incident keeps its
own folder; the summary's ``since``/``until`` are the two samples' actual times. Its findings
(``summary.json``) are the verdicts that are not ok and one per root blocker.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..analysis import triage as T
from ..errors import ConfigError
from .base import Param, Report, resolve_params

TITLE = "Triage"
DESCRIPTION = "what burns now, connections, who blocks whom, long-running work, a verdict per runbook issue"

PARAMS = [
    Param("interval_s", float, help="seconds between the two pg_stat_statements samples", setting="triage.interval_s",
          minimum=0.1),
]


def run_window(p: dict, since, until, window, now=None):
    """Triage diagnoses now: the window is the sampling interval that starts with the run."""
    if since or until or window:
        raise ConfigError("triage diagnoses the database now: leave out --since/--until/--window")
    start = pd.Timestamp.now(tz="UTC").floor("s") if now is None else pd.Timestamp(now).floor("s")
    return start.isoformat(), (start + pd.Timedelta(seconds=max(1.0, round(p["interval_s"])))).isoformat(), None


@dataclass
class TriageReport(Report):
    triage: object = None
    blocking_frame: pd.DataFrame = field(default_factory=pd.DataFrame)


def build(target=None, history=None, since=None, until=None, target_name=None, *, statement_timeout_ms=None,
          config=None, **params) -> TriageReport:
    """Sample and diagnose now (``since``/``until`` are ignored: the samples' times are the window)."""
    import vhdiag
    from ..triage import triage
    from .data import resolve_target_name
    p = resolve_params(PARAMS, params, "triage", config)
    options = {"statement_timeout_ms": int(statement_timeout_ms)} if statement_timeout_ms else {}
    with vhdiag.connect(target, **options) as db:
        name = resolve_target_name(db, target_name or None)
        t = triage(db, p["interval_s"], config=config)
    r = TriageReport(name="triage", title=TITLE, target=name, target_display=t.target, since=t.since, until=t.until,
                     params=p, notes=list(t.notes), triage=t, blocking_frame=blocking_frame(t.blocking))
    r.findings = T.findings(t.verdicts, t.blocking, name)
    return r


def blocking_frame(blockers: list[dict]) -> pd.DataFrame:
    """The blocking tree as rows, root blockers first, each followed by its waiters."""
    rows = []
    for b in blockers:
        rows.append({"depth": 0, **{k: b[k] for k in T.ENTRY_KEYS}, "waits_for": ""})
        rows += [{"depth": w["depth"], **{k: w[k] for k in T.ENTRY_KEYS},
                  "waits_for": ", ".join(str(p) for p in w["blocked_by"])} for w in b["waiters"]]
    return pd.DataFrame(rows, columns=["depth", *T.ENTRY_KEYS, "waits_for"])


def verdict_lines(r: TriageReport) -> list:
    """What the notebook shows for the verdicts: escaped HTML."""
    from . import tables
    parts = []
    for v in r.triage.verdicts:
        parts.append(tables.paragraph(f"[{v['level']}] {v['issue']}: {v['verdict']}"))
        parts.append(tables.bullets(v["evidence"]))
        if v["level"] != "ok":
            parts.append(tables.paragraph("The runbook's solutions, in order: "
                                         + "; ".join(f"{i}. {s}" for i, s in enumerate(v["solutions"], 1))))
        if v["commands"]:
            parts.append(tables.code("\n".join(v["commands"])))
    return parts
