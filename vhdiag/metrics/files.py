"""Metric history from CSV and Parquet files: what a user exports from Railway, Grafana or
any dashboard.

Two layouts, told apart by their columns (names are matched without regard to case):

**Long**: one row per sample: a time column, ``metric`` (or ``name``, ``series``), ``value``
and optionally ``labels`` (a JSON object such as ``{"instance": "db1"}``, or Prometheus style
``instance="db1",job="node"``). Any other column is a label too (``instance`` -> label
``instance``)::

    ts,metric,value,labels
    2026-11-29T12:00:00Z,cpu_pct,42.5,"{""instance"": ""db1""}"

**Wide**: one row per time, one column per metric; an optional ``labels`` column applies
to every metric of its row::

    timestamp,CPU %,Memory %,DB Connections
    2026-11-29 12:00:00,42.5,61.0,17

The time column is the first of ``ts``, ``timestamp``, ``time``, ``datetime``, ``date``,
``_time``. It holds ISO 8601 times (``2026-11-29T12:00:00Z``, ``2026-11-29 12:00:00+01:00``;
**a time without a zone is UTC**) or epoch numbers: seconds, or milliseconds, microseconds or
nanoseconds when the numbers are too large to be seconds (above 1e11, 1e14, 1e17). Metric names
and wide column names are mapped to the runbook's metric ids as ``vhdiag.metrics.names`` says
(``CPU %`` -> ``cpu_pct``), after the ``[metrics.names]`` entries of vhdiag.toml; a name that
maps to no metric with a threshold or SLO loads with a one-line ``MetricNameWarning`` naming
the fix (see ``vhdiag.metrics.names``).

Values must be finite numbers. An empty cell, or what pandas reads as missing (``NaN``,
``nan``, ``NA``, ``null``...), is no sample: wide exports leave cells empty wherever a series
has no point. ``inf``, ``-inf`` and numbers beyond a double (``1e309``) are errors naming the
line: they are broken exports, and an infinite value would sit above every threshold.
Times must lie between 1677-09-21 and 2262-04-11 (nanosecond timestamps).

A series (metric and labels) has one value per time. Two rows that give it the same time and
the same value are one sample (overlapping exports concatenated); two rows that give it
different values are an error naming both lines, whatever ``since``/``until`` keep: vhdiag
does not choose between them.

CSV files may be separated by commas, semicolons or tabs, and gzip-compressed (``.csv.gz``).
A file whose name ends in ``.parquet`` or ``.pq`` or that starts with Parquet's magic bytes
is read as Parquet (needs pyarrow). Problems are one-line ``ConfigError``s naming the file,
the place (CSV line or Parquet row) and the expected format.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

import warnings

from ..errors import ConfigError, first_line
from ..timeparse import EARLIEST, LATEST, out_of_range
from .frame import NO_LABELS, finish, labels_json, parse_labels
from .names import RUNBOOK_METRICS, MetricNameWarning, normalize, unplaced

TIME_COLUMNS = ("ts", "timestamp", "time", "datetime", "date", "_time")
METRIC_COLUMNS = ("metric", "name", "series")
EXPECTED = ("expected a time column (ts, timestamp or time) and either metric,value[,labels] columns "
            "(long format) or one column per metric (wide format)")


def load_file(path, since=None, until=None, step=None, metrics=None, names=None, known=None) -> pd.DataFrame:
    """The metric frame of one CSV or Parquet file, cut to [since, until] (UTC Timestamps),
    averaged into ``step`` buckets when a step is given, kept to ``metrics`` ids when given.
    ``names``: ``[metrics.names]``; ``known``: the ids with a threshold or SLO (for the warning)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: no such file: give the path of a CSV or Parquet export")
    raw, place = _read(path)
    return from_frame(raw, since, until, step, metrics, source=str(path), place=place, names=names, known=known)


def from_frame(raw: pd.DataFrame, since=None, until=None, step=None, metrics=None,
               source: str = "frame", place=None, names=None, known=None) -> pd.DataFrame:
    """The metric frame of a long- or wide-format DataFrame (as a file would hold it)."""
    place = place or (lambda i: f"row {i + 1}")
    if not isinstance(raw.index, pd.RangeIndex):  # e.g. a Parquet file written from a frame indexed by time
        raw = raw.reset_index(drop=raw.index.name is None and not isinstance(raw.index, pd.DatetimeIndex))
        if "index" in raw.columns and "ts" not in raw.columns and pd.api.types.is_datetime64_any_dtype(raw["index"]):
            raw = raw.rename(columns={"index": "ts"})
    raw = raw.rename(columns=lambda c: str(c).strip())
    lower = {c.lower(): c for c in reversed(list(raw.columns))}
    ts_col = next((lower[name] for name in TIME_COLUMNS if name in lower), None)
    if ts_col is None:
        raise ConfigError(f"{source}: no time column: {EXPECTED}")
    raw = raw[raw.notna().any(axis=1)]  # blank lines
    ts = _times(raw[ts_col], source, ts_col, place)
    metric_col = next((lower[name] for name in METRIC_COLUMNS if name in lower), None)
    if metric_col is not None and "value" in lower:
        df = _long(raw, ts, ts_col, metric_col, lower["value"], source, place, names)
    else:
        df = _wide(raw, ts, ts_col, lower.get("labels"), source, place, names)
    df = df[df["value"].notna()]
    _check_duplicates(df, source, place)
    if metrics is not None:
        df = df[df["metric"].isin(list(metrics))]
    message = unplaced(df["name"].unique(), set(RUNBOOK_METRICS) if known is None else known, names, source,
                       "column" if metric_col is None or "value" not in lower else "metric name")
    if message:
        warnings.warn(message, MetricNameWarning, stacklevel=3)
    df = df.drop(columns=["name", "row"])
    if since is not None:
        df = df[df["ts"] >= since]
    if until is not None:
        df = df[df["ts"] <= until]
    if step is not None and len(df):
        df = df.assign(ts=df["ts"].dt.floor(pd.Timedelta(step)))
        df = df.groupby(["metric", "labels", "ts"], as_index=False, sort=False)["value"].mean()
    return finish(df)


def _read(path: Path):
    with path.open("rb") as fh:
        head = fh.read(4)
    if path.suffix.lower() in (".parquet", ".pq") or head == b"PAR1":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
        try:
            return pd.read_parquet(path), (lambda i: f"row {i + 1}")
        except Exception as exc:  # pyarrow.ArrowInvalid and friends
            raise ConfigError(f"{path}: not a readable Parquet file ({first_line(exc)}): {EXPECTED}") from None
    opener = gzip.open if head[:2] == b"\x1f\x8b" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
        sep = max([",", ";", "\t"], key=first.count)
        raw = pd.read_csv(path, sep=sep, dtype=str, skip_blank_lines=False,
                          compression="gzip" if opener is gzip.open else None, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path}: the file is empty: {EXPECTED}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise ConfigError(f"{path}: not a readable CSV file ({first_line(exc)}): {EXPECTED}") from None
    return raw, (lambda i: f"line {i + 2}")


def _times(col: pd.Series, source: str, name: str, place) -> pd.Series:
    missing = col.isna()
    if missing.any():
        raise ConfigError(f"{source}: {place(_pos(col, missing))}: no time in column {name}: every row needs one")
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        times = pd.to_datetime(col, utc=True)   # Parquet may hold seconds or microseconds: any year
        # The shown text of a time is made only for the one an error names: str() of every time
        # of a month at 15 s (864,005 samples) took 11 s, most of a Parquet load (benchmarks/metrics_month.py).
        return _in_range(times, None, source, name, place).astype("datetime64[ns, UTC]")
    numbers = pd.to_numeric(col, errors="coerce")
    if numbers.notna().all():
        numbers = numbers.astype("float64")
        finite = np.isfinite(numbers.to_numpy())
        biggest = float(np.abs(numbers[finite]).max()) if finite.any() else 0.0
        unit = "s" if biggest < 1e11 else "ms" if biggest < 1e14 else "us" if biggest < 1e17 else "ns"
        ns = numbers * {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}[unit]
        lo, hi = EARLIEST.value, LATEST.value
        outside = ~np.isfinite(ns.to_numpy()) | (ns.to_numpy() < lo) | (ns.to_numpy() > hi)
        if outside.any():
            where = _pos(col, pd.Series(outside, index=col.index))
            raise ConfigError(f"{source}: {place(where)}: " + out_of_range(
                str(col[where]).strip(), bool(numbers[where] > 0), f" in column {name} (epoch {_UNIT_NAMES[unit]})"))
        return pd.to_datetime(numbers, unit=unit, utc=True).astype("datetime64[ns, UTC]")
    text = col.astype(str).str.strip()
    try:
        times = pd.to_datetime(text, utc=True, format="ISO8601")
        return _in_range(times, text, source, name, place).astype("datetime64[ns, UTC]")
    except (ValueError, OverflowError):
        pass
    for i, value in enumerate(text):
        try:
            pd.to_datetime(value, utc=True, format="ISO8601")
        except (ValueError, OverflowError):
            raise ConfigError(f"{source}: {place(col.index[i])}: cannot read time {value!r} in column {name}: "
                              f"write ISO 8601 (2026-11-29T12:00:00Z; no zone = UTC) or epoch seconds") from None
    raise ConfigError(f"{source}: cannot read the times in column {name}: write ISO 8601 or epoch seconds")


_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _in_range(times: pd.Series, shown: pd.Series | None, source, name, place) -> pd.Series:
    """The times, or the first one a nanosecond frame cannot hold, named with its line
    (as ``shown`` writes it, or as str() of the time when ``shown`` is None)."""
    def text(where):
        return str(times[where]) if shown is None else shown[where]

    if times.isna().any():
        where = _pos(times, times.isna())
        raise ConfigError(f"{source}: {place(where)}: cannot read time {text(where)!r} in column {name}: "
                          f"write ISO 8601 (2026-11-29T12:00:00Z; no zone = UTC) or epoch seconds")
    outside = (times < EARLIEST) | (times > LATEST)
    if outside.any():
        where = _pos(times, outside)
        later = bool(times[where] > EARLIEST)
        raise ConfigError(f"{source}: {place(where)}: {out_of_range(text(where), later, f' in column {name}')}")
    return times


def _numbers(col: pd.Series, source: str, name: str, place, factor=1.0) -> pd.Series:
    """The column's values times ``factor`` (the unit conversion), as float64; NaN is no sample."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.astype("float64")
    else:
        values = pd.to_numeric(col.astype("string").str.strip(), errors="coerce").astype("float64")
        bad = values.isna() & col.notna() & (col.astype("string").str.strip() != "")
        if bad.any():
            where = _pos(col, bad)
            raise ConfigError(f"{source}: {place(where)}: {col[where]!r} in column {name} is not a number: "
                              f"values must be plain numbers (42.5, not 42,5 or 42.5%)")
    with np.errstate(over="ignore", invalid="ignore"):
        values = values * factor
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        where = _pos(col, pd.Series(infinite, index=col.index))
        raise ConfigError(f"{source}: {place(where)}: {_cell(col[where])} in column {name} is not a finite number: "
                          f"write a finite value, or leave the cell empty for no sample")
    return values


def _cell(value) -> str:
    return repr(str(value).strip()) if isinstance(value, str) else repr(str(value))


def _check_duplicates(df: pd.DataFrame, source: str, place) -> None:
    """Refuse two different values for one series and time; identical repeats are one sample."""
    key = ["metric", "labels", "ts"]
    dup = df.duplicated(key, keep=False)
    if not dup.any():
        return
    same = df[dup].groupby(key, sort=False)["value"].transform("nunique") == 1
    conflicts = df[dup][~same]
    if len(conflicts):
        first = conflicts.iloc[0]
        rows = conflicts[(conflicts["metric"] == first["metric"]) & (conflicts["labels"] == first["labels"])
                         & (conflicts["ts"] == first["ts"])].sort_values("row", kind="stable")
        a, b = rows.iloc[0], rows[rows["value"] != rows.iloc[0]["value"]].iloc[0]
        labels = "" if first["labels"] == NO_LABELS else f" {first['labels']}"
        raise ConfigError(f"{source}: {place(a['row'])} and {place(b['row'])} give {first['metric']}{labels} at "
                          f"{first['ts'].isoformat()} two values ({a['value']:g} and {b['value']:g}): "
                          f"keep one of the two rows")


def _long(raw, ts, ts_col, metric_col, value_col, source, place, overrides=None) -> pd.DataFrame:
    extra = [c for c in raw.columns if c not in (ts_col, metric_col, value_col) and c.lower() != "labels"]
    labels_col = next((c for c in raw.columns if c.lower() == "labels"), None)
    names = raw[metric_col]
    if names.isna().any():
        raise ConfigError(f"{source}: {place(_pos(names, names.isna()))}: no metric name in column {metric_col}")
    # Each distinct name mapped once, then spread by its codes (a lambda per row took seconds at
    # a month of samples).
    codes, uniques = pd.factorize(names)
    mapped = [normalize(name, overrides) for name in uniques]
    factor = pd.Series(np.array([m[1] for m in mapped], dtype="float64")[codes], index=raw.index)
    values = _numbers(raw[value_col], source, value_col, place, factor)
    labels = _labels(raw, labels_col, extra, source, place)
    return pd.DataFrame({"ts": ts, "metric": np.array([m[0] for m in mapped], dtype=object)[codes],
                         "value": values, "labels": labels, "name": names.astype(str), "row": raw.index})


def _wide(raw, ts, ts_col, labels_col, source, place, overrides=None) -> pd.DataFrame:
    metric_cols = [c for c in raw.columns if c not in (ts_col, labels_col)]
    if not metric_cols:
        raise ConfigError(f"{source}: no metric columns beside {ts_col}: {EXPECTED}")
    seen: dict[str, str] = {}
    parts = []
    labels = _labels(raw, labels_col, [], source, place)
    for col in metric_cols:
        metric, factor = normalize(col, overrides)
        if metric in seen:
            raise ConfigError(f"{source}: columns {seen[metric]!r} and {col!r} both mean {metric}: "
                              f"keep one, or rename one to another name")
        seen[metric] = col
        parts.append(pd.DataFrame({"ts": ts, "metric": metric, "value": _numbers(raw[col], source, col, place, factor),
                                   "labels": labels, "name": col, "row": raw.index}))
    return pd.concat(parts, ignore_index=True)


def _labels(raw, labels_col, extra, source, place) -> pd.Series:
    if labels_col is None and not extra:
        return pd.Series(NO_LABELS, index=raw.index, dtype="string")
    cols = ([labels_col] if labels_col else []) + list(extra)
    # Each distinct combination once (a series has the same labels on every row), in order of
    # first appearance, so the first bad one is also the first bad row.
    codes = raw[cols].groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(codes))).groupby(codes, sort=True).first().to_numpy()
    texts = []
    for i, row in zip(raw.index[first], raw[cols].iloc[first].itertuples(index=False, name=None)):
        labels = {}
        if labels_col:
            try:
                labels = dict(parse_labels(row[0]))
            except ValueError:
                raise ConfigError(f"{source}: {place(i)}: cannot read labels {row[0]!r}: write a JSON "
                                  f"object such as {{\"instance\": \"db1\"}} or instance=\"db1\"") from None
        for name, value in zip(extra, row[1:] if labels_col else row):
            if not pd.isna(value) and str(value).strip() != "":
                labels[name] = str(value).strip()
        texts.append(labels_json(labels))
    return pd.Series(np.asarray(texts, dtype=object)[codes], index=raw.index, dtype="string")


def _pos(col: pd.Series, mask: pd.Series):
    return col.index[np.flatnonzero(mask.to_numpy())[0]]


