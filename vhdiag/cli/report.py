"""`vhdiag report`: running reports."""
from __future__ import annotations

import argparse
import sys

from ..display import echo
from ..errors import VhdiagError
from . import weekly
from .common import dsn_argument, fleet, fleet_arguments, history_argument

NAME = "report"


def register(sub) -> None:
    rep = sub.add_parser(
        "report", help="run a report: HTML without code, the executed notebook, findings as JSON",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Execute a report's notebook with papermill for a period and write, under "
                    "OUT/<target>/<period>/ (2026-W48, 2026-11, 2026-11-29, else the window's bounds): NAME.ipynb "
                    "(executed), NAME.html (no code cells, plots inline), NAME.summary.json (findings) and "
                    "NAME.report.json; OUT/index.html lists every report, failed runs included. The files appear "
                    "only when the whole report is done. The notebook gets env:NAME references, never a DSN with "
                    "a password.",
        epilog=report_epilog())
    rep.add_argument("name", metavar="NAME", nargs="?",
                     help="the report (vhdiag report --list), or weekly: the week's reports and the on-call handoff")
    rep.add_argument("--list", action="store_true", help="list the reports and their parameters, then exit")
    dsn_argument(rep)
    history_argument(rep)
    rep.add_argument("--target-name", metavar="NAME", default=None,
                     help="the target's name in the history store, as vhdiag snapshot recorded it "
                          "(default: host:port/dbname, as snapshot's default)")
    period = rep.add_argument_group("the period (one of)")
    period.add_argument("--week", nargs="?", const="last", default=None, metavar="YYYY-Www",
                        help="an ISO week in UTC, e.g. 2026-W48 (alone: the last complete week)")
    period.add_argument("--month", nargs="?", const="last", default=None, metavar="YYYY-MM",
                        help="a calendar month in UTC (alone: the last complete month)")
    period.add_argument("--day", nargs="?", const="last", default=None, metavar="YYYY-MM-DD",
                        help="a day in UTC (alone: yesterday)")
    period.add_argument("--since", default=None, metavar="TIME", help="window start: ISO 8601 or a duration back (7d)")
    period.add_argument("--until", default=None, metavar="TIME", help="window end (default now)")
    period.add_argument("--window", default=None, metavar="DURATION",
                        help="window length back from --until, instead of --since (default 7d; a report may "
                             "have its own, e.g. capacity: -p window, 30d)")
    rep.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default ./reports)")
    rep.add_argument("-p", "--parameter", action="append", default=[], metavar="KEY=VALUE", dest="parameters",
                     help="a report parameter, e.g. -p top_n=20 -p slow_ms=500 (defaults: the settings); repeatable")
    fleet_arguments(rep)
    rep.add_argument("--config", metavar="PATH", default=None,
                     help="vhdiag.toml whose settings the report uses (default: $VHDIAG_CONFIG, ./vhdiag.toml, "
                          "the user config directory)")
    weekly.add_arguments(rep)


def run(args) -> int:
    from ..reports import registry, run_report
    if args.list:
        for spec in registry.reports().values():
            echo(f"{spec.name}: {spec.title} ({spec.description})")
            for p in spec.params:
                if not p.internal:
                    default = f"setting {p.setting}" if p.setting else repr(p.default)
                    echo(f"  -p {p.name}=<{p.type.__name__}>  {p.help} (default: {default})")
        return 0
    if not args.name:
        raise VhdiagError("name a report (vhdiag report --list shows them), e.g. vhdiag report slow_queries")
    if args.targets:
        return run_fleet(args)
    if args.name == "weekly":
        return weekly.run(args)
    if args.reports or args.kernel_per_report:
        raise VhdiagError("--reports and --kernel-per-report are for vhdiag report weekly")
    if args.since and args.window:
        raise VhdiagError("give either --since/--until or --window, not both")
    result = run_report(args.name, target=args.dsn, history=args.history, since=args.since, until=args.until,
                        window=args.window, week=args.week, month=args.month, day=args.day, out=args.out,
                        assignments=args.parameters, target_name=args.target_name, config=args.config,
                        statement_timeout_ms=args.statement_timeout_ms, progress=False if args.quiet else None)
    print_result(result)
    return 0


def print_result(result) -> None:
    counts = {s: sum(f.get("severity") == s for f in result.findings) for s in ("critical", "warning", "info")}
    found = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    echo(f"report {result.name} of {result.target} for {result.period}: {result.html}")
    echo(f"findings: {found} ({result.summary}); executed notebook: {result.notebook}; "
         f"{result.duration_s:.1f} s")


def run_fleet(args) -> int:
    """--targets: the report for every target, ``--jobs`` at a time, each with its own settings
    (vhdiag.toml under the target's [targets.NAME.settings]); one failing target is one error
    line and the others are written. Exit 1 when any failed.

    Each target runs as its own ``vhdiag report`` process: a run hands the kernel its DSN
    reference and settings through the environment, which threads would share. A report starts
    a kernel process anyway, so the extra process costs little."""
    import subprocess
    import tempfile
    from pathlib import Path

    import tomli_w

    from ..config import load_config
    from ..files import write_private
    from ..fleet import run_each, worst
    from ..reports import html
    targets = fleet(args)
    base = load_config(args.config)
    common = [f"--{flag}={value}" for flag, value in
              (("history", args.history), ("out", args.out), ("since", args.since), ("until", args.until),
               ("window", args.window), ("week", args.week), ("month", args.month), ("day", args.day))
              if value is not None]
    common += [f"--parameter={p}" for p in args.parameters]
    if args.name == "weekly":   # the weekly run's own options, for each target's run
        common += [f"--reports={args.reports}"] if args.reports else []
        common += ["--kernel-per-report"] if args.kernel_per_report else []

    def task(t):
        with tempfile.TemporaryDirectory(prefix="vhdiag-target-") as tmp:
            config = [f"--config={args.config}"] if args.config else []
            if t.settings:    # the kernel reads settings from a file: this target's, merged
                write_private(Path(tmp) / "vhdiag.toml", tomli_w.dumps(dict(t.config(base))))
                config = [f"--config={Path(tmp) / 'vhdiag.toml'}"]
            timeout = t.statement_timeout_ms or args.statement_timeout_ms
            proc = subprocess.run([sys.executable, "-m", "vhdiag", "report", args.name, f"--dsn={t.dsn}",
                                   f"--target-name={t.name}", f"--statement-timeout-ms={timeout}", *config, *common],
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
        errors = [l.removeprefix("Error: ") for l in proc.stderr.splitlines() if l.startswith("Error: ")]
        if proc.returncode and not proc.stdout.strip():
            raise VhdiagError(errors[-1] if errors else f"vhdiag report exited with {proc.returncode}")
        return proc.returncode, (proc.stdout, errors)   # the weekly run: some reports written, one failed

    outcomes = run_each(targets, task, jobs=args.jobs, progress=False if args.quiet else None,
                        label=f"report {args.name}")
    html.write_index(Path(args.out))   # once more after every target: parallel runs each wrote it
    for o in outcomes:
        if o.value is None:
            echo(f"Error: {o.target.name}: {o.error}", file=sys.stderr)
            continue
        stdout, errors = o.value
        for line in stdout.splitlines():
            sys.stdout.write(f"{o.target.name}: {line}\n")   # already made terminal-safe by the child
        for line in errors or ([f"a report failed (exit status {o.status})"] if o.status else []):
            echo(f"Error: {o.target.name}: {line}", file=sys.stderr)
    return worst(outcomes)


def report_epilog() -> str:
    from ..reports import registry
    lines = ["Reports:"] + [f"  {spec.name:<14} {spec.title}: {spec.description}"
                            for spec in registry.reports().values()]
    lines.append(f"  {'weekly':<14} the week's reports, then the on-call handoff (exit 1 when one failed)")
    return "\n".join(lines + ["", "Example:", "  vhdiag report slow-queries --dsn env:DATABASE_URL --week",
                               "  vhdiag report weekly --dsn env:DATABASE_URL --week 2026-W48 -p handoff.metrics=metrics.csv",
                               "  vhdiag report slow_queries --since 2026-11-23 --until 2026-11-30 -p top_n=20 "
                               "--out /srv/reports", "  vhdiag report --list"])
