"""pg_stat_statements: which statements burn the time, cumulative since the last reset.

One row per entry of the ``pg_stat_statements`` view (user, database, toplevel, queryid), with
the same columns on every extension version. The SQL is picked by the *installed extension
version* (``pg_extension.extversion``), not the server version, as pgmetrics does: a server
upgraded with pg_upgrade keeps the old extension version until ``ALTER EXTENSION
pg_stat_statements UPDATE``, and the old view keeps the old column names.

Renames absorbed here (the frame's names never change):

- 1.8 (PostgreSQL 13): ``total_time``, ``min_time``, ``max_time``, ``mean_time``,
  ``stddev_time`` became ``total_exec_time`` etc. (``*_exec_ms`` here), beside new
  ``*_plan_time`` columns. Before 1.8 planning was not tracked: the plan columns are null.
- 1.11 (PostgreSQL 17): ``blk_read_time``/``blk_write_time`` became
  ``shared_blk_read_time``/``shared_blk_write_time`` (``shared_blk_*_ms`` here), beside new
  ``local_blk_*_time``.

A column the installed version lacks is null (``toplevel`` before 1.9, WAL before 1.8, temp
I/O time and JIT before 1.10, local I/O time, JIT deform and ``stats_since`` before 1.11,
``wal_buffers_full`` and parallel workers before 1.12). Times are milliseconds, as the view
reports them.

Privileges (https://www.postgresql.org/docs/current/pgstatstatements.html): "for security
reasons, only superusers and roles with privileges of the pg_read_all_stats role are allowed to
see the SQL text and queryid of queries executed by other users". Such rows come back with
``query_hidden`` true, ``query`` as the view shows it (``<insufficient privilege>``) and a null
``queryid``; their counters are still there. The Target gets one notice naming the grant.
"""
from __future__ import annotations

import pandas as pd

from ..errors import CapabilityError
from ..marker import MARKER
from . import _base
from .registry import collector

# Oldest extension version the SQL files cover: 1.3 (PostgreSQL 9.5) added min/max/mean/stddev.
MIN_VERSION = (1, 3)

COLUMNS = {
    "queryid": "int",                 # null when query_hidden
    "userid": "int",                  # oid of the role that ran the statement
    "dbid": "int",                    # oid of the database
    "user": "string",                 # pg_roles.rolname; null when the role was dropped
    "database": "string",             # pg_database.datname; null when the database was dropped
    "toplevel": "bool",               # 1.9+; false for statements nested in functions (track = all)
    "query": "string",                # normalized text; '<insufficient privilege>' when query_hidden
    "query_hidden": "bool",           # this role may not see other roles' text and queryid
    "plans": "int",                   # 1.8+
    "total_plan_ms": "float",         # 1.8+ total_plan_time
    "mean_plan_ms": "float",          # 1.8+ mean_plan_time
    "min_plan_ms": "float",           # 1.8+ min_plan_time
    "max_plan_ms": "float",           # 1.8+ max_plan_time
    "stddev_plan_ms": "float",        # 1.8+ stddev_plan_time
    "calls": "int",
    "total_exec_ms": "float",         # total_exec_time; total_time before 1.8
    "mean_exec_ms": "float",          # mean_exec_time; mean_time before 1.8
    "min_exec_ms": "float",           # min_exec_time; min_time before 1.8
    "max_exec_ms": "float",           # max_exec_time; max_time before 1.8
    "stddev_exec_ms": "float",        # stddev_exec_time; stddev_time before 1.8
    "rows": "int",
    "shared_blks_hit": "int",
    "shared_blks_read": "int",
    "shared_blks_dirtied": "int",
    "shared_blks_written": "int",
    "local_blks_hit": "int",
    "local_blks_read": "int",
    "local_blks_dirtied": "int",
    "local_blks_written": "int",
    "temp_blks_read": "int",
    "temp_blks_written": "int",
    "shared_blk_read_ms": "float",    # shared_blk_read_time; blk_read_time before 1.11
    "shared_blk_write_ms": "float",   # shared_blk_write_time; blk_write_time before 1.11
    "local_blk_read_ms": "float",     # 1.11+ local_blk_read_time
    "local_blk_write_ms": "float",    # 1.11+ local_blk_write_time
    "temp_blk_read_ms": "float",      # 1.10+ temp_blk_read_time
    "temp_blk_write_ms": "float",     # 1.10+ temp_blk_write_time
    "wal_records": "int",             # 1.8+
    "wal_fpi": "int",                 # 1.8+ full page images
    "wal_bytes": "int",               # 1.8+ (numeric in the view)
    "wal_buffers_full": "int",        # 1.12+
    "jit_functions": "int",           # 1.10+
    "jit_generation_ms": "float",     # 1.10+ jit_generation_time
    "jit_inlining_count": "int",      # 1.10+
    "jit_inlining_ms": "float",       # 1.10+ jit_inlining_time
    "jit_optimization_count": "int",  # 1.10+
    "jit_optimization_ms": "float",   # 1.10+ jit_optimization_time
    "jit_emission_count": "int",      # 1.10+
    "jit_emission_ms": "float",       # 1.10+ jit_emission_time
    "jit_deform_count": "int",        # 1.11+
    "jit_deform_ms": "float",         # 1.11+ jit_deform_time
    "parallel_workers_to_launch": "int",  # 1.12+
    "parallel_workers_launched": "int",   # 1.12+
    "stats_since": "ts",              # 1.11+ when this entry started counting
    "minmax_stats_since": "ts",       # 1.11+ when its min/max values started
}

# pg_stat_statements_info (1.9+, PostgreSQL 14). On older versions collect_info returns an
# empty frame with these columns (no row: there is nothing to report, not a row of unknowns).
INFO_COLUMNS = {
    "dealloc": "int",                 # entries evicted because pg_stat_statements.max was reached
    "stats_reset": "ts",              # last full reset of pg_stat_statements
}

INFO_VERSION = (1, 9)


def version_key(version: tuple[int, int]) -> int:
    """The ladder key of an extension version: major*100 + minor (1.11 -> 111)."""
    major, minor = version
    return major * 100 + minor


def sql_name(version: tuple[int, int]) -> str:
    """The SQL file (without .sql) the collector runs for this extension version."""
    return _base._pick_name("statements", version_key(version))


def quote_ident(name: str) -> str:
    """``name`` as an SQL identifier, quoted by the driver (psycopg), else by the SQL rules."""
    try:
        from psycopg import sql
        return sql.Identifier(name).as_string()
    except (ImportError, TypeError):  # psycopg missing, or older than 3.2 (needs a connection)
        return '"' + name.replace('"', '""') + '"'


def query_for(version: tuple[int, int], schema: str) -> str:
    """The exact SQL collect() runs for extension ``version`` installed in ``schema``."""
    if tuple(version) < MIN_VERSION:
        raise CapabilityError(
            f"pg_stat_statements {version[0]}.{version[1]} is older than vhdiag reads "
            f"({MIN_VERSION[0]}.{MIN_VERSION[1]}+): run ALTER EXTENSION pg_stat_statements UPDATE; "
            "as a superuser")
    return _base.pick_sql("statements", version_key(version)).replace("{pgss}", quote_ident(schema))


def info_query_for(schema: str) -> str:
    """The SQL collect_info() runs (pg_stat_statements_info, extension 1.9+)."""
    return _base.load_sql("statements_info").replace("{pgss}", quote_ident(schema))


@collector(name="statements", snapshot=True, min_pgss=MIN_VERSION,
           description="pg_stat_statements: time, calls, rows, I/O and WAL per statement since the last reset",
           columns=["queryid", "user", "database", "calls", "total_exec_ms", "mean_exec_ms", "rows",
                    "shared_blks_read", "query"])
def collect(target) -> pd.DataFrame:
    """One row per pg_stat_statements entry, typed as COLUMNS.

    Raises CapabilityError (with the fix) when the extension is missing or not preloaded.
    When this role may not read other roles' statements, their rows still come back, with
    ``query_hidden`` true, and the Target gets one ``pgss_hidden`` notice.
    """
    caps = target.require_pgss()
    if not caps.reads_all_stats and "pgss_hidden" not in target.notices:
        # The server's quote_ident: quotes only names that need it, as a DBA would type them.
        user = target.query(f"SELECT {MARKER} quote_ident(current_user) AS u")["u"].iloc[0]
        target.notice(
            "pgss_hidden",
            f"role {caps.user} sees the query text and queryid of its own statements only: "
            f"run GRANT pg_read_all_stats TO {user}; as a superuser to see all of them")
    raw = target.query(query_for(caps.pgss_version_tuple, caps.pgss_schema))
    raw["query"] = raw["query"].map(_base.redact_secrets)
    return _base.typed(raw, COLUMNS)


@collector(name="statements-info", min_pgss=INFO_VERSION,
           description="pg_stat_statements_info: entries evicted (deallocations) and the last reset")
def collect_info(target) -> pd.DataFrame:
    """pg_stat_statements_info as one row typed as INFO_COLUMNS (extension 1.9+).

    Before 1.9 the view does not exist: an empty frame with INFO_COLUMNS, and one
    ``pgss_info`` notice saying how to get it.
    """
    caps = target.require_pgss()
    version = caps.pgss_version_tuple
    if version < INFO_VERSION:
        if caps.major >= 14:
            fix = "run ALTER EXTENSION pg_stat_statements UPDATE; as a superuser"
        else:
            fix = "it ships with PostgreSQL 14 and later"
        target.notice(
            "pgss_info",
            f"pg_stat_statements {caps.pgss_version} has no pg_stat_statements_info (deallocations, "
            f"last reset), which needs 1.9: {fix}")
        return _base.empty(INFO_COLUMNS)
    return _base.typed(target.query(info_query_for(caps.pgss_schema)), INFO_COLUMNS)
