"""maintenance: dead tuples, autovacuum's rule with reloptions, ID ages, sequences."""
import pandas as pd
import psycopg
import pytest

import vhdiag
import workload
from helpers import dtypes_of, eventually, scratch_database
from vhdiag.collect import maintenance

SCRATCH_DB = "vh_scratch_maintenance"


@pytest.fixture(scope="module")
def scratch(pg):
    """A database with awkward names, per-table autovacuum settings and sequences.

    Autovacuum is off on every table here, so the numbers stay as we leave them.
    """
    with scratch_database(pg, SCRATCH_DB):
        with pg.admin(SCRATCH_DB) as conn:
            conn.execute("""
                CREATE SCHEMA "My Schema";
                CREATE TABLE "My Schema"."Odd Name" (id int) WITH (autovacuum_enabled = off,
                    autovacuum_vacuum_threshold = 5, autovacuum_vacuum_scale_factor = 0,
                    autovacuum_analyze_threshold = 1000000, autovacuum_freeze_max_age = 100000);
                INSERT INTO "My Schema"."Odd Name" SELECT generate_series(1, 100);
                DELETE FROM "My Schema"."Odd Name" WHERE id <= 10;
                CREATE TABLE vacuumed (id int) WITH (autovacuum_enabled = false);
                INSERT INTO vacuumed SELECT generate_series(1, 100);
                DELETE FROM vacuumed WHERE id <= 60;
                CREATE SEQUENCE never_called;
                CREATE SEQUENCE going_down INCREMENT -1 MINVALUE -100 MAXVALUE -1 START -1;
                SELECT nextval('going_down') FROM generate_series(1, 10);
            """)
        # A backend's table counters reach pg_stat_user_tables when it flushes them (at the latest
        # on exit); VACUUM then sets n_live_tup/n_dead_tup, so it must come after that flush.
        t = vhdiag.connect(pg.dsn(SCRATCH_DB))
        eventually(lambda: maintenance.tables(t), lambda d: set(d["n_dead_tup"]) == {10, 60})
        with pg.admin(SCRATCH_DB) as conn:
            conn.execute("VACUUM vacuumed")
        eventually(lambda: maintenance.tables(t), lambda d: d["vacuum_count"].sum() == 1)
        t.close()
        yield SCRATCH_DB


@pytest.fixture
def scratch_target(pg, scratch):
    t = vhdiag.connect(pg.dsn(scratch))
    yield t
    t.close()


def _one(df, **where):
    mask = pd.Series(True, index=df.index)
    for col, value in where.items():
        mask &= df[col] == value
    assert mask.sum() == 1, where
    return df[mask].iloc[0]


def test_dtypes_match_the_mappings(target):
    assert maintenance.tables(target).dtypes.astype(str).to_dict() == dtypes_of(maintenance.TABLES_COLUMNS)
    assert maintenance.databases(target).dtypes.astype(str).to_dict() == dtypes_of(maintenance.DATABASES_COLUMNS)
    assert maintenance.sequences(target).dtypes.astype(str).to_dict() == dtypes_of(maintenance.SEQUENCES_COLUMNS)
    assert target.notices == {}


def test_machine_events_needs_a_manual_vacuum(pg, target):
    row = _one(maintenance.tables(target), schema="public", table="machine_events")
    assert row["n_dead_tup"] == workload.EVENTS_DELETED
    assert row["n_live_tup"] == workload.EVENTS_ROWS - workload.EVENTS_DELETED
    assert row["dead_tup_pct"] == pytest.approx(100 * workload.EVENTS_DELETED / workload.EVENTS_ROWS)
    assert not row["autovacuum_enabled"]
    # autovacuum's rule with the default settings: 50 + 0.2 * reltuples dead tuples for a
    # vacuum, 50 + 0.1 * reltuples changed rows for an analyze (reltuples -1 counts as 0).
    with pg.admin() as conn:
        reltuples = max(conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'machine_events'::regclass")
                        .fetchone()[0], 0)
    assert row["reltuples"] == reltuples
    assert row["vacuum_threshold"] == 50 + 0.2 * reltuples < workload.EVENTS_DELETED
    assert row["analyze_threshold"] == 50 + 0.1 * reltuples
    assert row["needs_vacuum"] and not row["needs_freeze"]
    assert row["needs_analyze"] == (row["n_mod_since_analyze"] > 50 + 0.1 * reltuples)
    assert row["suggestion"] == ("VACUUM (ANALYZE) public.machine_events;" if row["needs_analyze"]
                                 else "VACUUM public.machine_events;")
    assert pd.isna(row["last_vacuum"]) and pd.isna(row["last_autovacuum"]) and row["vacuum_count"] == 0
    assert row["freeze_max_age"] == 200_000_000 and row["xid_age"] > 0
    # The planted orders table was analyzed at its full size.
    orders = _one(maintenance.tables(target), schema="public", table="orders")
    assert orders["reltuples"] == workload.ORDERS_ROWS
    assert orders["vacuum_threshold"] == 50 + 0.2 * workload.ORDERS_ROWS
    assert not orders["needs_vacuum"]


def test_reloptions_and_quoted_names(scratch_target):
    df = maintenance.tables(scratch_target)
    odd = _one(df, schema="My Schema", table="Odd Name")
    assert (odd["n_live_tup"], odd["n_dead_tup"]) == (90, 10)
    assert odd["vacuum_threshold"] == 5 and odd["analyze_threshold"] == 1_000_000
    assert odd["freeze_max_age"] == 100_000 and not odd["autovacuum_enabled"]
    assert odd["needs_vacuum"] and not odd["needs_analyze"]
    assert odd["suggestion"] == 'VACUUM "My Schema"."Odd Name";'

    done = _one(df, schema="public", table="vacuumed")
    assert (done["n_live_tup"], done["n_dead_tup"], done["vacuum_count"]) == (40, 0, 1)
    assert pd.notna(done["last_vacuum"]) and str(df["last_vacuum"].dt.tz) == "UTC"
    assert done["reltuples"] == 40                              # VACUUM set it
    assert done["vacuum_threshold"] == 50 + 0.2 * 40
    assert not done["needs_vacuum"]
    # VACUUM does not analyze: 160 rows changed since the last ANALYZE (never) > 50 + 0.1 * 40.
    assert done["n_mod_since_analyze"] == 160 and done["analyze_threshold"] == 50 + 0.1 * 40
    assert done["needs_analyze"] and done["suggestion"] == "ANALYZE public.vacuumed;"
    assert list(df["table"].iloc[:1]) == ["Odd Name"]           # needing a vacuum sorts first


def test_database_ages(pg, target):
    def ages():
        with pg.admin("postgres") as conn:
            return dict(conn.execute("SELECT datname, age(datfrozenxid) FROM pg_database").fetchall())

    low = ages()
    df = maintenance.databases(target)
    high = ages()
    assert set(df["database"]) == set(low) >= {"template0", "template1", "postgres", workload.DB}
    for row in df.itertuples():
        assert low[row.database] <= row.xid_age <= high[row.database]
    assert set(df["autovacuum_freeze_max_age"]) == {200_000_000}
    assert set(df["autovacuum_multixact_freeze_max_age"]) == {400_000_000}
    assert (df["wraparound_pct"] - 100 * df["xid_age"] / 2_147_483_647).abs().max() < 1e-9
    assert (df["freeze_max_age_pct"] - 100 * df["xid_age"] / 200_000_000).abs().max() < 1e-9
    assert (df["xids_left"] == 2_147_483_647 - df["xid_age"]).all()
    assert list(df.loc[~df["allow_connections"], "database"]) == ["template0"]


def test_near_end_sequence(target):
    row = _one(maintenance.sequences(target), sequence=workload.NEAR_END_SEQUENCE)
    assert (row["schema"], row["data_type"], row["last_value"], row["max_value"]) == ("public", "smallint", 32000, 32767)
    assert row["used_pct"] == pytest.approx(32000 / 32767 * 100, abs=0.01)
    assert row["readable"] and not row["cycle"] and not row["locked"]
    assert maintenance.sequences(target).iloc[0]["sequence"] == workload.NEAR_END_SEQUENCE   # fullest first


def test_unused_and_descending_sequences(scratch_target):
    df = maintenance.sequences(scratch_target)
    never = _one(df, sequence="never_called")
    assert never["readable"] and pd.isna(never["last_value"]) and pd.isna(never["used_pct"])
    down = _one(df, sequence="going_down")
    assert (down["last_value"], down["min_value"], down["max_value"], down["increment_by"]) == (-10, -100, -1, -1)
    assert down["used_pct"] == pytest.approx(100 * 9 / 99)


def test_locked_sequence_is_skipped_not_waited_for(pg, scratch_target):
    holder = psycopg.connect(pg.dsn(SCRATCH_DB, via="socket"))
    try:
        holder.execute("ALTER SEQUENCE going_down RENAME TO going_down_renamed")  # ACCESS EXCLUSIVE, uncommitted
        df = maintenance.sequences(scratch_target)                     # lock_timeout is 100 ms
        row = _one(df, sequence="going_down")
        assert row["locked"] and pd.isna(row["last_value"])
        assert not _one(df, sequence="never_called")["locked"]
    finally:
        holder.rollback()
        holder.close()


def test_low_privilege_role(pg):
    t = vhdiag.connect(pg.dsn(user=workload.LOWPRIV_USER, password=workload.LOWPRIV_PASSWORD))
    try:
        tables = maintenance.tables(t)
        assert tables.dtypes.astype(str).to_dict() == dtypes_of(maintenance.TABLES_COLUMNS)
        assert _one(tables, table="machine_events")["n_dead_tup"] == workload.EVENTS_DELETED
        seqs = maintenance.sequences(t)
        row = _one(seqs, sequence=workload.NEAR_END_SEQUENCE)
        assert not row["readable"] and pd.isna(row["last_value"]) and pd.isna(row["used_pct"])
        assert t.notices == {"maintenance:sequences": (
            f"role {workload.LOWPRIV_USER} may not read 2 sequence(s), so their use is unknown: "
            f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {workload.LOWPRIV_USER};")}
        assert len(maintenance.databases(t)) >= 4
    finally:
        t.close()
