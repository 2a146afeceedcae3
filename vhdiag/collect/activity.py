"""Who is connected and what they are doing: pg_stat_activity, one frame per question.

- ``collect(t)``: one row per client backend (vhdiag's own left out), with how long it has
  been in its state, transaction and query, and who blocks whom.
- ``connections(t)``: connection counts by database, user, application and state, with the
  server's limits (the runbook's "Database Connection Issues": ``SELECT count(*) FROM
  pg_stat_activity`` against ``SHOW max_connections``; warning above 20, critical above 30).
- ``summary(t)``: one row of totals for a dashboard or a threshold check.

A role without ``pg_read_all_stats`` (or superuser) sees the sessions of other roles with
``query = '<insufficient privilege>'`` and NULL state, times, client and backend type: those
rows are kept and marked ``query_hidden``, and the Target gets one notice naming the GRANT.
Connection counts here are of client backends only; the runbook's ``count(*)`` also counts
background processes (checkpointer, walwriter, autovacuum launcher, ...), which do not use
``max_connections`` slots.
"""
from __future__ import annotations

import pandas as pd

from ._base import load_sql, pick_sql, redact_secrets, role_ident, typed
from .registry import collector

# pg_stat_activity per client backend (PostgreSQL 13 to 18: same columns).
COLUMNS = {
    "pid": "int",
    "database": "string",            # datname
    "user": "string",                # usename
    "application": "string",         # application_name
    "client_addr": "string",         # host(client_addr); NULL for Unix-socket connections
    "client_port": "int",            # -1 for Unix-socket connections
    "backend_type": "string",        # 'client backend' (others with collect(all_backends=True))
    "state": "string",               # active, idle, idle in transaction, ...; NULL when hidden
    "wait_event_type": "string",
    "wait_event": "string",
    "waiting": "bool",               # waits on a heavyweight lock (wait_event_type = 'Lock')
    "blocked_by": "string",          # pids holding the lock it waits for, "123,456"; NULL if none
    "blocked_by_count": "int",
    "blocking": "string",            # pids of the sessions waiting on this one, "789"; NULL if none
    "blocking_count": "int",
    "backend_start": "ts",
    "xact_start": "ts",
    "query_start": "ts",
    "state_change": "ts",
    "state_duration_s": "float",     # time in the current state
    "xact_duration_s": "float",      # age of the open transaction; NULL outside one
    "query_duration_s": "float",     # running time of an active query; NULL when not active
    "xmin_age": "int",               # age(backend_xmin): how far it holds back vacuum
    "query_id": "int",               # pg_stat_statements.queryid (PostgreSQL 14+, compute_query_id)
    "query": "string",               # current or last query text
    "query_hidden": "bool",          # '<insufficient privilege>': the role may not see this session
    "ts": "ts",                      # when this was read
}

CONNECTIONS_COLUMNS = {
    "database": "string",
    "user": "string",
    "application": "string",
    "state": "string",               # NULL: hidden from this role (no pg_read_all_stats)
    "connections": "int",
    "waiting": "int",                # of those, waiting on a lock
    "total_connections": "int",      # all client connections, this one included (every row)
    "max_connections": "int",
    "superuser_reserved_connections": "int",
    "reserved_connections": "int",   # PostgreSQL 16+; NULL before
    "free_connections": "int",       # slots left for ordinary roles
    "used_pct": "float",             # total_connections / max_connections * 100
    "ts": "ts",
}

SUMMARY_COLUMNS = {
    "total_connections": "int",
    "active": "int",
    "idle": "int",
    "idle_in_transaction": "int",
    "idle_in_transaction_aborted": "int",
    "hidden": "int",                 # state not visible to this role
    "waiting_sessions": "int",       # waiting on a lock
    "max_connections": "int",
    "superuser_reserved_connections": "int",
    "reserved_connections": "int",
    "used_pct": "float",
    "oldest_idle_in_transaction_s": "float",
    "longest_query_s": "float",
    "longest_transaction_s": "float",
    "ts": "ts",
}

_DURATIONS = ("state_duration_s", "xact_duration_s", "query_duration_s",
              "oldest_idle_in_transaction_s", "longest_query_s", "longest_transaction_s")


@collector(name="activity",
           description="one row per client backend: state and for how long, waits, who blocks whom",
           columns=["pid", "database", "user", "application", "state", "state_duration_s", "waiting",
                    "blocked_by", "query"])
def collect(t, *, all_backends: bool = False) -> pd.DataFrame:
    """One row per client backend of pg_stat_activity, oldest transaction first.

    ``all_backends=True`` also returns background processes (autovacuum workers, WAL
    senders, parallel workers, ...), each with its ``backend_type``.
    """
    sql = pick_sql("activity", t.capabilities.server_version_num)
    df = t.query(sql, {"all_backends": bool(all_backends)})
    df["query_id"] = _exact_int(df["query_id"])
    df["query"] = df["query"].map(redact_secrets)
    out = _clip_durations(typed(df, COLUMNS))
    if out["query_hidden"].any():
        _notice_hidden(t)
    return out


@collector(name="connections", snapshot=True,
           description="connections by database, user, application and state, against max_connections")
def connections(t) -> pd.DataFrame:
    """Client connections counted by database, user, application and state, most first.

    Every row repeats the server-wide ``total_connections``, the limits and ``used_pct``.
    """
    out = typed(t.query(load_sql("activity_connections")), CONNECTIONS_COLUMNS)
    if out["state"].isna().any():
        _notice_hidden(t)
    return out


def summary(t) -> pd.DataFrame:
    """One row: connections by state, limits, oldest idle transaction, longest query."""
    out = _clip_durations(typed(t.query(load_sql("activity_summary")), SUMMARY_COLUMNS))
    if (out["hidden"] > 0).any():
        _notice_hidden(t)
    return out


def _notice_hidden(t) -> None:
    if "activity:hidden" not in t.notices:
        t.notice("activity:hidden",
                 f"role {t.capabilities.user} cannot see the state and query of other roles' sessions: "
                 f"GRANT pg_read_all_stats TO {role_ident(t)};")


def _clip_durations(df: pd.DataFrame) -> pd.DataFrame:
    # pg_stat_activity is read after statement_timestamp(): a state change in between gives a
    # microsecond-negative duration. SQL's greatest() would turn NULL into 0, so clip here.
    for col in _DURATIONS:
        if col in df.columns:
            df[col] = df[col].clip(lower=0)
    return df


def _exact_int(col: pd.Series) -> pd.Series:
    """Text to Int64 without a trip through float64 (a 64-bit query_id loses digits there)."""
    return pd.Series(pd.array([None if pd.isna(v) else int(v) for v in col], dtype="Int64"), index=col.index)
