"""A server frozen after vhdiag connected must not hang vhdiag (issue 7, defect 9).

``statement_timeout`` is enforced by the server: a server stopped with SIGSTOP (a hung VM, a
host swapping to death) never sends the error, and the kernel still ACKs TCP, so keepalives
and ``tcp_user_timeout`` stay silent. vhdiag bounds every wait on the client side instead: each
query fails after ``statement_timeout`` + grace with one line, and a snapshot stores nothing.

Every freeze is real: SIGSTOP to the server's own processes (we are root), on a server of
each version that these tests alone use, and SIGCONT in a ``finally`` whatever happens. The
elapsed-time bounds are the defect's acceptance criterion, and generous.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from helpers import ensure_database

import vhdiag
import vhdiag.target
from vhdiag.history import History

DB = "frozen"
STATEMENT_TIMEOUT_MS = 1000
BOUND_S = 3           # 1000 ms + vhdiag's grace of 2 s: what the error line says
ALLOWED_S = 1 + 5     # the acceptance criterion: statement_timeout + a few seconds

pytestmark = pytest.mark.timeout(90)  # unfixed, these hang: fail in bounded time, never block the run


@pytest.fixture(scope="module", params=["pg18", "pg15"])
def server(request, servers):
    """A server of each version that only these tests freeze."""
    server = servers.extra(f"frozen-{request.param}", version=request.param)
    ensure_database(server, DB, "CREATE TABLE IF NOT EXISTS t (x int PRIMARY KEY)")
    return server


# -- freezing ------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _stop(pid: int) -> None:
    """SIGSTOP, then wait until the kernel shows the process stopped."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)


def stop_server(postmaster: int) -> None:
    """The postmaster first (so it forks nothing new), then each of its children."""
    _stop(postmaster)
    for pid in _children(postmaster):
        with contextlib.suppress(ProcessLookupError):
            _stop(pid)


def thaw_server(postmaster: int) -> None:
    """SIGCONT to every child and the postmaster: harmless for those that were not stopped."""
    for pid in _children(postmaster) + [postmaster]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _vhdiag_backends(server) -> list[int]:
    with server.admin(DB) as conn:
        return [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'vhdiag' AND datname = %s", (DB,))]


@contextlib.contextmanager
def frozen(server, what: str = "server"):
    """The whole server, or only vhdiag's backends, stopped for the body; running after it."""
    postmaster = server.postmaster_pid()
    backends = _vhdiag_backends(server) if what == "backend" else []
    try:
        if what == "backend":
            assert backends, "vhdiag has no backend to freeze"
            for pid in backends:
                _stop(pid)
        else:
            stop_server(postmaster)
        yield
    finally:
        for pid in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        thaw_server(postmaster)


# -- expectations ----------------------------------------------------------------------------------
def _dsn(server, via: str) -> str:
    return server.dsn(DB, via=via)


def _where(server, via: str) -> str:
    host = "127.0.0.1" if via == "tcp" else f"[socket {server.socket_dir}]"
    return f"{host}:{server.port}/{DB}"


def _message(server, via: str) -> str:
    return (f"{_where(server, via)} did not answer within {BOUND_S} s (statement_timeout {STATEMENT_TIMEOUT_MS} ms"
            " + grace): the server may be frozen or overloaded; check that its postgres processes are running"
            " (not stopped, swapping or starved) and that the host answers, then try again")


def _works(server, via: str, target=None) -> None:
    """The server answers again, to a new Target and to the one that gave up, if any."""
    with vhdiag.connect(_dsn(server, via), statement_timeout_ms=STATEMENT_TIMEOUT_MS) as fresh:
        assert fresh.query("SELECT 41 + 1 AS answer")["answer"].tolist() == [42]
    if target is not None:
        assert target.query("SELECT 41 + 1 AS answer")["answer"].tolist() == [42]
        assert target.tables()["table"].tolist() == ["t"]


# -- a query on an open Target -----------------------------------------------------------------------
@pytest.mark.parametrize("via, what", [("tcp", "server"), ("socket", "server"), ("tcp", "backend")])
def test_query_on_a_frozen_server_fails_within_the_bound(server, via, what):
    target = vhdiag.connect(_dsn(server, via), statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    try:
        assert target.tables()["table"].tolist() == ["t"]
        with frozen(server, what):
            started = time.monotonic()
            with pytest.raises(vhdiag.VhdiagError) as err:
                target.tables()
            elapsed = time.monotonic() - started
        assert str(err.value) == _message(server, via)
        assert BOUND_S <= elapsed < ALLOWED_S
        _works(server, via, target)
    finally:
        target.close()


def test_keepalives_for_a_dead_host_unless_the_dsn_sets_its_own(server):
    """They cannot end a wait on a frozen server (its kernel ACKs), but do on a dead host."""
    with vhdiag.connect(_dsn(server, "tcp") + "?keepalives_idle=30",
                        statement_timeout_ms=STATEMENT_TIMEOUT_MS) as target:
        with target.engine.connect() as conn:
            params = conn.connection.driver_connection.info.get_parameters()
    assert {k: params.get(k) for k in ("keepalives", "keepalives_idle", "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout")} == {
        "keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "1", "keepalives_count": "3",
        "tcp_user_timeout": "6000"}


# -- connecting: the session setup and the capability probe ------------------------------------------
@pytest.mark.parametrize("stage", ["session setup", "capability probe"])
def test_freeze_while_connecting_fails_within_the_bound(server, stage, monkeypatch):
    """Frozen right after libpq connected (the session's SET statements wait), or right after
    the connection was set up (the probe's transaction bounds wait)."""
    postmaster = server.postmaster_pid()
    if stage == "session setup":
        base = psycopg.Connection.__dict__["connect"].__func__

        def connect_then_freeze(cls, *args, **kwargs):
            conn = base(cls, *args, **kwargs)
            stop_server(postmaster)
            return conn
        monkeypatch.setattr(psycopg.Connection, "connect", classmethod(connect_then_freeze))
        monkeypatch.setattr(psycopg, "connect", psycopg.Connection.connect)
    else:
        opened = vhdiag.target.Target._open

        def open_then_freeze(self):
            conn = opened(self)
            stop_server(postmaster)
            return conn
        monkeypatch.setattr(vhdiag.target.Target, "_open", open_then_freeze)
    try:
        started = time.monotonic()
        with pytest.raises(vhdiag.VhdiagError) as err:
            vhdiag.connect(_dsn(server, "tcp"), statement_timeout_ms=STATEMENT_TIMEOUT_MS)
        elapsed = time.monotonic() - started
    finally:
        thaw_server(postmaster)
    monkeypatch.undo()
    assert str(err.value) == _message(server, "tcp")
    assert BOUND_S <= elapsed < ALLOWED_S
    _works(server, "tcp")


# -- vhdiag snapshot ----------------------------------------------------------------------------------
# `vhdiag snapshot` in a subprocess that freezes the server once it has connected (after the
# capability probe): the snapshot's collection then meets the frozen server.
FREEZE_AFTER_CONNECT = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import test_frozen_server
import vhdiag.target
connect = vhdiag.target.connect

def connect_then_freeze(*args, **kwargs):
    target = connect(*args, **kwargs)
    test_frozen_server.stop_server(int(sys.argv[1]))
    return target

vhdiag.target.connect = connect_then_freeze
from vhdiag.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _snapshot_cli(server, history: Path, *, freeze: bool) -> subprocess.CompletedProcess:
    argv = ["snapshot", "--dsn", _dsn(server, "tcp"), "--statement-timeout-ms", str(STATEMENT_TIMEOUT_MS),
            "--history", str(history), "--target-name", DB, "--no-prune"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = ([sys.executable, "-c", FREEZE_AFTER_CONNECT, str(server.postmaster_pid()), *argv] if freeze
               else [sys.executable, "-m", "vhdiag", *argv])
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def _snapshots(history: Path) -> int:
    with History(str(history)) as h:
        return len(h.snapshots(DB))


def test_snapshot_of_a_frozen_server_fails_and_stores_nothing(server, tmp_path):
    history = tmp_path / "history.sqlite"
    first = _snapshot_cli(server, history, freeze=False)
    assert first.returncode == 0, first.stderr
    assert _snapshots(history) == 1
    try:
        started = time.monotonic()
        proc = _snapshot_cli(server, history, freeze=True)
        elapsed = time.monotonic() - started
    finally:
        thaw_server(server.postmaster_pid())
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == f"Error: {_message(server, 'tcp')}\n"
    assert elapsed < ALLOWED_S + 15  # + the interpreter's start and vhdiag's imports
    assert _snapshots(history) == 1
    # The normal path, once the server runs again.
    last = _snapshot_cli(server, history, freeze=False)
    assert last.returncode == 0, last.stderr
    assert _snapshots(history) == 2


# -- the report's own connections ------------------------------------------------------------------
def test_report_plans_on_a_frozen_server_fail_in_one_line(server):
    """The slow-query report plans statements on a raw connection and keeps each failure as a
    note; a frozen server is no such failure: the report stops with the one line."""
    from vhdiag.collect.plans import generic_plans
    if server.major < 16:
        pytest.skip("EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16 or later")
    frame = pd.DataFrame({"queryid": [1, 2], "user": ["postgres"] * 2, "database": [DB] * 2,
                          "query": ["SELECT x FROM t WHERE x = $1", "SELECT count(*) FROM t WHERE x > $1"]})
    with vhdiag.connect(_dsn(server, "tcp"), statement_timeout_ms=STATEMENT_TIMEOUT_MS) as target:
        records, _ = generic_plans(target, frame)
        assert [r.get("error") for r in records] == [None, None]
        with frozen(server):
            started = time.monotonic()
            with pytest.raises(vhdiag.VhdiagError) as err:
                generic_plans(target, frame)
            elapsed = time.monotonic() - started
        assert str(err.value) == _message(server, "tcp")
        assert BOUND_S <= elapsed < ALLOWED_S
        _works(server, "tcp", target)
