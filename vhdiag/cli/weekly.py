"""`vhdiag report weekly`: the week's reports and the on-call handoff of one target (a helper of
the `report` command, not a command of its own)."""
from __future__ import annotations

import logging

from ..display import echo

log = logging.getLogger("vhdiag")


def add_arguments(rep) -> None:
    group = rep.add_argument_group("vhdiag report weekly")
    group.add_argument("--reports", metavar="A,B", default=None,
                       help="weekly: the reports run before the handoff (default: [handoff] reports, "
                            "slow_queries,capacity); -p NAME.key=value sets one report's parameter")
    group.add_argument("--kernel-per-report", action="store_true",
                       help="weekly: start a kernel per report instead of sharing one (for comparison)")


def run(args) -> int:
    """One line per report (ok, or failed and why); 0 when all were written, 1 otherwise."""
    from ..errors import VhdiagError
    from ..reports.weekly import run_weekly
    if args.month or args.day or args.since or args.until or args.window:
        raise VhdiagError("vhdiag report weekly runs calendar weeks: give --week 2026-W48 (or nothing: the last "
                          "complete week)")

    def done(o) -> None:
        if o.ok:
            counts = {s: sum(f.get("severity") == s for f in o.result.findings) for s in ("critical", "warning", "info")}
            found = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
            echo(f"ok      {o.name}: {found}: {o.result.html} ({o.duration_s:.1f} s)")
        else:
            echo(f"FAILED  {o.name}: {o.error}")

    names = [n.strip() for n in args.reports.split(",") if n.strip()] if args.reports else None
    run = run_weekly(target=args.dsn, history=args.history, week=args.week or "last", out=args.out,
                     target_name=args.target_name, statement_timeout_ms=args.statement_timeout_ms,
                     config=args.config, reports=names, assignments=args.parameters,
                     progress=False if args.quiet else None, shared_kernel=not args.kernel_per_report, on_done=done)
    failed = [o.name for o in run.outcomes if not o.ok]
    echo(f"week {run.period}: {len(run.outcomes) - len(failed)} of {len(run.outcomes)} reports written"
         + (f"; failed: {', '.join(failed)}" if failed else ""))
    if getattr(args, "verbose", False):
        echo(f"kernel start: {run.kernel_start_s:.1f} s of {run.wall_s:.1f} s wall ({run.kernel_share_pct:.0f} %), "
             f"{run.kernels} kernel(s) for {len(run.outcomes)} reports")
    return 0 if not failed else 1
