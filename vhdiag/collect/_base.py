"""Shared plumbing of the collectors: SQL files, typed frames, lock-skipping queries and the
role name for GRANT hints."""
from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

import pandas as pd
import psycopg
import sqlalchemy as sa

from ..marker import MARKER
# Passwords out of statement text, by parsing (vhdiag/redact.py); re-exported for the collectors.
from ..redact import REDACTED, redact_secrets  # noqa: F401

SQL_DIR = Path(__file__).parent / "sql"

# dtype names used in the COLUMNS mappings; "ts" is a UTC, timezone-aware timestamp.
DTYPES = {
    "string": "string",
    "int": "Int64",
    "float": "Float64",
    "bool": "boolean",
    "ts": "datetime64[ns, UTC]",
}


def sql_dirs() -> list[Path]:
    """``sql/`` beside each directory of this package: SQL_DIR, then any directory added to
    ``vhdiag.collect.__path__`` (a collector kept outside the source tree)."""
    package = importlib.import_module(__package__)
    return [Path(p) / "sql" for p in package.__path__]


# A line of its own, `-- include: _name.sql`, stands for that fragment's SQL (see load_sql).
INCLUDE = re.compile(r"^[ \t]*-- include: (\S*)[ \t]*\n?", re.M)
FRAGMENT_NAME = re.compile(r"_[a-z0-9_]+\.sql")


def _find_sql(filename: str) -> Path | None:
    return next((d / filename for d in sql_dirs() if (d / filename).exists()), None)


@cache
def load_sql(name: str) -> str:
    """The text of ``sql/<name>.sql``, which must carry vhdiag's marker (vhdiag/marker.py), with
    each ``-- include: _fragment.sql`` line replaced by that fragment's SQL.

    A fragment (``sql/_*.sql``) holds SQL that several queries share, so that it is written
    once, not copied by hand (the ``locked`` CTE that keeps the size functions from queueing
    behind an ACCESS EXCLUSIVE lock, for one). It is never a query of its own and needs no marker:
    the including file carries it. Its leading comment lines say why, for whoever reads the
    source, and are not sent; the rest replaces the include line as it stands, so the server
    gets the same text as if it had been written in place. Includes go one level deep.
    """
    if name.startswith("_"):
        raise LookupError(f"{name}.sql is a fragment, not a query: include it with a line "
                          f"'-- include: {name}.sql' in the query's SQL file")
    path = _find_sql(f"{name}.sql") or SQL_DIR / f"{name}.sql"
    text = path.read_text()
    if MARKER not in text:
        raise LookupError(f"{path} has no {MARKER} marker: put it after the statement's first keyword "
                          f"(SELECT {MARKER} ...), so reports can tell vhdiag's statements from the application's")
    return INCLUDE.sub(lambda m: _fragment(path, m.group(1)), text)


def _fragment(including: Path, filename: str) -> str:
    """The SQL of fragment ``filename`` (its leading comment lines dropped), for ``including``."""
    if not FRAGMENT_NAME.fullmatch(filename):
        raise LookupError(f"{including.name} includes {filename!r}: a fragment's name is _<name>.sql "
                          f"(lower case letters, digits and _), in the same folder as the queries")
    found = _find_sql(filename)
    if found is None:
        raise LookupError(f"{including.name} includes {filename}, which no SQL folder holds "
                          f"({', '.join(str(d) for d in sql_dirs())}): create it there, or fix the name")
    text = found.read_text()
    if INCLUDE.search(text):
        raise LookupError(f"{found.name} includes another fragment: includes go one level deep, "
                          f"so include both from {including.name}")
    sql = re.sub(r"^(?:[ \t]*--[^\n]*\n)*", "", text)
    return sql if sql.endswith("\n") else sql + "\n"


def pick_sql(prefix: str, key: int) -> str:
    """The newest ``<prefix>_post_<N>.sql`` with N <= key, else ``<prefix>.sql``.

    ``key`` is a server_version_num (170000) or, for pg_stat_statements, the extension
    version as major*100+minor (111 for 1.11). A newest-first ladder, as pg_activity does.
    """
    return load_sql(_pick_name(prefix, key))


@cache
def _pick_name(prefix: str, key: int) -> str:
    best, best_n = prefix, -1
    pattern = re.compile(re.escape(prefix) + r"_post_(\d+)\.sql$")
    dirs = sql_dirs()
    for path in (p for d in dirs for p in d.glob(f"{prefix}_post_*.sql")):
        m = pattern.match(path.name)
        if m and best_n < int(m.group(1)) <= key:
            best, best_n = path.stem, int(m.group(1))
    if best == prefix and not any((d / f"{prefix}.sql").exists() for d in dirs):
        raise LookupError(f"no SQL file {prefix}*.sql for version key {key}")
    return best


def typed(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Select ``columns`` in order and cast each to its declared dtype.

    Columns missing from ``df`` (a feature this server lacks) come back as all-null.
    """
    out = {}
    n = len(df)
    for name, kind in columns.items():
        dtype = DTYPES[kind]
        if name in df.columns:
            col = df[name]
            if kind == "ts":
                col = pd.to_datetime(col, utc=True)
            elif kind == "int" and col.dtype == object:
                # Exact for 64-bit values: never through float64 (queryids use all 64 bits).
                col = pd.Series(_int64_array(col), index=col.index)
            elif kind in ("int", "float"):
                col = pd.to_numeric(col)
            out[name] = col.astype(dtype)
        else:
            out[name] = pd.Series([pd.NA] * n, dtype=dtype, index=df.index)
    return pd.DataFrame(out, index=pd.RangeIndex(n)) if n == 0 else pd.DataFrame(out).reset_index(drop=True)


def _int64_array(col: pd.Series):
    """An object column of ints (or None) as an exact Int64 array.

    pandas converts a column of Python ints and None in one pass, exactly; anything else it
    refuses (a fraction, a Decimal with one) goes value by value through ``int()``, as before."""
    try:
        return pd.array(col.to_numpy(), dtype="Int64")
    except (TypeError, ValueError, OverflowError):
        return pd.array([None if v is None or v is pd.NA else int(v) for v in col], dtype="Int64")


def empty(columns: dict[str, str]) -> pd.DataFrame:
    """A frame with no rows and the declared columns and dtypes."""
    return typed(pd.DataFrame(), columns)


# A lock taken between the statement's read of pg_locks and a size call makes that call wait
# lock_timeout and fail; the statement is then run again, with a fresh look at pg_locks.
LOCK_RETRIES = 3


def query_skipping_locks(target, sql: str, retries: int = LOCK_RETRIES, params: dict | None = None) -> pd.DataFrame:
    """Run a statement that skips relations locked by others, again if a lock slipped in.

    The SQL reads ``pg_locks`` once, at its start, and leaves the locked relations alone. A
    session that takes an ACCESS EXCLUSIVE lock after that moment makes the statement wait
    ``lock_timeout`` and fail with ``LockNotAvailable``; it is then run again, up to
    ``retries`` times in all, and the last failure is raised.
    """
    attempt = 1
    while True:
        try:
            return target.query(sql, params)
        except sa.exc.DBAPIError as exc:
            if attempt >= retries or not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            attempt += 1


def role_ident(t) -> str:
    """The connected role as an SQL identifier for a GRANT to copy, quoted by the server
    (quote_ident knows the reserved words) only where it must be."""
    return str(t.query(f"SELECT {MARKER} quote_ident(current_user) AS r").iloc[0, 0])
