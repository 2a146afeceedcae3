"""Forecasts with their uncertainty: when a series will cross a threshold, as a range of dates.

The model is a robust linear trend, scipy's Theil-Sen estimator (``scipy.stats.theilslopes``):
the slope is the median of the slopes between every pair of points, so a vacuum that shrinks a
table once, a bulk load or a missed snapshot moves it little, where least squares would follow the
outlier. theilslopes also gives a confidence interval for the slope (``confidence`` of the
settings); the prediction band is the two lines through the centre of the data at the low and high
slopes, widened by the residuals' quantiles, so it grows with the horizon as a trend's uncertainty
does.

A weekly cycle (business days busier than weekends) is taken out first when the series covers at
least two weeks and a day-of-week profile (the median residual of each weekday) explains at least
``weekly_min_strength`` of the residuals' spread (mean absolute deviation); it is added back to
the forecast. A series that is too short (fewer than ``min_points`` points or ``min_days`` days),
flat (the trend moves less than ``flat_pct`` of the level over the window) or too noisy (the slope's
interval contains zero) gets no line and no date, and says why in words.

``backtest()`` fits on the first two thirds of the window and scores the last third: mean absolute
error, mean absolute percentage error, and how many of the held-out points fall inside the band.
Nothing here reads a database (vhdiag.analysis imports nothing from vhdiag.target or vhdiag.collect).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)
STEP = pd.Timedelta(hours=1)   # crossing dates are found on an hourly grid over the horizon


@dataclass(frozen=True)
class Settings:
    """How forecasts are made; defaults from ``[capacity]`` of defaults.toml."""

    min_points: int = 7
    min_days: float = 7.0
    confidence: float = 0.90
    flat_pct: float = 1.0
    weekly_min_strength: float = 0.3

    @classmethod
    def from_config(cls, section: dict) -> Settings:
        return cls(int(section["forecast_min_points"]), float(section["forecast_min_days"]),
                   float(section["forecast_confidence_pct"]) / 100, float(section["forecast_flat_pct"]),
                   float(section["forecast_weekly_min_strength"]))


@dataclass
class Crossing:
    """When the forecast crosses ``threshold``: ``point`` on the trend, ``earliest`` (the band's
    upper edge) and ``latest`` (its lower edge); None where it does not within the horizon."""

    threshold: float
    label: str
    status: str                      # "crosses", "already", "not_within_horizon", "no_forecast"
    point: pd.Timestamp | None = None
    earliest: pd.Timestamp | None = None
    latest: pd.Timestamp | None = None

    def words(self, horizon_days: float | None = None) -> str:
        if self.status == "already":
            return f"already over {self.label}"
        if self.status == "no_forecast":
            return "no forecast"
        if self.status == "not_within_horizon":
            return f"not within {horizon_days:g} days" if horizon_days else "not within the horizon"
        return date_range_words(self.earliest or self.point, self.latest, self.point)


@dataclass
class Forecast:
    status: str                      # "ok", "too_short", "flat", "noisy", "declining"
    message: str                     # in words, for the report
    model: str = ""
    n_points: int = 0
    span_days: float = 0.0
    slope_per_day: float | None = None
    slope_low: float | None = None
    slope_high: float | None = None
    weekly: bool = False
    last_ts: pd.Timestamp | None = None
    last_value: float | None = None
    history: pd.DataFrame = field(default_factory=pd.DataFrame)   # ts, value, fitted
    future: pd.DataFrame = field(default_factory=pd.DataFrame)    # ts, point, lower, upper
    crossings: list[Crossing] = field(default_factory=list)
    backtest: dict | None = None

    @property
    def has_line(self) -> bool:
        return self.status in ("ok", "declining")

    def crossing(self, threshold: float, label: str = "") -> Crossing:
        """When this forecast crosses ``threshold`` (upwards) within its horizon."""
        label = label or f"{threshold:g}"
        if self.last_value is not None and self.last_value > threshold:
            return Crossing(threshold, label, "already")
        if self.status != "ok" or self.future.empty:
            return Crossing(threshold, label, "no_forecast")
        f = self.future
        first = {col: _first_over(f, col, threshold) for col in ("point", "upper", "lower")}
        if first["upper"] is None:
            return Crossing(threshold, label, "not_within_horizon")
        return Crossing(threshold, label, "crosses", first["point"], first["upper"], first["lower"])


def _first_over(frame: pd.DataFrame, col: str, threshold: float):
    over = frame.index[frame[col].to_numpy() >= threshold]
    return frame.at[over[0], "ts"] if len(over) else None


def date_range_words(a, b=None, point=None) -> str:
    """"between 12 and 19 March 2027", "on 12 March 2027", "after 12 March 2027" (open end)."""
    if a is None:
        return "no date"
    a = pd.Timestamp(a)
    tail = f" (most likely {pd.Timestamp(point):%-d %B})" if point is not None else ""
    if b is None:
        return f"from {a:%-d %B %Y} on{tail}"
    b = pd.Timestamp(b)
    if a.date() == b.date():
        return f"on {a:%-d %B %Y}"
    if (a.year, a.month) == (b.year, b.month):
        return f"between {a:%-d} and {b:%-d %B %Y}{tail}"
    if a.year == b.year:
        return f"between {a:%-d %B} and {b:%-d %B %Y}{tail}"
    return f"between {a:%-d %B %Y} and {b:%-d %B %Y}{tail}"


def _mad(v: np.ndarray) -> float:
    # mean (not median) absolute deviation: a cycle of two quiet days in seven leaves the median
    # deviation at zero
    return float(np.mean(np.abs(v - np.median(v)))) if len(v) else 0.0


def _weekly_profile(ts: pd.Series, resid: np.ndarray, strength_min: float) -> dict | None:
    """Median residual per weekday when it explains enough of the spread, else None."""
    days = pd.DatetimeIndex(ts).day_of_week
    frame = pd.DataFrame({"d": days, "r": resid})
    counts = frame.groupby("d")["r"].size()
    if len(counts) < 7 or counts.min() < 2:
        return None
    profile = frame.groupby("d")["r"].median()
    profile = profile - profile.median()
    before = _mad(resid)
    after = _mad(resid - profile.reindex(days).to_numpy())
    if before <= 0 or 1 - after / before < strength_min:
        return None
    return profile.to_dict()


def fit(ts, values, horizon_days: float = 90, settings: Settings | None = None, *,
        thresholds: list[tuple[float, str]] | None = None, unit: str = "") -> Forecast:
    """Forecast ``values`` observed at ``ts`` for ``horizon_days`` after the last point."""
    from scipy.stats import theilslopes
    s = settings or Settings()
    frame = pd.DataFrame({"ts": pd.to_datetime(pd.Series(list(ts)), utc=True),
                          "value": pd.to_numeric(pd.Series(list(values)), errors="coerce")})
    frame = frame.replace([np.inf, -np.inf], np.nan).dropna().sort_values("ts").drop_duplicates("ts", keep="last")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    span = (frame["ts"].iloc[-1] - frame["ts"].iloc[0]) / DAY if n else 0.0
    out = Forecast("too_short", "", n_points=n, span_days=float(span))
    if n:
        out.last_ts, out.last_value = frame["ts"].iloc[-1], float(frame["value"].iloc[-1])
    if n < s.min_points or span < s.min_days:
        out.message = (f"History too short for a forecast: {n} points over {span:.1f} days; at least "
                       f"{s.min_points} points over {s.min_days:g} days are needed (settings [capacity]).")
        out.crossings = [out.crossing(t, lab) for t, lab in (thresholds or [])]
        return out
    x = ((frame["ts"] - frame["ts"].iloc[0]) / DAY).to_numpy(dtype=float)
    y = frame["value"].to_numpy(dtype=float)
    slope, intercept, lo, hi = theilslopes(y, x, alpha=s.confidence)
    profile = None
    if span >= 14:
        profile = _weekly_profile(frame["ts"], y - (intercept + slope * x), s.weekly_min_strength)
        if profile is not None:
            season = pd.Series(pd.DatetimeIndex(frame["ts"]).day_of_week).map(profile).to_numpy()
            slope, intercept, lo, hi = theilslopes(y - season, x, alpha=s.confidence)
    season_hist = (pd.Series(pd.DatetimeIndex(frame["ts"]).day_of_week).map(profile).to_numpy()
                   if profile is not None else np.zeros(n))
    fitted = intercept + slope * x + season_hist
    resid = y - fitted
    level = float(np.median(np.abs(y))) or 1.0
    out.model = "Theil-Sen robust trend" + (" with a weekly cycle (day-of-week medians)" if profile else "")
    out.weekly = profile is not None
    out.slope_per_day, out.slope_low, out.slope_high = float(slope), float(lo), float(hi)
    out.history = pd.DataFrame({"ts": frame["ts"], "value": y, "fitted": fitted})
    per_day = f"{_fmt(slope, unit)} per day (between {_fmt(lo, unit)} and {_fmt(hi, unit)})"
    if abs(slope) * max(span, 1.0) <= s.flat_pct / 100 * level and lo <= 0 <= hi:
        out.status = "flat"
        out.message = (f"Flat: the trend moves {_fmt(slope, unit)} per day, less than {s.flat_pct:g} % of the "
                       f"level over the window; no date to forecast.")
    elif lo <= 0 <= hi:
        out.status = "noisy"
        out.message = (f"Too noisy for a date: the trend is {per_day} at {s.confidence:.0%} confidence, "
                       "which does not exclude no growth at all.")
    else:
        out.status = "ok" if slope > 0 else "declining"
        out.message = f"{out.model}: {per_day}, at {s.confidence:.0%} confidence, from {n} points over {span:.1f} days."
        q_lo, q_hi = np.quantile(resid, [(1 - s.confidence) / 2, (1 + s.confidence) / 2])
        q_lo, q_hi = min(float(q_lo), 0.0), max(float(q_hi), 0.0)
        x_c = float(np.median(x))
        y_c = intercept + slope * x_c
        steps = int(math.ceil(horizon_days * DAY / STEP))
        fts = pd.DatetimeIndex([frame["ts"].iloc[-1] + STEP * i for i in range(1, steps + 1)])
        fx = ((fts - frame["ts"].iloc[0]) / DAY).to_numpy(dtype=float)
        fseason = pd.Series(fts.day_of_week).map(profile).to_numpy() if profile is not None else 0.0
        point = intercept + slope * fx + fseason
        ends = np.stack([y_c + lo * (fx - x_c), y_c + hi * (fx - x_c)]) + fseason
        lower = np.minimum(ends.min(axis=0) + q_lo, point)
        upper = np.maximum(ends.max(axis=0) + q_hi, point)
        out.future = pd.DataFrame({"ts": fts, "point": point, "lower": lower, "upper": upper})
    out.crossings = [out.crossing(t, lab) for t, lab in (thresholds or [])]
    return out


def backtest(ts, values, settings: Settings | None = None) -> dict | None:
    """Fit on the first two thirds of the window (by time) and score the last third: ``mae``,
    ``mape_pct``, ``coverage_pct`` (held-out points inside the band), ``n_train``, ``n_test``; None
    when the first two thirds are too short for a forecast."""
    frame = pd.DataFrame({"ts": pd.to_datetime(pd.Series(list(ts)), utc=True), "value": list(values)}).dropna()
    frame = frame.sort_values("ts")
    if len(frame) < 3:
        return None
    cut = frame["ts"].iloc[0] + (frame["ts"].iloc[-1] - frame["ts"].iloc[0]) * 2 / 3
    train, test = frame[frame["ts"] <= cut], frame[frame["ts"] > cut]
    if test.empty:
        return None
    horizon = (test["ts"].iloc[-1] - train["ts"].iloc[-1]) / DAY + 1 / 24
    f = fit(train["ts"], train["value"], horizon, settings)
    if not f.has_line or f.future.empty:
        return None
    fut = f.future.set_index("ts")
    idx = fut.index.get_indexer(pd.DatetimeIndex(test["ts"]), method="nearest")
    pred, low, up = (fut[c].to_numpy()[idx] for c in ("point", "lower", "upper"))
    actual = test["value"].to_numpy(dtype=float)
    err = np.abs(pred - actual)
    nonzero = np.abs(actual) > 0
    return {"n_train": len(train), "n_test": len(test), "mae": float(err.mean()),
            "mape_pct": float(100 * (err[nonzero] / np.abs(actual[nonzero])).mean()) if nonzero.any() else None,
            "coverage_pct": float(100 * ((actual >= low) & (actual <= up)).mean())}


def daily_peaks(ts, values) -> pd.DataFrame:
    """The highest value of each UTC day, at the time it happened: ts, value."""
    frame = pd.DataFrame({"ts": pd.to_datetime(pd.Series(list(ts)), utc=True),
                          "value": pd.to_numeric(pd.Series(list(values)), errors="coerce")}).dropna()
    if frame.empty:
        return frame
    idx = frame.groupby(frame["ts"].dt.floor("D"))["value"].idxmax()
    return frame.loc[idx].reset_index(drop=True)


def _fmt(v: float, unit: str) -> str:
    if unit == "bytes":
        from ..display import human_bytes
        return ("-" if v < 0 else "") + human_bytes(abs(v))
    return f"{v:,.2f}{(' ' + unit) if unit else ''}"
