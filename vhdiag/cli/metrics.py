"""`vhdiag metrics`: metric history, breaches and SLOs."""
from __future__ import annotations

import argparse
import sys

from ..display import echo
from ..errors import VhdiagError
from .common import history_argument

NAME = "metrics"


def register(sub) -> None:
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
    history_argument(met)
    met.add_argument("--target-name", metavar="NAME", default=None,
                     help="with 'import': the target the points belong to; with a history store: only that target")


def run(args) -> int:
    from ..display import render
    from ..metrics import breaches, cli_load, slo_report
    if args.source == "import":
        if not args.file:
            raise VhdiagError("metrics import needs a file: vhdiag metrics import FILE --target-name NAME")
        if not args.target_name:
            raise VhdiagError("metrics import needs --target-name NAME: the target the points belong to")
        from ..history import History
        from ..history.metrics import import_metrics
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
