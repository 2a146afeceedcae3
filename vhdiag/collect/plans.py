"""Plans of monitored statements: ``EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON)`` without
ANALYZE (the statement is planned, never executed), and hypopg's hypothetical indexes.

Each runs in the Target's read-only transaction under its statement_timeout, and is rolled
back. The text comes from pg_stat_statements (``$1`` parameters), which GENERIC_PLAN accepts
as it is on PostgreSQL 16+.
"""
from __future__ import annotations

import json

import pandas as pd

from ..analysis import plans as plan_mod
from ..analysis.query_text import is_explainable
from ..errors import first_line


def generic_plans(target, frame: pd.DataFrame) -> tuple[list[dict], str]:
    """``EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON)`` of each statement in ``frame`` that ran in the
    target's database: (records, message). PostgreSQL 16+: GENERIC_PLAN plans a statement with
    ``$1`` parameters as they are, and EXPLAIN without ANALYZE does not execute it. Each runs in
    the Target's read-only transaction under its statement_timeout."""
    caps = target.capabilities
    if caps.major < 16:
        return [], (f"EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16 or later; this server is {caps.major}, "
                    "so no plans were taken (run EXPLAIN with real values by hand).")
    records = []
    with target.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for rec in frame.to_dict("records"):
            if rec["database"] != caps.database or not is_explainable(rec["query"]):
                continue
            out = {"queryid": int(rec["queryid"]), "user": rec["user"], "database": rec["database"],
                   "query": rec["query"]}
            try:
                # The marker keeps this EXPLAIN out of the next report's rankings (query_text.is_own).
                row = raw.execute(f"EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) /* vhdiag */ {rec['query']}").fetchone()
                plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
                out.update(plan=plan, shape=plan_mod.shape(plan), cost=plan_mod.total_cost(plan),
                           text=plan_mod.text(plan))
            except Exception as exc:  # psycopg.Error: a statement the monitoring role cannot plan
                out["error"] = first_line(exc)
            finally:
                raw.rollback()
            records.append(out)
    return records, f"{sum('shape' in r for r in records)} generic plans taken (EXPLAIN does not execute them)."


def hypopg_costs(target, advice: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The planner's cost of each advised query without and with its index as a hypothetical
    index (hypopg; nothing is built). Needs the hypopg extension and PostgreSQL 16+ (generic plans)."""
    cols = ["queryid", "suggestion", "cost_without", "cost_with", "error"]
    caps = target.capabilities
    present = target.query("SELECT /* vhdiag */ count(*) AS n FROM pg_extension WHERE extname = 'hypopg'")["n"].iloc[0]
    if not present:
        return pd.DataFrame(columns=cols), (f"hypopg is not installed in database {caps.database}: the cost with "
                                            "each suggested index is not estimated (CREATE EXTENSION hypopg; to get it).")
    if caps.major < 16:
        return pd.DataFrame(columns=cols), "hypopg is installed, but comparing generic plans needs PostgreSQL 16 or later."
    rows = []
    with target.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for rec in advice.to_dict("records"):
            create = rec["suggestion"].replace(" CONCURRENTLY", "").rstrip(";")
            explain = f"EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) /* vhdiag */ {rec['query']}"
            out = {"queryid": rec["queryid"], "suggestion": rec["suggestion"], "cost_without": None,
                   "cost_with": None, "error": None}
            try:
                out["cost_without"] = plan_mod.total_cost(_json(raw.execute(explain).fetchone()[0]))
                raw.execute("SELECT /* vhdiag */ indexrelid FROM hypopg_create_index(%s)", (create,))
                out["cost_with"] = plan_mod.total_cost(_json(raw.execute(explain).fetchone()[0]))
                raw.execute("SELECT /* vhdiag */ hypopg_reset()")
            except Exception as exc:
                out["error"] = first_line(exc)
            finally:
                raw.rollback()
            rows.append(out)
    return pd.DataFrame(rows, columns=cols), "hypothetical indexes (hypopg): planner cost without and with each."


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
