"""Two windows of statement history side by side: ``History.compare()``.

The same comparison the slow-query report makes (runbook 2 *Slow Queries*: "Check recent
deployments", i.e. what got worse than before), one call away for a notebook: the statements of
``since``..``until`` against a baseline (by default the period of the same length just before),
with the report's own functions (``vhdiag.analysis.slow_queries``: ``prepare``, ``exclude_own``,
``regressions``, ``new_queries``) and its settings (``[statements]`` ``regression_ratio``,
``regression_floor_ms``, ``regression_share_pct``, read through the report's parameters), so a
statement is ``regressed`` here exactly when the report calls it a regression.

``status`` per statement (key: queryid, user, database, toplevel):

- ``regressed``: ``slow_queries.regressions`` lists it (by mean or by total, column ``why``);
- ``new``: the baseline never saw it (``significant`` when it makes ``regression_share_pct`` of
  the window's DB time: those are the report's ``new_query`` findings);
- ``gone``: ran in the baseline, not in the window;
- ``improved``: the mirror of a regression by mean: the baseline's mean at least
  ``regression_ratio`` times the window's AND ``regression_floor_ms`` slower;
- ``same``: anything else.

vhdiag's own statements are left out as in the report: every statement with the ``/* vhdiag */``
marker, and the transaction-control lines of the roles that sent marked statements (the role
vhdiag monitors as; the store does not record it otherwise).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import slow_queries as sq
from ..analysis.query_text import is_own

COLUMNS = ["queryid", "user", "database", "toplevel", "status", "why", "significant", "calls", "baseline_calls",
           "mean_exec_ms", "baseline_mean_exec_ms", "mean_ratio", "mean_change_ms", "total_exec_ms",
           "baseline_total_exec_ms", "total_ratio", "extra_ms", "share_pct", "complete", "notes", "query"]

STATUS_ORDER = {"regressed": 0, "new": 1, "improved": 2, "gone": 3, "same": 4}


def settings(config=None, **given) -> dict:
    """The slow-query report's regression thresholds, from the settings unless ``given``."""
    from ..reports import slow_queries as report
    from ..reports.base import resolve_params
    names = ("regression_ratio", "regression_floor_ms", "regression_share_pct", "exclude_roles")
    return resolve_params([x for x in report.PARAMS if x.name in names],
                          {k: v for k, v in given.items() if v is not None}, "slow_queries", config)


def bounds(since, until, baseline_since=None, baseline_until=None):
    """(start, end, baseline start, baseline end) by the report's rule: the baseline ends where the
    window starts and is as long, unless given."""
    from ..reports.periods import baseline_window, resolve_window
    start, end = resolve_window(since or None, until or None, None if since else "7d")
    return (start, end, *baseline_window(start, end, baseline_since, baseline_until))


def own_users(*frames) -> set:
    """Roles that sent statements with vhdiag's marker: the monitoring roles."""
    users = set()
    for f in frames:
        if f is not None and len(f):
            users.update(u for q, u in zip(f["query"], f["user"]) if isinstance(u, str) and is_own(q))
    return users


def drop_own(frame: pd.DataFrame, users: set, exclude_roles="") -> pd.DataFrame:
    kept, _ = sq.exclude_own(frame, None, exclude_roles)
    for user in sorted(users):
        kept, _ = sq.exclude_own(kept, user)
    return kept


def compare(window_raw: pd.DataFrame, baseline_raw: pd.DataFrame, *, window_s: float, baseline_s: float,
            regression_ratio: float, regression_floor_ms: float, regression_share_pct: float,
            exclude_roles="") -> pd.DataFrame:
    """The per-statement comparison of two ``History.statements()`` frames (pure)."""
    users = own_users(window_raw, baseline_raw)
    w = sq.prepare(drop_own(window_raw, users, exclude_roles))
    b = sq.prepare(drop_own(baseline_raw, users, exclude_roles))
    key = sq.KEY
    reg = sq.regressions(w, b, ratio=regression_ratio, floor_ms=regression_floor_ms,
                         share_pct=regression_share_pct, window_s=window_s, baseline_s=baseline_s)
    new = sq.new_queries(w, b, share_pct=regression_share_pct)
    base = b[key + ["user", "database", "calls", "mean_exec_ms", "total_exec_ms", "complete", "notes", "query"]] \
        .rename(columns={"user": "baseline_user", "database": "baseline_database", "calls": "baseline_calls", "mean_exec_ms": "baseline_mean_exec_ms", "total_exec_ms": "baseline_total_exec_ms",
        "complete": "baseline_complete", "notes": "baseline_notes", "query": "baseline_query"})
    m = w.merge(base, on=key, how="outer", indicator=True)
    for c in ("query", "user", "database"):
        m[c] = m[c].astype(object).where(m[c].notna(), m[f"baseline_{c}"])
    m["complete"] = (m["complete"].astype("boolean").fillna(True) & m["baseline_complete"].astype("boolean")
                     .fillna(True)).astype(bool)
    m["notes"] = [", ".join(n for n in (a, c) if isinstance(n, str) and n)
                  for a, c in zip(m["notes"], m["baseline_notes"])]
    for c in ("calls", "baseline_calls", "mean_exec_ms", "baseline_mean_exec_ms", "total_exec_ms",
              "baseline_total_exec_ms", "share_pct"):
        m[c] = pd.to_numeric(m[c]).astype("Float64")
    before = m["baseline_mean_exec_ms"]
    m["mean_ratio"] = m["mean_exec_ms"] / before.where(before > 0)
    m["mean_change_ms"] = m["mean_exec_ms"] - before
    scale = window_s / baseline_s if window_s and baseline_s else 1.0
    expected = m["baseline_total_exec_ms"] * scale
    m["total_ratio"] = m["total_exec_ms"] / expected.where(expected > 0)
    m["extra_ms"] = m["total_exec_ms"].fillna(0) - expected.fillna(0)

    # The report's frames name a statement by queryid, user and database (no toplevel column).
    ident = ["queryid", "user", "database"]

    def keys(frame):
        return list(frame[ident].astype(object).itertuples(index=False, name=None))
    mkeys = keys(m)
    regressed, fresh = set(keys(reg)), set(keys(new))
    why = dict(zip(keys(reg), reg["why"]))
    significant = {k for k, s in zip(keys(new), new["significant"]) if s}
    improved = ((m["mean_ratio"] <= 1 / regression_ratio) & (-m["mean_change_ms"] >= regression_floor_ms)) \
        .fillna(False).astype(bool)
    status = np.where([k in regressed for k in mkeys], "regressed",
             np.where([k in fresh for k in mkeys], "new",
             np.where(m["_merge"] == "right_only", "gone",
             np.where(improved, "improved", "same"))))
    m["status"] = pd.Series(status, index=m.index).astype("string")
    m["why"] = pd.Series([why.get(k, "") for k in mkeys], index=m.index, dtype="string")
    m["significant"] = [k in significant for k in mkeys]
    for c in ("query", "user", "database"):
        m[c] = m[c].astype("string")
    m["notes"] = m["notes"].astype("string")
    m["_order"] = m["status"].map(STATUS_ORDER)
    m = m.sort_values(["_order", "extra_ms"], ascending=[True, False], kind="stable")
    return m[COLUMNS].reset_index(drop=True)
