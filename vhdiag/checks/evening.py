"""The evening run's additions: an error summary and pending maintenance.

The runbook's "Evening Checklist (6 PM UTC)" opens with "Review error logs"; the database's side
of those logs is in its counters: transactions rolled back, deadlocks, recovery conflicts (queries
a standby cancelled) and temporary files (sorts and hashes spilled to disk). Rates per day come
from the history store's database series over the last 24 h when `vhdiag snapshot` has been
running (the store keeps rollbacks, deadlocks and temp bytes), else, and for conflicts and temp
files always, from pg_stat_database since its statistics reset: the evidence says which. Rolled
back transactions are judged by the runbook's error rate thresholds ("Critical Thresholds": Error
Rate > 1 % warning, > 5 % critical); any deadlock or conflict above ``[checks] errors_max_per_day``
warns.

Pending maintenance is the runbook's "Database Optimization" (``ANALYZE;``, ``VACUUM ANALYZE;``)
turned into a list of the tables that need it now, by autovacuum's own rule (collect/
maintenance.py): dead tuples over the autovacuum trigger (autovacuum is behind or off there),
tables never analyzed (the planner guesses their size), and the oldest transaction ID age against
``autovacuum_freeze_max_age`` (over it, autovacuum is forcing anti-wraparound vacuums and falling
behind) and against ``[capacity] wraparound_pct`` of the 2^31 limit. The SQL is text, run by hand.
"""
from __future__ import annotations

import pandas as pd

from ..display import terminal_safe
from ..errors import VhdiagError
from .registry import Result, check

DAY_S = 86400.0


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""


def _span(days: float) -> str:
    """How long a count covers, in the unit people read: "40 min", "5.2 h", "2.0 d"."""
    if days < 1 / 24:
        return f"{days * 1440:.0f} min"
    return f"{days * 24:.1f} h" if days < 2 else f"{days:.1f} d"


def _n(count: float, word: str) -> str:
    count = int(round(count))
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def error_rates(series: pd.DataFrame, live: pd.DataFrame, now: pd.Timestamp) -> dict:
    """Counts and the days they cover: rollbacks, commits, deadlocks and temp bytes from the store's
    ``series`` (database_series rows) when it has any, else from ``live`` (the database collector:
    pg_stat_database since each database's stats reset); conflicts and temp files from ``live``."""
    out = {}
    since = live["stats_reset"].fillna(live["server_start"]) if len(live) else pd.Series([], dtype=object)
    live_days = ((now - since).dt.total_seconds() / DAY_S).clip(lower=1 / 1440) if len(live) else pd.Series([])

    def live_sum(col):
        return float(pd.to_numeric(live[col], errors="coerce").fillna(0).sum()) if len(live) else 0.0

    out["live_days"] = float(live_days.max()) if len(live_days) else 0.0
    out["conflicts_per_day"] = float((pd.to_numeric(live["conflicts"]).fillna(0) / live_days).sum()) if len(live) else 0.0
    out["temp_files_per_day"] = float((pd.to_numeric(live["temp_files"]).fillna(0) / live_days).sum()) if len(live) else 0.0
    out["conflicts"], out["temp_files"] = live_sum("conflicts"), live_sum("temp_files")
    if series is not None and len(series) and series["interval_s"].notna().any():
        per_snap = series.dropna(subset=["interval_s"]).drop_duplicates("ts")
        out["source"] = "store"
        out["days"] = float(per_snap["interval_s"].sum()) / DAY_S
        out["snapshots"] = int(per_snap["ts"].nunique())
        for key, col in (("rollbacks", "rollbacks"), ("commits", "commits"), ("deadlocks", "deadlocks"),
                         ("temp_bytes", "temp_bytes")):
            out[key] = float(pd.to_numeric(series[col], errors="coerce").fillna(0).sum())
    else:
        out["source"] = "live"
        out["days"] = out["live_days"]
        for key, col in (("rollbacks", "xact_rollback"), ("commits", "xact_commit"), ("deadlocks", "deadlocks"),
                         ("temp_bytes", "temp_bytes")):
            out[key] = live_sum(col)
    days = max(out["days"], 1 / 1440)
    for key in ("rollbacks", "deadlocks", "temp_bytes"):
        out[f"{key}_per_day"] = out[key] / days
    xacts = out["rollbacks"] + out["commits"]
    out["rollback_pct"] = 100 * out["rollbacks"] / xacts if xacts else 0.0
    return out


def evaluate_errors(rates: dict, cfg: dict) -> Result:
    """``errors.summary``: rolled back transactions against the runbook's error rate, deadlocks and
    conflicts against ``[checks] errors_max_per_day``."""
    levels, most = cfg["thresholds"]["error_rate_pct"], cfg["checks"]["errors_max_per_day"]
    r = rates
    counted = (f"{_n(r['rollbacks'], 'rollback')} ({r['rollback_pct']:.2f} % of transactions, "
               f"{r['rollbacks_per_day']:,.0f}/day), {_n(r['deadlocks'], 'deadlock')} ({r['deadlocks_per_day']:,.1f}/day), "
               f"{_bytes(r['temp_bytes_per_day'])}/day in temporary files")
    live = (f"{_n(r['conflicts'], 'recovery conflict')} ({r['conflicts_per_day']:,.1f}/day), "
            f"{_n(r['temp_files'], 'temporary file')} ({r['temp_files_per_day']:,.1f}/day)")
    if r["source"] == "store":
        evidence = (f"last {_span(r['days'])} from the history store ({r['snapshots']} snapshots): {counted}; "
                    f"since the statistics reset ({_span(r['live_days'])}, pg_stat_database): {live}")
    else:
        evidence = (f"since the statistics reset ({_span(r['days'])}, pg_stat_database; no history store series): "
                    f"{counted}, {live}")
    fixes, status = [], "pass"
    if r["rollback_pct"] > levels["warning"]:
        status = "fail" if r["rollback_pct"] > levels["critical"] else "warn"
        fixes.append(f"rollbacks over the runbook's error rate {levels['warning']:g}/{levels['critical']:g} %: "
                     "read the application's error logs for the failing transactions")
    if r["deadlocks_per_day"] > most:
        status = max(status, "warn", key=("pass", "warn", "fail").index)
        fixes.append("deadlocks: the server log names both statements (log_lock_waits); take locks in one order")
    if r["conflicts_per_day"] > most:
        status = max(status, "warn", key=("pass", "warn", "fail").index)
        fixes.append("recovery conflicts cancel standby queries: hot_standby_feedback or max_standby_streaming_delay")
    return Result("errors.summary", status, evidence, "; ".join(fixes))


def evaluate_maintenance(tables: pd.DataFrame, wrap: pd.DataFrame, cfg: dict) -> list[Result]:
    """``maintenance.vacuum`` (dead tuples over autovacuum's trigger), ``maintenance.analyze`` (never
    analyzed), ``maintenance.wraparound`` (the oldest database's transaction ID age)."""
    out = []
    t = tables[tables["vacuum_threshold"].notna()]
    dead = t[t["n_dead_tup"].fillna(0) > t["vacuum_threshold"]].sort_values("n_dead_tup", ascending=False)
    items = [f"{r.schema}.{r.table}" for r in dead.itertuples()]
    if items:
        shown = "; ".join(f"{r.schema}.{r.table} {int(r.n_dead_tup):,} dead rows (trigger {r.vacuum_threshold:,.0f}"
                          + ("" if r.autovacuum_enabled else ", autovacuum off") + ")" for r in dead.head(3).itertuples())
        more = f"; and {len(items) - 3} more" if len(items) > 3 else ""
        fix = " ".join(dead["suggestion"].dropna().head(3)) or "VACUUM (ANALYZE) each by hand"
        out.append(Result("maintenance.vacuum", "warn", terminal_safe(
            f"{len(items)} tables over the autovacuum trigger: {shown}{more}"),
            terminal_safe(f"autovacuum is behind or off there: run by hand {fix} (runbook \"Database Optimization\")"),
            items=items))
    else:
        out.append(Result("maintenance.vacuum", "pass", f"no table over the autovacuum trigger ({len(tables)} tables)"))

    never = tables[tables["last_analyze"].isna() & tables["last_autoanalyze"].isna()
                   & ((tables["n_live_tup"].fillna(0) > 0) | (tables["n_dead_tup"].fillna(0) > 0))]
    items = [f"{r.schema}.{r.table}" for r in never.itertuples()]
    if items:
        shown = "; ".join(items[:3]) + (f"; and {len(items) - 3} more" if len(items) > 3 else "")
        out.append(Result("maintenance.analyze", "warn", terminal_safe(f"{len(items)} tables never analyzed: {shown}"),
                          "the planner guesses their size: ANALYZE them by hand (runbook \"Database Optimization\": "
                          "ANALYZE;)", items=items))
    else:
        out.append(Result("maintenance.analyze", "pass", "every table with rows has been analyzed"))

    if wrap.empty:
        out.append(Result("maintenance.wraparound", "pass", "no database visible"))
        return out
    worst = wrap.sort_values("xid_age", ascending=False).iloc[0]
    age, freeze = int(worst["xid_age"]), int(worst["autovacuum_freeze_max_age"])
    limit = cfg["capacity"]["wraparound_pct"]
    evidence = terminal_safe(f"oldest transaction ID age {age:,} in database {worst['database']}: "
                             f"{100 * age / freeze:.0f} % of autovacuum_freeze_max_age {freeze:,}, "
                             f"{worst['wraparound_pct']:.1f} % of the wraparound limit (warning at {limit:g} %)")
    if worst["wraparound_pct"] > limit:
        out.append(Result("maintenance.wraparound", "fail", evidence,
                          "VACUUM (FREEZE) the oldest tables of that database now (vhdiag show maintenance); "
                          "find what holds back the horizon (long transactions, replication slots)"))
    elif age > freeze:
        out.append(Result("maintenance.wraparound", "warn", evidence,
                          "autovacuum's anti-wraparound vacuums are behind: VACUUM (FREEZE) the oldest tables by hand"))
    else:
        out.append(Result("maintenance.wraparound", "pass", evidence))
    return out


@check("errors.summary", "Evening: rollbacks, deadlocks, conflicts and temp files per day", runs=("evening",))
def errors(ctx) -> list[Result]:
    series = None
    if ctx.history is not None:
        try:
            series = ctx.history.database_series(since=ctx.now - pd.Timedelta(hours=24), until=ctx.now,
                                                 target=ctx.target_name)
        except VhdiagError:                # a store without this target yet: the live counters
            series = None
    return [evaluate_errors(error_rates(series, ctx.target.database(), ctx.now), ctx.config)]


@check("maintenance.pending", "Evening: vacuum and analyze debt, wraparound age", runs=("evening",))
def maintenance(ctx) -> list[Result]:
    return evaluate_maintenance(ctx.target.maintenance(), ctx.target.wraparound(), ctx.config)
