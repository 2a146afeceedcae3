"""The statements collector (pg_stat_statements) against real servers and the planted workload.

Versions with no server here (extension 1.4 to 1.9 and 1.11) are checked against their
recorded column lists: the OUT columns of ``pg_stat_statements(showtext)`` read from the
extension's own install/upgrade scripts in the embedded PostgreSQL, recreated as tables in a
scratch database, one schema per version, and read by the collector's exact SQL.
"""
import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest

import vhdiag
import workload
from vhdiag.collect import _base, statements
from vhdiag.binaries import embedded_bin_dir

SEQ_QUERY = workload.SEQ_QUERY
CHEAP_QUERY = "SELECT amount FROM orders WHERE id = $1"
SLEEP_QUERY = "SELECT pg_sleep($1)"
RECORDED_DB = "vh_pgss_recorded"


def _planted(df: pd.DataFrame, query: str) -> pd.Series:
    rows = df[(df["query"] == query) & (df["user"] == workload.APP_USER) & (df["database"] == workload.DB)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# -- the planted workload ---------------------------------------------------------------------
def test_planted_statements_have_exact_counts(pg, target):
    df = statements.collect(target)

    seq = _planted(df, SEQ_QUERY)
    assert seq["calls"] == workload.SEQ_QUERY_CALLS
    assert seq["rows"] == workload.SEQ_QUERY_CALLS  # count(*) returns one row per call
    assert seq["database"] == workload.DB
    assert seq["toplevel"] == True  # noqa: E712 (a numpy bool)
    assert not seq["query_hidden"] and not pd.isna(seq["queryid"])
    with pg.admin() as conn:
        relpages = conn.execute("SELECT relpages FROM pg_class WHERE oid = 'orders'::regclass").fetchone()[0]
    assert relpages > 100
    # No index on customer_id: every call reads the whole table (from cache or disk).
    assert seq["shared_blks_hit"] + seq["shared_blks_read"] >= workload.SEQ_QUERY_CALLS * relpages
    assert seq["total_exec_ms"] == pytest.approx(seq["mean_exec_ms"] * seq["calls"], rel=1e-6)
    assert seq["min_exec_ms"] <= seq["mean_exec_ms"] <= seq["max_exec_ms"]

    sleep = _planted(df, SLEEP_QUERY)
    assert sleep["calls"] == workload.SLEEP_QUERY_CALLS
    assert sleep["mean_exec_ms"] >= 50
    assert sleep["min_exec_ms"] >= 50
    assert sleep["total_exec_ms"] >= 50 * workload.SLEEP_QUERY_CALLS

    cheap = _planted(df, CHEAP_QUERY)
    assert cheap["calls"] == workload.CHEAP_QUERY_CALLS
    # ids 1..499 exist, id 500 too: every primary-key lookup returns one row.
    assert cheap["rows"] == workload.CHEAP_QUERY_CALLS

    # As superuser nothing is hidden, and nobody is told to grant anything.
    assert not df["query_hidden"].any()
    assert df["queryid"].notna().all()
    assert target.notices == {}


def test_columns_and_dtypes_are_the_same_on_every_server(pg, target):
    df = statements.collect(target)
    assert list(df.columns) == list(statements.COLUMNS)
    for name, kind in statements.COLUMNS.items():
        assert str(df[name].dtype) == str(pd.Series([], dtype=_base.DTYPES[kind]).dtype), name
    assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0
    for name in ("stats_since", "minmax_stats_since"):
        assert str(df[name].dt.tz) == "UTC"
    start = target.capabilities.postmaster_start
    if pg.major >= 17:  # extension 1.11+
        assert df["stats_since"].notna().all()
        assert (df["stats_since"] >= start).all()
        assert (df["stats_since"] <= pd.Timestamp.now(tz="UTC")).all()
    else:
        assert df["stats_since"].isna().all()
        assert df["local_blk_read_ms"].isna().all()
    # 1.10+ on both servers here: temp I/O time, JIT, toplevel, plan columns are filled.
    assert df["toplevel"].notna().all() and df["plans"].notna().all()
    assert df["temp_blk_read_ms"].notna().all() and df["jit_functions"].notna().all()
    assert df["wal_buffers_full"].notna().all() == (pg.major >= 18)


def test_info_reports_no_deallocation_and_the_reset(pg, target):
    info = statements.collect_info(target)
    assert list(info.columns) == list(statements.INFO_COLUMNS)
    assert [str(t) for t in info.dtypes] == ["Int64", "datetime64[ns, UTC]"]
    assert len(info) == 1
    # workload.build() reset pg_stat_statements after the server started; max = 10000 is
    # far above what the tests create, so nothing was evicted.
    assert info["dealloc"].iloc[0] == 0
    assert target.capabilities.postmaster_start <= info["stats_reset"].iloc[0] <= pd.Timestamp.now(tz="UTC")


# -- degraded mode ----------------------------------------------------------------------------
SETTINGS_READER = "vh_stmt_settings_reader"   # created here: pg_read_all_settings, not pg_read_all_stats


@pytest.fixture
def settings_reader(pg):
    """A login role that may read settings but not others' statements; dropped afterwards."""
    password = "settings-Reader-7"
    with pg.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {SETTINGS_READER}")
        conn.execute(f"CREATE ROLE {SETTINGS_READER} LOGIN PASSWORD '{password}' IN ROLE pg_read_all_settings")
    yield SETTINGS_READER, password
    with pg.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {SETTINGS_READER}")


def _check_hidden(pg, user: str, password: str) -> None:
    t = vhdiag.connect(pg.dsn(user=user, password=password))
    try:
        assert not t.capabilities.reads_all_stats
        t.query("SELECT 4141 AS lowpriv_marker")
        df = statements.collect(t)
        statements.collect(t)  # a second snapshot does not repeat the notice
    finally:
        t.close()

    app = df[(df["user"] == workload.APP_USER) & (df["database"] == workload.DB)]
    assert sorted(app["calls"]) == sorted([workload.SEQ_QUERY_CALLS, workload.CHEAP_QUERY_CALLS,
                                           workload.SLEEP_QUERY_CALLS])
    assert app["query_hidden"].all()
    assert app["queryid"].isna().all()
    assert not app["query"].str.contains("orders").any()
    assert (app["query"] == "<insufficient privilege>").all()
    assert (app["database"] == workload.DB).all()
    # The counters are still there: the sequential scan is the one with 25 calls and 25 rows.
    seq = app[app["calls"] == workload.SEQ_QUERY_CALLS].iloc[0]
    assert seq["rows"] == workload.SEQ_QUERY_CALLS

    own = df[(df["query"] == "SELECT $1 AS lowpriv_marker") & (df["user"] == user)]
    assert len(own) == 1
    assert not own["query_hidden"].iloc[0] and not pd.isna(own["queryid"].iloc[0])

    assert list(t.notices) == ["pgss_hidden"]
    assert t.notices["pgss_hidden"] == (
        f"role {user} sees the query text and queryid of its own statements only: "
        f"run GRANT pg_read_all_stats TO {user}; as a superuser to see all of them")


def test_lowpriv_role_gets_counters_but_not_others_text(pg):
    _check_hidden(pg, workload.LOWPRIV_USER, workload.LOWPRIV_PASSWORD)


def test_role_without_read_all_stats_gets_counters_but_not_others_text(pg, settings_reader):
    _check_hidden(pg, *settings_reader)


def test_statements_of_a_dropped_role_keep_their_counters(pg, target, settings_reader):
    user, password = settings_reader
    with vhdiag.connect(pg.dsn(user=user, password=password)) as t:
        t.query("SELECT 4242 AS dropped_role_marker")
        userid = int(t.query("SELECT oid FROM pg_roles WHERE rolname = current_user")["oid"].iloc[0])
    with pg.admin() as conn:
        conn.execute(f"DROP ROLE {user}")
    df = statements.collect(target)
    row = df[df["query"] == "SELECT $1 AS dropped_role_marker"]
    assert len(row) == 1
    assert row["userid"].iloc[0] == userid and pd.isna(row["user"].iloc[0])
    assert row["calls"].iloc[0] == 1 and row["database"].iloc[0] == workload.DB


def test_missing_extension_raises_with_the_fix(pg):
    t = vhdiag.connect(pg.dsn(workload.NOPGSS_DB))
    try:
        for fn in (statements.collect, statements.collect_info):
            with pytest.raises(vhdiag.CapabilityError) as err:
                fn(t)
            assert str(err.value) == (f"pg_stat_statements is not installed in database {workload.NOPGSS_DB}: "
                                      "run CREATE EXTENSION pg_stat_statements; as a superuser")
    finally:
        t.close()


def test_not_preloaded_raises_with_the_fix(servers):
    server = servers.extra("statements-nopreload", preload_pgss=False)
    try:
        with server.admin() as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        t = vhdiag.connect(server.dsn())
        try:
            with pytest.raises(vhdiag.CapabilityError, match="^pg_stat_statements is installed but not "
                               "preloaded: add it to shared_preload_libraries"):
                statements.collect(t)
        finally:
            t.close()
    finally:
        server.stop("immediate")


# -- the version ladder -----------------------------------------------------------------------
@pytest.mark.parametrize("version, name", [
    ((1, 3), "statements"), ((1, 7), "statements"), ((1, 8), "statements_post_108"),
    ((1, 9), "statements_post_109"), ((1, 10), "statements_post_110"),
    ((1, 11), "statements_post_111"), ((1, 12), "statements_post_112"),
    ((1, 13), "statements_post_112"), ((2, 0), "statements_post_112"),
])
def test_ladder_picks_sql_by_extension_version(version, name):
    assert statements.sql_name(version) == name
    assert statements.query_for(version, "public") == (
        _base.load_sql(name).replace("{pgss}", '"public"'))


def test_too_old_extension_names_the_fix():
    with pytest.raises(vhdiag.CapabilityError, match=r"^pg_stat_statements 1\.2 is older than vhdiag "
                       r"reads \(1\.3\+\): run ALTER EXTENSION pg_stat_statements UPDATE;"):
        statements.query_for((1, 2), "public")


def test_schema_is_quoted():
    sql = statements.query_for((1, 12), 'odd "schema"')
    assert 'FROM "odd ""schema""".pg_stat_statements AS s' in sql
    assert "{pgss}" not in sql


def test_sql_files_open_with_what_changed():
    for path in sorted(_base.SQL_DIR.glob("statements*.sql")):
        first = path.read_text().splitlines()[0]
        assert re.match(r"-- pg_stat_statements(_info,)? .*\(PostgreSQL \d", first), path.name


# -- recorded column lists of versions with no server here ------------------------------------
EXTENSION_DIR = embedded_bin_dir().parent / "share" / "extension"
_FUNCTION = re.compile(r"CREATE FUNCTION pg_stat_statements\(IN showtext boolean,(.*?)\)\s*RETURNS SETOF record",
                       re.S)
_INFO_FUNCTION = re.compile(r"CREATE FUNCTION pg_stat_statements_info\((.*?)\)\s*RETURNS record", re.S)


def _script_version(path: Path) -> tuple[int, int]:
    # pg_stat_statements--1.4.sql installs 1.4; pg_stat_statements--1.7--1.8.sql updates to 1.8
    major, minor = path.name.removesuffix(".sql").split("--")[-1].split(".")
    return int(major), int(minor)


def _out_columns(block: str) -> list[tuple[str, str]]:
    cols = []
    for line in block.splitlines():
        line = line.strip().rstrip(",")
        if line.startswith("OUT "):
            _, name, typ = line.split(maxsplit=2)
            cols.append((name, typ))
    return cols


def recorded_columns(version: tuple[int, int], pattern: re.Pattern = _FUNCTION) -> list[tuple[str, str]]:
    """The view's columns at ``version``: from the newest script up to it that defines them."""
    scripts = sorted((p for p in EXTENSION_DIR.glob("pg_stat_statements--*.sql")
                      if _script_version(p) <= version), key=_script_version, reverse=True)
    for path in scripts:
        m = pattern.search(path.read_text())
        if m:
            return _out_columns(m.group(1))
    raise LookupError(f"no script defines the columns of pg_stat_statements {version}")


def test_recorded_column_lists_parse():
    # Counts of OUT columns per version, as the scripts define them (a check on the parser).
    counts = {v: len(recorded_columns(v)) for v in [(1, 4), (1, 7), (1, 8), (1, 9), (1, 10), (1, 11), (1, 12)]}
    assert counts == {(1, 4): 23, (1, 7): 23, (1, 8): 32, (1, 9): 33, (1, 10): 43, (1, 11): 49, (1, 12): 52}
    assert recorded_columns((1, 9), _INFO_FUNCTION) == [("dealloc", "bigint"),
                                                        ("stats_reset", "timestamp with time zone")]


def test_recorded_columns_match_the_installed_view(pg, target):
    # The parser agrees with the real view where a server has that version (1.12 and 1.10).
    installed = target.query(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = 'public.pg_stat_statements'::regclass"
        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")["attname"].tolist()
    assert installed == [name for name, _ in recorded_columns(target.capabilities.pgss_version_tuple)]


# Names the frame gives a view column, where it is not the view's name with _time -> _ms.
RENAMED = {
    "total_time": "total_exec_ms", "min_time": "min_exec_ms", "max_time": "max_exec_ms",
    "mean_time": "mean_exec_ms", "stddev_time": "stddev_exec_ms",
    "blk_read_time": "shared_blk_read_ms", "blk_write_time": "shared_blk_write_ms",
}


def frame_name(view_column: str) -> str:
    return RENAMED.get(view_column, re.sub(r"_time$", "_ms", view_column))


@pytest.fixture(scope="module")
def recorded_db(pg):
    """A scratch database (so the planted one keeps its exact tables), dropped afterwards."""
    with pg.admin("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {RECORDED_DB}")
        conn.execute(f"CREATE DATABASE {RECORDED_DB}")
        ids = conn.execute("SELECT (SELECT oid FROM pg_roles WHERE rolname = %s),"
                           " (SELECT oid FROM pg_database WHERE datname = %s)",
                           (workload.APP_USER, workload.DB)).fetchone()
    yield {"userid": ids[0], "dbid": ids[1]}
    with pg.admin("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {RECORDED_DB} WITH (FORCE)")


def _value(i: int, name: str, typ: str, known: dict):
    if name in known:
        return known[name]
    if typ in ("int8", "bigint", "numeric"):
        return 1000 + i
    if typ == "float8":
        return i + 0.25
    if typ == "bool":
        return False  # toplevel: false, so a null would not pass for it
    if typ == "timestamp with time zone":
        return pd.Timestamp("2026-02-03 04:05:06", tz="UTC") + pd.Timedelta(minutes=i)
    raise AssertionError(f"no test value for {name} {typ}")


@pytest.mark.parametrize("version", [(1, 4), (1, 7), (1, 8), (1, 9), (1, 10), (1, 11), (1, 12)],
                         ids=lambda v: f"{v[0]}.{v[1]}")
def test_recorded_version_maps_every_column(pg, recorded_db, version):
    schema = f"pgss_{version[0]}_{version[1]}"
    columns = recorded_columns(version)
    known = dict(recorded_db, queryid=-4242424242, query=f"SELECT recorded FROM v{version[0]}_{version[1]}")
    values = [_value(i, name, typ, known) for i, (name, typ) in enumerate(columns)]
    with pg.admin(RECORDED_DB) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.pg_stat_statements ("
                     + ", ".join(f"{n} {t}" for n, t in columns) + ")")
        conn.execute(f"INSERT INTO {schema}.pg_stat_statements VALUES ("
                     + ", ".join(["%s"] * len(values)) + ")", values)
        if version >= statements.INFO_VERSION:
            info_cols = recorded_columns(version, _INFO_FUNCTION)
            conn.execute(f"CREATE TABLE {schema}.pg_stat_statements_info ("
                         + ", ".join(f"{n} {t}" for n, t in info_cols) + ")")
            conn.execute(f"INSERT INTO {schema}.pg_stat_statements_info VALUES (7, '2026-01-02 03:04:05+00')")

    # A real Target on the scratch database, told the extension is this version in that schema.
    t = vhdiag.connect(pg.dsn(RECORDED_DB))
    try:
        t.capabilities = dataclasses.replace(t.capabilities, pgss_version=f"{version[0]}.{version[1]}",
                                             pgss_schema=schema)
        df = statements.collect(t)
        info = statements.collect_info(t)
    finally:
        t.close()

    assert list(df.columns) == list(statements.COLUMNS) and len(df) == 1
    row = df.iloc[0]
    filled = set()
    for (name, _), value in zip(columns, values):
        col = frame_name(name)
        assert col in statements.COLUMNS, f"view column {name} of {version} is not collected"
        got = row[col]
        if isinstance(value, float):
            assert got == pytest.approx(value), col
        else:
            assert got == value, col
        filled.add(col)
    assert row["user"] == workload.APP_USER and row["database"] == workload.DB
    assert row["query_hidden"] == False  # noqa: E712
    filled |= {"user", "database", "query_hidden"}
    for col in set(statements.COLUMNS) - filled:
        assert pd.isna(row[col]), f"{col} should be null on {version}"

    if version >= statements.INFO_VERSION:
        assert info["dealloc"].tolist() == [7]
        assert info["stats_reset"].tolist() == [pd.Timestamp("2026-01-02 03:04:05", tz="UTC")]
        assert t.notices == {}
    else:
        assert len(info) == 0 and list(info.columns) == list(statements.INFO_COLUMNS)
        assert list(t.notices) == ["pgss_info"]
        assert "needs 1.9: run ALTER EXTENSION pg_stat_statements UPDATE;" in t.notices["pgss_info"]


def test_vhdiag_never_resets_pg_stat_statements():
    # Resetting would erase what the DBA (and vhdiag's own history) relies on; tests may, vhdiag not.
    package = Path(vhdiag.__file__).parent
    offenders = [str(p.relative_to(package)) for p in package.rglob("*")
                 if p.suffix in (".py", ".sql") and "pg_stat_statements_reset" in p.read_text()]
    assert offenders == []
