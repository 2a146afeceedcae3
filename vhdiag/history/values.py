"""Values between pandas and the history store's driver: plain Python, times in UTC.

Column by column where it matters: a snapshot of 10,000 tables and 20,000 indexes is about
250,000 values, and converting each on its own took half a second.
"""
from __future__ import annotations

import pandas as pd

from .reads import utc_series


def utc_frame(frame: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for c in cols:
        if c in frame:
            frame[c] = utc_series(frame[c])
    return frame


def py_value(value):
    """pandas scalars to plain Python for the DB driver (NA -> None)."""
    if value is None or (not isinstance(value, (list, dict, str)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        # SQLite keeps no zone: every stored time is UTC, so convert before the zone is dropped.
        return (value.tz_convert("UTC") if value.tzinfo else value).to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """The rows of ``frame[columns]`` as dicts of plain Python values for the driver.

    Column by column, not value by value: a snapshot of 10,000 tables and 20,000 indexes is
    about 250,000 values, and converting each through ``_py`` took half a second."""
    values = [plain_column(frame[c]) for c in columns]
    return [dict(zip(columns, row)) for row in zip(*values)]


def plain_column(col: pd.Series) -> list:
    """One column as plain Python values (NA -> None, times as UTC datetimes), as ``_py`` would."""
    if col.dtype == object:
        return [py_value(v) for v in col]
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        if col.dt.tz is not None:
            col = col.dt.tz_convert("UTC")
        return [None if v is None else v.to_pydatetime()
                for v in col.astype(object).where(col.notna(), None)]
    # Masked (Int64, Float64, boolean, string) and numpy columns: Python ints, floats, bools, str.
    return col.to_numpy(dtype=object, na_value=None).tolist()
