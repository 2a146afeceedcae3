"""Forecasts on synthetic series with known answers (no database): linear, noisy linear, step
change, flat, weekly cycle, too short; and properties (hypothesis): the band always contains the
point forecast, and a flat or too-short series never gives a date."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings as hsettings, strategies as st

from vhdiag.analysis import forecast as fc

T0 = pd.Timestamp("2026-10-01", tz="UTC")
S = fc.Settings(min_points=7, min_days=7, confidence=0.9, flat_pct=1.0, weekly_min_strength=0.3)


def days(n, every_h=24):
    return [T0 + pd.Timedelta(hours=every_h * i) for i in range(n)]


def test_linear_series_crosses_on_the_true_date():
    ts = days(30)
    values = [1_000 + 10 * i for i in range(30)]           # 10 per day, 1290 on day 29
    f = fc.fit(ts, values, 90, S, thresholds=[(1_500, "quota")])
    assert f.status == "ok" and f.model == "Theil-Sen robust trend"
    assert abs(f.slope_per_day - 10) < 1e-9
    c = f.crossings[0]
    true = T0 + pd.Timedelta(days=50)                        # 1000 + 10 * 50 = 1500
    assert c.status == "crosses" and abs((c.point - true) / pd.Timedelta(hours=1)) <= 1
    assert c.earliest <= c.point <= c.latest


def test_noisy_linear_series_gives_a_range_around_the_true_date():
    rng = np.random.default_rng(7)
    ts = days(60)
    values = [1_000 + 10 * i + rng.normal(0, 20) for i in range(60)]
    f = fc.fit(ts, values, 90, S, thresholds=[(1_900, "quota")])
    c = f.crossings[0]
    true = T0 + pd.Timedelta(days=90)
    assert f.status == "ok" and 9 < f.slope_per_day < 11
    assert c.earliest <= true <= c.latest
    assert (c.latest - c.earliest) < pd.Timedelta(days=20)
    assert "between" in c.words()


def test_a_step_change_moves_the_robust_trend_little():
    ts = days(30)
    values = [1_000 + 10 * i - (200 if i >= 25 else 0) for i in range(30)]  # one VACUUM FULL on day 25
    f = fc.fit(ts, values, 90, S)
    assert f.status == "ok"
    assert f.slope_per_day == 10          # the true growth between the steps
    slope_ls = np.polyfit(range(30), values, 1)[0]
    assert slope_ls < 5                   # least squares follows the step: under half of it


def test_flat_series_gives_no_line_and_no_date():
    f = fc.fit(days(30), [5_000.0] * 30, 90, S, thresholds=[(6_000, "quota")])
    assert f.status == "flat" and f.future.empty and not f.has_line
    assert f.crossings[0].status == "no_forecast" and f.crossings[0].point is None
    assert f.message.startswith("Flat")


def test_pure_noise_is_too_noisy_for_a_date():
    # At 90 % confidence about one noise series in ten shows a trend by chance: count over 100.
    rng = np.random.default_rng(3)
    fits = [fc.fit(days(30), 1_000 + rng.normal(0, 100, 30), 90, S, thresholds=[(2_000, "quota")])
            for _ in range(100)]
    noisy = [f for f in fits if f.status in ("noisy", "flat")]
    assert len(noisy) >= 80
    assert all(f.future.empty and f.crossings[0].status == "no_forecast" for f in noisy)
    assert any(f.message.startswith("Too noisy for a date") for f in noisy)


def test_weekly_cycle_is_found_and_kept_in_the_forecast():
    ts = days(42)
    cycle = [0, 0, 0, 0, 0, -60, -60]                     # weekends quieter
    values = [500 + 2 * i + cycle[t.day_of_week] for i, t in enumerate(ts)]
    f = fc.fit(ts, values, 28, S)
    assert f.weekly and "weekly" in f.model
    assert abs(f.slope_per_day - 2) < 0.5
    sat = f.future[f.future["ts"].dt.day_of_week == 5]["point"].iloc[0]
    fri = f.future[f.future["ts"].dt.day_of_week == 4]["point"].iloc[0]
    assert sat < fri - 40


def test_no_weekly_cycle_on_a_plain_trend():
    f = fc.fit(days(42), [500 + 2 * i for i in range(42)], 28, S)
    assert not f.weekly


def test_too_short_history_says_so_and_gives_no_date():
    f = fc.fit(days(5), [1, 2, 3, 4, 5], 90, S, thresholds=[(10, "x")])
    assert f.status == "too_short" and f.future.empty
    assert "5 points over 4.0 days" in f.message and "at least 7 points over 7 days" in f.message
    assert f.crossings[0].status == "no_forecast"
    # many points, but within one day: too short in days
    f = fc.fit(days(48, every_h=0.5), range(48), 90, S)
    assert f.status == "too_short"


def test_already_over_the_threshold():
    f = fc.fit(days(30), [100 + i for i in range(30)], 90, S, thresholds=[(50, "warning")])
    assert f.crossings[0].status == "already" and f.crossings[0].words() == "already over warning"


def test_backtest_scores_the_last_third():
    ts = days(30)
    b = fc.backtest(ts, [1_000 + 10 * i for i in range(30)], S)
    assert b["n_train"] == 20 and b["n_test"] == 10
    assert b["mae"] < 1e-6 and b["coverage_pct"] == 100
    assert fc.backtest(days(6), range(6), S) is None      # two thirds of 6 days: too short


def test_date_range_words():
    a, b = pd.Timestamp("2027-03-12", tz="UTC"), pd.Timestamp("2027-03-19", tz="UTC")
    assert fc.date_range_words(a, b) == "between 12 and 19 March 2027"
    assert fc.date_range_words(a, pd.Timestamp("2027-04-02", tz="UTC")) == "between 12 March and 2 April 2027"
    assert fc.date_range_words(a, None) == "from 12 March 2027 on"


def test_daily_peaks_keep_the_time_of_the_peak():
    ts = [T0 + pd.Timedelta(hours=h) for h in (1, 5, 9, 26, 30)]
    peaks = fc.daily_peaks(ts, [3, 9, 4, 7, 2])
    assert peaks["value"].tolist() == [9, 7]
    assert peaks["ts"].tolist() == [T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(hours=26)]


series = st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=40)


@hsettings(max_examples=60, deadline=None)
@given(values=series, every_h=st.sampled_from([6, 24, 48]))
def test_band_always_contains_the_point_forecast(values, every_h):
    f = fc.fit(days(len(values), every_h), values, 30, S)
    if not f.future.empty:
        assert (f.future["lower"] <= f.future["point"]).all()
        assert (f.future["point"] <= f.future["upper"]).all()
    for c in [f.crossing(max(values) + 1)]:
        if c.status == "crosses":
            assert c.earliest <= c.point and (c.latest is None or c.point <= c.latest)


@hsettings(max_examples=40, deadline=None)
@given(level=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), n=st.integers(8, 40),
       short=st.integers(1, 6))
def test_flat_or_too_short_series_give_no_date(level, n, short):
    flat = fc.fit(days(n), [level] * n, 90, S, thresholds=[(abs(level) + 1, "t")])
    assert flat.status == "flat" and flat.crossings[0].point is None and flat.future.empty
    few = fc.fit(days(short), [level + i for i in range(short)], 90, S, thresholds=[(abs(level) + 1e6, "t")])
    assert few.status == "too_short" and few.crossings[0].point is None and few.future.empty


def test_unused_indexes_when_none_is_unused_keep_their_columns():
    """An empty selection must still be a frame with the report's columns (a list mask of length
    0 once selected no columns at all, and the capacity notebook failed on a fresh database)."""
    import pandas as pd
    from vhdiag.analysis import capacity_maintenance as CM
    indexes = pd.DataFrame({"schema": ["public"], "table": ["t"], "index": ["t_pkey"], "bytes": [8192],
                            "scans": [5], "unused": [False]})
    tables = pd.DataFrame({"schema": ["public"], "table": ["t"], "n_tup_ins": [1], "n_tup_del": [0],
                           "n_tup_upd": [0], "n_tup_hot_upd": [0]})
    out = CM.unused_indexes(indexes, tables, set())
    assert list(out.columns) == ["schema", "table", "index", "bytes", "scans", "writes", "suggestion"]
    assert out.empty


def test_quota_threshold_labels_on_the_plot_do_not_overlap():
    """80, 90 and 100 % of a quota that the 90-day forecast goes far past: three lines a few pixels
    apart, three labels that must not sit on each other (they did: all at the left edge)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from vhdiag.reports import figures
    ts = days(30)
    values = [1e9 + 1.3e8 * i for i in range(30)]       # 1 GB to 4.8 GB, 17 GB in 90 days
    quota = 6e9
    th = [(0.8 * quota, "80 % of quota"), (0.9 * quota, "90 % of quota"), (quota, "the quota")]
    f = fc.fit(ts, values, 90, S, thresholds=th, unit="bytes")
    fig = figures.forecast(f, "database fleet", "bytes", th)
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Text
    # the words themselves (an annotation's extent also holds its tick to the line)
    boxes = {t.get_text().strip(): Text.get_window_extent(t, renderer) for t in fig.axes[0].texts}
    assert set(boxes) == {"80 % of quota", "90 % of quota", "the quota"}
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not boxes[a].overlaps(boxes[b]), (a, b, boxes[a], boxes[b])
    # each label stays inside the figure
    width, height = fig.canvas.get_width_height()
    assert all(0 <= b.x0 and b.x1 <= width and 0 <= b.y0 and b.y1 <= height for b in boxes.values())
