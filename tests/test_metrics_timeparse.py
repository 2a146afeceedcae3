"""vhdiag.timeparse: the since/until forms the API and the command line accept."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from vhdiag.errors import ConfigError
from vhdiag.timeparse import format_duration, parse_duration, parse_time

NOW = pd.Timestamp("2026-11-29T12:00:00Z")


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("90m", 5400), ("24h", 86400), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400),
    ("500ms", 0.5), ("1.5h", 5400), (" 15S ", 15), (45, 45), (dt.timedelta(minutes=2), 120),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pd.Timedelta(seconds=seconds)


@pytest.mark.parametrize("value, expected", [
    ("2026-11-29T12:00:00Z", "2026-11-29T12:00:00+00:00"),
    ("2026-11-29T13:30:00+01:00", "2026-11-29T12:30:00+00:00"),
    ("2026-11-29 08:00", "2026-11-29T08:00:00+00:00"),                # no zone = UTC
    ("2026-11-29", "2026-11-29T00:00:00+00:00"),
    ("7d", "2026-11-22T12:00:00+00:00"), ("24h", "2026-11-28T12:00:00+00:00"),
    ("90m", "2026-11-29T10:30:00+00:00"), ("30s", "2026-11-29T11:59:30+00:00"),
    ("now", "2026-11-29T12:00:00+00:00"),
    (dt.datetime(2026, 11, 29, 12), "2026-11-29T12:00:00+00:00"),    # naive datetime = UTC
    (pd.Timestamp("2026-11-29T07:00:00-05:00"), "2026-11-29T12:00:00+00:00"),
    (1795953600, "2026-11-29T12:00:00+00:00"),                       # epoch seconds
])
def test_parse_time(value, expected):
    got = parse_time(value, now=NOW)
    assert got.isoformat() == expected and str(got.tz) == "UTC" and got.unit == "ns"


def test_parse_time_defaults_to_the_current_time():
    before = pd.Timestamp.now(tz="UTC")
    assert before - pd.Timedelta(hours=1, seconds=1) <= parse_time("1h") <= pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)


@pytest.mark.parametrize("value, message", [
    ("yesterday", "bad time 'yesterday': write an ISO 8601 time (2026-11-29T12:00:00Z; no zone = UTC), "
                  "a duration back from now (7d, 24h, 90m, 30s) or 'now'"),
    ("2026-13-45", "bad time '2026-13-45': write an ISO 8601 time (2026-11-29T12:00:00Z; no zone = UTC), "
                   "a duration back from now (7d, 24h, 90m, 30s) or 'now'"),
    ("", "bad time '': write an ISO 8601 time (2026-11-29T12:00:00Z; no zone = UTC), "
         "a duration back from now (7d, 24h, 90m, 30s) or 'now'"),
])
def test_bad_times(value, message):
    with pytest.raises(ConfigError) as err:
        parse_time(value, now=NOW)
    assert str(err.value) == message


@pytest.mark.parametrize("value", ["7 days", "d7", "15", "", "1h-30m", None])
def test_bad_durations(value):
    with pytest.raises(ConfigError) as err:
        parse_duration(value)
    assert str(err.value) == f"bad duration {value!r}: write a number with a unit: 30s, 90m, 24h, 7d, 2w or 1h30m"


def test_format_duration_round_trips():
    for text in ("15s", "1h30m", "7d", "500ms", "1d2h3m4s"):
        assert format_duration(text) == text and parse_duration(format_duration(text)) == parse_duration(text)
