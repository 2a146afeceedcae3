"""connect(): safety settings, capabilities, and the DSN forms it accepts."""
import pandas as pd
import pytest
import sqlalchemy as sa

import vhdiag
import workload


def test_session_is_read_only_bounded_and_named(target):
    row = target.query("SELECT current_setting('transaction_read_only') AS ro,"
                       " current_setting('statement_timeout') AS st,"
                       " current_setting('lock_timeout') AS lt,"
                       " current_setting('application_name') AS app").iloc[0]
    assert (row["ro"], row["st"], row["lt"], row["app"]) == ("on", "5s", "100ms", "vhdiag")


def test_writes_are_refused(target):
    with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
        target.query("CREATE TABLE should_not_exist (x int)")


def test_statement_timeout_bounds_a_query(pg):
    t = vhdiag.connect(pg.dsn(), statement_timeout_ms=200)
    with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        t.query("SELECT pg_sleep(2)")


def test_capabilities(pg, target):
    caps = target.capabilities
    assert caps.major == pg.major
    assert caps.is_superuser and caps.reads_all_stats
    assert caps.pgss_preloaded and caps.pgss_schema == "public"
    assert caps.pgss_version == {18: "1.12", 15: "1.10"}[pg.major]
    assert caps.database == workload.DB
    assert caps.postmaster_start.tzinfo is not None
    assert caps.postmaster_start < pd.Timestamp.now(tz="UTC")


def test_env_reference_and_defaults(pg, monkeypatch):
    monkeypatch.setenv("MY_DB", pg.dsn())
    t = vhdiag.connect("env:MY_DB")
    assert t.reference == "env:MY_DB"
    monkeypatch.delenv("VHDIAG_DSN", raising=False)
    monkeypatch.setenv("DATABASE_URL", pg.dsn())
    assert vhdiag.connect().reference == "env:DATABASE_URL"
    monkeypatch.setenv("VHDIAG_DSN", pg.dsn())
    assert vhdiag.connect().reference == "env:VHDIAG_DSN"


def test_password_never_in_repr(pg):
    t = vhdiag.connect(pg.dsn())
    assert pg.server.password not in repr(t)
    assert pg.server.password not in t.display
    assert pg.server.password not in t.reference
    assert repr(t) == f"<vhdiag.Target postgres@127.0.0.1:{pg.server.port}/{workload.DB}>"


LIBPQ_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSERVICE",
             "PGSERVICEFILE")


@pytest.fixture
def clean_libpq_env(monkeypatch):
    for var in LIBPQ_ENV:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_display_follows_libpq_environment(pg, clean_libpq_env):
    monkeypatch = clean_libpq_env
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(pg.server.port))
    monkeypatch.setenv("PGDATABASE", workload.DB)
    monkeypatch.setenv("PGPASSWORD", pg.server.password)
    expected = f"postgres@127.0.0.1:{pg.server.port}/{workload.DB}"
    assert vhdiag.dsn.resolve("user=postgres").display == expected   # before connecting, too
    with vhdiag.connect("user=postgres") as t:
        assert t.capabilities.database == workload.DB
        assert t.display == expected
        assert t.reference == expected
        assert repr(t) == f"<vhdiag.Target {expected}>"
        for text in (t.display, t.reference, repr(t)):
            assert pg.server.password not in text


def test_display_before_connecting_honours_environment(clean_libpq_env):
    monkeypatch = clean_libpq_env
    monkeypatch.setenv("PGHOST", "db-a")
    monkeypatch.setenv("PGPORT", "6432")
    monkeypatch.setenv("PGDATABASE", "sales")
    assert vhdiag.dsn.resolve("user=monitor").display == "monitor@db-a:6432/sales"
    monkeypatch.setenv("PGUSER", "reporter")
    assert vhdiag.dsn.resolve("host=db-b").display == "reporter@db-b:6432/sales"
    # The DSN's own values win over the environment, as in libpq.
    assert vhdiag.dsn.resolve("postgresql://u@db-c:5433/app").display == "u@db-c:5433/app"
    monkeypatch.setenv("PGHOST", "/var/run/postgresql")
    assert vhdiag.dsn.resolve("user=monitor").display == "monitor@[socket /var/run/postgresql]:6432/sales"


def test_display_comes_from_the_live_connection(pg, clean_libpq_env, tmp_path):
    """A service file is resolved by libpq alone: only the connection knows where it went."""
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[vhdiag_test]\nhost=127.0.0.1\nport={pg.server.port}\ndbname={workload.DB}\n"
                        f"user=postgres\npassword={pg.server.password}\n")
    clean_libpq_env.setenv("PGSERVICEFILE", str(services))
    with vhdiag.connect("service=vhdiag_test") as t:
        assert t.display == f"postgres@127.0.0.1:{pg.server.port}/{workload.DB}"
        assert pg.server.password not in t.display + t.reference + repr(t)


def test_display_of_a_socket_connection(pg, clean_libpq_env):
    with vhdiag.connect(pg.dsn(via="socket")) as t:
        assert t.display == f"postgres@[socket {pg.server.socket_dir}]:{pg.server.port}/{workload.DB}"


def test_timeouts_hold_per_transaction_even_if_the_session_loses_them(pg):
    """Behind PgBouncer in transaction mode a session SET may not follow us: every transaction
    sets its own bounds (SET LOCAL semantics)."""
    t = vhdiag.connect(pg.dsn(), statement_timeout_ms=300)
    with t.engine.connect() as conn:  # simulate a server connection that never saw our SETs
        conn.connection.dbapi_connection.execute("RESET statement_timeout")
        conn.connection.dbapi_connection.commit()
    row = t.query("SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt").iloc[0]
    assert (row["st"], row["lt"]) == ("300ms", "100ms")
    t.close()


def test_vhdiag_adds_no_rollback_to_the_rollbacks_the_runbook_alerts_on(pg):
    """pg_stat_database.xact_rollback feeds the error-rate checks: vhdiag's read-only
    transactions end in COMMIT. With ROLLBACK (as before) this counted one per query."""
    from helpers import ensure_database, eventually
    ensure_database(pg, "rollback_probe")

    def counters():
        with pg.admin("postgres") as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            return conn.execute("SELECT xact_commit, xact_rollback FROM pg_stat_database "
                                "WHERE datname = 'rollback_probe'").fetchone()

    commits, rollbacks = counters()
    with vhdiag.connect(pg.dsn("rollback_probe")) as t:
        for _ in range(5):
            t.query("SELECT 1")
        t.database()
    # The sessions report their counters as they end: wait until their transactions show.
    after = eventually(counters, lambda c: c[0] + c[1] >= commits + rollbacks + 6, timeout=10)
    assert after[1] == rollbacks and after[0] >= commits + 6
