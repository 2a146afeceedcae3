"""The history store against real servers: exact deltas, resets, restarts, kills, concurrency.

Store kinds: SQLite (a file) and PostgreSQL (a database on the test server); the tests that
make claims about the store's transactions run on both.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

import vhdiag
from vhdiag.history import History
from vhdiag.history.deltas import counter_diff, detect_events

import workload
from helpers import exclusive_lock, ensure_database

# The history tests run their own workload in their own database, so the planted database's
# counters stay exactly what tests/workload.py made them.
PROBE_DB = "history_probe"
SEQ = "SELECT count(*) FROM orders WHERE customer_id = $1"


@pytest.fixture
def pg(pg):
    """The conftest server, with this module's own database created on first use."""
    ensure_database(pg, PROBE_DB, "CREATE TABLE orders (id int PRIMARY KEY, customer_id int)",
                    "INSERT INTO orders SELECT g, g % 50 FROM generate_series(1, 2000) g",
                    "CREATE TABLE machine_events (id int)",
                    f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {workload.APP_USER}")
    return pg


def dsn(pg, **kw):
    return pg.dsn(PROBE_DB, **kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path, pg):
    """A fresh, empty history store of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    name = f"hist_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    with pg.admin("postgres") as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.dsn(name)


def _app_run(pg, sql, params_list, dbname=PROBE_DB):
    with psycopg.connect(pg.dsn(dbname, user=workload.APP_USER, via="socket"), autocommit=True) as conn:
        for params in params_list:
            conn.execute(sql, params)


def _row(frame, query, user=workload.APP_USER):
    rows = frame[(frame["query"] == query) & (frame["user"] == user)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_n_calls_between_snapshots_gives_exactly_n(pg, store_url):
    _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(0,)])  # known before the baseline
    with vhdiag.connect(dsn(pg)) as target, History(store_url) as history:
        first = history.snapshot(target, "planted")
        assert first["events"] == ["baseline"]
        _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(i,) for i in range(7)])
        second = history.snapshot(target, "planted")
        assert second["events"] == []
        window = history.statements()
        row = _row(window, SEQ)
        assert (row["calls"], row["rows"], row["intervals"], row["complete"], row["notes"]) == (7, 7, 1, True, "")
        assert row["mean_exec_ms"] == pytest.approx(row["total_exec_ms"] / 7)
        series = history.statement_series(int(row["queryid"]))
        assert list(series["calls"]) == [7]
        # Nothing ran between the next two snapshots: the statement is not stored again.
        third = history.snapshot(target, "planted")
        assert _row(history.statements(since=second["ts"]), SEQ) is not None if False else True
        assert SEQ not in set(history.statements(since=second["ts"])["query"])
        snaps = history.snapshots()
        assert list(snaps["events"]) == ["baseline", "", ""]
        assert third["snapshot_id"] == snaps["snapshot_id"].iloc[-1]


def test_window_bounds_accept_iso_and_durations(pg, tmp_path):
    with vhdiag.connect(dsn(pg)) as target, History(str(tmp_path / "h.sqlite")) as history:
        history.snapshot(target, "planted")
        _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(1,), (2,)])
        s2 = history.snapshot(target, "planted")
        _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(3,)])
        history.snapshot(target, "planted")
        iso = s2["ts"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert _row(history.statements(until=iso), SEQ)["calls"] == 2
        assert _row(history.statements(since=iso), SEQ)["calls"] == 1
        assert _row(history.statements(since="1h"), SEQ)["calls"] == 3
        assert history.statements(since="1h", until="30m").empty


@pytest.fixture(params=["pg18", "pg15"])
def own_server(request, servers):
    """A server of each version this module may reset, restart and crash."""
    # Commits must survive the crash test: synchronous_commit back on for this server.
    server = servers.extra(f"history-{request.param}", version=request.param,
                           extra_settings={"synchronous_commit": "on"})
    with server.admin() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x int)")
    return server


def _own_calls(server, n):
    with psycopg.connect(server.dsn(via="socket"), autocommit=True) as conn:
        for i in range(n):
            conn.execute("SELECT count(*) FROM t WHERE x = %s", (i,))


OWN_QUERY = "SELECT count(*) FROM t WHERE x = $1"


def _snapshot(server, history):
    with vhdiag.connect(server.dsn()) as target:
        return history.snapshot(target, "own")


def test_reset_between_snapshots_is_marked_never_negative(own_server, tmp_path):
    history = History(str(tmp_path / "h.sqlite"))
    _own_calls(own_server, 10)
    _snapshot(own_server, history)
    with own_server.admin() as conn:
        conn.execute("SELECT pg_stat_statements_reset()")  # setup only: vhdiag itself never resets
    _own_calls(own_server, 3)
    snap = _snapshot(own_server, history)
    assert "reset" in snap["events"]
    row = history.statements().set_index("query").loc[OWN_QUERY]
    assert (row["calls"], row["complete"], row["notes"]) == (3, False, "reset")
    deltas = history.statements()
    assert (deltas[["calls", "total_exec_ms", "rows"]].fillna(0) >= 0).all().all()


def test_restart_keeps_counting_and_is_marked(own_server, tmp_path):
    history = History(str(tmp_path / "h.sqlite"))
    _own_calls(own_server, 4)
    _snapshot(own_server, history)
    own_server.restart()  # clean shutdown: pg_stat_statements.save keeps the counters
    _own_calls(own_server, 5)
    snap = _snapshot(own_server, history)
    assert snap["events"] == ["restart"]
    row = history.statements().set_index("query").loc[OWN_QUERY]
    assert (row["calls"], row["complete"]) == (5, True)


def _crash_a_backend(server):
    """SIGKILL one backend: the postmaster reinitializes shared memory, and statistics are lost."""
    victim = psycopg.connect(server.dsn(via="socket"), autocommit=True)
    witness = psycopg.connect(server.dsn(via="socket"), autocommit=True)
    pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    # The postmaster ends every other backend before it restarts: once the witness is gone, the
    # crash restart has begun (a connection before that would still reach the old server).
    while True:
        try:
            witness.execute("SELECT 1")
        except psycopg.OperationalError:
            break
        if time.monotonic() > deadline:
            raise AssertionError("the crash restart never began")
        time.sleep(0.05)
    while True:  # crash recovery takes a moment; wait until the server accepts connections again
        try:
            with psycopg.connect(server.dsn(via="socket"), autocommit=True) as conn:
                conn.execute("SELECT 1")
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_crash_loses_counters_and_is_marked(own_server, tmp_path):
    history = History(str(tmp_path / "h.sqlite"))
    _own_calls(own_server, 6)
    _snapshot(own_server, history)
    with own_server.admin() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS crash_probe (x int)")
        conn.execute("INSERT INTO crash_probe SELECT generate_series(1, 10)")
    _crash_a_backend(own_server)
    _own_calls(own_server, 2)
    snap = _snapshot(own_server, history)
    assert "reset" in snap["events"]
    row = history.statements().set_index("query").loc[OWN_QUERY]
    assert (row["calls"], row["complete"], row["notes"]) == (2, False, "reset")
    # Database counters were lost too (they went down): no negative delta, the interval is marked.
    series = history.database_series()
    postgres = series[series["database"] == "postgres"].iloc[-1]
    assert not postgres["complete"]
    assert (series[["commits", "rollbacks", "deadlocks", "temp_bytes"]].fillna(0) >= 0).all().all()


@pytest.fixture(params=["pg18", "pg15"])
def small_pgss(request, servers):
    """pg_stat_statements.max at its minimum (100), so a flood of statements evicts entries."""
    server = servers.extra(f"evict-{request.param}", version=request.param,
                           extra_settings={"pg_stat_statements.max": "100"})
    with server.admin() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x int)")
    return server


def _own_since(server):
    with server.admin() as conn:
        row = conn.execute("SELECT * FROM pg_stat_statements WHERE query = %s", (OWN_QUERY,)).fetchone()
        cols = [d.name for d in conn.execute("SELECT * FROM pg_stat_statements LIMIT 0").description]
    return dict(zip(cols, row)).get("stats_since") if row else "absent"


def test_eviction_is_detected_never_negative(small_pgss, tmp_path):
    server = small_pgss
    history = History(str(tmp_path / "h.sqlite"))
    _own_calls(server, 5)
    _snapshot(server, history)
    before = _own_since(server)
    with psycopg.connect(server.dsn(via="socket"), autocommit=True) as conn:
        # 400 distinct statements (1 to 400 columns), 4x the table's size, each used more than ours:
        # entries are evicted least-used first, so ours goes.
        for i in range(1, 401):
            for _ in range(8):
                conn.execute("SELECT " + ", ".join(["1"] * i))
    _own_calls(server, 40)  # re-created, and used enough to survive the snapshot's own statements
    after = _own_since(server)
    snap = _snapshot(server, history)
    assert "dealloc" in snap["events"]
    window = history.statements()
    assert (window[["calls", "total_exec_ms", "rows"]].fillna(0) >= 0).all().all()
    row = window.set_index("query").loc[OWN_QUERY]
    if after is None:
        # Before 17 there is no stats_since: an entry evicted and re-created with more calls than
        # it had is diffed against its old self (40 - 5). vhdiag cannot tell, so it says so.
        assert (row["complete"], row["notes"]) == (False, "dealloc")
        assert 35 <= row["calls"] <= 40
    elif before != after:
        # 17+: stats_since moved, the entry was re-created: counted from zero, and marked.
        assert (row["calls"], row["complete"], row["notes"]) == (40, False, "evicted")
    else:
        # 17+: stats_since proves the entry survived the evictions, the diff is exact.
        assert (row["calls"], row["complete"], row["notes"]) == (40, True, "")


def test_counter_diff_never_negative():
    frame = pd.DataFrame({"k": ["a"] * 4, "ts": pd.date_range("2026-11-01", periods=4, freq="15min", tz="UTC"),
                          "c": [10, 15, 3, 8]})
    out = counter_diff(frame, ["k"], ["c"])
    assert list(out["c"]) == [5, 3, 5]
    assert list(out["complete"]) == [True, False, True]


def test_gap_is_detected_from_the_usual_interval():
    prev = {"server_version_num": 180000, "postmaster_start": None}
    cur = {"server_version_num": 180000, "postmaster_start": None, "interval_s": 3600}
    assert detect_events(prev, cur, [900, 900, 900, 900]) == ["gap"]
    assert detect_events(prev, {**cur, "interval_s": 1000}, [900, 900, 900]) == []
    assert detect_events(prev, {**cur, "server_version_num": 190000}, []) == ["upgrade"]


def _cli(*args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "vhdiag", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **kw)


def _store_counts(url):
    history = History(url)
    with history.engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar()
                  for t in ("snapshots", "statement_deltas", "table_stats", "database_stats", "statement_last")}
    history.close()
    return counts


def test_sigkill_mid_snapshot_leaves_no_partial_rows(pg, store_url):
    with vhdiag.connect(dsn(pg)) as target, History(store_url) as history:
        history.snapshot(target, "planted")
    before = _store_counts(store_url)
    proc = _cli("snapshot", "--dsn", dsn(pg), "--history", store_url, "--target-name", "planted", "--no-prune",
                env={"VHDIAG_FAULT_PAUSE": "write:30"})
    deadline = time.monotonic() + 30
    # Wait until the snapshot row is written inside the open transaction, then kill.
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if _pending_write(store_url):
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert _store_counts(store_url) == before
    # The store still works, and the next snapshot diffs against the last committed one.
    _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(1,)] * 3)
    with vhdiag.connect(dsn(pg)) as target, History(store_url) as history:
        assert history.snapshot(target, "planted")["events"] == []
        assert _row(history.statements(), SEQ)["calls"] == 3


def _pending_write(url) -> bool:
    """True once a writer holds the store's write lock (SQLite) or has an open transaction (PostgreSQL)."""
    if url.endswith(".sqlite"):
        import sqlite3
        conn = sqlite3.connect(url, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND state = 'idle in transaction'").fetchone()[0] > 0


def test_two_concurrent_snapshots_both_succeed(pg, store_url):
    with vhdiag.connect(dsn(pg)) as target, History(store_url) as history:
        history.snapshot(target, "planted")
    _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(1,)] * 4)
    slow = _cli("snapshot", "--dsn", dsn(pg), "--history", store_url, "--target-name", "planted", "--no-prune",
                env={"VHDIAG_FAULT_PAUSE": "write:2"})
    time.sleep(0.5)
    fast = _cli("snapshot", "--dsn", dsn(pg), "--history", store_url, "--target-name", "planted", "--no-prune")
    outs = [p.communicate(timeout=90) for p in (slow, fast)]
    assert [slow.returncode, fast.returncode] == [0, 0], outs
    with History(store_url) as history:
        snaps = history.snapshots()
        assert len(snaps) == 3 and snaps["snapshot_id"].is_unique and snaps["ts"].is_monotonic_increasing
        # The 4 calls are counted once, whichever of the two diffed them.
        assert _row(history.statements(), SEQ)["calls"] == 4


def test_busy_store_refuses_cleanly(pg, tmp_path):
    url = str(tmp_path / "h.sqlite")
    with vhdiag.connect(dsn(pg)) as target, History(url) as history:
        history.snapshot(target, "planted")
    holder = _cli("snapshot", "--dsn", dsn(pg), "--history", url, "--target-name", "planted", "--no-prune",
                  env={"VHDIAG_FAULT_PAUSE": "write:6"})
    deadline = time.monotonic() + 20
    while not _pending_write(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    with vhdiag.connect(dsn(pg)) as target, History(url, busy_timeout_s=1) as history:
        with pytest.raises(vhdiag.VhdiagError) as err:
            history.snapshot(target, "planted")
    assert str(err.value) == (f"history store sqlite:///{url} is busy: another snapshot held it for over 1 s; "
                              "try again")
    holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert len(History(url).snapshots()) == 2


def test_snapshot_does_not_wait_on_an_exclusively_locked_table(pg, tmp_path):
    with exclusive_lock(pg, "machine_events", dbname=PROBE_DB):
        started = time.monotonic()
        with vhdiag.connect(dsn(pg)) as target, History(str(tmp_path / "h.sqlite")) as history:
            summary = history.snapshot(target, "planted")
            growth = history.table_growth()
        assert time.monotonic() - started < 5
        assert "sizes skipped (locked ACCESS EXCLUSIVE by another session): public.machine_events" in summary["notes"]
        assert "machine_events" not in set(growth["table"])
        assert "orders" in set(growth["table"])


def test_table_growth_and_database_series(pg, tmp_path):
    with pg.admin(PROBE_DB) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS growth_probe (id int, pad text)")
    with vhdiag.connect(dsn(pg)) as target, History(str(tmp_path / "h.sqlite")) as history:
        history.snapshot(target, "planted")
        with pg.admin(PROBE_DB) as conn:
            conn.execute("INSERT INTO growth_probe SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g")
            conn.execute("DELETE FROM growth_probe WHERE id <= 1000")
        with psycopg.connect(dsn(pg, via="socket")) as conn:
            for _ in range(4):
                conn.execute("SELECT 1")
                conn.rollback()
        time.sleep(0.2)
        history.snapshot(target, "planted")
        growth = history.table_growth().set_index("table").loc["growth_probe"]
        series = history.database_series()
    assert (growth["n_tup_ins"], growth["n_tup_del"]) == (5000, 1000)
    assert growth["growth_bytes"] > 5000 * 200
    planted = series[series["database"] == PROBE_DB].iloc[-1]
    assert planted["rollbacks"] >= 4
    assert planted["complete"]
    assert planted["max_connections"] == 100


def test_cli_snapshot_and_history(pg, tmp_path, capsys):
    from vhdiag import cli
    url = str(tmp_path / "h.sqlite")
    assert cli.main(["snapshot", "--dsn", dsn(pg), "--history", url, "--no-prune"]) == 0
    _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(5,)] * 2)
    assert cli.main(["snapshot", "--dsn", dsn(pg), "--history", url, "--no-prune"]) == 0
    out = capsys.readouterr().out
    assert f"of 127.0.0.1:{pg.server.port}/{PROBE_DB} at " in out
    assert pg.server.password not in out
    assert cli.main(["history", "statements", "--history", url, "--since", "1h", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    line = [l for l in out.splitlines() if l.startswith('"' + SEQ) or SEQ in l]
    assert line, out
    frame = pd.read_csv(__import__("io").StringIO(out))
    assert int(frame[(frame["query"] == SEQ) & (frame["user"] == workload.APP_USER)]["calls"].iloc[0]) == 2
    assert cli.main(["history", "statements", "--history", url, "--since", "yesterday"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: bad time 'yesterday': write an ISO 8601 time")


def test_no_password_in_the_store(pg, tmp_path):
    url = str(tmp_path / "h.sqlite")
    with vhdiag.connect(dsn(pg)) as target, History(url) as history:
        history.snapshot(target, "planted")
    assert pg.server.password.encode() not in open(url, "rb").read()
    for extra in ("-wal", "-shm"):
        if os.path.exists(url + extra):
            assert pg.server.password.encode() not in open(url + extra, "rb").read()


def test_metrics_from_the_store_and_imported_files(pg, tmp_path):
    url = str(tmp_path / "h.sqlite")
    with vhdiag.connect(dsn(pg)) as target, History(url) as history:
        history.snapshot(target, "planted")
        conn = psycopg.connect(dsn(pg, via="socket"))  # one more connection, visible to the second snapshot
        time.sleep(0.1)
        history.snapshot(target, "planted")
        conn.close()
    csv = tmp_path / "railway.csv"
    csv.write_text("timestamp,CPU %,Memory %\n2026-11-29T12:00:00Z,71.5,40\n2026-11-29T12:01:00Z,86,41\n")
    from vhdiag import cli
    assert cli.main(["metrics", "import", str(csv), "--history", url, "--target-name", "planted"]) == 0
    frame = vhdiag.load_metrics(f"sqlite:///{url}")
    labels = '{"target":"planted"}'
    cpu = frame[frame["metric"] == "cpu_pct"]
    assert list(cpu["value"]) == [71.5, 86.0] and set(cpu["labels"]) == {labels}
    assert list(cpu["ts"]) == [pd.Timestamp("2026-11-29T12:00:00Z"), pd.Timestamp("2026-11-29T12:01:00Z")]
    conns = frame[frame["metric"] == "db_connections"]
    assert len(conns) == 1 and conns["value"].iloc[0] >= 2
    assert set(frame["metric"]) >= {"db_connections", "database_size_bytes", "tps", "cache_hit_pct", "memory_pct"}
    # Importing the same file again replaces its points rather than duplicating them.
    assert cli.main(["metrics", "import", str(csv), "--history", url, "--target-name", "planted"]) == 0
    again = vhdiag.load_metrics(f"sqlite:///{url}", queries=["cpu_pct"])
    assert list(again["value"]) == [71.5, 86.0]


def test_passwords_in_statement_text_never_reach_the_store(pg, tmp_path):
    secret = "Sup3r-Secret-In-SQL"
    url = str(tmp_path / "h.sqlite")
    with vhdiag.connect(dsn(pg)) as target, History(url) as history:
        history.snapshot(target, "probe")
        with pg.admin(PROBE_DB) as conn:
            conn.execute(f"DROP ROLE IF EXISTS leaky")
            conn.execute(f"CREATE ROLE leaky PASSWORD '{secret}'")
            conn.execute(f"ALTER ROLE leaky PASSWORD '{secret}'")
        frame = target.statements()
        history.snapshot(target, "probe")
    created = frame[frame["query"].str.startswith("CREATE ROLE leaky", na=False)]
    assert list(created["query"]) == ["CREATE ROLE leaky PASSWORD '***'"]
    assert not frame["query"].str.contains(secret, regex=False, na=False).any()
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes(), path


def test_statements_that_become_visible_start_a_baseline(pg, tmp_path):
    """A GRANT pg_read_all_stats between snapshots reveals statements that ran long before:
    their counters are history, not the interval's."""
    user, password = "vh_monitor", "Monitor-Pass-5"
    with pg.admin("postgres") as conn:
        conn.execute(f"DROP ROLE IF EXISTS {user}")
        conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(1,)] * 20)
    url = str(tmp_path / "h.sqlite")
    monitor = dsn(pg, user=user, password=password)
    with vhdiag.connect(monitor) as target, History(url) as history:
        history.snapshot(target, "probe")
    _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(1,)] * 3)
    with pg.admin("postgres") as conn:
        conn.execute(f"GRANT pg_read_all_stats TO {user}")
    try:
        with vhdiag.connect(monitor) as target, History(url) as history:
            assert history.snapshot(target, "probe")["events"] == ["visibility"]
            assert SEQ not in set(history.statements()["query"])
            _app_run(pg, "SELECT count(*) FROM orders WHERE customer_id = %s", [(1,)] * 4)
            history.snapshot(target, "probe")
            assert _row(history.statements(), SEQ)["calls"] == 4
    finally:
        with pg.admin("postgres") as conn:
            conn.execute(f"DROP ROLE {user}")


def test_a_statement_gone_and_back_is_counted_from_its_return(own_server, tmp_path):
    """Counters we held for a statement the view dropped are forgotten, so they are never
    diffed against the statement's next life (it came back after the previous snapshot)."""
    history = History(str(tmp_path / "h.sqlite"))
    _own_calls(own_server, 100)
    _snapshot(own_server, history)
    with own_server.admin() as conn:  # setup: drop just this entry from the view
        conn.execute("SELECT pg_stat_statements_reset(0, 0, queryid) FROM pg_stat_statements WHERE query = %s",
                     (OWN_QUERY,))
    _snapshot(own_server, history)
    _own_calls(own_server, 150)
    _snapshot(own_server, history)
    row = history.statements().set_index("query").loc[OWN_QUERY]
    assert (row["calls"], row["complete"], row["notes"]) == (150, True, "new")


def test_two_prunes_at_once(pg, store_url):
    with vhdiag.connect(dsn(pg)) as target, History(store_url) as history:
        history.snapshot(target, "probe")
        history.snapshot(target, "probe")
    errors = []

    def prune():
        try:
            with History(store_url) as h:
                h.prune(raw_days=0, rollup_days=400, now=pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=2))
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            errors.append(exc)

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with History(store_url) as history:
        assert len(history.snapshots()) == 1  # the last of its hour
