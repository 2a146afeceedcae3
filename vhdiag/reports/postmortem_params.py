"""The post-mortem's parameters and their checks: times, durations, the severity, the events
file and the metrics source, each refused in one line before any kernel starts (nothing is
written); the response times in order; and the window the runner asks for (``-p around=TIME`` or
``--since``/``--until``). ``vhdiag.reports.postmortem`` re-exports ``PARAMS``, ``check_params``
and ``run_window``: the registry and the runner read them from the report's module.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..timeparse import parse_duration, parse_time
from .base import Param

EVENT_KINDS_HINT = "deploy, config, restart, scaling, escalation, ..."


def _time(text: str) -> str:
    try:
        return parse_time(text).isoformat()
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{text!r} is not a time: give ISO 8601 such as 2026-11-29T12:03:00Z ({exc})") from None


def _duration(text: str) -> str:
    try:
        if parse_duration(text) <= pd.Timedelta(0):
            raise ValueError
    except (ValueError, ConfigError):
        raise ConfigError(f"{text!r} is not a positive duration: give e.g. 2h, 10m") from None
    return text


def _severity(text: str) -> str:
    sev = text.strip().upper()
    if sev not in ("P1", "P2", "P3", "P4"):
        raise ConfigError(f"severity {text!r} is not one of the runbook's P1, P2, P3, P4: e.g. -p severity=P1")
    return sev


def _events_file(text: str) -> str:
    read_events(text)   # malformed: one line, before any kernel starts
    return text


def _metrics_source(text: str) -> str:
    if not re.match(r"^[a-z][a-z0-9+]*://", text) and not Path(text).expanduser().is_file():
        raise ConfigError(f"metrics file {text} does not exist: give a CSV or Parquet file, a Prometheus URL "
                          "or the history store (sqlite:///PATH)")
    return text


PARAMS = [
    Param("around", str, "", "a time inside the incident: the report finds the window from the breaches and "
          "database events around it (instead of --since/--until)", validate=_time),
    Param("search", str, "2h", "how far around `around` to look", validate=_duration),
    Param("title", str, "", "the incident's title; empty: from the top probable cause"),
    Param("severity", str, "", "P1 to P4; empty: proposed from the impact (runbook 3)", validate=_severity),
    Param("acknowledged_at", str, "", "when the alert was acknowledged", validate=_time),
    Param("assessed_at", str, "", "when the impact was assessed", validate=_time),
    Param("mitigated_at", str, "", "when the impact was mitigated", validate=_time),
    Param("resolved_at", str, "", "when the incident was resolved", validate=_time),
    Param("metrics", str, "", "metric history: a CSV/Parquet file or a Prometheus URL; empty: the history "
          "store's own series (connections, TPS)", validate=_metrics_source),
    Param("events", str, "", f"a CSV of ts,kind,description ({EVENT_KINDS_HINT})", validate=_events_file),
    Param("service", str, "VH-M24", "the service named in the customer notification (runbook 8)"),
    Param("outage_error_pct", float, 90.0, "an error rate at or over this is a complete outage (P1); the runbook "
          "gives no number, this is vhdiag's", minimum=0),
    Param("merge_gap", str, "10m", "breaches this close together are one incident", validate=_duration),
    Param("lead_minutes", float, 30.0, "a deploy or config change this long before the onset is a suspect",
          minimum=0),
    Param("slo_period_days", float, 30.0, "the SLO period whose error budget the incident used", minimum=1),
    Param("top_n", int, help="statements and tables shown", setting="reports.top_n", minimum=1),
    Param("regression_ratio", float, help="a query change is at least this many times the baseline mean",
          setting="statements.regression_ratio", minimum=1),
    Param("regression_floor_ms", float, help="... and this many ms slower", setting="statements.regression_floor_ms",
          minimum=0),
]

TIME_PARAMS = ("acknowledged_at", "assessed_at", "mitigated_at", "resolved_at")


def read_events(path) -> pd.DataFrame:
    """The user's events file (CSV ``ts,kind,description``, a header line optional) as
    (ts UTC, kind, description); anything else is one line naming the line."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the events file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    rows = []
    for n, rec in enumerate(csv.reader(io.StringIO(text)), 1):
        if not rec or all(not c.strip() for c in rec):
            continue
        if n == 1 and [c.strip().lower() for c in rec[:3]] == ["ts", "kind", "description"]:
            continue
        if len(rec) != 3:
            raise ConfigError(f"events file {path}, line {n}: expected 3 fields ts,kind,description, got {len(rec)}")
        try:
            ts = parse_time(rec[0].strip())
        except (ValueError, ConfigError):
            raise ConfigError(f"events file {path}, line {n}: {rec[0].strip()!r} is not a time "
                              "(ISO 8601, e.g. 2026-11-29T12:00:00Z)") from None
        if not rec[1].strip():
            raise ConfigError(f"events file {path}, line {n}: the kind is empty ({EVENT_KINDS_HINT})")
        rows.append((ts, rec[1].strip(), rec[2].strip()))
    frame = pd.DataFrame(rows, columns=["ts", "kind", "description"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.sort_values("ts").reset_index(drop=True)


def check_params(p: dict) -> None:
    """Response times in order: acknowledged <= assessed <= mitigated <= resolved."""
    given = [(k, pd.Timestamp(p[k])) for k in TIME_PARAMS if p.get(k)]
    for (a, ta), (b, tb) in zip(given, given[1:]):
        if tb < ta:
            raise ConfigError(f"{b} ({tb:%Y-%m-%d %H:%M:%S} UTC) is before {a} ({ta:%Y-%m-%d %H:%M:%S} UTC): "
                              "the times are reversed; check -p " + b)


def run_window(p: dict, since, until, window, now=None):
    """The runner's window: around +- search when ``around`` is given; else --since/--until,
    which a post-mortem needs (there is no default incident)."""
    if p.get("around"):
        if since or until or window:
            raise ConfigError("give either -p around=TIME or --since/--until, not both")
        at, span = pd.Timestamp(p["around"]), parse_duration(p["search"])
        return (at - span).isoformat(), (at + span).isoformat(), None
    if not since and not window:
        raise ConfigError("a post-mortem needs the incident's time: give --since T --until T, or -p around=TIME")
    return since, until, window
