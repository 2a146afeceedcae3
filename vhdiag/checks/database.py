"""Database ready: the runbook's Morning Checklist step 2, "Checking database...", made real.

The runbook curls ``/api/health/ready``; vhdiag asks the database itself: it connects within the
timeout, it is not in recovery unless that is expected (``[checks] expect_recovery``), its
client connections are under the runbook's "Critical Thresholds" (Database Connections: warning
> 20, critical > 30) and under ``max_connections``, and no transaction has been open, or idle in
transaction, for long ("Database Connection Issues": connection leaks hold slots and locks).
"""
from __future__ import annotations

import pandas as pd

from .registry import Result, check


def evaluate_connect(connect_ms: float | None, error: str | None, display: str, timeout_s: float) -> Result:
    if error is not None:
        return Result("database.connect", "fail", f"cannot connect to {display}: {error}",
                      "is PostgreSQL running and reachable (runbook \"Database Connection Issues\")?")
    return Result("database.connect", "pass", f"connected to {display} in {connect_ms:.0f} ms "
                  f"(timeout {timeout_s:g} s)")


def evaluate_ready(summary: pd.DataFrame, in_recovery: bool, cfg: dict) -> list[Result]:
    """From activity.summary()'s one row and pg_is_in_recovery(): recovery, connections,
    long transactions, idle in transaction."""
    row = summary.iloc[0]
    c = cfg["checks"]
    levels = cfg["thresholds"]["db_connections"]
    out = []
    if bool(in_recovery) != bool(c["expect_recovery"]):
        out.append(Result("database.recovery", "fail",
                          "the server is in recovery (a standby or restoring)" if in_recovery
                          else "the server is not in recovery, but [checks] expect_recovery = true",
                          "check for a failover; if this is intended, set [checks] expect_recovery"))
    else:
        out.append(Result("database.recovery", "pass",
                          "in recovery, as expected" if in_recovery else "not in recovery (a primary)"))

    total, maxc = int(row["total_connections"]), int(row["max_connections"])
    reserved = int(row["superuser_reserved_connections"]) + (0 if pd.isna(row["reserved_connections"])
                                                             else int(row["reserved_connections"]))
    free = maxc - reserved - total
    evidence = (f"{total} client connections ({int(row['active'])} active, {int(row['idle'])} idle, "
                f"{int(row['idle_in_transaction'])} idle in transaction) of max_connections {maxc}, "
                f"{free} free; thresholds {levels['warning']:g}/{levels['critical']:g}")
    fix = ("find who holds them: vhdiag show connections; use a connection pool "
           "(runbook \"Database Connection Issues\")")
    if free <= 0 or total > levels["critical"]:
        out.append(Result("database.connections", "fail", evidence, fix))
    elif total > levels["warning"]:
        out.append(Result("database.connections", "warn", evidence, fix))
    else:
        out.append(Result("database.connections", "pass", evidence))

    longest = row["longest_transaction_s"]
    if pd.notna(longest) and longest > c["long_transaction_s"]:
        out.append(Result("database.long_transactions", "warn",
                          f"a transaction has been open {longest:.0f} s (limit {c['long_transaction_s']:g} s)",
                          "vhdiag show activity shows it; end it in the application, or "
                          "SELECT pg_terminate_backend(pid) by hand"))
    else:
        out.append(Result("database.long_transactions", "pass",
                          f"no transaction open longer than {c['long_transaction_s']:g} s"))

    idle = row["oldest_idle_in_transaction_s"]
    count = int(row["idle_in_transaction"]) + int(row["idle_in_transaction_aborted"])
    if pd.notna(idle) and idle > c["idle_in_transaction_s"]:
        out.append(Result("database.idle_in_transaction", "warn",
                          f"{count} sessions idle in transaction, the oldest for {idle:.0f} s "
                          f"(limit {c['idle_in_transaction_s']:g} s)",
                          "a connection leak: fix the application; set idle_in_transaction_session_timeout"))
    else:
        out.append(Result("database.idle_in_transaction", "pass",
                          f"no session idle in transaction longer than {c['idle_in_transaction_s']:g} s"))
    return out


@check("database.connect", "Database ready: connects within the timeout", needs=())
def connect(ctx) -> list[Result]:
    return [evaluate_connect(ctx.connect_ms, ctx.target_error, ctx.display, ctx.config["checks"]["connect_timeout_s"])]


@check("database.ready", "Database ready: recovery, connections, long and idle transactions")
def ready(ctx) -> list[Result]:
    from ..collect import activity, backups
    in_recovery = bool(backups.archiver(ctx.target)["in_recovery"].iloc[0])
    return evaluate_ready(activity.summary(ctx.target), in_recovery, ctx.config)
