"""`vhdiag snapshot`: recording snapshots."""
from __future__ import annotations

import argparse
import sys

from ..display import echo
from .common import connect, dsn_argument, history_argument

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


def run(args) -> int:
    from ..history import History
    with connect(args) as target, History(args.history) as history:
        summary = history.snapshot(target, args.target_name)
        pruned = None if args.no_prune else history.auto_prune()
    events = ", ".join(summary["events"]) or "none"
    line = (f"snapshot {summary['snapshot_id']} of {summary['target']} at {summary['ts']:%Y-%m-%d %H:%M:%S} UTC: "
            f"{summary['statements_changed']} statements changed, events: {events}, "
            f"written in {summary['write_ms']:.0f} ms to {history.display}")
    done = [f"{v} {k.replace('_', ' ')}" for k, v in (pruned or {}).items() if v]
    echo(line + (f"; retention: {', '.join(done)}" if done else ""))
    for note in summary["notes"]:
        echo(f"Note: {note}", file=sys.stderr)
    return 0
