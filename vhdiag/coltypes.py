"""Rows of a result as a typed DataFrame, each column's dtype decided by its PostgreSQL type.

``Target.query()`` is what a notebook user types first ("what does this catalog query say?"),
so its frame should merge with the collectors' frames without casts: the same dtypes the
collectors declare (vhdiag/collect/_base.py), the README's "timestamps are UTC and
timezone-aware; counts are nullable integers". The dtype comes from the column's type oid in
the result's description (psycopg's ``cursor.description``), never from guessing at the
values: a column of NULLs, or an empty result, is typed as well as a full one.

| PostgreSQL | dtype |
|---|---|
| smallint, integer, bigint, oid | ``Int64`` (nullable; every bit of a bigint kept) |
| real, double precision, numeric | ``float64`` (NULL is NaN; numeric keeps 15-17 digits) |
| boolean | ``boolean`` |
| text, varchar, char, name | ``string`` |
| timestamptz, timestamp | ``datetime64[ns, UTC]`` (a timestamp without zone is read as UTC) |
| anything else (date, interval, arrays, json, inet...) | ``object``, psycopg's Python values |

A timestamp outside pandas' nanosecond range (before 1677 or after 2262) keeps the column as
Python datetimes rather than fail the query.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from psycopg.postgres import types as pg_types

_BY_TYPE = {
    "Int64": ("int2", "int4", "int8", "oid"),
    "float64": ("float4", "float8", "numeric"),
    "boolean": ("bool",),
    "string": ("text", "varchar", "bpchar", "name", '"char"'),   # "char": pg_class.relkind...
    "datetime64[ns, UTC]": ("timestamptz", "timestamp"),
}
DTYPE_BY_OID = {pg_types[name].oid: dtype for dtype, names in _BY_TYPE.items() for name in names}


def dtype_for(type_oid: int | None) -> str:
    """The dtype of a result column of type ``type_oid``; ``object`` for the others."""
    return DTYPE_BY_OID.get(type_oid, "object")


def column(values: Sequence, dtype: str) -> pd.Series:
    """One column's Python values (None for NULL) as a Series of ``dtype``."""
    if dtype == "datetime64[ns, UTC]":
        try:
            return pd.Series(pd.to_datetime(list(values), utc=True)).astype(dtype)
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            return pd.Series(values, dtype=object)
    if dtype == "float64":
        return pd.Series(values, dtype=dtype)     # Decimal -> float; None -> NaN
    return pd.Series(pd.array(values, dtype=dtype) if dtype != "object" else list(values), dtype=dtype)


def frame(names: Sequence[str], type_oids: Sequence[int | None], rows: Sequence[Sequence]) -> pd.DataFrame:
    """Rows as a DataFrame, column by column (``zip`` in C, then one conversion per column)."""
    values = list(zip(*rows)) if rows else [()] * len(names)
    return pd.DataFrame({n: column(v, dtype_for(o)) for n, o, v in zip(names, type_oids, values)},
                        columns=list(names))
