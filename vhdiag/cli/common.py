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


def fleet_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("a fleet (instead of --dsn)")
    group.add_argument("--targets", metavar="FILE", default=None,
                       help="targets.toml: run over every target it names, in parallel (see vhdiag.fleet)")
    group.add_argument("--jobs", type=int, default=4, metavar="N", help="with --targets: targets at a time (4)")
    group.add_argument("--tag", action="append", default=[], metavar="TAG",
                       help="with --targets: only the targets with this tag; repeatable (all given must match)")
    group.add_argument("--only", action="append", default=[], metavar="NAME",
                       help="with --targets: only the target NAME; repeatable (a scheduler's task per target)")


def fleet(args):
    """The targets of --targets (after checking that --dsn and --target-name were not given too)."""
    from ..errors import ConfigError
    from ..fleet import load_targets
    if getattr(args, "dsn", None):
        raise ConfigError("give either --dsn or --targets, not both")
    if getattr(args, "target_name", None):
        raise ConfigError("--target-name names one target: with --targets each target's name comes from the file")
    return load_targets(args.targets, args.tag, only=args.only)


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
