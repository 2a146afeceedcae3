"""EXPLAIN (FORMAT JSON) plans: as a few lines of text, and as a shape to compare across reports.

A plan's *shape* keeps what makes it a different plan (node types, the relations and indexes
they read, join and aggregate strategies, parallelism) and drops what changes with every
ANALYZE (costs, row estimates, widths). Two reports whose generic plans of a query have
different shapes saw a plan change.
"""
from __future__ import annotations

import pandas as pd

_SHAPE_KEYS = ("Node Type", "Strategy", "Join Type", "Scan Direction", "Parent Relationship",
               "Schema", "Relation Name", "Index Name", "CTE Name", "Function Name")
_DETAIL_KEYS = ("Index Cond", "Recheck Cond", "Filter", "Hash Cond", "Merge Cond", "Join Filter")

PLAN_CHANGE_COLUMNS = ["queryid", "user", "database", "before", "after", "before_cost", "after_cost",
                       "before_report", "query"]


def root(plan) -> dict:
    """The top node of EXPLAIN (FORMAT JSON) output (a list of one {"Plan": ...})."""
    if isinstance(plan, list):
        plan = plan[0]
    return plan.get("Plan", plan) if isinstance(plan, dict) else {}


def _label(node: dict) -> str:
    label = node.get("Node Type", "?")
    for key in ("Strategy", "Join Type"):
        if node.get(key) and node[key] not in ("Plain", "Inner"):
            label = f"{node[key]} {label}"
    if node.get("Relation Name"):
        rel = node["Relation Name"]
        label += f" on {node['Schema']}.{rel}" if node.get("Schema") else f" on {rel}"
    if node.get("Index Name"):
        label += f" using {node['Index Name']}"
    return label


def shape(plan) -> str:
    """``Aggregate(Seq Scan on public.orders)``: the plan without its numbers."""
    def walk(node: dict) -> str:
        kids = node.get("Plans") or []
        inner = ", ".join(walk(k) for k in kids)
        return _label(node) + (f"({inner})" if inner else "")
    return walk(root(plan))


def text(plan, max_lines: int = 30) -> str:
    """The plan as indented lines with cost and rows, like EXPLAIN's text format, shortened."""
    lines: list[str] = []

    def walk(node: dict, depth: int) -> None:
        cost = node.get("Total Cost")
        rows = node.get("Plan Rows")
        nums = f"  (cost={cost:.2f} rows={rows})" if cost is not None else ""
        lines.append(("  " * depth + ("-> " if depth else "")) + _label(node) + nums)
        for key in _DETAIL_KEYS:
            if node.get(key):
                lines.append("  " * depth + ("   " if depth else "") + f"  {key}: {node[key]}")
        for kid in node.get("Plans") or []:
            walk(kid, depth + 1)

    walk(root(plan), 0)
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... {len(lines) - max_lines} more lines"]
    return "\n".join(lines)


def total_cost(plan) -> float | None:
    value = root(plan).get("Total Cost")
    return float(value) if value is not None else None


def changes(current: list[dict], previous: list[dict], previous_report: str = "") -> pd.DataFrame:
    """Queries whose plan shape differs between ``previous`` and ``current`` plan records.

    A record is ``{"queryid", "user", "database", "query", "shape", "cost", ...}`` as reports save
    them; queries planned only once are not compared.
    """
    before = {(r["queryid"], r.get("user"), r.get("database")): r for r in previous if r.get("shape")}
    rows = []
    for rec in current:
        if not rec.get("shape"):
            continue
        old = before.get((rec["queryid"], rec.get("user"), rec.get("database")))
        if old is None or old["shape"] == rec["shape"]:
            continue
        rows.append({"queryid": rec["queryid"], "user": rec.get("user"), "database": rec.get("database"),
                     "before": old["shape"], "after": rec["shape"], "before_cost": old.get("cost"),
                     "after_cost": rec.get("cost"), "before_report": previous_report, "query": rec.get("query")})
    frame = pd.DataFrame(rows, columns=PLAN_CHANGE_COLUMNS)
    frame["queryid"] = frame["queryid"].astype("Int64")
    return frame
