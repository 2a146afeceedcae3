"""`vhdiag doctor`: what this role can and cannot see."""
from __future__ import annotations

import argparse

from ..display import echo
from .common import connect, dsn_argument

NAME = "doctor"


def register(sub) -> None:
    doctor = sub.add_parser(
        "doctor", help="what this role can and cannot see, with the fixes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check the target: server version, pg_stat_statements, grants, settings; try every "
                    "collector and say what it returned.",
        epilog="Example:\n  vhdiag doctor --dsn postgresql://monitor@db.internal:5432/vendhub\n")
    dsn_argument(doctor)


def run(args) -> int:
    with connect(args) as target:
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
