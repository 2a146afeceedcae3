"""Hostile text from the server is shown, never obeyed (issue 7, defects 2 and 8).

- Defect 2: matplotlib reads ``$...$`` as mathtext, so one ``DO $$BEGIN ... END$$`` among the
  top statements stopped every slow-query report (``ValueError`` in the chart labels), history
  and cumulative fallback alike. Each server version gets its own cluster (``servers.extra``)
  whose workload runs such DO blocks, plain and tagged (``$fn$``, ``$q_$``, the latter with
  ``\\frac{a}{b} x^{2}`` and an ESC in its body), so that they are the top statements; one
  ``vhdiag report slow_queries`` over it must succeed and show the text as text.
- Defect 8: a table named with ``ESC ] 0 ; PWNED BEL`` set the terminal's title on
  ``vhdiag show tables``. No format of ``show``/``history``, no error line, carries a raw control
  character; each shows its escape (``\\x1b``).

Generated text (hypothesis) checks the two helpers behind it: ``plot.label`` and vhdiag's
figures draw anything without raising, and ``display.terminal_safe`` lets no control through.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

import vhdiag
from vhdiag import cli
from vhdiag.history import History
from helpers import fresh_database

DB = "hostile"
APP = "hostile_app"
# ESC ] 0 ; title BEL (set the window title), ESC [ 2 J (clear the screen), C1 CSI 31 m (red),
# and a right-to-left override that makes "txt.exe" read as "exe.txt".
TABLE = "t\x1b]0;PWNED\x07\x1b[2J\x9b31m\u202etxt.exe"
TABLE_SHOWN = "t\\x1b]0;PWNED\\x07\\x1b[2J\\x9b31m\\u202etxt.exe"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")
# Utility statements keep their text in pg_stat_statements: these are the top three by total time.
DO_PLAIN = "DO $$BEGIN PERFORM pg_sleep(1.2); END$$"
DO_TAGGED = "DO $fn$BEGIN PERFORM pg_sleep(0.3); END$fn$"
DO_MATH = "DO $q_$BEGIN PERFORM pg_sleep(0.2); /* \\frac{a}{b} x^{2} {} \x1b[2J */ END$q_$"
DO_MATH_SHOWN = "DO $q_$BEGIN PERFORM pg_sleep(0.2); /* \\frac{a}{b} x^{2} {} \\x1b[2J */ END$q_$"
# DO blocks cannot be explained, so they make no finding; this one does (slow), and carries $$ into it.
SLOW = "SELECT pg_sleep($1) /* $$ x_{1}^{2} $$ */"


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_raw_controls(*texts):
    for text in texts:
        for char in RAW:
            assert char not in text, (char, text[:500])


@pytest.fixture(scope="module")
def hostile(pg, servers, tmp_path_factory):
    """A cluster of this version with the hostile table, and a history of two snapshots around
    the DO workload (the report's window)."""
    server = servers.extra(f"hostile-{pg.id}", version=pg.id)
    fresh_database(server, DB, role=APP)
    table = sql.Identifier(TABLE)
    with server.admin(DB) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text)").format(table))
        conn.execute(sql.SQL("INSERT INTO {} SELECT g, 'n' FROM generate_series(1, 100) g").format(table))
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {APP}")
        conn.execute("ANALYZE")
    root = tmp_path_factory.mktemp(f"hostile-{pg.id}")
    history, ts = str(root / "history.sqlite"), {}

    def snapshot(label):
        with vhdiag.connect(server.dsn(DB)) as target, History(history) as store:
            ts[label] = store.snapshot(target, "hostile")["ts"].isoformat()

    snapshot("A")
    with psycopg.connect(server.dsn(DB, user=APP, via="socket"), autocommit=True) as conn:
        for statement in (DO_PLAIN, DO_TAGGED, DO_MATH):
            for _ in range(2):
                conn.execute(statement)
        for _ in range(2):
            conn.execute(SLOW.replace("$1", "%s"), (1.05,))
        for i in range(20):
            conn.execute(sql.SQL("SELECT note FROM {} WHERE id = %s").format(table), (i,))
    snapshot("B")
    return {"server": server, "history": history, "ts": ts, "out": root / "reports"}


@pytest.fixture(scope="module")
def report(hostile):
    """``vhdiag report slow_queries`` over the DO workload, once per server version."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["report", "slow_queries", "--dsn", hostile["server"].dsn(DB), "--history", hostile["history"],
                         "--target-name", "hostile",
                         "--since", hostile["ts"]["A"], "--until", hostile["ts"]["B"], "--out", str(hostile["out"])])
    return code, out.getvalue(), err.getvalue()


class _Texts(HTMLParser):
    """Every text node of a page, with whether it sits inside an element MathJax must skip."""

    VOID = {"br", "img", "meta", "link", "input", "hr", "col", "area", "base", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        ignored = "tex2jax_ignore" in (dict(attrs).get("class") or "").split()
        self.stack.append((tag, ignored or bool(self.stack and self.stack[-1][1])))

    def handle_startendtag(self, tag, attrs):    # <br/>: nothing opens, nothing closes
        pass

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        self.texts.append((data, bool(self.stack and self.stack[-1][1])))


# -- defect 2: the report with dollar-quoted statements among the top ------------------------
def test_report_with_dollar_quoted_statements(hostile, report):
    code, out, err = report
    assert code == 0, err
    assert err == ""
    html_path = Path(re.search(r"^report slow_queries of \S+ for \S+: (\S+\.html)$", out, re.M).group(1))
    findings = json.loads(html_path.with_name("slow_queries.summary.json").read_text())["findings"]
    # The DO blocks rank first, but cannot be explained: no finding. SLOW is one, carrying its $$.
    assert [(f["kind"], f["query"]) for f in findings] == [("slow_query", SLOW)], findings
    page = html_path.read_text()
    assert page.count('src="data:image/png;base64,') == 2     # share of DB time and the drill-down were drawn
    texts = _Texts()
    texts.feed(page)
    shown = [(t, ignored) for t, ignored in texts.texts if "$BEGIN PERFORM" in t or "$$ x_{1}" in t]
    # Every statement is in the tables as it is (html.escape leaves $ \ { } ^ alone), ESC shown as \x1b,
    # and each place sits in an element MathJax skips, so the browser does not typeset $...$ either.
    for statement in (DO_PLAIN, DO_TAGGED, DO_MATH_SHOWN, SLOW):
        assert any(statement in t for t, _ in shown), statement
    assert shown and all(ignored for _, ignored in shown), [t for t, ignored in shown if not ignored][:3]
    assert_no_raw_controls(page, out, err)


def test_report_plots_escape_labels():
    """The figures of the report, drawn from the same statements: every text plain, the query
    text in it unchanged (no \\$ left), and never LaTeX, whatever the rcParams say."""
    import matplotlib
    import matplotlib.text
    matplotlib.use("Agg")
    import pandas as pd

    from vhdiag import plot
    top = pd.DataFrame({"queryid": [1, 2, 3], "query": [DO_PLAIN, DO_TAGGED, DO_MATH], "share_pct": [70.0, 20.0, 10.0]})
    series = {str(q): pd.DataFrame({"ts": pd.to_datetime(["2026-11-29T12:15:00Z"]), "interval_s": [60.0], "calls": [2],
                                    "mean_exec_ms": [5.0], "complete": [False]}) for q in (1, 2, 3)}
    with matplotlib.rc_context({"text.usetex": True, "text.parse_math": True}):   # LaTeX is not installed here
        figures = [plot.top(top, by="share_pct", title="Share of $DB$ time"),
                   plot.drilldown(series, queries={"1": DO_PLAIN, "2": DO_TAGGED, "3": DO_MATH})]
        for fig in figures:
            fig.canvas.draw()
    bars, drill = ([t.get_text() for t in fig.findobj(matplotlib.text.Text)] for fig in figures)
    assert [t.get_text() for t in figures[0].axes[0].get_yticklabels()] == [
        f"{DO_PLAIN}  [1]", f"{DO_TAGGED}  [2]", f"{DO_MATH_SHOWN[:47]}…  [3]"]
    assert "Share of $DB$ time" in bars
    assert f"{DO_PLAIN}: calls" in drill and f"{DO_TAGGED}: calls" in drill and "queryid 1: mean time" in drill
    for fig in figures:
        for text in fig.findobj(matplotlib.text.Text):
            assert not text.get_usetex() and not text.get_parse_math(), text.get_text()


# -- defect 8: control characters from the server never reach the terminal raw ----------------
def test_show_tables_escapes_control_characters(hostile, capsys):
    dsn = hostile["server"].dsn(DB)
    code, out, err = run_cli(capsys, "show", "tables", "--dsn", dsn)
    assert (code, err) == (0, "")
    assert TABLE_SHOWN in out
    code, csv_out, err = run_cli(capsys, "show", "tables", "--dsn", dsn, "--format", "csv", "--columns", "schema,table")
    assert (code, err) == (0, "")
    assert f"public,{TABLE_SHOWN}" in csv_out.splitlines()
    code, json_out, err = run_cli(capsys, "show", "tables", "--dsn", dsn, "--format", "json")
    assert (code, err) == (0, "")
    assert [r["table"] for r in json.loads(json_out)] == [TABLE]    # JSON escapes, and decodes to the name
    assert "\\u001b]0;PWNED\\u0007" in json_out
    assert_no_raw_controls(out, csv_out, json_out)


def test_history_escapes_control_characters(hostile, capsys):
    code, out, err = run_cli(capsys, "history", "table-growth", "--history", hostile["history"],
                             "--since", hostile["ts"]["A"], "--until", hostile["ts"]["B"])
    assert (code, err) == (0, "")
    assert TABLE_SHOWN in out
    code, out, err = run_cli(capsys, "history", "statements", "--history", hostile["history"], "--format", "csv",
                             "--since", hostile["ts"]["A"], "--until", hostile["ts"]["B"])
    assert code == 0, err
    assert DO_MATH_SHOWN in out and DO_PLAIN in out
    assert_no_raw_controls(out, err)


def test_error_line_escapes_control_characters(hostile, capsys):
    port = hostile["server"].port
    code, out, err = run_cli(capsys, "show", "tables", "--dsn",
                             f"postgresql://postgres:{hostile['server'].password}@127.0.0.1:{port}/no%1B%5B2Jdb%E2%80%AE")
    assert (code, out) == (1, "")
    assert err == (f'Error: database "no\\x1b[2Jdb\\u202e" does not exist on 127.0.0.1:{port}: '
                   "check the database name in the DSN (psql -l lists them)\n")
    code, out, err = run_cli(capsys, "show", "tables", "--dsn", "env:NO_SUCH\x1b]0;PWNED\x07")
    assert (code, out) == (1, "")
    assert err == ("Error: environment variable NO_SUCH\\x1b]0;PWNED\\x07 is not set or empty: "
                   "export NO_SUCH\\x1b]0;PWNED\\x07=postgresql://user@host/db\n")
    assert_no_raw_controls(err)


# -- generated hostile text -------------------------------------------------------------------
MATH = st.sampled_from(list("$\\{}_^%#&~") + ["$$", "\\frac", "\\$", "$fn$", "\\\\", "$\\", "^{", "_{"])
CONTROLS = st.characters(min_codepoint=0, max_codepoint=0x9F).filter(lambda c: not c.isprintable()) | \
    st.sampled_from(["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"] + [chr(c) for c in range(0x202A, 0x202F)]
                    + [chr(c) for c in range(0x2066, 0x206A)])
HOSTILE = st.lists(st.one_of(MATH, CONTROLS, st.characters(codec="utf-8"), st.sampled_from(list("ab1 ("))),
                   max_size=300).map("".join)
FIGURE_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(HOSTILE, st.integers(1, 200))
@settings(max_examples=150, deadline=None)
def test_label_is_drawn_by_any_text(text, n):
    """plot.label is safe in itself: a plain matplotlib Text with mathtext on (the default)
    draws it, and shows $ as $; no control character gets through."""
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from vhdiag import plot
    from vhdiag.display import CONTROL
    shown = plot.label(text, n)
    assert not CONTROL.search(shown)
    assert len(shown.replace("\\$", "$")) <= n
    fig = Figure(figsize=(4, 1))
    fig.text(0, 0.5, shown)                                   # the user's defaults: mathtext on
    fig.text(0, 0.2, shown, parse_math=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                        # glyphs missing from DejaVu Sans
        fig.canvas.draw()
    assert fig.texts[0]._preprocess_math(shown) == (shown.replace("\\$", "$"), False)


@given(st.lists(HOSTILE, min_size=1, max_size=4))
@FIGURE_SETTINGS
def test_figures_draw_any_query_text(queries):
    """vhdiag's figures with generated query text, drawn to an Agg canvas, with a user's
    matplotlibrc asking for mathtext and LaTeX (not installed: any text sent to it would raise)."""
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd

    from vhdiag import plot
    top = pd.DataFrame({"queryid": range(len(queries)), "query": queries,
                        "share_pct": [10.0 * (i + 1) for i in range(len(queries))]})
    series = {str(i): pd.DataFrame({"ts": pd.to_datetime(["2026-11-29T12:00:00Z", "2026-11-29T12:15:00Z"]),
                                    "interval_s": [900.0, 900.0], "calls": [3, 4], "mean_exec_ms": [1.5, 2.0],
                                    "complete": [True, False]}) for i in range(len(queries))}
    with matplotlib.rc_context({"text.usetex": True, "text.parse_math": True}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comparison = pd.DataFrame({"queryid": range(len(queries)), "query": queries, "status": "regressed",
                                   "mean_exec_ms": 2.0, "baseline_mean_exec_ms": 1.0})
        sizes = pd.DataFrame({"ts": pd.to_datetime(["2026-11-29T12:00:00Z"] * len(queries)), "schema": queries,
                              "table": queries, "total_bytes": 8192})
        for fig in (plot.top(top, by="share_pct", title=queries[0]),
                    plot.drilldown(series, title=queries[0], queries=dict(zip(series, queries))),
                    plot.compare(comparison, title=queries[0]), plot.growth(sizes),
                    plot.statement(series["0"], 0, title=queries[0])):
            fig.canvas.draw()


@given(HOSTILE)
@settings(max_examples=300, deadline=None)
def test_terminal_safe_shows_every_control(text):
    from vhdiag.display import CONTROL, terminal_safe
    shown = terminal_safe(text)
    assert not any(not c.isprintable() and c != " " for c in shown if ord(c) < 0xA0)
    assert not CONTROL.search(shown)
    assert terminal_safe(shown) == shown                        # a second pass changes nothing
    # Character by character: printable text unchanged, each control its visible escape.
    assert shown == "".join(c if not CONTROL.match(c) else terminal_safe(c) for c in text)
    for c in set(text):
        if CONTROL.match(c):
            assert terminal_safe(c) in ({"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(c),
                                        f"\\x{ord(c):02x}", f"\\u{ord(c):04x}")


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_terminal_safe_keeps_printable_ascii(text):
    from vhdiag.display import terminal_safe
    assert terminal_safe(text) == text


def test_terminal_safe_examples():
    from vhdiag.display import terminal_safe
    assert terminal_safe("a\x1b[2J\x07\x7f\x9b\u202eb\tc\nd") == "a\\x1b[2J\\x07\\x7f\\x9b\\u202eb\\tc\\nd"
    assert terminal_safe("a\nb\tc\rd", keep="\n\t") == "a\nb\tc\\rd"
    assert terminal_safe(None) == ""
