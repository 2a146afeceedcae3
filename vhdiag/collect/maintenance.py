"""Vacuum, analyze and ID wraparound: what autovacuum has done and what it owes.

- ``tables(t)``: per user table, dead tuples, the vacuum/analyze history and counts, ID ages,
  and ``needs_vacuum``/``needs_analyze`` by autovacuum's own rule (thresholds plus scale
  factors times reltuples, per-table reloptions honoured), with a ``suggestion`` to run by hand.
- ``databases(t)``: transaction ID and multixact age per database against wraparound
  (2^31 - 1) and against ``autovacuum_freeze_max_age``.
- ``sequences(t)``: how much of each sequence's range is used.

All of it is readable without special grants (pg_stat_user_tables, pg_class, pg_database are
public), except a sequence's ``last_value``, which needs SELECT or USAGE on the sequence.
None of it waits on a lock: a sequence locked ACCESS EXCLUSIVE by another session is reported
with ``locked`` true instead of being read.
"""
from __future__ import annotations

import pandas as pd

from ..marker import MARKER
from ._base import load_sql, role_ident, typed
from .registry import collector

TABLES_COLUMNS = {
    "schema": "string",
    "table": "string",
    "n_live_tup": "int",
    "n_dead_tup": "int",
    "dead_tup_pct": "float",             # dead / (live + dead) * 100
    "last_vacuum": "ts",
    "last_autovacuum": "ts",
    "last_analyze": "ts",
    "last_autoanalyze": "ts",
    "vacuum_count": "int",
    "autovacuum_count": "int",
    "analyze_count": "int",
    "autoanalyze_count": "int",
    "n_mod_since_analyze": "int",
    "n_ins_since_vacuum": "int",         # PostgreSQL 13+
    "xid_age": "int",                    # age(relfrozenxid); NULL for partitioned parents
    "mxid_age": "int",                   # mxid_age(relminmxid)
    "autovacuum_enabled": "bool",        # reloption autovacuum_enabled, default true
    "freeze_max_age": "int",             # least(reloption, autovacuum_freeze_max_age)
    "mxid_freeze_max_age": "int",
    "reltuples": "float",                # planner's row estimate, -1 (never analyzed) as 0
    "vacuum_threshold": "float",         # dead tuples past which autovacuum vacuums
    "insert_vacuum_threshold": "float",  # inserts past which it vacuums; NULL when disabled
    "analyze_threshold": "float",        # changed rows past which it analyzes
    "needs_vacuum": "bool",              # dead tuples, inserts or ID age past the threshold
    "needs_freeze": "bool",              # ID age past the freeze max age (anti-wraparound)
    "needs_analyze": "bool",
    "suggestion": "string",              # e.g. VACUUM (ANALYZE) public.machine_events; -- text only
}
COLUMNS = TABLES_COLUMNS

DATABASES_COLUMNS = {
    "database": "string",
    "xid_age": "int",                    # age(datfrozenxid)
    "mxid_age": "int",                   # mxid_age(datminmxid)
    "autovacuum_freeze_max_age": "int",
    "autovacuum_multixact_freeze_max_age": "int",
    "wraparound_pct": "float",           # xid_age / (2^31 - 1) * 100
    "freeze_max_age_pct": "float",       # xid_age / autovacuum_freeze_max_age * 100
    "mxid_wraparound_pct": "float",      # mxid_age / (2^31 - 1) * 100
    "xids_left": "int",                  # 2^31 - 1 - xid_age
    "allow_connections": "bool",         # datallowconn (false for template0)
    "ts": "ts",
}

SEQUENCES_COLUMNS = {
    "schema": "string",
    "sequence": "string",
    "data_type": "string",               # smallint, integer, bigint
    "start_value": "int",
    "min_value": "int",
    "max_value": "int",
    "increment_by": "int",
    "last_value": "int",                 # NULL: never called, or not readable (see readable)
    "used_pct": "float",                 # share of [min_value, max_value] used
    "cycle": "bool",
    "readable": "bool",                  # role has SELECT or USAGE, so last_value is meaningful
    "locked": "bool",                    # ACCESS EXCLUSIVE lock by another session: not read
    "ts": "ts",
}


@collector(name="maintenance",
           description="per table: last (auto)vacuum and analyze, dead rows, transaction ID age, what is due",
           columns=["schema", "table", "n_dead_tup", "dead_tup_pct", "last_vacuum", "last_autovacuum",
                    "last_analyze", "last_autoanalyze", "xid_age", "needs_vacuum"])
def tables(t) -> pd.DataFrame:
    """Every user table's vacuum state, the ones needing a vacuum first."""
    return typed(t.query(load_sql("maintenance_tables")), TABLES_COLUMNS)


@collector(name="wraparound", description="transaction ID and multixact age per database, against wraparound")
def databases(t) -> pd.DataFrame:
    """Transaction ID age per database (templates included), oldest first."""
    return typed(t.query(load_sql("maintenance_databases")), DATABASES_COLUMNS)


@collector(name="sequences", description="sequences and how much of their range is used")
def sequences(t) -> pd.DataFrame:
    """Sequences with how much of their range is used, fullest first.

    A sequence the role may not read has ``readable`` False and NULL ``last_value`` and
    ``used_pct``; the Target gets one notice naming the GRANT.
    """
    out = typed(t.query(load_sql("maintenance_sequences")), SEQUENCES_COLUMNS)
    hidden = out[~out["readable"].fillna(False).astype(bool)]
    if len(hidden) and "maintenance:sequences" not in t.notices:
        schemas = sorted(hidden["schema"].unique())
        grants = " ".join(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {role_ident(t)};"
                          for s in _quoted(t, schemas))
        t.notice("maintenance:sequences",
                 f"role {t.capabilities.user} may not read {len(hidden)} sequence(s), so their use is "
                 f"unknown: {grants}")
    return out


def _quoted(t, names: list[str]) -> list[str]:
    """Identifiers quoted by the server (quote_ident), for messages to copy."""
    df = t.query(f"SELECT {MARKER} quote_ident(n) AS q FROM unnest(CAST(:names AS text[])) "
                 "WITH ORDINALITY AS u(n, i) ORDER BY i", {"names": list(names)})
    return df["q"].tolist()
