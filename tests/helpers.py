"""Small helpers shared by the test modules: polling, expected dtypes, locks, scratch databases."""
from __future__ import annotations

import time
from contextlib import contextmanager

import psycopg

import workload
from vhdiag.collect._base import DTYPES


def eventually(read, ok, timeout=10.0, interval=0.1):
    """read() until ok(result) or the timeout; the last result either way."""
    deadline = time.monotonic() + timeout
    while True:
        result = read()
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def dtypes_of(columns):
    """The dtype names a frame of a ``COLUMNS`` mapping has, as ``df.dtypes.astype(str)``."""
    return {name: DTYPES[kind] for name, kind in columns.items()}


@contextmanager
def exclusive_lock(pg, table, dbname=workload.DB):
    """Hold ``LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE`` in a superuser session for the body."""
    locker = psycopg.connect(pg.dsn(dbname, via="socket"))
    try:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield locker
    finally:
        locker.rollback()
        locker.close()


@contextmanager
def scratch_database(pg, name):
    """A fresh, empty database ``name`` for the body (one left by an earlier run is dropped
    first), dropped after it. For a module-scoped fixture: yield inside the ``with``.

    Like the fixtures it serves, it drops the database only when the body ends normally; one
    left behind by a failure is dropped by the next run."""
    with pg.admin("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    yield name
    with pg.admin("postgres") as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def ensure_database(server, name, *setup):
    """Database ``name`` on ``server`` (anything with ``admin(dbname)``), created on first use with
    pg_stat_statements and the ``setup`` statements run once in it."""
    with server.admin("postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(f"CREATE DATABASE {name}")
    with server.admin(name) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for sql in setup:
            db.execute(sql)


def fresh_database(server, name, setup=None, role=None):
    """Database ``name`` on a cluster of one test module, made anew (and ``role`` with LOGIN,
    dropped first), then ``setup`` run in it."""
    with server.admin("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if role:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE DATABASE {name}")
    if setup:
        with server.admin(name) as conn:
            conn.execute(setup)


class LoopbackHTTP:
    """A threaded stdlib HTTP server on 127.0.0.1 (a free port) serving ``handler`` (a
    BaseHTTPRequestHandler class): the health URLs and webhooks the checks' tests talk to."""

    def __init__(self, handler):
        import http.server
        import threading
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
