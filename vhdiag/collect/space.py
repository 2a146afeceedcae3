"""Space: which tables hold the bytes, and how much of each is dead rows.

The runbook (section 6, "Check table sizes") asks::

    SELECT schemaname, tablename, pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename))
    FROM pg_tables ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;

``tables()`` answers the same question with three differences: sizes stay numbers
(``*_bytes``; pretty strings only at display time), relations are addressed by oid rather than
by a string-built name (which breaks on mixed-case or quoted names), and partitioned tables and
materialized views are included (``pg_tables`` lists neither).

Sizes never wait on locks. ``pg_relation_size`` and its kin take an AccessShareLock on every
relation they open, so they queue behind an ACCESS EXCLUSIVE lock that another session holds
(``VACUUM FULL``, ``ALTER TABLE``, ``LOCK TABLE``, an uncommitted ``DROP INDEX``) or is waiting
for (a waiting request blocks later ones too), and vhdiag's ``lock_timeout`` would then fail the
whole collection. Instead, a table whose heap, indexes or TOAST relations appear in
``pg_locks`` with such a lock gets null sizes and ``size_skipped`` true; everything else in its
row comes from the catalogs and statistics views, which take no such lock. The Target gets a
notice naming the skipped tables (``vhdiag show tables`` prints it as a ``Note:`` line, a
snapshot records it with the snapshot), so blank sizes are never a silent mystery.

Counters (``n_*``, ``seq_*``, ``idx_*``) are cumulative since the last statistics reset
(``pg_stat_reset()``) and local to this server: a standby counts its own scans.
"""
from __future__ import annotations

import pandas as pd

from . import _base
from .registry import collector
from .sizing import SizePlan

COLUMNS = {
    "schema": "string",
    "table": "string",
    "relkind": "string",           # pg_class.relkind: r, p or m
    "kind": "string",              # table, partitioned table, materialized view
    "total_bytes": "int",          # table_bytes + index_bytes + toast_bytes = pg_total_relation_size
    "table_bytes": "int",          # heap: main, free space map, visibility map and init forks
    "index_bytes": "int",          # pg_indexes_size: every index, all forks
    "toast_bytes": "int",          # the TOAST table and its index; 0 without one
    "size_skipped": "bool",        # locked ACCESS EXCLUSIVE by another session: sizes are null
    "estimated_rows": "int",       # pg_class.reltuples; null before the first VACUUM/ANALYZE (PG 14+)
    "n_live_tup": "int",
    "n_dead_tup": "int",
    "dead_tup_pct": "float",       # 100 * dead / (live + dead); null when both are 0
    "seq_scan": "int",
    "seq_tup_read": "int",
    "idx_scan": "int",             # null for a table without indexes
    "idx_tup_fetch": "int",
    "n_tup_ins": "int",
    "n_tup_upd": "int",
    "n_tup_del": "int",
    "n_tup_hot_upd": "int",
    "n_tup_newpage_upd": "int",    # PostgreSQL 16+; null before
    "last_seq_scan": "ts",         # PostgreSQL 16+; null before (and when never scanned)
}
# Added to the query's columns by tables(): cache hits (pg_statio_user_tables) and the heap bloat
# estimate of the capacity report (vhdiag/analysis/capacity_maintenance.py BLOAT_METHOD).
EXTRA_COLUMNS = {
    "heap_hit_pct": "float",       # heap blocks found in shared buffers, % of those asked for
    "index_hit_pct": "float",      # the same for its indexes; null without index reads
    "bloat_pct": "float",          # estimated: dead rows' share of the rows
    "bloat_bytes": "int",          # estimated: that share of table_bytes
    "bloat_method": "string",      # how the estimate is made
}


# What a snapshot keeps of each table (history table_stats), from space_tables_snapshot.sql:
# ``sized`` says whether its sizes were taken now; ``sig`` is its signature (sizing.py).
SNAPSHOT_COLUMNS = {**{c: COLUMNS[c] for c in ("schema", "table", "total_bytes", "table_bytes", "index_bytes",
                                                "toast_bytes", "size_skipped")},
                    "sized": "bool",
                    **{c: COLUMNS[c] for c in ("n_live_tup", "n_dead_tup", "seq_scan", "seq_tup_read", "idx_scan",
                                               "n_tup_ins", "n_tup_upd", "n_tup_del")},
                    "sig": "string"}


def for_snapshot(target, plan: SizePlan | None = None) -> pd.DataFrame:
    """Every table with what a snapshot stores (SNAPSHOT_COLUMNS), sized only where ``plan``
    says (every table by default): the others have null sizes and ``sized`` false."""
    plan = plan or SizePlan()
    params = plan.params(target)
    frame = _base.query_skipping_locks(target, _base.load_sql("space_tables_snapshot"), params=params)
    _, sigs = plan.choose(target)
    frame["sig"] = [sigs.get(k) for k in zip(frame["schema"], frame["table"])]
    frame = _base.typed(frame, SNAPSHOT_COLUMNS)
    note = skipped_note(frame)
    if note:
        target.notice(f"tables:size_skipped:{note}", note)
    return frame


@collector(name="tables", snapshot=True, snapshot_function=for_snapshot,
           description="every user table: total, heap, index and TOAST bytes, live and dead rows, scans",
           columns=["schema", "table", "total_bytes", "table_bytes", "index_bytes", "toast_bytes",
                    "n_live_tup", "n_dead_tup", "seq_scan", "seq_tup_read", "idx_scan"])
def tables(target) -> pd.DataFrame:
    """Every user table, partitioned table and materialized view, largest first.

    One row per relation outside ``pg_catalog``, ``information_schema`` and the TOAST schemas,
    with the columns of ``COLUMNS`` and ``EXTRA_COLUMNS`` (cache hits, the bloat estimate). Tables locked ACCESS EXCLUSIVE by another session come last,
    with null sizes and ``size_skipped`` true.
    """
    from ..analysis.capacity_maintenance import BLOAT_METHOD, heap_bloat_estimate
    sql = _base.pick_sql("space_tables", target.capabilities.server_version_num)
    frame = _base.typed(_base.query_skipping_locks(target, sql), COLUMNS)
    statio = target.query(_base.load_sql("space_statio"))
    frame = frame.merge(_base.typed(statio, {"schema": "string", "table": "string", "heap_hit_pct": "float",
                                             "index_hit_pct": "float"}), on=["schema", "table"], how="left")
    frame[["bloat_pct", "bloat_bytes"]] = heap_bloat_estimate(frame)
    frame["bloat_method"] = BLOAT_METHOD
    frame = _base.typed(frame, {**COLUMNS, **EXTRA_COLUMNS})
    note = skipped_note(frame)
    if note:
        target.notice(f"tables:size_skipped:{note}", note)
    return frame


def skipped_note(frame: pd.DataFrame) -> str | None:
    """The one line that says which tables have null sizes because of a lock, or None."""
    if "size_skipped" not in frame:
        return None
    skipped = frame[frame["size_skipped"].fillna(False)]
    if not len(skipped):
        return None
    names = ", ".join(f"{s}.{t}" for s, t in zip(skipped["schema"], skipped["table"]))
    return f"sizes skipped (locked ACCESS EXCLUSIVE by another session): {names}"
