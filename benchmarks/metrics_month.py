"""Metric history of a month: 30 days at 15 s of the five runbook metrics, from a real Prometheus
and from a Parquet file, against the plainest way to read each.

Issue 13, benchmark 4. Five series (``cpu_pct``, ``memory_pct``, ``error_rate_pct``,
``response_time_p95_ms``, ``db_connections``), 172,801 samples each (864,005 in all), planted as
gauges named ``vhdiag_bench_<metric>{instance="db1:9100",job="bench"}``:

- **Prometheus**: the samples written as OpenMetrics text, turned into TSDB blocks with
  ``promtool tsdb create-blocks-from openmetrics`` (as tests/prometheus_harness.py does), and a
  ``prometheus`` started on that directory (no scrape targets; the data ends 4 hours before the
  build, since backfilled blocks must stay out of the head block's range). The directory is kept
  under /tmp between runs. promtool writes 2-hour blocks (361 for 30 days), which Prometheus
  compacts in the background over its first starts; the count printed is what the run found.
  - vhdiag: ``load_metrics(url, since, until, step="15s", queries={metric: promql})``: chunked
    range reads of at most 11,000 points (16 requests per series);
  - raw: the same 16 x 5 ``/api/v1/query_range`` requests through urllib, ``json.loads``, and one
    pandas frame of (ts, metric, value) built from the arrays.
- **Parquet**: the same samples as a long frame (ts, metric, value, labels) written once.
  - vhdiag: ``load_metrics(path)`` (every check of vhdiag/metrics/files.py);
  - raw: ``pandas.read_parquet(path)``.

Each read ``--runs`` times, each in a new Python process (imports done before timing): wall
time, and peak memory as the process's peak RSS minus its RSS before the read.

    /work/main/.venv/bin/python benchmarks/metrics_month.py --runs 5
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

WORK = Path(os.environ.get("VHDIAG_BENCH_WORK", "/tmp/vhdiag-bench-metrics"))
STEP_S = 15
METRICS = ["cpu_pct", "memory_pct", "error_rate_pct", "response_time_p95_ms", "db_connections"]
LABELS = {"instance": "db1:9100", "job": "bench"}
MAX_POINTS = 11_000


def values(days: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sample offsets (s) and each metric's values: daily waves plus noise, all finite."""
    n = days * 86400 // STEP_S + 1
    t = np.arange(n, dtype=np.int64) * STEP_S
    rng = np.random.default_rng(20261129)
    day = np.sin(2 * np.pi * t / 86400)
    out = {
        "cpu_pct": 45 + 20 * day + rng.normal(0, 5, n),
        "memory_pct": 60 + 10 * day + rng.normal(0, 2, n),
        "error_rate_pct": np.abs(rng.normal(0.1, 0.2, n)),
        "response_time_p95_ms": 300 + 150 * day + np.abs(rng.normal(0, 80, n)),
        "db_connections": np.round(15 + 6 * day + rng.normal(0, 2, n)),
    }
    return t, {k: np.round(v, 3) for k, v in out.items()}


def build(days: int) -> dict:
    """OpenMetrics -> TSDB blocks, and the Parquet file; returns the range (epoch s)."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    end = (int(time.time()) // 3600) * 3600 - 4 * 3600
    start = end - days * 86400
    t, vals = values(days)
    om = WORK / "month.om"
    labels = ",".join(f'{k}="{v}"' for k, v in LABELS.items())
    began = time.perf_counter()
    with om.open("w") as fh:
        for metric in METRICS:
            fh.write(f"# TYPE vhdiag_bench_{metric} gauge\n")
            lines = [f"vhdiag_bench_{metric}{{{labels}}} {v!r} {start + int(s)}\n" for s, v in zip(t, vals[metric].tolist())]
            fh.writelines(lines)
        fh.write("# EOF\n")
    made = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(om),
                           str(WORK / "data")], capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(f"promtool failed: {made.stderr[-2000:]}")
    om.unlink()
    frame = pd.concat([pd.DataFrame({"ts": pd.to_datetime((start + t) * 1000, unit="ms", utc=True), "metric": m,
                                     "value": vals[m], "labels": json.dumps(LABELS, sort_keys=True,
                                                                            separators=(",", ":"))})
                       for m in METRICS], ignore_index=True)
    frame.to_parquet(WORK / "month.parquet", index=False)
    info = {"start": start, "end": end, "days": days, "samples": len(frame), "build_s": time.perf_counter() - began}
    (WORK / "built.json").write_text(json.dumps(info))
    return info


def start_prometheus():
    from vhdiag.server import free_port
    cfg = WORK / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 15s\n")
    port = free_port()
    log = (WORK / "prometheus.log").open("ab")
    proc = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={WORK / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
                             "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"prometheus exited: {(WORK / 'prometheus.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    # Wait until the block count holds still for 5 s (a compaction in progress settles).
    blocks, still = -1, 0
    while still < 5:
        now = sum(1 for p in (WORK / "data").iterdir() if p.is_dir() and len(p.name) == 26)
        still = still + 1 if now == blocks else 0
        blocks = now
        time.sleep(1)
    return proc, url, blocks


# -- the measured reads (each in a child process) ----------------------------------------------

def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raw_prometheus(url, start, end) -> pd.DataFrame:
    """The plainest client: one query_range per 11,000 points, json.loads, numpy, one frame."""
    frames = []
    n = (end - start) // STEP_S + 1
    for metric in METRICS:
        ts_parts, val_parts = [], []
        for first in range(0, n, MAX_POINTS):
            last = min(first + MAX_POINTS - 1, n - 1)
            q = urllib.parse.urlencode({"query": f"vhdiag_bench_{metric}", "start": start + first * STEP_S,
                                        "end": start + last * STEP_S, "step": STEP_S})
            with urllib.request.urlopen(f"{url}/api/v1/query_range?{q}", timeout=60) as resp:
                data = json.loads(resp.read())
            for series in data["data"]["result"]:
                arr = np.array(series["values"], dtype=object)
                ts_parts.append(arr[:, 0].astype("float64"))
                val_parts.append(arr[:, 1].astype("float64"))
        frames.append(pd.DataFrame({"ts": pd.to_datetime(np.concatenate(ts_parts), unit="s", utc=True),
                                    "metric": metric, "value": np.concatenate(val_parts)}))
    return pd.concat(frames, ignore_index=True)


def child(kind: str, url: str, start: int, end: int) -> None:
    import vhdiag.metrics as M
    since, until = pd.Timestamp(start, unit="s", tz="UTC"), pd.Timestamp(end, unit="s", tz="UTC")
    parquet = WORK / "month.parquet"
    import pyarrow  # noqa: F401  (imports before timing, for both sides)
    before = _rss_kib()
    began = time.perf_counter()
    if kind == "vhdiag-prometheus":
        frame = M.load_metrics(url, since, until, step="15s", queries={m: f"vhdiag_bench_{m}" for m in METRICS})
    elif kind == "raw-prometheus":
        frame = raw_prometheus(url, start, end)
    elif kind == "vhdiag-parquet":
        frame = M.load_metrics(str(parquet))
    else:
        frame = pd.read_parquet(parquet)
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"s": elapsed, "peak_mib": (peak - before) / 1024, "rows": len(frame),
                      "sum": float(frame["value"].sum())}))


def run_child(kind, url, info) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--url", url or "",
                           "--start", str(info["start"]), "--end", str(info["end"])], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--end", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.url, args.start, args.end)
    info_path = WORK / "built.json"
    info = json.loads(info_path.read_text()) if info_path.exists() and not args.rebuild else None
    if info is None or info["days"] != args.days:
        print(f"building {args.days} days at {STEP_S} s of {len(METRICS)} metrics (promtool backfill, Parquet)",
              flush=True)
        info = build(args.days)
        print(f"built in {info['build_s']:.0f} s", flush=True)
    proc, url, blocks = start_prometheus()
    try:
        load = os.getloadavg()
        print(f"{info['days']} days at {STEP_S} s: {len(METRICS)} series, {info['samples']:,} samples; Prometheus "
              f"{subprocess.run(['prometheus', '--version'], capture_output=True, text=True).stdout.split()[2]} "
              f"with {blocks} blocks; Parquet {(WORK / 'month.parquet').stat().st_size / 2**20:.1f} MiB")
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
              f"{args.runs} runs each, each in a new process")
        med = {}
        for source, pair in (("Prometheus", ("raw-prometheus", "vhdiag-prometheus")),
                             ("Parquet", ("raw-parquet", "vhdiag-parquet"))):
            results = {k: [run_child(k, url, info) for _ in range(args.runs)] for k in pair}
            for kind in pair:
                rows = results[kind]
                times = [r["s"] * 1000 for r in rows]
                med[kind] = statistics.median(times)
                label = {"raw-prometheus": "raw: query_range loop (urllib, json, pandas)",
                         "vhdiag-prometheus": "vhdiag: load_metrics(Prometheus URL, step=15s)",
                         "raw-parquet": "raw: pandas.read_parquet",
                         "vhdiag-parquet": "vhdiag: load_metrics(Parquet file)"}[kind]
                print(f"{label:<50} min {min(times):8.1f} ms  median {med[kind]:8.1f} ms  peak memory added "
                      f"median {statistics.median(r['peak_mib'] for r in rows):6.1f} MiB  rows {rows[0]['rows']:,}")
            a, b = (results[k][0] for k in pair)
            if a["rows"] != b["rows"] or abs(a["sum"] - b["sum"]) > 1e-6 * abs(a["sum"]):
                raise SystemExit(f"{source}: the two reads disagree: {a} {b}")
            print(f"{source}: ratio vhdiag / raw (medians) {med[pair[1]] / med[pair[0]]:.2f}x")
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
