"""Security, on real report runs (issue 13, "Robustness tests", Security).

- Names are hostile input: a role, a table, an index and an application named with markup
  (``<img src=x onerror=alert(N)>``) appear in the reports' HTML only escaped.
- The password scan covers every output of every report, the history store and the log: the
  target's password (in the DSN given), and the password of a URL given as a parameter
  (``-p metrics=http://user:pw@prometheus:9090``), which used to be copied into the notebook's
  parameters cell and the summary's ``parameters``.
- No user input becomes an SQL identifier: vhdiag has no schema or table filter (the only
  ``sql.Identifier`` uses quote names read from the server's catalogs); a test pins that.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

import vhdiag
from vhdiag.history import History

from helpers import ensure_database
from prometheus_harness import prometheus  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
DB = "security"
ROLE = "<img src=x onerror=alert(1)>"
TABLE = "<img src=x onerror=alert(2)>"
INDEX = "<img src=x onerror=alert(3)>"
APP = "<img src=x onerror=alert(4)>"
METRICS_SECRET = "s3cret-metrics-7731"


def ident(name: str) -> str:
    return psycopg.sql.Identifier(name).as_string()


@pytest.fixture(scope="module")
def hostile(servers, tmp_path_factory):
    """A server of its own with the hostile names, and a store of two snapshots around work
    done by the hostile role under the hostile application name."""
    server = servers.extra("security-pg18")
    ensure_database(server, DB, f"CREATE TABLE {ident(TABLE)} (id int PRIMARY KEY, owner_id int, note text)",
                    f"INSERT INTO {ident(TABLE)} SELECT g, g % 100, 'x' FROM generate_series(1, 20000) g",
                    f"CREATE INDEX {ident(INDEX)} ON {ident(TABLE)} (note)",
                    f"ANALYZE {ident(TABLE)}")
    with server.admin("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone():
            conn.execute(f"CREATE ROLE {ident(ROLE)} LOGIN")
    with server.admin(DB) as conn:
        conn.execute(f"GRANT SELECT ON {ident(TABLE)} TO {ident(ROLE)}")
    store = tmp_path_factory.mktemp("security") / "h.sqlite"
    dsn = server.dsn(DB)
    with vhdiag.connect(dsn) as target, History(str(store)) as history:
        history.snapshot(target, "shop")
        as_role = {"host": str(server.socket_dir), "port": server.port, "dbname": DB, "user": ROLE,
                   "application_name": APP}
        with psycopg.connect(**as_role, autocommit=True) as conn:
            for i in range(30):
                conn.execute(f"SELECT count(*) FROM {ident(TABLE)} WHERE owner_id = %s", (i,))
            conn.execute("SELECT pg_sleep(0.05)")
            idle = psycopg.connect(**as_role)
            idle.execute("SELECT 1")          # idle in transaction during the next snapshot
            history.snapshot(target, "shop")
            idle.close()
    now = time.time()
    # Whole seconds: the end rounds up, or the last snapshot (taken within this second) falls out.
    window = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (now - 3600, math.ceil(now))]
    return server, dsn, store, window


def report(dsn, store, window, out, name, *extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "vhdiag", "-v", "report", name, "--dsn", dsn, "--history",
                           str(store), "--target-name", "shop", "--since", window[0], "--until", window[1],
                           "--out", str(out), *extra], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(hostile, prometheus, tmp_path_factory):
    """slow_queries and capacity (with a Prometheus URL holding a password) into one folder."""
    server, dsn, store, window = hostile
    out = tmp_path_factory.mktemp("security-reports")
    metrics = prometheus.url.replace("http://", f"http://vhdiag:{METRICS_SECRET}@")
    done = {"slow_queries": report(dsn, store, window, out, "slow_queries"),
            "capacity": report(dsn, store, window, out, "capacity", "-p", f"metrics={metrics}")}
    for name, proc in done.items():
        assert proc.returncode == 0, f"{name}: {proc.stderr[-3000:]}"
    return out, done


def escaped(name: str) -> str:
    return name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_markup_in_names_appears_only_escaped_in_every_html(runs):
    out, _ = runs
    pages = {p.name: p.read_text() for p in out.rglob("*.html")}
    assert set(pages) == {"index.html", "slow_queries.html", "capacity.html"}
    for page, text in pages.items():
        assert "<img src=x" not in text, page          # plots are <img src="data:...">, names never
    # Where each name is shown, it is there escaped: the table in both reports, the unused
    # index and the application's connections in capacity, the role in the slow-query rankings.
    assert escaped(TABLE) in pages["slow_queries.html"]
    assert escaped(TABLE) in pages["capacity.html"]
    assert escaped(INDEX) in pages["capacity.html"]
    assert escaped(APP) in pages["capacity.html"]


def test_no_password_in_any_output_the_store_or_the_log(hostile, runs):
    server, _, store, _ = hostile
    out, done = runs
    secrets = [server.password.encode(), METRICS_SECRET.encode()]
    files = [p for p in out.rglob("*") if p.is_file()] + [p for p in store.parent.iterdir() if p.is_file()]
    assert any(p.name == "capacity.ipynb" for p in files) and any(p.name == "h.sqlite" for p in files)
    leaks = [str(p) for p in files for s in secrets if s in p.read_bytes()]
    assert leaks == []
    logs = "".join(proc.stdout + proc.stderr for proc in done.values()).encode()
    assert all(s not in logs for s in secrets)


def test_a_url_parameter_reaches_the_kernel_by_reference(runs):
    """The Prometheus URL's password is kept out, yet the capacity report did load its metrics."""
    import json
    out, _ = runs
    summary = json.loads(next(out.rglob("capacity.summary.json")).read_text())
    assert summary["parameters"]["metrics"] == "env:VHDIAG_REPORT_PARAM_METRICS"
    notebook = next(out.rglob("capacity.ipynb")).read_text()
    assert "env:VHDIAG_REPORT_PARAM_METRICS" in notebook


def test_no_user_input_is_interpolated_as_an_sql_identifier():
    """The only identifiers vhdiag quotes come from the catalogs; no command takes a schema or
    table filter. A new one must use sql.Identifier (or refuse the name): this lists the uses."""
    uses = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "vhdiag").rglob("*.py")
                  if "sql.Identifier(" in p.read_text())
    assert uses == ["vhdiag/collect/indexes.py", "vhdiag/collect/statements.py"]
    from vhdiag.cli import build_parser
    options = {opt for action in build_parser()._subparsers._group_actions for sub in action.choices.values()
               for opt in sub._option_string_actions}
    assert not {o for o in options if re.search(r"schema|table|relation", o)}
