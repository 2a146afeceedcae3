"""breaches() and slo_report() on constructed frames, with exact figures; thresholds overridden
from a vhdiag.toml. (The same intervals on a series served by a real Prometheus are in
test_metrics_prometheus.py.)"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from vhdiag.errors import ConfigError
from vhdiag.metrics import BREACH_COLUMNS, SLO_COLUMNS, breaches, slo_report

T0 = pd.Timestamp("2026-11-29T12:00:00Z").as_unit("ns")


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def series(metric: str, values, step_s: float = 15, labels: str = "{}", times=None) -> pd.DataFrame:
    times = times if times is not None else [i * step_s for i in range(len(values))]
    return pd.DataFrame({"ts": [at(t) for t in times], "metric": metric, "value": [float(v) for v in values],
                         "labels": labels})


def intervals(frame: pd.DataFrame) -> list[tuple]:
    return [(r.metric, r.level, r.start, r.end, r.duration_s, r.peak, r.threshold, r.labels, r.open, r.ended_by)
            for r in frame.itertuples()]


def test_levels_are_strictly_above_and_critical_lies_inside_warning():
    got = breaches(series("cpu_pct", [50, 71, 86, 85, 70.5, 70, 60]))
    assert {c: str(t) for c, t in got.dtypes.items()} == BREACH_COLUMNS
    assert intervals(got) == [
        ("cpu_pct", "warning", at(15), at(75), 60.0, 86.0, 70.0, "{}", False, "recovery"),   # 70 is not above 70
        ("cpu_pct", "critical", at(30), at(45), 15.0, 86.0, 85.0, "{}", False, "recovery"),  # 85 is not above 85
    ]


def test_every_runbook_metric_has_its_thresholds():
    frame = pd.concat([series("memory_pct", [75, 75.01, 90.01]), series("error_rate_pct", [1, 5.5, 0]),
                       series("response_time_p95_ms", [999, 1000.5, 5001, 20]),
                       series("db_connections", [20, 21, 31, 30]), series("disk_pct", [99, 99])])
    got = breaches(frame)
    assert [(r.metric, r.level, r.start, r.end, r.peak, r.threshold, r.ended_by) for r in got.itertuples()] == [
        ("db_connections", "warning", at(15), at(45), 31.0, 20.0, "data end"),   # 30 is still above 20
        ("error_rate_pct", "warning", at(15), at(30), 5.5, 1.0, "recovery"),
        ("error_rate_pct", "critical", at(15), at(30), 5.5, 5.0, "recovery"),
        ("memory_pct", "warning", at(15), at(30), 90.01, 75.0, "data end"),
        ("response_time_p95_ms", "warning", at(15), at(45), 5001.0, 1000.0, "recovery"),
        ("db_connections", "critical", at(30), at(45), 31.0, 30.0, "recovery"),
        ("memory_pct", "critical", at(30), at(30), 90.01, 90.0, "data end"),
        ("response_time_p95_ms", "critical", at(30), at(45), 5001.0, 5000.0, "recovery"),
    ]   # disk_pct has no threshold: ignored


def test_a_gap_longer_than_twice_the_median_step_ends_an_interval():
    times = [0, 15, 30, 45, 345, 360, 375, 390, 420]   # 300 s without data after 45; 30 s is not a gap
    got = breaches(series("cpu_pct", [50, 80, 80, 80, 80, 80, 60, 75, 75], times=times))
    assert [(r.start, r.end, r.duration_s, r.open, r.ended_by) for r in got.itertuples()] == [
        (at(15), at(45), 30.0, False, "gap"),
        (at(345), at(375), 30.0, False, "recovery"),
        (at(390), at(420), 30.0, True, "data end"),
    ]


def test_min_duration_drops_short_intervals_and_series_are_kept_apart():
    a = series("cpu_pct", [80, 80, 80, 80, 80, 10], labels='{"instance":"a"}')   # 75 s
    b = series("cpu_pct", [10, 80, 10], labels='{"instance":"b"}')               # 15 s
    got = breaches(pd.concat([b, a]), min_duration="1m")
    assert intervals(got) == [
        ("cpu_pct", "warning", at(0), at(75), 75.0, 80.0, 70.0, '{"instance":"a"}', False, "recovery")]
    assert len(breaches(pd.concat([b, a]))) == 2


def test_nan_values_are_no_samples_and_an_empty_frame_gives_empty_typed_result():
    got = breaches(series("cpu_pct", [10, math.nan, 80, 10]))
    assert [(r.start, r.end) for r in got.itertuples()] == [(at(30), at(45))]
    empty = breaches(series("cpu_pct", []))
    assert empty.empty and {c: str(t) for c, t in empty.dtypes.items()} == BREACH_COLUMNS


def test_thresholds_come_from_the_users_vhdiag_toml(tmp_path):
    (tmp_path / "vhdiag.toml").write_text(
        "[thresholds.cpu_pct]\nwarning = 60\ncritical = 65.0\n\n[thresholds.disk_pct]\nwarning = 80.0\ncritical = 90.0\n")
    frame = pd.concat([series("cpu_pct", [50, 62, 66, 50]), series("disk_pct", [85, 95])])
    got = breaches(frame)   # config=None: ./vhdiag.toml is found
    assert [(r.metric, r.level, r.start, r.end, r.threshold) for r in got.itertuples()] == [
        ("disk_pct", "warning", at(0), at(15), 80.0), ("cpu_pct", "warning", at(15), at(45), 60.0),
        ("disk_pct", "critical", at(15), at(15), 90.0), ("cpu_pct", "critical", at(30), at(45), 65.0)]
    given = breaches(frame, config={"thresholds": {"cpu_pct": {"warning": 64.0}}})  # no disk_pct, critical 85
    assert [(r.metric, r.level, r.start, r.end) for r in given.itertuples()] == [("cpu_pct", "warning", at(30), at(45))]
    with pytest.raises(ConfigError) as err:
        breaches(frame, config={"thresholds": {"cpu_pct": {"warn": 64.0}}})
    assert str(err.value) == ("config argument: unknown key thresholds.cpu_pct.warn: did you mean warning? "
                              "remove or rename it (known keys under [thresholds.cpu_pct]: warning, critical)")


def slo_frame() -> pd.DataFrame:
    return pd.concat([
        series("cpu_pct", [10] * 999 + [50]),                  # 50 is not < 50: 1 of 1000 misses
        series("memory_pct", [59.9] * 1996 + [61] * 4),         # 4 of 2000 miss
        series("db_connections", [19] * 10, labels='{"db":"a"}'),
        series("db_connections", [19] * 9 + [25], labels='{"db":"b"}'),
        series("up", [1] * 9990 + [0] * 10),                    # 10 of 10,000 down
    ])


def test_slo_report_compliance_and_error_budget():
    got = slo_report(slo_frame())
    assert {c: str(t) for c, t in got.dtypes.items()} == SLO_COLUMNS
    rows = [(r.metric, r.labels, r.target, r.comparison, r.samples, r.violations, r.compliance_pct, r.met,
             r.error_budget_pct_used) for r in got.itertuples()]
    assert rows[:5] == [
        ("up", "{}", 1.0, ">=", 10000, 10, 99.9, True, 100.0),      # 0.1% down: the whole budget
        ("cpu_pct", "{}", 50.0, "<", 1000, 1, 99.9, True, 100.0),
        ("memory_pct", "{}", 60.0, "<", 2000, 4, 99.8, False, 200.0),
    ] + [
        ("error_rate_pct", "{}", 0.1, "<", 0, 0, rows[3][6], rows[3][7], rows[3][8]),
        ("response_time_p95_ms", "{}", 500.0, "<", 0, 0, rows[4][6], rows[4][7], rows[4][8]),
    ]
    for no_data in rows[3:5]:
        assert math.isnan(no_data[6]) and no_data[7] is pd.NA and math.isnan(no_data[8])
    assert rows[5:] == [
        ("db_connections", '{"db":"a"}', 20.0, "<", 10, 0, 100.0, True, 0.0),
        ("db_connections", '{"db":"b"}', 20.0, "<", 10, 1, 90.0, False, 10000.0),
    ]
    assert set(got["objective_pct"]) == {99.9}
    assert set(got["period_start"]) == {at(0)} and set(got["period_end"]) == {at(9999 * 15)}


def test_slo_report_over_a_period():
    frame = slo_frame()
    last_hour = slo_report(frame, period="1h")     # (newest - 1h, newest]: 240 samples of up
    up = last_hour[last_hour["metric"] == "up"].iloc[0]
    assert (up.samples, up.violations, up.compliance_pct, up.error_budget_pct_used) == (240, 10, 95.833333, 4166.666667)
    assert (up.period_start, up.period_end) == (at(9999 * 15 - 3600), at(9999 * 15))
    window = slo_report(frame, period=("2026-11-29T12:00:00Z", "2026-11-29T12:04:00Z"))  # both ends included
    cpu = window[window["metric"] == "cpu_pct"].iloc[0]
    assert (cpu.samples, cpu.violations, cpu.compliance_pct, cpu.met) == (17, 0, 100.0, True)
    custom = slo_report(frame, config={"slo": {"cpu_pct": {"objective_pct": 99.0}}})
    cpu = custom[custom["metric"] == "cpu_pct"].iloc[0]
    assert (cpu.compliance_pct, cpu.met, cpu.error_budget_pct_used) == (99.9, True, 10.0)


def test_bad_inputs_are_one_line():
    with pytest.raises(ConfigError) as err:
        breaches(pd.DataFrame({"when": [T0]}))
    assert str(err.value) == ("breaches() needs a metric frame with columns ts, metric, value[, labels]: "
                              "get one from vhdiag.metrics.load_metrics()")
    with pytest.raises(ConfigError) as err:
        breaches(series("cpu_pct", [1]), min_duration="5 minutes")
    assert str(err.value) == "bad duration '5 minutes': write a number with a unit: 30s, 90m, 24h, 7d, 2w or 1h30m"
    with pytest.raises(ConfigError) as err:
        slo_report(series("cpu_pct", [1]), period=("2026-11-29", "2026-11-28"))
    assert str(err.value) == ("period starts (2026-11-29T00:00:00+00:00) after it ends "
                              "(2026-11-28T00:00:00+00:00): swap them")
