"""The runbook's alert thresholds and SLO targets over a metric frame. Pure functions: no I/O
beyond reading the config.

``breaches(metrics)``: intervals during which a series was above a level's threshold.

- Above means strictly greater, as the runbook writes "> 70%": a value of exactly 70.0 is
  not a warning.
- Levels are computed independently, each from its own threshold. A critical interval is
  therefore always inside a warning interval (critical > warning, which the config enforces):
  the warning rows tell how long the series was at warning level or worse, the critical rows
  how long it was critical. Count incidents from the warning rows, not the sum of both.
- An interval starts at the first sample above and ends at the first sample back at or below
  (``ended_by = "recovery"``). When the data stops while above it ends at the last sample,
  ``open = True`` (``ended_by = "data end"``). A gap between samples longer than twice the
  series' median step also ends it, at the last sample before the gap (``ended_by = "gap"``):
  vhdiag does not guess what happened in between; the next sample above starts a new interval.
- A series whose first sample is already above starts its interval there.
- Intervals shorter than ``min_duration`` are dropped (open ones too).

``slo_report(metrics, period)``: per SLO target and series, the share of samples meeting
``value <comparison> target`` (compliance_pct) and the error budget used.

- Samples count equally; for regular series (Prometheus, or a file loaded with ``step=``) that
  is the share of time.
- Each target has an objective, ``objective_pct`` (the share of samples that must meet it): the
  runbook's uptime target 99.9% for ``up`` (a sample is up when ``up >= 1``), and by analogy
  99.9% for each metric target (runbook section 7 names no share for them). ``met`` is
  ``compliance_pct >= objective_pct``.
- The error budget is the share allowed to miss: 100 - objective_pct (0.1% of the period for
  uptime 99.9%). ``error_budget_pct_used = 100 * (100 - compliance_pct) / (100 - objective_pct)``;
  above 100 means the budget is exhausted. A target without data has one row, samples 0 and
  NaN / <NA> figures.
"""
from __future__ import annotations

import operator

import numpy as np
import pandas as pd

from ..config import resolve_config
from ..errors import ConfigError
from ..timeparse import parse_duration, parse_time
from .frame import NO_LABELS

TS = "datetime64[ns, UTC]"
BREACH_COLUMNS = {"metric": "string", "level": "string", "start": TS, "end": TS, "duration_s": "float64",
                  "peak": "float64", "threshold": "float64", "labels": "string", "open": "bool",
                  "ended_by": "string"}
SLO_COLUMNS = {"metric": "string", "labels": "string", "target": "float64", "comparison": "string",
               "objective_pct": "float64", "samples": "Int64", "violations": "Int64", "compliance_pct": "float64",
               "met": "boolean", "error_budget_pct_used": "float64", "period_start": TS, "period_end": TS}
LEVELS = ("warning", "critical")
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def breaches(metrics: pd.DataFrame, config=None, min_duration="0s") -> pd.DataFrame:
    """Intervals above the warning and critical thresholds, one row each, by start time."""
    cfg = resolve_config(config)
    min_s = parse_duration(min_duration).total_seconds()
    rows = []
    for (metric, labels), ts_ns, values in _series(metrics, "breaches"):
        levels = cfg["thresholds"].get(metric)
        if levels is None:
            continue
        gap_after = np.zeros(len(ts_ns), dtype=bool)
        steps = np.diff(ts_ns)
        if len(steps) and (steps > 0).any():
            gap_after[:-1] = steps > 2 * np.median(steps[steps > 0])
        for level in LEVELS:
            threshold = float(levels[level])
            for start, end, peak, ended_by in _runs(ts_ns, values, values > threshold, gap_after):
                duration = (end - start) / 1e9
                if duration >= min_s:
                    rows.append((metric, level, start, end, duration, peak, threshold, labels,
                                 ended_by == "data end", ended_by))
    out = pd.DataFrame(rows, columns=list(BREACH_COLUMNS))
    for col in ("start", "end"):
        out[col] = pd.to_datetime(out[col].astype("int64"), unit="ns", utc=True)
    out = out.astype(BREACH_COLUMNS)
    out["_order"] = out["level"].map({"warning": 0, "critical": 1})
    out = out.sort_values(["start", "metric", "labels", "_order"], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


def _runs(ts_ns, values, above, gap_after):
    """(start_ns, end_ns, peak, ended_by) for each run of samples above, split at gaps."""
    n = len(above)
    if not above.any():
        return
    prev_breaks = np.ones(n, dtype=bool)
    prev_breaks[1:] = ~above[:-1] | gap_after[:-1]
    next_breaks = np.ones(n, dtype=bool)
    next_breaks[:-1] = ~above[1:] | gap_after[:-1]
    starts = np.flatnonzero(above & prev_breaks)
    ends = np.flatnonzero(above & next_breaks)
    for s, e in zip(starts, ends):
        peak = float(values[s:e + 1].max())
        if e == n - 1:
            yield int(ts_ns[s]), int(ts_ns[e]), peak, "data end"
        elif gap_after[e]:
            yield int(ts_ns[s]), int(ts_ns[e]), peak, "gap"
        else:
            yield int(ts_ns[s]), int(ts_ns[e + 1]), peak, "recovery"


def slo_report(metrics: pd.DataFrame, period=None, config=None) -> pd.DataFrame:
    """Compliance with each SLO target and the error budget used, per target and series.

    period: None for every sample; a duration (``"7d"``) for that long up to the newest sample
    in ``metrics`` (``(newest - 7d, newest]``); or a ``(since, until)`` pair of anything
    ``parse_time`` takes (both ends included).
    """
    cfg = resolve_config(config)
    frame = _checked(metrics, "slo_report")
    lo, hi, left_open = _window(frame, period)
    if lo is not None:
        keep = (frame["ts"] > lo) if left_open else (frame["ts"] >= lo)
        frame = frame[keep & (frame["ts"] <= hi)]
    if lo is None and len(frame):
        lo, hi = frame["ts"].min(), frame["ts"].max()
    rows = []
    for metric, slo in cfg["slo"].items():
        target, comparison, objective = float(slo["target"]), slo["comparison"], float(slo["objective_pct"])
        budget = round(100.0 - objective, 9)
        sub = frame[frame["metric"] == metric]
        if sub.empty:
            rows.append((metric, NO_LABELS, target, comparison, objective, 0, 0, np.nan, pd.NA, np.nan, lo, hi))
            continue
        for labels, group in sub.groupby("labels", sort=True):
            n = len(group)
            good = int(_OPS[comparison](group["value"].to_numpy(), target).sum())
            compliance = round(100.0 * good / n, 6)
            used = round(100.0 * (100.0 * (n - good) / n) / budget, 6)
            rows.append((metric, labels, target, comparison, objective, n, n - good, compliance,
                         compliance >= objective, used, lo, hi))
    out = pd.DataFrame(rows, columns=list(SLO_COLUMNS))
    for col in ("period_start", "period_end"):
        out[col] = pd.to_datetime(out[col], utc=True)
    return out.astype(SLO_COLUMNS)


def _window(frame: pd.DataFrame, period):
    """(low, high, low_is_exclusive) or (None, None, False) for every sample."""
    if period is None:
        return None, None, False
    if isinstance(period, (tuple, list)):
        if len(period) != 2:
            raise ConfigError(f"period must be a duration such as '7d' or a (since, until) pair, not {period!r}")
        lo, hi = parse_time(period[0]), parse_time(period[1])
        if lo > hi:
            raise ConfigError(f"period starts ({lo.isoformat()}) after it ends ({hi.isoformat()}): swap them")
        return lo, hi, False
    span = parse_duration(period)
    hi = frame["ts"].max() if len(frame) else pd.Timestamp.now(tz="UTC")
    return hi - span, hi, True


def _checked(metrics, who: str) -> pd.DataFrame:
    if not isinstance(metrics, pd.DataFrame) or not {"ts", "metric", "value"} <= set(metrics.columns):
        raise ConfigError(f"{who}() needs a metric frame with columns ts, metric, value[, labels]: "
                          f"get one from vhdiag.metrics.load_metrics()")
    frame = metrics[["ts", "metric", "value"]].copy()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype(TS)
    frame["labels"] = metrics["labels"].fillna(NO_LABELS).astype(str) if "labels" in metrics else NO_LABELS
    frame["metric"] = frame["metric"].astype(str)
    frame["value"] = pd.to_numeric(frame["value"]).astype("float64")
    return frame[frame["value"].notna()]


def _series(metrics, who: str):
    frame = _checked(metrics, who)
    for key, group in frame.groupby(["metric", "labels"], sort=True):
        group = group.sort_values("ts", kind="stable")
        yield key, pd.DatetimeIndex(group["ts"]).as_unit("ns").asi8, group["value"].to_numpy()
