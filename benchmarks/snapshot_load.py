"""Load on the monitored server: pgbench throughput with `vhdiag snapshot` every 10 s, against none.

Issue 13, benchmark 5: "pgbench throughput with `vhdiag snapshot` every 10 s for 5 minutes,
against the same run without vhdiag. Report both figures and their spread over three runs each."

Starts an embedded PostgreSQL 18 whose data directory is kept under /tmp between runs, with a
pgbench database of scale ``--scale`` (20: 2 million accounts, about 300 MB, which fits in
memory). Then ``--runs`` pairs of runs, alternating (without, with, without, with, ...):

- **without**: ``pgbench -c 4 -j 2 -T <duration> -P 10`` (the TPC-B-like default script) alone;
- **with**: the same, while a scheduler starts ``python -m vhdiag snapshot`` every 10 s as cron
  would (a new process each time: interpreter start, imports, connect, collect, write to an
  SQLite store of its own per run), the first at pgbench's start.

Before each run the tables pgbench writes are put back as pgbench's own preparation would
(VACUUM of branches and tellers, TRUNCATE of history), and pgbench runs with ``-n``: its TRUNCATE
would otherwise wait on a snapshot that is sizing pgbench_history, a lock wait of our making.

Printed per run: TPS (pgbench's, without connection time), average latency and its stddev, the
lowest 10 s progress interval, the load average before and after, and for the runs with vhdiag the
snapshots taken, failed, and their wall time. Then the median and the spread (min-max) of each
side and the ratio of the medians (with / without).

    /work/main/.venv/bin/python benchmarks/snapshot_load.py                       # 5 min x 3 runs each
    /work/main/.venv/bin/python benchmarks/snapshot_load.py --duration 30 --runs 1   # a quick check
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg.sql  # noqa: E402

from vhdiag.binaries import embedded_bin_dir, library_env  # noqa: E402
from vhdiag.server import LocalServer  # noqa: E402

DB = "pgbench"
INTERVAL_S = 10   # the snapshot interval


@dataclass
class Run:
    side: str                 # "without" or "with"
    tps: float = 0.0
    latency_ms: float = 0.0
    stddev_ms: float = 0.0
    lowest_interval_tps: float = 0.0
    load_before: tuple = ()
    load_after: tuple = ()
    snapshots: list[tuple[float, float, int]] = field(default_factory=list)  # (offset s, wall s, exit code)
    errors: list[str] = field(default_factory=list)


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def fmt_load(values) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def pgbench(server: LocalServer, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """The wheel's pgbench, as a client over the server's Unix socket (trusted)."""
    exe = embedded_bin_dir() / "pgbench"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(library_env(embedded_bin_dir()))
    return subprocess.run([str(exe), "-h", str(server.socket_dir), "-p", str(server.port), "-U", "postgres",
                           *args, DB], capture_output=True, text=True, env=env, timeout=timeout)


def build(server: LocalServer, scale: int) -> None:
    with server.admin() as conn:
        # A reused data directory: this run's LocalServer made up another password.
        conn.execute(psycopg.sql.SQL("ALTER ROLE postgres PASSWORD {}").format(server.password))
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            with server.admin(DB) as db:
                branches = db.execute("SELECT count(*) FROM pgbench_branches").fetchone()[0]
            if branches == scale:
                return
            conn.execute(f"DROP DATABASE {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    with server.admin(DB) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    began = time.perf_counter()
    proc = pgbench(server, "-i", "-s", str(scale), "-q")
    if proc.returncode:
        raise SystemExit(f"pgbench -i failed: {proc.stderr.strip()}")
    print(f"pgbench -i -s {scale}: built in {time.perf_counter() - began:.0f} s", flush=True)


def prepare(server: LocalServer) -> None:
    """What pgbench does before a run unless -n: the same start for every run."""
    with server.admin(DB) as conn:
        conn.execute("VACUUM pgbench_branches")
        conn.execute("VACUUM pgbench_tellers")
        conn.execute("TRUNCATE pgbench_history")
    with server.admin() as conn:
        conn.execute("CHECKPOINT")


def parse(run: Run, stdout: str, stderr: str) -> None:
    tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)", stdout, re.M)
    lat = re.search(r"^latency average = ([\d.]+) ms", stdout, re.M)
    std = re.search(r"^latency stddev = ([\d.]+) ms", stdout, re.M)
    if not (tps and lat):
        run.errors.append(f"pgbench printed no tps: {stdout.strip()[-500:]} {stderr.strip()[-500:]}")
        return
    run.tps, run.latency_ms = float(tps.group(1)), float(lat.group(1))
    run.stddev_ms = float(std.group(1)) if std else float("nan")
    progress = [float(m) for m in re.findall(r"^progress: [\d.]+ s, ([\d.]+) tps", stderr, re.M)]
    run.lowest_interval_tps = min(progress) if progress else float("nan")


def snapshot_loop(dsn: str, store: str, duration: float, stop: threading.Event, run: Run) -> None:
    """`vhdiag snapshot` at 0, 10, 20, ... s while pgbench runs; one that overruns delays the next."""
    env = {**os.environ, "VHDIAG_DSN": dsn, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "vhdiag", "snapshot", "--history", store, "--no-prune",
           "--target-name", "bench", "--quiet"]
    began = time.monotonic()
    k = 0
    while not stop.is_set():
        due = began + k * INTERVAL_S
        if due - began >= duration:
            return
        if stop.wait(max(0.0, due - time.monotonic())):
            return
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        run.snapshots.append((started - began, time.monotonic() - started, proc.returncode))
        if proc.returncode:
            run.errors.append(f"vhdiag snapshot at {started - began:.0f} s: {proc.stderr.strip()[-300:]}")
        k += 1


def one_run(server: LocalServer, side: str, args, work: Path, index: int) -> Run:
    run = Run(side)
    prepare(server)
    run.load_before = load()
    stop = threading.Event()
    loop = None
    if side == "with":
        store = str(work / f"history-{index}.sqlite")
        loop = threading.Thread(target=snapshot_loop, args=(server.dsn(DB), store, args.duration, stop, run))
    if loop:
        loop.start()
    try:
        result = pgbench(server, "-n", "-c", str(args.clients), "-j", str(args.threads), "-T", str(args.duration),
                         "-P", str(INTERVAL_S), timeout=args.duration + 120)
    finally:
        stop.set()
        if loop:
            loop.join()
    run.load_after = load()
    if result.returncode:
        run.errors.append(f"pgbench exit {result.returncode}: {result.stderr.strip()[-500:]}")
    parse(run, result.stdout, result.stderr)
    return run


def describe(run: Run, n: int) -> str:
    line = (f"run {n} {run.side + ' vhdiag:':<16} tps {run.tps:9.1f}  latency {run.latency_ms:6.2f} ms "
            f"(stddev {run.stddev_ms:6.2f})  lowest 10 s {run.lowest_interval_tps:9.1f} tps  "
            f"load {fmt_load(run.load_before)} -> {fmt_load(run.load_after)}")
    if run.side == "with":
        walls = [w for _, w, _ in run.snapshots]
        failed = sum(1 for _, _, rc in run.snapshots if rc)
        line += (f"\n      snapshots {len(run.snapshots)}, failed {failed}, wall median "
                 f"{statistics.median(walls):.2f} s, max {max(walls):.2f} s" if walls else "\n      no snapshots")
    for err in run.errors:
        line += f"\n      ERROR {err}"
    return line


def spread(values: list[float], unit: str, digits: int) -> str:
    return (f"median {statistics.median(values):.{digits}f} {unit}, "
            f"min-max {min(values):.{digits}f}-{max(values):.{digits}f} {unit}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=300, help="seconds per pgbench run (the issue: 5 minutes)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each side, alternating (the issue: 3)")
    ap.add_argument("--scale", type=int, default=20, help="pgbench scale factor (20: about 300 MB)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=None, help="data directory kept between runs (default under /tmp)")
    ap.add_argument("--drop", action="store_true", help="stop the server and remove its data directory at the end")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # kill PID: stop the server on the way out

    data = Path(args.data or f"/tmp/vhdiag-bench-load/s{args.scale}")
    data.parent.mkdir(parents=True, exist_ok=True)
    data.parent.chmod(0o755)  # the unprivileged server user (when run as root) must traverse it
    server = LocalServer(embedded_bin_dir(), data, extra_settings={"shared_buffers": "512MB"})
    work = Path(tempfile.mkdtemp(prefix="vhdiag-bench-load-"))
    try:
        server.start()
        build(server, args.scale)
        print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.system()} {platform.release()} "
              f"{platform.machine()}, {os.cpu_count()} cores; PostgreSQL {server.major}, pgbench scale {args.scale}, "
              f"-c {args.clients} -j {args.threads} -T {args.duration} -P {INTERVAL_S}; "
              f"vhdiag snapshot every {INTERVAL_S} s; {args.runs} runs each, alternating", flush=True)
        runs: list[Run] = []
        for i in range(args.runs):
            for side in ("without", "with"):
                run = one_run(server, side, args, work, i)
                runs.append(run)
                print(describe(run, i + 1), flush=True)
        without = [r for r in runs if r.side == "without"]
        with_ = [r for r in runs if r.side == "with"]
        for name, side in (("without vhdiag", without), ("with vhdiag", with_)):
            print(f"{name + ':':<16} tps {spread([r.tps for r in side], 'tps', 1)}; "
                  f"latency {spread([r.latency_ms for r in side], 'ms', 2)}")
        ratio_tps = statistics.median(r.tps for r in with_) / statistics.median(r.tps for r in without)
        ratio_lat = statistics.median(r.latency_ms for r in with_) / statistics.median(r.latency_ms for r in without)
        print(f"ratio with/without (medians): tps {ratio_tps:.3f}x, latency {ratio_lat:.3f}x")
        snaps = [s for r in with_ for s in r.snapshots]
        if snaps:
            print(f"vhdiag snapshots: {len(snaps)} taken, {sum(1 for s in snaps if s[2])} failed; wall "
                  f"{spread([s[1] for s in snaps], 's', 2)}")
        print(f"load average at the end: {fmt_load(load())}")
        return 1 if any(r.errors for r in runs) else 0
    finally:
        if args.drop:
            server.destroy()
        else:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
