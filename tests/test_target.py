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
