"""Planning never runs user-written code (issue 7, defect 1).

EXPLAIN without ANALYZE does not execute a statement, but the planner folds IMMUTABLE functions
with constant arguments, expands views and fills in INSERT's column defaults: a plpgsql function
anyone may create would run in vhdiag's session. Each case plants such a function, one that
RAISEs a WARNING carrying a random marker (``log_min_messages = warning``, so the server log
shows every call), and a statement that reaches it: directly, through a view, a user-defined
operator, a domain's CHECK, and a column default. The application role runs each statement
(so pg_stat_statements ranks it), then the report's planning path gets it: the marker must
never reach the log after that, and the plan record says why the statement was not planned.
A statement of built-in objects only is still planned (the non-finding), and ``[reports]
plans = false`` runs no EXPLAIN at all.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import vhdiag
import workload
from helpers import scratch_database
from vhdiag.collect import plans as reports  # generic_plans, hypopg_costs: what the report calls
from vhdiag.analysis import plan_safety
from vhdiag.collect import plannable
from vhdiag.config import defaults, resolve_config
from vhdiag.errors import ConfigError

DB = "vh_plansafe"
MARK = f"vhdiag-ran-me-{secrets.token_hex(6)}"


def _loud(name: str, args: str = "", returns: str = "int", value: str = "1") -> str:
    """An IMMUTABLE plpgsql function that says in the server log that it ran."""
    return (f"CREATE FUNCTION {name}({args}) RETURNS {returns} IMMUTABLE LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE WARNING '{MARK} {name}'; RETURN {value}; END $$;")


SETUP = f"""
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
{_loud("vh_evil")}
{_loud("vh_in_view")}
CREATE VIEW vh_evil_view AS SELECT vh_in_view() AS x;
{_loud("vh_eq", "float8, float8", "boolean", "$1 = $2")}
CREATE OPERATOR === (LEFTARG = float8, RIGHTARG = float8, FUNCTION = vh_eq);
{_loud("vh_positive", "int", "boolean", "$1 > 0")}
CREATE DOMAIN vh_pos AS int CHECK (vh_positive(VALUE));
{_loud("vh_tag", "", "text", "'tag'")}
CREATE TABLE vh_tagged (id int, tag text DEFAULT vh_tag());
CREATE TABLE vh_sales (id int PRIMARY KEY, machine_id int NOT NULL, amount numeric NOT NULL);
INSERT INTO vh_sales SELECT g, g % 50, g % 97 FROM generate_series(1, 5000) AS g;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {workload.APP_USER};
ANALYZE;
"""

# case -> (what the application runs, its parameters, the text pg_stat_statements keeps, the note)
CASES = {
    "function": ("SELECT vh_evil(), pg_sleep(%s)", (0.2,), "SELECT vh_evil(), pg_sleep($1)",
                 "not planned: calls user-defined function public.vh_evil"),
    "view": ("SELECT x FROM vh_evil_view", (), "SELECT x FROM vh_evil_view",
             "not planned: uses public.vh_evil_view (view), whose view definition calls user-defined "
             "function public.vh_in_view"),
    "operator": ("SELECT pi() === pi()", (), "SELECT pi() === pi()",
                 "not planned: uses user-defined operator public.==="),
    "domain": ("SELECT %s::vh_pos", (3,), "SELECT $1::vh_pos", "not planned: uses user-defined type public.vh_pos"),
    "default": ("INSERT INTO vh_tagged (id) VALUES (%s)", (1,), "INSERT INTO vh_tagged (id) VALUES ($1)",
                "not planned: uses public.vh_tagged (table), whose column default calls user-defined function "
                "public.vh_tag"),
}
PLAIN = "SELECT count(*), sum(amount) FROM vh_sales WHERE machine_id = $1"


class ServerLog:
    """What the server logged since this object was made."""

    def __init__(self, server):
        self.path = Path(server.log_file)
        self.start = self.path.stat().st_size

    def marked(self) -> list[str]:
        with self.path.open("rb") as fh:
            fh.seek(self.start)
            return [line for line in fh.read().decode(errors="replace").splitlines() if MARK in line]


@pytest.fixture(scope="module")
def planted(pg):
    """The cases in a scratch database, each statement run three times by the application role."""
    import psycopg
    with scratch_database(pg, DB):
        with pg.admin(DB) as conn:
            conn.execute(SETUP)
            # Forget the setup statements: the report's share-of-time chart gives matplotlib each
            # top query's text, and mathtext fails on INSERT's "g % $1, g % $2" (a separate bug).
            conn.execute("SELECT pg_stat_statements_reset(dbid => (SELECT oid FROM pg_database "
                         "WHERE datname = current_database()))")
        with psycopg.connect(pg.dsn(DB, user=workload.APP_USER, via="socket"), autocommit=True) as conn:
            for _ in range(3):
                for sql, params, _, _ in CASES.values():
                    conn.execute(sql, params)
                conn.execute("SELECT count(*), sum(amount) FROM vh_sales WHERE machine_id = %s", (7,))
        yield pg


@pytest.fixture
def target(planted):
    t = vhdiag.connect(planted.dsn(DB))
    yield t
    t.close()


def _statements(target, *texts) -> pd.DataFrame:
    """The rows of ``target.statements()`` of these texts in the scratch database, in that order."""
    df = target.statements()
    df = df[(df["database"] == DB) & (df["user"] == workload.APP_USER)]
    rows = [df[df["query"] == t] for t in texts]
    assert [len(r) for r in rows] == [1] * len(texts), df["query"].tolist()
    return pd.concat(rows, ignore_index=True)


def _explains(planted, naming: str = "") -> int:
    """Top-level EXPLAINs (of statements naming ``naming``) in the scratch database, as
    pg_stat_statements counts them."""
    with planted.admin(DB) as conn:
        return conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d "
                            "ON d.oid = s.dbid WHERE d.datname = %s AND s.toplevel AND s.query ILIKE %s",
                            (DB, f"EXPLAIN%{naming}%")).fetchone()[0]


# -- the planning path ------------------------------------------------------------------------
@pytest.mark.pg(">= 16")
@pytest.mark.parametrize("case", list(CASES))
def test_generic_plans_never_plan_user_code(planted, target, case):
    _, _, text, note = CASES[case]
    log = ServerLog(planted.server)
    records, message = reports.generic_plans(target, _statements(target, text))
    assert log.marked() == []
    assert [(r["query"], r.get("note"), "plan" in r, r.get("error")) for r in records] == [(text, note, False, None)]
    assert message == ("0 generic plans taken (EXPLAIN does not execute them); 1 not planned, "
                       "since planning could run user-written code.")


@pytest.mark.pg(">= 16")
def test_builtin_statement_is_still_planned(planted, target):
    before = _explains(planted)
    records, message = reports.generic_plans(target, _statements(target, PLAIN, CASES["function"][2]))
    assert [r["query"] for r in records] == [PLAIN, CASES["function"][2]]
    plain = records[0]
    assert "note" not in plain and "error" not in plain
    assert plain["shape"] == "Aggregate(Seq Scan on public.vh_sales)"
    assert "Filter: (vh_sales.machine_id = $1)" in plain["text"]
    assert _explains(planted) == before + 1          # the plain one; the other never reached EXPLAIN
    assert _explains(planted, "vh_evil") == 0
    assert message.startswith("1 generic plans taken")


@pytest.mark.pg(">= 16")
def test_hypopg_path_checks_before_planning(planted, target, monkeypatch):
    """hypopg is not installed on the test servers; pretend it is, so the loop runs for real: the
    user function is refused before any EXPLAIN or hypopg call, the plain query gets as far as
    hypopg_create_index (which does not exist here)."""
    monkeypatch.setattr(reports, "_hypopg_installed", lambda t: True)
    rows = _statements(target, CASES["function"][2], PLAIN)
    advice = pd.DataFrame({"queryid": rows["queryid"], "query": rows["query"],
                           "suggestion": ["CREATE INDEX CONCURRENTLY ON public.vh_sales (machine_id);"] * 2})
    log = ServerLog(planted.server)
    costs, _ = reports.hypopg_costs(target, advice)
    assert log.marked() == []
    evil, plain = costs.to_dict("records")
    assert pd.isna(evil["cost_without"]) and evil["error"] == CASES["function"][3]
    assert plain["cost_without"] > 0 and "hypopg_create_index" in plain["error"]


def test_plans_off_runs_no_explain(planted, target):
    off = {"reports": {"plans": False}}
    rows = _statements(target, PLAIN, CASES["function"][2])
    log = ServerLog(planted.server)
    before = _explains(planted)
    assert reports.generic_plans(target, rows, config=off) == ([], reports.PLANS_OFF)
    costs, message = reports.hypopg_costs(target, rows.assign(suggestion="CREATE INDEX ON vh_sales (machine_id);"),
                                          config=off)
    assert (len(costs), message) == (0, reports.PLANS_OFF)
    assert reports.PLANS_OFF.startswith("Plans are off ([reports] plans = false in vhdiag.toml)")
    assert _explains(planted) == before
    assert log.marked() == []


# -- the catalog check, case by case (no EXPLAIN needed: every version) ------------------------
MORE = """
CREATE FUNCTION vh_quiet(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
CREATE TYPE vh_mood AS ENUM ('ok', 'sad');
CREATE FUNCTION upper(vh_mood) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT ''x''';
CREATE DOMAIN vh_small AS int CHECK (VALUE < 100);
CREATE TABLE vh_typed (m vh_mood, s vh_small, ms vh_mood[], n text COLLATE "C");
CREATE TABLE vh_domain_column (p vh_pos);
CREATE TABLE vh_rls (id int);
ALTER TABLE vh_rls ENABLE ROW LEVEL SECURITY;
CREATE TABLE vh_audit (id int);
CREATE TABLE vh_ruled (id int);
CREATE RULE vh_audit_it AS ON INSERT TO vh_ruled DO ALSO INSERT INTO vh_audit VALUES (NEW.id);
CREATE TABLE vh_parted (id int, k int) PARTITION BY RANGE (vh_quiet(k));
CREATE TABLE vh_parted_1 PARTITION OF vh_parted FOR VALUES FROM (0) TO (10);
CREATE TABLE vh_partial (id int, k int);
CREATE INDEX ON vh_partial (k) WHERE vh_quiet(k) > 0;
CREATE TABLE vh_checked (id int CHECK (vh_quiet(id) > 0));
CREATE TABLE vh_stats (a int, b int);
CREATE STATISTICS vh_stats_ab ON (vh_quiet(a)), b FROM vh_stats;
CREATE TABLE vh_generated (a int, b int GENERATED ALWAYS AS (vh_quiet(a)) STORED);
CREATE TABLE vh_parent (id int);
CREATE TABLE vh_child (k int) INHERITS (vh_parent);
CREATE INDEX ON vh_child (vh_quiet(k));
CREATE VIEW vh_outer AS SELECT x FROM vh_evil_view;
CREATE FOREIGN DATA WRAPPER vh_fdw;
CREATE SERVER vh_remote FOREIGN DATA WRAPPER vh_fdw;
CREATE FOREIGN TABLE vh_foreign (id int) SERVER vh_remote;
"""
REFUSED = {
    "SELECT upper($1)": "calls user-defined function public.upper",      # an overload of a built-in name
    "SELECT a.b.vh_quiet FROM a": "calls user-defined function public.vh_quiet",   # b.vh_quiet is vh_quiet(b)
    "SELECT * FROM vh_domain_column": "uses public.vh_domain_column (table), whose definition uses user-defined "
                                      "type public.vh_pos",
    "SELECT * FROM vh_rls": "uses public.vh_rls (table), which has row-level security policies",
    "INSERT INTO vh_ruled VALUES ($1)": "uses public.vh_ruled (table), which has rules",
    "SELECT * FROM vh_parted WHERE k = $1": "uses public.vh_parted (partitioned table), whose definition calls "
                                            "user-defined function public.vh_quiet",
    "SELECT * FROM vh_partial WHERE k = $1": "uses public.vh_partial (table), whose index calls user-defined "
                                             "function public.vh_quiet",
    "SELECT * FROM vh_checked": "uses public.vh_checked (table), whose constraint calls user-defined function "
                                "public.vh_quiet",
    "SELECT * FROM vh_stats": "uses public.vh_stats (table), whose statistics object calls user-defined function "
                              "public.vh_quiet",
    "SELECT * FROM vh_generated": "uses public.vh_generated (table), whose column default calls user-defined "
                                  "function public.vh_quiet",
    "SELECT * FROM vh_parent": "uses public.vh_parent (table), which reads public.vh_child (table), whose index "
                               "calls user-defined function public.vh_quiet",
    "SELECT * FROM vh_outer": "uses public.vh_outer (view), which reads public.vh_evil_view (view), whose view "
                              "definition calls user-defined function public.vh_in_view",
    "SELECT * FROM vh_foreign": "uses public.vh_foreign (foreign table), whose foreign-data wrapper runs when it "
                                "is planned",
}
PLANNABLE = [
    PLAIN,
    "SELECT m, s, ms, n FROM vh_typed WHERE m = $1 AND s < $2 ORDER BY n",   # enum, domain with a built-in CHECK
    "SELECT * FROM vh_tagged",                                             # defaults count for writes only
]


@pytest.fixture(scope="module")
def catalog_cases(planted):
    with planted.admin(DB) as conn:
        conn.execute(MORE)
    return planted


@pytest.mark.parametrize("query", list(REFUSED) + PLANNABLE)
def test_catalog_check(catalog_cases, target, query):
    with target.engine.connect() as conn:
        assert plannable.refusal(conn, query) == REFUSED.get(query)


@pytest.fixture
def unnest_overload(catalog_cases):
    """A loud public.unnest(name[]), for one test: other vhdiag queries call unnest(text[]),
    which it makes ambiguous."""
    with catalog_cases.admin(DB) as admin:
        admin.execute("CREATE FUNCTION unnest(name[]) RETURNS SETOF name LANGUAGE plpgsql AS $$ BEGIN "
                      f"RAISE WARNING '{MARK} unnest'; RETURN QUERY SELECT pg_catalog.unnest($1::text[])::name; END $$")
    yield
    with catalog_cases.admin(DB) as admin:
        admin.execute("DROP FUNCTION unnest(name[])")


def test_catalog_check_calls_only_builtins(catalog_cases, unnest_overload, target):
    """An exact-match overload in public wins over the polymorphic built-in under the usual
    search_path; the check pins search_path to pg_catalog, so it never runs."""
    with target.engine.connect() as conn:
        log = ServerLog(catalog_cases.server)
        assert plannable.refusal(conn, PLAIN) is None
        assert log.marked() == []
        conn.execute(sa.text("SELECT count(*) FROM unnest(CAST(ARRAY['a'] AS name[]))"))
        assert [line.split("WARNING:  ")[1] for line in log.marked()] == [f"{MARK} unnest"]


# -- the real report, through the command line ------------------------------------------------
def _run_cases_again(planted):
    """Whatever the tests since the fixture did to pg_stat_statements (resets, evictions), the
    report ranks the cases now. Call it before watching the log: running them runs their code."""
    import psycopg
    with psycopg.connect(planted.dsn(DB, user=workload.APP_USER, via="socket"), autocommit=True) as conn:
        for sql, params, _, _ in CASES.values():
            conn.execute(sql, params)


def _report(planted, tmp_path, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("VHDIAG_DSN", "DATABASE_URL", "VHDIAG_HISTORY",
                                                            "VHDIAG_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(vhdiag.__file__).parent.parent), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "vhdiag", "report", "slow_queries", "--dsn", planted.dsn(DB),
         "--history", str(tmp_path / "empty.sqlite"), "--window", "1h", "--out", str(tmp_path / "out"),
         "-p", "top_n=5000"], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    (folder,) = (tmp_path / "out").glob("*/*/slow_queries.plans.json")
    return json.loads(folder.read_text())["plans"], (folder.parent / "slow_queries.html").read_text()


@pytest.mark.pg(">= 16")
def test_report_refuses_user_code_and_plans_the_rest(planted, tmp_path):
    _run_cases_again(planted)
    log = ServerLog(planted.server)
    plans, html = _report(planted, tmp_path, tmp_path)
    assert log.marked() == []
    mine = {p["query"]: p for p in plans if p["database"] == DB and p["user"] == workload.APP_USER}
    assert {text: mine[text].get("note") for _, _, text, _ in CASES.values()} == {
        text: note for _, _, text, note in CASES.values()}
    assert mine[PLAIN]["shape"] == "Aggregate(Seq Scan on public.vh_sales)"
    assert "not planned: calls user-defined function public.vh_evil" in html
    assert "not planned, since planning could run user-written code." in html


@pytest.mark.pg(">= 16")
def test_report_with_plans_off_in_local_config(planted, tmp_path):
    """``./vhdiag.toml`` where ``vhdiag report`` runs applies, though the kernel runs in notebooks/."""
    (tmp_path / "vhdiag.toml").write_text("[reports]\nplans = false\n")
    before = _explains(planted)
    plans, html = _report(planted, tmp_path, tmp_path)
    assert plans == []
    assert "Plans are off ([reports] plans = false in vhdiag.toml)" in html
    assert _explains(planted) == before


# -- the parse half, without a server ---------------------------------------------------------
def test_names_lists_everything_planning_could_run():
    found = plan_safety.names(
        "WITH c AS (SELECT 1 AS id) SELECT s.total, (r).label, lower(m.name), a BETWEEN $1 AND $2, b IN ($3), "
        "$4::int, CAST($5 AS vh_pos), 'x' COLLATE \"C\", e OPERATOR(public.===) 3, CASE k WHEN 1 THEN 2 END "
        "FROM sales s TABLESAMPLE bernoulli(1) JOIN c USING (id), LATERAL vh_srf(1) AS g "
        "WHERE x IN (SELECT y FROM other) ORDER BY a USING ~<~")
    assert found.refusal is None and not found.writes
    assert found.functions == {"total", "label", "lower", "name", "bernoulli", "vh_srf"}
    assert found.operators == {"<", ">", "<=", ">=", "=", "===", "~<~"}
    assert found.types == {"int4", "vh_pos"}
    assert found.collations == {"C"}
    assert found.relations == {"c", "sales", "other"}
    assert plan_safety.names("INSERT INTO t (a) VALUES ($1)").writes
    assert plan_safety.names("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d").writes


@pytest.mark.parametrize("query, refusal", [
    ("SELECT 1; SELECT 2", "the text holds 2 statements"),
    ("SELECT a FROM t WHERE b = $1 AND c IN ($2, $3", "pglast cannot parse it (cut short, or syntax newer than its parser)"),
    ("VACUUM t", "VacuumStmt is not a query"),
    ("EXPLAIN SELECT 1", "ExplainStmt is not a query"),
    ("SELECT * INTO t2 FROM t", "SELECT INTO creates a table"),
    ("SELECT query_to_xml($1, true, true, $2)", "calls query_to_xml, which runs SQL it is given"),
    ("SELECT ts_stat($1)", "calls ts_stat, which runs SQL it is given"),
    ("", "no statement text"),
])
def test_names_refuses_outright(query, refusal):
    assert plan_safety.names(query).refusal == refusal


def test_plans_setting():
    assert defaults()["reports"]["plans"] is True
    assert reports.plans_enabled({"reports": {"plans": False}}) is False
    with pytest.raises(ConfigError) as exc:
        resolve_config({"reports": {"plans": "no"}})
    assert str(exc.value) == 'config argument: reports.plans must be a boolean (e.g. plans = true), not a string "no"'
