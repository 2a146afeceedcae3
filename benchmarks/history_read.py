"""A week of history read: ``History.statements(since="7d")`` over 672 snapshots of 5,000 statements.

Issue 13, benchmark 2. The worst case: every statement changes in every 15-minute interval, so
the store holds 671 x 5,000 delta rows in the window. Run on SQLite and on a PostgreSQL store (an
embedded server this script starts, its data directory kept under /tmp between runs).

The week is built once per store and kept (``--rebuild`` makes it again): the first two
snapshots go through ``History.record`` (the store is created, the statements' text stored, one
real delta computed); the other 670 snapshots' rows are written in bulk into the same tables
(``snapshots``, ``statement_deltas``; COPY on PostgreSQL), as record would write them, with a
delta in every counter of every statement. Building takes a minute or two, where 672 records
would take several. Before measuring, the snapshots' times are shifted so the last one is a
minute old and "7d" covers all 672.

Measured ``--runs`` times each, every run in a new Python process (interpreter, imports and the
store's connection already made; not timed):

- **vhdiag**: ``History(url).statements(since="7d")``: the frame the reports read;
- **raw SQL**: the plainest alternative: the same aggregate (per statement, the 21 counters
  summed, intervals, completeness, first and last time, joined to its text) as one SQL query,
  rows fetched with the driver (sqlite3 or psycopg) as tuples, no pandas.

Wall time and peak memory: the process's peak RSS (``ru_maxrss``) minus its RSS before the read,
i.e. what the read added at its peak. Also the store's size for the week against the raw size of
the pg_stat_statements rows it records (the CSV of the 672 x 5,000 cumulative rows a
``COPY (SELECT * FROM pg_stat_statements) TO CSV`` per snapshot would give).

    /work/main/.venv/bin/python benchmarks/history_read.py --store sqlite --runs 5
    /work/main/.venv/bin/python benchmarks/history_read.py --store postgresql --runs 5
    # --profile: cProfile of one vhdiag read; --rebuild: build the week again
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import sqlalchemy as sa  # noqa: E402

from vhdiag.history import History  # noqa: E402
from vhdiag.history import schema as S  # noqa: E402

WORK = Path(os.environ.get("VHDIAG_BENCH_WORK", "/tmp/vhdiag-bench-history"))
DB = "histbench"
TARGET = "bench"
STEP = pd.Timedelta(minutes=15)
INT_COUNTERS = [c for c in S.STATEMENT_COUNTERS if c not in S._FLOAT_COUNTERS]


# -- building the week ---------------------------------------------------------------------

def _header(ts):
    return {"ts": ts, "server_version_num": 180001, "postmaster_start": pd.Timestamp("2026-01-01", tz="UTC"),
            "pgss_version": "1.12", "pgss_stats_reset": pd.Timestamp("2026-01-01", tz="UTC"), "pgss_dealloc": 0,
            "max_connections": 100, "reads_all_stats": True}


def _deltas(rng, n):
    """One interval's deltas of n statements: every counter moves (the worst case for the store)."""
    calls = rng.integers(1, 50, n)
    out = {c: rng.integers(0, 5000, n) for c in INT_COUNTERS}
    out["calls"], out["rows"] = calls, calls * rng.integers(1, 4, n)
    out["plans"] = calls
    for c in S._FLOAT_COUNTERS:
        out[c] = rng.random(n) * 100
    mean = out["total_exec_ms"] / calls
    out["sumsq_exec_ms2"] = calls * (mean * mean * 1.1)
    return out


def build(url: str, n_snapshots: int, n_statements: int) -> dict:
    from history_week import synthetic_frames
    rng = np.random.default_rng(20261129)
    statements, tables, indexes, database, activity = synthetic_frames(n_statements, 10, rng)
    statements["plans"] = 0
    end = pd.Timestamp.now(tz="UTC").floor("min")
    start = end - STEP * (n_snapshots - 1)
    history = History(url)
    began = time.perf_counter()
    csv_bytes = 0
    raw_cols = [c for c in statements.columns]

    def frames(i):
        return {"statements": statements, "tables": tables, "indexes": indexes, "database": database,
                "activity": activity, "notes": [], "header": _header(start + STEP * i)}

    # Two snapshots through the write path: the store, the statements' rows, a real delta.
    for i in range(2):
        if i:
            d = _deltas(rng, n_statements)
            for c in ("calls", "rows", "total_exec_ms", "shared_blks_hit"):
                statements[c] = statements[c] + d[c]
            statements["mean_exec_ms"] = statements["total_exec_ms"] / statements["calls"].clip(lower=1)
        history.record(frames(i), TARGET)
        csv_bytes += len(statements[raw_cols].to_csv(index=False).encode())
    cols = ["snapshot_id", "statement_id", *S.STATEMENT_COUNTERS, "complete", "note"]
    with history.engine.connect() as conn:
        tid = conn.execute(sa.select(S.targets.c.id).where(S.targets.c.name == TARGET)).scalar_one()
        ids = np.array(sorted(r[0] for r in conn.execute(sa.select(S.statements.c.id))), dtype=np.int64)
        next_id = conn.execute(sa.select(sa.func.max(S.snapshots.c.id))).scalar_one() + 1
    snap_cols = ["id", "target_id", "ts", "interval_s", "server_version_num", "postmaster_start", "pgss_version",
                 "reads_all_stats", "pgss_stats_reset", "pgss_dealloc", "max_connections", "events", "notes",
                 "duration_ms"]
    raw = history.engine.raw_connection()
    try:
        cur = raw.cursor()
        sqlite = history.is_sqlite
        if sqlite:
            cur.execute("BEGIN")
        for i in range(2, n_snapshots):
            sid = next_id + i - 2
            ts = (start + STEP * i).to_pydatetime()
            header = _header(ts)
            snap = [sid, tid, ts.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else ts, 900.0, 180001,
                    "2026-01-01 00:00:00.000000" if sqlite else header["postmaster_start"].to_pydatetime(), "1.12",
                    True, "2026-01-01 00:00:00.000000" if sqlite else header["pgss_stats_reset"].to_pydatetime(),
                    0, 100, "", "", 50.0]
            d = _deltas(rng, n_statements)
            note = np.full(n_statements, "", dtype=object)
            if i == n_snapshots // 2:
                note[:50] = "dealloc"  # a few statements with a note, as a real week has
            columns = [np.full(n_statements, sid), ids, *[d[c] for c in S.STATEMENT_COUNTERS],
                       np.ones(n_statements, dtype=bool), note]
            rows = list(zip(*[c.tolist() for c in columns]))
            if sqlite:
                cur.execute(f"INSERT INTO snapshots ({', '.join(snap_cols)}) VALUES ({', '.join('?' * len(snap_cols))})",
                            snap)
                cur.executemany(f"INSERT INTO statement_deltas ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                rows)
            else:
                cur.execute(f"INSERT INTO snapshots ({', '.join(snap_cols)}) VALUES ({', '.join(['%s'] * len(snap_cols))})",
                            snap)
                with cur.copy(f"COPY statement_deltas ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            # The raw pg_stat_statements rows of this snapshot: the cumulative values.
            for c in ("calls", "rows", "total_exec_ms", "shared_blks_hit", "shared_blks_read", "temp_blks_written",
                      "wal_bytes"):
                statements[c] = statements[c] + d[c]
            statements["mean_exec_ms"] = statements["total_exec_ms"] / statements["calls"].clip(lower=1)
            csv_bytes += len(statements[raw_cols].to_csv(index=False).encode())
            if (i + 1) % 96 == 0:
                print(f"  {i + 1} snapshots written, {time.perf_counter() - began:.0f} s", flush=True)
        if sqlite:
            cur.execute("COMMIT")
        else:
            cur.execute("SELECT setval(pg_get_serial_sequence('snapshots', 'id'), (SELECT max(id) FROM snapshots))")
            raw.commit()
    finally:
        raw.close()
    history.close()
    if not history.url.startswith("sqlite"):
        import psycopg
        with psycopg.connect(history.url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return {"build_s": time.perf_counter() - began, "csv_bytes": csv_bytes, "snapshots": n_snapshots,
            "statements": n_statements}


def shift_to_now(url: str) -> None:
    """Move every snapshot so the last is a minute old: since="7d" then covers the week."""
    history = History(url)
    with history.engine.begin() as conn:
        last = pd.Timestamp(conn.execute(sa.select(sa.func.max(S.snapshots.c.ts))).scalar_one())
        last = last.tz_localize("UTC") if last.tzinfo is None else last
        delta = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=1) - last
        rows = conn.execute(sa.select(S.snapshots.c.id, S.snapshots.c.ts)).all()
        for sid, ts in rows:
            ts = pd.Timestamp(ts)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
            conn.execute(S.snapshots.update().where(S.snapshots.c.id == sid).values(ts=(ts + delta).to_pydatetime()))
    history.close()


def store_bytes(url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        import sqlite3
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name))
    import psycopg
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        return conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')"
                            ).fetchone()[0]


# -- measuring (in a child process) --------------------------------------------------------

RAW_SQL = """SELECT st.queryid, st.userid, st.dbid, st."user", st."database", st.toplevel, st.query, a.*
FROM (SELECT d.statement_id, {sums}, count(*) AS intervals, min(CASE WHEN d.complete THEN 1 ELSE 0 END) AS complete,
             min(s.ts) AS first_ts, max(s.ts) AS last_ts
      FROM statement_deltas d JOIN snapshots s ON s.id = d.snapshot_id
      WHERE s.target_id = {p} AND s.ts > {p} AND s.ts <= {p}
      GROUP BY d.statement_id) a
JOIN statements st ON st.id = a.statement_id"""


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(kind: str, url: str, profile: bool) -> None:
    """One measured read; prints one JSON line."""
    now = pd.Timestamp.now(tz="UTC")
    since = now - pd.Timedelta(days=7)
    if kind == "vhdiag":
        history = History(url)
        history.targets()  # the store checked and a connection made, as before any real read
        before = _rss_kib()
        prof = cProfile.Profile() if profile else None
        began = time.perf_counter()
        if prof:
            prof.enable()
        frame = history.statements(since="7d")
        if prof:
            prof.disable()
        elapsed = time.perf_counter() - began
        rows, calls = len(frame), int(frame["calls"].sum())
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue(), file=sys.stderr)
    else:
        sums = ", ".join(f"sum(d.{c}) AS {c}" for c in S.STATEMENT_COUNTERS)
        if url.startswith("sqlite"):
            import sqlite3
            conn = sqlite3.connect(url.split("///", 1)[1])
            conn.execute("SELECT count(*) FROM snapshots").fetchall()
            sql, args = RAW_SQL.format(sums=sums, p="?"), (1, since.strftime("%Y-%m-%d %H:%M:%S.%f"),
                                                             now.strftime("%Y-%m-%d %H:%M:%S.%f"))
        else:
            import psycopg
            conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
            conn.execute("SELECT count(*) FROM snapshots").fetchall()
            sql, args = RAW_SQL.format(sums=sums, p="%s"), (1, since.to_pydatetime(), now.to_pydatetime())
        before = _rss_kib()
        began = time.perf_counter()
        result = conn.execute(sql, args).fetchall()
        elapsed = time.perf_counter() - began
        rows, calls = len(result), int(sum(r[8] for r in result))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"s": elapsed, "peak_mib": (peak - before) / 1024, "rss_mib": peak / 1024,
                      "rows": rows, "calls": calls}))


def run_child(kind: str, url: str, profile: bool = False) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--url", url] + (["--profile"] if profile else []),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} read failed: {proc.stderr.strip()[-3000:]}")
    if profile:
        print(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- main ----------------------------------------------------------------------------------

def open_store(kind: str, rebuild: bool):
    """The store's URL, and the server to stop (PostgreSQL) or None."""
    base = WORK / kind
    if rebuild:
        shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    if kind == "sqlite":
        return f"sqlite:///{base / 'history.sqlite'}", None
    from vhdiag.binaries import embedded_bin_dir
    from vhdiag.server import LocalServer
    server = LocalServer(embedded_bin_dir(), base / "pg").start()
    with server.admin() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f"CREATE DATABASE {DB}")
    return server.dsn(DB, via="socket"), server


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--snapshots", type=int, default=672)
    ap.add_argument("--statements", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", choices=["vhdiag", "raw"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.url, args.profile)
    url, server = open_store(args.store, args.rebuild)
    try:
        info_path = WORK / args.store / "built.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        if info is None or (info["snapshots"], info["statements"]) != (args.snapshots, args.statements):
            if info is not None:
                raise SystemExit(f"{WORK / args.store} holds another week: add --rebuild")
            print(f"building {args.snapshots} snapshots x {args.statements} statements (every one changing) "
                  f"in the {args.store} store", flush=True)
            info = build(url, args.snapshots, args.statements)
            info_path.write_text(json.dumps(info))
            print(f"built in {info['build_s']:.0f} s", flush=True)
        shift_to_now(url)
        if hasattr(History, "update_sums"):   # schema 4: sums of complete hours and days
            history = History(url)
            began = time.perf_counter()
            made = history.update_sums(TARGET)
            history.close()
            if made:
                print(f"summed {made} hours and days in {time.perf_counter() - began:.1f} s (what each snapshot "
                      f"does for the hour it completes)", flush=True)
        size = store_bytes(url)
        load = os.getloadavg()
        print(f"{args.store} store: {args.snapshots} snapshots x {args.statements} statements, every statement "
              f"changing every 15 minutes ({(args.snapshots - 1) * args.statements:,} delta rows in the window)")
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
              f"{args.runs} runs each, each in a new process")
        print(f"store size: {size / 2**20:.1f} MiB per week; raw pg_stat_statements rows as CSV "
              f"({args.snapshots} x {args.statements}): {info['csv_bytes'] / 2**20:.1f} MiB; "
              f"ratio {size / info['csv_bytes']:.2f}x")
        results = {}
        for kind in ("raw", "vhdiag"):
            results[kind] = [run_child(kind, url) for _ in range(args.runs)]
        check = {k: (v[0]["rows"], v[0]["calls"]) for k, v in results.items()}
        if check["raw"] != check["vhdiag"]:
            raise SystemExit(f"the two reads disagree: {check}")
        med = {}
        for kind, label in (("raw", "raw SQL, one aggregate query (driver, tuples)"),
                            ("vhdiag", 'History.statements(since="7d")')):
            times = [r["s"] * 1000 for r in results[kind]]
            mem = [r["peak_mib"] for r in results[kind]]
            med[kind] = statistics.median(times)
            print(f"{label:<48} min {min(times):8.1f} ms  median {med[kind]:8.1f} ms  "
                  f"peak memory added median {statistics.median(mem):6.1f} MiB (process peak RSS "
                  f"{statistics.median(r['rss_mib'] for r in results[kind]):.0f} MiB)")
        print(f"rows {check['vhdiag'][0]} statements, {check['vhdiag'][1]:,} calls; ratio vhdiag / raw (medians) "
              f"{med['vhdiag'] / med['raw']:.2f}x")
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if args.profile:
            run_child("vhdiag", url, profile=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
