"""Metrics over the last 24 h: the runbook's Morning Checklist step 4, "Checking metrics...
# Add metrics check logic", and the Evening Checklist's "Check performance metrics".

From any metrics source (``[checks] metrics`` or ``--metrics``: a CSV/Parquet file, Prometheus,
the history store; ``vhdiag.load_metrics``) over ``[checks] metrics_window`` up to now, each metric
is compared with the runbook's "Critical Thresholds" (``vhdiag.metrics.breaches``, intervals at
least ``metrics_min_duration`` long, so one noisy sample does not page anyone) and its section 7
SLO targets (``slo_report``). A critical interval fails; a warning interval, or an SLO below its
objective, warns. The evidence is the worst interval: the highest peak of the worst level.
No source is a warning saying so, as for every check that cannot run.
"""
from __future__ import annotations

import urllib.parse

import pandas as pd

from ..display import terminal_safe
from ..timeparse import parse_duration
from .registry import Result, check

FIX_CRITICAL = "see the runbook's Common Issues for the metric (High CPU Usage, Slow Queries ...); vhdiag triage"
FIX_WARNING = "watch the trend: vhdiag report capacity forecasts when it reaches critical"


def source_shown(source: str) -> str:
    """A file's path, or a URL without user, password and query (a store DSN's password)."""
    if "://" not in source:
        return terminal_safe(source)
    parts = urllib.parse.urlsplit(source)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return terminal_safe(urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 7200 else f"{seconds / 60:.0f} min"


def _labels(labels: str) -> str:
    return "" if labels in ("", "{}") else f" {terminal_safe(labels)}"


def evaluate(frame: pd.DataFrame, since: pd.Timestamp, until: pd.Timestamp, cfg, min_duration: str,
             source: str) -> list[Result]:
    """One result per metric that has a threshold or an SLO, in the order of the settings."""
    from ..metrics import breaches, slo_report
    window = _span((until - since).total_seconds())
    frame = frame[(frame["ts"] >= since) & (frame["ts"] <= until)]
    if frame.empty:
        return [Result("metrics", "warn", f"no samples from {source_shown(source)} in the last {window}",
                       "check the metrics source ([checks] metrics or --metrics) covers the last 24 h")]
    known = [m for m in dict.fromkeys([*cfg["thresholds"], *cfg["slo"]]) if (frame["metric"] == m).any()]
    if not known:
        return [Result("metrics", "warn", f"none of the {frame['metric'].nunique()} metrics from "
                       f"{source_shown(source)} has a threshold or an SLO",
                       "name the columns with the runbook's ids ([metrics.names]), e.g. cpu_pct")]
    found = breaches(frame, config=cfg, min_duration=min_duration)
    slos = slo_report(frame, period=(since, until), config=cfg)
    out = []
    for metric in known:
        sub = found[found["metric"] == metric]
        crit, warn = sub[sub["level"] == "critical"], sub[sub["level"] == "warning"]
        missed = slos[(slos["metric"] == metric) & (slos["samples"] > 0) & (slos["met"] == False)]  # noqa: E712
        counts = f"{len(crit)} critical, {len(warn)} warning intervals in the last {window}"
        name = f"metrics.{metric}"
        worst = crit if len(crit) else warn
        if len(worst):
            w = worst.sort_values(["peak", "duration_s"], ascending=False, kind="stable").iloc[0]
            until_txt = "ongoing" if w["open"] else f"{w['end']:%H:%M}"
            evidence = (f"{counts}; worst {w['start']:%Y-%m-%d %H:%M}-{until_txt} UTC "
                        f"({_span(w['duration_s'])}){_labels(w['labels'])}: peak {w['peak']:g} > "
                        f"{w['level']} {w['threshold']:g}")
            out.append(Result(name, "fail" if len(crit) else "warn", evidence,
                              FIX_CRITICAL if len(crit) else FIX_WARNING))
        elif len(missed):
            s = missed.sort_values("compliance_pct", kind="stable").iloc[0]
            out.append(Result(name, "warn", f"{counts}; SLO {metric} {s['comparison']} {s['target']:g} met by "
                              f"{s['compliance_pct']:.2f} % of {int(s['samples'])} samples{_labels(s['labels'])} "
                              f"(objective {s['objective_pct']:g} %)",
                              "the runbook's section 7 target is missed: find what uses the budget "
                              "(vhdiag report capacity)"))
        else:
            values = frame.loc[frame["metric"] == metric, "value"]
            levels = cfg["thresholds"].get(metric)
            under = f", under warning {levels['warning']:g}" if levels else ""
            out.append(Result(name, "pass", f"{len(values)} samples in the last {window}, max "
                              f"{values.max():g}{under}; SLO met"))
    return out


@check("metrics", "Metrics over the last 24 h: the runbook's thresholds and SLOs", needs=())
def metrics(ctx) -> list[Result]:
    from ..metrics import load_metrics
    c = ctx.config["checks"]
    source = getattr(ctx, "metrics", None) or c["metrics"]
    if not source:
        return [Result("metrics", "warn", "cannot run: no metrics source",
                       "set [checks] metrics (a CSV/Parquet file, a Prometheus URL or the history store) "
                       "or give --metrics SOURCE")]
    since = ctx.now - parse_duration(c["metrics_window"])
    store = "://" in source and not source.lower().startswith(("http://", "https://"))
    frame = load_metrics(source, since=since.isoformat(), until=ctx.now.isoformat(), config=ctx.config,
                         **({"target": ctx.target_name} if store and ctx.target_name else {}))
    return evaluate(frame, since, ctx.now, ctx.config, c["metrics_min_duration"], source)
