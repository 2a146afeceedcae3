"""Report windows and their names: calendar periods in UTC, or any window.

A scheduler wants calendar periods (``--week 2026-W48``, ``--month 2026-11``, ``--day
2026-11-29``): a re-run of last week's report lands in the same folder, and the index says
"week 48 of 2026" instead of a raw folder name. Any other window (``--since/--until`` or
``--window 7d`` back from now) is named by its bounds.
"""
from __future__ import annotations

import re

import pandas as pd

from ..errors import ConfigError
from ..timeparse import check_not_future, check_window, parse_duration, parse_time

DEFAULT_WINDOW = "7d"
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def resolve_window(since=None, until=None, window=None, now=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(since, until) in UTC: explicit bounds, or ``window`` back from ``until`` (default now, 7d)."""
    if since and window:
        raise ConfigError("give either --since/--until or --window, not both")
    end = parse_time(until, now=now) if until else parse_time("now", now=now)
    length = parse_duration(window or DEFAULT_WINDOW)
    if length <= pd.Timedelta(0):
        raise ConfigError(f"the window {window!r} is not positive: give a duration such as 7d")
    start = parse_time(since, now=now) if since else None
    try:
        if start is None:
            start = end - length
        start - (end - start)  # the report also reads the baseline of the same length before it
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        what = f"--since {since}" if since else f"--window {window or DEFAULT_WINDOW}"
        raise ConfigError(f"{what} is out of range: vhdiag handles times from 1677-09-22 to 2262-04-11, and a "
                          "report also reads the window of the same length before its own: give a shorter one, "
                          "e.g. --window 7d") from None
    if not until:
        check_not_future(start, parse_time("now", now=now))   # a start after now: in the future, not "reversed"
    check_window(start, end, open_start=True)
    check_not_future(start, parse_time("now", now=now))
    return start, end


def baseline_window(start, end, baseline_since=None, baseline_until=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The period a window is compared with: it ends where the window starts and is as long,
    unless given (the slow-query report and ``History.compare`` alike)."""
    b_end = parse_time(baseline_until) if baseline_until else start
    b_start = parse_time(baseline_since) if baseline_since else b_end - (end - start)
    return b_start, b_end


def calendar_window(*, week=None, month=None, day=None, now=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC bounds of an ISO week (``2026-W48``), a month (``2026-11``) or a day
    (``2026-11-29``); ``"last"`` (or True) means the last complete one before ``now``."""
    given = [(k, v) for k, v in (("week", week), ("month", month), ("day", day)) if v not in (None, False, "")]
    if len(given) != 1:
        raise ConfigError("give one of --week, --month, --day")
    kind, value = given[0]
    today = parse_time("now", now=now).normalize()
    last = value is True or str(value).lower() == "last"
    if kind == "week":
        if last:
            start = today - pd.Timedelta(days=today.day_of_week + 7)
        else:
            m = _WEEK.match(str(value).strip())
            if not m:
                raise ConfigError(f"bad week {value!r}: write an ISO week such as 2026-W48 (or 'last')")
            try:
                start = pd.Timestamp.fromisocalendar(int(m.group(1)), int(m.group(2)), 1).tz_localize("UTC")
            except ValueError:
                raise ConfigError(f"{value!r} is not a week of {m.group(1)}: ISO weeks run from W01 to W52 or W53") from None
        return start.as_unit("ns"), (start + pd.Timedelta(days=7)).as_unit("ns")
    if kind == "month":
        if last:
            end = today.replace(day=1)
            start = (end - pd.Timedelta(days=1)).replace(day=1)
            return start.as_unit("ns"), end.as_unit("ns")
        m = _MONTH.match(str(value).strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ConfigError(f"bad month {value!r}: write a month such as 2026-11 (or 'last')")
        start = pd.Timestamp(int(m.group(1)), int(m.group(2)), 1, tz="UTC")
        return start.as_unit("ns"), (start + pd.offsets.MonthBegin(1)).as_unit("ns")
    if last:
        start = today - pd.Timedelta(days=1)
    else:
        m = _DAY.match(str(value).strip())
        try:
            start = pd.Timestamp(str(value).strip(), tz="UTC") if m else None
        except ValueError:
            start = None
        if start is None:
            raise ConfigError(f"bad day {value!r}: write a date such as 2026-11-29 (or 'last')")
    return start.as_unit("ns"), (start + pd.Timedelta(days=1)).as_unit("ns")


def period_name(since, until) -> str:
    """The folder name of a window: ``2026-W48`` (an ISO week), ``2026-11`` (a month),
    ``2026-11-29`` (a day), else ``2026-11-20T0930_2026-11-27T0930`` (UTC; seconds when the
    bounds have them)."""
    since, until = pd.Timestamp(since).tz_convert("UTC"), pd.Timestamp(until).tz_convert("UTC")
    midnight = since == since.normalize() and until == until.normalize()
    if midnight and since.day_of_week == 0 and until - since == pd.Timedelta(days=7):
        year, week, _ = since.isocalendar()
        return f"{year}-W{week:02d}"
    if midnight and since.day == 1 and until == since + pd.offsets.MonthBegin(1):
        return f"{since:%Y-%m}"
    if midnight and until - since == pd.Timedelta(days=1):
        return f"{since:%Y-%m-%d}"
    exact = since.second == until.second == 0 and since.microsecond == until.microsecond == 0
    fmt = "%Y-%m-%dT%H%M" if exact else "%Y-%m-%dT%H%M%S"
    return f"{since.strftime(fmt)}_{until.strftime(fmt)}"


def period_words(since, until) -> str:
    """The period as the index says it: "week 48 of 2026 (Mon 23 Nov to Sun 29 Nov)",
    "November 2026", "Sun 29 Nov 2026", else "20 Nov 09:30 to 27 Nov 09:30 UTC"."""
    since, until = pd.Timestamp(since).tz_convert("UTC"), pd.Timestamp(until).tz_convert("UTC")
    name = period_name(since, until)
    last_day = until - pd.Timedelta(days=1)
    if re.match(r"^\d{4}-W\d{2}$", name):
        year, week, _ = since.isocalendar()
        return f"week {week} of {year} ({since:%a %d %b} to {last_day:%a %d %b})"
    if re.match(r"^\d{4}-\d{2}$", name):
        return f"{since:%B %Y}"
    if re.match(r"^\d{4}-\d{2}-\d{2}$", name):
        return f"{since:%a %d %b %Y}"
    fmt = "%d %b %Y %H:%M" if since.year != until.year else "%d %b %H:%M"
    if since.second or until.second:
        fmt += ":%S"
    return f"{since.strftime(fmt)} to {until.strftime(fmt)} UTC"
