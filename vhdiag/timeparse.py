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
the accepted forms, and never anything else. The history store reuses them for its
``since``/``until``.

Frames hold nanosecond timestamps, so times end where ``pandas.Timestamp`` does: between
1677-09-21 and 2262-04-11, and durations at 106751 days (292 years). A valid time outside that
range (``9999-12-31``, epoch ``1e20``, ``10000000d`` back from now) is refused with that reason,
not as a "bad time". ``check_window`` is the one place a window that ends before it starts is
refused, for ``vhdiag history``, ``metrics`` and ``report`` alike.
"""
from __future__ import annotations

import datetime as dt
import math
import re

import pandas as pd

from .errors import ConfigError

_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
DURATION_FORMS = "a number with a unit: 30s, 90m, 24h, 7d, 2w or 1h30m"
TIME_FORMS = ("an ISO 8601 time (2026-11-29T12:00:00Z; no zone = UTC), "
              "a duration back from now (7d, 24h, 90m, 30s) or 'now'")
EARLIEST, LATEST, LONGEST = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"), pd.Timedelta.max
# What OverflowError, OutOfBoundsDatetime/Timedelta (ValueErrors) and friends become.
_RANGE_ERRORS = (OverflowError, ValueError, ArithmeticError)


def parse_duration(value) -> pd.Timedelta:
    """``"90m"`` -> ``Timedelta('0 days 01:30:00')``; numbers are seconds."""
    if isinstance(value, (dt.timedelta, pd.Timedelta)) and value is not pd.NaT:
        return _ns_duration(lambda: pd.Timedelta(value), value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"bad duration {_shown(value)}: write {DURATION_FORMS}")
        return _ns_duration(lambda: pd.Timedelta(seconds=value), value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if not text or not _DURATION.match(text):
        raise ConfigError(f"bad duration {_shown(value)}: write {DURATION_FORMS}")

    def total():
        out = pd.Timedelta(0).as_unit("ns")
        for number, unit in _PART.findall(text):
            out += pd.Timedelta(**{_UNITS[unit]: float(number)})
        return out
    return _ns_duration(total, value)


def _ns_duration(make, value) -> pd.Timedelta:
    """``make()`` as a nanosecond Timedelta, or the one-line reason it cannot be one."""
    try:
        td = make().as_unit("ns")
        if abs(td) <= LONGEST:
            return td
    except _RANGE_ERRORS:
        pass
    raise ConfigError(f"duration {_shown(value)} is longer than {LONGEST.days} days (292 years), the longest "
                      f"vhdiag can handle: give a shorter one")


def parse_time(value, now=None) -> pd.Timestamp:
    """A UTC ``Timestamp`` from a datetime, an ISO 8601 string, a duration back from ``now``,
    ``'now'`` or epoch seconds. ``now`` defaults to the current time (tests pass it)."""
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)) and value is not pd.NaT:
        return _utc(lambda: pd.Timestamp(value), value, after=value.year > 1970)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return _utc(lambda: pd.Timestamp(value, unit="s", tz="UTC"), value, after=value > 0)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"bad time {_shown(value)}: write {TIME_FORMS}")
    text = value.strip()
    reference = pd.Timestamp.now(tz="UTC").as_unit("ns") if now is None else parse_time(now)
    if text.lower() == "now":
        return reference
    if _DURATION.match(text.lower()):
        back = parse_duration(text)
        return _utc(lambda: reference - back, value, after=False)
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            parsed = pd.Timestamp(text)
        except pd.errors.OutOfBoundsDatetime:  # a real date pandas cannot hold (pandas < 3)
            raise ConfigError(out_of_range(value, int(text[:4]) > 1970)) from None
        except _RANGE_ERRORS:
            parsed = None
        if parsed is not None and parsed is not pd.NaT:
            return _utc(lambda: parsed, value)
    raise ConfigError(f"bad time {_shown(value)}: write {TIME_FORMS}")


def parse_window(since=None, until=None, now=None, *, open_start=False):
    """``(since, until)`` parsed against one ``now`` (either may be None: open-ended), and
    checked by ``check_window``."""
    now = pd.Timestamp.now(tz="UTC").as_unit("ns") if now is None else parse_time(now)
    since = parse_time(since, now=now) if since is not None else None
    until = parse_time(until, now=now) if until is not None else None
    check_window(since, until, open_start=open_start)
    check_not_future(since, now)
    return since, until


def check_not_future(since, now) -> None:
    """A window that starts after now holds nothing yet: refused, not answered with an empty
    frame that reads as "nothing happened" (issue 13)."""
    if since is not None and since > now:
        raise ConfigError(f"since ({since.isoformat()}) is in the future (now is {now.isoformat(timespec='seconds')}): "
                          "give a time before now, or a duration back from now (7d)")


def check_window(since, until, *, open_start=False) -> None:
    """Refuse a window whose start is after its end: the one message for every since/until
    (``vhdiag history``, ``metrics`` and ``report``; an empty result would hide the mistake).
    ``open_start``: the window is (since, until], as the history store's deltas are, so equal
    ends hold nothing and are refused too; metric windows include both ends."""
    if since is None or until is None:
        return
    if since > until:
        raise ConfigError(f"since ({since.isoformat()}) is after until ({until.isoformat()}): swap them")
    if open_start and since == until:
        raise ConfigError(f"the window is empty: since {since.isoformat()} is not before until {until.isoformat()}")


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


def _utc(make, value, after=None) -> pd.Timestamp:
    """``make()`` as a nanosecond UTC Timestamp, or the one-line reason it cannot be one.
    ``after``: whether an overflow is past the latest time (else before the earliest); None
    to tell from the time itself."""
    ts = None
    try:
        ts = make()
        if ts is not pd.NaT:
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            if EARLIEST <= ts <= LATEST:
                return ts.as_unit("ns")
    except _RANGE_ERRORS:
        pass
    if ts is pd.NaT:
        raise ConfigError(f"bad time {_shown(value)}: write {TIME_FORMS}")
    later = after if after is not None else (ts is not None and ts.year > 1970)
    raise ConfigError(out_of_range(value, later))


def _shown(value) -> str:
    """The value as the message quotes it, cut short: a pasted megabyte stays one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "..." + text[-1] * isinstance(value, str)


def out_of_range(value, later: bool, where: str = "") -> str:
    """Why a valid time cannot be used: frames hold nanoseconds, which end in 2262. ``where``
    follows the value (`` in column ts``)."""
    if later:
        return (f"time {_shown(value)}{where} is past {LATEST:%Y-%m-%d}, the latest time vhdiag can handle: "
                f"give an earlier time")
    return (f"time {_shown(value)}{where} is before {EARLIEST:%Y-%m-%d}, the earliest time vhdiag can handle: "
            f"give a later time")
