"""Indexes: what each one costs, whether it is used, and which ones to drop or rebuild.

``collect()`` returns every user index with its size, scans and three findings:

- ``unused``: never scanned (``idx_scan = 0``), valid, and neither unique, primary nor backing a
  constraint (those enforce something even when no query reads them). "Never" means since the
  last statistics reset, on this server: a standby keeps its own counts, so an index unused on
  the primary may serve queries on a replica.
- ``duplicate_of``: the name of another valid index on the same table with the same access
  method, key and INCLUDE columns, expressions, predicate, operator classes, collations,
  DESC/NULLS options (and, from PostgreSQL 15, NULLS NOT DISTINCT). Of such a group one index is
  kept (null here): the primary key, else one backing a constraint, else a unique one, else the
  first by name, then oid. The others name it.
- ``valid``: ``pg_index.indisvalid``. A failed ``CREATE INDEX CONCURRENTLY`` leaves an invalid
  index behind that the planner ignores but every write still maintains. Invalid indexes are
  neither unused nor duplicates.

``unused()``, ``duplicates()`` and ``invalid()`` return those rows with a ``suggestion``: SQL to
run by hand (vhdiag never executes it), identifiers quoted by the driver.

Sizes and definitions never wait on locks: an index whose table or itself another session holds
(or waits for) in ACCESS EXCLUSIVE mode gets null ``bytes``, ``columns`` and ``definition`` and
``size_skipped`` true (see ``vhdiag.collect.space``).
"""
from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
from psycopg import sql

from . import _base
from .registry import collector
from .sizing import SizePlan

COLUMNS = {
    "schema": "string",
    "table": "string",
    "index": "string",
    "method": "string",          # access method: btree, hash, gin, gist, brin, ...
    "bytes": "int",              # all forks; null when size_skipped
    "size_skipped": "bool",      # index or table locked ACCESS EXCLUSIVE by another session
    "scans": "int",              # idx_scan; null for an index of a partitioned table
    "tup_read": "int",           # idx_tup_read: index entries returned by scans
    "tup_fetch": "int",          # idx_tup_fetch: live table rows fetched by simple index scans
    "last_scan": "ts",           # last_idx_scan, PostgreSQL 16+; null before
    "valid": "bool",             # indisvalid
    "primary": "bool",
    "unique": "bool",
    "constraint": "string",      # the primary key, unique or exclusion constraint it backs
    "unused": "bool",
    "duplicate_of": "string",    # the index kept in its group of identical indexes
    "columns": "string",         # key columns (or expressions), comma-separated
    "definition": "string",      # pg_get_indexdef; null when size_skipped
}

SUGGESTION = {"suggestion": "string"}


# What a snapshot keeps of each index (history index_stats), from indexes_snapshot.sql.
SNAPSHOT_COLUMNS = {**{c: COLUMNS[c] for c in ("schema", "table", "index", "bytes", "size_skipped")},
                    "sized": "bool", "scans": "int"}


def for_snapshot(target, plan: SizePlan | None = None) -> pd.DataFrame:
    """Every user index with only what a snapshot stores (SNAPSHOT_COLUMNS): no definitions,
    columns or findings, which cost the server three pg_get_indexdef calls per index. Sized
    (``sized`` true) only when ``plan`` sizes its table (vhdiag/collect/sizing.py); else null
    ``bytes``, which the store fills with the last size it holds."""
    plan = plan or SizePlan()
    frame = _base.query_skipping_locks(target, _base.load_sql("indexes_snapshot"), params=plan.params(target))
    return _base.typed(frame, SNAPSHOT_COLUMNS)


@collector(name="indexes", snapshot=True, snapshot_function=for_snapshot,
           description="every index: size, scans, and whether it is unused, a duplicate or invalid",
           columns=["schema", "table", "index", "bytes", "scans", "unused", "duplicate_of", "valid"])
def collect(target) -> pd.DataFrame:
    """Every user index, by schema, table and name, with the columns of ``COLUMNS``."""
    text = _base.pick_sql("indexes", target.capabilities.server_version_num)
    return _base.typed(_base.query_skipping_locks(target, text), COLUMNS)


def unused(target, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Indexes never scanned that enforce nothing, largest first, each with its DROP."""
    df = _frame(target, frame)
    df = df[df["unused"]].sort_values("bytes", ascending=False, na_position="last")
    return _with_suggestion(target, df, lambda q, row: f"DROP INDEX CONCURRENTLY {q(row['schema'], row['index'])};")


def duplicates(target, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Indexes identical to another index of the same table, each with how to drop it."""
    df = _frame(target, frame)
    return _with_suggestion(target, df[df["duplicate_of"].notna()], _drop_duplicate)


def invalid(target, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Invalid indexes (a failed concurrent build), each with how to rebuild or remove it."""
    df = _frame(target, frame)
    return _with_suggestion(target, df[~df["valid"]], _rebuild_invalid)


# -- suggestions ------------------------------------------------------------------------------
def _drop_duplicate(q: Callable[..., str], row) -> str:
    if pd.notna(row["constraint"]):
        # The index backs a constraint: dropping the constraint drops the index. ALTER TABLE
        # takes an ACCESS EXCLUSIVE lock on the table, briefly.
        return f"ALTER TABLE {q(row['schema'], row['table'])} DROP CONSTRAINT {q(row['constraint'])};"
    return f"DROP INDEX CONCURRENTLY {q(row['schema'], row['index'])};"


# REINDEX CONCURRENTLY names its transient indexes <name>_ccnew[N] and <name>_ccold[N]; when it
# fails they stay behind, invalid, and "the recommended recovery method is to drop" them
# (https://www.postgresql.org/docs/current/sql-reindex.html).
_REINDEX_LEFTOVER = re.compile(r"_cc(new|old)[0-9]*$")
_CREATE_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX ")


def _rebuild_invalid(q: Callable[..., str], row) -> str:
    # "If a problem arises while scanning the table, such as a deadlock or a uniqueness violation
    # in a unique index, the CREATE INDEX command will fail but leave behind an 'invalid' index.
    # [...] The recommended recovery method in such cases is to drop the index and try again to
    # perform CREATE INDEX CONCURRENTLY." (https://www.postgresql.org/docs/current/sql-createindex.html)
    drop = f"DROP INDEX CONCURRENTLY {q(row['schema'], row['index'])};"
    if _REINDEX_LEFTOVER.search(row["index"]):
        return drop
    if pd.isna(row["definition"]):  # skipped behind a lock: no definition to recreate from
        return f"REINDEX INDEX CONCURRENTLY {q(row['schema'], row['index'])};"
    create = _CREATE_INDEX.sub(r"CREATE \1INDEX CONCURRENTLY ", row["definition"], count=1)
    lines = [drop, create + ";"]
    if row["unique"]:
        lines.insert(0, "-- a unique build fails again while the table holds duplicate values")
    return "\n".join(lines)


# -- plumbing ---------------------------------------------------------------------------------
def _frame(target, frame: pd.DataFrame | None) -> pd.DataFrame:
    return collect(target) if frame is None else frame


def _with_suggestion(target, df: pd.DataFrame, build: Callable[[Callable[..., str], object], str]) -> pd.DataFrame:
    """``df`` (renumbered) with a ``suggestion`` column built row by row."""
    df = df.reset_index(drop=True)
    if df.empty:
        return _base.typed(df, {**COLUMNS, **SUGGESTION})
    # Identifiers are quoted by libpq (PQescapeIdentifier) through a live connection, so the
    # result follows the server's encoding, as psycopg's sql.Identifier does in a query.
    with target.engine.connect() as conn:
        raw = conn.connection.driver_connection

        def quote(*names: str) -> str:
            return sql.Identifier(*names).as_string(raw)

        texts = [build(quote, row) for _, row in df.iterrows()]
    return _base.typed(df.assign(suggestion=texts), {**COLUMNS, **SUGGESTION})
