"""`vhdiag history`: reading the history store."""
from __future__ import annotations

import argparse

from .common import check_limit, history_argument, print_frame

NAME = "history"

HISTORY_VIEWS = {
    "statements": ["queryid", "user", "database", "calls", "total_exec_ms", "mean_exec_ms", "rows",
                   "complete", "notes", "query"],
    "snapshots": ["snapshot_id", "ts", "interval_s", "events", "notes", "duration_ms"],
    "table-growth": ["schema", "table", "start_ts", "end_ts", "end_total_bytes", "growth_bytes",
                     "growth_bytes_per_day", "n_tup_ins", "n_tup_del", "complete"],
    "database-series": ["ts", "database", "tps", "rollback_pct", "cache_hit_pct", "size_bytes", "connections",
                        "complete", "events"],
}



def register(sub) -> None:
    hist = sub.add_parser(
        "history", help="print a window of the history store",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read the history store: statements summed over a window, snapshots, table growth, "
                    "database series. --since/--until take ISO 8601 times (2026-11-29T12:00:00Z) or durations "
                    "back from now (7d, 24h).",
        epilog="Views: " + ", ".join(HISTORY_VIEWS) + ", check\n\nExample:\n"
               "  vhdiag history statements --since 7d --limit 10\n"
               "  vhdiag history table-growth --since 30d --format csv\n"
               "  vhdiag history check\n")
    hist.add_argument("view", choices=[*HISTORY_VIEWS, "check"], metavar="VIEW",
                      help=", ".join(HISTORY_VIEWS) + "; check: is the store sound (integrity, orphan rows, "
                           "schema version, gaps)? exit 1 with one line per problem")
    history_argument(hist)
    hist.add_argument("--target-name", metavar="NAME", default=None,
                      help="which target (needed when the store holds several)")
    hist.add_argument("--since", default=None, metavar="TIME", help="start: ISO 8601 or a duration back (7d)")
    hist.add_argument("--until", default=None, metavar="TIME", help="end: ISO 8601 or a duration back (default now)")
    hist.add_argument("--format", choices=["table", "csv", "json"], default="table")
    hist.add_argument("--limit", type=int, default=None, metavar="N",
                      help="at most N rows (default: 25 for table, all for csv/json; 0: all)")
    hist.add_argument("--config", metavar="PATH", default=None,
                      help="vhdiag.toml for check's [history] gap_factor (default: $VHDIAG_CONFIG, ./vhdiag.toml, ...)")


def run(args) -> int:
    if args.view == "check":
        from .history_check import run as run_check
        return run_check(args)
    from ..history import History
    from ..timeparse import parse_window
    check_limit(args.limit)
    args.since, args.until = parse_window(args.since, args.until, open_start=True)  # before the store opens
    with History(args.history) as history:
        if args.view == "snapshots":
            frame = history.snapshots(args.target_name, since=args.since, until=args.until)
        else:
            method = {"statements": history.statements, "table-growth": history.table_growth,
                      "database-series": history.database_series}[args.view]
            frame = method(since=args.since, until=args.until, target=args.target_name)
    print_frame(frame, args.format, args.limit, HISTORY_VIEWS[args.view] if args.format == "table" else None,
                 "--limit N for more")
    return 0
