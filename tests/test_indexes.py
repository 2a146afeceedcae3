"""indexes.collect() and its questions: unused, duplicate and invalid indexes."""
import time

import pandas as pd
import psycopg
import pytest

import vhdiag
import workload
from helpers import exclusive_lock, scratch_database
from vhdiag.collect import _base, indexes

CASES_DB = "vh_index_cases"
# Which of these are the same index, and which only look alike. Names chosen so that the index
# to keep is sometimes the later one by name.
CASES_SQL = '''
CREATE SCHEMA "Odd ""Schema""";
CREATE TABLE "Odd ""Schema""".t (id int PRIMARY KEY, a text, b int, c int);
-- the same as the primary key, and backing a constraint of its own
ALTER TABLE "Odd ""Schema""".t ADD CONSTRAINT t_id_key UNIQUE (id);
-- the same expression, written at different places of the statement
CREATE INDEX "A b" ON "Odd ""Schema""".t (lower(a));
CREATE INDEX zz_lower ON "Odd ""Schema""".t    (lower(a));
-- same column, different operator class, collation, order, method, INCLUDE: all different
CREATE INDEX t_a ON "Odd ""Schema""".t (a);
CREATE INDEX t_a_pattern ON "Odd ""Schema""".t (a text_pattern_ops);
CREATE INDEX t_a_c ON "Odd ""Schema""".t (a COLLATE "C");
CREATE INDEX t_b ON "Odd ""Schema""".t (b);
CREATE INDEX t_b_desc ON "Odd ""Schema""".t (b DESC);
CREATE INDEX t_b_hash ON "Odd ""Schema""".t USING hash (b);
CREATE INDEX t_b_incl ON "Odd ""Schema""".t (b) INCLUDE (c);
-- the same predicate twice, and a different one
CREATE INDEX t_b_part ON "Odd ""Schema""".t (b) WHERE b > 0;
CREATE INDEX t_b_part2 ON "Odd ""Schema""".t (b) WHERE b > 0;
CREATE INDEX t_b_part3 ON "Odd ""Schema""".t (b) WHERE b > 1;
-- a plain index made redundant by a unique one with a later name
CREATE INDEX a_plain_c ON "Odd ""Schema""".t (c);
CREATE UNIQUE INDEX z_unique_c ON "Odd ""Schema""".t (c);
-- unique, but NULLS NOT DISTINCT (PostgreSQL 15+): a different constraint
CREATE UNIQUE INDEX t_c_nnd ON "Odd ""Schema""".t (c) NULLS NOT DISTINCT;
-- an index of a partitioned table has no scans of its own
CREATE TABLE p (k int) PARTITION BY RANGE (k);
CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM (0) TO (100);
CREATE INDEX p_k ON p (k);
-- a leftover of a failed REINDEX CONCURRENTLY is only ever dropped
CREATE TABLE r (v int);
INSERT INTO r VALUES (1), (1);
CREATE INDEX r_v ON r (v);  -- the same key as the invalid index below: not its duplicate
'''
# name -> name of the index it duplicates, for every index in schema "Odd ""Schema"""
EXPECTED_DUPLICATES = {
    "t_pkey": None, "t_id_key": "t_pkey", "A b": None, "zz_lower": "A b",
    "t_a": None, "t_a_pattern": None, "t_a_c": None,
    "t_b": None, "t_b_desc": None, "t_b_hash": None, "t_b_incl": None,
    "t_b_part": None, "t_b_part2": "t_b_part", "t_b_part3": None,
    "a_plain_c": "z_unique_c", "z_unique_c": None, "t_c_nnd": None,
}
ODD = 'Odd "Schema"'


def by_index(df: pd.DataFrame, schema: str = "public") -> dict[str, pd.Series]:
    rows = df[df["schema"] == schema]
    assert rows["index"].is_unique
    return {row["index"]: row for _, row in rows.iterrows()}


@pytest.fixture(scope="module")
def cases(pg):
    with scratch_database(pg, CASES_DB):
        with pg.admin(CASES_DB) as conn:
            conn.execute(CASES_SQL)
            try:
                conn.execute("CREATE UNIQUE INDEX CONCURRENTLY r_v_ccnew ON r (v)")
            except psycopg.errors.UniqueViolation:
                pass
        t = vhdiag.connect(pg.dsn(CASES_DB))
        yield t
        t.close()


def test_columns_and_dtypes(target):
    df = target.indexes()
    assert list(df.columns) == list(indexes.COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        c: str(pd.Series([], dtype=_base.DTYPES[k]).dtype) for c, k in indexes.COLUMNS.items()}
    for question in (indexes.unused, indexes.duplicates, indexes.invalid):
        found = question(target)
        assert list(found.columns) == [*indexes.COLUMNS, "suggestion"]
        assert str(found["suggestion"].dtype) == str(pd.Series([], dtype="string").dtype)


def test_planted_findings(target):
    rows = by_index(target.indexes())
    assert {"orders_pkey", workload.UNUSED_INDEX, workload.DUPLICATE_INDEX, workload.DUPLICATED_INDEX,
            workload.INVALID_INDEX, "machine_events_pkey"} <= set(rows)

    dup, kept = rows[workload.DUPLICATE_INDEX], rows[workload.DUPLICATED_INDEX]
    assert dup["duplicate_of"] == workload.DUPLICATED_INDEX
    assert pd.isna(kept["duplicate_of"])
    assert (dup["table"], dup["columns"], dup["valid"]) == ("orders", "created_at", True)

    note = rows[workload.UNUSED_INDEX]
    assert note["unused"] and note["scans"] == 0 and pd.isna(note["duplicate_of"])

    bad = rows[workload.INVALID_INDEX]
    assert (bad["valid"], bad["unique"], bad["unused"]) == (False, True, False)
    assert pd.isna(bad["duplicate_of"])

    pkey = rows["orders_pkey"]
    assert (pkey["primary"], pkey["unique"], pkey["constraint"]) == (True, True, "orders_pkey")
    assert pkey["scans"] >= workload.CHEAP_QUERY_CALLS  # the primary key lookups
    assert pkey["tup_fetch"] >= workload.CHEAP_QUERY_CALLS
    assert not pkey["unused"] and pd.isna(pkey["duplicate_of"])

    assert pkey["definition"] == "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)"


def test_sizes_match_the_server(pg, target):
    df = target.indexes()
    with pg.admin() as conn:
        sizes = dict(conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " WHERE c.relkind IN ('i', 'I') AND c.relnamespace = 'public'::regnamespace").fetchall())
    assert dict(zip(df.loc[df["schema"] == "public", "index"], df.loc[df["schema"] == "public", "bytes"])) == sizes
    # The indexes of a table add up to the index_bytes of tables().
    tables = target.tables().set_index("table")
    per_table = df[df["schema"] == "public"].groupby("table")["bytes"].sum()
    for table in ("orders", "machine_events", "dupes"):
        assert per_table[table] == tables.loc[table, "index_bytes"]


def test_questions_and_suggestions(target):
    unused = indexes.unused(target)
    assert workload.UNUSED_INDEX in set(unused["index"])
    assert workload.INVALID_INDEX not in set(unused["index"])
    assert "orders_pkey" not in set(unused["index"])
    assert unused["bytes"].is_monotonic_decreasing
    note = unused.set_index("index").loc[workload.UNUSED_INDEX]
    assert note["suggestion"] == f'DROP INDEX CONCURRENTLY "public"."{workload.UNUSED_INDEX}";'

    dups = indexes.duplicates(target)
    assert dups["index"].tolist() == [workload.DUPLICATE_INDEX]
    assert dups["suggestion"].tolist() == [f'DROP INDEX CONCURRENTLY "public"."{workload.DUPLICATE_INDEX}";']

    invalid = indexes.invalid(target)
    assert invalid["index"].tolist() == [workload.INVALID_INDEX]
    assert invalid["suggestion"].tolist() == [
        "-- a unique build fails again while the table holds duplicate values\n"
        f'DROP INDEX CONCURRENTLY "public"."{workload.INVALID_INDEX}";\n'
        f"CREATE UNIQUE INDEX CONCURRENTLY {workload.INVALID_INDEX} ON public.dupes USING btree (v);"]


def test_questions_reuse_a_frame(target):
    frame = target.indexes()
    assert indexes.duplicates(target, frame)["index"].tolist() == [workload.DUPLICATE_INDEX]
    empty = indexes.invalid(target, frame.iloc[0:0])
    assert empty.empty and list(empty.columns) == [*indexes.COLUMNS, "suggestion"]


def test_invalid_index_without_a_definition_is_reindexed(target):
    # The definition is null when its table was locked: nothing to recreate it from.
    frame = target.indexes().assign(definition=pd.NA).astype({"definition": "string"})
    assert indexes.invalid(target, frame)["suggestion"].tolist() == [
        f'REINDEX INDEX CONCURRENTLY "public"."{workload.INVALID_INDEX}";']


def test_what_makes_a_duplicate(cases):
    rows = by_index(cases.indexes(), ODD)
    assert {name: (None if pd.isna(r["duplicate_of"]) else r["duplicate_of"]) for name, r in rows.items()} \
        == EXPECTED_DUPLICATES
    assert rows["A b"]["columns"] == "lower(a)"
    assert rows["t_b_incl"]["columns"] == "b"  # key columns only
    assert rows["t_b_hash"]["method"] == "hash"
    # fresh indexes are never scanned: plain ones are unused, those enforcing something are not
    assert {name for name, r in rows.items() if r["unused"]} == set(EXPECTED_DUPLICATES) - {
        "t_pkey", "t_id_key", "z_unique_c", "t_c_nnd"}
    assert rows["t_id_key"]["constraint"] == "t_id_key"


def test_duplicate_suggestions_quote_and_respect_constraints(cases):
    got = dict(zip(*indexes.duplicates(cases)[["index", "suggestion"]].to_dict("list").values()))
    assert got == {
        "t_id_key": 'ALTER TABLE "Odd ""Schema"""."t" DROP CONSTRAINT "t_id_key";',
        "zz_lower": 'DROP INDEX CONCURRENTLY "Odd ""Schema"""."zz_lower";',
        "t_b_part2": 'DROP INDEX CONCURRENTLY "Odd ""Schema"""."t_b_part2";',
        "a_plain_c": 'DROP INDEX CONCURRENTLY "Odd ""Schema"""."a_plain_c";',
    }
    assert indexes.unused(cases).set_index("index").loc["A b", "suggestion"] == \
        'DROP INDEX CONCURRENTLY "Odd ""Schema"""."A b";'


def test_reindex_leftover_is_dropped_and_partitioned_index_is_not_unused(cases):
    invalid = indexes.invalid(cases)
    assert invalid[["index", "suggestion"]].values.tolist() == [
        ["r_v_ccnew", 'DROP INDEX CONCURRENTLY "public"."r_v_ccnew";']]
    rows = by_index(cases.indexes())
    assert pd.isna(rows["r_v"]["duplicate_of"]) and pd.isna(rows["r_v_ccnew"]["duplicate_of"])
    p_k = rows["p_k"]
    assert pd.isna(p_k["scans"]) and not p_k["unused"] and p_k["bytes"] == 0


def test_locked_table_skips_sizes_and_definitions_not_findings(pg, target):
    with exclusive_lock(pg, "orders"):
        start = time.monotonic()
        df = target.indexes()
        elapsed_ms = (time.monotonic() - start) * 1000
    assert elapsed_ms < min(target.statement_timeout_ms, 2000)
    rows = by_index(df)
    on_orders = df[df["table"] == "orders"]
    assert on_orders["size_skipped"].all()
    assert on_orders[["bytes", "columns", "definition"]].isna().all().all()
    assert rows[workload.DUPLICATE_INDEX]["duplicate_of"] == workload.DUPLICATED_INDEX
    assert rows[workload.UNUSED_INDEX]["unused"]
    assert not df.loc[df["table"] != "orders", "size_skipped"].any()
    # Invalid indexes still get a suggestion, even when the definition is unknown.
    assert indexes.invalid(target, df)["index"].tolist() == [workload.INVALID_INDEX]


def test_locked_index_alone_is_skipped(pg, cases):
    locker = psycopg.connect(pg.dsn(CASES_DB, via="socket"))
    try:
        locker.execute('REINDEX INDEX "Odd ""Schema"""."t_b"')  # ACCESS EXCLUSIVE on t_b only
        df = cases.indexes()
    finally:
        locker.rollback()
        locker.close()
    rows = by_index(df, ODD)
    assert rows["t_b"]["size_skipped"] and pd.isna(rows["t_b"]["bytes"])
    assert df["size_skipped"].sum() == 1


def test_the_snapshot_reads_the_same_sizes_and_scans(target):
    """A snapshot stores each index's table, bytes and scans from a lighter query (no
    definitions): the same values as the full frame, with the declared dtypes."""
    light = indexes.for_snapshot(target)
    assert list(light.columns) == list(indexes.SNAPSHOT_COLUMNS)
    assert {c: str(t) for c, t in light.dtypes.items()} == {
        c: str(pd.Series([], dtype=_base.DTYPES[k]).dtype) for c, k in indexes.SNAPSHOT_COLUMNS.items()}
    shared = [c for c in indexes.SNAPSHOT_COLUMNS if c != "sized"]   # sized: the snapshot's own marker
    key = ["schema", "table", "index"]               # the snapshot's query does not sort
    pd.testing.assert_frame_equal(light[shared].sort_values(key).reset_index(drop=True),
                                  target.indexes()[shared].sort_values(key).reset_index(drop=True))
    assert light["sized"].all()                     # no sizing plan: every index sized
    rows = by_index(light)
    assert rows["orders_pkey"]["scans"] >= workload.CHEAP_QUERY_CALLS and rows["orders_pkey"]["bytes"] > 0


def test_the_snapshot_skips_sizes_behind_a_lock(pg, target):
    with exclusive_lock(pg, "orders"):
        start = time.monotonic()
        light = indexes.for_snapshot(target)
        elapsed_ms = (time.monotonic() - start) * 1000
    assert elapsed_ms < min(target.statement_timeout_ms, 2000)
    on_orders = light[light["table"] == "orders"]
    assert len(on_orders) >= 3 and on_orders["size_skipped"].all() and on_orders["bytes"].isna().all()
    assert not light.loc[light["table"] != "orders", "size_skipped"].any()
    assert light.loc[light["table"] != "orders", "bytes"].notna().all()
