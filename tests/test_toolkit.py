"""The notebook user's toolkit (issue 14), against real servers: ``History.compare``,
``Target.explain``, ``Target.locks`` and the CLI's ``show --sort/--watch`` and ``demo --stop``.

``compare`` runs on a history of three snapshots A, B, C in a scratch database: (A, B] is the
baseline, (B, C] the window. Planted: a regression (``REGRESS``: pg_sleep 1 ms in the baseline,
60 ms in the window), a significant new statement (``NEW``: 3 x 100 ms, only in the window), a
statement that got faster (``FASTER``: 40 ms then 1 ms) and one that ran only in the baseline
(``GONE``); ``STEADY`` is the same in both and must stay ``same``. (pg_stat_statements ignores
column aliases: the planted statements differ by their casts.)
"""
from __future__ import annotations

import psycopg
import pytest

import vhdiag
from helpers import scratch_database
from vhdiag import reports
from vhdiag.history import History

CMP_DB = "toolkit_cmp"
REGRESS = "SELECT pg_sleep($1), $2::int"
NEW = "SELECT pg_sleep($1), $2::bigint"
FASTER = "SELECT pg_sleep($1), $2::numeric"
GONE = "SELECT pg_sleep($1), $2::float8"
STEADY = "SELECT $1::smallint"


def _run(conn, sql, args, n):
    for i in range(n):
        conn.execute(sql, (*args, i))


@pytest.fixture(scope="module")
def cmp_history(pg, tmp_path_factory):
    with scratch_database(pg, CMP_DB):
        with pg.admin(CMP_DB) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        path = str(tmp_path_factory.mktemp(f"cmp-{pg.id}") / "history.sqlite")
        ts = {}

        def snap(label):
            with vhdiag.connect(pg.dsn(CMP_DB)) as t, History(path) as h:
                ts[label] = h.snapshot(t, "cmp")["ts"].isoformat()

        snap("A")
        with psycopg.connect(pg.dsn(CMP_DB, via="socket"), autocommit=True) as conn:
            _run(conn, "SELECT pg_sleep(%s), %s::int", (0.001,), 5)
            _run(conn, "SELECT pg_sleep(%s), %s::numeric", (0.04,), 5)
            _run(conn, "SELECT pg_sleep(%s), %s::float8", (0.001,), 3)
            for i in range(20):
                conn.execute("SELECT %s::smallint", (i,))
        snap("B")
        with psycopg.connect(pg.dsn(CMP_DB, via="socket"), autocommit=True) as conn:
            _run(conn, "SELECT pg_sleep(%s), %s::int", (0.06,), 5)
            _run(conn, "SELECT pg_sleep(%s), %s::bigint", (0.1,), 3)
            _run(conn, "SELECT pg_sleep(%s), %s::numeric", (0.001,), 5)
            for i in range(20):
                conn.execute("SELECT %s::smallint", (i,))
        snap("C")
        yield pg, path, ts


def _status(frame, query):
    rows = frame[frame["query"] == query]
    assert len(rows) == 1, (query, frame[["query", "status"]])
    return rows.iloc[0]


def test_compare_gives_the_reports_rows(cmp_history):
    pg, path, ts = cmp_history
    with History(path) as h:
        c = h.compare(ts["B"], ts["C"], ts["A"], ts["B"], target="cmp")
    mine = c[c["database"] == CMP_DB]
    assert _status(mine, REGRESS)["status"] == "regressed"
    assert _status(mine, NEW)["status"] == "new" and bool(_status(mine, NEW)["significant"])
    assert _status(mine, FASTER)["status"] == "improved"
    assert _status(mine, GONE)["status"] == "gone"
    assert _status(mine, STEADY)["status"] == "same"
    reg = _status(mine, REGRESS)
    assert reg["baseline_mean_exec_ms"] < 10 < 50 < reg["mean_exec_ms"] and reg["mean_ratio"] > 2
    assert reg["calls"] == 5 and reg["baseline_calls"] == 5
    # Nothing of vhdiag's own monitoring is compared.
    assert not c["query"].str.contains("/* vhdiag */", regex=False).any()
    assert not c["query"].isin(["BEGIN READ ONLY", "ROLLBACK"]).any()
    assert list(c.columns[:5]) == ["queryid", "user", "database", "toplevel", "status"]
    assert c.attrs["baseline_until"] == c.attrs["since"] and "completeness" in c.attrs

    r = reports.build("slow_queries", target=pg.dsn(CMP_DB), history=path, target_name="cmp",
                      since=ts["B"], until=ts["C"], baseline_since=ts["A"], baseline_until=ts["B"])
    regressed = c[c["status"] == "regressed"]
    assert sorted(regressed["queryid"]) == sorted(r.regressions["queryid"])
    assert sorted(c.loc[c["status"] == "new", "queryid"]) == sorted(r.new["queryid"])
    found = {(f["kind"], f["query"]) for f in r.findings if f["kind"] in ("regression", "new_query")}
    mine_found = {(k, q) for k, q in found if q in (REGRESS, NEW, FASTER, GONE, STEADY)}
    assert mine_found == {("regression", REGRESS), ("new_query", NEW)}
    assert {("regression", q) for q in regressed["query"]} | \
        {("new_query", q) for q in c.loc[(c["status"] == "new") & c["significant"], "query"]} == found


def test_compare_baseline_defaults_to_the_period_before(cmp_history):
    _pg, path, ts = cmp_history
    with History(path) as h:
        c = h.compare(ts["B"], ts["C"], target="cmp")
    length = c.attrs["until"] - c.attrs["since"]
    assert c.attrs["baseline_until"] == c.attrs["since"]
    assert c.attrs["baseline_until"] - c.attrs["baseline_since"] == length


# -- explain ----------------------------------------------------------------------------------
def test_explain_plans_a_plain_statement(target, pg):
    """A statement without parameters is planned on every server (not executed: pg_sleep would take 10 s)."""
    plan = target.explain("SELECT count(*) FROM pg_class WHERE relname = 'x' AND pg_sleep(10) IS NOT NULL")
    assert plan.planned, plan.refusal
    assert plan.frame["node_type"].iloc[0] == "Aggregate"
    assert "pg_catalog.pg_class" in set(plan.frame["relation"].dropna())
    assert plan.text.splitlines()[0].startswith("Aggregate")
    assert list(plan.frame["depth"])[:2] == [0, 1]


def test_explain_generic_plan_needs_16(target, pg):
    plan = target.explain("SELECT relname FROM pg_class WHERE oid = $1")
    if pg.major >= 16:
        assert plan.planned and plan.generic, plan.refusal
        assert "pg_catalog.pg_class" in set(plan.frame["relation"].dropna())
    else:
        assert not plan.planned and plan.frame.empty
        assert plan.refusal.startswith("EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16 or later (this server is 15)")


def test_explain_refuses_a_user_defined_function(target, pg):
    with pg.admin() as conn:
        conn.execute("CREATE OR REPLACE FUNCTION toolkit_probe(int) RETURNS int IMMUTABLE LANGUAGE plpgsql "
                     "AS $$ BEGIN RAISE NOTICE 'ran'; RETURN $1; END $$")
    try:
        plan = target.explain("SELECT toolkit_probe(1)")
        assert not plan.planned and plan.plan is None and plan.frame.empty and plan.text == ""
        assert "user-defined function" in plan.refusal and "toolkit_probe" in plan.refusal
        assert str(plan) == f"not planned: {plan.refusal}"
    finally:
        with pg.admin() as conn:
            conn.execute("DROP FUNCTION toolkit_probe(int)")


def test_explain_by_queryid(target, pg):
    with psycopg.connect(pg.dsn(via="socket"), autocommit=True) as conn:
        conn.execute("SELECT relkind AS toolkit_by_queryid FROM pg_class WHERE oid = 0")
    stmts = target.statements()
    qid = stmts.loc[stmts["query"].str.contains("toolkit_by_queryid", regex=False, na=False), "queryid"].iloc[0]
    plan = target.explain(int(qid))
    assert plan.queryid == int(qid) and "pg_class" in plan.query
    # The text pg_stat_statements keeps has oid = $1: a generic plan on 16+, refused on 15.
    assert plan.planned == (pg.major >= 16), plan.refusal
    missing = target.explain(12345)
    assert missing.refusal == "queryid 12345 is not in pg_stat_statements (evicted, reset, or never ran)"


# -- locks ------------------------------------------------------------------------------------
LOCK_DB = "toolkit_locks"


def test_locks_blocking_tree(pg, target):
    """One idle-in-transaction blocker holding ACCESS EXCLUSIVE on a table, three waiters reading
    it: the blocker first (depth 0, granted, the relation's name), then its three waiters."""
    import threading
    from helpers import eventually
    with scratch_database(pg, LOCK_DB):
        with pg.admin(LOCK_DB) as conn:
            conn.execute('CREATE TABLE "Lock me" (id int)')
        with vhdiag.connect(pg.dsn(LOCK_DB)) as db:
            assert db.locks().empty and list(db.locks().columns[:8]) == [
                "pid", "application", "user", "database", "state", "locktype", "mode", "relation"]
            blocker = psycopg.connect(pg.dsn(LOCK_DB, via="socket"), application_name="tk_blocker")
            blocker.execute('LOCK TABLE "Lock me" IN ACCESS EXCLUSIVE MODE')
            blocker.execute("SELECT 'postgresql://app:hunter2@db/x' AS note")   # last query: idle in transaction after it
            waiters = [psycopg.connect(pg.dsn(LOCK_DB, via="socket"), application_name=f"tk_waiter{i}",
                                       autocommit=True) for i in range(3)]
            threads = [threading.Thread(target=w.execute, args=('SELECT count(*) FROM "Lock me"',), daemon=True)
                       for w in waiters]
            try:
                for th in threads:
                    th.start()
                df = eventually(db.locks, lambda d: len(d) == 4)
                assert len(df) == 4, df
                first = df.iloc[0]
                assert first["pid"] == blocker.info.backend_pid and first["depth"] == 0
                assert (first["application"], first["state"], first["mode"], first["relation"], first["granted"]) == \
                    ("tk_blocker", "idle in transaction", "AccessExclusiveLock", 'public."Lock me"', True)
                assert first["blocked_by"] == [] and first["age_s"] >= 0
                rest = df.iloc[1:]
                assert sorted(rest["pid"]) == sorted(w.info.backend_pid for w in waiters)
                assert list(rest["depth"]) == [1, 1, 1] and not rest["granted"].any()
                assert set(rest["mode"]) == {"AccessShareLock"} and set(rest["relation"]) == {'public."Lock me"'}
                assert [list(b) for b in rest["blocked_by"]] == [[blocker.info.backend_pid]] * 3
                assert set(rest["state"]) == {"active"} and set(rest["application"]) == {
                    "tk_waiter0", "tk_waiter1", "tk_waiter2"}
                assert "hunter2" not in first["query"]
            finally:
                blocker.rollback()
                for th in threads:
                    th.join(10)
                blocker.close()
                for w in waiters:
                    w.close()


def test_locks_tree_order():
    """Pure: chains nest depth-first, oldest root first; a cycle's sessions become roots."""
    from vhdiag.collect.locks import tree
    pids = [10, 11, 12, 13, 20, 21, 30, 31]
    blocked = [[], [10], [11], [10], [], [20], [31], [30]]
    age = [5, 4, 3, 2, 9, 1, 0, 0]
    order, depth = tree(pids, blocked, age)
    assert [pids[i] for i in order] == [20, 21, 10, 11, 12, 13, 30, 31]
    assert depth == [0, 1, 0, 1, 2, 1, 0, 1]


# -- CLI --------------------------------------------------------------------------------------
def test_show_sort_and_desc(pg, capsys):
    from vhdiag import cli
    import json
    code = cli.main(["show", "tables", "--dsn", pg.dsn(), "--format", "json", "--sort", "total_bytes", "--desc"])
    out, err = capsys.readouterr()
    assert code == 0, err
    sizes = [r["total_bytes"] for r in json.loads(out)]
    assert len(sizes) > 2 and sizes == sorted(sizes, reverse=True)
    code = cli.main(["show", "tables", "--dsn", pg.dsn(), "--format", "json", "--sort", "total_bytes"])
    out, err = capsys.readouterr()
    assert [r["total_bytes"] for r in json.loads(out)] == sorted(sizes)
    code = cli.main(["show", "tables", "--dsn", pg.dsn(), "--sort", "nope"])
    out, err = capsys.readouterr()
    assert code == 1 and err.startswith("Error: unknown --sort column 'nope' for tables: choose from ")


def test_show_locks_cli(pg, capsys):
    from vhdiag import cli
    code = cli.main(["show", "locks", "--dsn", pg.dsn()])
    out, err = capsys.readouterr()
    assert code == 0, err


def test_show_watch_stops_cleanly_on_ctrl_c(pg):
    import os
    import signal
    import subprocess
    import sys
    import time
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "vhdiag", "show", "database", "--dsn", pg.dsn(), "--watch", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        # Wait until it has refreshed at least twice (polling its output is not a timed assertion).
        import threading
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(proc.stdout.fileno(), 4096), b"")),
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while b"".join(chunks).count(b"\x1b[H\x1b[2J") < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        buf = b"".join(chunks).decode()
        assert buf.count("\x1b[H\x1b[2J") >= 2, (buf, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    buf, err = b"".join(chunks).decode(), proc.stderr.read().decode()
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "Ctrl-C stops" in buf and pg.server.password not in buf + err
