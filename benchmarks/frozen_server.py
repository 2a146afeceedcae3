"""What the client-side deadline costs on the happy path, and how soon a frozen server fails.

Starts an embedded PostgreSQL in a temporary directory and prints:
- the median time of ``SELECT 1`` over ``--runs`` statements on a plain psycopg connection and
  on vhdiag's ``BoundedConnection`` (the deadline on every wait), over TCP, best of 5 rounds;
- the median of ``Target.query('SELECT 1')`` (pool checkout, transaction bounds, the statement);
- how long a query takes to fail once the whole server is stopped (SIGSTOP; as root this
  script may signal the server's unprivileged user), over TCP and a Unix socket, with
  ``statement_timeout`` 1000 ms.

Example:
    .venv/bin/python benchmarks/frozen_server.py --runs 2000
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

import vhdiag
from vhdiag.bounded import BoundedConnection
from vhdiag.binaries import embedded_bin_dir


from vhdiag.server import LocalServer


def _median_us(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def _processes(postmaster: int) -> list[int]:
    """The postmaster and its children ("pid (comm) state ppid ..." in /proc/PID/stat)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(postmaster):
                kids.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return [postmaster, *kids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="vhdiag-bench-"))
    base.chmod(0o755)
    with LocalServer(embedded_bin_dir(), base / "pg") as server:
        dsn = server.dsn()
        # Alternating rounds, the best median of each: the machine's noise is larger than the cost.
        best = {psycopg.Connection: [], BoundedConnection: []}
        for _ in range(5):
            for cls, medians in best.items():
                with cls.connect(dsn, autocommit=True) as conn:
                    if isinstance(conn, BoundedConnection):
                        conn.bound(5000, "bench")
                    conn.execute("SELECT 1")
                    medians.append(_median_us(lambda: conn.execute("SELECT 1"), args.runs))
        for cls, medians in best.items():
            print(f"SELECT 1 on {cls.__name__ + ':':<19} best median of 5 rounds {min(medians):6.1f} us")
        with vhdiag.connect(dsn) as target:
            print(f"Target.query('SELECT 1'): median {_median_us(lambda: target.query('SELECT 1'), args.runs):.1f} us")
        for via in ("tcp", "socket"):
            target = vhdiag.connect(server.dsn(via=via), statement_timeout_ms=1000)
            pids = _processes(server.postmaster_pid())
            try:
                for pid in pids:
                    os.kill(pid, signal.SIGSTOP)
                started = time.monotonic()
                try:
                    target.query("SELECT 1")
                    outcome = "answered?"
                except vhdiag.VhdiagError as exc:
                    outcome = str(exc).split(" (", 1)[0]
                elapsed = time.monotonic() - started
            finally:
                for pid in reversed(pids):
                    os.kill(pid, signal.SIGCONT)
            target.close()
            print(f"frozen server over {via:<6}: failed after {elapsed:.2f} s ({outcome})")


if __name__ == "__main__":
    main()
