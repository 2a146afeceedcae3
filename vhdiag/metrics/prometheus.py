"""Metric history from Prometheus' HTTP API (``GET /api/v1/query_range``).

One PromQL expression per metric id: the defaults in ``[prometheus.queries]`` of
``defaults.toml`` (node_exporter CPU and memory, an ``http_requests_total`` counter, an
``http_request_duration_seconds`` histogram, postgres_exporter's ``pg_stat_activity_count``),
replaced by a user's vhdiag.toml or by ``queries=``.

Prometheus refuses a range query of more than 11,000 points per series ("exceeded maximum
resolution of 11,000 points per timeseries", web/api/v1/api.go), so a long range is asked for
in pieces of at most 11,000 evaluation times each. The pieces do not overlap: piece k covers
``start + k*11000*step`` to ``start + (k*11000 + 10999)*step``, so no boundary point comes
twice. Evaluation times are aligned to whole multiples of ``step`` since the epoch (the first
one at or after ``since``), as Grafana aligns them, so the same range gives the same points.

Credentials in the URL (``http://user:password@host:9090``) are sent as HTTP basic auth and
never shown: messages name the URL without them.
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import ConfigError, VhdiagError
from ..timeparse import format_duration
from .frame import empty, finish, labels_json

log = logging.getLogger(__name__)
MAX_POINTS = 11_000  # Prometheus' limit per series and request
FIX_QUERY = "fix its PromQL in queries= or in [prometheus.queries] of vhdiag.toml"


class Prometheus:
    """One Prometheus server: its base URL, the URL shown in messages, and how to ask it."""

    def __init__(self, url: str, timeout_s: float = 30.0):
        try:
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname or ""
            port = parts.port
        except ValueError as exc:   # "Invalid IPv6 URL", "Port out of range": the URL itself is not shown
            raise ConfigError(f"malformed Prometheus URL ({str(exc).lower()}): give its base URL, e.g. "
                              "http://host:9090 or http://user:password@host:9090") from None
        if not host:
            raise ConfigError("malformed Prometheus URL (no host): give its base URL, e.g. http://host:9090")
        if "@" in parts.path or "://" in parts.path:   # shown in every message: it must hold no credentials
            raise ConfigError("malformed Prometheus URL (an @ or :// after the host): give its base URL, e.g. "
                              "http://user:password@host:9090")
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{port}" if port else "")
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.display = self.base  # no user, no password
        self.timeout_s = timeout_s
        self.headers = {"Accept": "application/json", "User-Agent": f"vhdiag/{__version__}"}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def query_range(self, metric: str, promql: str, start_ms: int, end_ms: int, step_ms: int) -> list[dict]:
        """The ``result`` list of one query_range call (a matrix)."""
        params = urllib.parse.urlencode({"query": promql, "start": _rfc3339(start_ms),
                                         "end": _rfc3339(end_ms), "step": f"{step_ms}ms"})
        req = urllib.request.Request(f"{self.base}/api/v1/query_range?{params}", headers=self.headers)
        log.debug("query_range %s: %s to %s step %sms (%d points)", metric, _rfc3339(start_ms),
                  _rfc3339(end_ms), step_ms, (end_ms - start_ms) // step_ms + 1)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, metric) from None
        except (TimeoutError, socket.timeout):
            raise VhdiagError(f"Prometheus at {self.display} did not answer the {metric} query within "
                              f"{self.timeout_s:g}s: load a shorter range or a larger step, or raise "
                              f"timeout_s in [prometheus] of vhdiag.toml") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise VhdiagError(f"Prometheus at {self.display} did not answer the {metric} query within "
                                  f"{self.timeout_s:g}s: load a shorter range or a larger step, or raise "
                                  f"timeout_s in [prometheus] of vhdiag.toml") from None
            text = (reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)) or \
                type(reason).__name__
            raise VhdiagError(f"cannot reach Prometheus at {self.display} ({text.lower()}): is it running, "
                              f"and is this its base URL (e.g. http://host:9090)?") from None
        data = self._json(body)
        if data.get("status") != "success":
            raise VhdiagError(f"Prometheus at {self.display} rejected the {metric} query "
                              f"({_error_text(data)}): {FIX_QUERY}")
        result = data.get("data") or {}
        if result.get("resultType") != "matrix":
            raise VhdiagError(f"Prometheus at {self.display} answered the {metric} query with a "
                              f"{result.get('resultType')}, not a matrix: {FIX_QUERY}")
        return result.get("result") or []

    def _json(self, body: bytes) -> dict:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise VhdiagError(f"{self.display} did not answer like Prometheus (no JSON from "
                              f"/api/v1/query_range): give the Prometheus base URL, e.g. http://host:9090")
        return data

    def _http_error(self, exc: urllib.error.HTTPError, metric: str) -> VhdiagError:
        try:
            data = json.loads(exc.read())
        except Exception:
            data = None
        code = exc.code
        if isinstance(data, dict) and data.get("status") == "error" and code in (400, 422):
            return VhdiagError(f"Prometheus at {self.display} rejected the {metric} query "
                               f"({_error_text(data)}): {FIX_QUERY}")
        if code in (401, 403):
            return VhdiagError(f"Prometheus at {self.display} refused access (HTTP {code}): give credentials "
                               f"in the URL, e.g. http://user:password@host:9090")
        if code == 404:
            return VhdiagError(f"no Prometheus API at {self.display} (HTTP 404 for /api/v1/query_range): "
                               f"give the Prometheus base URL, e.g. http://host:9090")
        detail = _error_text(data) if isinstance(data, dict) else (exc.reason or "no detail")
        return VhdiagError(f"Prometheus at {self.display} answered HTTP {code} to the {metric} query "
                           f"({detail}): check that server, or load a shorter range or a larger step")


def load_prometheus(url: str, since: pd.Timestamp, until: pd.Timestamp, step: pd.Timedelta,
                    queries: dict[str, str], timeout_s: float = 30.0,
                    max_points: int = 1_000_000) -> pd.DataFrame:
    """The metric frame of ``queries`` (metric id -> PromQL) over [since, until] at ``step``."""
    step_ms = int(round(step / pd.Timedelta(milliseconds=1)))
    if step_ms < 1:
        raise ConfigError(f"step {format_duration(step)} is too small for Prometheus: "
                          f"use at least 1ms, e.g. step=\"15s\"")
    start_ms = -(-_ms(since) // step_ms) * step_ms  # first multiple of step at or after since
    end_ms = _ms(until)
    n = (end_ms - start_ms) // step_ms + 1 if end_ms >= start_ms else 0
    if n > max_points:
        raise ConfigError(f"{since.isoformat()} to {until.isoformat()} at step {format_duration(step)} is "
                          f"{n:,} points per series, more than max_points_per_series ({max_points:,}): "
                          f"use a larger step or a shorter range")
    if n == 0 or not queries:
        return empty()
    server = Prometheus(url, timeout_s)
    parts = []
    for metric, promql in queries.items():
        for first in range(0, n, MAX_POINTS):
            last = min(first + MAX_POINTS - 1, n - 1)
            result = server.query_range(metric, promql, start_ms + first * step_ms,
                                        start_ms + last * step_ms, step_ms)
            parts.extend(_series_arrays(metric, result))
    if not parts:
        return empty()
    return finish(_one_frame(parts))


def _series_arrays(metric: str, result: list[dict]):
    """(metric, labels, times in ms, values) of each series of one answer."""
    for series in result:
        values = series.get("values") or []
        if not values:
            continue
        ts = np.array([v[0] for v in values], dtype="float64")
        val = np.array([float(v[1]) for v in values], dtype="float64")  # "NaN", "+Inf" parse too
        yield metric, labels_json(series.get("metric") or {}), np.round(ts * 1000).astype("int64"), val


def _one_frame(parts) -> pd.DataFrame:
    """One frame of every piece, metric and labels as categories: a month at 15 s of five
    metrics is 80 pieces, and a frame of text columns per piece, then their concatenation, took
    longer than decoding the answers (benchmarks/metrics_month.py)."""
    metrics = sorted({p[0] for p in parts})
    labels = sorted({p[1] for p in parts})
    lengths = [len(p[2]) for p in parts]
    m_codes = np.repeat([metrics.index(p[0]) for p in parts], lengths)
    l_codes = np.repeat([labels.index(p[1]) for p in parts], lengths)
    return pd.DataFrame({
        "ts": pd.to_datetime(np.concatenate([p[2] for p in parts]), unit="ms", utc=True),
        "metric": pd.Categorical.from_codes(m_codes, metrics),
        "value": np.concatenate([p[3] for p in parts]),
        "labels": pd.Categorical.from_codes(l_codes, labels),
    })


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.as_unit("ns").value // 1_000_000)


def _rfc3339(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error_text(data: dict) -> str:
    kind = data.get("errorType")
    text = " ".join(str(data.get("error") or "no detail").split())
    return f"{kind}: {text}" if kind else text
