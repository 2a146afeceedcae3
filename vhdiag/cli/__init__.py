"""`vhdiag ...`: thin commands over the library. Each opens, calls one function, prints.

Library errors become one ``Error: ...`` line on stderr and exit status 1; a bad command
line exits 2 (argparse). Never a traceback for an expected failure. Lines are printed with
``display.echo`` and frames with ``display.render``: control characters from the server are shown
escaped (``\\x1b``), never sent to the terminal.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from .. import __version__
from ..display import TerminalFormatter, echo
from ..errors import VhdiagError, VhdiagWarning, first_line
from ..files import private_umask
from ..redact import redact_message

EPILOG_MAIN = """\
The database is given by --dsn: a DSN (postgresql://user@host:5432/db or 'host=... dbname=...'),
env:NAME to read it from an environment variable, or nothing for $VHDIAG_DSN then $DATABASE_URL.
Every query is read-only and bounded by statement and lock timeouts.

Example:
  vhdiag demo
  vhdiag show statements --dsn env:DATABASE_URL
  vhdiag doctor
"""


from .common import Parser

# One module per command; each has NAME, register(sub) and run(args). A new command is a new
# module and one name here (the order is the order of `vhdiag --help`).
MODULES = ["show", "doctor", "demo", "snapshot", "prune", "history", "metrics", "report", "check", "triage",
           "lab"]


def _commands() -> dict:
    return {name: importlib.import_module(f"{__name__}.{name}") for name in MODULES}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vhdiag", description="PostgreSQL operations diagnostics: frames, history and reports.",
        epilog=EPILOG_MAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vhdiag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what vhdiag does to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _commands().values():
        module.register(sub)

    # Every command: --quiet prints nothing on success (cron mails only failures).
    for command in sub.choices.values():
        if "--quiet" not in command._option_string_actions:
            command.add_argument("-q", "--quiet", action="store_true",
                                 help="print nothing on success; on failure, everything and the error")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalFormatter("vhdiag: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, handlers=[handler])
    if not args.command:
        parser.print_help()
        return 2
    try:
        # Statement text is sensitive: whatever vhdiag and the processes it starts (a report's
        # kernel, nbconvert) create is the owner's alone, 0600 files and 0700 folders.
        with private_umask(), warnings.catch_warnings():
            warnings.simplefilter("always", VhdiagWarning)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            if getattr(args, "quiet", False):
                return _quietly(COMMANDS[args.command].run, args)
            return COMMANDS[args.command].run(args)
    except VhdiagError as exc:
        echo(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        echo("Error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a query failed on the server: one line, no traceback
        import sqlalchemy as sa
        if isinstance(exc, sa.exc.DBAPIError):
            echo(f"Error: query failed: {redact_message(first_line(exc))}", file=sys.stderr)
            return 1
        raise


def _quietly(command, args) -> int:
    """Run ``command`` with its output held back: nothing on success; on failure, what it
    printed, then the error (main prints it)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    ok = False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = command(args)
        ok = status == 0
        return status
    finally:
        if not ok:
            sys.stdout.write(out.getvalue())
            sys.stderr.write(err.getvalue())


def _one_line_warnings(show_other):
    """vhdiag's own warnings as one ``Warning: ...`` line, like its errors; others as before."""
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, VhdiagWarning):
            echo(f"Warning: {message}", file=sys.stderr)
        else:
            show_other(message, category, filename, lineno, file, line)
    return show


COMMANDS = _commands()
