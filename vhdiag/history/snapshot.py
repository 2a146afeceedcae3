"""What one snapshot collects from a monitored database, before anything is written.

Collection happens outside the store's write transaction (it may take seconds on a big
database; the store's lock is held only while writing). A feature the target lacks leaves its
frame out with a note, so a snapshot of a server without pg_stat_statements still records
sizes and database statistics.

What is collected is what the collector registry marks ``snapshot=True`` (vhdiag/collect/
registry.py): statements, tables, indexes, database, connections; the store writes the frames it
has tables for. A collector may name a lighter ``snapshot_function`` that returns only what the
store keeps (indexes: sizes and scans, no definitions: at 20,000 indexes the definitions were
most of the snapshot's time on the server; benchmarks/snapshot_scale.py). ``statements-info``
gives the header its reset time and deallocation count.

For the post-mortem (schema 2) a snapshot also keeps the settings not at their default (so a
configuration change between two snapshots shows in the incident's timeline), connections by
application and state, and the sessions that are idle in transaction, wait on a lock or block one
(who blocked whom, by application; no query text: it may carry literals). Settings that may hold
a secret (``primary_conninfo`` and the like) are never read.
"""
from __future__ import annotations

import time

import pandas as pd
import sqlalchemy as sa

from ..collect import registry, space
from ..collect.sizing import SizePlan
from ..errors import CapabilityError, first_line
from ..marker import MARKER


def collect(target, plan: SizePlan | None = None) -> dict:
    """Every snapshot frame of ``target``; tables and indexes sized as ``plan`` says (all of them
    without one; ``History.snapshot`` makes the plan from the store, vhdiag/collect/sizing.py)."""
    started = time.perf_counter()
    plan = plan or SizePlan()
    caps = target.capabilities
    notes: list[str] = []
    frames: dict = {}
    ts = pd.Timestamp.now(tz="UTC")

    def attempt(name, fn):
        try:
            frames[name] = fn()
        except CapabilityError as exc:
            notes.append(f"{name}: {exc}")
        except sa.exc.DBAPIError as exc:
            notes.append(f"{name}: {first_line(exc)}")

    for entry in registry.collectors():
        if entry.snapshot and entry.snapshot_function is not None:
            attempt(entry.name, lambda fn=entry.snapshot_function: fn(target, plan))
        elif entry.snapshot:
            attempt(entry.name, getattr(target, entry.method))
    info = None
    if "statements" in frames:
        try:
            info = target.statements_info()
        except sa.exc.DBAPIError:
            info = None

    skipped = space.skipped_note(frames["tables"]) if "tables" in frames else None
    if skipped:
        notes.append(skipped)
    if "connections" in frames:
        conns = frames["connections"]
        by_state = conns.groupby(conns["state"].fillna("unknown"))["connections"].sum()
        frames["activity"] = pd.DataFrame({"state": by_state.index.astype(str), "connections": by_state.values})
        max_connections = int(conns["max_connections"].iloc[0]) if len(conns) and "max_connections" in conns else None
    else:
        max_connections = None
    if max_connections is None:
        row = target.query(f"SELECT {MARKER} current_setting('max_connections')::int AS m")
        max_connections = int(row.iat[0, 0])

    attempt("settings", lambda: _settings(target))
    attempt("sessions", lambda: _sessions(target))
    if "connections" in frames:
        conns = frames["connections"]
        by_app = conns.groupby([conns["application"].fillna(""), conns["state"].fillna("unknown")])["connections"].sum()
        frames["connection_counts"] = pd.DataFrame(
            [(a, st, int(n)) for (a, st), n in by_app.items()], columns=["application", "state", "connections"])

    frames["header"] = {
        "ts": ts,
        "server_version_num": caps.server_version_num,
        "postmaster_start": caps.postmaster_start,
        "pgss_version": caps.pgss_version,
        "reads_all_stats": caps.reads_all_stats,
        "pgss_stats_reset": info["stats_reset"].iloc[0] if info is not None and len(info) else None,
        "pgss_dealloc": int(info["dealloc"].iloc[0]) if info is not None and len(info)
        and pd.notna(info["dealloc"].iloc[0]) else None,
        "max_connections": max_connections,
        "collect_ms": (time.perf_counter() - started) * 1000,
        "sizing": plan.sizing if "tables" in frames else None,
    }
    frames["notes"] = notes
    return frames


# Names whose value may carry a password or a command: never read.
_SECRET_SETTINGS = "(conninfo|passphrase|password|command|_key_|secret)"


def _settings(target) -> pd.DataFrame:
    """pg_settings not at their built-in default: name, value with unit, where it was set."""
    return target.query(
        f"SELECT {MARKER} name, setting || coalesce(unit, '') AS value, source FROM pg_settings "
        f"WHERE source NOT IN ('default', 'override') AND name !~ '{_SECRET_SETTINGS}' ORDER BY name")


def _sessions(target) -> pd.DataFrame:
    """The sessions a post-mortem asks about: idle in transaction, waiting on a lock, or blocking."""
    act = target.activity()
    keep = (act["state"].fillna("").str.startswith("idle in transaction") | act["waiting"].fillna(False).astype(bool)
            | (act["blocking_count"].fillna(0) > 0))
    return act[keep][["pid", "application", "user", "state", "state_duration_s", "xact_duration_s",
                      "wait_event_type", "blocked_by", "blocking_count", "query_id"]]
