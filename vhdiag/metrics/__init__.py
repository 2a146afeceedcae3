"""Metric history (CPU, memory, error rate, response time, DB connections) as one long frame
``(ts, metric, value, labels)`` (see ``vhdiag.metrics.frame``), and the runbook's thresholds and
SLOs over it.

``load_metrics(source, ...)`` reads, by the form of ``source``:

- ``http://host:9090`` / ``https://...``: Prometheus' HTTP API (``vhdiag.metrics.prometheus``);
- ``sqlite:///path`` / ``postgresql+psycopg://...``: the history store (``vhdiag.history``);
- anything else: a CSV or Parquet file path (``vhdiag.metrics.files``); a DataFrame in the same
  long or wide layout works too.
"""
from __future__ import annotations

import os
import re

import pandas as pd

from ..config import resolve_config
from ..errors import ConfigError, VhdiagError
from ..timeparse import check_not_future, check_window, parse_duration, parse_time
from .frame import COLUMNS, empty
from .names import RUNBOOK_METRICS, normalize
from .thresholds import BREACH_COLUMNS, SLO_COLUMNS, breaches, slo_report

__all__ = ["load_metrics", "cli_load", "breaches", "slo_report", "COLUMNS", "BREACH_COLUMNS", "SLO_COLUMNS",
           "RUNBOOK_METRICS", "normalize", "empty"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def load_metrics(source, since=None, until=None, step=None, queries=None, *, config=None,
                 target: str | None = None) -> pd.DataFrame:
    """Metric history from a file, a Prometheus server or the history store, as one long frame.

    since, until: a datetime, an ISO 8601 time (``2026-11-29T12:00:00Z``), a duration back from
        now (``7d``, ``24h``, ``90m``, ``30s``) or ``now``; naive times are UTC; both ends are
        included. For Prometheus, ``since`` defaults to ``[prometheus] default_since`` (24h) and
        ``until`` to now; files are not cut unless given.
    step: a duration (``15s``, ``5m``). Prometheus: the query resolution (default
        ``[prometheus] step``, 15s). Files: when given, values are averaged per step bucket
        (aligned to the epoch, labelled with the bucket's start); when not, samples stay as written.
    queries: Prometheus: None for every query in ``[prometheus.queries]``; a list of metric ids
        for those configured queries only; a dict ``{metric_id: promql}`` for exactly these
        (a None value takes the configured query). Files: a list of metric ids to keep.
    config: a path, a dict of overrides or a ``Config`` (default: ``load_config()``).
    target: the history store only: that target's metrics (default every target's); a name the
        store does not hold is an error listing the ones it does.
    """
    cfg = resolve_config(config)
    now = pd.Timestamp.now(tz="UTC")
    since_ts = None if since is None else parse_time(since, now=now)
    until_ts = None if until is None else parse_time(until, now=now)
    step_td = None if step is None else _positive_step(step)
    check_window(since_ts, until_ts)
    check_not_future(since_ts, now)
    if isinstance(source, str) and source.startswith("env:"):
        source = _from_environment(source)
    store = isinstance(source, (str, os.PathLike)) and _is_store(os.fspath(source))
    if target is not None and not store:
        raise ConfigError("a target name (--target-name) picks a target in a history store (sqlite:///PATH or "
                          "postgresql://...): a file, a frame or Prometheus holds none, so leave it out")
    if isinstance(source, pd.DataFrame):
        from .files import from_frame
        _check_range(since_ts, until_ts)
        return from_frame(source, since_ts, until_ts, step_td, _metric_list(queries), source="frame",
                          **_naming(cfg))
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"source must be a file path, a Prometheus URL or a history store URL, "
                          f"not {type(source).__name__}")
    text = os.fspath(source)
    m = _SCHEME.match(text)
    scheme = m.group(1).lower() if m else None
    if scheme in ("http", "https"):
        from .prometheus import load_prometheus
        prom = cfg["prometheus"]
        until_ts = now if until_ts is None else until_ts
        since_ts = until_ts - parse_duration(prom["default_since"]) if since_ts is None else since_ts
        _check_range(since_ts, until_ts)
        return load_prometheus(text, since_ts, until_ts, step_td or parse_duration(prom["step"]),
                               _promql(queries, prom["queries"]), timeout_s=float(prom["timeout_s"]),
                               max_points=int(prom["max_points_per_series"]))
    _check_range(since_ts, until_ts)
    if store:
        return _from_history(text, since_ts, until_ts, step_td, queries, target)
    if scheme is not None:
        raise ConfigError(f"unsupported metrics source scheme {scheme}://: give a CSV or Parquet file path, "
                          f"a Prometheus URL (http://host:9090) or a history store URL (sqlite:///path)")
    from .files import load_file
    return load_file(text, since_ts, until_ts, step_td, _metric_list(queries), **_naming(cfg))


def _naming(cfg) -> dict:
    """For files and frames: ``[metrics.names]``, and the ids a threshold or SLO knows (a name
    mapping to none of them is warned about)."""
    return {"names": cfg["metrics"]["names"], "known": set(cfg["thresholds"]) | set(cfg["slo"])}


def cli_load(source: str, since: str | None = None, until: str | None = None, step: str | None = None,
             query: list[str] | tuple = (), config: str | None = None, target: str | None = None) -> pd.DataFrame:
    """For a ``vhdiag metrics`` command: every argument as the command line gives it.

    ``query`` items are ``METRIC=PROMQL`` (that query) or ``METRIC`` (the configured query, or for
    a file: keep that metric); none means every configured query / every metric of the file.
    """
    queries: dict[str, str | None] = {}
    for item in query:
        name, sep, promql = item.partition("=")
        if not name.strip() or (sep and not promql.strip()):
            raise ConfigError(f"bad --query {item!r}: write METRIC=PROMQL, e.g. --query 'cpu_pct=avg(node_load1)'")
        queries[name.strip()] = promql.strip() if sep else None
    if queries and all(v is None for v in queries.values()):
        chosen = list(queries)
    else:
        chosen = queries or None
    return load_metrics(source, since=since, until=until, step=step, queries=chosen, config=config, target=target)


def _is_store(text: str) -> bool:
    m = _SCHEME.match(text)
    scheme = m.group(1).lower() if m else ""
    return scheme.startswith("sqlite") or scheme.split("+")[0] in ("postgresql", "postgres")


def _positive_step(step) -> pd.Timedelta:
    td = parse_duration(step)
    if td <= pd.Timedelta(0):
        raise ConfigError(f"step must be positive, not {step!r}: e.g. step=\"15s\"")
    return td


def _check_range(since_ts, until_ts) -> None:
    check_window(since_ts, until_ts)


def _metric_list(queries):
    if queries is None:
        return None
    if isinstance(queries, dict) and any(v is not None for v in queries.values()):
        raise ConfigError("queries= holds PromQL, which only a Prometheus source runs: "
                          "for a file or a frame pass a list of metric ids to keep")
    return list(queries)


def _promql(queries, configured: dict) -> dict[str, str]:
    if queries is None:
        return {k: v for k, v in configured.items() if v}
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, dict):
        queries = {name: None for name in queries}
    out = {}
    for name, promql in queries.items():
        if promql is None:
            if not configured.get(name):
                raise ConfigError(f"no PromQL configured for metric {name}: pass queries={{{name!r}: 'PROMQL'}} "
                                  f"or add it to [prometheus.queries] in vhdiag.toml "
                                  f"(configured: {', '.join(k for k, v in configured.items() if v)})")
            promql = configured[name]
        out[name] = promql
    return out


def _from_history(url: str, since, until, step, queries, target=None) -> pd.DataFrame:
    try:
        from .. import history
    except ModuleNotFoundError as exc:
        if exc.name in ("vhdiag.history",):
            raise VhdiagError("history store support is not installed yet: load metrics from a CSV or Parquet "
                              "file or a Prometheus URL meanwhile") from None
        raise VhdiagError(f"the history store needs the {exc.name} package: pip install {exc.name}") from None
    loader = getattr(history, "load_metrics", None)
    if loader is None:
        raise VhdiagError("history store support is not installed yet (vhdiag.history has no load_metrics): "
                          "load metrics from a CSV or Parquet file or a Prometheus URL meanwhile")
    from .frame import finish
    return finish(loader(url, since=since, until=until, step=step, queries=queries, target=target))


def _from_environment(source: str) -> str:
    """``env:NAME``: the source is the variable's value (how a report's notebook receives a URL
    holding a password: the notebook keeps the reference, never the URL)."""
    value = os.environ.get(source[4:])
    if not value:
        raise ConfigError(f"environment variable {source[4:]} is not set or empty: export it with the metrics "
                          "source (a file, a Prometheus URL or a history store URL)")
    return value
