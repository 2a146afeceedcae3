"""Target.query(sql): typed columns, decided by the result's column types (their oids), each with
a NULL, so a notebook user's ad-hoc query frames like the collectors' do."""
import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

# Each case: SQL for one row with a value and one with NULL, its dtype, and the value read back.
CASES = {
    "int2": ("1::int2", "Int64", 1),
    "int4": ("(-2147483648)::int4", "Int64", -2147483648),
    # Every bit of a bigint kept: never through float64 (queryids use all 64 bits).
    "int8": ("9223372036854775807::int8", "Int64", 9223372036854775807),
    "oid": ("4294967295::oid", "Int64", 4294967295),
    "float4": ("0.5::float4", "float64", 0.5),
    "float8": ("1.25::float8", "float64", 1.25),
    "numeric": ("12.5::numeric(8,2)", "float64", 12.5),
    "bool": ("true", "boolean", True),
    "text": ("'caf\u00e9'::text", "string", "caf\u00e9"),
    "varchar": ("'v'::varchar(3)", "string", "v"),
    "name": ("'pg_class'::name", "string", "pg_class"),
    "timestamptz": ("timestamptz '2026-11-29 12:00:00+05'", "datetime64[ns, UTC]",
                    pd.Timestamp("2026-11-29 07:00:00", tz="UTC")),
    # Without a zone: read as UTC (the convention every vhdiag timestamp follows).
    "timestamp": ("timestamp '2026-11-29 12:00:00'", "datetime64[ns, UTC]",
                  pd.Timestamp("2026-11-29 12:00:00", tz="UTC")),
    # Everything else as before: Python objects.
    "date": ("date '2026-11-29'", "object", dt.date(2026, 11, 29)),
    "interval": ("interval '90 seconds'", "object", dt.timedelta(seconds=90)),
    "int[]": ("ARRAY[1, 2]", "object", [1, 2]),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_query_types_each_column_by_its_type(target, kind):
    expr, dtype, value = CASES[kind]
    frame = target.query(f"SELECT v FROM (VALUES (1, {expr}), (2, NULL)) AS t(k, v) ORDER BY k")
    assert str(frame["v"].dtype) == dtype
    assert frame["v"].iloc[0] == value
    assert frame["v"].isna().tolist() == [False, True]


def test_query_types_with_no_rows(target):
    frame = target.query("SELECT 1::int8 AS i, 'x'::text AS s, now() AS ts, true AS b, 1.5 AS f WHERE false")
    assert [str(t) for t in frame.dtypes] == ["Int64", "string", "datetime64[ns, UTC]", "boolean", "float64"]
    assert len(frame) == 0


def test_query_numeric_is_float(target):
    # numeric -> float64, as documented: digits past float64's 15-17 are not kept.
    frame = target.query("SELECT 0.1::numeric + 0.2::numeric AS n")
    assert frame["n"].iloc[0] == pytest.approx(0.3) and not isinstance(frame["n"].iloc[0], Decimal)
