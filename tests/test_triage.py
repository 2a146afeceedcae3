"""`vhdiag triage` against real servers (issue 11): the runbook's common issues diagnosed live.

Each server gets a scratch database ``triage`` with ``tri_accounts`` (the rows a lock chain
fights over) and ``tri_orders`` (200,000 rows, no index on customer_id: a hot statement that
scans it). Planted, and found:

- a lock chain: one session (``tri-blocker``) idle in transaction after an UPDATE, three
  waiters (``tri-waiter-1..3``) on the same row: the blocker comes first, with its application,
  and the three waiters behind it; only the blocker gets a ``pg_terminate_backend``;
- a hot statement run between the two samples tops "burning now", while a statement that was
  heavier in cumulative time but ran only before the first sample is not there at all;
- a burst of 32 connections is critical (over the runbook's 30); before it, the count is ok.

And the report: ``vhdiag report triage`` writes HTML in which the blocker's hostile query text
(``<script>``, an escape character) shows as text.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager

import psycopg
import pytest

import vhdiag
from vhdiag import cli
from vhdiag.triage import triage
from helpers import eventually, scratch_database

DB = "triage"
HOSTILE = "/* <script>alert(1)</script> \x1b[31m */"
BLOCKER_SQL = f"UPDATE {HOSTILE} tri_accounts SET balance = balance + 1 WHERE id = 1"
WAITER_SQL = "UPDATE tri_accounts SET balance = balance - 1 WHERE id = 1"
HOT = "SELECT count(*) FROM tri_orders WHERE customer_id = $1"
HEAVY_BEFORE = "SELECT count(*), pg_sleep($1) FROM tri_accounts"
SETUP = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE tri_accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO tri_accounts SELECT g, 100 FROM generate_series(1, 10) g;
CREATE TABLE tri_orders (id int PRIMARY KEY, customer_id int NOT NULL, amount int NOT NULL);
INSERT INTO tri_orders SELECT g, g % 5000, g % 97 FROM generate_series(1, 200000) g;
ANALYZE;
"""


@pytest.fixture(scope="module")
def db(pg):
    """The scratch database on this server (dropped after the module)."""
    with scratch_database(pg, DB):
        with pg.admin(DB) as conn:
            conn.execute(SETUP)
        yield pg


def _session(pg, app: str) -> psycopg.Connection:
    return psycopg.connect(pg.dsn(DB, via="socket") + f"&application_name={app}", autocommit=True)


@contextmanager
def lock_chain(pg):
    """One idle-in-transaction blocker holding row 1 of tri_accounts, three waiters behind it."""
    blocker = psycopg.connect(pg.dsn(DB, via="socket") + "&application_name=tri-blocker")
    blocker.execute(BLOCKER_SQL)                      # the transaction stays open: idle in transaction
    waiters = [_session(pg, f"tri-waiter-{i}") for i in (1, 2, 3)]
    threads = [threading.Thread(target=w.execute, args=(WAITER_SQL,), daemon=True) for w in waiters]
    try:
        for t in threads:
            t.start()
        with vhdiag.connect(pg.dsn(DB)) as t:
            eventually(t.locks, lambda f: len(f) == 4)
        yield blocker.info.backend_pid, [w.info.backend_pid for w in waiters]
    finally:
        blocker.rollback()
        for t in threads:
            t.join(10)
        for c in (blocker, *waiters):
            c.close()


def _check_blocking(blocking: list, blocker_pid: int, waiter_pids: list) -> None:
    assert len(blocking) == 1
    root = blocking[0]
    assert (root["pid"], root["application"], root["user"], root["state"]) == (
        blocker_pid, "tri-blocker", "postgres", "idle in transaction")
    assert root["query"] == BLOCKER_SQL and root["age_s"] > 0
    assert sorted((w["pid"], w["application"], w["state"]) for w in root["waiters"]) == sorted(
        (p, f"tri-waiter-{i}", "active") for i, p in enumerate(waiter_pids, 1))
    # A row lock: the first waiter waits on the blocker's transaction, the others on the tuple
    # the first one holds; every waiter is in the blocker's chain.
    assert all(w["query"] == WAITER_SQL for w in root["waiters"])


def test_lock_chain_shows_the_blocker_first_with_its_application(db, capsys):
    with lock_chain(db) as (blocker_pid, waiter_pids):
        with vhdiag.connect(db.dsn(DB)) as target:
            t = triage(target, 0.2)
        _check_blocking(t.blocking, blocker_pid, waiter_pids)
        conn = {v["issue"]: v for v in t.verdicts}["Database Connection Issues"]
        assert conn["level"] == "critical"
        terminate = [c for c in conn["commands"] if "pg_terminate_backend" in c]
        assert terminate == [f"SELECT pg_terminate_backend({blocker_pid});  -- tri-blocker, idle in transaction, "
                             "blocks 3 sessions"]
        assert not any(str(p) in c for p in waiter_pids for c in conn["commands"])   # waiters are no target
        assert conn["solutions"][:2] == ["Increase connection pool size", "Close idle connections"]
        idle = t.connections["idle_in_transaction"]
        # The server's other sessions (a session-long one of tests/conftest.py) may be idle in
        # transaction too: this test's are the tri- applications.
        ours = idle[idle["application"].astype(str).str.startswith("tri-")]
        assert list(ours["pid"]) == [blocker_pid] and list(ours["application"]) == ["tri-blocker"]

        # The same through the CLI, as JSON for machines ...
        assert cli.main(["triage", "--dsn", db.dsn(DB), "--json", "--interval", "0.2"]) == 0
        out = capsys.readouterr().out
        data = json.loads(out)
        assert set(data) >= {"burning_now", "connections", "blocking", "long_running", "verdicts"}
        _check_blocking(data["blocking"], blocker_pid, waiter_pids)
        assert "\x1b" not in out and "\\u001b[31m" in out                     # JSON escapes it

        # ... and for people: the blocker first in its section, the escape character shown, not sent.
        assert cli.main(["triage", "--dsn", db.dsn(DB), "--interval", "0.2"]) == 0
        screen = capsys.readouterr().out
        section = screen.split("== Blocking: root blockers first ==\n")[1].split("\n\n")[0].splitlines()
        assert section[0].startswith(f"  pid {blocker_pid} tri-blocker user postgres idle in transaction for ")
        assert "\\x1b[31m" in section[0] and "\x1b" not in screen
        assert sorted(line.split()[2] for line in section[1:]) == sorted(str(p) for p in waiter_pids)
    with vhdiag.connect(db.dsn(DB)) as target:                               # released: nothing left
        after = triage(target, 0.1, advice=False)
    assert after.blocking == [] and {v["issue"]: v for v in after.verdicts}["Database Connection Issues"][
        "commands"] == []


def test_the_hot_statement_tops_burning_now_not_the_one_heavy_before(db):
    with _session(db, "tri-app") as app:
        app.execute("SELECT count(*), pg_sleep(%s) FROM tri_accounts", (1.5,))   # heavy, before the first sample

        def hot_between_samples(_seconds):
            with _session(db, "tri-hot") as hot:       # closed at the end: its table statistics are flushed
                for i in range(15):
                    hot.execute("SELECT count(*) FROM tri_orders WHERE customer_id = %s", (i,))
            with db.admin(DB) as admin:
                eventually(lambda: admin.execute("SELECT seq_scan FROM pg_stat_user_tables "
                                                 "WHERE relname = 'tri_orders'").fetchone()[0],
                           lambda n: n >= 15)

        with vhdiag.connect(db.dsn(DB)) as target:
            t = triage(target, 0.0, sleep=hot_between_samples)
            cumulative = target.statements().set_index("query")
    # Since the last reset the heavy statement leads; in the interval it did not run at all.
    assert cumulative.loc[HEAVY_BEFORE, "total_exec_ms"] > cumulative.loc[HOT, "total_exec_ms"]
    top = t.burning_now.iloc[0]
    assert (top["query"], int(top["calls"]), top["user"]) == (HOT, 15, "postgres")
    assert HEAVY_BEFORE not in set(t.burning_now["query"])
    assert not any("vhdiag" in q for q in t.burning_now["query"])            # its own samples are left out
    assert float(top["share_pct"]) > 50
    # The index advice of the slow-query report, as text to run by hand.
    assert list(t.advice["suggestion"]) == ["CREATE INDEX CONCURRENTLY ON public.tri_orders (customer_id);"]
    slow = {v["issue"]: v for v in t.verdicts}["Slow Queries"]
    assert (slow["level"], slow["commands"]) == ("ok", [])                   # 15 scans are not over 1000 ms


def test_a_burst_over_30_connections_is_critical(db):
    with vhdiag.connect(db.dsn(DB)) as target:
        calm = triage(target, 0.1, advice=False)
        assert calm.connections["level"] == "ok" and calm.connections["total"] <= 20
        assert {v["issue"]: v for v in calm.verdicts}["Database Connection Issues"]["level"] == "ok"
        burst = [_session(db, "tri-burst") for _ in range(32)]
        try:
            t = triage(target, 0.1, advice=False)
        finally:
            for c in burst:
                c.close()
    c = t.connections
    assert c["level"] == "critical" and c["total"] > 32 and c["max_connections"] == 100
    assert dict(zip(c["by_application"]["application"], c["by_application"]["connections"]))["tri-burst"] == 32
    assert dict(zip(c["by_state"]["state"], c["by_state"]["connections"]))["idle"] >= 32
    conn = {v["issue"]: v for v in t.verdicts}["Database Connection Issues"]
    assert conn["level"] == "critical" and conn["verdict"] == f"too many connections: {c['total']} (over 30)"


def test_report_triage_writes_html_with_the_blocker_escaped(db, tmp_path, capsys):
    with lock_chain(db) as (blocker_pid, _waiters):
        assert cli.main(["report", "triage", "--dsn", db.dsn(DB), "--out", str(tmp_path), "-p", "interval_s=0.5",
                         "--quiet"]) == 0
    folder = next(p for p in (tmp_path / f"127.0.0.1_{db.server.port}_{DB}").iterdir() if not p.name.startswith("."))
    html = (folder / "triage.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "\x1b" not in html and "\\x1b[31m" in html
    assert "tri-blocker" in html and f"pg_terminate_backend({blocker_pid})" in html
    summary = json.loads((folder / "triage.summary.json").read_text())
    blockers = [f for f in summary["findings"] if f["kind"] == "triage_blocker"]
    assert [(f["severity"], f["metrics"]["pid"], f["metrics"]["application"], f["metrics"]["waiters"])
            for f in blockers] == [("critical", blocker_pid, "tri-blocker", 3)]
    assert blockers[0]["query"] == BLOCKER_SQL
    assert [f["kind"] for f in summary["findings"] if f["severity"] == "critical"] == [
        "triage_connections", "triage_blocker"]
