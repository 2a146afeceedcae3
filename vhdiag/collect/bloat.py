"""Bloat: how much of a table's or btree index's bytes hold no live row, and by which method.

The issue asks for "estimated table and btree-index bloat: name the method; use
pgstattuple_approx when the extension is installed". Two methods, each named in every figure:

- ``index-bloat`` (``indexes()``): the statistics-based btree estimate of
  ioguix/pgsql-bloat-estimation, from ``pg_class`` (reltuples, relpages), ``pg_index`` and
  ``pg_stats`` only. Catalogs take no lock and read no page of the index; the figures are as
  fresh as the last VACUUM or ANALYZE. Method name: ``statistics (ioguix btree estimate)``.
- ``pgstattuple-bloat`` (``exact(t, tables, indexes)``): when the pgstattuple extension is
  installed (its C functions, owned by the extension: a user function of the same name is never
  called) and the role may execute them (``pg_stat_scan_tables``), ``pgstattuple_approx`` for
  the given tables (it skips all-visible pages) and ``pgstatindex`` for the given btree indexes
  (it reads the whole index). Each relation is one statement, bounded by ``statement_timeout`` and
  ``lock_timeout`` like every vhdiag query (they take an AccessShareLock); a relation that times
  out keeps the statistics estimate, and the Target gets a notice. Callers pass the top few
  relations only: these functions read pages, the statistics do not.

vhdiag never installs the extension: ``CREATE EXTENSION pgstattuple`` is the DBA's choice.
"""
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from ..marker import MARKER
from . import _base
from .registry import collector
TABLE_METHOD = "pgstattuple_approx"
INDEX_METHOD = "pgstatindex"

COLUMNS = {
    "schema": "string",
    "table": "string",
    "index": "string",
    "real_bytes": "int",          # relpages * block size, as of the last VACUUM/ANALYZE
    "expected_bytes": "int",      # the estimated size of a freshly built index at its fillfactor
    "bloat_bytes": "int",         # real - expected, 0 when smaller
    "bloat_pct": "float",         # bloat_bytes / real_bytes * 100
    "fillfactor": "int",          # the index's, default 90
    "reltuples": "float",
    "is_na": "bool",              # a "name" key or a key column without statistics: not reliable
}

EXTENSION_COLUMNS = {"qschema": "string", "version": "string", "tables_ok": "bool", "indexes_ok": "bool"}

EXACT_COLUMNS = {
    "schema": "string",
    "relation": "string",         # the table or index name
    "kind": "string",             # table, index
    "bytes": "int",               # table_len (heap) or index_size
    "bloat_bytes": "int",         # table: dead tuple bytes + free space; index: see _INDEX
    "bloat_pct": "float",
    "method": "string",           # pgstattuple_approx, pgstatindex
}

# pgstattuple_approx: space not holding a live row, dead rows plus free space.
_TABLE = ("SELECT {marker} (s.dead_tuple_len + s.approx_free_space)::bigint AS bloat_bytes, s.table_len AS bytes "
          "FROM {schema}.pgstattuple_approx(CAST(:oid AS oid)::regclass) s")
# pgstatindex: empty and deleted pages, plus the leaf pages' room below the fillfactor.
_INDEX = ("SELECT {marker} s.index_size AS bytes, "
          "((s.empty_pages + s.deleted_pages) * current_setting('block_size')::bigint "
          "+ greatest(0, s.leaf_pages * current_setting('block_size')::bigint "
          "  * (1 - coalesce(nullif(s.avg_leaf_density, 'NaN'), 0) / :fillfactor)))::bigint AS bloat_bytes "
          "FROM {schema}.pgstatindex(CAST(:oid AS oid)::regclass) s")
_OID = ("SELECT {marker} c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relname = :name AND c.relkind = ANY(:kinds)")


@collector(name="index-bloat",
           description="btree indexes: estimated bloat bytes and share, from the statistics (ioguix estimate)",
           columns=["schema", "table", "index", "real_bytes", "bloat_bytes", "bloat_pct", "is_na"])
def indexes(t) -> pd.DataFrame:
    """Every user btree index with its estimated bloat, most bloated first (``STATS_METHOD``)."""
    return _base.typed(t.query(_base.load_sql("bloat_indexes")), COLUMNS)


def extension(t) -> dict | None:
    """pgstattuple as this role can use it: ``{"qschema", "version", "tables_ok", "indexes_ok"}``, or None."""
    got = _base.typed(t.query(_base.load_sql("bloat_pgstattuple")), EXTENSION_COLUMNS)
    return got.iloc[0].to_dict() if len(got) else None


def exact(t, tables: list[tuple[str, str]], indexes: list[tuple[str, str, int]]) -> pd.DataFrame:
    """pgstattuple figures for ``tables`` ((schema, table)) and btree ``indexes`` ((schema, index,
    fillfactor)), one bounded statement each; empty without the extension or the privilege."""
    ext = extension(t)
    rows: list[dict] = []
    if ext is None:
        return _base.empty(EXACT_COLUMNS)
    if not (ext["tables_ok"] and ext["indexes_ok"]):
        t.notice("bloat:pgstattuple", "pgstattuple is installed but this role may not run it, so bloat is "
                 "estimated from the statistics: GRANT pg_stat_scan_tables TO " + _base.role_ident(t) + ";")
    todo = []
    if ext["tables_ok"]:
        todo += [(s, n, "table", ["r", "m"], _TABLE, {}) for s, n in tables]
    if ext["indexes_ok"]:
        todo += [(s, n, "index", ["i"], _INDEX, {"fillfactor": float(ff or 90)}) for s, n, ff in indexes]
    failed = []
    for schema, name, kind, kinds, sql, extra in todo:
        oid = t.query(_OID.format(marker=MARKER), {"schema": schema, "name": name, "kinds": kinds})
        if oid.empty:
            continue
        try:
            got = t.query(sql.format(marker=MARKER, schema=ext["qschema"]), {"oid": int(oid.iloc[0, 0]), **extra})
        except sa.exc.DBAPIError as exc:   # statement_timeout or lock_timeout: keep the estimate
            failed.append(f"{schema}.{name} ({type(exc.orig).__name__})")
            continue
        size, bloat = int(got["bytes"].iloc[0]), int(got["bloat_bytes"].iloc[0])
        rows.append({"schema": schema, "relation": name, "kind": kind, "bytes": size, "bloat_bytes": bloat,
                     "bloat_pct": 100 * bloat / size if size else 0.0,
                     "method": TABLE_METHOD if kind == "table" else INDEX_METHOD})
    if failed:
        t.notice("bloat:pgstattuple-failed", "pgstattuple did not finish within the timeouts for "
                 + ", ".join(failed) + ": their bloat is estimated from the statistics")
    return _base.typed(pd.DataFrame(rows, columns=list(EXACT_COLUMNS)), EXACT_COLUMNS)
