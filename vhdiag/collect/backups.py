"""Backups and replication: is WAL being archived, and how far behind are the copies.

- ``archiver(t)``: pg_stat_archiver's one row with ``archive_mode``, whether an archive
  command or library is configured, and how many WAL segments wait to be archived.
- ``replication(t)``: one frame, with a ``kind`` column, for everything that holds or
  receives WAL:

  ``slot``      a replication slot (physical or logical). When a WAL sender streams from it
                (``active_pid``), that sender's columns are on the same row.
  ``standby``   a WAL sender with no slot (a standby connected without primary_slot_name).
  ``receiver``  this server's WAL receiver, on a standby only: ``client_addr`` is then the
                upstream host, ``replay_lag_s`` the age of the last replayed transaction
                (0 when everything received is replayed).

  Byte lags (``retained_wal_bytes``, ``send_lag_bytes``, ``replay_lag_bytes``) are
  pg_wal_lsn_diff() from this server's current WAL position: pg_current_wal_lsn() on a
  primary, pg_last_wal_receive_lsn() (else the replay position) on a standby.

Without ``pg_read_all_stats``, pg_stat_replication and pg_stat_wal_receiver show a role only
the pid of each sender/receiver: the other columns are NULL and the Target gets one notice.
Counting pending ``.ready`` segments needs ``pg_monitor`` (pg_ls_archive_statusdir()).
"""
from __future__ import annotations

import pandas as pd

from ._base import load_sql, pick_sql, role_ident, typed
from .registry import collector

ARCHIVER_COLUMNS = {
    "archived_count": "int",
    "last_archived_wal": "string",
    "last_archived_time": "ts",
    "last_archived_age_s": "float",      # seconds since the last successful archive
    "failed_count": "int",
    "last_failed_wal": "string",
    "last_failed_time": "ts",
    "last_failed_age_s": "float",
    "stats_reset": "ts",
    "archive_mode": "string",            # off, on, always
    "archive_command_set": "bool",       # an archive_command is configured (never its text)
    "archive_library": "string",         # PostgreSQL 15+; NULL when unset or older
    "archive_timeout_s": "float",        # forced segment switch interval; 0 = off
    "pending_wal_files": "int",          # .ready segments not archived yet; NULL without pg_monitor
    "in_recovery": "bool",
    "ts": "ts",
}
COLUMNS = ARCHIVER_COLUMNS

REPLICATION_COLUMNS = {
    "kind": "string",                    # slot, standby, receiver (see the module docstring)
    "slot_name": "string",
    "slot_type": "string",               # physical, logical
    "plugin": "string",                  # logical decoding output plugin
    "database": "string",                # logical slots only
    "active": "bool",
    "temporary": "bool",
    "restart_lsn": "string",
    "confirmed_flush_lsn": "string",     # logical slots only
    "retained_wal_bytes": "int",         # WAL kept for the slot: current LSN - restart_lsn
    "confirmed_lag_bytes": "int",        # current LSN - confirmed_flush_lsn (logical)
    "wal_status": "string",              # reserved, extended, unreserved, lost
    "safe_wal_size_bytes": "int",        # WAL writable before the slot is lost (max_slot_wal_keep_size)
    "inactive_since": "ts",              # PostgreSQL 17+
    "invalidation_reason": "string",     # PostgreSQL 17+
    "pid": "int",                        # WAL sender (or receiver) pid
    "user": "string",
    "application": "string",             # standby's application_name (cluster_name)
    "client_addr": "string",             # standby address; for a receiver, the upstream host
    "state": "string",                   # streaming, catchup, startup, backup, ...
    "sync_state": "string",              # async, sync, potential, quorum
    "sent_lsn": "string",
    "write_lsn": "string",
    "flush_lsn": "string",
    "replay_lsn": "string",
    "send_lag_bytes": "int",
    "replay_lag_bytes": "int",
    "write_lag_s": "float",
    "flush_lag_s": "float",
    "replay_lag_s": "float",
    "reply_time": "ts",                  # last message from the standby (receiver: from upstream)
    "current_lsn": "string",             # the position the byte lags are measured from
    "in_recovery": "bool",               # this server is a standby
    "ts": "ts",
}


@collector(name="backups", description="WAL archiving: last archived segment, its age, failures, segments waiting")
def archiver(t) -> pd.DataFrame:
    """One row: WAL archiving counts, last success and failure, and the settings."""
    df = t.query(load_sql("backups_archiver"))
    allowed = bool(df["can_list_archive_status"].iloc[0])
    if allowed:
        df["pending_wal_files"] = int(t.query(load_sql("backups_archive_pending")).iloc[0, 0])
    out = typed(df, ARCHIVER_COLUMNS)
    if not allowed and "backups:archive_status" not in t.notices:
        t.notice("backups:archive_status",
                 f"role {t.capabilities.user} may not list pg_wal/archive_status, so WAL segments waiting "
                 f"to be archived are not counted: GRANT pg_monitor TO {role_ident(t)};")
    return out


@collector(name="replication", description="replication slots, standbys and the WAL receiver, with their lag")
def replication(t) -> pd.DataFrame:
    """Replication slots, WAL senders and the WAL receiver, with their lag (see module doc)."""
    sql = pick_sql("backups_replication", t.capabilities.server_version_num)
    out = typed(t.query(sql), REPLICATION_COLUMNS)
    # A slot's active_pid may be a backend calling pg_logical_slot_get_changes(), which has no
    # sender row: only a role without pg_read_all_stats is told to get it.
    hidden = out["pid"].notna() & out["state"].isna()
    if hidden.any() and not t.capabilities.reads_all_stats and "backups:replication" not in t.notices:
        t.notice("backups:replication",
                 f"role {t.capabilities.user} cannot see the state and lag of WAL senders and receivers: "
                 f"GRANT pg_read_all_stats TO {role_ident(t)};")
    return out
