"""Issue 12: `vhdiag snapshot --targets` over N local databases with --jobs J, against the plain
alternative: one target's `vhdiag snapshot --dsn` command run N times in a row (what a cron line
per database would do).

Both write to a fresh SQLite store each run, through the CLI as a subprocess (interpreter start
and imports included, as cron meets them). The databases live on one embedded PostgreSQL 18,
each with pg_stat_statements, 50 tables and a few hundred statements.

    python benchmarks/fleet_snapshot.py --databases 20 --jobs 4 --runs 3
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vhdiag.binaries import embedded_bin_dir  # noqa: E402
from vhdiag.server import LocalServer  # noqa: E402


def build(server: LocalServer, n: int) -> None:
    for i in range(n):
        db = f"fleet_{i:02d}"
        with server.admin("postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                continue
            conn.execute(f"CREATE DATABASE {db}")
        with server.admin(db) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("DO $$ BEGIN FOR t IN 1..50 LOOP EXECUTE format("
                         "'CREATE TABLE t%s (id int PRIMARY KEY, v text); "
                         "INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 200) g', t, t); "
                         "END LOOP; END $$")
            for t in range(1, 51):
                for k in range(6):
                    conn.execute(f"SELECT count(*) FROM t{t} WHERE id > {k} AND v <> 'x{k}'")


def timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"failed: {' '.join(cmd[:6])}...: {proc.stderr.strip().splitlines()[-1:]}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--databases", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default="/tmp/vhdiag-bench-fleet/pg")
    args = ap.parse_args()
    data = Path(args.data)
    data.parent.mkdir(parents=True, exist_ok=True)
    data.parent.chmod(0o755)
    server = LocalServer(embedded_bin_dir(), data)
    work = Path(tempfile.mkdtemp(prefix="vhdiag-bench-fleet-"))
    try:
        server.start()
        with server.admin() as conn:  # a reused data directory: this run's server made up another password
            from psycopg import sql
            conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(server.password))
        build(server, args.databases)
        env = dict(os.environ)
        lines = []
        for i in range(args.databases):
            env[f"FLEET_{i:02d}"] = server.dsn(f"fleet_{i:02d}")
            lines.append(f'[targets.db{i:02d}]\ndsn = "env:FLEET_{i:02d}"\n')
        targets = work / "targets.toml"
        targets.write_text("".join(lines))
        vhdiag = [sys.executable, "-m", "vhdiag"]
        print(f"PostgreSQL {server.major}, {args.databases} databases x 50 tables; load average before: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; {args.runs} runs each")
        fleet, one_by_one = [], []
        for run in range(args.runs):
            store = work / f"fleet-{run}.sqlite"
            fleet.append(timed(vhdiag + ["snapshot", "--targets", str(targets), "--jobs", str(args.jobs),
                                         "--history", str(store), "--no-prune", "--quiet"], env))
            store = work / f"single-{run}.sqlite"
            started = time.perf_counter()
            for i in range(args.databases):
                timed(vhdiag + ["snapshot", "--dsn", f"env:FLEET_{i:02d}", "--target-name", f"db{i:02d}",
                                "--history", str(store), "--no-prune", "--quiet"], env)
            one_by_one.append(time.perf_counter() - started)
        f, s = statistics.median(fleet), statistics.median(one_by_one)
        print(f"snapshot --targets (--jobs {args.jobs}): median {f:.2f} s, min {min(fleet):.2f} s")
        print(f"{args.databases} x snapshot --dsn in a row:  median {s:.2f} s, min {min(one_by_one):.2f} s "
              f"({s / args.databases:.2f} s per target)")
        print(f"ratio fleet / one by one: {f / s:.2f} (speed-up {s / f:.1f}x)")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
