"""A real Prometheus for the metric tests, loaded with known history. Never a mock.

Debian's ``prometheus`` package provides ``/usr/bin/prometheus`` and ``/usr/bin/promtool``
(``apt-get install prometheus``). The session fixture ``prometheus``:

1. writes planted history as OpenMetrics text (timestamps in seconds) ending a few hours
   before now, since backfilled blocks must be older than what the head block will hold;
2. turns it into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics FILE DIR``;
3. starts ``prometheus`` on that directory, on a free loopback port, with no scrape targets
   and 100 years of retention, and waits for ``/-/ready``;
4. stops it at session end, even when tests fail.

Missing binaries skip the tests on a developer machine and fail them under CI (``CI=true``).

Planted series (all at a 15 s step, sample i at ``start + 15*i`` seconds):

- ``vhdiag_planted_cpu_pct{instance="planted:9100",job="node"}``: a 7-day gauge (40,321
  samples, so loading it takes four requests of at most 11,000 points), baseline 40..46 with
  episodes above 70 and 85 at known samples (``CPU_EPISODES``).
- The last three hours (``counters_start`` to ``end``), in three one-hour segments, what the
  default PromQL of ``defaults.toml`` reads: ``node_cpu_seconds_total`` (two CPUs, idle and
  user modes), ``node_memory_MemAvailable_bytes`` / ``MemTotal_bytes``, ``http_requests_total``
  by status, ``http_request_duration_seconds`` buckets and ``pg_stat_activity_count`` by
  state. ``EXPECTED_DEFAULTS`` holds what each default query must give in each segment.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vhdiag.server import free_port

IN_CI = os.environ.get("CI", "").lower() == "true"
STEP_S = 15
DAYS = 7
N_CPU = DAYS * 86400 // STEP_S + 1         # 40,321 samples: 7 days, both ends included
SEGMENT_S = 3600                           # the default-query series: three segments of one hour
CPU_LABELS = {"instance": "planted:9100", "job": "node"}

# (first sample, last sample, value): the planted gauge's episodes, applied in order.
CPU_EPISODES = [
    (1000, 1019, 75.5),                   # warning only: 20 samples
    (1020, 1020, 70.0),                   # exactly 70 is not above: ends the warning
    (5000, 5039, 80.0),                   # warning ...
    (5010, 5019, 90.0),                   # ... with a critical stretch inside
    (5015, 5015, 95.25),                  # the peak
    (5020, 5020, 85.0),                   # exactly 85 is not critical, still warning
    (9000, 9000, 71.0),                   # one sample: a 15 s warning
    (10990, 11010, 77.0),                 # across the first request boundary (sample 11,000)
    (N_CPU - 4, N_CPU - 1, 88.0),         # still critical when the data ends: open
]

# Per segment: idle rate of cpu0 and cpu1 (seconds per second), MemAvailable bytes.
IDLE_RATES = [(0.25, 0.5), (0.125, 0.125), (0.5, 0.5)]
MEM_TOTAL = 8 * 2**30
MEM_AVAILABLE = [2 * 2**30, 2**29, 4 * 2**30]
HTTP_RATES = {"200": 90.0, "404": 5.0, "500": 3.0, "503": 2.0}       # requests per second
BUCKET_RATES = {"0.1": 50.0, "0.25": 80.0, "0.5": 90.0, "1": 96.0, "2.5": 99.0, "5": 100.0, "+Inf": 100.0}
ACTIVITY = {"active": 5.0, "idle": 12.0, "idle in transaction": 2.0}
EXPECTED_DEFAULTS = {
    "cpu_pct": [100 * (1 - (a + b) / 2) for a, b in IDLE_RATES],          # 62.5, 87.5, 50
    "memory_pct": [100 * (1 - m / MEM_TOTAL) for m in MEM_AVAILABLE],      # 75, 93.75, 50
    "error_rate_pct": [5.0] * 3,                                          # 5 of 100 req/s are 5xx
    "response_time_p95_ms": [(0.5 + 0.5 * (95 - 90) / (96 - 90)) * 1000] * 3,  # in the (0.5, 1] bucket
    "db_connections": [19.0] * 3,
}


def cpu_values() -> list[float]:
    values = [40.0 + i % 7 for i in range(N_CPU)]
    for first, last, value in CPU_EPISODES:
        for i in range(first, last + 1):
            values[i] = value
    return values


@dataclass
class PlantedPrometheus:
    url: str
    start: int                  # epoch seconds of the gauge's first sample
    end: int                    # epoch seconds of every series' last sample
    data_dir: Path
    log_path: Path
    cpu: list[float] = field(default_factory=cpu_values)

    def ts(self, i: int) -> int:
        """Epoch seconds of planted sample i."""
        return self.start + STEP_S * i

    @property
    def counters_start(self) -> int:
        return self.end - 3 * SEGMENT_S


def _find(name: str) -> str | None:
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    return found


def _fmt(value: float) -> str:
    return repr(float(value))


def write_openmetrics(path: Path, start: int, end: int) -> None:
    lines = ["# TYPE vhdiag_planted_cpu_pct gauge"]
    labels = ",".join(f'{k}="{v}"' for k, v in CPU_LABELS.items())
    for i, value in enumerate(cpu_values()):
        lines.append(f"vhdiag_planted_cpu_pct{{{labels}}} {_fmt(value)} {start + STEP_S * i}")
    c0 = end - 3 * SEGMENT_S
    times = list(range(c0, end + 1, STEP_S))

    def counter(rate_of):  # cumulative values of a counter whose rate per segment rate_of(seg) gives
        total, out = 1000.0, []
        for j, t in enumerate(times):
            if j:
                total += STEP_S * rate_of(min((t - 1 - c0) // SEGMENT_S, 2))
            out.append((t, total))
        return out

    lines.append("# TYPE node_cpu_seconds counter")
    for cpu in (0, 1):
        for mode in ("idle", "user"):
            rate = (lambda s, cpu=cpu: IDLE_RATES[s][cpu]) if mode == "idle" else (lambda s, cpu=cpu: 1 - IDLE_RATES[s][cpu])
            for t, v in counter(rate):
                lines.append(f'node_cpu_seconds_total{{cpu="{cpu}",instance="planted:9100",job="node",mode="{mode}"}} '
                             f"{_fmt(v)} {t}")
    for name, value_of in (("node_memory_MemTotal_bytes", lambda s: MEM_TOTAL),
                           ("node_memory_MemAvailable_bytes", lambda s: MEM_AVAILABLE[s])):
        lines.append(f"# TYPE {name} gauge")
        for t in times:
            seg = min((t - c0) // SEGMENT_S, 2)
            lines.append(f'{name}{{instance="planted:9100",job="node"}} {_fmt(value_of(seg))} {t}')
    lines.append("# TYPE http_requests counter")
    for status, rate in HTTP_RATES.items():
        for t, v in counter(lambda s, rate=rate: rate):
            lines.append(f'http_requests_total{{job="api",status="{status}"}} {_fmt(v)} {t}')
    lines.append("# TYPE http_request_duration_seconds histogram")
    for le, rate in BUCKET_RATES.items():
        for t, v in counter(lambda s, rate=rate: rate):
            lines.append(f'http_request_duration_seconds_bucket{{job="api",le="{le}"}} {_fmt(v)} {t}')
    lines.append("# TYPE pg_stat_activity_count gauge")
    for state, value in ACTIVITY.items():
        for t in times:
            lines.append(f'pg_stat_activity_count{{datname="vendhub",state="{state}"}} {_fmt(value)} {t}')
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


def _fail_or_skip(reason: str):
    if IN_CI:
        pytest.fail(f"CI must test this, but: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def prometheus():
    """A running Prometheus with the planted history (a ``PlantedPrometheus``)."""
    prom, promtool = _find("prometheus"), _find("promtool")
    if not prom or not promtool:
        _fail_or_skip("prometheus and promtool are not installed (apt-get install prometheus)")
    base = Path(tempfile.mkdtemp(prefix="vhdiag-prom-"))
    # Backfilled blocks must not reach into the head block's range: end 4 hours before now.
    end = (int(time.time()) // 3600) * 3600 - 4 * 3600
    start = end - (N_CPU - 1) * STEP_S
    data, log_path = base / "data", base / "prometheus.log"
    proc = None
    try:
        om = base / "planted.om"
        write_openmetrics(om, start, end)
        made = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)],
                              capture_output=True, text=True)
        if made.returncode != 0:
            pytest.fail(f"promtool could not create blocks: {made.stderr.strip()[-2000:]}", pytrace=False)
        cfg = base / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 15s\n")  # no scrape targets: only planted data
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [prom, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc, log_path)
        yield PlantedPrometheus(url=url, start=start, end=end, data_dir=data, log_path=log_path)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}: {log_path.read_text()[-2000:]}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"prometheus not ready after {timeout_s:g}s: {log_path.read_text()[-2000:]}", pytrace=False)
