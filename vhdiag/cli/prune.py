"""`vhdiag prune`: history retention."""
from __future__ import annotations

import argparse

from ..display import echo
from .common import history_argument

NAME = "prune"


def register(sub) -> None:
    prune = sub.add_parser(
        "prune", help="roll up and delete old history",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sum raw statement deltas older than --raw-days into hourly roll-ups, thin older size and "
                    "database samples (hourly, daily for tables), and drop everything older than --rollup-days.",
        epilog="Example:\n  vhdiag prune --raw-days 14 --rollup-days 400\n")
    history_argument(prune)
    prune.add_argument("--raw-days", type=float, default=14, metavar="N", help="keep raw snapshots N days (14)")
    prune.add_argument("--rollup-days", type=float, default=400, metavar="N", help="keep roll-ups N days (400)")
    prune.add_argument("--keep-top", type=int, default=200, metavar="N",
                       help="per hour of roll-ups, statements kept apart (top N by time and by calls); "
                            "the rest are folded into one row (200)")


def run(args) -> int:
    from ..history import History
    with History(args.history) as history:
        result = history.prune(raw_days=args.raw_days, rollup_days=args.rollup_days, keep_top=args.keep_top)
    echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.items()))
    return 0
