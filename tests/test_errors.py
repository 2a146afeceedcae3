"""Each way a connection or a capability can fail gives one line that names the fix.

Every failure is produced for real: a wrong password, a closed port, a missing database,
a database without the extension, a server started without the preload.
"""
import pytest

import vhdiag
from vhdiag.errors import CapabilityError, ConfigError, ConnectError
from vhdiag.server import free_port

import workload

HINT = "expected postgresql://user:password@host:5432/dbname or 'host=... dbname=...'"


@pytest.mark.parametrize("dsn, message", [
    ("not a dsn", f"malformed DSN: {HINT}"),
    ("mysql://root@localhost/db", f"malformed DSN: {HINT}"),
    ("postgresql://u:pw@localhost:abc/db", f"malformed DSN (port must be a number): {HINT}"),
    ("host=localhost dbname", f'malformed DSN (missing "=" after "dbname" in connection info string): {HINT}'),
    ("postgresql://u:Sup3rSecret@[bad", "malformed DSN (end of string reached when looking for matching \"]\" "
                                        f"in IPv6 host address in URI: \"postgresql://u:***@[bad\"): {HINT}"),
])
def test_malformed_dsn(dsn, message):
    with pytest.raises(ConfigError) as err:
        vhdiag.connect(dsn)
    assert str(err.value) == message


def test_missing_environment_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_DSN_VAR", raising=False)
    with pytest.raises(ConfigError) as err:
        vhdiag.connect("env:NO_SUCH_DSN_VAR")
    assert str(err.value) == ("environment variable NO_SUCH_DSN_VAR is not set or empty: "
                              "export NO_SUCH_DSN_VAR=postgresql://user@host/db")


def test_no_target_at_all(monkeypatch):
    monkeypatch.delenv("VHDIAG_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigError) as err:
        vhdiag.connect()
    assert str(err.value) == ("no database given: pass --dsn postgresql://user@host/db, "
                              "or set VHDIAG_DSN or DATABASE_URL")


def test_closed_port():
    port = free_port()  # nothing listens there once the probe socket is closed
    with pytest.raises(ConnectError) as err:
        vhdiag.connect(f"postgresql://postgres:pw@127.0.0.1:{port}/postgres")
    assert str(err.value) == (f"cannot reach 127.0.0.1:{port}: is PostgreSQL running there and accepting "
                              "connections (listen_addresses, port)?")


def test_wrong_password(pg):
    wrong = "Not-The-Password-93"
    with pytest.raises(ConnectError) as err:
        vhdiag.connect(pg.dsn(password=wrong))
    message = str(err.value)
    assert message == (f"authentication failed for postgres@127.0.0.1:{pg.server.port}/{workload.DB}: "
                       "check the user and password (in the DSN, PGPASSWORD or ~/.pgpass) and pg_hba.conf")
    assert wrong not in message and wrong not in repr(err.value)


def test_database_does_not_exist(pg):
    with pytest.raises(ConnectError) as err:
        vhdiag.connect(pg.dsn("no_such_db"))
    assert str(err.value) == (f'database "no_such_db" does not exist on 127.0.0.1:{pg.server.port}: '
                              "check the database name in the DSN (psql -l lists them)")


def test_extension_not_installed(pg):
    with vhdiag.connect(pg.dsn(workload.NOPGSS_DB)) as target:
        assert target.capabilities.pgss_version is None
        with pytest.raises(CapabilityError) as err:
            target.statements()
    assert str(err.value) == (f"pg_stat_statements is not installed in database {workload.NOPGSS_DB}: "
                              "run CREATE EXTENSION pg_stat_statements; as a superuser")


@pytest.fixture(scope="module")
def nopreload(servers):
    """A server started without shared_preload_libraries, the extension created anyway."""
    server = servers.extra("nopreload", preload_pgss=False)
    with server.admin() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return server


def test_extension_not_preloaded(nopreload):
    with vhdiag.connect(nopreload.dsn()) as target:
        assert target.capabilities.pgss_version is not None
        assert not target.capabilities.pgss_preloaded
        with pytest.raises(CapabilityError) as err:
            target.statements()
    assert str(err.value) == ("pg_stat_statements is installed but not preloaded: add it to "
                              "shared_preload_libraries in postgresql.conf and restart the server")


AT_PASSWORD = "Tr0ub@dor-horse"
AT_MESSAGE = ("malformed DSN (the password contains '@'): percent-encode it as %40, "
              "e.g. postgresql://user:p%40ss@host/db")


@pytest.mark.parametrize("dsn", [
    f"postgresql://monitor:{AT_PASSWORD}@db.internal/app",
    f"postgres://monitor:{AT_PASSWORD}@db.internal:5432/app?sslmode=require",
    f"postgresql+psycopg://monitor:{AT_PASSWORD}@db.internal",
])
def test_raw_at_sign_in_password(dsn, monkeypatch):
    with pytest.raises(ConfigError) as err:
        vhdiag.connect(dsn)
    assert str(err.value) == AT_MESSAGE
    monkeypatch.setenv("AT_DSN", dsn)
    with pytest.raises(ConfigError) as err:
        vhdiag.connect("env:AT_DSN")
    assert str(err.value) == AT_MESSAGE
    for part in ("Tr0ub", "dor-horse"):
        assert part not in str(err.value) and part not in repr(err.value)


def test_percent_encoded_at_sign_is_accepted():
    resolved = vhdiag.dsn.resolve("postgresql://monitor:Tr0ub%40dor-horse@db.internal/app")
    assert resolved.password == AT_PASSWORD
    assert resolved.display == "monitor@db.internal:5432/app"
    assert "Tr0ub" not in resolved.reference and "horse" not in resolved.reference


def test_scrub_guess_hides_a_password_holding_at_signs():
    from vhdiag.dsn import _scrub_guess
    dsn = f"postgresql://monitor:{AT_PASSWORD}@[bad"
    message = f'end of string reached when looking for matching "]" in IPv6 host address in URI: "{dsn}"'
    scrubbed = _scrub_guess(message, dsn)
    assert scrubbed == ('end of string reached when looking for matching "]" in IPv6 host address in URI: '
                        '"postgresql://monitor:***@[bad"')
    assert "Tr0ub" not in scrubbed and "horse" not in scrubbed


@pytest.mark.parametrize("option, value, message", [
    ("statement_timeout_ms", 0, "statement_timeout_ms must be at least 1 (vhdiag never runs unbounded queries): "
                                "pass --statement-timeout-ms 5000"),
    ("statement_timeout_ms", -5, "statement_timeout_ms must be at least 1 (vhdiag never runs unbounded queries): "
                                 "pass --statement-timeout-ms 5000"),
    ("lock_timeout_ms", 0, "lock_timeout_ms must be at least 1 (vhdiag never waits unbounded for a lock): "
                           "pass lock_timeout_ms=100"),
    ("connect_timeout_s", 0, "connect_timeout_s must be at least 1 (vhdiag never waits unbounded for a "
                             "connection): pass connect_timeout_s=5"),
])
def test_unbounded_timeouts_are_refused(option, value, message):
    port = free_port()  # refused before any connection is tried
    with pytest.raises(ConfigError) as err:
        vhdiag.connect(f"postgresql://postgres:pw@127.0.0.1:{port}/postgres", **{option: value})
    assert str(err.value) == message


def test_unbounded_statement_timeout_through_cli(capsys):
    from vhdiag import cli
    code = cli.main(["show", "tables", "--dsn", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
                     "--statement-timeout-ms", "0"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == ("Error: statement_timeout_ms must be at least 1 (vhdiag never runs unbounded queries): "
                   "pass --statement-timeout-ms 5000\n")
