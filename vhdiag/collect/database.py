"""Per-database counters: pg_stat_database, one row per database.

The counters are cumulative since ``stats_reset`` (or, for some, since ``server_start``):
the history store turns them into per-interval deltas (TPS, rollbacks, cache hit, deadlocks).
template0, template1 and the row for shared objects are left out.

Sizes come from ``pg_database_size()``, which needs CONNECT on the database or membership in
``pg_read_all_stats``: a database the role may not connect to gets a NULL ``size_bytes`` and
one notice naming the GRANT, not an error.
"""
from __future__ import annotations

import pandas as pd

from ._base import pick_sql, role_ident, typed
from .registry import collector

COLUMNS = {
    "database": "string",
    "size_bytes": "int",              # pg_database_size(); NULL without CONNECT
    "numbackends": "int",             # connections now
    "xact_commit": "int",
    "xact_rollback": "int",
    "rollback_pct": "float",          # rollbacks / (commits + rollbacks) * 100, cumulative
    "blks_read": "int",
    "blks_hit": "int",
    "cache_hit_pct": "float",         # blks_hit / (blks_hit + blks_read) * 100, cumulative
    "tup_returned": "int",
    "tup_fetched": "int",
    "tup_inserted": "int",
    "tup_updated": "int",
    "tup_deleted": "int",
    "conflicts": "int",               # queries cancelled by recovery conflicts (standbys)
    "temp_files": "int",
    "temp_bytes": "int",
    "deadlocks": "int",
    "checksum_failures": "int",       # NULL when data checksums are off
    "checksum_last_failure": "ts",
    "blk_read_ms": "float",           # blk_read_time; needs track_io_timing
    "blk_write_ms": "float",          # blk_write_time
    "session_time_ms": "float",       # PostgreSQL 14+; NULL before
    "active_time_ms": "float",        # 14+
    "idle_in_transaction_time_ms": "float",  # 14+
    "sessions": "int",                # 14+
    "sessions_abandoned": "int",      # 14+: client disconnected without ending the session
    "sessions_fatal": "int",          # 14+
    "sessions_killed": "int",         # 14+: pg_terminate_backend and the like
    "stats_reset": "ts",
    "server_start": "ts",             # pg_postmaster_start_time()
    "ts": "ts",                       # now(): when these counters were read
}


@collector(name="database", snapshot=True,
           description="pg_stat_database: size, commits, rollbacks, cache hit ratio, deadlocks, temp bytes",
           columns=["database", "size_bytes", "numbackends", "xact_commit", "xact_rollback", "cache_hit_pct",
                    "deadlocks", "temp_bytes", "conflicts", "stats_reset"])
def collect(t) -> pd.DataFrame:
    """pg_stat_database for every database (templates and shared objects left out)."""
    out = typed(t.query(pick_sql("database", t.capabilities.server_version_num)), COLUMNS)
    unsized = out.loc[out["size_bytes"].isna(), "database"].tolist()
    if unsized and "database:size" not in t.notices:
        t.notice("database:size",
                 f"role {t.capabilities.user} may not connect to {', '.join(unsized)}, so size_bytes is null "
                 f"there: GRANT pg_read_all_stats TO {role_ident(t)};")
    return out
