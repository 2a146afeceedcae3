"""What a normalized pg_stat_statements text touches, and which statements are vhdiag's own.

``shape(query)`` parses a statement with pglast (PostgreSQL's own parser, as a library) and
returns the tables it reads and, per table, the columns its WHERE / JOIN ... ON predicates compare
with a value (``col = $1``, ``col IN (...)``, ``col > $2``, ``col BETWEEN ...``): the columns an
index could serve. Normalized texts parse as they are (``$1`` is a parameter); a text that does
not parse (truncated, or newer syntax than pglast's parser) gives None and no advice.

``is_own(query, user, monitoring_user)`` recognizes vhdiag's own statements, so that a report
never ranks its own collectors. It reads the marker, nothing else: every statement vhdiag writes
carries ``/* vhdiag */`` after its first keyword (vhdiag/marker.py), which pg_stat_statements
keeps on every version. An application statement with the same text as a collector but no
marker is the application's. The statements the drivers send by themselves cannot carry it:
transaction control (``BEGIN READ ONLY``, ``ROLLBACK``, ``COMMIT``, ``SAVEPOINT``, ...; tracked
while ``pg_stat_statements.track_utility`` is on, the default) and the session statements of
SQLAlchemy and psycopg (``select pg_catalog.version()``, ``show ...``, the type lookup; vhdiag no
longer sends them, but older history holds them). Applications send the same texts, so they
count as vhdiag's only when run by the role vhdiag connects as: a role shared with an
application loses its transaction-control lines from the report, which cost next to nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..marker import MARKER

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)

# Transaction control, as psycopg and SQLAlchemy send it (and as PostgreSQL 18 normalizes
# savepoint names: SAVEPOINT $1).
_TRANSACTION = re.compile(r"(?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE"
                          r"|PREPARE\s+TRANSACTION)\b", re.I)
# What SQLAlchemy's dialect and psycopg send on a new connection, whitespace and case ignored.
_SESSION = frozenset(" ".join(t.lower().split()) for t in (
    "select pg_catalog.version()", "select current_schema()", "show standard_conforming_strings",
    "show transaction isolation level",
    "SELECT typname AS name, oid, typarray AS array_oid, oid::regtype::text AS regtype, typdelim AS delimiter"
    " FROM pg_type t WHERE t.oid = to_regtype($1) ORDER BY t.oid",
))


def is_session_statement(query) -> bool:
    """Transaction control or a driver's session statement: what carries no marker."""
    if not isinstance(query, str):
        return False
    text = _COMMENT.sub(" ", query).strip().rstrip(";").strip()
    return bool(_TRANSACTION.match(text)) or " ".join(text.lower().split()) in _SESSION


def is_own(query, user=None, monitoring_user=None) -> bool:
    """True for a statement vhdiag itself sent (see the module docstring)."""
    if not isinstance(query, str):
        return False
    if MARKER in query:
        return True
    # user is NA for a statement of a role dropped since: never the monitoring role.
    return isinstance(user, str) and user == monitoring_user and is_session_statement(query)


_EXPLAINABLE = ("select", "with", "insert", "update", "delete", "merge", "values", "table")


def is_explainable(query) -> bool:
    """A statement EXPLAIN takes (a query or DML), not a utility statement (CREATE INDEX, VACUUM, ...)."""
    if not isinstance(query, str):
        return False
    words = _COMMENT.sub(" ", query).strip().split(None, 1)
    return bool(words) and words[0].lower().lstrip("(") in _EXPLAINABLE


# Parse-tree node types that change the schema or the server's configuration.
_DDL_NODES = {"CreateStmt", "DropStmt", "AlterTableStmt", "IndexStmt", "RenameStmt", "TruncateStmt",
              "ReindexStmt", "AlterSystemStmt", "ViewStmt", "CreateTableAsStmt", "AlterDomainStmt",
              "CreateFunctionStmt", "AlterFunctionStmt", "CreateTrigStmt", "CreateSeqStmt", "AlterSeqStmt",
              "CreateEnumStmt", "AlterEnumStmt", "CompositeTypeStmt", "CreateSchemaStmt", "CreateExtensionStmt",
              "AlterExtensionStmt", "ClusterStmt", "AlterObjectSchemaStmt", "CommentStmt", "GrantStmt"}


def is_ddl(query) -> bool:
    """A statement (pg_stat_statements text, parsed by pglast, never run) that changes the schema:
    CREATE/DROP/ALTER, TRUNCATE, REINDEX, ALTER SYSTEM. Text pglast cannot parse is not DDL."""
    if not isinstance(query, str):
        return False
    try:
        import pglast
        stmts = pglast.parse_sql(query)
    except Exception:  # noqa: BLE001 - pglast raises ParseError and others on odd text
        return False
    return any(type(s.stmt).__name__ in _DDL_NODES for s in stmts)


# -- what a statement touches -----------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """Tables a statement reads, and per table the columns its predicates compare with values."""

    tables: tuple[tuple[str | None, str], ...]           # (schema or None, table), in FROM order
    equality: dict = field(default_factory=dict)        # (schema, table) -> [columns] (=, IN)
    ranges: dict = field(default_factory=dict)          # (schema, table) -> [columns] (<, >, BETWEEN)
    order: dict = field(default_factory=dict)           # (schema, table) -> [columns] (ORDER BY)

    def index_columns(self, table: tuple[str | None, str], limit: int = 3) -> list[str]:
        """Columns for a b-tree: equality columns first, then one range column, or else the first
        ORDER BY column, so the index also returns the rows in order (the b-tree rule: after
        the equality columns, one column can serve a range or the order, not two)."""
        cols = list(dict.fromkeys(self.equality.get(table, [])))
        extra = [c for c in self.ranges.get(table, []) if c not in cols][:1]
        if not extra and cols:
            extra = [c for c in self.order.get(table, []) if c not in cols][:1]
        return (cols + extra)[:limit]


_EQ_OPS, _RANGE_OPS = {"="}, {"<", ">", "<=", ">="}


def shape(query: str) -> Shape | None:
    """Parse ``query``; None when it does not parse."""
    try:
        import pglast
        from pglast import ast
    except ImportError:  # pragma: no cover - pglast is a dependency
        return None
    try:
        stmts = pglast.parse_sql(query)
    except Exception:  # pglast.parser.ParseError, or a text cut short
        return None
    tables: list = []
    eq: dict = {}
    rng: dict = {}
    order: dict = {}
    ctes: set[str] = set()
    for node in _walk(stmts):
        if isinstance(node, ast.CommonTableExpr):
            ctes.add(node.ctename)
    for node in _walk(stmts):
        if isinstance(node, (ast.SelectStmt, ast.UpdateStmt, ast.DeleteStmt)):
            scope = _scope(node, ast, ctes)
            for t in scope.values():
                if t not in tables:
                    tables.append(t)
            quals = [node.whereClause] if getattr(node, "whereClause", None) is not None else []
            quals += _join_quals(getattr(node, "fromClause", None) or (), ast)
            for qual in quals:
                for op, ref in _predicates(qual, ast):
                    table, column = _resolve(ref, scope)
                    if table is None:
                        continue
                    (eq if op == "eq" else rng).setdefault(table, []).append(column)
            for sort in getattr(node, "sortClause", None) or ():
                if isinstance(sort, ast.SortBy) and isinstance(sort.node, ast.ColumnRef):
                    table, column = _resolve(sort.node, scope)
                    if table is not None:
                        order.setdefault(table, []).append(column)
    return Shape(tuple(tables), eq, rng, order)


def _walk(node):
    """Every pglast node under ``node``, depth first."""
    from pglast import ast
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, (list, tuple)):
            stack.extend(reversed(cur))
        elif isinstance(cur, ast.Node):
            yield cur
            for name in type(cur).__slots__:
                value = getattr(cur, name, None)
                if isinstance(value, (ast.Node, list, tuple)):
                    stack.append(value)


def _scope(stmt, ast, ctes) -> dict:
    """alias or name -> (schema, table) for the relations this statement level reads."""
    scope: dict = {}

    def add(rv):
        if rv.relname in ctes and rv.schemaname is None:
            return
        key = (rv.schemaname, rv.relname)
        scope[rv.alias.aliasname if rv.alias else rv.relname] = key

    def visit(item):
        if isinstance(item, ast.RangeVar):
            add(item)
        elif isinstance(item, ast.JoinExpr):
            visit(item.larg)
            visit(item.rarg)

    if isinstance(stmt, (ast.UpdateStmt, ast.DeleteStmt)):
        add(stmt.relation)
    for item in (getattr(stmt, "fromClause", None) or getattr(stmt, "usingClause", None) or ()):
        visit(item)
    return scope


def _join_quals(from_clause, ast) -> list:
    out = []
    for item in from_clause:
        if isinstance(item, ast.JoinExpr):
            if item.quals is not None:
                out.append(item.quals)
            out += _join_quals([item.larg, item.rarg], ast)
    return out


def _predicates(expr, ast):
    """(``eq`` or ``range``, ColumnRef) for each column compared with a value under AND."""
    if isinstance(expr, ast.BoolExpr):
        if int(expr.boolop) == 0:  # AND_EXPR; OR branches are not one index's conditions
            for arg in expr.args:
                yield from _predicates(arg, ast)
        return
    if not isinstance(expr, ast.A_Expr):
        return
    op = expr.name[-1].sval if expr.name else ""
    kind = int(expr.kind)
    sides = [(expr.lexpr, expr.rexpr), (expr.rexpr, expr.lexpr)]
    for col, other in sides:
        if not isinstance(col, ast.ColumnRef) or not _is_value(other, ast):
            continue
        if kind == 0 and op in _EQ_OPS:          # AEXPR_OP
            yield "eq", col
        elif kind == 0 and op in _RANGE_OPS:
            yield "range", col
        elif kind == 6 and op == "=" and col is expr.lexpr:   # AEXPR_IN
            yield "eq", col
        elif kind in (10, 11) and col is expr.lexpr:           # BETWEEN, NOT BETWEEN
            yield "range", col
        return


def _is_value(node, ast) -> bool:
    """A parameter, constant or expression of them: no column, no subquery."""
    if node is None:
        return False
    for sub in _walk(node):
        if isinstance(sub, (ast.ColumnRef, ast.SubLink, ast.SelectStmt)):
            return False
    return True


def _resolve(ref, scope: dict):
    from pglast import ast
    names = [f.sval for f in ref.fields if isinstance(f, ast.String)]
    if len(names) == 1:
        if len(scope) != 1:
            return None, None  # unqualified with several tables: which one needs the catalog
        return next(iter(scope.values())), names[0]
    if len(names) >= 2 and names[-2] in scope:
        return scope[names[-2]], names[-1]
    return None, None


def quote_ident(name: str) -> str:
    """An identifier as PostgreSQL's quote_ident() writes it: bare when it can be."""
    try:
        from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS, COL_NAME_KEYWORDS
        keywords = RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS | COL_NAME_KEYWORDS
    except ImportError:  # pragma: no cover
        keywords = set()
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in keywords:
        return name
    return '"' + name.replace('"', '""') + '"'


_SLEEP = re.compile(r"\bpg_sleep(?:_for|_until)?\s*\(", re.I)


def sleeps(query) -> bool:
    """The statement calls pg_sleep(): its time is waiting, not work, so no index or cache helps it."""
    return isinstance(query, str) and bool(_SLEEP.search(query))
