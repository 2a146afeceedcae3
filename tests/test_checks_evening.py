"""vhdiag check evening (issue 11): the error summary, pending maintenance and security-relevant
changes, on frames and on real servers with planted dead rows, a deadlock, md5, a new superuser
and a grant of pg_read_server_files."""
import threading

import pandas as pd
import psycopg
import pytest

from helpers import eventually, scratch_database
from vhdiag import checks
from vhdiag.checks import evening as E
from vhdiag.checks import security as S
from vhdiag.config import load_config, resolve_config

NOW = pd.Timestamp("2026-11-30T18:00:00Z")


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def _live(commits=1000, rollbacks=0, deadlocks=0, conflicts=0, temp_files=0, temp_bytes=0, days=2.0):
    return pd.DataFrame([{"database": "shop", "xact_commit": commits, "xact_rollback": rollbacks,
                          "deadlocks": deadlocks, "conflicts": conflicts, "temp_files": temp_files,
                          "temp_bytes": temp_bytes, "stats_reset": NOW - pd.Timedelta(days=days),
                          "server_start": NOW - pd.Timedelta(days=30)}])


# -- pure evaluation ------------------------------------------------------------------------------
def test_error_summary_from_the_live_counters_against_the_runbooks_error_rate():
    cfg = load_config()
    ok = E.evaluate_errors(E.error_rates(None, _live(rollbacks=5, temp_files=4, temp_bytes=2 * 1024 ** 3), NOW), cfg)
    assert (ok.check, ok.status, ok.fix) == ("errors.summary", "pass", "")
    assert ok.evidence == ("since the statistics reset (2.0 d, pg_stat_database; no history store series): "
                           "5 rollbacks (0.50 % of transactions, 2/day), 0 deadlocks (0.0/day), 1.0 GB/day in "
                           "temporary files, 0 recovery conflicts (0.0/day), 4 temporary files (2.0/day)")
    warn = E.evaluate_errors(E.error_rates(None, _live(rollbacks=20), NOW), cfg)            # 1.96 % > 1 %
    assert warn.status == "warn" and warn.fix.startswith("rollbacks over the runbook's error rate 1/5 %")
    assert E.evaluate_errors(E.error_rates(None, _live(rollbacks=60), NOW), cfg).status == "fail"   # 5.7 % > 5 %
    dead = E.evaluate_errors(E.error_rates(None, _live(deadlocks=1), NOW), cfg)
    assert dead.status == "warn" and dead.fix.startswith("deadlocks: ")
    loose = resolve_config({"checks": {"errors_max_per_day": 1.0}})
    assert E.evaluate_errors(E.error_rates(None, _live(deadlocks=1, conflicts=1), NOW), loose).status == "pass"
    assert E.evaluate_errors(E.error_rates(None, _live(conflicts=3), NOW), loose).fix.startswith("recovery conflicts")


def test_error_summary_prefers_the_history_stores_series():
    ts = pd.date_range(NOW - pd.Timedelta(hours=24), NOW, freq="6h", inclusive="right")
    series = pd.DataFrame({"ts": ts, "database": "shop", "interval_s": 6 * 3600.0, "commits": 990, "rollbacks": 10,
                           "deadlocks": [0, 1, 0, 0], "temp_bytes": 0})
    got = E.evaluate_errors(E.error_rates(series, _live(rollbacks=900, deadlocks=50, conflicts=2), NOW), load_config())
    assert got.evidence == ("last 24.0 h from the history store (4 snapshots): 40 rollbacks (1.00 % of transactions, "
                            "40/day), 1 deadlock (1.0/day), 0 B/day in temporary files; since the statistics reset "
                            "(2.0 d, pg_stat_database): 2 recovery conflicts (1.0/day), 0 temporary files (0.0/day)")
    assert got.status == "warn" and "deadlocks" in got.fix and "rollbacks" not in got.fix    # 1.00 % is not > 1 %


def _wrap(age, freeze=200_000_000):
    return pd.DataFrame([{"database": "shop", "xid_age": age, "autovacuum_freeze_max_age": freeze,
                          "wraparound_pct": 100 * age / 2147483647}])


def test_wraparound_against_freeze_max_age_and_the_capacity_limit():
    cfg, tables = load_config(), pd.DataFrame(columns=["schema", "table", "n_live_tup", "n_dead_tup",
                                                       "vacuum_threshold", "last_analyze", "last_autoanalyze",
                                                       "autovacuum_enabled", "suggestion"])
    ok = E.evaluate_maintenance(tables, _wrap(1_000_000), cfg)[2]
    assert (ok.status, ok.evidence) == ("pass", "oldest transaction ID age 1,000,000 in database shop: 0 % of "
                                        "autovacuum_freeze_max_age 200,000,000, 0.0 % of the wraparound limit "
                                        "(warning at 50 %)")
    assert E.evaluate_maintenance(tables, _wrap(250_000_000), cfg)[2].status == "warn"
    assert E.evaluate_maintenance(tables, _wrap(1_200_000_000), cfg)[2].status == "fail"


def test_security_settings_and_role_subjects():
    assert [(r.check, r.status) for r in S.evaluate_settings("off", "md5")] == [
        ("security.ssl", "warn"), ("security.password_encryption", "warn")]
    assert [r.status for r in S.evaluate_settings("on", "scram-sha-256")] == ["pass", "pass"]
    roles = pd.DataFrame([
        {"role": "admin", "superuser": True, "login": True, "valid_until": None, "pg_read_server_files": True,
         "pg_write_server_files": True, "pg_execute_server_program": True},
        {"role": "etl", "superuser": False, "login": True, "valid_until": NOW, "pg_read_server_files": True,
         "pg_write_server_files": False, "pg_execute_server_program": False},
        {"role": "readers", "superuser": False, "login": False, "valid_until": None, "pg_read_server_files": False,
         "pg_write_server_files": False, "pg_execute_server_program": True}])
    assert S.role_items(roles) == ["superuser admin", "login admin", "login etl", "pg_read_server_files etl",
                                   "pg_execute_server_program readers"]
    assert S.evaluate_expiry(roles, False).status == "pass"
    need = S.evaluate_expiry(roles, True)
    assert (need.status, need.items) == ("warn", ["admin"])


# -- real servers ----------------------------------------------------------------------------------
def _deadlock(dsn):
    """Two sessions that each hold the row the other wants: the server ends one with a deadlock."""
    a, b = psycopg.connect(dsn), psycopg.connect(dsn)
    errors = []

    def second(conn, i):
        try:
            conn.execute(f"UPDATE vh_clean SET v = 'x' WHERE id = {i}")
        except psycopg.errors.DeadlockDetected as exc:
            errors.append(exc)
    try:
        a.execute("UPDATE vh_clean SET v = 'a' WHERE id = 1")
        b.execute("UPDATE vh_clean SET v = 'b' WHERE id = 2")
        t = threading.Thread(target=second, args=(a, 2))
        t.start()
        second(b, 1)
        t.join(30)
    finally:
        a.rollback(), b.rollback(), a.close(), b.close()
    assert len(errors) == 1


def _stats(pg, db):
    with pg.admin(db) as conn:
        tables = dict(conn.execute("SELECT relname, n_dead_tup FROM pg_stat_user_tables").fetchall())
        deadlocks = conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return tables, deadlocks[0]


def test_evening_check_on_a_real_server(pg, tmp_path):
    db = f"vh_evening_{pg.id}"
    reader, boss = f"vh_ev_reader_{pg.id}", f"vh_ev_super_{pg.id}"
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    with scratch_database(pg, db):
        with pg.admin(db) as conn:
            for table in ("vh_dead", "vh_clean"):
                conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)")
                conn.execute(f"INSERT INTO {table} SELECT g, 'v' FROM generate_series(1, 2000) g")
        _deadlock(pg.dsn(db))
        with pg.admin(db) as conn:
            conn.execute("DELETE FROM vh_dead WHERE id <= 1000")
            conn.execute("DELETE FROM vh_clean WHERE id <= 1000")
            conn.execute(f"ALTER DATABASE {db} SET password_encryption = 'md5'")
        # The deletes' counts reach the statistics when their session ends; VACUUM's own report
        # must come after them, or the late flush would undo it.
        # (vh_clean also holds the rows the deadlocked updates left behind.)
        stats = eventually(lambda: _stats(pg, db), lambda s: s[0]["vh_dead"] == 1000 and s[0]["vh_clean"] >= 1000
                           and s[1] == 1)
        assert stats[0]["vh_dead"] == 1000 and stats[0]["vh_clean"] >= 1000 and stats[1] == 1
        with pg.admin(db) as conn:
            conn.execute("VACUUM (ANALYZE) vh_clean")
        assert eventually(lambda: _stats(pg, db), lambda s: s[0]["vh_clean"] == 0) == ({"vh_dead": 1000, "vh_clean": 0}, 1)

        first = {r.check: r for r in checks.run("evening", target=pg.dsn(db), history=url, target_name="ev").results}
        assert list(first)[-8:] == ["errors.summary", "maintenance.vacuum", "maintenance.analyze",
                                    "maintenance.wraparound", "security.roles", "security.ssl",
                                    "security.password_encryption", "security.password_expiry"]
        vac = first["maintenance.vacuum"]
        assert (vac.status, vac.items) == ("warn", ["public.vh_dead"])          # vh_clean was just vacuumed
        assert vac.evidence == "1 tables over the autovacuum trigger: public.vh_dead 1,000 dead rows (trigger 50, autovacuum off)"
        assert vac.fix.startswith("autovacuum is behind or off there: run by hand VACUUM (ANALYZE) public.vh_dead;")
        assert (first["maintenance.analyze"].status, first["maintenance.analyze"].items) == ("warn", ["public.vh_dead"])
        assert first["maintenance.wraparound"].status == "pass"
        errors = first["errors.summary"]
        assert errors.evidence.startswith("since the statistics reset (") and "no history store series" in errors.evidence
        assert ", 1 deadlock (" in errors.evidence and "deadlocks: " in errors.fix and errors.status != "pass"
        assert (first["security.ssl"].status, first["security.ssl"].evidence) == (
            "warn", "ssl = off: passwords and data cross the network in clear")
        assert first["security.password_encryption"].status == "warn"
        assert "md5" in first["security.password_encryption"].evidence
        assert first["security.password_expiry"].status == "pass"
        assert first["security.roles"].status == "warn" and "(first check: no previous one)" in first["security.roles"].evidence
        assert not any(reader in i or boss in i for i in first["security.roles"].items)

        with pg.admin("postgres") as conn:
            conn.execute(f"CREATE ROLE {boss} SUPERUSER")
            conn.execute(f"CREATE ROLE {reader} LOGIN")
            conn.execute(f"GRANT pg_read_server_files TO {reader}")
        try:
            # A morning run in between has no security checks: the evening compares with the previous evening.
            checks.run("morning", target=pg.dsn(db), history=url, target_name="ev")
            again = {r.check: r for r in checks.run("evening", target=pg.dsn(db), history=url, target_name="ev",
                                                    config={"checks": {"require_password_expiry": True}}).results}
            roles = again["security.roles"]
            assert roles.new == [f"login {reader}", f"pg_read_server_files {reader}", f"superuser {boss}"]
            assert roles.status == "warn" and roles.evidence.startswith(
                "3 new superusers, logins or server-file grants since the previous check: ")
            assert reader in again["security.password_expiry"].items and again["security.password_expiry"].status == "warn"
            assert again["maintenance.vacuum"].items == ["public.vh_dead"]
        finally:
            with pg.admin("postgres") as conn:
                conn.execute(f"DROP ROLE IF EXISTS {boss}")
                conn.execute(f"DROP ROLE IF EXISTS {reader}")


def test_morning_has_none_of_the_evening_checks(pg, tmp_path):
    run = checks.run("morning", target=pg.dsn(), history=str(tmp_path / "h.sqlite"), record=False)
    assert not [r.check for r in run.results if r.check.split(".")[0] in ("errors", "maintenance", "security")]
