"""`vhdiag triage`: the runbook's common issues diagnosed live, in the terminal or as JSON."""
from __future__ import annotations

import argparse
import sys

from ..display import echo, render
from ..errors import ConfigError
from .common import connect, dsn_argument

NAME = "triage"


def register(sub) -> None:
    p = sub.add_parser(
        "triage", help="what is burning now, connections, who blocks whom, and a verdict per runbook issue",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Diagnose the runbook's common issues (High CPU Usage, Database Connection Issues, Slow "
                    "Queries) live: two pg_stat_statements samples --interval seconds apart give the statements "
                    "burning time now; connections by state, application, user and client against max_connections "
                    "and 20/30; the blocking tree, root blockers first; long statements and transactions; a verdict "
                    "per issue with the runbook's solutions and the commands to run by hand (as text: vhdiag runs "
                    "none, and resets nothing).",
        epilog="Cost on the server: one round of four light read-only queries per sample (pg_stat_statements, "
               "pg_stat_activity twice, pg_locks for the sessions in a blocking chain), plus the table and index "
               "statistics once for the index advice. --watch reuses the previous sample, so each refresh is one "
               "such round (no index advice), every --interval seconds.\n\n"
               "Example:\n  vhdiag triage --dsn env:DATABASE_URL\n  vhdiag triage --watch --interval 5\n"
               "  vhdiag triage --json > triage.json")
    dsn_argument(p)
    p.add_argument("--interval", type=float, default=None, metavar="SECONDS",
                   help="seconds between the two samples, and between refreshes (default: [triage] interval_s, 10)")
    p.add_argument("--json", action="store_true", help="print the sections as JSON, for machines")
    p.add_argument("--watch", action="store_true", help="refresh in place every --interval seconds until Ctrl-C")
    p.add_argument("--config", metavar="PATH", default=None, help="vhdiag.toml with the thresholds to use")


def run(args) -> int:
    from ..config import load_config
    from ..triage import triage
    if args.interval is not None and not args.interval > 0:
        raise ConfigError(f"--interval {args.interval:g}: give a positive number of seconds, e.g. --interval 10")
    if args.watch and args.json:
        raise ConfigError("--watch refreshes a screen: leave out --json (or run --json from a loop)")
    config = load_config(args.config)
    with connect(args) as target:
        if not args.watch:
            result = triage(target, args.interval, config=config)
            if args.json:
                sys.stdout.write(result.as_json() + "\n")
            else:
                show(result)
            return 0
        import time
        result = None
        try:
            while True:
                result = triage(target, args.interval, config=config, advice=False, previous=result)
                sys.stdout.write("\x1b[H\x1b[2J")      # home, clear: refresh in place
                show(result, watch=True)
                sys.stdout.flush()
                time.sleep(result.interval_s if args.interval is None else args.interval)
        except KeyboardInterrupt:
            echo()
            return 0


def show(t, watch: bool = False) -> None:
    """The sections for people; every name and statement escaped (display.echo and render)."""
    echo(f"vhdiag triage: {t.target}, {t.since:%H:%M:%S} to {t.until:%H:%M:%S} UTC ({t.interval_s:.1f} s)"
         + ("; Ctrl-C stops" if watch else ""))
    echo()
    echo("== Verdicts (runbook 2, Common Issues & Solutions; commands are for you to run, vhdiag runs none) ==")
    for v in t.verdicts:
        echo(f"[{v['level']}] {v['issue']}: {v['verdict']}")
        for line in v["evidence"]:
            echo(f"    {line}")
        if v["level"] != "ok":
            echo("    solutions: " + "; ".join(f"{i}. {s}" for i, s in enumerate(v["solutions"], 1)))
        for cmd in v["commands"]:
            echo(f"    run by hand: {cmd}")
    echo()
    echo(f"== Burning now: top statements by time in the last {t.interval_s:.1f} s ==")
    sys.stdout.write(_table(t.burning_now, ["calls", "total_exec_ms", "mean_exec_ms", "ms_per_s", "share_pct",
                                             "user", "query"]))
    echo()
    c = t.connections
    echo(f"== Connections: {c['total']} of max_connections {c['max_connections']} ({c['free']} free), "
         f"{c['level']} (runbook: warning > {c['warning']:g}, critical > {c['critical']:g}) ==")
    for key in ("by_state", "by_application", "by_user", "by_client"):
        frame = c[key]
        echo(f"  {key.removeprefix('by_')}: " + (", ".join(f"{name or '(none)'} {n}" for name, n in
                                                        zip(frame.iloc[:, 0], frame["connections"])) or "none"))
    idle = c["idle_in_transaction"]
    if len(idle):
        echo("  idle in transaction:")
        sys.stdout.write(_table(idle, ["pid", "application", "user", "client", "age_s", "xact_age_s", "query"]))
    echo()
    echo("== Blocking: root blockers first ==")
    if not t.blocking:
        echo("  no session waits for another")
    for b in t.blocking:
        echo(f"  pid {b['pid']} {b['application'] or '(no application_name)'} user {b['user']} {b['state']} "
             f"for {float(b['age_s'] or 0):.0f} s holds {b['mode']} on {b['relation'] or b['locktype']}: "
             f"{_short(b['query'])}")
        for w in b["waiters"]:
            app = w["application"] or "(no application_name)"
            echo(f"  {'  ' * w['depth']}<- pid {w['pid']} {app} user {w['user']} "
                 f"waits {float(w['age_s'] or 0):.0f} s for {w['mode']}: {_short(w['query'])}")
    echo()
    echo("== Long-running statements and transactions ==")
    sys.stdout.write(_table(t.long_running, ["pid", "application", "user", "state", "kind", "query_s", "xact_s",
                                              "waiting", "query"]))
    for note in t.notes:
        echo(f"Note: {note}", file=sys.stderr)


def _table(frame, columns) -> str:
    text = render(frame, "table", columns)
    return "  (none)\n" if text == "(no rows)\n" else "".join(f"  {line}\n" for line in text.splitlines())


def _short(q, n: int = 70) -> str:
    q = " ".join(str(q or "").split())
    return q if len(q) <= n else q[: n - 1] + "…"
