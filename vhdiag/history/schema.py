"""The history store's tables, and the migrations that bring an older store up to date.

Why not Alembic: the store is created by the tool itself on first use, on SQLite or
PostgreSQL, with no migration directory for users to carry around. A recorded schema version
plus an ordered list of Python steps (``MIGRATIONS``) does the job in one screen; Alembic's
env.py/script directory would be more machinery than schema.

Timestamps are stored as UTC (timezone-aware on PostgreSQL, ISO text on SQLite) and
come back tz-aware from every read.

Changelog of SCHEMA_VERSION:
1. targets, snapshots, statements (text once per statement), statement deltas and last
   cumulative values, table/index/database stats, activity counts, hourly/daily roll-ups.
2. what an incident's post-mortem needs of each snapshot: ``setting_values`` (the settings not at
   their default, so a configuration change between snapshots shows), ``connection_counts``
   (connections by application and state) and ``activity_sessions`` (sessions idle in
   transaction, waiting on a lock or blocking one: who blocked whom, by application).
3. ``check_results``: what each ``vhdiag check`` run found (status, evidence, fix, and the subjects
   it saw), so the next run can say what is new "since the previous check".
4. sparse table and index rows (vhdiag/collect/sizing.py, history/sparse.py): ``snapshots.sizing``
   (``full``: every table sized and every row written; ``changed``: only the tables whose
   statistics moved were sized and only changed rows written; NULL before version 4, when every
   snapshot wrote every row, or when no table was collected), ``table_stats.sizing`` and
   ``index_stats.sizing`` (``sized``: measured by this snapshot; ``carried``: the last size
   carried forward; ``skipped``: locked, no size; ``gone``: the relation was dropped; NULL
   before version 4), and
   ``table_last``/``index_last``, each target's last written rows (and each table's signature),
   which the next snapshot diffs against.
5. ``statement_sums`` and ``statement_sum_spans``: the statement deltas of each complete hour and
   day, summed once (history/sums.py), so a week's read sums 7 days' rows, not 672 snapshots';
   and ``statement_deltas_noted``, a partial index on the few delta rows with a note.
"""
from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 5

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

meta = sa.Table(
    "vhdiag_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

targets = sa.Table(
    "targets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", TS, nullable=False),
)

snapshots = sa.Table(
    "snapshots", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("interval_s", sa.Float),           # since the previous snapshot of this target
    sa.Column("server_version_num", sa.Integer),
    sa.Column("postmaster_start", TS),
    sa.Column("pgss_version", sa.String(16)),
    sa.Column("reads_all_stats", sa.Boolean),     # could the role see every statement's queryid?
    sa.Column("pgss_stats_reset", TS),            # pg_stat_statements_info.stats_reset (1.9+)
    sa.Column("pgss_dealloc", sa.BigInteger),     # pg_stat_statements_info.dealloc (1.9+)
    sa.Column("max_connections", sa.Integer),
    sa.Column("events", sa.String(200), nullable=False, default=""),  # baseline,reset,restart,...
    sa.Column("notes", sa.Text, nullable=False, default=""),          # what was skipped and why
    sa.Column("duration_ms", sa.Float),
    sa.Column("sizing", sa.String(8)),            # version 4: full, changed; NULL: every row written
    sa.Index("snapshots_target_ts", "target_id", "ts"),
)

statements = sa.Table(
    "statements", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), nullable=False),
    # pg_stat_statements' own key: (userid, dbid, queryid, toplevel)
    sa.Column("userid", sa.BigInteger, nullable=False),
    sa.Column("dbid", sa.BigInteger, nullable=False),
    sa.Column("queryid", sa.BigInteger, nullable=False),
    sa.Column("toplevel", sa.Boolean, nullable=False),
    sa.Column("user", sa.String(128)),
    sa.Column("database", sa.String(128)),
    sa.Column("query", sa.Text),
    sa.Column("first_seen", TS, nullable=False),
    sa.UniqueConstraint("target_id", "userid", "dbid", "queryid", "toplevel", name="statements_key"),
)

# Counters kept per statement: cumulative in statement_last, per interval in statement_deltas.
# sumsq_exec_ms2 is calls * (stddev^2 + mean^2): it makes the stddev of a window computable.
STATEMENT_COUNTERS = [
    "calls", "plans", "total_exec_ms", "total_plan_ms", "sumsq_exec_ms2", "rows",
    "shared_blks_hit", "shared_blks_read", "shared_blks_dirtied", "shared_blks_written",
    "local_blks_hit", "local_blks_read", "temp_blks_read", "temp_blks_written",
    "shared_blk_read_ms", "shared_blk_write_ms", "temp_blk_read_ms", "temp_blk_write_ms",
    "wal_records", "wal_fpi", "wal_bytes",
]
_FLOAT_COUNTERS = {"total_exec_ms", "total_plan_ms", "sumsq_exec_ms2", "shared_blk_read_ms",
                   "shared_blk_write_ms", "temp_blk_read_ms", "temp_blk_write_ms"}


def _counter_columns():
    return [sa.Column(c, sa.Float if c in _FLOAT_COUNTERS else sa.BigInteger) for c in STATEMENT_COUNTERS]


statement_last = sa.Table(
    "statement_last", metadata,
    sa.Column("statement_id", sa.Integer, sa.ForeignKey("statements.id"), primary_key=True),
    sa.Column("snapshot_id", sa.Integer, nullable=False),
    sa.Column("stats_since", TS),
    *_counter_columns(),
)

statement_deltas = sa.Table(
    "statement_deltas", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("statement_id", sa.Integer, sa.ForeignKey("statements.id"), primary_key=True),
    *_counter_columns(),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("note", sa.String(64), nullable=False, default=""),
    # Version 4: a window's notes are read from the few rows that have one (reads._notes).
    sa.Index("statement_deltas_noted", "snapshot_id",
             sqlite_where=sa.text("note != ''"), postgresql_where=sa.text("note != ''")),
)

TABLE_FIELDS = ["total_bytes", "table_bytes", "index_bytes", "toast_bytes", "n_live_tup", "n_dead_tup",
                "seq_scan", "seq_tup_read", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del"]

table_stats = sa.Table(
    "table_stats", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("schema", sa.String(128), primary_key=True),
    sa.Column("table", sa.String(128), primary_key=True),
    *[sa.Column(c, sa.BigInteger) for c in TABLE_FIELDS],
    sa.Column("size_skipped", sa.Boolean, nullable=False, default=False),
    sa.Column("sizing", sa.String(8)),            # version 4: sized, carried, skipped, gone
)

index_stats = sa.Table(
    "index_stats", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("schema", sa.String(128), primary_key=True),
    sa.Column("index", sa.String(128), primary_key=True),
    sa.Column("table", sa.String(128), nullable=False),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("scans", sa.BigInteger),
    sa.Column("sizing", sa.String(8)),            # version 4: sized, carried, skipped, gone
)

# Version 4: each target's last written table and index rows, what the next snapshot diffs
# against (the rows themselves are written only when they change).
table_last = sa.Table(
    "table_last", metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), primary_key=True),
    sa.Column("schema", sa.String(128), primary_key=True),
    sa.Column("table", sa.String(128), primary_key=True),
    *[sa.Column(c, sa.BigInteger) for c in TABLE_FIELDS],
    sa.Column("size_skipped", sa.Boolean, nullable=False, default=False),
    sa.Column("sig", sa.String(32)),              # space_signatures.sql; NULL: size it next time
)

index_last = sa.Table(
    "index_last", metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), primary_key=True),
    sa.Column("schema", sa.String(128), primary_key=True),
    sa.Column("index", sa.String(128), primary_key=True),
    sa.Column("table", sa.String(128), nullable=False),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("scans", sa.BigInteger),
)

DATABASE_FIELDS = ["size_bytes", "numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit",
                   "tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted",
                   "conflicts", "temp_files", "temp_bytes", "deadlocks"]

database_stats = sa.Table(
    "database_stats", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("database", sa.String(128), primary_key=True),
    *[sa.Column(c, sa.BigInteger) for c in DATABASE_FIELDS],
    sa.Column("stats_reset", TS),
)

activity_counts = sa.Table(
    "activity_counts", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("state", sa.String(64), primary_key=True),
    sa.Column("connections", sa.Integer, nullable=False),
)

# Version 2: the post-mortem's view of a snapshot (runbook 3 "Post-Mortem": document the incident).
setting_values = sa.Table(
    "setting_values", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text),                  # setting with its unit: "64MB", "on"
    sa.Column("source", sa.String(64)),
)

connection_counts = sa.Table(
    "connection_counts", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("application", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(64), primary_key=True),
    sa.Column("connections", sa.Integer, nullable=False),
)

activity_sessions = sa.Table(
    "activity_sessions", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id"), primary_key=True),
    sa.Column("pid", sa.Integer, primary_key=True),
    sa.Column("application", sa.String(128)),
    sa.Column("user", sa.String(128)),
    sa.Column("state", sa.String(64)),
    sa.Column("state_duration_s", sa.Float),
    sa.Column("xact_duration_s", sa.Float),
    sa.Column("wait_event_type", sa.String(64)),
    sa.Column("blocked_by", sa.String(500)),      # "123,456"
    sa.Column("blocking_count", sa.Integer),
    sa.Column("query_id", sa.BigInteger),         # no query text: it may carry literals
)

# Version 3: `vhdiag check morning|evening` results (runbook "Daily Operations" checklists).
check_results = sa.Table(
    "check_results", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), nullable=False),
    sa.Column("ts", TS, nullable=False),          # when the run started; one value per run
    sa.Column("kind", sa.String(16), nullable=False),      # morning, evening
    sa.Column("check", sa.String(64), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),     # pass, warn, fail
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("fix", sa.Text, nullable=False, default=""),
    sa.Column("items", sa.Text, nullable=False, default="[]"),  # JSON list of subjects seen
    sa.Index("check_results_target_ts", "target_id", "ts"),
)

SNAPSHOT_TABLES = (setting_values, connection_counts, activity_sessions)   # pruned with the raw snapshots

metric_points = sa.Table(
    "metric_points", metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), primary_key=True),
    sa.Column("metric", sa.String(128), primary_key=True),
    sa.Column("labels", sa.String(500), primary_key=True),
    sa.Column("ts", TS, primary_key=True),
    sa.Column("value", sa.Float),
)

# Roll-ups: what retention keeps once raw snapshots are pruned.
statement_hourly = sa.Table(
    "statement_hourly", metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), primary_key=True),
    sa.Column("hour", TS, primary_key=True),
    sa.Column("statement_id", sa.Integer, sa.ForeignKey("statements.id"), primary_key=True),
    *_counter_columns(),
    sa.Column("intervals", sa.Integer, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("note", sa.String(200), nullable=False, default=""),
)

# Version 4: per statement, the deltas of one complete hour or day (history/sums.py): the
# snapshots with start < ts <= start + span_s. ``statement_sum_spans`` lists the spans summed
# (a span whose statements all stood still has no statement_sums rows, and is still summed).
statement_sums = sa.Table(
    "statement_sums", metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), primary_key=True),
    sa.Column("span_s", sa.Integer, primary_key=True),
    sa.Column("start", TS, primary_key=True),
    sa.Column("statement_id", sa.Integer, sa.ForeignKey("statements.id"), primary_key=True),
    *_counter_columns(),
    sa.Column("intervals", sa.Integer, nullable=False),
    sa.Column("complete", sa.Integer, nullable=False),     # 1 when every interval was complete
    sa.Column("first_ts", TS, nullable=False),
    sa.Column("last_ts", TS, nullable=False),
    sqlite_with_rowid=False,   # the rows in key order, no second copy of the key in an index
)

statement_sum_spans = sa.Table(
    "statement_sum_spans", metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id"), primary_key=True),
    sa.Column("span_s", sa.Integer, primary_key=True),
    sa.Column("start", TS, primary_key=True),
)


def create_all(conn) -> None:
    metadata.create_all(conn)


# version -> function(conn) bringing a store at version-1 to version. Append, never edit.
def _v2(conn) -> None:
    for table in (setting_values, connection_counts, activity_sessions):
        table.create(conn, checkfirst=True)


def _v3(conn) -> None:
    check_results.create(conn, checkfirst=True)


def _v4(conn) -> None:
    # Rows written before stay as they are (every snapshot has every row: sizing NULL reads as
    # such); the first snapshot after the upgrade finds no table_last and sizes everything.
    for table, column in ((snapshots, "sizing"), (table_stats, "sizing"), (index_stats, "sizing")):
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {prep.quote(column)} VARCHAR(8)")
    for table in (table_last, index_last):
        table.create(conn, checkfirst=True)


def _v5(conn) -> None:
    statement_sums.create(conn, checkfirst=True)
    statement_sum_spans.create(conn, checkfirst=True)
    for index in statement_deltas.indexes:
        index.create(conn, checkfirst=True)


MIGRATIONS: dict[int, callable] = {2: _v2, 3: _v3, 4: _v4, 5: _v5}

# Tables a migration dropped or renamed: an older store still has them, and they are vhdiag's
# (history/guard.py refuses a database holding any other table).
RETIRED_TABLES: frozenset[str] = frozenset()
