"""Bad input is refused with one line naming the fix: never a traceback, never silently accepted.

Times and durations past what a nanosecond timestamp holds, reversed windows, metric files with
out-of-range times, infinite or conflicting values, ``nan`` in vhdiag.toml, columns that map to
no metric, negative ``--limit``, a mistyped ``--target-name``, and sizes skipped under a lock.
Generated input (hypothesis) checks that nothing but vhdiag's own errors ever escapes.
"""
from __future__ import annotations

import datetime as dt
import math
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vhdiag
from vhdiag import cli
from vhdiag.errors import ConfigError, VhdiagError
from vhdiag.history import History
from vhdiag.history.metrics import import_metrics
from vhdiag.metrics import breaches, load_metrics
from vhdiag.metrics.names import MetricNameWarning
from vhdiag.timeparse import parse_duration, parse_time

from helpers import exclusive_lock

NOW = pd.Timestamp("2026-11-29T12:00:00Z")
TOO_LONG = ("duration '10000000d' is longer than 106751 days (292 years), the longest vhdiag can handle: "
            "give a shorter one")
PAST_2262 = "time '9999-12-31' is past 2262-04-11, the latest time vhdiag can handle: give an earlier time"
REVERSED = "since (2026-11-29T00:00:00+00:00) is after until (2026-11-28T00:00:00+00:00): swap them"
KNOWN_IDS = "cpu_pct, memory_pct, error_rate_pct, response_time_p95_ms, db_connections, up"


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    """Neither $VHDIAG_CONFIG, ./vhdiag.toml nor the real user config dir leak into the tests."""
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def write(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- times and durations (defect 6) ------------------------------------------------------------
@pytest.mark.parametrize("value, message", [
    ("9999-12-31", PAST_2262),
    ("2262-04-11T23:00:00-05:00", "time '2262-04-11T23:00:00-05:00' is past 2262-04-11, the latest time vhdiag "
                                  "can handle: give an earlier time"),
    ("1600-01-01", "time '1600-01-01' is before 1677-09-21, the earliest time vhdiag can handle: give a later time"),
    (1e20, "time 1e+20 is past 2262-04-11, the latest time vhdiag can handle: give an earlier time"),
    (dt.date(9999, 12, 31), "time datetime.date(9999, 12, 31) is past 2262-04-11, the latest time vhdiag can "
                            "handle: give an earlier time"),
    ("10000000d", TOO_LONG),
    (float("nan"), "bad time nan: write an ISO 8601 time (2026-11-29T12:00:00Z; no zone = UTC), a duration back "
                   "from now (7d, 24h, 90m, 30s) or 'now'"),
])
def test_times_past_what_vhdiag_holds_give_the_reason(value, message):
    with pytest.raises(ConfigError) as err:
        parse_time(value, now=NOW)
    assert str(err.value) == message
    # The edges themselves still work.
    assert parse_time("2262-04-11", now=NOW) == pd.Timestamp("2262-04-11T00:00:00Z")
    assert parse_time("100000d", now=NOW) == NOW - pd.Timedelta(days=100000)


@pytest.mark.parametrize("value, message", [
    ("10000000d", TOO_LONG),
    (1e300, "duration 1e+300 is longer than 106751 days (292 years), the longest vhdiag can handle: "
            "give a shorter one"),
    ("100000d100000d", "duration '100000d100000d' is longer than 106751 days (292 years), the longest vhdiag "
                       "can handle: give a shorter one"),
    (float("inf"), "bad duration inf: write a number with a unit: 30s, 90m, 24h, 7d, 2w or 1h30m"),
])
def test_durations_past_what_vhdiag_holds_give_the_reason(value, message):
    with pytest.raises(ConfigError) as err:
        parse_duration(value)
    assert str(err.value) == message


def test_far_times_on_every_command_are_one_line(tmp_path, capsys):
    csv = write(tmp_path, "m.csv", "ts,cpu_pct\n2026-11-29T12:00:00Z,1\n")
    for argv in (["history", "statements", "--history", tmp_path / "h.sqlite", "--since", "10000000d"],
                 ["metrics", csv, "--since", "10000000d"],
                 ["report", "slow_queries", "--since", "10000000d", "--out", tmp_path / "r"]):
        assert run_cli(capsys, *argv) == (1, "", f"Error: {TOO_LONG}\n"), argv
    for argv in (["history", "snapshots", "--history", tmp_path / "h.sqlite", "--until", "9999-12-31"],
                 ["metrics", csv, "--until", "9999-12-31"],
                 ["report", "slow_queries", "--since", "2026-11-22", "--until", "9999-12-31", "--out", tmp_path / "r"]):
        assert run_cli(capsys, *argv) == (1, "", f"Error: {PAST_2262}\n"), argv
    assert not (tmp_path / "r").exists()


def test_reversed_windows_are_refused_alike_by_metrics_and_report(tmp_path, capsys):
    csv = write(tmp_path, "m.csv", "ts,cpu_pct\n2026-11-28T12:00:00Z,1\n")
    for argv in (["metrics", csv, "--since", "2026-11-29", "--until", "2026-11-28"],
                 ["report", "slow_queries", "--since", "2026-11-29", "--until", "2026-11-28", "--out", tmp_path / "r"]):
        assert run_cli(capsys, *argv) == (1, "", f"Error: {REVERSED}\n"), argv


# -- metric files (defect 7) ---------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("ts,cpu_pct\n1795953600,1\n1e20,2\n",
     "line 3: time '1e20' in column ts (epoch nanoseconds) is past 2262-04-11, the latest time vhdiag can handle: "
     "give an earlier time"),
    ("timestamp,cpu_pct\n9999-12-31T00:00:00Z,1\n",
     "line 2: time '9999-12-31T00:00:00Z' in column timestamp is past 2262-04-11, the latest time vhdiag can "
     "handle: give an earlier time"),
    ("ts,cpu_pct,memory_pct\n2026-11-29T12:00:00Z,1,2\n2026-11-29T12:00:15Z,inf,3\n",
     "line 3: 'inf' in column cpu_pct is not a finite number: write a finite value, or leave the cell empty "
     "for no sample"),
    ("ts,metric,value\n2026-11-29T12:00:00Z,cpu_pct,-inf\n",
     "line 2: '-inf' in column value is not a finite number: write a finite value, or leave the cell empty "
     "for no sample"),
    ("ts,memory_pct\n2026-11-29T12:00:00Z,1\n2026-11-29T12:00:15Z,2\n2026-11-29T12:00:30Z,1e309\n",
     "line 4: '1e309' in column memory_pct is not a finite number: write a finite value, or leave the cell "
     "empty for no sample"),
    ("ts,latency_seconds\n2026-11-29T12:00:00Z,1e306\n",     # finite, but not once seconds become ms
     "line 2: '1e306' in column latency_seconds is not a finite number: write a finite value, or leave the "
     "cell empty for no sample"),
    ("ts,metric,value,labels\n"
     "2026-11-29T12:00:00Z,cpu_pct,40,instance=\"db1\"\n"
     "2026-11-29T12:00:00Z,cpu_pct,41,instance=\"db2\"\n"
     "2026-11-29T12:00:15Z,cpu_pct,50,instance=\"db1\"\n"
     "2026-11-29T13:00:00+01:00,cpu_pct,45,instance=\"db1\"\n",
     "line 2 and line 5 give cpu_pct {\"instance\":\"db1\"} at 2026-11-29T12:00:00+00:00 two values "
     "(40 and 45): keep one of the two rows"),
])
def test_bad_metric_values_and_times_name_the_line(tmp_path, text, message):
    path = write(tmp_path, "m.csv", text)
    with pytest.raises(ConfigError) as err:
        load_metrics(path)
    assert str(err.value) == f"{path}: {message}"


def test_identical_duplicates_are_one_sample_and_empty_or_nan_cells_are_none(tmp_path):
    path = write(tmp_path, "m.csv", ("ts,cpu_pct,memory_pct\n"
                                     "2026-11-29T12:00:00Z,40,\n"
                                     "2026-11-29T12:00:15Z,NaN,61\n"
                                     "2026-11-29T12:00:00Z,40,\n"))   # the same export pasted twice
    got = load_metrics(path)
    assert [(r.ts, r.metric, r.value) for r in got.itertuples()] == [
        (pd.Timestamp("2026-11-29T12:00:00Z"), "cpu_pct", 40.0),
        (pd.Timestamp("2026-11-29T12:00:15Z"), "memory_pct", 61.0)]


def test_metric_file_errors_on_the_command_line(tmp_path, capsys):
    path = write(tmp_path, "m.csv", "ts,cpu_pct\n1e20,1\n")
    code, out, err = run_cli(capsys, "metrics", path)
    assert (code, out) == (1, "")
    assert err == (f"Error: {path}: line 2: time '1e20' in column ts (epoch nanoseconds) is past 2262-04-11, "
                   f"the latest time vhdiag can handle: give an earlier time\n")
    path = write(tmp_path, "dup.csv", "ts,metric,value\n2026-11-29T12:00:00Z,cpu_pct,1\n2026-11-29T12:00:00Z,cpu_pct,2\n")
    assert run_cli(capsys, "metrics", "import", path, "--history", tmp_path / "h.sqlite", "--target-name", "a") == (
        1, "", f"Error: {path}: line 2 and line 3 give cpu_pct at 2026-11-29T12:00:00+00:00 two values (1 and 2): "
               f"keep one of the two rows\n")


def test_import_refuses_a_frame_with_infinite_or_conflicting_values(tmp_path):
    url = str(tmp_path / "h.sqlite")
    ts = pd.Timestamp("2026-11-29T12:00:00Z")
    frame = pd.DataFrame({"ts": [ts, ts + pd.Timedelta("15s")], "metric": ["cpu_pct"] * 2,
                          "value": [1.0, math.inf], "labels": ["{}"] * 2})
    with pytest.raises(ConfigError) as err:
        import_metrics(url, frame, "a")
    assert str(err.value) == ("metric frame row 2: cpu_pct = inf at 2026-11-29T12:00:15+00:00 is not a finite number: "
                              "fix or drop the row (a missing sample is no row)")
    frame["value"] = [1.0, 2.0]
    frame["ts"] = [ts, ts]
    with pytest.raises(ConfigError) as err:
        import_metrics(url, frame, "a")
    assert str(err.value) == ("metric frame rows 1 and 2 give cpu_pct {} at 2026-11-29T12:00:00+00:00 two values "
                              "(1 and 2): keep one")


@pytest.mark.parametrize("text, message", [
    ("[thresholds.cpu_pct]\nwarning = nan\n", "thresholds.cpu_pct.warning = nan is not a finite number: "
                                              "e.g. warning = 70.0"),
    ("[thresholds.memory_pct]\ncritical = inf\n", "thresholds.memory_pct.critical = inf is not a finite number: "
                                                  "e.g. critical = 90.0"),
    ("[thresholds.disk_pct]\nwarning = 80.0\ncritical = -inf\n",
     "thresholds.disk_pct.critical = -inf is not a finite number: e.g. critical = 85.0"),
    ("[slo.cpu_pct]\ntarget = nan\n", "slo.cpu_pct.target = nan is not a finite number: e.g. target = 50.0"),
    ("[metrics.names]\n\"p95 ms\" = \"p95 latency\"\n",
     'metrics.names."p95 ms" = "p95 latency" does not map a column name to a metric id: '
     'e.g. "p95 ms" = "response_time_p95_ms"'),
])
def test_non_finite_numbers_in_vhdiag_toml_are_refused(tmp_path, capsys, text, message):
    config = write(tmp_path, "vhdiag.toml", text)
    csv = write(tmp_path, "m.csv", "ts,cpu_pct\n2026-11-29T12:00:00Z,99\n")
    assert run_cli(capsys, "metrics", csv, "--breaches", "--config", config) == (1, "", f"Error: {config}: {message}\n")


def test_a_column_that_maps_to_no_metric_warns_with_the_known_names_and_the_fix(tmp_path, capsys):
    csv = write(tmp_path, "m.csv", "ts,CPU %,p95 ms\n2026-11-29T12:00:00Z,10,6000\n2026-11-29T12:01:00Z,10,6000\n")
    warning = (f"{csv}: column 'p95 ms' maps to no metric vhdiag knows, so no threshold or SLO applies: rename it to "
               f"one of {KNOWN_IDS} or a name that maps to one ('Response Time (ms)' -> response_time_p95_ms), or "
               f"map it in vhdiag.toml: [metrics.names] \"p95 ms\" = \"response_time_p95_ms\"")
    with pytest.warns(MetricNameWarning) as record:
        frame = load_metrics(csv)
    assert [str(w.message) for w in record] == [warning]
    assert set(frame["metric"]) == {"cpu_pct", "p95 ms"}
    code, out, err = run_cli(capsys, "metrics", csv, "--breaches")
    assert (code, err) == (0, f"Warning: {warning}\n")
    assert "response_time_p95_ms" not in out                  # the 6 s p95 breaches nothing: hence the warning
    # Mapped in vhdiag.toml: no warning, and the runbook's 5 s critical threshold applies.
    config = write(tmp_path, "vhdiag.toml", '[metrics.names]\n"P95 MS" = "response_time_p95_ms"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetricNameWarning)
        mapped = load_metrics(csv, config=config)
    assert set(mapped["metric"]) == {"cpu_pct", "response_time_p95_ms"}
    assert list(breaches(mapped, config=config)["level"]) == ["warning", "critical"]
    code, out, err = run_cli(capsys, "metrics", csv, "--breaches", "--config", config)
    assert (code, err) == (0, "")
    assert "response_time_p95_ms" in out
    # A long file's metric names are checked too; a metric the config gives a threshold is known.
    long = write(tmp_path, "long.csv", "ts,metric,value\n2026-11-29T12:00:00Z,disk_pct,10\n")
    with pytest.warns(MetricNameWarning, match=r"metric name 'disk_pct' maps to no metric vhdiag knows"):
        load_metrics(long)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetricNameWarning)
        load_metrics(long, config={"thresholds": {"disk_pct": {"warning": 80.0, "critical": 90.0}}})


# -- the command line (defect 11) ----------------------------------------------------------------
def test_negative_limit_is_refused_before_anything_runs(tmp_path, capsys):
    message = "Error: --limit -1: give a number of rows, 1 or more (0 for every row)\n"
    assert run_cli(capsys, "show", "tables", "--dsn", "postgresql://nobody@127.0.0.1:1/none", "--limit", "-1") == (
        1, "", message)
    assert run_cli(capsys, "history", "snapshots", "--history", tmp_path / "h.sqlite", "--limit", "-1") == (
        1, "", message)
    assert not (tmp_path / "h.sqlite").exists()


def test_limit_zero_prints_every_row(pg, capsys):
    code, out, err = run_cli(capsys, "show", "tables", "--dsn", pg.dsn(), "--format", "csv", "--columns", "table")
    assert code == 0, err
    every = out.splitlines()
    code, out, err = run_cli(capsys, "show", "tables", "--dsn", pg.dsn(), "--format", "csv", "--columns", "table",
                             "--limit", "0")
    assert (code, out.splitlines()) == (0, every)
    assert {"orders", "machine_events"} <= set(every)


@pytest.fixture
def store(pg, tmp_path):
    """A history store holding two snapshots of a real server, as target vendhub-prod."""
    url = str(tmp_path / "history.sqlite")
    for _ in range(2):
        assert cli.main(["snapshot", "--dsn", pg.dsn("postgres"), "--history", url, "--target-name", "vendhub-prod",
                         "--no-prune"]) == 0
    return url


def test_mistyped_target_name_is_refused_naming_the_known_ones(store, capsys):
    capsys.readouterr()
    message = (f"Error: no target named 'vendhub-prdo' in history store {History(store).display}: "
               f"known: vendhub-prod\n")
    for view in ("statements", "snapshots", "table-growth", "database-series"):
        assert run_cli(capsys, "history", view, "--history", store, "--target-name", "vendhub-prdo") == (
            1, "", message), view
    assert run_cli(capsys, "metrics", f"sqlite:///{store}", "--target-name", "vendhub-prdo") == (1, "", message)
    code, out, err = run_cli(capsys, "metrics", f"sqlite:///{store}", "--target-name", "vendhub-prod",
                             "--format", "csv")
    assert (code, err) == (0, "")
    assert set(pd.read_csv(__import__("io").StringIO(out))["labels"]) == {'{"target":"vendhub-prod"}'}
    csv = Path(store).with_name("m.csv")
    csv.write_text("ts,cpu_pct\n2026-11-29T12:00:00Z,1\n")
    assert run_cli(capsys, "metrics", csv, "--target-name", "vendhub-prod") == (
        1, "", "Error: a target name (--target-name) picks a target in a history store (sqlite:///PATH or "
               "postgresql://...): a file, a frame or Prometheus holds none, so leave it out\n")


def test_reversed_window_on_history_is_refused_like_report(store, capsys):
    capsys.readouterr()
    for view in ("statements", "snapshots", "table-growth", "database-series"):
        assert run_cli(capsys, "history", view, "--history", store, "--since", "2026-11-29",
                       "--until", "2026-11-28") == (1, "", f"Error: {REVERSED}\n"), view
    with pytest.raises(ConfigError) as err:
        History(store).statements(since="2026-11-29", until="2026-11-28")
    assert str(err.value) == REVERSED
    # The store's windows are (since, until], as report's: equal ends hold nothing, also refused alike.
    empty = "the window is empty: since 2026-11-29T00:00:00+00:00 is not before until 2026-11-29T00:00:00+00:00"
    for argv in (["history", "snapshots", "--history", store], ["report", "slow_queries", "--out", Path(store).parent]):
        assert run_cli(capsys, *argv, "--since", "2026-11-29", "--until", "2026-11-29") == (
            1, "", f"Error: {empty}\n"), argv
    ts = History(store).snapshots()["ts"]
    assert len(History(store).snapshots(since=ts.iloc[0], until=ts.iloc[1])) == 1


def test_show_tables_notes_sizes_skipped_under_a_lock(pg, capsys):
    with exclusive_lock(pg, "machine_events"):
        code, out, err = run_cli(capsys, "show", "tables", "--dsn", pg.dsn(), "--format", "csv",
                                 "--columns", "table,total_bytes,size_skipped")
    assert code == 0
    assert "machine_events,,True" in out.splitlines()
    assert err == "Note: sizes skipped (locked ACCESS EXCLUSIVE by another session): public.machine_events\n"
    code, out, err = run_cli(capsys, "show", "tables", "--dsn", pg.dsn(), "--format", "csv")
    assert (code, err) == (0, "")                  # no lock, no note


# -- generated input: nothing but vhdiag's own errors ----------------------------------------------
_UNITS = st.sampled_from(["ms", "s", "m", "h", "d", "w", "S", "D", "y", ""])
_NUMBER = st.one_of(st.integers(0, 10**30).map(str),
                    st.decimals(0, 10**25, allow_nan=False, places=3).map(str),
                    st.sampled_from(["1e309", "0", "00", "9" * 400, ".5", "1."]))
_DURATIONS = st.lists(st.tuples(_NUMBER, _UNITS), min_size=1, max_size=3).map(
    lambda parts: "".join(n + u for n, u in parts))
_ISO = st.builds(lambda y, mo, d, rest: f"{y:04d}-{mo:02d}-{d:02d}{rest}",
                 st.integers(0, 99999), st.integers(0, 13), st.integers(0, 32),
                 st.sampled_from(["", "T12:00:00Z", " 08:00", "T23:59:59.999999999+14:00", "T00:00:00-12:00",
                                  "T25:00", "Z", "garbage"]))
_TIMES = st.one_of(_ISO, _DURATIONS, st.text(max_size=30), st.sampled_from(["now", " NOW ", "NaT", "nan", "inf"]),
                   st.floats(), st.integers(-10**25, 10**25), st.datetimes(), st.dates(), st.timedeltas(),
                   st.none(), st.booleans())


@settings(max_examples=400, deadline=None)
@given(_TIMES)
def test_generated_times_give_a_utc_timestamp_or_a_config_error(value):
    try:
        got = parse_time(value, now=NOW)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(got, pd.Timestamp) and got is not pd.NaT
        assert str(got.tz) == "UTC" and got.unit == "ns"


@settings(max_examples=400, deadline=None)
@given(st.one_of(_DURATIONS, st.text(max_size=30), st.floats(), st.integers(-10**25, 10**25), st.timedeltas(),
                 st.none()))
def test_generated_durations_give_a_timedelta_or_a_config_error(value):
    try:
        got = parse_duration(value)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(got, pd.Timedelta) and got is not pd.NaT and got.unit == "ns"


_CELL_TIMES = st.one_of(
    st.integers(0, 3).map(lambda m: f"2026-11-29T12:0{m}:00Z"),   # mostly good times: the values get a say
    st.integers(0, 3).map(lambda m: f"2026-11-29T12:0{m}:00Z"),
    st.integers(-10**21, 10**21).map(str), st.floats(allow_nan=True).map(repr),
    st.datetimes(min_value=dt.datetime(1, 1, 1)).map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["2026-11-29T12:00:00Z", "2026-11-29T12:00:00Z", "2026-11-29 12:00", "9999-12-31", "1e20",
                     "", "x", "NaT"]))
_CELL_VALUES = st.one_of(st.floats().map(repr), st.integers(-10**400, 10**400).map(str),
                         st.sampled_from(["", "inf", "-inf", "nan", "1e309", "-1e309", "42.5%", "1", "1", "2"]))
_COLUMNS = st.sampled_from(["CPU %", "p95 ms", "Response Time (s)", "memory_pct", "db_connections", "x"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.builds(lambda cols, rows: (["ts", *cols], rows), st.lists(_COLUMNS, min_size=1, max_size=3, unique=True),
              st.lists(st.tuples(_CELL_TIMES, _CELL_VALUES, _CELL_VALUES, _CELL_VALUES).map(list), max_size=6)),
    st.builds(lambda rows: (["ts", "metric", "value"], rows),
              st.lists(st.tuples(_CELL_TIMES, _COLUMNS, _CELL_VALUES).map(list), max_size=6))))
def test_generated_metric_files_load_or_raise_a_vhdiag_error(table):
    header, rows = table
    lines = [",".join(header)] + [",".join(row[:len(header)]) for row in rows]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.csv"
        path.write_text("\n".join(lines) + "\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricNameWarning)
            try:
                frame = vhdiag.load_metrics(path, config={})
            except VhdiagError as exc:
                assert "\n" not in str(exc)
                return
    assert frame["value"].map(math.isfinite).all()
    assert not frame.duplicated(["metric", "labels", "ts"]).any()
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
