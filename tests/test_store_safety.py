"""The history store and reports are private files, and the store never writes into a database
that is not one (issue 7, defects 4, 5 and the store part of 11).

- Files vhdiag creates are 0600 and folders 0700 whatever the umask (statement text is sensitive);
  a folder the user gave (``--out /srv/reports``) keeps its mode.
- A database with tables that are not vhdiag's is refused by every command, read or write, SQLite
  or PostgreSQL, before anything is written: its bytes stay the same.
- Reading commands never create or migrate a store; a missing store is one line naming the fix.
- A read-only store, a folder that cannot be made and an unreachable PostgreSQL store are one line
  naming the path (never a password) and the fix.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

import vhdiag
from vhdiag import cli
from vhdiag.errors import VhdiagError
from vhdiag.history import History
from vhdiag.history import schema as S

from helpers import scratch_database

DB = "store_safety"


@pytest.fixture(scope="module")
def target_dsn(servers):
    """A database of its own on the PostgreSQL 18 server to snapshot (file modes do not depend
    on the monitored server's version); the planted database's counters stay untouched."""
    pg = servers.get("pg18")
    with pg.admin("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f"CREATE DATABASE {DB}")
            with pg.admin(DB) as db:
                db.execute("CREATE EXTENSION pg_stat_statements")
    return pg.dsn(DB)


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def foreign_sqlite(path: Path) -> Path:
    """Another application's SQLite database: an ``orders`` table with a row."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO orders (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    return path


# -- defect 4: private files ------------------------------------------------------------------
def test_cli_snapshot_creates_a_private_store_in_private_folders(target_dsn, tmp_path, capsys):
    store = tmp_path / "made" / "by-vhdiag" / "history.sqlite"
    with umask(0o022):
        code, _, err = run(capsys, "snapshot", "--dsn", target_dsn, "--history", f"sqlite:///{store}",
                           "--no-prune")
        assert code == 0, err
        assert os.umask(0o022) == 0o022  # the CLI put the caller's umask back
    assert mode(store) == 0o600
    assert mode(store.parent) == 0o700 and mode(store.parent.parent) == 0o700


def test_library_store_and_its_wal_files_are_private(target_dsn, tmp_path):
    """A notebook calling History() does not go through the CLI's umask."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    store = shared / "history.sqlite"
    with umask(0o022), vhdiag.connect(target_dsn) as target, History(str(store)) as history:
        history.snapshot(target, "probe")
        history.snapshot(target, "probe")
        # The pool still holds the connection: the -wal and -shm files are there.
        modes = {p.name: mode(p) for p in shared.iterdir()}
    assert modes == {"history.sqlite": 0o600, "history.sqlite-wal": 0o600, "history.sqlite-shm": 0o600}
    assert mode(shared) == 0o755  # a folder vhdiag did not create keeps its mode


def test_report_files_and_folders_are_private(target_dsn, tmp_path, capsys):
    """One real `vhdiag report` run into an existing shared folder, without history."""
    shared = tmp_path / "srv-reports"
    shared.mkdir()
    shared.chmod(0o755)
    missing_store = tmp_path / "no-store" / "history.sqlite"
    with umask(0o022):
        code, out, err = run(capsys, "report", "slow_queries", "--dsn", target_dsn, "--history", missing_store,
                             "--window", "1h", "--out", shared, "--quiet")
    assert code == 0, err
    assert mode(shared) == 0o755
    files = {p.relative_to(shared).as_posix(): mode(p) for p in shared.rglob("*")}
    assert any(name.endswith("/slow_queries.html") for name in files), files
    assert any(name.endswith("/slow_queries.ipynb") for name in files), files
    assert any(name.endswith("/slow_queries.summary.json") for name in files), files
    assert "index.html" in files
    assert {name: m for name, m in files.items() if m != (0o700 if (shared / name).is_dir() else 0o600)} == {}
    # The report read no history (cumulative figures) and created no store.
    assert not missing_store.parent.exists()


# -- defect 5: never write into a database that is not a store ---------------------------------
def _commands(store_arg, target_dsn, csv):
    return {
        "history snapshots": ["history", "snapshots", "--history", store_arg],
        "history statements": ["history", "statements", "--history", store_arg, "--since", "1h"],
        "metrics": ["metrics", store_arg],
        "snapshot": ["snapshot", "--dsn", target_dsn, "--history", store_arg],
        "prune": ["prune", "--history", store_arg],
        "metrics import": ["metrics", "import", csv, "--target-name", "probe", "--history", store_arg],
    }


@pytest.fixture
def metric_csv(tmp_path):
    path = tmp_path / "cpu.csv"
    path.write_text("ts,metric,value\n2026-11-29T12:00:00Z,cpu_pct,40\n2026-11-29T12:01:00Z,cpu_pct,90\n")
    return path


@pytest.mark.parametrize("command", ["history snapshots", "history statements", "metrics", "snapshot", "prune",
                                     "metrics import"])
def test_foreign_sqlite_database_is_refused_and_left_unchanged(command, target_dsn, metric_csv, tmp_path, capsys):
    other = foreign_sqlite(tmp_path / "other_app.sqlite")
    before = sha256(other)
    code, out, err = run(capsys, *_commands(f"sqlite:///{other}", target_dsn, metric_csv)[command])
    assert (code, out) == (1, "")
    assert err == (f"Error: {other} is not a vhdiag history store (it has tables: orders): "
                   "give --history a new file or a vhdiag store\n")
    assert sha256(other) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu.csv", "other_app.sqlite"]  # no -wal, -shm, -journal


def test_store_with_foreign_tables_and_non_sqlite_file_are_refused(target_dsn, tmp_path, capsys):
    """A database an older vhdiag already wrote its tables into is still not a store; nor is a
    file that is not SQLite at all."""
    mixed = foreign_sqlite(tmp_path / "mixed.sqlite")
    engine = sa.create_engine(f"sqlite:///{mixed}")
    with engine.begin() as conn:
        S.create_all(conn)
        conn.execute(S.meta.insert().values(key="schema_version", value=str(S.SCHEMA_VERSION)))
    engine.dispose()
    before = sha256(mixed)
    code, _, err = run(capsys, "history", "snapshots", "--history", mixed)
    assert err == (f"Error: {mixed} is not a vhdiag history store (it has tables: orders): "
                   "give --history a new file or a vhdiag store\n")
    assert sha256(mixed) == before
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n" * 20)
    code, _, err = run(capsys, "snapshot", "--history", notes, "--dsn", target_dsn)
    assert (code, err) == (1, f"Error: {notes} is not a vhdiag history store (it is not an SQLite database): "
                              "give --history a new file or a vhdiag store\n")
    assert notes.read_text() == "shopping list\n" * 20


def _relations(pg, dbname):
    with pg.admin(dbname) as conn:
        return conn.execute("SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND "
                            "n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1").fetchall()


def test_foreign_postgresql_database_is_refused_and_left_unchanged(pg, target_dsn, metric_csv, capsys):
    with scratch_database(pg, "store_safety_foreign") as name:
        with pg.admin(name) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
            conn.execute("CREATE TABLE customers (id int PRIMARY KEY)")
            conn.execute("INSERT INTO orders VALUES (1, 12.5)")
        before = _relations(pg, name)
        url = pg.dsn(name)  # with the superuser's password
        shown = f"postgresql://postgres@127.0.0.1:{pg.server.port}/{name}"
        for command, args in _commands(url, target_dsn, metric_csv).items():
            code, out, err = run(capsys, *args)
            assert (command, code, out) == (command, 1, "")
            assert err == (f"Error: {shown} is not a vhdiag history store (it has tables: customers, orders): "
                           "give --history a new file or a vhdiag store\n"), command
        assert _relations(pg, name) == before
        assert pg.server.password not in err


def test_empty_postgresql_database_is_created_by_a_write_only(pg, target_dsn, capsys):
    with scratch_database(pg, "store_safety_empty") as name:
        shown = f"postgresql://postgres@127.0.0.1:{pg.server.port}/{name}"
        code, _, err = run(capsys, "history", "snapshots", "--history", pg.dsn(name))
        assert (code, err) == (1, f"Error: there is no history store at {shown} yet: vhdiag snapshot creates it\n")
        assert _relations(pg, name) == []
        code, _, err = run(capsys, "snapshot", "--dsn", target_dsn, "--history", pg.dsn(name), "--no-prune")
        assert code == 0, err
        assert ("public.vhdiag_meta",) in _relations(pg, name)
        with History(pg.dsn(name)) as history:
            assert len(history.snapshots()) == 1


def test_read_on_a_missing_store_creates_nothing(tmp_path, capsys):
    for given in (tmp_path / "none.sqlite", f"sqlite:///{tmp_path}/sub/dir/none.sqlite"):
        path = str(given).removeprefix("sqlite:///")
        for args in (["history", "snapshots"], ["history", "table-growth"], ["prune"], ["metrics"]):
            if args == ["metrics"] and not str(given).startswith("sqlite:"):
                continue  # a plain path is a metrics file
            argv = [*args, given] if args == ["metrics"] else [*args, "--history", given]
            code, out, err = run(capsys, *argv)
            assert (code, out, err) == (1, "", f"Error: there is no history store at {path} yet: "
                                               "vhdiag snapshot creates it\n"), argv
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VhdiagError, match="there is no history store at"):
        vhdiag.load_metrics(f"sqlite:///{tmp_path}/none.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_schema_versions_newer_refused_older_migrated_by_writes_only(target_dsn, tmp_path, capsys, monkeypatch):
    path = tmp_path / "h.sqlite"
    with vhdiag.connect(target_dsn) as target, History(str(path)) as history:
        history.snapshot(target, "probe")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE vhdiag_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    newer = (f"Error: history store {path} has schema version 99, newer than this vhdiag's {S.SCHEMA_VERSION}: "
             "upgrade vhdiag (pip install -U vhdiag)\n")
    assert run(capsys, "history", "snapshots", "--history", path)[2] == newer
    assert run(capsys, "snapshot", "--dsn", target_dsn, "--history", path)[2] == newer
    # An older store (this vhdiag knows one more version): reads refuse, a write migrates.
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE vhdiag_meta SET value = '{S.SCHEMA_VERSION}' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    later = S.SCHEMA_VERSION + 1

    def step(c):
        c.execute(S.meta.insert().values(key="migrated", value="yes"))
    monkeypatch.setattr(S, "SCHEMA_VERSION", later)
    monkeypatch.setitem(S.MIGRATIONS, later, step)
    before = sha256(path)
    assert run(capsys, "history", "snapshots", "--history", path)[2] == (
        f"Error: history store {path} has schema version {later - 1}, older than this vhdiag's {later}: "
        "the next vhdiag snapshot upgrades it\n")
    assert sha256(path) == before
    code, _, err = run(capsys, "snapshot", "--dsn", target_dsn, "--history", path, "--no-prune")
    assert code == 0, err
    conn = sqlite3.connect(path)
    assert dict(conn.execute("SELECT key, value FROM vhdiag_meta WHERE key IN ('schema_version', 'migrated')")) == \
        {"schema_version": str(later), "migrated": "yes"}
    conn.close()


# -- defect 11 (store part): one line naming the path and the fix ------------------------------
@pytest.fixture
def immutable(tmp_path):
    """``chattr +i``: read-only even for root (the tests run as root, whom chmod 0400 does not stop)."""
    marked = []

    def mark(path):
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i is not available here ({proc.stderr.strip()}): no way to make a file "
                        "read-only for root")
        marked.append(path)

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_store_is_one_line_with_the_fix(target_dsn, tmp_path, capsys, immutable):
    path = tmp_path / "h.sqlite"
    assert run(capsys, "snapshot", "--dsn", target_dsn, "--history", path, "--no-prune")[0] == 0
    immutable(path)
    line = (f"Error: the history store {path} is read-only: check its permissions or give --history "
            "a writable path\n")
    assert run(capsys, "snapshot", "--dsn", target_dsn, "--history", path, "--no-prune") == (1, "", line)
    assert run(capsys, "prune", "--history", path) == (1, "", line)
    code, out, err = run(capsys, "history", "snapshots", "--history", path)  # reading still works
    assert (code, err) == (0, "") and out.count("\n") == 2


def test_folder_that_cannot_be_made_is_one_line(target_dsn, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = blocker / "sub" / "h.sqlite"
    assert run(capsys, "snapshot", "--dsn", target_dsn, "--history", f"sqlite:///{path}") == (
        1, "", f"Error: cannot create the folder {path.parent} for the history store: Not a directory: "
               "give --history a path in a folder you can write\n")


def test_unreachable_postgresql_store_is_one_line_without_password(tmp_path, capsys):
    code, out, err = run(capsys, "history", "snapshots", "--history",
                         "postgresql://keeper:s3cret-pw@127.0.0.1:1/history")
    assert (code, out) == (1, "")
    assert err.startswith("Error: cannot open history store postgresql://keeper@127.0.0.1:1/history: ")
    assert err.endswith(": check the URL given to --history and that the server accepts connections\n")
    assert err.count("\n") == 1 and "s3cret-pw" not in err
