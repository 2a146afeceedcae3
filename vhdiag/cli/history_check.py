"""`vhdiag history check`: the store's soundness, one line per finding (vhdiag/history/check.py).

Exit 0 when sound (gaps and an older schema version are information), 1 when any line is a
problem. Printed on stdout: it is the command's answer, and cron mails it with --quiet.
"""
from __future__ import annotations

from ..display import echo


def run(args) -> int:
    from ..history.check import check
    checked = check(args.history, config=getattr(args, "config", None))
    for line in checked.lines():
        echo(line)
    return 0 if checked.sound else 1
