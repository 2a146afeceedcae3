"""Turning frames into text for people: pretty strings only at display time."""
from __future__ import annotations

import pandas as pd

_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"]


def human_bytes(n) -> str:
    """1536 -> '1.5 kB', as pg_size_pretty does (powers of 1024, PostgreSQL's unit names)."""
    if n is None or pd.isna(n):
        return ""
    n = float(n)
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # unreachable


def for_terminal(df: pd.DataFrame, max_query_chars: int = 70) -> pd.DataFrame:
    """A copy for printing: sizes pretty, milliseconds rounded, long query text cut."""
    out = df.copy()
    for col in out.columns:
        series = out[col]
        if col == "bytes" or col.endswith("_bytes"):
            out[col] = series.map(human_bytes)
        elif col.endswith(("_ms", "_s", "_pct")) and pd.api.types.is_numeric_dtype(series):
            out[col] = series.astype("Float64").round(2)
        elif col in ("query", "definition") and len(out):
            out[col] = series.astype("string").str.replace(r"\s+", " ", regex=True).map(
                lambda q: q if pd.isna(q) or len(q) <= max_query_chars else q[: max_query_chars - 1] + "…")
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            out[col] = series.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    return out


def render(df: pd.DataFrame, fmt: str, columns: list[str] | None = None) -> str:
    """table (for people), csv or json (records, ISO 8601 UTC timestamps) (for scripts)."""
    if columns:
        df = df[[c for c in columns if c in df.columns]]
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", date_format="iso", date_unit="s", indent=1) + "\n"
    if df.empty:
        return "(no rows)\n"
    shown = for_terminal(df).astype(object)
    return shown.where(shown.notna(), "").to_string(index=False) + "\n"
