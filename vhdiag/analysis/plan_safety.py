"""What a statement names that planning it could run: the first half of "may vhdiag EXPLAIN this?".

EXPLAIN without ANALYZE never executes a statement, but planning it runs code. The planner folds
IMMUTABLE functions with constant arguments, evaluates STABLE ones to estimate selectivity,
inlines SQL functions, expands views and their rules, adds row-level security policies, fills
in column defaults for INSERT, simplifies index predicates, CHECK constraints and statistics
expressions, calls operators on constants and histogram values, and lets a foreign-data
wrapper estimate its table. So planning a statement from pg_stat_statements runs, inside
vhdiag's session and with its privileges, plpgsql written by anyone who may CREATE FUNCTION.

vhdiag therefore plans a statement only when everything it names resolves to a built-in
object (an oid below 16384, PostgreSQL's FirstNormalObjectId). ``names(query)`` parses the
text with pglast (PostgreSQL's own parser) and returns every function, operator, type,
collation and relation name it uses, or why it is refused outright: a text that does not parse
(cut short, or newer syntax), more than one statement, anything but SELECT / INSERT / UPDATE /
DELETE / MERGE, SELECT INTO, and built-in functions that run SQL text (``query_to_xml`` and
kin, ``ts_stat``, ``ts_rewrite``). ``vhdiag.collect.plannable`` checks the names against the
server's catalogs. Names only, never schemas: an unqualified name resolves through search_path,
so a name is safe only when no user-defined object of that name exists in any schema.

Pure: no database access.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .query_text import _walk

# Operators the parser looks up by name for SQL syntax that names none: BETWEEN (these four),
# and = for CASE x WHEN, JOIN USING / NATURAL and IN (subquery).
_BETWEEN = ("<", ">", "<=", ">=")
# Built-in functions that run a query given as text, or read a table given by name (views and
# all): whatever those call would run too, and STABLE ones are evaluated at plan time.
_RUNS_SQL = re.compile(r"^((query|cursor|table|schema|database)_to_xml\w*|ts_stat|ts_rewrite)$")
_QUERIES = ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")
_WRITES = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")


@dataclass(frozen=True)
class Names:
    """What one statement names; ``refusal`` says why it must not be planned at all."""

    functions: frozenset = frozenset()
    operators: frozenset = frozenset()
    types: frozenset = frozenset()
    collations: frozenset = frozenset()
    relations: frozenset = frozenset()
    writes: bool = False              # INSERT, UPDATE, DELETE or MERGE anywhere (column defaults apply)
    refusal: str | None = None


def names(query) -> Names:
    """The names ``query`` uses (see the module docstring), or a ``Names`` with ``refusal`` set."""
    if not isinstance(query, str) or not query.strip():
        return Names(refusal="no statement text")
    try:
        import pglast
        from pglast import ast
        stmts = pglast.parse_sql(query)
    except Exception:  # pglast.parser.ParseError, or a text cut short
        return Names(refusal="pglast cannot parse it (cut short, or syntax newer than its parser)")
    if len(stmts) != 1:
        return Names(refusal=f"the text holds {len(stmts)} statements")
    kind = type(stmts[0].stmt).__name__
    if kind not in _QUERIES:
        return Names(refusal=f"{kind} is not a query")
    found = {k: set() for k in ("functions", "operators", "types", "collations", "relations")}
    writes = False
    for node in _walk(stmts):
        writes = writes or type(node).__name__ in _WRITES
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            return Names(refusal="SELECT INTO creates a table")
        for what, name in _names_of(node, ast):
            if name:
                found[what].add(name)
    for fn in sorted(found["functions"]):
        if _RUNS_SQL.match(fn):
            return Names(refusal=f"calls {fn}, which runs SQL it is given")
    return Names(**{k: frozenset(v) for k, v in found.items()}, writes=writes)


def _last(name_list) -> str | None:
    """The object name of a qualified name list (``pg_catalog.int4`` -> ``int4``)."""
    strings = [n.sval for n in name_list or () if type(n).__name__ == "String"]
    return strings[-1] if strings else None


def _names_of(node, ast):
    """(kind, name) for what one parse node names."""
    if isinstance(node, ast.FuncCall):
        yield "functions", _last(node.funcname)
    elif isinstance(node, ast.RangeTableSample):          # TABLESAMPLE methods are functions
        yield "functions", _last(node.method)
    elif isinstance(node, ast.ColumnRef) and len(node.fields or ()) >= 2 and isinstance(node.fields[-1], ast.String):
        yield "functions", node.fields[-1].sval           # t.f is f(t) when t has no column f
    elif isinstance(node, ast.A_Indirection):
        for item in node.indirection or ():
            if isinstance(item, ast.String):              # (expr).f is f(expr) too
                yield "functions", item.sval
    elif isinstance(node, ast.A_Expr):
        op = _last(node.name)
        if op and op.upper().endswith(("BETWEEN", "BETWEEN SYMMETRIC")):
            yield from (("operators", o) for o in _BETWEEN)
        elif op:                                          # IN, LIKE, IS DISTINCT FROM... carry theirs
            yield "operators", op
    elif isinstance(node, ast.SubLink):
        yield "operators", _last(node.operName) or "="
    elif isinstance(node, ast.CaseExpr) and node.arg is not None:
        yield "operators", "="
    elif isinstance(node, ast.JoinExpr) and (node.usingClause or node.isNatural):
        yield "operators", "="
    elif isinstance(node, ast.SortBy) and node.useOp:
        yield "operators", _last(node.useOp)
    elif isinstance(node, ast.TypeName):
        yield "types", _last(node.names)
    elif isinstance(node, ast.CollateClause):
        yield "collations", _last(node.collname)
    elif isinstance(node, ast.RangeVar):                  # CTE names too: a table may share one
        yield "relations", node.relname
