"""Who holds which lock, and who waits for whom: ``pg_locks`` joined to ``pg_stat_activity``,
as a blocking tree (Supabase's ``inspect db locks``, pg_activity's blocking view).

The runbook's "Database Connection Issues" asks for the sessions stuck behind others; a chain
of waiters behind one idle-in-transaction session is the usual cause. One row per session in a
blocking chain (``pg_blocking_pids``): root blockers first (depth 0), each followed by its
waiters (depth 1), theirs (depth 2), and so on; the oldest chain first. A waiter's row shows the
lock it waits for (``granted`` false); a blocker's the lock it holds on what its waiters want.
``age_s``: for a waiter, how long it has waited (since its state changed); for a blocker, the age
of its transaction. No session in a chain: an empty frame with these columns.
"""
from __future__ import annotations

import pandas as pd

from ._base import load_sql, redact_secrets, typed
from .registry import collector

COLUMNS = {
    "pid": "int",
    "application": "string",
    "user": "string",
    "database": "string",
    "state": "string",
    "locktype": "string",        # relation, transactionid, tuple, advisory, ...
    "mode": "string",            # AccessExclusiveLock, ...
    "relation": "string",        # schema.table (this database's relations), else "oid N"
    "transactionid": "string",
    "granted": "bool",           # false: waits for this lock
    "blocked_by": "object",      # list of pids (pg_blocking_pids); [] for a root blocker
    "depth": "int",              # 0 for a root blocker, 1 for its waiters, ...
    "age_s": "float",
    "xact_start": "ts",
    "query": "string",           # redacted (vhdiag.redact.redact_secrets)
    "ts": "ts",
}


@collector(name="locks",
           description="blocking tree: root blockers first, each followed by its waiters, with lock mode and relation",
           columns=["pid", "depth", "application", "user", "state", "mode", "relation", "granted", "blocked_by",
                    "age_s", "query"])
def collect(t) -> pd.DataFrame:
    """Sessions in blocking chains, root blockers first, each followed by its waiters."""
    df = t.query(load_sql("locks"))
    df["query"] = df["query"].map(redact_secrets)
    blocked = [[int(p) for p in s.split(",")] if isinstance(s, str) and s else [] for s in df["blocked_by"]]
    df["blocked_by"] = pd.Series(blocked, index=df.index, dtype=object)
    order, depth = tree(df["pid"].astype(int).tolist(), blocked, df["age_s"].astype(float).fillna(0).tolist())
    df = df.iloc[order].reset_index(drop=True)
    df["depth"] = depth
    out = typed(df.drop(columns=["blocked_by"]), {k: v for k, v in COLUMNS.items() if k != "blocked_by"})
    out.insert(list(COLUMNS).index("blocked_by"), "blocked_by",
               pd.Series(list(df["blocked_by"]), index=out.index, dtype=object))
    return out[list(COLUMNS)]


def tree(pids: list[int], blocked_by: list[list[int]], age_s: list[float]) -> tuple[list[int], list[int]]:
    """(row order, depth per ordered row): depth-first from each root blocker (a session blocked
    by no one listed here), oldest root first, waiters by pid. A waiter with several blockers
    comes under the first one reached; sessions only in a cycle become roots."""
    index = {p: i for i, p in enumerate(pids)}
    waiters: dict[int, list[int]] = {p: [] for p in pids}
    for i, bs in enumerate(blocked_by):
        for b in bs:
            if b in waiters:
                waiters[b].append(pids[i])
    roots = [i for i, bs in enumerate(blocked_by) if not any(b in index for b in bs)]
    roots.sort(key=lambda i: (-age_s[i], pids[i]))
    order, depth, seen = [], [], set()

    def visit(i: int, d: int) -> None:
        if pids[i] in seen:
            return
        seen.add(pids[i])
        order.append(i)
        depth.append(d)
        for w in sorted(waiters[pids[i]]):
            visit(index[w], d + 1)
    for r in roots:
        visit(r, 0)
    for i in sorted(range(len(pids)), key=lambda i: (-age_s[i], pids[i])):   # cycles
        visit(i, 0)
    return order, depth
