"""Writing a snapshot: one transaction per snapshot, deltas computed as it is written.

``SnapshotWriter`` is the write half of ``History`` (vhdiag/history/store.py): the target is
locked, the previous snapshot read, events detected, statement deltas and sizes written, and a
snapshot killed halfway leaves nothing. Table and index rows are written only when they change
(history/sparse.py).
"""
from __future__ import annotations

import os
import time

import pandas as pd
import sqlalchemy as sa

from ..dsn import short_target_name
from ..errors import VhdiagError
from ..redact import redact_secrets
from . import names
from . import schema as S
from . import sparse
from .deltas import KEY, add_sumsq, detect_events, statement_deltas
from .values import plain_column, py_value, records, utc_frame

CHUNK = 500  # rows per IN (...) list; SQLite allows 32766 parameters, old builds 999


class SnapshotWriter:
    """The write half of ``History``; it uses the store's ``_write()``, ``is_sqlite`` and
    ``_statement_ids``."""

    def record(self, frames: dict, name: str) -> dict:
        """Write collected frames as one snapshot of target ``name`` (one transaction)."""
        started = time.perf_counter()
        header = dict(frames["header"])
        with self._write() as conn, conn.begin():
            target_id = self._lock_target(conn, name)
            prev = conn.execute(
                sa.select(S.snapshots).where(S.snapshots.c.target_id == target_id)
                .order_by(S.snapshots.c.ts.desc()).limit(1)).mappings().first()
            recent = [r for (r,) in conn.execute(
                sa.select(S.snapshots.c.interval_s).where(S.snapshots.c.target_id == target_id,
                                                         S.snapshots.c.interval_s.isnot(None))
                .order_by(S.snapshots.c.ts.desc()).limit(20))]
            prev_ts = None
            if prev is not None:
                prev_ts = pd.Timestamp(prev["ts"])
                prev_ts = prev_ts.tz_localize("UTC") if prev_ts.tzinfo is None else prev_ts
                header["interval_s"] = (header["ts"] - prev_ts).total_seconds()
                if header["interval_s"] <= 0:
                    # Another snapshot, collected after this one began, was written first.
                    raise VhdiagError(f"a newer snapshot of {name} ({prev_ts:%Y-%m-%d %H:%M:%S} UTC) was "
                                      "recorded while this one was collected; this one was dropped: "
                                      "nothing to do, or check that the clocks agree")
            events = detect_events(dict(prev) if prev else None, header, recent)
            # Every table sized (a frame collected without a plan is): every row is written.
            sizing = header.get("sizing", "full") if frames.get("tables") is not None else None
            snap_id = conn.execute(S.snapshots.insert().values(
                target_id=target_id, ts=py_value(header["ts"]), interval_s=header.get("interval_s"),
                server_version_num=header["server_version_num"],
                postmaster_start=py_value(header["postmaster_start"]), pgss_version=header.get("pgss_version"),
                reads_all_stats=header.get("reads_all_stats"),
                pgss_stats_reset=py_value(header.get("pgss_stats_reset")), pgss_dealloc=py_value(header.get("pgss_dealloc")),
                max_connections=py_value(header.get("max_connections")), events=",".join(events),
                notes="; ".join(frames.get("notes", [])), duration_ms=None, sizing=sizing,
            )).inserted_primary_key[0]
            _fault_point("write")
            n_changed = self._write_statements(conn, target_id, snap_id, frames.get("statements"),
                                               events, header["ts"], prev_ts)
            sparse.write_tables(self, conn, target_id, snap_id, frames.get("tables"), sizing == "full")
            sparse.write_indexes(self, conn, target_id, snap_id, frames.get("indexes"), sizing == "full")
            self._write_simple(conn, S.database_stats, snap_id, frames.get("database"),
                               ["database", *S.DATABASE_FIELDS, "stats_reset"])
            self._write_simple(conn, S.activity_counts, snap_id, frames.get("activity"),
                               ["state", "connections"])
            self._write_simple(conn, S.setting_values, snap_id, frames.get("settings"), ["name", "value", "source"])
            self._write_simple(conn, S.connection_counts, snap_id, frames.get("connection_counts"),
                               ["application", "state", "connections"])
            self._write_simple(conn, S.activity_sessions, snap_id, frames.get("sessions"),
                               ["pid", "application", "user", "state", "state_duration_s", "xact_duration_s",
                                "wait_event_type", "blocked_by", "blocking_count", "query_id"])
            duration = (time.perf_counter() - started) * 1000
            conn.execute(S.snapshots.update().where(S.snapshots.c.id == snap_id)
                         .values(duration_ms=duration + header.get("collect_ms", 0)))
        return {"snapshot_id": snap_id, "target": name, "ts": header["ts"], "events": events,
                "statements_changed": n_changed, "notes": frames.get("notes", []),
                "write_ms": (time.perf_counter() - started) * 1000}

    def _lock_target(self, conn, name: str) -> int:
        row = conn.execute(sa.select(S.targets.c.id).where(S.targets.c.name == name)
                           .with_for_update() if not self.is_sqlite else
                           sa.select(S.targets.c.id).where(S.targets.c.name == name)).first()
        if row:
            return row[0]
        old = names.find(conn, name)
        if old is not None:
            # An older store's name for this target (``[socket /dir]:5432/db``): it becomes the
            # name given, and the history goes on under it (names.py says why).
            if not self.is_sqlite:
                conn.execute(sa.select(S.targets.c.id).where(S.targets.c.id == old[0]).with_for_update())
            if short_target_name(name) == name:
                conn.execute(S.targets.update().where(S.targets.c.id == old[0]).values(name=name))
            return old[0]
        if not self.is_sqlite:
            from sqlalchemy.dialects.postgresql import insert
            conn.execute(insert(S.targets).values(name=name, created_at=pd.Timestamp.now(tz="UTC").to_pydatetime())
                         .on_conflict_do_nothing(index_elements=["name"]))
            return conn.execute(sa.select(S.targets.c.id).where(S.targets.c.name == name).with_for_update()).scalar_one()
        return conn.execute(S.targets.insert().values(
            name=name, created_at=pd.Timestamp.now(tz="UTC").to_pydatetime())).inserted_primary_key[0]

    def _write_simple(self, conn, table, snap_id, frame, columns) -> None:
        if frame is None or frame.empty:
            return
        if self.is_sqlite and not any(isinstance(table.c[c].type, sa.DateTime) for c in columns):
            # Tuples straight to sqlite3's executemany: SQLAlchemy's per-row parameter handling
            # was most of the write at 10,000 tables and 20,000 indexes, and these columns
            # (text, integers, booleans) need none of its type processing on SQLite.
            prep = conn.dialect.identifier_preparer
            names = ", ".join(prep.quote(c) for c in ["snapshot_id", *columns])
            marks = ", ".join("?" * (len(columns) + 1))
            values = [plain_column(frame[c]) for c in columns]
            conn.exec_driver_sql(f"INSERT INTO {prep.format_table(table)} ({names}) VALUES ({marks})",
                                 list(zip([snap_id] * len(frame), *values)))
            return
        rows = records(frame, columns)
        for r in rows:
            r["snapshot_id"] = snap_id
        conn.execute(table.insert(), rows)

    def _write_statements(self, conn, target_id, snap_id, frame, events, ts, prev_ts=None) -> int:
        if frame is None or frame.empty:
            return 0
        cur = frame[frame["queryid"].notna()].copy()  # hidden rows have no key to follow
        cur["toplevel"] = cur["toplevel"].fillna(True).astype(bool)
        for c in S.STATEMENT_COUNTERS:  # a frame without a counter (a hand-made one) stores NULL
            if c not in cur:
                cur[c] = pd.NA
        if "stats_since" not in cur:
            cur["stats_since"] = pd.NaT
        cur = add_sumsq(cur)
        ids = self._statement_ids(conn, target_id, cur, ts)
        cur["statement_id"] = [ids[k] for k in zip(*(cur[c].astype(object) for c in KEY))]
        prev = pd.read_sql(
            sa.select(S.statement_last, S.statements.c.userid, S.statements.c.dbid, S.statements.c.queryid,
                      S.statements.c.toplevel)
            .join(S.statements, S.statements.c.id == S.statement_last.c.statement_id)
            .where(S.statements.c.target_id == target_id), conn)
        prev_ids = set(int(i) for i in prev["statement_id"])
        prev = prev.drop(columns=["statement_id", "snapshot_id"])
        utc_frame(prev, "stats_since")
        cur_keyed = cur[KEY + S.STATEMENT_COUNTERS + ["stats_since", "statement_id"]]
        for c in ("userid", "dbid", "queryid"):
            prev[c] = prev[c].astype("int64")
            cur_keyed = cur_keyed.assign(**{c: cur_keyed[c].astype("int64")})
        prev["toplevel"] = prev["toplevel"].astype(bool)
        deltas = statement_deltas(prev, cur_keyed, events, prev_ts)
        # What to remember: every statement whose counters differ from what we hold (or that we
        # did not hold). Statements no longer in the view are forgotten: if one comes back it
        # was re-created after the previous snapshot, so counting it from zero is exact, and
        # statement_last stays as small as the view (pg_stat_statements.max).
        known = cur_keyed.merge(prev[KEY + ["calls", "total_exec_ms", "plans", "rows"]], on=KEY, how="left",
                                suffixes=("", "_prev"), indicator=True)
        same = known["_merge"] == "both"
        for c in ("calls", "total_exec_ms", "plans", "rows"):
            same &= (known[c].astype("Float64").fillna(-1) == known[c + "_prev"].astype("Float64").fillna(-1)).astype(bool)
        changed = cur_keyed[~same.to_numpy()]
        gone = prev_ids - set(int(i) for i in cur_keyed["statement_id"])
        if not deltas.empty:
            deltas = deltas.merge(cur_keyed[KEY + ["statement_id"]], on=KEY)
            rows = records(deltas, ["statement_id", *S.STATEMENT_COUNTERS, "complete", "note"])
            for r in rows:
                r["snapshot_id"] = snap_id
            conn.execute(S.statement_deltas.insert(), rows)
        # The new cumulative values replace the old ones for what changed.
        changed_ids = [int(i) for i in changed["statement_id"]] + sorted(gone)
        for i in range(0, len(changed_ids), CHUNK):
            conn.execute(S.statement_last.delete().where(S.statement_last.c.statement_id.in_(changed_ids[i:i + CHUNK])))
        rows = records(changed, ["statement_id", "stats_since", *S.STATEMENT_COUNTERS])
        for r in rows:
            r["snapshot_id"] = snap_id
        if rows:
            conn.execute(S.statement_last.insert(), rows)
        return len(deltas)

    def _statement_ids(self, conn, target_id, cur, ts) -> dict:
        """(userid, dbid, queryid, toplevel) -> statements.id; new statements get their text stored once."""
        known = {}
        for sid, u, d, q, t in conn.execute(sa.select(S.statements.c.id, S.statements.c.userid, S.statements.c.dbid,
                                                      S.statements.c.queryid, S.statements.c.toplevel)
                                            .where(S.statements.c.target_id == target_id)):
            known[(int(u), int(d), int(q), bool(t))] = sid
        keys = [(int(u), int(d), int(q), bool(t)) for u, d, q, t in zip(*(cur[c].astype(object) for c in KEY))]
        new = [i for i, k in enumerate(keys) if k not in known]
        if new:
            sub = cur.iloc[new]
            rows = records(sub, ["userid", "dbid", "queryid", "toplevel", "user", "database", "query"])
            for r in rows:
                r["target_id"] = target_id
                r["first_seen"] = ts.to_pydatetime()
                r["query"] = redact_secrets(r["query"])  # whatever frame a caller passes
            result = conn.execute(S.statements.insert().returning(S.statements.c.id, sort_by_parameter_order=True), rows)
            for i, (sid,) in zip(new, result):
                known[keys[i]] = sid
        return {k: known[k] for k in keys}

    # -- reading ---------------------------------------------------------------------------


def _fault_point(name: str) -> None:
    """Tests kill a snapshot here, mid-transaction, for real: VHDIAG_FAULT_PAUSE=write:SECONDS."""
    spec = os.environ.get("VHDIAG_FAULT_PAUSE", "")
    if spec.startswith(name + ":"):
        time.sleep(float(spec.split(":", 1)[1]))
