"""``vhdiag.plot`` draws the frames the API returns as they come (issue 14, item 2).

A scratch database gets three snapshots A, B, C: ``plot_grow`` grows at each step (1,000 then
20,000 then 60,000 rows), ``SLOWER`` runs 4 times at 1 ms in (A, B] and 6 times at 30 ms in
(B, C], ``FRESH`` only in (B, C]. Each figure is drawn from ``connect()`` or ``History`` frames
without reshaping, rendered to PNG, and its axis labels and number of points are checked.
The HTML tables beside the figures (reports/tables.py) keep a long query readable.
"""
from __future__ import annotations

import io

import matplotlib.dates as mdates
import pandas as pd
import psycopg
import pytest

import vhdiag
from helpers import scratch_database
from vhdiag import plot
from vhdiag.errors import ConfigError
from vhdiag.history import History

DB = "plot_lab"
SLOWER = "SELECT pg_sleep($1), $2::varchar"
FRESH = "SELECT pg_sleep($1), $2::char"


@pytest.fixture(scope="module")
def plot_history(pg, tmp_path_factory):
    with scratch_database(pg, DB):
        with pg.admin(DB) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("CREATE TABLE plot_grow (id int, pad text)")
            conn.execute("CREATE TABLE plot_still (id int)")
            conn.execute("INSERT INTO plot_grow SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g")
        path = str(tmp_path_factory.mktemp(f"plot-{pg.id}") / "history.sqlite")
        ts = {}

        def snap(name, rows, sleep, calls, fresh):
            with psycopg.connect(pg.dsn(DB, via="socket"), autocommit=True) as conn:
                conn.execute("INSERT INTO plot_grow SELECT g, repeat('x', 100) FROM generate_series(1, %s) g", (rows,))
                for i in range(calls):
                    conn.execute("SELECT pg_sleep(%s), %s::varchar", (sleep, str(i)))
                for i in range(fresh):
                    conn.execute("SELECT pg_sleep(%s), %s::char", (0.002, str(i)))
            with vhdiag.connect(pg.dsn(DB)) as t, History(path) as h:
                ts[name] = h.snapshot(t, "plot")["ts"].isoformat()

        snap("A", 0, 0, 0, 0)
        snap("B", 19000, 0.001, 4, 0)
        snap("C", 40000, 0.03, 6, 3)
        yield pg, path, ts


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG") and len(data) > 2000
    return data


def ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_top_draws_live_statements_and_tables(plot_history):
    pg, _path, _ts = plot_history
    with vhdiag.connect(pg.dsn(DB)) as db:
        statements, tables = db.statements(), db.tables()
    fig = plot.top(statements)
    png(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "total execution time (ms)"
    assert len(ax.patches) == min(10, int(statements["total_exec_ms"].notna().sum()))
    first = statements.sort_values("total_exec_ms", ascending=False).iloc[0]
    shown = plot.label(first["query"], 48).replace("\\$", "$")           # drawn plain: $ as $
    assert ticks(ax)[0] == f"{shown}  [{first['queryid']}]"

    fig = plot.top(tables, by="total_bytes", n=5)
    png(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "total size (MB)"                  # 8 MB of plot_grow: MB, not bytes
    mine = tables[tables["table"].isin(["plot_grow", "plot_still"])]
    assert len(ax.patches) == min(5, len(tables)) and len(mine) == 2
    assert ticks(ax)[0] == "public.plot_grow"
    assert "public.plot_still" in ticks(ax) or len(tables) > 5

    with pytest.raises(ConfigError, match=r"^plot.top: the frame has no column 'nope': choose from "):
        plot.top(statements, by="nope")


def test_statement_from_the_history_store(plot_history):
    _pg, path, ts = plot_history
    with History(path) as h:
        window = h.statements(ts["A"], ts["C"], target="plot")
        queryid = int(window.loc[window["query"] == SLOWER, "queryid"].iloc[0])
        fig = plot.statement(h, queryid, ts["A"], ts["C"], target="plot")
    png(fig)
    calls_ax, mean_ax = fig.axes
    assert (calls_ax.get_ylabel(), mean_ax.get_ylabel()) == ("calls per interval", "mean execution time (ms)")
    assert calls_ax.get_xlabel() == mean_ax.get_xlabel() == "time (UTC)"
    # One bar per interval, all in one artist: a week of 15-minute intervals is 672 bars, and as
    # 672 patches the drill-down of five statements took seconds to draw (benchmarks/weekly_run.py).
    (bars,) = calls_ax.collections
    assert not calls_ax.patches
    assert [float(path.vertices[:, 1].max()) for path in bars.get_paths()] == [4.0, 6.0]
    edges = [(mdates.num2date(p.vertices[:, 0].min()), mdates.num2date(p.vertices[:, 0].max())) for p in bars.get_paths()]
    snaps = [pd.Timestamp(ts[k]) for k in "ABC"]                           # each bar spans its interval
    assert all(abs(pd.Timestamp(x) - want) < pd.Timedelta(milliseconds=1)
               for got, want in zip(edges, zip(snaps, snaps[1:])) for x, want in zip(got, want))
    (line,) = mean_ax.get_lines()
    means = list(line.get_ydata())
    assert len(means) == 2 and means[0] < 10 < 30 <= means[1]
    assert fig._suptitle.get_text() == f"queryid {queryid}: calls and mean execution time per interval"


def test_growth_from_the_history_store(plot_history):
    _pg, path, ts = plot_history
    with History(path) as h:
        fig = plot.growth(h, target="plot")
        one = plot.growth(h, "public.plot_grow", target="plot")
        with pytest.raises(ConfigError, match=r"^plot.growth: no table 'nope' in the history of this window: known: "):
            plot.growth(h, "nope", target="plot")
    for f in (fig, one):
        png(f)
        ax = f.axes[0]
        assert ax.get_ylabel() == "size (MB)" and ax.get_xlabel() == "time (UTC)"
    lines = fig.axes[0].get_lines()
    assert lines[0].get_label() == "public.plot_grow"           # grew most: first
    assert [len(line.get_xdata()) for line in lines] == [3] * len(lines)   # a point per snapshot
    assert "public.plot_still" in [line.get_label() for line in lines]
    (grow,) = one.axes[0].get_lines()
    sizes = list(grow.get_ydata())
    assert len(sizes) == 3 and sizes[0] < sizes[1] < sizes[2]
    assert one.axes[0].get_title() == "Size of public.plot_grow"


def test_compare_from_history_compare(plot_history):
    _pg, path, ts = plot_history
    with History(path) as h:
        c = h.compare(ts["B"], ts["C"], ts["A"], ts["B"], target="plot")
    mine = c[c["database"] == DB]
    fig = plot.compare(mine)
    png(fig)
    ax = fig.axes[0]
    changed = mine[mine["status"] != "same"].head(10)
    assert ax.get_xlabel() == "mean execution time (ms)"
    assert len(ax.patches) == 2 * len(changed)                 # baseline and window, per statement
    names = ticks(ax)
    assert names[list(changed["query"]).index(SLOWER)].startswith(SLOWER)
    statuses = [t.get_text().split()[0] for t in ax.texts]
    assert statuses == list(changed["status"])
    assert {"regressed", "new"} <= set(statuses)
    # The window is the report's: the title names it and the baseline just before.
    assert ax.get_title().startswith("Mean execution time, window against baseline: ")


def test_long_query_text_wraps_in_a_readable_column():
    """Beside a dozen number columns, a 300-character statement was squeezed to four characters
    a line (``word-break`` alone lets the column shrink to nothing)."""
    import pandas as pd

    from vhdiag.reports import tables
    frame = pd.DataFrame({"queryid": [1], "calls": [3], "total_exec_ms": [1.5], "query": ["SELECT " + "x, " * 120]})
    markup = tables.table(frame)._repr_html_()
    assert '<td class="q" style="text-align: left; min-width: 22em; white-space: normal; overflow-wrap: anywhere">' \
        in markup
    assert '<div class="vh-scroll">' in markup and "word-break" not in markup


def test_compare_on_a_log_scale_labels_ticks_as_plain_numbers():
    """Means from 0.01 ms to 1 s: a log scale, whose default tick labels are mathtext
    (``$\\mathdefault{10^{-1}}$``), shown raw once every figure is drawn plain."""
    import pandas as pd
    frame = pd.DataFrame({"queryid": [1, 2], "query": ["SELECT 1", "SELECT 2"], "status": ["regressed", "new"],
                          "mean_exec_ms": [1000.0, 0.01], "baseline_mean_exec_ms": [10.0, None]})
    fig = plot.compare(frame)
    png(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.patches) == 4
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert shown and not [t for t in shown if "$" in t or "mathdefault" in t], shown
    assert "1000" in shown or "1e+03" in shown


def test_one_interval_keeps_a_time_axis_of_its_own_length():
    """A single interval (two snapshots): the mean's one point once stretched its axis over five years."""
    import pandas as pd
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-11-29T12:15:00Z"]), "interval_s": [900.0], "calls": [2],
                          "mean_exec_ms": [5.0], "complete": [True]})
    fig = plot.statement(frame, 1)
    png(fig)
    import matplotlib.dates as mdates
    for ax in fig.axes:
        lo, hi = (mdates.num2date(x) for x in ax.get_xlim())
        assert (hi - lo).total_seconds() <= 900 * 1.2, (lo, hi)
