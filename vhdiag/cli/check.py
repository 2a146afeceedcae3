"""`vhdiag check`: the morning and evening checks."""
from __future__ import annotations

import argparse
import sys

from ..display import echo
from .common import dsn_argument, fleet, fleet_arguments, history_argument

NAME = "check"


def register(sub) -> None:
    chk = sub.add_parser(
        "check", help="the runbook's morning or evening checklist: pass/warn/fail, exit 0/1/2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the runbook's daily checklist against the target: application health, database ready, "
                    "last backup (WAL archiving, a dumps directory), metrics over the last 24 h, and what "
                    "changed since the previous check (new slow queries and regressions, unused indexes, sequences, "
                    "idle-in-transaction sessions, settings, growth spikes); the evening run adds an error summary, "
                    "pending maintenance and security-relevant changes. Each "
                    "check is pass, warn or fail with one line of evidence and the fix; the results are recorded "
                    "in the history store, then --notify posts the failures and warnings to a webhook. "
                    "Exit status: 0 all pass, 1 warnings, 2 failures (a failed webhook changes nothing).",
        epilog="Example:\n  vhdiag check morning --dsn env:DATABASE_URL --history /var/lib/vhdiag/history.sqlite\n"
               "  0 9 * * *  vhdiag check morning --dsn env:DATABASE_URL --json > /var/log/vhdiag/morning.json\n"
               "  0 18 * * * vhdiag check evening --dsn env:DATABASE_URL --notify env:VHDIAG_WEBHOOK\n")
    chk.add_argument("run", choices=["morning", "evening"], metavar="RUN", help="morning or evening")
    dsn_argument(chk)
    history_argument(chk)
    chk.add_argument("--target-name", metavar="NAME", default=None,
                     help="the target's name in the store (default: host:port/dbname)")
    chk.add_argument("--format", choices=["table", "json"], default="table",
                     help="table (default, for people) or json (for machines)")
    chk.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    chk.add_argument("--no-record", action="store_true", help="do not write the results to the history store")
    chk.add_argument("--metrics", metavar="SOURCE", default=None,
                     help="metrics for the last 24 h: a CSV/Parquet file, a Prometheus URL or the history store "
                          "(default [checks] metrics)")
    chk.add_argument("--notify", metavar="URL", default=None,
                     help="post the failures and warnings to this webhook as Slack-compatible JSON; env:NAME reads "
                          "the URL from the environment (default [checks] notify_url)")
    chk.add_argument("--notify-always", action="store_true", help="post even when every check passes")
    chk.add_argument("--config", metavar="PATH", default=None,
                     help="vhdiag.toml (default: $VHDIAG_CONFIG, ./vhdiag.toml, the user config directory)")
    fleet_arguments(chk)


def run(args) -> int:
    import json
    from .. import checks
    if args.targets:
        return run_fleet(args)
    result = checks.run(args.run, target=args.dsn, history=args.history, target_name=args.target_name,
                        config=args.config, statement_timeout_ms=args.statement_timeout_ms,
                        record=not args.no_record, metrics=args.metrics, notify=args.notify,
                        notify_always=args.notify_always)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.as_json(), indent=2, ensure_ascii=True) + "\n")
        return result.exit_code
    print_result(result)
    return result.exit_code


def print_result(result) -> None:
    colour = sys.stdout.isatty()
    paint = {"pass": "\x1b[32m", "warn": "\x1b[33m", "fail": "\x1b[31m"}
    width = max((len(r.check) for r in result.results), default=5)
    since = (f"previous check {result.previous_ts:%Y-%m-%d %H:%M} UTC" if result.previous_ts is not None
             else "no previous check")
    echo(f"vhdiag check {result.kind} of {result.target} at {result.ts:%Y-%m-%d %H:%M} UTC ({since})")
    for r in result.results:
        mark = r.status.upper().ljust(4)
        if colour:  # escape codes of vhdiag's own; the text after them goes through echo's escaping
            mark = f"{paint[r.status]}{mark}\x1b[0m"
        sys.stdout.write(f"[{mark}] ")
        echo(f"{r.check:<{width}}  {r.evidence}")
        if r.fix and r.status != "pass":
            echo(f"       {'':<{width}}  fix: {r.fix}")
    counts = result.counts()
    echo(f"{len(result.results)} checks: {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail"
         + (f"; recorded in {result.recorded}" if result.recorded else "")
         + (f"; posted to {result.notified['to']}" if result.notified and result.notified["sent"] else ""))


def run_fleet(args) -> int:
    """--targets: every target's checklist, in parallel; the exit status is the worst target's
    (an unreachable target fails its database.connect check, so it counts as a failure)."""
    import json
    from .. import checks
    from ..config import load_config
    from ..fleet import run_each, worst
    targets = fleet(args)
    base = load_config(args.config)

    def task(t):
        result = checks.run(args.run, target=t.dsn, history=args.history, target_name=t.name, config=t.config(base),
                            statement_timeout_ms=t.statement_timeout_ms or args.statement_timeout_ms,
                            record=not args.no_record, metrics=args.metrics,
                            notify=args.notify, notify_always=args.notify_always)
        return result.exit_code, result

    outcomes = run_each(targets, task, jobs=args.jobs, progress=False if args.quiet else None,
                        label=f"check {args.run}")
    if args.format == "json":
        doc = {"kind": args.run, "exit_code": worst(outcomes),
               "targets": [{"name": o.target.name, "exit_code": o.status,
                            **({"result": o.value.as_json()} if o.value is not None else {"error": o.error})}
                           for o in outcomes]}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")
        return worst(outcomes)
    for o in outcomes:
        if o.value is not None:
            print_result(o.value)
        else:
            echo(f"Error: {o.target.name}: {o.error}", file=sys.stderr)
        echo()
    failed = [o.target.name for o in outcomes if o.status]
    echo(f"{len(outcomes)} targets: {len(outcomes) - len(failed)} all pass"
         + (f"; not all pass: {', '.join(failed)}" if failed else ""))
    return worst(outcomes)
