"""``vhdiag report weekly``: the week's reports of one target, then its on-call handoff, in
``<out>/<target>/<year>-W<week>/`` (runbook 10 "On-Call Rotation": the handoff is weekly; the
slow-query report is the runbook's "weekly review" of query performance).

``run_weekly(target=..., week="2026-W48")`` runs ``[handoff] reports`` (slow_queries, capacity) and
then ``handoff``, which reads their summaries. One report that fails keeps its partial notebook
(the runner's ``.failed/``) and the others still run; the result says which. The reports share one
kernel (``kernel.SharedKernel``) unless ``shared_kernel=False``. A report with its own default
window (capacity: 30 days) learns from that window ending at the week's end and is filed under
the week. One target per call: a fleet (``--targets``) calls it once per target.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_config
from ..errors import ConfigError, first_line
from ..redact import redact_message
from ..timeparse import parse_duration
from . import periods, refs, registry
from .base import resolve_params
from .kernel import SharedKernel
from .runner import RunResult, run_report

HANDOFF = "handoff"


@dataclass
class Outcome:
    name: str
    result: RunResult | None = None
    error: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class WeeklyRun:
    period: str
    since: object
    until: object
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    kernel_start_s: float = 0.0
    kernels: int = 0

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def kernel_share_pct(self) -> float:
        return 100 * self.kernel_start_s / self.wall_s if self.wall_s else 0.0


def weekly_reports(config=None, names=None) -> list[str]:
    """The reports of the week (``[handoff] reports`` or ``names``), each known, then the handoff."""
    wanted = list(names) if names else list(load_config(config)["handoff"]["reports"])
    out = []
    for name in wanted:
        canonical = registry.get(name).name      # an unknown name: one line, before anything runs
        if canonical != HANDOFF and canonical not in out:
            out.append(canonical)
    return out + [HANDOFF]


def split_assignments(pairs) -> dict[str, list[str]]:
    """``-p capacity.disk_quota_bytes=1e11`` -> ``{"capacity": ["disk_quota_bytes=1e11"]}``."""
    out: dict[str, list[str]] = {}
    for pair in pairs or ():
        key, sep, _ = pair.partition("=")
        report, dot, param = key.partition(".")
        if not sep or not dot or not param.strip():
            raise ConfigError(f"bad parameter {pair!r} for the weekly run: name the report, e.g. "
                              "-p capacity.disk_quota_bytes=107374182400 or -p handoff.metrics=metrics.csv")
        out.setdefault(report.strip().replace("-", "_"), []).append(pair.split(".", 1)[1])
    return out


def run_weekly(*, target: str | None = None, history: str | None = None, week="last", out="reports",
               target_name: str | None = None, statement_timeout_ms: int | None = None, config: str | None = None,
               reports=None, assignments=None, progress: bool | None = None, shared_kernel: bool = True,
               now=None, on_done=None, banner: str | None = None) -> WeeklyRun:
    """Run the week's reports and the handoff for one target; ``on_done(outcome)`` after each."""
    began = time.perf_counter()
    names = weekly_reports(config, reports)
    given = split_assignments(assignments)
    for report in given:
        if report not in names:
            raise ConfigError(f"-p {report}.…: {report} is not a report of this weekly run ({', '.join(names)})")
    start, end = periods.calendar_window(week=week or "last", now=now)
    period = periods.period_name(start, end)
    found = load_config(config).sources
    config_path = str(Path(found[0]).resolve()) if found else None
    _, env = refs.target_reference(target)
    env.update(refs.history_reference(history)[1])
    if config_path:
        env["VHDIAG_CONFIG"] = config_path
    run = WeeklyRun(period, start, end)
    root = Path(out).expanduser().resolve()
    kernels: list[SharedKernel] = []
    with refs.exported(env):     # the kernel inherits the environment it starts in
        try:
            for name in names:
                kernel = None
                if shared_kernel and not kernels:
                    kernels.append(SharedKernel(root if root.is_dir() else Path.cwd()))
                if shared_kernel:
                    kernel = kernels[0]
                else:   # one kernel per report, measured the same way (benchmarks compare the two)
                    kernels.append(SharedKernel(root if root.is_dir() else Path.cwd()))
                    kernel = kernels[-1]
                outcome = _one(name, kernel, given.get(name), start, end, period, config_path,
                               dict(target=target, history=history, out=out, target_name=target_name,
                                    statement_timeout_ms=statement_timeout_ms, progress=progress, banner=banner))
                if not shared_kernel:
                    kernel.close()
                run.outcomes.append(outcome)
                if on_done is not None:
                    on_done(outcome)
        finally:
            for k in kernels:
                k.close()
    run.kernel_start_s = sum(k.start_s for k in kernels)
    run.kernels = sum(k.starts for k in kernels)
    run.wall_s = time.perf_counter() - began
    return run


def _one(name, kernel, assignments, start, end, period, config_path, common) -> Outcome:
    t0 = time.perf_counter()
    spec = registry.get(name)
    since = start
    try:
        if hasattr(spec.module, "default_window"):   # its own history window, ending at the week's end
            own = spec.module.default_window(resolve_params(spec.params, {}, name, config_path))
            since = end - parse_duration(own)
        result = run_report(name, since=since.isoformat(), until=end.isoformat(), folder=period, kernel=kernel,
                            assignments=assignments, config=config_path, **common)
        return Outcome(name, result=result, duration_s=time.perf_counter() - t0)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one report's failure is reported; the others run
        return Outcome(name, error=redact_message(first_line(exc)), duration_s=time.perf_counter() - t0)
