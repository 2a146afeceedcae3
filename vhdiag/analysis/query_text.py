"""What a normalized pg_stat_statements text touches, and which statements are vhdiag's own.

``shape(query)`` parses a statement with pglast (PostgreSQL's own parser, as a library) and
returns the tables it reads and, per table, the columns its WHERE / JOIN ... ON predicates compare
with a value (``col = $1``, ``col IN (...)``, ``col > $2``, ``col BETWEEN ...``): the columns an
index could serve. Normalized texts parse as they are (``$1`` is a parameter); a text that does
not parse (truncated, or newer syntax than pglast's parser) gives None and no advice.

``is_own(query, user, monitoring_user)`` recognizes vhdiag's monitoring statements, so that a
report never ranks its own collectors. pg_stat_statements has no application_name, so texts are
compared: every statement in ``vhdiag/collect/sql/*.sql`` and the few inline ones, as
*fingerprints* (comments dropped, because PostgreSQL 18 drops a statement's leading comment;
literals, ``$n`` and ``:name`` parameters, numbers, true/false/null and constant lists reduced
to ``?``; whitespace and case ignored). The session statements every SQLAlchemy/psycopg
connection sends (``BEGIN READ ONLY``, ``ROLLBACK``, ``show ...``) count as vhdiag's only when
run by the role vhdiag connects as, since applications send them too. Statements carrying
``/* vhdiag */`` (the report's own EXPLAINs) are always vhdiag's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

MARKER = "/* vhdiag */"

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRING = re.compile(r"(?:[EeBbXxUuNn]|U&)?'(?:[^']|'')*'")
_PGSS_SCHEMA = re.compile(r'(?:"[^"]+"|\b\w+)\.(pg_stat_statements(?:_info)?)\b')
_PARAM = re.compile(r"\$\d+|%\(\w+\)s|%s|(?<![:\w]):[A-Za-z_]\w*")
_NUMBER = re.compile(r"(?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?!\w)")
_WORDS = re.compile(r"\b(?:true|false|null)\b", re.I)
_LIST = re.compile(r"\?(?:,\?)+")

# Inline statements of other modules (vhdiag/target.py, collect/statements.py, collect/activity.py,
# collect/maintenance.py, history/snapshot.py), as they send them.
_INLINE = (
    "SELECT quote_ident(current_user) AS u",
    "SELECT quote_ident(current_user) AS r",
    "SELECT current_setting('max_connections')::int AS m",
    "SELECT quote_ident(n) AS q FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS u(n, i) ORDER BY i",
)
# What SQLAlchemy and psycopg send on every connection and transaction: vhdiag's when run by
# the role vhdiag connects as.
_SESSION = (
    "BEGIN READ ONLY", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT $1", "RELEASE $1",
    "select pg_catalog.version()", "select current_schema()", "show standard_conforming_strings",
    "show transaction isolation level",
    "SELECT typname AS name, oid, typarray AS array_oid, oid::regtype::text AS regtype, typdelim AS delimiter"
    " FROM pg_type t WHERE t.oid = to_regtype($1) ORDER BY t.oid",
)


def fingerprint(sql: str) -> str:
    """A statement's text reduced to what pg_stat_statements' normalization cannot change."""
    text = sql.replace("{pgss}.", "")
    text = _COMMENT.sub(" ", text)
    text = _STRING.sub("?", text)
    text = _PGSS_SCHEMA.sub(r"\1", text)
    text = re.sub(r'"_pg3_\d+"', "?", text)  # psycopg's savepoint names
    text = _PARAM.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _WORDS.sub("?", text)
    text = re.sub(r"\s+", "", text).lower().rstrip(";")
    return _LIST.sub("?", text)


@cache
def monitoring_fingerprints() -> frozenset[str]:
    """Fingerprints of every statement vhdiag's collectors send."""
    from .. import target
    sql_dir = Path(__file__).resolve().parent.parent / "collect" / "sql"
    texts = [p.read_text() for p in sorted(sql_dir.glob("*.sql"))]
    texts += [target._CAPABILITIES_SQL, target.SESSION_SETUP_SQL, target.TRANSACTION_BOUNDS_SQL, *_INLINE]
    return frozenset(fingerprint(t) for t in texts)


@cache
def _session_fingerprints() -> frozenset[str]:
    return frozenset(fingerprint(t) for t in _SESSION)


def is_own(query, user=None, monitoring_user=None) -> bool:
    """True for a statement vhdiag itself sent (see the module docstring)."""
    if not isinstance(query, str):
        return False
    if MARKER in query:
        return True
    fp = fingerprint(query)
    if fp in monitoring_fingerprints():
        return True
    return monitoring_user is not None and user == monitoring_user and fp in _session_fingerprints()


_EXPLAINABLE = ("select", "with", "insert", "update", "delete", "merge", "values", "table")


def is_explainable(query) -> bool:
    """A statement EXPLAIN takes (a query or DML), not a utility statement (CREATE INDEX, VACUUM, ...)."""
    if not isinstance(query, str):
        return False
    words = _COMMENT.sub(" ", query).strip().split(None, 1)
    return bool(words) and words[0].lower().lstrip("(") in _EXPLAINABLE


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
