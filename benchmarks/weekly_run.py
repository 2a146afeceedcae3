"""The weekly run at scale: slow_queries + capacity + handoff on a week of 5,000 statements.

Issue 13, benchmark 3. The history is benchmark 2's week (``history_read.py``): 672 snapshots, 15
minutes apart, of 5,000 statements, every statement changing in every interval. It is built by
``history_read.py``'s builder into this script's own folder (``/tmp/vhdiag-bench-weekly/<store>``:
benchmark 2's kept stores may be at an older schema), where its snapshots are moved to cover one
ISO week exactly (the first at Monday 00:15, the last at the next Monday 00:00, so all 671
intervals are in ``(start, end]``) and its hour and day sums are made again for those times, as
``vhdiag snapshot`` would have made them. Done once and kept.

The reports also read the live target (tables, indexes, connections, settings, plans): an
embedded PostgreSQL 18 this script starts, with pg_stat_statements, and the history's target named
with ``--target-name bench``, as a DBA names a target whose store name is not ``host:port/db``.

Measured ``--runs`` times each, alternating, every run in a new Python process
(``vhdiag.reports.weekly.run_weekly``, what ``vhdiag report weekly`` calls; interpreter and imports
not timed), each into an empty output folder:

- **(a) one shared kernel** for the three reports (the default);
- **(b) a kernel per report** (``--kernel-per-report``: papermill's plain way, the alternative).

Printed per run: the wall time, the time spent starting kernels and its share, each report's
wall time and the size of its HTML (target: under 5 MB each); then min and median of each, and
the ratio of (a) to (b) by medians.

    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/weekly_run.py --store sqlite --runs 3
    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/weekly_run.py --store postgresql --runs 3
    # PYTHONPATH: the kernels import vhdiag from it (this checkout's, not an installed one)
    # --realign: move the week and make its sums again; --keep: leave the last run's reports
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

WORK = Path(os.environ.get("VHDIAG_BENCH_WORK", "/tmp/vhdiag-bench-weekly"))
TARGET = "bench"          # the history's target name (history_read.py)
WEEK = "2026-W47"         # a complete week before the date of these runs
STEP = pd.Timedelta(minutes=15)
MB = 1_000_000
HTML_LIMIT = 5 * MB


# -- the week's store ----------------------------------------------------------------------

def open_store(kind: str):
    """(the store's URL, the server to stop or None); the week built by history_read.py's builder
    the first time (a minute or two), with this vhdiag's schema."""
    from history_read import build
    base = WORK / kind
    base.mkdir(parents=True, exist_ok=True)
    for path in (WORK, base):
        path.chmod(0o755)
    server = None
    if kind == "sqlite":
        url = f"sqlite:///{base / 'history.sqlite'}"
    else:
        from vhdiag.binaries import embedded_bin_dir
        from vhdiag.server import LocalServer
        server = LocalServer(embedded_bin_dir(), base / "pg").start()
        with server.admin() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'histbench'").fetchone():
                conn.execute("CREATE DATABASE histbench")
        url = server.dsn("histbench", via="socket")
    if not (base / "built.json").exists():
        print(f"building 672 snapshots x 5000 statements (every one changing) in the {kind} store "
              "(history_read.build)", flush=True)
        info = build(url, 672, 5000)
        (base / "built.json").write_text(json.dumps(info))
        print(f"  built in {info['build_s']:.0f} s", flush=True)
    return url, server


def align(url: str, week: str) -> dict:
    """Move the snapshots onto ``week`` (the last at its end, 15 minutes apart) and sum its hours
    and days again: sums are of fixed hours, so moved snapshots need new ones."""
    from vhdiag.history import History
    from vhdiag.history import schema as S
    from vhdiag.reports.periods import calendar_window
    start, end = calendar_window(week=week)
    history = History(url)
    history.targets()               # the store upgraded to this vhdiag's schema first
    began = time.perf_counter()
    with history.engine.begin() as conn:
        conn.execute(S.statement_sums.delete())
        conn.execute(S.statement_sum_spans.delete())
        ids = [r[0] for r in conn.execute(sa.select(S.snapshots.c.id).order_by(S.snapshots.c.ts))]
        first = end - STEP * (len(ids) - 1)
        if first <= start:
            raise SystemExit(f"{len(ids)} snapshots 15 minutes apart do not fit in one week")
        for i, sid in enumerate(ids):
            conn.execute(S.snapshots.update().where(S.snapshots.c.id == sid)
                         .values(ts=(first + STEP * i).to_pydatetime()))
    made = history.update_sums(TARGET)
    history.close()
    return {"week": week, "snapshots": len(ids), "first": str(first), "last": str(end), "sums": made,
            "align_s": time.perf_counter() - began}


def start_target():
    """The live target the reports read besides the history: an embedded PostgreSQL 18."""
    from vhdiag.binaries import embedded_bin_dir
    from vhdiag.server import LocalServer
    server = LocalServer(embedded_bin_dir(), WORK / "target").start()
    with server.admin() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return server


# -- one weekly run (in a child process) ---------------------------------------------------

def child(mode: str, url: str, dsn: str, out: str, week: str) -> None:
    from vhdiag.reports.weekly import run_weekly
    import papermill  # noqa: F401 - imported before the clock starts, as the CLI has by then
    run = run_weekly(target=dsn, history=url, week=week, out=out, target_name=TARGET, progress=False,
                     shared_kernel=(mode == "shared"))
    reports = []
    for o in run.outcomes:
        html = o.result.html.stat().st_size if o.ok else 0
        reports.append({"name": o.name, "ok": o.ok, "error": o.error, "s": o.duration_s, "html": html,
                        "findings": len(o.result.findings) if o.ok else 0})
    print(json.dumps({"wall_s": run.wall_s, "kernel_s": run.kernel_start_s, "kernels": run.kernels,
                      "share_pct": run.kernel_share_pct, "reports": reports}))


def run_child(mode: str, url: str, dsn: str, week: str, keep: Path | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"out-{mode}-", dir=WORK))
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--url", url, "--dsn", dsn,
                               "--out", str(out), "--week", week], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} run failed: {proc.stderr.strip()[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        bad = [f"{r['name']}: {r['error']}" for r in result["reports"] if not r["ok"]]
        if bad:
            raise SystemExit(f"{mode} run: a report failed: {'; '.join(bad)}")
        return result
    finally:
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(str(out), str(keep))
        else:
            shutil.rmtree(out, ignore_errors=True)


# -- what a new kernel costs ---------------------------------------------------------------

IMPORTS = ("%matplotlib inline\nfrom IPython.display import display\n"
           "from vhdiag.reports import slow_queries, slow_queries_view, capacity, handoff, figures, tables")


def kernel_cost(runs: int) -> tuple[list[float], list[float]]:
    """(seconds to a ready kernel, seconds for the reports' imports in it) of ``runs`` new kernels:
    ``WeeklyRun.kernel_start_s`` counts the first; the second falls in each notebook's first cell,
    which a shared kernel pays once."""
    from jupyter_client import KernelManager
    ready, imports = [], []
    for _ in range(runs):
        began = time.perf_counter()
        km = KernelManager(kernel_name="python3")
        km.start_kernel(cwd=str(WORK), extra_arguments=["--IPKernelApp.log_level=ERROR"])
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            ready.append(time.perf_counter() - began)
            began = time.perf_counter()
            reply = kc.execute_interactive(IMPORTS, timeout=120, output_hook=lambda msg: None)
            if reply["content"]["status"] != "ok":
                raise SystemExit(f"the reports' imports failed in a new kernel: {reply['content'].get('evalue')}")
            imports.append(time.perf_counter() - began)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return ready, imports


# -- main ----------------------------------------------------------------------------------

LABELS = {"shared": "(a) one shared kernel", "per-report": "(b) a kernel per report"}


def _stat(values, fmt="{:8.1f}") -> str:
    return f"min {fmt.format(min(values))}  median {fmt.format(statistics.median(values))}"


def report(results: dict) -> None:
    med = {}
    for mode, runs in results.items():
        wall = [r["wall_s"] for r in runs]
        kern = [r["kernel_s"] for r in runs]
        share = [r["share_pct"] for r in runs]
        med[mode] = statistics.median(wall)
        print(f"{LABELS[mode]:<26} wall {_stat(wall)} s   kernel start {_stat(kern, '{:5.1f}')} s "
              f"({runs[0]['kernels']} kernels)   share {_stat(share, '{:4.0f}')} %")
        for i, rep in enumerate(runs[0]["reports"]):
            secs = [r["reports"][i]["s"] for r in runs]
            size = [r["reports"][i]["html"] for r in runs]
            print(f"  {rep['name']:<14} wall {_stat(secs)} s   HTML {max(size) / MB:6.2f} MB "
                  f"({'under' if max(size) < HTML_LIMIT else 'OVER'} 5 MB)   findings {rep['findings']}")
    if len(med) == 2:
        print(f"ratio (a) / (b), wall time by medians: {med['shared'] / med['per-report']:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--week", default=WEEK)
    ap.add_argument("--modes", default="shared,per-report")
    ap.add_argument("--realign", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the last run's reports under the work folder")
    ap.add_argument("--child", choices=list(LABELS), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--dsn", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.url, args.dsn, args.out, args.week)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    url, store_server = open_store(args.store)
    target = None
    try:
        aligned_path = WORK / args.store / "aligned.json"
        aligned = json.loads(aligned_path.read_text()) if aligned_path.exists() else None
        if args.realign or aligned is None or aligned["week"] != args.week:
            print(f"moving the {args.store} store's week onto {args.week} and summing it again", flush=True)
            aligned = align(url, args.week)
            aligned_path.write_text(json.dumps(aligned))
            print(f"  {aligned['sums']} hours and days summed, {aligned['align_s']:.0f} s", flush=True)
        built = json.loads((WORK / args.store / "built.json").read_text())
        target = start_target()
        dsn = target.dsn(via="socket")
        load = os.getloadavg()
        print(f"{args.store} store: {built['snapshots']} snapshots x {built['statements']} statements, every "
              f"statement changing every 15 minutes; week {aligned['week']} ({aligned['first']} .. {aligned['last']})")
        print(f"weekly set: slow_queries + capacity + handoff, live target PostgreSQL 18 (embedded), "
              f"--target-name {TARGET}")
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
              f"{args.runs} runs each, alternating, each in a new process")
        results = {m: [] for m in modes}
        for i in range(args.runs):
            for mode in modes:
                keep = WORK / f"reports-{args.store}-{mode}" if args.keep and i == args.runs - 1 else None
                r = run_child(mode, url, dsn, args.week, keep)
                results[mode].append(r)
                parts = "  ".join(f"{x['name']} {x['s']:.1f} s {x['html'] / MB:.2f} MB" for x in r["reports"])
                print(f"run {i + 1} {mode:<10} wall {r['wall_s']:6.1f} s  kernel start {r['kernel_s']:5.1f} s "
                      f"({r['share_pct']:.0f} %)  {parts}", flush=True)
        report(results)
        ready, imports = kernel_cost(args.runs)
        print(f"a new kernel: ready {_stat(ready, '{:5.2f}')} s, then the reports' imports (vhdiag, pandas, "
              f"matplotlib) {_stat(imports, '{:5.2f}')} s; a run pays both once per kernel")
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        if target is not None:
            target.stop()
        if store_server is not None:
            store_server.stop()


if __name__ == "__main__":
    main()
