"""Points in time and durations as users write them: in the API and on the command line alike.

``parse_time`` accepts

- a ``datetime`` or ``pandas.Timestamp`` (naive = UTC),
- an ISO 8601 string: ``2026-11-29T12:00:00Z``, ``2026-11-29 12:00``, ``2026-11-29``
  (no zone = UTC),
- a duration back from now: ``7d``, ``24h``, ``90m``, ``30s``, ``1h30m``, ``2w``,
- ``now``,
- a number: seconds since the Unix epoch.

``parse_duration`` accepts ``30s``, ``90m``, ``24h``, ``7d``, ``2w``, ``500ms`` and sums of them
(``1h30m``, as Prometheus writes durations), a ``timedelta``, or a number of seconds.
Both return pandas objects in UTC; both raise a one-line ``ConfigError`` naming the value and
the accepted forms. The history store reuses them for its ``since``/``until``.
"""
from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from .errors import ConfigError

_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
DURATION_FORMS = "a number with a unit: 30s, 90m, 24h, 7d, 2w or 1h30m"
TIME_FORMS = ("an ISO 8601 time (2026-11-29T12:00:00Z; no zone = UTC), "
              "a duration back from now (7d, 24h, 90m, 30s) or 'now'")


def parse_duration(value) -> pd.Timedelta:
    """``"90m"`` -> ``Timedelta('0 days 01:30:00')``; numbers are seconds."""
    if isinstance(value, pd.Timedelta):
        return value
    if isinstance(value, dt.timedelta):
        return pd.Timedelta(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return pd.Timedelta(seconds=value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if not text or not _DURATION.match(text):
        raise ConfigError(f"bad duration {value!r}: write {DURATION_FORMS}")
    total = pd.Timedelta(0)
    for number, unit in _PART.findall(text):
        total += pd.Timedelta(**{_UNITS[unit]: float(number)})
    return total


def parse_time(value, now=None) -> pd.Timestamp:
    """A UTC ``Timestamp`` from a datetime, an ISO 8601 string, a duration back from ``now``,
    ``'now'`` or epoch seconds. ``now`` defaults to the current time (tests pass it)."""
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return _utc(pd.Timestamp(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return pd.Timestamp(value, unit="s", tz="UTC").as_unit("ns")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"bad time {value!r}: write {TIME_FORMS}")
    text = value.strip()
    reference = _utc(pd.Timestamp.now(tz="UTC") if now is None else parse_time(now))
    if text.lower() == "now":
        return reference
    if _DURATION.match(text.lower()):
        return reference - parse_duration(text)
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            return _utc(pd.Timestamp(text))
        except ValueError:
            pass
    raise ConfigError(f"bad time {value!r}: write {TIME_FORMS}")


def format_duration(value) -> str:
    """The short form ``parse_duration`` reads back: ``Timedelta(minutes=90)`` -> ``"1h30m"``."""
    ms = int(round(parse_duration(value) / pd.Timedelta(milliseconds=1)))
    if ms == 0:
        return "0s"
    sign, ms, parts = ("-" if ms < 0 else ""), abs(ms), []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return sign + "".join(parts)


def _utc(ts: pd.Timestamp) -> pd.Timestamp:
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.as_unit("ns")
