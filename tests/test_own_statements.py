"""vhdiag's own statements are marked, not guessed: every statement it sends carries
``/* vhdiag */`` in what pg_stat_statements stores (PostgreSQL 15 and 18), and the report's
filter reads the marker, so vhdiag's statements leave the rankings and an application's
look-alikes stay."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import psycopg
import pytest

import vhdiag
from vhdiag.collect import plans as reports  # generic_plans, hypopg_costs: what the report calls
from vhdiag.analysis import slow_queries as sq
from vhdiag.collect import _base, activity, indexes, maintenance, registry
from vhdiag.history import History
from vhdiag.marker import MARKER

import workload
from helpers import ensure_database

ROOT = Path(__file__).resolve().parent.parent
PROBE_DB = "own_probe"
MONITOR = "vh_own_monitor"        # a role of its own: its pg_stat_statements entries are vhdiag's only
APP_QUERY = "SELECT count(*) FROM orders WHERE customer_id = $1"


@pytest.fixture
def probe(pg):
    """The conftest server with this module's database and monitoring role, made on first use."""
    with pg.admin("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MONITOR,)).fetchone():
            conn.execute(f"CREATE ROLE {MONITOR} LOGIN")
            conn.execute(f"GRANT pg_monitor TO {MONITOR}")
    ensure_database(pg, PROBE_DB, "CREATE TABLE orders (id int PRIMARY KEY, customer_id int)",
                    "INSERT INTO orders SELECT g, g % 50 FROM generate_series(1, 2000) g",
                    f"GRANT SELECT ON orders TO {workload.APP_USER}, {MONITOR}")
    return pg


def monitor_dsn(pg) -> str:
    return pg.dsn(PROBE_DB, user=MONITOR, via="socket")


def run_everything(target) -> None:
    """Every collector, doctor, the helpers behind notices and suggestions, and the report's
    plan and hypothetical-index queries."""
    for entry in registry.collectors():
        getattr(target, entry.method)()
    target.doctor()
    activity.summary(target)
    indexes.unused(target)
    _base.role_ident(target)
    maintenance._quoted(target, ["Mixed"])
    frame = pd.DataFrame([{"queryid": 1, "user": workload.APP_USER, "database": PROBE_DB, "query": APP_QUERY}])
    reports.generic_plans(target, frame)        # EXPLAIN on 16+, nothing on 15
    reports.hypopg_costs(target, frame.assign(suggestion="CREATE INDEX ON orders (customer_id);"))


def stored(pg, role):
    """(query, toplevel) of every pg_stat_statements entry of ``role`` in the probe database."""
    with pg.admin(PROBE_DB) as conn:
        return conn.execute(
            "SELECT s.query, s.toplevel FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            "JOIN pg_database d ON d.oid = s.dbid WHERE r.rolname = %s AND d.datname = %s",
            (role, PROBE_DB)).fetchall()


def test_every_statement_vhdiag_sends_carries_the_marker(probe, tmp_path):
    with vhdiag.connect(monitor_dsn(probe)) as target, History(str(tmp_path / "h.sqlite")) as history:
        run_everything(target)
        history.snapshot(target, "own")
        history.snapshot(target, "own")
    texts = [query for query, _ in stored(probe, MONITOR)]
    marked = [q for q in texts if MARKER in q]
    # What only the drivers send: no dialect start-up queries (version(), show ...), no type lookup.
    # COMMIT, not ROLLBACK: vhdiag adds nothing to the rollbacks the error-rate checks read.
    assert {q for q in texts if MARKER not in q} == {"BEGIN READ ONLY", "COMMIT"}
    assert len(marked) >= len(registry.collectors())
    for q in marked:
        # After the first keyword, on both versions (15 keeps the SQL files' leading comments).
        body = re.sub(r"^(?:\s*--[^\n]*\n)*\s*", "", q)
        assert re.match(r"[A-Za-z]+ /\* vhdiag \*/ ", body), q
    if probe.major >= 16:
        assert any(q.startswith(f"EXPLAIN {MARKER} (GENERIC_PLAN") for q in marked)


def test_exclude_own_removes_vhdiag_and_keeps_look_alikes(probe, tmp_path):
    collector_text = _base.load_sql("maintenance_databases").replace(f" {MARKER}", "")
    with vhdiag.connect(monitor_dsn(probe)) as target, History(str(tmp_path / "h.sqlite")) as history:
        history.snapshot(target, "own")
        with psycopg.connect(probe.dsn(PROBE_DB, user=workload.APP_USER, via="socket")) as app:
            app.execute("SELECT count(*) FROM pg_stat_activity")
            app.execute(collector_text)                                  # a collector's text, unmarked
            app.execute("SELECT count(*) FROM orders WHERE customer_id = %s", (3,))
            app.rollback()                                               # BEGIN ... ROLLBACK of another role
        run_everything(target)
        history.snapshot(target, "own")
        window = history.statements()
    window = window[window["database"] == PROBE_DB]
    kept, excluded = sq.exclude_own(window, MONITOR)
    assert len(excluded) >= len(registry.collectors())
    assert set(excluded["user"]) == {MONITOR}
    assert MONITOR not in set(kept["user"])
    app = kept[kept["user"] == workload.APP_USER]
    assert {"SELECT count(*) FROM pg_stat_activity", APP_QUERY, "BEGIN", "ROLLBACK"} <= set(app["query"])
    look_alike = app[app["query"].str.contains("age(d.datfrozenxid) AS xid_age", regex=False)]
    assert len(look_alike) == 1 and MARKER not in look_alike["query"].iloc[0]


def test_every_sql_file_is_marked_after_its_first_keyword():
    for path in sorted(_base.SQL_DIR.glob("[!_]*.sql")):               # _*.sql: fragments, no query
        body = re.sub(r"^(?:\s*--[^\n]*\n)*\s*", "", path.read_text())
        assert re.match(r"[A-Za-z]+ /\* vhdiag \*/ ", body), path.name


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a vhdiag/analysis file imports, at any depth."""
    package = ["vhdiag", "analysis"]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.add(module)
            out |= {f"{module}.{alias.name}" for alias in node.names}
    return out


def test_analysis_imports_nothing_from_target_or_collect():
    files = sorted((ROOT / "vhdiag" / "analysis").glob("*.py"))
    assert files
    for path in files:
        bad = {m for m in _imported_modules(path)
               if re.match(r"vhdiag\.(target|collect)(\.|$)", m)}
        assert not bad, f"{path.name} imports {sorted(bad)}"
    # The checker resolves relative imports (from ..marker import MARKER).
    probe = ROOT / "vhdiag" / "analysis" / "query_text.py"
    assert "vhdiag.marker.MARKER" in _imported_modules(probe)
