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
