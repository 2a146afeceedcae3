"""``Target.explain()``: one statement's plan, as a frame and as text, one call away.

The same rule as the slow-query report's plans (vhdiag/collect/plans.py): EXPLAIN without
ANALYZE, so the statement is planned and never executed (runbook 2 *Slow Queries*, Diagnosis:
"Analyze query plan"); and planned only when ``vhdiag.collect.plannable`` finds nothing
user-defined in it, since the planner folds IMMUTABLE functions, inlines SQL functions and
expands views: a user-written function would run in vhdiag's session. The check and the
EXPLAIN run in one read-only transaction of the Target, under its timeouts, rolled back after.

``generic=True`` plans a normalized statement with its ``$1`` parameters as they are
(``EXPLAIN (GENERIC_PLAN)``, PostgreSQL 16+). On an older server a statement without parameters
is planned as it is, and one with parameters is refused with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from .analysis import plans as plan_mod
from .errors import NoAnswerError
from .marker import MARKER

_PARAM = re.compile(r"\$\d+")

NODE_COLUMNS = {"node": "Int64", "parent": "Int64", "depth": "Int64", "node_type": "string",
                "relation": "string", "index": "string", "startup_cost": "Float64", "total_cost": "Float64",
                "plan_rows": "Float64", "plan_width": "Int64", "filter": "string", "index_cond": "string"}


@dataclass
class Plan:
    """What ``Target.explain()`` returns: ``frame`` (one row per plan node), ``text``, or ``refusal``."""

    query: str
    queryid: int | None = None
    generic: bool = True
    refusal: str | None = None           # why the statement was not planned; None when it was
    plan: list | None = None             # EXPLAIN (FORMAT JSON) output
    frame: pd.DataFrame = field(default_factory=lambda: _nodes(None))
    text: str = ""

    @property
    def planned(self) -> bool:
        return self.refusal is None

    def __str__(self) -> str:
        return self.text if self.planned else f"not planned: {self.refusal}"

    _repr_pretty_ = lambda self, p, cycle: p.text(str(self))  # noqa: E731  (IPython shows the text)


def explain(target, queryid_or_sql, generic: bool = True) -> Plan:
    """The plan of a statement given by its pg_stat_statements ``queryid`` or as SQL text."""
    from .analysis.query_text import is_explainable
    from .collect import plannable
    from .collect.plans import _json, _plan_error
    caps = target.capabilities
    queryid = None
    if isinstance(queryid_or_sql, str) and not queryid_or_sql.strip().lstrip("-").isdigit():
        query = queryid_or_sql
    else:
        queryid = int(queryid_or_sql)
        query, why = _statement_text(target, queryid)
        if why:
            return Plan(query=query or "", queryid=queryid, generic=generic, refusal=why)
    out = Plan(query=query, queryid=queryid, generic=generic)
    if not is_explainable(query):
        out.refusal = "only SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES and TABLE statements have plans"
        return out
    options = "GENERIC_PLAN, VERBOSE, FORMAT JSON"
    if not generic or caps.major < 16:
        if _PARAM.search(query):
            out.refusal = (f"EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16 or later (this server is {caps.major}), "
                           "and the statement has $n parameters: run EXPLAIN with real values by hand"
                           if generic else "the statement has $n parameters: pass generic=True (PostgreSQL 16+)")
            return out
        options, out.generic = "VERBOSE, FORMAT JSON", False
    with target.engine.connect() as conn:
        try:
            reason = plannable.refusal(conn, query)
            if reason:
                out.refusal = reason
                return out
            raw = conn.connection.driver_connection
            # The marker keeps this EXPLAIN out of the reports' rankings (query_text.is_own).
            out.plan = _json(raw.execute(f"EXPLAIN {MARKER} ({options}) {query}").fetchone()[0])
        except NoAnswerError:
            raise
        except Exception as exc:  # psycopg.Error: a statement the server or the role cannot plan
            out.refusal = _plan_error(exc).removeprefix("not planned: ")
            return out
        finally:
            conn.rollback()
    out.frame = _nodes(out.plan)
    out.text = plan_mod.text(out.plan, max_lines=1000)
    return out


def _statement_text(target, queryid: int) -> tuple[str | None, str | None]:
    """(the query text of ``queryid`` in pg_stat_statements, why it cannot be planned here or None)."""
    stmts = target.statements()
    rows = stmts[stmts["queryid"] == queryid]
    if not len(rows):
        return None, f"queryid {queryid} is not in pg_stat_statements (evicted, reset, or never ran)"
    here = rows[rows["database"] == target.capabilities.database]
    if not len(here):
        dbs = ", ".join(sorted(set(rows["database"].dropna())))
        return rows["query"].iloc[0], (f"queryid {queryid} ran in database {dbs}, not "
                                       f"{target.capabilities.database}: connect to that database to plan it")
    return here["query"].iloc[0], None


def _nodes(plan) -> pd.DataFrame:
    """One row per plan node, depth-first (as EXPLAIN prints them)."""
    rows: list[dict] = []

    def walk(node: dict, parent, depth: int) -> None:
        me = len(rows)
        rows.append({"node": me, "parent": parent, "depth": depth, "node_type": node.get("Node Type"),
                     "relation": ".".join(p for p in (node.get("Schema"), node.get("Relation Name")) if p) or None,
                     "index": node.get("Index Name"), "startup_cost": node.get("Startup Cost"),
                     "total_cost": node.get("Total Cost"), "plan_rows": node.get("Plan Rows"),
                     "plan_width": node.get("Plan Width"), "filter": node.get("Filter"),
                     "index_cond": node.get("Index Cond")})
        for kid in node.get("Plans") or []:
            walk(kid, me, depth + 1)
    if plan is not None:
        walk(plan_mod.root(plan), None, 0)
    frame = pd.DataFrame(rows, columns=list(NODE_COLUMNS))
    return frame.astype(NODE_COLUMNS)


__all__ = ["Plan", "explain"]
