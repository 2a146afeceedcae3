"""The capacity report's computations for space and growth, and what its siblings share, from
frames (no database here): ``capacity_connections`` (connection headroom) and
``capacity_maintenance`` (dead rows, bloat, indexes, wraparound, sequences) hold the rest.

Kinds (default severity): ``table_growth`` (info), ``growth_acceleration`` (warning),
``disk_forecast`` (warning at the quota's warning share, critical at its critical share or the
quota), ``connections_forecast`` and ``cpu_forecast``/``memory_forecast`` (warning/critical by the
runbook's level crossed), all forecast findings made by ``forecast_finding``. Every suggestion is
SQL to run by hand; vhdiag executes none of it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .findings import finding
from .forecast import Forecast


def as_float(v, default=0.0) -> float:
    """``v`` as a finite float; ``default`` for null, text or infinity."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def at_minute(ts) -> str:
    return f"{pd.Timestamp(ts):%Y-%m-%d %H:%M} UTC"


# -- 1. space now ---------------------------------------------------------------------------
def top_tables(tables: pd.DataFrame, n: int) -> pd.DataFrame:
    cols = ["schema", "table", "total_bytes", "table_bytes", "index_bytes", "toast_bytes", "n_live_tup",
            "n_dead_tup"]
    return tables.sort_values("total_bytes", ascending=False, na_position="last")[cols].head(n).reset_index(drop=True)


def top_indexes(indexes: pd.DataFrame, n: int) -> pd.DataFrame:
    cols = ["schema", "table", "index", "bytes", "scans"]
    return indexes.sort_values("bytes", ascending=False, na_position="last")[cols].head(n).reset_index(drop=True)


# -- 2. growth ------------------------------------------------------------------------------
def growth(now: pd.DataFrame, before: pd.DataFrame | None, accel_ratio: float) -> pd.DataFrame:
    """Per table: bytes per day in the window and in the previous window of the same length, rows
    inserted and deleted, and ``accelerated`` (at least ``accel_ratio`` times the previous rate)."""
    cols = ["schema", "table", "growth_bytes", "growth_bytes_per_day", "before_bytes_per_day", "n_tup_ins",
            "n_tup_del", "end_total_bytes", "days", "accelerated"]
    if now is None or now.empty:
        return pd.DataFrame(columns=cols)
    out = now.copy()
    prev = (before.set_index(["schema", "table"])["growth_bytes_per_day"]
            if before is not None and len(before) else pd.Series(dtype=float))
    out["before_bytes_per_day"] = [prev.get((s, t), np.nan) for s, t in zip(out["schema"], out["table"])]
    rate = out["growth_bytes_per_day"].astype(float)
    base = out["before_bytes_per_day"].astype(float)
    out["accelerated"] = (base > 0) & (rate >= accel_ratio * base)
    out = out.sort_values("growth_bytes_per_day", ascending=False, na_position="last", kind="stable")
    return out[cols].reset_index(drop=True)


# -- findings -------------------------------------------------------------------------------
def forecast_finding(kind: str, subject: str, what: str, f: Forecast, levels: list[tuple[str, str]],
                     horizon_days: float, suggestion: str, unit_words=lambda v: f"{v:g}") -> dict | None:
    """One finding for the most severe level the forecast crosses within the horizon (levels:
    (severity, label) in the order of ``f.crossings``); None when it crosses none."""
    hit = [(sev, c) for (sev, _), c in zip(levels, f.crossings) if c.status in ("crosses", "already")]
    if not hit:
        return None
    order = {"critical": 0, "warning": 1, "info": 2}
    sev, first = min(hit, key=lambda sc: order[sc[0]])
    parts = [f"{c.label} ({unit_words(c.threshold)}): {c.words(horizon_days)}" for c in f.crossings]
    bt = f.backtest
    score = (f" Backtest (fit on the first two thirds, scored on the last third): mean absolute error "
             f"{unit_words(bt['mae'])}, {bt['mape_pct']:.1f} %, {bt['coverage_pct']:.0f} % of points inside the band."
             if bt and bt.get("mape_pct") is not None else "")
    return finding(kind, sev, subject, f"{what}: {first.label} {first.words(horizon_days)}",
                   f"{what} now {unit_words(f.last_value)}. {f.message} " + "; ".join(parts) + "." + score,
                   suggestion, status=f.status, slope_per_day=f.slope_per_day, slope_low=f.slope_low,
                   slope_high=f.slope_high,
                   **{f"{c.label.replace(' ', '_')}_point": c.point.isoformat() if c.point is not None else None
                      for c in f.crossings},
                   **{f"{c.label.replace(' ', '_')}_earliest": c.earliest.isoformat() if c.earliest is not None
                      else None for c in f.crossings},
                   **{f"{c.label.replace(' ', '_')}_latest": c.latest.isoformat() if c.latest is not None else None
                      for c in f.crossings})
