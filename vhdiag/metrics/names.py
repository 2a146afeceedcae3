"""Metric names as exports write them, mapped to the runbook's metric ids.

A name is split into lower-case words (``"CPU Usage (%)"`` -> cpu, usage, %; ``cpuUsage`` ->
cpu, usage). Then:

=======================  ================================================  ====================
metric id                a name maps to it when its words are              examples
=======================  ================================================  ====================
``cpu_pct``              cpu, plus a percent word (``%``, pct, percent,     ``CPU %``, ``cpu_usage``,
                         percentage) or a usage word (usage, used,         ``CPU Utilization (%)``
                         utilization, util)
``memory_pct``           memory, mem or ram, plus a percent or usage word  ``Memory %``, ``mem_used_pct``,
                                                                           ``memory_usage``
``error_rate_pct``       error(s) or 5xx, plus rate and/or a percent word  ``Error Rate``, ``errors %``,
                                                                           ``error_rate_pct``
``response_time_p95_ms`` response time, latency, response latency,          ``Response Time (ms)``,
                         request latency or request duration; optionally   ``p95 latency``,
                         p95 / 95th / percentile; a unit ms (default) or   ``latency_seconds`` (x1000)
                         s / seconds (values are multiplied by 1000)
``db_connections``       connections (or conns, connection count), alone    ``DB Connections``,
                         or after db, database, pg, postgres; numbackends;  ``connections``,
                         pg_stat_activity_count                            ``numbackends``
``up``                   up                                                ``up``
=======================  ================================================  ====================

A name carrying another unit (``Memory Usage (GB)``, ``cpu_seconds``, ``CPU (vCPU)``), a ratio
(``error_ratio``: 0 to 1, not percent) or another statistic (``p99 latency``,
``avg response time``) is kept as written, stripped of surrounding spaces: it loads, but no
runbook threshold applies to it unless vhdiag.toml adds one. A response time that names no
statistic is taken as the p95 series, the statistic of the runbook's SLO (section 7).

A name these rules cannot place (``p95 ms`` names a statistic and a unit but no metric) is
mapped in ``vhdiag.toml`` before the rules apply, as written or in any case::

    [metrics.names]
    "p95 ms" = "response_time_p95_ms"    # values already in the id's unit (ms), factor 1

A file whose names map to no metric vhdiag has a threshold or SLO for (and that no
``[metrics.names]`` entry maps) loads with a ``MetricNameWarning`` (``unplaced``) listing the
known ids and both fixes: such a series would otherwise never meet a threshold, silently.
"""
from __future__ import annotations

import json
import re

from ..errors import VhdiagWarning

RUNBOOK_METRICS = ("cpu_pct", "memory_pct", "error_rate_pct", "response_time_p95_ms", "db_connections", "up")

_PCT = {"%", "pct", "percent", "percentage"}
_USAGE = {"usage", "used", "utilization", "utilisation", "util"}
_MS = {"ms", "msec", "millis", "millisecond", "milliseconds"}
_SECONDS = {"s", "sec", "secs", "second", "seconds"}
_P95 = {"p95", "95th", "95", "percentile", "pct95", "q95", "quantile"}
_RESPONSE = [{"response", "time"}, {"latency"}, {"response", "latency"}, {"request", "latency"},
             {"request", "duration"}, {"response", "times"}]
_OTHER_UNITS = {"b", "byte", "bytes", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib", "vcpu", "cores", "core"}
_CONN_PREFIX = {"db", "database", "pg", "postgres", "postgresql", "active", "open"}


def words(name: str) -> list[str]:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return re.findall(r"%|[a-z0-9]+", name.lower())


class MetricNameWarning(VhdiagWarning):
    """A file's column or metric name maps to no metric with a threshold or SLO."""


def normalize(name: str, overrides: dict | None = None) -> tuple[str, float]:
    """``(metric_id, factor)``: the id a column or metric name stands for, and what to multiply
    its values by to get the id's unit (1000 for a response time in seconds, else 1).
    ``overrides``: ``[metrics.names]``, name as written (or in any case) -> id, factor 1."""
    text = str(name).strip()
    mapped = _override(text, overrides)
    if mapped is not None:
        return mapped, 1.0
    if text in RUNBOOK_METRICS:
        return text, 1.0
    w = words(text)
    s = set(w)
    if not w:
        return text, 1.0
    pct, usage = bool(s & _PCT), bool(s & _USAGE)
    core = [x for x in w if x not in _PCT | _USAGE]
    if core == ["cpu"] and (pct or usage):
        return "cpu_pct", 1.0
    if core in (["memory"], ["mem"], ["ram"]) and (pct or usage):
        return "memory_pct", 1.0
    errs = [("error" if x in ("errors", "err", "5xx") else x) for x in core]
    if errs in (["error", "rate"], ["error"]) and ("rate" in s or pct) and not usage:
        return "error_rate_pct", 1.0
    factor = 1000.0 if s & _SECONDS else 1.0
    rest = {x for x in w if x not in _MS | _SECONDS | _P95}
    if rest in _RESPONSE and not (s & _MS and s & _SECONDS) and not pct:
        return "response_time_p95_ms", factor
    conn = [x for x in w if x not in ("count", "number", "num")]
    conn = ["connections" if x in ("connection", "conns", "conn") else x for x in conn]
    if (conn == ["connections"] or (len(conn) == 2 and conn[0] in _CONN_PREFIX and conn[1] == "connections")
            or w in (["numbackends"], ["pg", "stat", "activity", "count"])):
        return "db_connections", 1.0
    return text, 1.0


def _override(text: str, overrides: dict | None) -> str | None:
    if not overrides:
        return None
    if text in overrides:
        return overrides[text]
    folded = {str(k).strip().casefold(): v for k, v in overrides.items()}
    return folded.get(text.casefold())


def unplaced(names, known, overrides: dict | None = None, source: str = "", kind: str = "column") -> str | None:
    """The warning for the names (as written) that map to no id in ``known`` and no
    ``[metrics.names]`` entry, or None when every name is placed."""
    lost = [n for n in dict.fromkeys(str(n).strip() for n in names)
            if _override(n, overrides) is None and normalize(n)[0] not in known]
    if not lost:
        return None
    ids = list(RUNBOOK_METRICS) + sorted(set(known) - set(RUNBOOK_METRICS))
    quoted = ", ".join(repr(n) for n in lost)
    what = f"{kind}s {quoted} map" if len(lost) > 1 else f"{kind} {quoted} maps"
    return (f"{source + ': ' if source else ''}{what} to no metric vhdiag knows, so no threshold or SLO "
            f"applies: rename it to one of {', '.join(ids)} or a name that maps to one ('Response Time (ms)' "
            f"-> response_time_p95_ms), or map it in vhdiag.toml: [metrics.names] "
            f"{json.dumps(lost[0])} = \"{_guess(lost[0])}\"")


def _guess(name: str) -> str:
    """The runbook id a name most likely means, for the example in the warning."""
    s = set(words(name))
    if s & _OTHER_UNITS:   # Memory (GB) is no memory_pct: a new id, with its own threshold
        return "METRIC_ID"
    if s & (_P95 | _MS | _SECONDS | {"latency", "duration", "response"}):
        return "response_time_p95_ms"
    for hint, metric in (({"cpu"}, "cpu_pct"), ({"memory", "mem", "ram"}, "memory_pct"),
                         ({"error", "errors", "5xx"}, "error_rate_pct"),
                         ({"connections", "connection", "conns", "conn"}, "db_connections")):
        if s & hint:
            return metric
    return "METRIC_ID"
