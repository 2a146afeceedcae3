"""`vhdiag show`: print one diagnostic frame, once or refreshed in place."""
from __future__ import annotations

import argparse
import sys

from ..display import echo
from ..errors import ConfigError, VhdiagError
from .common import check_limit, connect, dsn_argument, print_frame

NAME = "show"


def register(sub) -> None:
    # What `show` can print: every collector of the registry (vhdiag/collect/registry.py).
    from ..collect import registry
    frames = registry.collectors()
    width = max(len(e.name) for e in frames)
    show = sub.add_parser(
        "show", help="print one diagnostic frame", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print one of the frames the library returns, for the terminal or for scripts.",
        epilog="Frames:\n" + "".join(f"  {e.name:<{width}}  {e.description}"
                                      + (f" ({e.requirement()})" if e.min_server or e.min_pgss else "") + "\n"
                                      for e in frames) + "\nExample:\n"
               "  vhdiag show statements --dsn env:DATABASE_URL --limit 10\n"
               "  vhdiag show tables --format csv > tables.csv\n")
    show.add_argument("name", choices=[e.name for e in frames], metavar="NAME", help="which frame (see Frames below)")
    dsn_argument(show)
    show.add_argument("--format", choices=["table", "csv", "json"], default="table",
                      help="table (default, for people), csv or json (every column, for scripts)")
    show.add_argument("--limit", type=int, default=None, metavar="N",
                      help="at most N rows (default: 25 for table, all for csv/json; 0: all)")
    show.add_argument("--columns", default=None, metavar="A,B,...",
                      help="comma-separated columns to print (default: a readable subset for table)")
    show.add_argument("--sort", default=None, metavar="COLUMN", help="order rows by COLUMN (ascending; --desc)")
    show.add_argument("--desc", action="store_true", help="with --sort: largest first")
    show.add_argument("--watch", type=float, nargs="?", const=2.0, default=None, metavar="SECONDS",
                      help="refresh in place every SECONDS (default 2) until Ctrl-C")


def run(args) -> int:
    check_limit(args.limit)
    if args.watch is not None and not args.watch > 0:
        raise ConfigError(f"--watch {args.watch:g}: give a positive number of seconds, e.g. --watch 2")
    if args.desc and not args.sort:
        raise ConfigError("--desc orders the --sort column: add --sort COLUMN")
    from ..collect import registry
    entry = registry.get(args.name)
    with connect(args) as target:
        if args.watch is None:
            _show_once(target, entry, args)
            return 0
        import time
        try:
            while True:
                sys.stdout.write("\x1b[H\x1b[2J")      # home, clear: refresh in place
                echo(f"vhdiag show {args.name}: {target.display}, every {args.watch:g} s "
                     f"({pd_now():%H:%M:%S} UTC; Ctrl-C stops)")
                _show_once(target, entry, args)
                sys.stdout.flush()
                time.sleep(args.watch)
        except KeyboardInterrupt:
            echo()
            return 0


def pd_now():
    import pandas as pd
    return pd.Timestamp.now(tz="UTC")


def _show_once(target, entry, args) -> None:
    default_columns = list(entry.columns) if entry.columns else None
    frame = getattr(target, entry.method)()
    notices = [m for k, m in target.notices.items() if k not in getattr(target, "_shown_notices", set())]
    target._shown_notices = set(target.notices)
    columns = args.columns.split(",") if args.columns else (default_columns if args.format == "table" else None)
    for col in (columns or []) + ([args.sort] if args.sort else []):
        if col not in frame.columns:
            what = "--sort column" if col == args.sort else "column"
            raise VhdiagError(f"unknown {what} {col!r} for {args.name}: choose from {', '.join(frame.columns)}")
    if args.sort:
        frame = frame.sort_values(args.sort, ascending=not args.desc, kind="stable", na_position="last")
    print_frame(frame, args.format, args.limit, columns, "--limit N for more, --format csv for all")
    for message in notices:
        echo(f"Note: {message}", file=sys.stderr)
