"""`vhdiag snapshot`: recording snapshots."""
from __future__ import annotations

import argparse
import sys

from ..display import echo
from .common import connect, dsn_argument, fleet, fleet_arguments, history_argument

NAME = "snapshot"


def register(sub) -> None:
    snap = sub.add_parser(
        "snapshot", help="record one snapshot of the target in the history store",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Collect statements, table and index sizes, database statistics and connection counts, "
                    "and write them to the history store as one transaction. Counters become per-interval "
                    "deltas against the previous snapshot; pg_stat_statements is never reset. Run it from cron "
                    "every 15 minutes.",
        epilog="Example:\n  vhdiag snapshot --dsn env:DATABASE_URL --target-name vendhub-prod\n"
               "  */15 * * * *  vhdiag snapshot --dsn env:DATABASE_URL --history /var/lib/vhdiag/history.sqlite\n")
    dsn_argument(snap)
    history_argument(snap)
    snap.add_argument("--target-name", metavar="NAME", default=None,
                      help="the target's name in the store (default: host:port/dbname)")
    snap.add_argument("--no-prune", action="store_true",
                      help="skip the daily automatic prune (raw 14 days, roll-ups 400 days)")
    fleet_arguments(snap)


def run(args) -> int:
    from ..history import History
    if args.targets:
        return run_fleet(args)
    with connect(args) as target, History(args.history) as history:
        summary = history.snapshot(target, args.target_name)
        pruned = None if args.no_prune else history.auto_prune()
    report(summary, pruned, history.display)
    return 0


def report(summary: dict, pruned: dict | None, store: str, prefix: str = "") -> None:
    events = ", ".join(summary["events"]) or "none"
    line = (f"snapshot {summary['snapshot_id']} of {summary['target']} at {summary['ts']:%Y-%m-%d %H:%M:%S} UTC: "
            f"{summary['statements_changed']} statements changed, events: {events}, "
            f"written in {summary['write_ms']:.0f} ms to {store}")
    done = [f"{v} {k.replace('_', ' ')}" for k, v in (pruned or {}).items() if v]
    echo(prefix + line + (f"; retention: {', '.join(done)}" if done else ""))
    for note in summary["notes"]:
        echo(f"Note: {prefix}{note}", file=sys.stderr)


def run_fleet(args) -> int:
    """--targets: one snapshot per target, ``--jobs`` at a time, each through its own connection
    and its own store session (SQLite serialises the writes; each is one transaction)."""
    import time
    from ..fleet import run_each, worst
    from ..history import History
    from ..target import connect as open_target
    targets = fleet(args)
    started = time.perf_counter()

    def task(t):
        options = {"statement_timeout_ms": args.statement_timeout_ms, **t.connect_options()}
        with open_target(t.dsn, **options) as target, History(args.history) as history:
            summary = history.snapshot(target, t.name)
            return 0, (summary, history.display)

    with History(args.history) as history:
        history.prepare()                         # once, before the targets write in parallel
    outcomes = run_each(targets, task, jobs=args.jobs, progress=False if args.quiet else None, label="snapshot")
    pruned = None
    if not args.no_prune and any(o.value for o in outcomes):
        with History(args.history) as history:    # once for the store, after every target wrote
            pruned = history.auto_prune()
    for o in outcomes:
        if o.value is not None:
            report(o.value[0], None, o.value[1], prefix=f"{o.target.name}: ")
        else:
            echo(f"Error: {o.target.name}: {o.error}", file=sys.stderr)
    done = [f"{v} {k.replace('_', ' ')}" for k, v in (pruned or {}).items() if v]
    ok = sum(o.value is not None for o in outcomes)
    echo(f"{ok} of {len(outcomes)} targets snapshotted in {time.perf_counter() - started:.1f} s "
         f"(--jobs {args.jobs})" + (f"; retention: {', '.join(done)}" if done else ""))
    return worst(outcomes)
