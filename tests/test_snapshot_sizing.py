"""Snapshots size only the tables whose statistics moved (and all once a UTC day) and write only
the table and index rows that changed (issue 13): against real servers for what the counters and
relfilenodes catch, and on hand-made frames for what the reads give back."""
from __future__ import annotations

import sqlite3
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import vhdiag
from vhdiag.history import History
from vhdiag.history import schema as S
from vhdiag.history.snapshot import collect
from vhdiag.history.sparse import size_plan

from helpers import ensure_database

DB = "sizing_probe"


@pytest.fixture
def pg(pg):
    ensure_database(pg, DB, *[f"CREATE TABLE {t} (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = off)"
                              for t in ("touched", "untouched", "shrunk")],
                    "INSERT INTO untouched SELECT g, repeat('u', 100) FROM generate_series(1, 500) g")
    with pg.admin(DB) as conn:   # each test starts from the same contents
        conn.execute("TRUNCATE touched, shrunk")
    for table in ("touched", "shrunk"):   # and with the statistics of the TRUNCATE flushed
        _stats_show(pg, table, "n_live_tup + n_dead_tup", 0)
    return pg


def _counter(pg, table, column):
    with pg.admin(DB) as conn:
        return conn.execute(f"SELECT {column} FROM pg_stat_user_tables WHERE relname = %s", (table,)).fetchone()[0]


def _stats_show(pg, table, column, value):
    """Wait until the cumulative statistics show a finished session's writes (flushed at its exit)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _counter(pg, table, column) == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"{table}.{column} never reached {value}")


def _rows(url, snapshot_id):
    with sqlite3.connect(url) as conn:
        return dict(conn.execute('SELECT "table", sizing FROM table_stats WHERE snapshot_id = ?', (snapshot_id,)))


def _sizing(url, snapshot_id):
    with sqlite3.connect(url) as conn:
        return conn.execute("SELECT sizing FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()[0]


def _true_bytes(pg, table):
    with pg.admin(DB) as conn:
        return conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()[0]


def _end_bytes(history, table):
    return history.table_growth().set_index("table").loc[table, "end_total_bytes"]


def test_a_changed_table_is_sized_an_untouched_one_carried(pg, tmp_path):
    url = str(tmp_path / "h.sqlite")
    with vhdiag.connect(pg.dsn(DB)) as target, History(url) as history:
        first = history.snapshot(target, "probe")["snapshot_id"]
        assert _sizing(url, first) == "full"
        assert _rows(url, first) == {"touched": "sized", "untouched": "sized", "shrunk": "sized"}
        inserted = _counter(pg, "touched", "n_tup_ins")
        with pg.admin(DB) as conn:
            conn.execute("INSERT INTO touched SELECT g, repeat('t', 200) FROM generate_series(1, 2000) g")
        _stats_show(pg, "touched", "n_tup_ins", inserted + 2000)
        with history._read() as conn:
            plan = size_plan(conn, "probe", pd.Timestamp.now(tz="UTC"))
        frames = collect(target, plan)
        sized = frames["tables"].set_index("table")["sized"]
        assert (bool(sized["touched"]), bool(sized["untouched"])) == (True, False)
        assert pd.isna(frames["tables"].set_index("table").loc["untouched", "total_bytes"])
        second = history.record(frames, "probe")["snapshot_id"]
        assert _sizing(url, second) == "changed"
        assert _rows(url, second) == {"touched": "sized"}     # only the changed row is written
        assert _end_bytes(history, "touched") == _true_bytes(pg, "touched")
        assert _end_bytes(history, "untouched") == _true_bytes(pg, "untouched")   # carried forward
        # A scan moves a stored counter but not the size: the row is written, its size carried.
        scans = _counter(pg, "untouched", "seq_scan")
        with pg.admin(DB) as conn:
            conn.execute("SELECT count(*) FROM untouched")
        _stats_show(pg, "untouched", "seq_scan", scans + 1)
        third = history.snapshot(target, "probe")["snapshot_id"]
        assert _rows(url, third) == {"untouched": "carried"}
        growth = history.table_growth().set_index("table")
        assert growth.loc["untouched", "seq_scan"] == 1 and growth.loc["untouched", "samples"] == 3
        assert growth.loc["touched", "n_tup_ins"] == 2000


def test_truncate_and_vacuum_full_shrink_is_seen(pg, tmp_path):
    url = str(tmp_path / "h.sqlite")
    with vhdiag.connect(pg.dsn(DB)) as target, History(url) as history:
        deleted, inserted = _counter(pg, "shrunk", "n_tup_del"), _counter(pg, "shrunk", "n_tup_ins")
        with pg.admin(DB) as conn:
            conn.execute("INSERT INTO shrunk SELECT g, repeat('s', 200) FROM generate_series(1, 3000) g")
            conn.execute("DELETE FROM shrunk")
        _stats_show(pg, "shrunk", "n_tup_del", deleted + 3000)
        history.snapshot(target, "probe")
        full_size = _end_bytes(history, "shrunk")
        assert full_size == _true_bytes(pg, "shrunk") > 500_000
        # VACUUM FULL rewrites the table into new files: no row counter need move.
        with pg.admin(DB) as conn:
            conn.execute("VACUUM FULL shrunk")
        snap = history.snapshot(target, "probe")["snapshot_id"]
        assert _rows(url, snap).get("shrunk") == "sized"
        assert _end_bytes(history, "shrunk") == _true_bytes(pg, "shrunk") < full_size
        with pg.admin(DB) as conn:
            conn.execute("INSERT INTO shrunk SELECT g, repeat('s', 200) FROM generate_series(1, 3000) g")
        _stats_show(pg, "shrunk", "n_tup_ins", inserted + 6000)
        history.snapshot(target, "probe")
        assert _end_bytes(history, "shrunk") == _true_bytes(pg, "shrunk") > 500_000
        with pg.admin(DB) as conn:
            conn.execute("TRUNCATE shrunk")
        snap = history.snapshot(target, "probe")["snapshot_id"]
        assert _rows(url, snap).get("shrunk") == "sized"
        assert _end_bytes(history, "shrunk") == _true_bytes(pg, "shrunk") < 100_000
        assert _rows(url, snap).get("untouched") is None


def test_every_table_is_sized_once_a_day_and_growth_is_exact_there(pg, tmp_path):
    url = str(tmp_path / "h.sqlite")
    with vhdiag.connect(pg.dsn(DB)) as target, History(url) as history:
        history.snapshot(target, "probe")
        second = history.snapshot(target, "probe")["snapshot_id"]
        assert _sizing(url, second) == "changed" and _rows(url, second) == {}
        # A size the counters missed (here planted in the store) is carried until the next full
        # sizing, which the first snapshot of a new UTC day makes.
        with sqlite3.connect(url) as conn:
            conn.execute("UPDATE table_last SET total_bytes = 1 WHERE \"table\" = 'untouched'")
            conn.execute("UPDATE table_stats SET total_bytes = 1 WHERE \"table\" = 'untouched'")
        assert _end_bytes(history, "untouched") == 1
        with sqlite3.connect(url) as conn:
            conn.execute("UPDATE snapshots SET ts = strftime('%Y-%m-%d %H:%M:%f', ts, '-1 day')")
        third = history.snapshot(target, "probe")["snapshot_id"]
        assert _sizing(url, third) == "full"
        assert _rows(url, third) == {"touched": "sized", "untouched": "sized", "shrunk": "sized"}
        assert _end_bytes(history, "untouched") == _true_bytes(pg, "untouched")
        assert _sizing(url, history.snapshot(target, "probe")["snapshot_id"]) == "changed"


# -- reads: a sparse store gives the frames a store with every row gives --------------------------
T0 = pd.Timestamp("2026-11-20 00:05", tz="UTC")


def _tables(i):
    """Table a grows every snapshot, b never changes, c is dropped at 4, d appears at 3, e is
    locked (sizes skipped) at 5; scans of b move at 7."""
    rows = {"a": 8192 * (i + 1), "b": 4096, "c": 16384, "d": 8192, "e": 24576}
    names = [n for n in rows if not (n == "c" and i >= 4) and not (n == "d" and i < 3)]
    out = pd.DataFrame({"schema": "public", "table": names})
    for c in S.TABLE_FIELDS:
        out[c] = pd.array([rows[n] if c.endswith("bytes") else (i if n == "a" else 7) for n in names], dtype="Int64")
    out["seq_scan"] = pd.array([1 + (n == "b" and i >= 7) for n in names], dtype="Int64")
    out["size_skipped"] = [n == "e" and i == 5 for n in names]
    for c in ("total_bytes", "table_bytes", "index_bytes", "toast_bytes"):
        out.loc[out["size_skipped"], c] = pd.NA
    return out


def _frames(i, sparse):
    tables = _tables(i)
    ts = T0 + pd.Timedelta(hours=4 * i)
    full = not sparse or i == 0 or ts.hour < 4      # the first snapshot of each UTC day
    if not full:   # as the server returns it: only the moved tables sized
        prev = _tables(i - 1).set_index("table") if i else None
        moved = [prev is None or n not in prev.index or n == "a" or bool(prev.loc[n, "size_skipped"]) for n in tables["table"]]
        tables["sized"] = [m and not k for m, k in zip(moved, tables["size_skipped"])]
        for c in ("total_bytes", "table_bytes", "index_bytes", "toast_bytes"):
            tables.loc[~tables["sized"], c] = pd.NA
    if sparse:
        tables["sized"] = tables.get("sized", ~tables["size_skipped"])
        tables["sig"] = [f"{n}{i if n == 'a' else ''}" for n in tables["table"]]
    header = {"ts": ts, "server_version_num": 180001, "max_connections": 100,
              "postmaster_start": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_version": "1.12",
              "pgss_stats_reset": None, "pgss_dealloc": 0,
              "sizing": "full" if full else "changed"}
    return {"tables": tables, "indexes": None, "notes": [], "header": header}


def _reads(history):
    out = {}
    for since, until in ((None, None), (T0, T0 + pd.Timedelta(hours=13)), (T0 + pd.Timedelta(hours=9), None),
                         (T0 + pd.Timedelta(hours=17), T0 + pd.Timedelta(days=2))):
        out[("growth", since, until)] = history.table_growth(since, until)
        out[("series", since, until)] = history.table_series(since, until)
    return out


def _assert_same(a, b):
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], obj=str(k))


def test_sparse_rows_read_as_every_row_and_survive_retention(tmp_path):
    dense, sparse = History(str(tmp_path / "dense.sqlite")), History(str(tmp_path / "sparse.sqlite"))
    for i in range(12):
        dense.record(_frames(i, False), "t")
        sparse.record(_frames(i, True), "t")
    with sparse.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(S.table_stats)).scalar() < \
            dense.engine.connect().execute(sa.select(sa.func.count()).select_from(S.table_stats)).scalar() / 2
        kinds = set(r[0] for r in conn.execute(sa.select(S.table_stats.c.sizing).distinct()))
    assert kinds == {"sized", "carried", "skipped", "gone"}
    want = _reads(dense)
    _assert_same(want, _reads(sparse))
    growth = want[("growth", None, None)].set_index("table")
    assert growth.loc["c", "end_ts"] == T0 + pd.Timedelta(hours=12)       # dropped at 4
    assert growth.loc["b", "end_total_bytes"] == 4096 and growth.loc["b", "samples"] == 12
    # Retention: one row per table and day, none lost, reads the same.
    now = T0 + pd.Timedelta(days=3)
    for h in (dense, sparse):
        h.prune(raw_days=1, rollup_days=400, now=now)
    _assert_same(_reads(dense), _reads(sparse))
    assert set(sparse.table_growth(T0 + pd.Timedelta(hours=30), None)["table"]) == {"a", "b", "d", "e"}


def test_a_schema_3_store_is_migrated_and_reads_the_same(tmp_path):
    url = str(tmp_path / "old.sqlite")
    history = History(url)
    for i in range(8):
        history.record(_frames(i, False), "t")
    before = _reads(history)
    history.close()
    # Make it the store schema 3 wrote: no sizing columns, no last rows.
    with sqlite3.connect(url) as conn:
        conn.execute("DELETE FROM table_stats WHERE sizing = 'gone'")
        for table in ("snapshots", "table_stats", "index_stats"):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN sizing")
        conn.execute("DROP TABLE table_last")
        conn.execute("DROP TABLE index_last")
        conn.execute("UPDATE vhdiag_meta SET value = '3' WHERE key = 'schema_version'")
    history = History(url)
    with pytest.raises(vhdiag.VhdiagError):
        history.table_growth()            # a reader never migrates
    history.prune(raw_days=1000, rollup_days=4000, now=T0 + pd.Timedelta(days=2))   # prune migrates
    with sqlite3.connect(url) as conn:
        assert conn.execute("SELECT value FROM vhdiag_meta WHERE key = 'schema_version'").fetchone()[0] == str(S.SCHEMA_VERSION)
    _assert_same(before, _reads(history))
    # The next snapshots write sparse rows on top of the old ones.
    for i in range(8, 12):   # the first after the upgrade sizes every table (no last rows yet)
        history.record(_frames(i, i > 8), "t")
    growth = history.table_growth().set_index("table")
    assert growth.loc["a", "end_total_bytes"] == 8192 * 12 and growth.loc["b", "samples"] == 12
    assert "c" in growth.index and growth.loc["c", "end_ts"] == T0 + pd.Timedelta(hours=12)
