"""`vhdiag history check` (issue 13, "Robustness tests"): is the store sound after a fault?

A sound store exits 0 with one line saying what it holds; gaps and an older schema are
information; every problem (a damaged file, orphan rows, a newer or missing schema version, a
missing column, an invalid index) is one line and exit 1. The check writes nothing: the file's
bytes stay the same. Damage is done by hand here, to real stores written by real snapshots.
"""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

import vhdiag
from vhdiag import cli
from vhdiag.history import History
from vhdiag.history import schema as S
from vhdiag.history.check import check

from helpers import scratch_database

DB = "store_check"


@pytest.fixture(scope="module")
def target_dsn(servers):
    """A database of its own on PostgreSQL 18 (the store's soundness does not depend on the
    monitored server's version)."""
    pg = servers.get("pg18")
    with pg.admin("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f"CREATE DATABASE {DB}")
            with pg.admin(DB) as db:
                db.execute("CREATE EXTENSION pg_stat_statements")
                db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    return pg.dsn(DB)


@pytest.fixture(scope="module")
def pristine(target_dsn, tmp_path_factory) -> Path:
    """A store of three real snapshots; tests damage copies of it."""
    path = tmp_path_factory.mktemp("pristine") / "h.sqlite"
    with vhdiag.connect(target_dsn) as target, History(str(path)) as history:
        for _ in range(3):
            history.snapshot(target, "shop")
    return path


@pytest.fixture
def store(pristine, tmp_path) -> Path:
    path = tmp_path / "h.sqlite"
    path.write_bytes(pristine.read_bytes())
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sql(path, *statements):
    """Statements through a plain sqlite3 connection: no foreign keys enforced (a hand edit)."""
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def sound(path, snapshots=3, targets=1) -> str:
    return (f"history store {path} is sound: schema version {S.SCHEMA_VERSION}, "
            f"{snapshots} snapshot(s) of {targets} target(s)\n")


def test_a_sound_store_exits_0_and_the_check_writes_nothing(store, capsys):
    before = sha256(store)
    assert run(capsys, "history", "check", "--history", store) == (0, sound(store), "")
    assert sha256(store) == before


def test_gaps_are_information_against_the_usual_interval(store, capsys, tmp_path):
    # Snapshots every 15 minutes, then nothing for 2 hours: 8 times the usual, over gap_factor 3.
    times = ["2026-11-29T10:00:00", "2026-11-29T10:15:00", "2026-11-29T10:30:00", "2026-11-29T12:30:00",
             "2026-11-29T12:45:00"]
    ids = [r[0] for r in sqlite3.connect(store).execute("SELECT id FROM snapshots ORDER BY id")]
    sql(store, *[f"UPDATE snapshots SET ts = '{ts}.000000' WHERE id = {i}" for i, ts in zip(ids, times)],
        *[f"INSERT INTO snapshots (target_id, ts, events, notes) VALUES (1, '{ts}.000000', '', '')"
          for ts in times[len(ids):]])
    gap = "info: gap: shop: no snapshot from 2026-11-29T10:30:00Z to 2026-11-29T12:30:00Z (2h; usually 15m)\n"
    assert run(capsys, "history", "check", "--history", store) == (0, gap + sound(store, 5), "")
    # A wider factor in vhdiag.toml: no gap.
    config = tmp_path / "vhdiag.toml"
    config.write_text("[history]\ngap_factor = 10.0\n")
    assert run(capsys, "history", "check", "--history", store, "--config", config) == (0, sound(store, 5), "")
    config.write_text("[history]\ngap_factor = 0.5\n")
    assert run(capsys, "history", "check", "--history", store, "--config", config) == (1, "", (
        f"Error: {config}: history.gap_factor = 0.5 must be above 1 (an interval this many times the usual one "
        "is a gap), e.g. gap_factor = 3.0\n"))


def test_orphan_rows_are_one_line_per_foreign_key(store, capsys):
    sql(store,
        "INSERT INTO table_stats (snapshot_id, schema, \"table\", size_skipped) VALUES (999, 'public', 'ghost', 0)",
        "INSERT INTO table_stats (snapshot_id, schema, \"table\", size_skipped) VALUES (998, 'public', 'ghost', 0)",
        "INSERT INTO statement_deltas (snapshot_id, statement_id, complete, note) VALUES (1, 987654321, 1, '')")
    before = sha256(store)
    assert run(capsys, "history", "check", "--history", store) == (1, (
        "problem: orphan rows: 1 row(s) of statement_deltas name a statements.id that does not exist (e.g. 987654321): "
        "a write that bypassed vhdiag; delete them or restore the store\n"
        "problem: orphan rows: 2 row(s) of table_stats name a snapshots.id that does not exist (e.g. 998): "
        "a write that bypassed vhdiag; delete them or restore the store\n"), "")
    assert sha256(store) == before


def test_a_newer_or_missing_schema_version_is_a_problem_an_older_one_information(store, capsys):
    sql(store, "UPDATE vhdiag_meta SET value = '99' WHERE key = 'schema_version'")
    assert run(capsys, "history", "check", "--history", store) == (1, (
        f"problem: schema version 99 is newer than this vhdiag's {S.SCHEMA_VERSION}: upgrade vhdiag "
        "(pip install -U vhdiag) before checking or writing it\n"), "")
    sql(store, f"UPDATE vhdiag_meta SET value = '{S.SCHEMA_VERSION - 1}' WHERE key = 'schema_version'")
    assert run(capsys, "history", "check", "--history", store) == (0, (
        f"info: schema version {S.SCHEMA_VERSION - 1}, older than this vhdiag's {S.SCHEMA_VERSION}: the next "
        f"vhdiag snapshot upgrades it\n"
        f"history store {store} is sound: schema version {S.SCHEMA_VERSION - 1}, 3 snapshot(s) of 1 target(s)\n"),
        "")
    sql(store, "DELETE FROM vhdiag_meta WHERE key = 'schema_version'")
    assert run(capsys, "history", "check", "--history", store) == (1, (
        f"problem: {store} records no schema version (no vhdiag_meta row 'schema_version'): it is not a "
        "vhdiag history store, or that row was deleted\n"), "")


def test_a_missing_table_is_a_problem(store, capsys):
    sql(store, "DROP TABLE activity_counts")
    assert run(capsys, "history", "check", "--history", store) == (
        1, "problem: table activity_counts is missing: restore the store from a backup\n", "")


def test_a_truncated_sqlite_file_is_a_problem(store, capsys):
    size = store.stat().st_size
    assert size > 8 * 4096          # several pages: the header survives, the rest does not
    with open(store, "r+b") as fh:
        fh.truncate(size // 2)
    code, out, err = run(capsys, "history", "check", "--history", store)
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines and all(line.startswith(f"problem: integrity: {store}: ") for line in lines), out
    # The header itself overwritten: not an SQLite database any more.
    with open(store, "r+b") as fh:
        fh.write(b"\0" * 100)
    assert run(capsys, "history", "check", "--history", store) == (1, (
        f"problem: {store} is not an SQLite database (its header is damaged or it is another kind of file): "
        "restore the store from a backup\n"), "")


def test_missing_and_empty_stores_are_one_error_line(tmp_path, capsys):
    missing = tmp_path / "none.sqlite"
    assert run(capsys, "history", "check", "--history", missing) == (
        1, "", f"Error: there is no history store at {missing} yet: vhdiag snapshot creates it\n")
    assert not missing.exists()
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    assert run(capsys, "history", "check", "--history", empty) == (
        1, "", f"Error: there is no history store at {empty} yet: vhdiag snapshot creates it\n")


def test_postgresql_store_sound_then_orphans_and_an_invalid_index(pg, target_dsn, capsys):
    with scratch_database(pg, "check_store") as name:
        url = pg.dsn(name)
        with vhdiag.connect(target_dsn) as target, History(url) as history:
            history.snapshot(target, "shop")
            history.snapshot(target, "shop")
        location = check(url).location
        assert run(capsys, "history", "check", "--history", url) == (
            0, f"history store {location} is sound: schema version {S.SCHEMA_VERSION}, "
               "2 snapshot(s) of 1 target(s)\n", "")
        with pg.admin(name) as conn:
            conn.execute("SET session_replication_role = replica")     # foreign keys not enforced
            conn.execute("INSERT INTO database_stats (snapshot_id, database) VALUES (4242, 'ghost')")
            # An index left invalid, as by an interrupted CREATE INDEX CONCURRENTLY.
            conn.execute("UPDATE pg_index SET indisvalid = false "
                         "WHERE indexrelid = 'snapshots_target_ts'::regclass")
        assert run(capsys, "history", "check", "--history", url) == (1, (
            "problem: index snapshots_target_ts is invalid (an interrupted build): REINDEX INDEX "
            "snapshots_target_ts in the store's database\n"
            "problem: orphan rows: 1 row(s) of database_stats name a snapshots.id that does not exist "
            "(e.g. 4242): a write that bypassed vhdiag; delete them or restore the store\n"), "")
