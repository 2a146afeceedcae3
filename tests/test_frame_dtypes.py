"""Live and history frames give a column they share the same dtype (the live collector's, which
tests/test_columns.py pins), so a notebook merges and concatenates them without casts: no
``boolean`` against ``bool``, ``string`` against ``str``, ns against us, Int64 against int64."""
import psycopg
import pytest

import vhdiag
from helpers import ensure_database
from vhdiag.collect import database, space, statements
from vhdiag.history import History
from vhdiag.history import reads

import workload

# (live method, its declared columns, History method, the history frame's columns)
PAIRS = [
    ("statements", statements.COLUMNS, "statements", reads.STATEMENT_WINDOW_COLUMNS),
    ("statements", statements.COLUMNS, "statement_series", reads.SERIES_COLUMNS),
    ("tables", space.COLUMNS, "table_growth", reads.GROWTH_COLUMNS),
    ("tables", space.COLUMNS, "table_series", reads.TABLE_SERIES_COLUMNS),
    ("database", database.COLUMNS, "database_series", reads.DATABASE_SERIES_COLUMNS),
]
SHARED = [pytest.param(live, hist, column, id=f"{live}-{hist}-{column}")
          for live, live_columns, hist, hist_columns in PAIRS
          for column in hist_columns if column in live_columns]
PROBE = "SELECT count(*) FROM orders WHERE id = $1"
PROBE_DB = "dtypes_probe"


@pytest.fixture(scope="module")
def frames(pg, tmp_path_factory):
    """Each frame from the planted database, live and over a history of two snapshots."""
    url = str(tmp_path_factory.mktemp("dtypes") / "h.sqlite")
    # A database of its own: the planted one's exact scan counters belong to test_space.
    ensure_database(pg, PROBE_DB, "CREATE TABLE orders (id int PRIMARY KEY, note text)",
                    "INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 1000) g", "ANALYZE orders")
    with vhdiag.connect(pg.dsn(PROBE_DB)) as target, History(url) as history:
        history.snapshot(target, "planted")
        with psycopg.connect(pg.dsn(PROBE_DB, via="socket"), autocommit=True) as conn:
            for i in range(3):
                conn.execute("SELECT count(*) FROM orders WHERE id = %s", (i,))
        history.snapshot(target, "planted")
        live = {name: getattr(target, name)() for name in ("statements", "tables", "database")}
        queryid = live["statements"].loc[live["statements"]["query"] == PROBE, "queryid"].iloc[0]
        kept = {"statements": history.statements(target="planted"),
                "statement_series": history.statement_series(queryid, target="planted"),
                "table_growth": history.table_growth(target="planted"),
                "table_series": history.table_series(target="planted"),
                "database_series": history.database_series(target="planted")}
    for name, frame in {**live, **kept}.items():
        assert len(frame), f"{name} is empty: the test would compare nothing"
    return live, kept


def test_the_pairs_share_columns():
    assert len(SHARED) >= 30


@pytest.mark.parametrize("live, hist, column", SHARED)
def test_live_and_history_dtypes_agree(frames, live, hist, column):
    live_frames, history_frames = frames
    assert str(history_frames[hist][column].dtype) == str(live_frames[live][column].dtype)
