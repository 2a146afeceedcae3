"""What the commands share: the target and store arguments, limits, printing frames."""
from __future__ import annotations

import argparse
import sys

from ..display import echo, terminal_safe
from ..errors import VhdiagError


def dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", metavar="TARGET", default=None,
                        help="DSN, env:NAME, or omitted for $VHDIAG_DSN / $DATABASE_URL")
    parser.add_argument("--statement-timeout-ms", type=int, default=5000, metavar="MS",
                        help="statement_timeout for every query (default 5000)")


def history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", metavar="URL", default=None,
                        help="history store: a file path, sqlite:///PATH or postgresql://... "
                             "(default: $VHDIAG_HISTORY, else history.sqlite in the user data directory)")


class Parser(argparse.ArgumentParser):
    """argparse echoes what was typed ("unrecognized arguments: ..."): shown, never obeyed."""

    def _print_message(self, message, file=None):
        super()._print_message(terminal_safe(message, keep="\n") if message else message, file)


def check_limit(limit: int | None) -> None:
    """Before anything runs: ``head(-1)`` would silently drop the last row."""
    if limit is not None and limit < 0:
        raise VhdiagError(f"--limit {limit}: give a number of rows, 1 or more (0 for every row)")


def connect(args):
    from ..target import connect
    return connect(args.dsn, statement_timeout_ms=args.statement_timeout_ms)


def print_frame(frame, fmt: str, limit: int | None, columns: list[str] | None, more: str) -> None:
    """Print a frame; a table stops at 25 rows unless --limit says otherwise, and says so."""
    from ..display import render
    if limit is None and fmt == "table":
        limit = 25
    elif limit == 0:
        limit = None
    total = len(frame)
    if limit is not None:
        frame = frame.head(limit)
    sys.stdout.write(render(frame, fmt, columns))
    if fmt == "table" and total > len(frame):
        echo(f"({len(frame)} of {total} rows; {more})", file=sys.stderr)
