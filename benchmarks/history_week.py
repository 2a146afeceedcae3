"""History store at size: a week of 15-minute snapshots of 5,000 statements and 1,000 tables.

Prints: the time to build the week (synthetic frames written through History.record, the same
code path as `vhdiag snapshot` after collection), the store's size on disk, the time and peak
memory of History.statements(since="7d"), then one real `vhdiag snapshot` of an embedded
PostgreSQL holding 5,000 distinct statements and 1,000 tables, beside the raw SQL time of the
same collection; and what retention leaves: the store after rolling the week up to hourly rows,
extrapolated to a year (14 days raw + 400 days of roll-ups).

    .venv/bin/python benchmarks/history_week.py [--snapshots 672] [--statements 5000]
        [--tables 1000] [--changed 1.0] [--store sqlite|postgresql]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vhdiag.history import History  # noqa: E402
from vhdiag.binaries import embedded_bin_dir  # noqa: E402
from vhdiag.server import LocalServer  # noqa: E402


def synthetic_frames(n_statements, n_tables, rng):
    statements = pd.DataFrame({
        "queryid": rng.integers(-2**63, 2**63 - 1, n_statements, dtype=np.int64),
        "userid": np.full(n_statements, 10, dtype=np.int64), "dbid": np.full(n_statements, 5, dtype=np.int64),
        "toplevel": True, "user": "app", "database": "vendhub",
        "query": [f"SELECT col_{i} FROM t_{i % n_tables} WHERE id = $1 AND status = $2" for i in range(n_statements)],
    })
    for c in ("calls", "plans", "rows", "shared_blks_hit", "shared_blks_read", "shared_blks_dirtied",
              "shared_blks_written", "local_blks_hit", "local_blks_read", "temp_blks_read", "temp_blks_written",
              "wal_records", "wal_fpi", "wal_bytes"):
        statements[c] = rng.integers(0, 1000, n_statements)
    for c in ("total_exec_ms", "total_plan_ms", "shared_blk_read_ms", "shared_blk_write_ms",
              "temp_blk_read_ms", "temp_blk_write_ms"):
        statements[c] = rng.random(n_statements) * 100
    statements["mean_exec_ms"] = statements["total_exec_ms"] / statements["calls"].clip(lower=1)
    statements["stddev_exec_ms"] = statements["mean_exec_ms"] / 3
    statements["stats_since"] = pd.Timestamp("2026-01-01", tz="UTC")
    tables = pd.DataFrame({"schema": "public", "table": [f"t_{i}" for i in range(n_tables)], "size_skipped": False})
    for c in ("total_bytes", "table_bytes", "index_bytes", "toast_bytes", "n_live_tup", "n_dead_tup", "seq_scan",
              "seq_tup_read", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del"):
        tables[c] = rng.integers(8192, 10**6, n_tables)
    indexes = pd.DataFrame({"schema": "public", "index": [f"t_{i}_pkey" for i in range(n_tables)],
                            "table": [f"t_{i}" for i in range(n_tables)], "bytes": 16384, "scans": 0})
    database = pd.DataFrame({"database": ["vendhub"], **{c: [0] for c in (
        "size_bytes", "numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
        "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts", "temp_files", "temp_bytes",
        "deadlocks")}, "stats_reset": [None]})
    activity = pd.DataFrame({"state": ["active", "idle"], "connections": [3, 12]})
    return statements, tables, indexes, database, activity


def advance(statements, tables, database, rng, changed):
    n = len(statements)
    mask = rng.random(n) < changed
    calls = rng.integers(1, 50, n) * mask
    statements["calls"] += calls
    statements["rows"] += calls
    statements["total_exec_ms"] += calls * rng.random(n)
    statements["shared_blks_hit"] += calls * 10
    statements["mean_exec_ms"] = statements["total_exec_ms"] / statements["calls"].clip(lower=1)
    tables["total_bytes"] += rng.integers(0, 8192, len(tables))
    tables["n_tup_ins"] += rng.integers(0, 100, len(tables))
    database["xact_commit"] += 1000


def build_week(url, n_snapshots, n_statements, n_tables, changed):
    rng = np.random.default_rng(20261127)
    statements, tables, indexes, database, activity = synthetic_frames(n_statements, n_tables, rng)
    start = pd.Timestamp.now(tz="UTC").floor("15min") - pd.Timedelta(minutes=15 * n_snapshots)
    history = History(url)
    began = time.perf_counter()
    for i in range(n_snapshots):
        advance(statements, tables, database, rng, changed)
        frames = {"statements": statements, "tables": tables, "indexes": indexes, "database": database,
                  "activity": activity, "notes": [],
                  "header": {"ts": start + pd.Timedelta(minutes=15 * i), "server_version_num": 180001,
                             "postmaster_start": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_version": "1.12",
                             "pgss_stats_reset": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_dealloc": 0,
                             "max_connections": 100}}
        history.record(frames, "bench")
        if (i + 1) % 96 == 0:
            print(f"  {i + 1} snapshots written, {time.perf_counter() - began:.0f} s", flush=True)
    return history, time.perf_counter() - began


def measure_window(history):
    tracemalloc.start()
    began = time.perf_counter()
    frame = history.statements(since="7d")
    elapsed = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return frame, elapsed, peak


def real_snapshot(n_statements, n_tables, store):
    base = Path(tempfile.mkdtemp(prefix="vhdiag-bench-"))
    base.chmod(0o755)
    server = LocalServer(embedded_bin_dir(), base / "pg").start()
    try:
        with server.admin() as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute(f"""DO $$ BEGIN FOR i IN 1..{n_tables} LOOP
                EXECUTE format('CREATE TABLE t_%s (id int PRIMARY KEY, v int)', i);
                EXECUTE format('INSERT INTO t_%s SELECT g, g FROM generate_series(1, 10) g', i);
                END LOOP; END $$""")
            # Distinct statements: a different column list each (constants are normalized away).
            for i in range(n_statements):
                conn.execute(f"SELECT id{', v' * (i // n_tables + 1)} FROM t_{i % n_tables + 1} WHERE id = 1")
        dsn = server.dsn()
        env = {**os.environ, "VHDIAG_DSN": dsn}
        for label in ("first (baseline)", "second (deltas)"):
            began = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "vhdiag", "snapshot", "--history", store, "--no-prune"],
                                  capture_output=True, text=True, env=env)
            print(f"  vhdiag snapshot, {label}: {time.perf_counter() - began:.2f} s wall "
                  f"(process start included): {proc.stdout.strip() or proc.stderr.strip()}")
        import vhdiag
        with vhdiag.connect(dsn) as target:
            for name in ("statements", "tables", "indexes", "database", "connections"):
                began = time.perf_counter()
                rows = len(getattr(target, name)())
                print(f"  collect {name:<12} {rows:6d} rows {1000 * (time.perf_counter() - began):7.1f} ms")
            from vhdiag.collect import statements
            sql = statements.query_for(target.capabilities.pgss_version_tuple, target.capabilities.pgss_schema)
            with server.admin() as conn:
                began = time.perf_counter()
                rows = conn.execute(sql).fetchall()
                print(f"  raw SQL of the statements collector (psycopg, no pandas): {len(rows)} rows "
                      f"{1000 * (time.perf_counter() - began):.1f} ms")
    finally:
        server.destroy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, default=672)
    ap.add_argument("--statements", type=int, default=5000)
    ap.add_argument("--tables", type=int, default=1000)
    ap.add_argument("--changed", type=float, default=1.0, help="share of statements that change per snapshot")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vhdiag-bench-store-"))
    url = str(work / "history.sqlite")
    print(f"building {args.snapshots} snapshots x {args.statements} statements ({args.changed:.0%} changing) "
          f"x {args.tables} tables in {url}")
    history, build_s = build_week(url, args.snapshots, args.statements, args.tables, args.changed)
    history.close()
    import sqlite3
    db = sqlite3.connect(url)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = sum(p.stat().st_size for p in work.iterdir())
    print(f"built in {build_s:.0f} s ({1000 * build_s / args.snapshots:.0f} ms per snapshot write); "
          f"store {size / 2**20:.1f} MiB")
    frame, elapsed, peak = measure_window(history)
    print(f"History.statements(since='7d'): {len(frame)} statements, {int(frame['calls'].sum())} calls, "
          f"{elapsed:.2f} s, peak Python memory {peak / 2**20:.1f} MiB")
    began = time.perf_counter()
    result = history.prune(raw_days=0, rollup_days=400)
    history.close()
    import sqlite3
    db = sqlite3.connect(url)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the prune's transaction sits in the WAL until then
    db.execute("VACUUM")  # give freed pages back, to measure what is kept
    db.close()
    rolled = sum(p.stat().st_size for p in work.iterdir())
    days = args.snapshots * 15 / 1440
    per_day_rollup = rolled / days
    per_day_raw = size / days
    year = 14 * per_day_raw + 400 * per_day_rollup
    print(f"prune to hourly roll-ups: {time.perf_counter() - began:.0f} s, {result}; store {rolled / 2**20:.1f} MiB")
    print(f"a year on disk (14 days raw + 400 days hourly): about {year / 2**30:.2f} GiB "
          f"({per_day_raw / 2**20:.1f} MiB/day raw, {per_day_rollup / 2**20:.1f} MiB/day rolled up)")
    frame, elapsed, peak = measure_window(history)
    print(f"History.statements(since='7d') on roll-ups: {len(frame)} statements, {elapsed:.2f} s, "
          f"peak {peak / 2**20:.1f} MiB")
    print("one real snapshot:")
    real_snapshot(args.statements, args.tables, str(work / "real.sqlite"))


if __name__ == "__main__":
    main()
