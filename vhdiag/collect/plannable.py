"""May vhdiag plan this statement? The catalog half of the rule the README's "Safe against
production" states: never plan or evaluate SQL that can call user-written functions.

EXPLAIN without ANALYZE does not execute a statement, but the planner runs code while planning
it (see ``vhdiag.analysis.plan_safety``): "Functions marked IMMUTABLE ... can be pre-evaluated
when the query is planned", and the planner also evaluates STABLE functions to estimate
selectivity, inlines SQL functions and expands views, policies and defaults
(https://www.postgresql.org/docs/current/xfunc-volatility.html). A plpgsql function anyone may
create would then run in vhdiag's session, as vhdiag's role.

``refusal(conn, query)`` says why a statement must not be planned, or None. The parse half
(pglast) lists what the statement names; ``sql/plannable.sql`` then asks the catalogs whether
any of those names has a user-defined namesake (oid >= 16384) in any schema, and whether the
relations it reads (with the relations behind their views and rules, their partitions and
inheritance children) are foreign tables, carry row-level security or rules, or have parts the
planner reads (column types, defaults, constraints, indexes, statistics, policies, view
definitions) that depend on user-defined functions, operators, types or other code. The check
itself runs with search_path set to pg_catalog alone, so its own calls resolve to built-ins only.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..analysis import plan_safety
from . import _base


def refusal(conn, query) -> str | None:
    """Why ``query`` must not be planned (``calls user-defined function public.f``), or None.

    ``conn`` is a SQLAlchemy connection of the Target (``target.engine.connect()``), so the check
    runs read-only and bounded like every collector, in the transaction the EXPLAIN then uses.
    """
    found = plan_safety.names(query)
    if found.refusal:
        return found.refusal
    params = {key: sorted(getattr(found, key)) for key in ("functions", "operators", "types", "collations",
                                                           "relations")}
    pin = sa.text(_base.load_sql("plannable_search_path"))
    saved = conn.execute(pin, {"path": "pg_catalog"}).scalar_one()
    rows = conn.execute(sa.text(_base.load_sql("plannable")), {**params, "writes": found.writes}).fetchall()
    conn.execute(pin, {"path": saved})  # the statement's names resolve as before
    return rows[0].reason if rows else None
