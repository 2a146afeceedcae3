"""Plans of monitored statements: ``EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON)`` without
ANALYZE (the statement is planned, never executed), and hypopg's hypothetical indexes.

Planning runs code, though (IMMUTABLE functions are folded, views expanded), so a statement is
planned only when ``vhdiag.collect.plannable`` finds nothing user-defined in it. Each EXPLAIN runs
in the Target's read-only transaction under its statement_timeout, and is rolled back.
"""
from __future__ import annotations

import json

import pandas as pd

from ..config import resolve_config
from ..errors import NoAnswerError
from ..marker import MARKER
from ..redact import redact_message


PLANS_OFF = ("Plans are off ([reports] plans = false in vhdiag.toml): no statement was planned, "
             "and EXPLAIN did not run.")


def plans_enabled(config=None) -> bool:
    """``[reports] plans`` (default true): false and the report runs no EXPLAIN at all."""
    return bool(resolve_config(config)["reports"]["plans"])


def generic_plans(target, frame: pd.DataFrame, config=None) -> tuple[list[dict], str]:
    """``EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON)`` of each statement in ``frame`` that ran in the
    target's database: (records, message). PostgreSQL 16+: GENERIC_PLAN plans a statement with
    ``$1`` parameters as they are, and EXPLAIN without ANALYZE does not execute it. Each runs in
    the Target's read-only transaction under its statement_timeout.

    Planning runs code, though (IMMUTABLE functions are folded, views expanded): a statement is
    planned only when ``vhdiag.collect.plannable`` finds nothing user-defined in it, checked in
    the transaction the EXPLAIN then runs in; the others get a ``note`` saying why
    (``not planned: calls user-defined function public.f``). ``config``: see ``plans_enabled``."""
    from ..analysis import plans as plan_mod
    from ..analysis.query_text import is_explainable
    from . import plannable
    if not plans_enabled(config):
        return [], PLANS_OFF
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
                reason = plannable.refusal(conn, rec["query"])
                if reason:
                    out["note"] = f"not planned: {reason}"
                else:
                    # The marker keeps this EXPLAIN out of the next report's rankings (query_text.is_own).
                    row = raw.execute(f"EXPLAIN {MARKER} (GENERIC_PLAN, VERBOSE, FORMAT JSON) {rec['query']}").fetchone()
                    plan = _json(row[0])
                    out.update(plan=plan, shape=plan_mod.shape(plan), cost=plan_mod.total_cost(plan),
                               text=plan_mod.text(plan))
            except NoAnswerError:  # the server froze: no plan to record, the report fails in one line
                raise
            except Exception as exc:  # psycopg.Error: a statement the monitoring role cannot plan
                out["error"] = _plan_error(exc)
            finally:
                conn.rollback()
            records.append(out)
    refused = sum("note" in r for r in records)
    return records, (f"{sum('shape' in r for r in records)} generic plans taken (EXPLAIN does not execute them)"
                     + (f"; {refused} not planned, since planning could run user-written code."
                        if refused else "."))


def hypopg_costs(target, advice: pd.DataFrame, config=None) -> tuple[pd.DataFrame, str]:
    """The planner's cost of each advised query without and with its index as a hypothetical
    index (hypopg; nothing is built). Needs the hypopg extension and PostgreSQL 16+ (generic plans).
    The same rule as ``generic_plans``: a query that names anything user-defined is not planned
    (its ``error`` says why), and ``[reports] plans = false`` turns this off too."""
    from ..analysis import plans as plan_mod
    from . import plannable
    cols = ["queryid", "suggestion", "cost_without", "cost_with", "error"]
    caps = target.capabilities
    if not plans_enabled(config):
        return pd.DataFrame(columns=cols), PLANS_OFF
    if not _hypopg_installed(target):
        return pd.DataFrame(columns=cols), (f"hypopg is not installed in database {caps.database}: the cost with "
                                            "each suggested index is not estimated (CREATE EXTENSION hypopg; to get it).")
    if caps.major < 16:
        return pd.DataFrame(columns=cols), "hypopg is installed, but comparing generic plans needs PostgreSQL 16 or later."
    rows = []
    with target.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for rec in advice.to_dict("records"):
            create = rec["suggestion"].replace(" CONCURRENTLY", "").rstrip(";")
            explain = f"EXPLAIN {MARKER} (GENERIC_PLAN, VERBOSE, FORMAT JSON) {rec['query']}"
            out = {"queryid": rec["queryid"], "suggestion": rec["suggestion"], "cost_without": None,
                   "cost_with": None, "error": None}
            try:
                reason = plannable.refusal(conn, rec["query"])
                if reason:
                    out["error"] = f"not planned: {reason}"
                else:
                    out["cost_without"] = plan_mod.total_cost(_json(raw.execute(explain).fetchone()[0]))
                    raw.execute(f"SELECT {MARKER} indexrelid FROM hypopg_create_index(%s)", (create,))
                    out["cost_with"] = plan_mod.total_cost(_json(raw.execute(explain).fetchone()[0]))
                    raw.execute(f"SELECT {MARKER} hypopg_reset()")
            except NoAnswerError:  # the server froze: no plan to record, the report fails in one line
                raise
            except Exception as exc:
                out["error"] = _plan_error(exc)
            finally:
                conn.rollback()
            rows.append(out)
    return pd.DataFrame(rows, columns=cols), "hypothetical indexes (hypopg): planner cost without and with each."


def _plan_error(exc) -> str:
    """Why EXPLAIN refused a statement, in words a DBA can act on (never the raw syntax error)."""
    import psycopg
    text = redact_message((str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0])
    if isinstance(exc, psycopg.errors.SyntaxError) or "syntax error" in text:
        return ("not planned: its normalized text has $n where PostgreSQL cannot plan a parameter generically "
                "(LIMIT $1, INTERVAL $1, a type name ...): run EXPLAIN with real values by hand")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege) or "permission denied" in text:
        return f"not planned: the monitoring role may not read what it touches ({text})"
    return f"not planned: {text}"


def _hypopg_installed(target) -> bool:
    return bool(target.query(f"SELECT {MARKER} count(*) AS n FROM pg_extension WHERE extname = 'hypopg'")["n"].iloc[0])


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
