"""A snapshot at scale: 10,000 tables (or 100,000 relations) and 5,000 statements, against raw SQL.

Starts an embedded PostgreSQL whose data directory is kept under /tmp between runs (building
10,000 tables takes a minute; 100,000 relations several), with ``--tables`` tables of (id int
PRIMARY KEY, k int, v text) plus an index on k, or with ``--partitions`` partitions spread over
``--parents`` partitioned tables, and ``--statements`` distinct statements in pg_stat_statements.

Then, ``--runs`` times each (min and median printed, with the load average):

- **raw**: the exact statements a snapshot's collection sends (captured from vhdiag's engine on a
  warm-up collection), run once each through a plain psycopg connection, rows fetched as tuples:
  the plainest alternative, and the floor vhdiag's client side adds to. Twice: the statements of
  a snapshot that sizes only the tables whose statistics moved (none here: the workload is idle
  between snapshots), and those of the day's full sizing (every table, as every snapshot did
  before schema 4);
- **collect**: ``vhdiag.history.snapshot.collect(target)`` on an open Target (every snapshot
  collector, typed frames), with the time per collector, and the server time of vhdiag's own
  statements (pg_stat_statements' total_exec_time of the marked statements, before and after);
- **record**: ``History.record`` of those frames into an SQLite store holding earlier snapshots;
- **snapshot**: ``History(url).snapshot(vhdiag.connect(dsn))`` in process: connect, collect, record;
- **cli**: ``python -m vhdiag snapshot`` as a subprocess (interpreter start and imports included);
- **store**: bytes the SQLite store grows by per snapshot, when every snapshot sizes every table
  and writes every row (``full``: what vhdiag did before schema 4) and when it writes only
  changed rows.

``--profile`` prints cProfile's top functions of one collect + record.

    /work/main/.venv/bin/python benchmarks/snapshot_scale.py --tables 10000 --statements 5000 --runs 5
    /work/main/.venv/bin/python benchmarks/snapshot_scale.py --parents 200 --partitions 20000 --runs 3
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
import psycopg.sql  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import vhdiag  # noqa: E402
from vhdiag.history import History  # noqa: E402
from vhdiag.history import snapshot as snapshot_mod  # noqa: E402
from vhdiag.marker import MARKER  # noqa: E402
from vhdiag.binaries import embedded_bin_dir  # noqa: E402
from vhdiag.server import LocalServer  # noqa: E402

DB = "bench"
CHUNK = 250  # tables per DO block: each holds its new relations' locks until it commits


def build(server: LocalServer, args) -> None:
    with server.admin() as conn:
        # A reused data directory: this run's LocalServer made up another password.
        conn.execute("SET pg_stat_statements.track_utility = off")
        conn.execute(psycopg.sql.SQL("ALTER ROLE postgres PASSWORD {}").format(server.password))
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            return
        conn.execute(f"CREATE DATABASE {DB}")
    began = time.perf_counter()
    with server.admin(DB) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        if args.partitions:
            per = args.partitions // args.parents
            for p in range(args.parents):
                conn.execute(f"CREATE TABLE p_{p} (id int, k int, v text, PRIMARY KEY (id)) PARTITION BY RANGE (id)")
                conn.execute(f"CREATE INDEX ON p_{p} (k)")
                for start in range(0, per, CHUNK):
                    conn.execute(f"""DO $$ BEGIN FOR i IN {start}..{min(start + CHUNK, per) - 1} LOOP
                        EXECUTE format('CREATE TABLE p_{p}_%s PARTITION OF p_{p} FOR VALUES FROM (%s) TO (%s)',
                                       i, i * 10, i * 10 + 10);
                        END LOOP; END $$""")
                conn.execute(f"INSERT INTO p_{p} SELECT g, g % 7, 'row ' || g FROM generate_series(0, {per * 10 - 1}) g")
                print(f"  parent {p + 1}/{args.parents} built, {time.perf_counter() - began:.0f} s", flush=True)
            names = [f"p_{i % args.parents}" for i in range(args.statements)]
        else:
            for start in range(0, args.tables, CHUNK):
                conn.execute(f"""DO $$ BEGIN FOR i IN {start}..{min(start + CHUNK, args.tables) - 1} LOOP
                    EXECUTE format('CREATE TABLE t_%s (id int PRIMARY KEY, k int, v text)', i);
                    EXECUTE format('CREATE INDEX ON t_%s (k)', i);
                    EXECUTE format('INSERT INTO t_%s SELECT g, g %% 7, ''row '' || g FROM generate_series(1, 5) g', i);
                    END LOOP; END $$""")
                if (start // CHUNK) % 8 == 7:
                    print(f"  {start + CHUNK} tables built, {time.perf_counter() - began:.0f} s", flush=True)
            names = [f"t_{i % args.tables}" for i in range(args.statements)]
        conn.execute("ANALYZE")
        # Distinct statements: another table, or another column list (constants are normalized away).
        conn.execute("SELECT pg_stat_statements_reset()")
        with conn.pipeline():
            for i, name in enumerate(names):
                cols = ", ".join(["id"] + ["k"] * (i // len(set(names))))
                conn.execute(f"SELECT {cols} FROM {name} WHERE id = 1")
    print(f"built in {time.perf_counter() - began:.0f} s", flush=True)


def counts(server: LocalServer) -> str:
    with server.admin(DB) as conn:
        rel = conn.execute("SELECT count(*) FILTER (WHERE relkind IN ('r', 'p')), count(*) FILTER (WHERE relkind IN ('i', 'I')),"
                           " count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')").fetchone()
        stmts = conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0]
    return f"{rel[0]} tables, {rel[1]} indexes, {rel[2]} relations in pg_class (TOAST included), {stmts} statements"


def plan_for(store: str):
    """The size plan History.snapshot would make now for target "bench"."""
    from vhdiag.history.sparse import size_plan
    history = History(store)
    try:
        with history._read() as conn:
            return size_plan(conn, "bench", __import__("pandas").Timestamp.now(tz="UTC"))
    finally:
        history.close()


def capture(target, plan=None) -> list[tuple[str, object]]:
    """The statements one collection sends, with their parameters (a warm-up collection)."""
    sent: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    sa.event.listen(target.engine, "before_cursor_execute", record)
    try:
        snapshot_mod.collect(target, plan)
    finally:
        sa.event.remove(target.engine, "before_cursor_execute", record)
    return sent


def raw(conn: psycopg.Connection, sent) -> float:
    """Every captured statement once through a plain psycopg connection (open and warm, as the
    Target's pooled connection is), in one read-only transaction."""
    began = time.perf_counter()
    for statement, parameters in sent:
        conn.execute(statement, parameters or None).fetchall()
    elapsed = time.perf_counter() - began
    conn.rollback()
    return elapsed


def raw_cold(dsn: str, sent) -> float:
    """The same, on a new connection (connect included), as a snapshot process meets the server:
    a new backend loads the catalog entries of every relation it sizes."""
    began = time.perf_counter()
    with psycopg.connect(dsn, application_name="bench-raw") as conn:
        conn.read_only = True
        for statement, parameters in sent:
            conn.execute(statement, parameters or None).fetchall()
        conn.rollback()
    return time.perf_counter() - began


def server_ms(admin_dsn: str) -> float:
    """pg_stat_statements' total time of vhdiag's marked top-level statements so far."""
    with psycopg.connect(admin_dsn) as conn:
        return float(conn.execute(
            "SELECT coalesce(sum(total_exec_time + total_plan_time), 0) FROM pg_stat_statements"
            " WHERE toplevel AND query LIKE %s", (f"%{MARKER}%",)).fetchone()[0])


def timed_collect(target, plan=None):
    """collect(target), and the time each collector took (its entry wrapped for the call)."""
    import dataclasses
    from vhdiag.collect import registry
    per: dict[str, float] = {}

    def timing(name, fn):
        def wrapped(*a, **kw):
            began = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                per[name] = per.get(name, 0) + time.perf_counter() - began
        return wrapped

    saved = {}
    for entry in registry.collectors():
        if entry.snapshot or entry.name == "statements-info":
            saved[entry.name] = entry
            snap_fn = getattr(entry, "snapshot_function", None)
            changes = {"function": timing(entry.name, entry.function)}
            if snap_fn is not None:
                changes["snapshot_function"] = timing(entry.name, snap_fn)
            registry._ENTRIES[entry.name] = dataclasses.replace(entry, **changes)
    try:
        began = time.perf_counter()
        frames = snapshot_mod.collect(target, plan)
        return frames, time.perf_counter() - began, per
    finally:
        registry._ENTRIES.update(saved)


def store_bytes(url: str) -> int:
    """The SQLite store's size with its write-ahead log checkpointed into it."""
    import sqlite3
    with sqlite3.connect(url) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(url)


def stats(values: list[float]) -> str:
    return f"min {min(values) * 1000:8.1f} ms  median {statistics.median(values) * 1000:8.1f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=10000)
    ap.add_argument("--parents", type=int, default=200, help="partitioned tables (with --partitions)")
    ap.add_argument("--partitions", type=int, default=0, help="partitions in all; replaces --tables")
    ap.add_argument("--statements", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--data", help="data directory kept between runs (default under /tmp, named by the workload)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions of one collect + record")
    ap.add_argument("--no-cli", action="store_true", help="skip the vhdiag snapshot subprocess runs")
    ap.add_argument("--build-only", action="store_true", help="build the workload (or find it built) and stop")
    ap.add_argument("--drop", action="store_true", help="stop the server and remove its data directory at the end")
    args = ap.parse_args(argv)

    shape = f"p{args.partitions}x{args.parents}" if args.partitions else f"t{args.tables}"
    data = Path(args.data or f"/tmp/vhdiag-bench-scale/{shape}-s{args.statements}")
    data.parent.mkdir(parents=True, exist_ok=True)
    data.parent.chmod(0o755)  # the unprivileged server user (when run as root) must traverse it
    server = LocalServer(embedded_bin_dir(), data, extra_settings={"max_locks_per_transaction": "1024",
                                                                   "pg_stat_statements.max": "10000"})
    work = Path(tempfile.mkdtemp(prefix="vhdiag-bench-store-"))
    try:
        server.start()
        build(server, args)
        dsn = server.dsn(DB)
        admin_dsn = server.dsn(DB, via="socket")
        print(f"PostgreSQL {server.major}: {counts(server)}")
        if args.build_only:
            return 0
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; "
              f"{args.runs} runs each")
        store = str(work / "history.sqlite")
        full_store = str(work / "full.sqlite")
        with vhdiag.connect(dsn) as target, psycopg.connect(dsn, application_name="bench-raw") as plain:
            plain.read_only = True
            sent_full = capture(target)
            raw(plain, sent_full)   # warm-up: the backend's catalog caches, as the Target's are
            History(store).snapshot(target, "bench")   # a baseline, so record() diffs as in production
            sent = capture(target, plan_for(store))
            raws, raws_full, collects, servers, records, pers = [], [], [], [], [], []
            for _ in range(args.runs):
                raws.append(raw(plain, sent))
                raws_full.append(raw(plain, sent_full))
                before = server_ms(admin_dsn)
                frames, elapsed, per = timed_collect(target, plan_for(store))
                servers.append((server_ms(admin_dsn) - before) / 1000)
                collects.append(elapsed)
                pers.append(per)
                history = History(store)
                began = time.perf_counter()
                history.record(frames, "bench")
                records.append(time.perf_counter() - began)
                history.close()
            # Store bytes per snapshot: every table sized and every row written, against sparse.
            growth = {}
            for label, url, full in (("full", full_store, True), ("changed", store, False)):
                History(url).snapshot(target, "bench")
                size0 = store_bytes(url)
                for _ in range(args.runs):
                    history = History(url)
                    history.record(snapshot_mod.collect(target, None if full else plan_for(url)), "bench")
                    history.close()
                growth[label] = (store_bytes(url) - size0) / args.runs
        snaps, colds, colds_full = [], [], []
        for _ in range(args.runs):
            colds.append(raw_cold(dsn, sent))
            colds_full.append(raw_cold(dsn, sent_full))
            began = time.perf_counter()
            with vhdiag.connect(dsn) as target, History(store) as history:
                history.snapshot(target, "bench")
            snaps.append(time.perf_counter() - began)
        clis = []
        if not args.no_cli:
            env = {**os.environ, "VHDIAG_DSN": dsn, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            for _ in range(args.runs):
                began = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "vhdiag", "snapshot", "--history", store,
                                       "--no-prune", "--target-name", "bench"], capture_output=True, text=True, env=env)
                clis.append(time.perf_counter() - began)
                if proc.returncode:
                    print(f"  vhdiag snapshot failed: {proc.stderr.strip()}")
        print(f"rows: {', '.join(f'{k} {len(v)}' for k, v in frames.items() if hasattr(v, '__len__') and k not in ('header', 'notes'))}")
        print(f"snapshot sizing: {frames['header'].get('sizing')}, tables sized "
              f"{int(frames['tables']['sized'].sum())} of {len(frames['tables'])}, indexes sized "
              f"{int(frames['indexes']['sized'].sum())} of {len(frames['indexes'])}")
        print(f"raw SQL, psycopg, full sizing ({len(sent_full)} statements) {stats(raws_full)}")
        print(f"raw SQL, psycopg ({len(sent)} statements)  {stats(raws)}")
        print(f"vhdiag collect                     {stats(collects)}   ratio to raw (medians) "
              f"{statistics.median(collects) / statistics.median(raws):.2f}x")
        print(f"  server time of vhdiag's statements {stats(servers)}")
        for name in pers[0]:
            print(f"  {name:<32} {stats([p[name] for p in pers])}")
        print(f"History.record (SQLite)            {stats(records)}")
        print(f"raw SQL, psycopg, new connection, full sizing {stats(colds_full)}")
        print(f"raw SQL, psycopg, new connection   {stats(colds)}")
        print(f"History.snapshot (connect+collect+record) {stats(snaps)}   ratio to raw on a new connection "
              f"{statistics.median(snaps) / statistics.median(colds):.2f}x")
        if clis:
            print(f"vhdiag snapshot (CLI process)      {stats(clis)}")
        print(f"store growth per snapshot (SQLite, mean of {args.runs}): every row {growth['full'] / 1024:.0f} KiB, "
              f"changed rows only {growth['changed'] / 1024:.0f} KiB, "
              f"ratio {growth['changed'] / growth['full']:.2f}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.profile:
            with vhdiag.connect(dsn) as target:
                profile = cProfile.Profile()
                profile.enable()
                frames = snapshot_mod.collect(target, plan_for(store))
                History(store).record(frames, "bench")
                profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    finally:
        if args.drop:
            server.destroy()
        else:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
