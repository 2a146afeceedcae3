"""What changed since the previous check: the part of the checklist no peer has.

Each check here lists the subjects it sees (``Result.items``); the run stores them in the history
store, and the next run names only those not seen last time (``Result.new``). A first run has no
previous check: everything it sees is new. The window for statements and settings is from the
previous check (else the last 24 hours) to now.

- slow queries (mean over the runbook's ``slow_query_ms``, runbook 6 "Query Optimization") and
  regressions: the slow-query report's ``build()`` findings, no kernel, no EXPLAIN;
- unused indexes (runbook 6: "Check unused indexes");
- sequences over ``[capacity] sequence_used_pct`` of their range;
- sessions idle in transaction (runbook 2 "Database Connection Issues");
- settings changed between the snapshots around the window (the history store's ``settings``);
- growth spikes: tables that grew since the previous check far faster than their usual rate (the
  growth per day over ``[checks] growth_baseline`` before it), by ``growth_spike_ratio`` and at
  least ``growth_spike_min_bytes``, from the history store's table sizes (runbook 6 "Check table
  sizes": a bulk load, a runaway job or a retention job that stopped shows here the day it starts).

A new slow query's fix fits its evidence: one that sleeps in ``pg_sleep()`` is told it waits (no
index helps it), one the report has index advice for gets that ``CREATE INDEX CONCURRENTLY``.
"""
from __future__ import annotations

import pandas as pd

from ..analysis.query_text import sleeps
from ..display import terminal_safe
from ..timeparse import parse_duration
from .registry import Result, check


def diff(check_name: str, items: list[str], previous: dict, *, what: str, labels: dict[str, str],
         fix: str, status_if_new: str = "warn") -> Result:
    """One result: ``items`` now, which of them the previous run did not see, in one line."""
    before = previous.get(check_name)
    seen = set(before["items"]) if before else set()
    new = [i for i in items if i not in seen]
    since = "since the previous check" if before else "(first check: no previous one)"
    if new:
        shown = "; ".join(labels.get(i, i) for i in new[:3]) + (f"; and {len(new) - 3} more" if len(new) > 3 else "")
        return Result(check_name, status_if_new, f"{len(new)} new {what} {since}: {terminal_safe(shown)}", fix,
                      items=list(items), new=new)
    return Result(check_name, "pass", f"no new {what} {since} ({len(items)} known)", items=list(items))


SLOW_FIX = ("vhdiag report slow_queries: EXPLAIN (ANALYZE, BUFFERS) it and see where the time goes "
            "(runbook 2 \"Slow Queries\")")
SLEEP_FIX = ("it waits in pg_sleep(), no index makes that faster: find why the application sleeps inside the "
             "database and move the wait out (the session holds a connection and its locks meanwhile)")


def slow_query_fix(new: list[str], findings: list[dict]) -> str:
    """The fix line for the new slow queries (queryids ``new``), from the evidence: a statement in
    pg_sleep() waits, one with the report's index advice gets its CREATE INDEX, else EXPLAIN it."""
    by_id = {str(f["queryid"]): f for f in findings if f["kind"] == "slow_query"}
    advice = {str(f["queryid"]): f["suggestion"].splitlines()[0] for f in findings
              if f["kind"] == "missing_index" and f.get("queryid") is not None}
    fixes = []
    for qid in new:
        query = (by_id.get(qid) or {}).get("query")
        fix = (SLEEP_FIX if sleeps(query) else
               f"{advice[qid]} by hand, then ANALYZE and compare its plan (runbook 2 \"Slow Queries\": add "
               "database indexes)" if qid in advice else SLOW_FIX)
        fixes.append(fix)
    if len(set(fixes)) <= 1:
        return fixes[0] if fixes else SLOW_FIX
    return "; ".join(f"queryid {qid}: {fix}" for qid, fix in zip(new, fixes))


def slow_query_results(findings: list[dict], previous: dict) -> list[Result]:
    """New slow queries and new regressions from the slow-query report's findings."""
    out = []
    for kind, name, what, fix in (
            ("slow_query", "changes.slow_queries", "slow queries",
             SLOW_FIX),
            ("regression", "changes.regressions", "regressions",
             "vhdiag report slow_queries shows what changed: a plan, a missing index, more rows")):
        hits = [f for f in findings if f["kind"] == kind]
        items = [str(f["queryid"]) for f in hits]
        labels = {str(f["queryid"]): f["title"].split(": ", 1)[-1] for f in hits}
        result = diff(name, items, previous, what=what, labels=labels, fix=fix)
        if kind == "slow_query" and result.new:
            result.fix = terminal_safe(slow_query_fix(result.new, findings))
        out.append(result)
    return out


def settings_changes(settings: pd.DataFrame) -> list[str]:
    """``name: old -> new`` between the first and the last snapshot of ``settings`` (ts, name, value)."""
    if settings.empty or settings["ts"].nunique() < 2:
        return []
    first, last = settings["ts"].min(), settings["ts"].max()
    a = dict(settings.loc[settings["ts"] == first, ["name", "value"]].itertuples(index=False))
    b = dict(settings.loc[settings["ts"] == last, ["name", "value"]].itertuples(index=False))
    out = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            out.append(f"{name}: {a.get(name, '(default)')} -> {b.get(name, '(default)')}")
    return out


@check("changes.slow_queries", "Since the previous check: new slow queries and regressions")
def slow_queries(ctx) -> list[Result]:
    from .. import reports
    since = ctx.previous_ts or ctx.now - pd.Timedelta(hours=24)
    report = reports.build("slow_queries", target=ctx.target, history=ctx.history_url if ctx.history else None,
                           target_name=ctx.target_name, since=since.isoformat(), until=ctx.now.isoformat(),
                           plans=False, config=ctx.config)
    return slow_query_results(report.findings, ctx.previous)


@check("changes.unused_indexes", "Since the previous check: new unused indexes")
def unused_indexes(ctx) -> list[Result]:
    idx = ctx.target.indexes()
    idx = idx[idx["unused"].fillna(False).astype(bool)]
    items = [f"{r.schema}.{r.index}" for r in idx.itertuples()]
    return [diff("changes.unused_indexes", items, ctx.previous, what="unused indexes", labels={},
                 fix="an index never scanned costs writes and space: check replicas and rare jobs, "
                     "then DROP INDEX CONCURRENTLY by hand (runbook 6 \"Check unused indexes\")")]


@check("changes.sequences", "Since the previous check: sequences newly over the limit")
def sequences(ctx) -> list[Result]:
    limit = ctx.config["capacity"]["sequence_used_pct"]
    seq = ctx.target.sequences()
    seq = seq[seq["used_pct"].fillna(0) > limit]
    items = [f"{r.schema}.{r.sequence}" for r in seq.itertuples()]
    labels = {f"{r.schema}.{r.sequence}": f"{r.schema}.{r.sequence} {r.used_pct:.1f} %" for r in seq.itertuples()}
    return [diff("changes.sequences", items, ctx.previous, what=f"sequences over {limit:g} % of their range",
                 labels=labels, fix="ALTER SEQUENCE ... AS bigint (and the column) before it runs out")]


@check("changes.idle_in_transaction", "Since the previous check: new sessions idle in transaction")
def idle_in_transaction(ctx) -> list[Result]:
    act = ctx.target.activity()
    act = act[act["state"].fillna("").str.startswith("idle in transaction")]
    items = [f"{r.pid}@{r.backend_start.isoformat() if pd.notna(r.backend_start) else ''}" for r in act.itertuples()]
    labels = {i: f"pid {r.pid} ({r.application or 'no application'}, {r.user}, {r.state_duration_s:.0f} s)"
              for i, r in zip(items, act.itertuples())}
    return [diff("changes.idle_in_transaction", items, ctx.previous, what="sessions idle in transaction",
                 labels=labels, fix="a connection leak: fix the application; SELECT pg_terminate_backend(pid) "
                                    "by hand if it blocks others")]


@check("changes.settings", "Since the previous check: settings changed", needs=("history",))
def settings(ctx) -> list[Result]:
    since = ctx.previous_ts or ctx.now - pd.Timedelta(hours=24)
    view = ctx.history.incident_view(since=since, until=ctx.now, target=ctx.target_name)
    changed = settings_changes(view["settings"])
    snaps = view["settings"]["ts"].nunique() if not view["settings"].empty else 0
    if snaps < 2:
        return [Result("changes.settings", "pass", f"{snaps} snapshot(s) with settings since "
                       f"{since:%Y-%m-%d %H:%M} UTC: nothing to compare",
                       "run vhdiag snapshot every 15 minutes from cron")]
    if changed:
        return [Result("changes.settings", "warn", f"{len(changed)} settings changed since "
                       f"{since:%Y-%m-%d %H:%M} UTC: {terminal_safe('; '.join(changed[:5]))}",
                       "confirm the change was intended (who ran ALTER SYSTEM or edited postgresql.conf)",
                       items=changed, new=changed)]
    return [Result("changes.settings", "pass", f"no setting changed since {since:%Y-%m-%d %H:%M} UTC")]


def growth_spikes(window: pd.DataFrame, baseline: pd.DataFrame, ratio: float, min_bytes: float) -> tuple[list, int]:
    """Tables of ``window`` (History.table_growth since the previous check) that grew at least
    ``min_bytes`` and ``ratio`` times faster per day than in ``baseline`` (the same before it):
    ``([(schema.table, label)], how many grew that much without a usual rate to compare)``."""
    usual = {(r.schema, r.table): r for r in baseline.itertuples() if r.days > 0}
    spikes, unknown = [], 0
    for r in window.itertuples():
        if pd.isna(r.growth_bytes) or r.growth_bytes < min_bytes or not r.days > 0:
            continue
        before = usual.get((r.schema, r.table))
        if before is None or pd.isna(before.growth_bytes_per_day):
            unknown += 1
            continue
        rate, base = float(r.growth_bytes_per_day), max(float(before.growth_bytes_per_day), 0.0)
        if rate > ratio * base:
            times = f"{rate / base:,.0f}x" if base > 0 else "it did not grow before"
            spikes.append((f"{r.schema}.{r.table}", f"{r.schema}.{r.table} +{_mb(r.growth_bytes)} "
                           f"({_mb(rate)}/day, usual {_mb(base)}/day: {times})"))
    return spikes, unknown


def _mb(n) -> str:
    return f"{float(n) / 1048576:,.1f} MB"


@check("changes.growth", "Since the previous check: tables growing far faster than usual", needs=("history",))
def growth(ctx) -> list[Result]:
    c = ctx.config["checks"]
    since = ctx.previous_ts or ctx.now - pd.Timedelta(hours=24)
    window = ctx.history.table_growth(since=since, until=ctx.now, target=ctx.target_name)
    baseline = ctx.history.table_growth(since=since - parse_duration(c["growth_baseline"]), until=since,
                                        target=ctx.target_name)
    spikes, unknown = growth_spikes(window, baseline, c["growth_spike_ratio"], c["growth_spike_min_bytes"])
    rule = (f"{c['growth_spike_ratio']:g}x the usual rate over {c['growth_baseline']} and at least "
            f"{_mb(c['growth_spike_min_bytes'])}")
    unknown_note = f"; {unknown} grew that much with no usual rate yet" if unknown else ""
    if spikes:
        return [Result("changes.growth", "warn", terminal_safe(
            f"{len(spikes)} tables grew far faster than usual since {since:%Y-%m-%d %H:%M} UTC ({rule}): "
            + "; ".join(label for _, label in spikes[:3]) + (f"; and {len(spikes) - 3} more" if len(spikes) > 3 else "")
            + unknown_note),
            "find the job that writes them (a bulk load, a runaway insert, a retention job that stopped); "
            "vhdiag report capacity for when the disk runs out", items=[i for i, _ in spikes],
            new=[i for i, _ in spikes])]
    return [Result("changes.growth", "pass", f"no table grew over {rule} since {since:%Y-%m-%d %H:%M} UTC "
                   f"({len(window)} tables in the store{unknown_note})")]
