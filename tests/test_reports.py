"""The report pipeline against real servers: a seeded workload with planted problems, real papermill runs.

Each server version gets its own cluster (``servers.extra``), so the planted statements and scans
touch nothing other tests count. Snapshots A, B, C bound a baseline (A, B] and a window (B, C]:

- planted problems, found: a missing-index query among the top by total time (``SEQ``), a query
  over 1000 ms mean (``SLOW``, pg_sleep(1.05) twice), a high-call cheap query (``PK``, 1,500
  primary-key lookups) and a regression (``REGRESS``: pg_sleep 1 ms in the baseline, 60 ms in the
  window);
- planted non-problems, not reported: the primary-key lookup is neither slow nor a regression,
  ``JITTER`` (microsecond lookups, 50 in each period) is no regression, nothing of vhdiag's own
  monitoring is ranked, and ``XSS`` carries ``<script>`` in a comment and must show as text.

A second run over (C, D], after the missing index is created, goes through the CLI: a plan
change (PostgreSQL 16+), no more index advice, and the index page lists both reports.
"""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest

import vhdiag
from vhdiag import reports
from vhdiag.history import History
from helpers import fresh_database

DB = "shop"
APP = "shop_app"
ORDERS_ROWS = 200_000
SEQ = "SELECT count(*) FROM rpt_orders WHERE customer_id = $1"
PK = "SELECT amount FROM rpt_orders WHERE id = $1"
REGRESS = "SELECT id, pg_sleep($1) FROM rpt_items WHERE id = $2"
SLOW = "SELECT pg_sleep($1)"
JITTER = "SELECT sku FROM rpt_items WHERE id = $1"
XSS = "SELECT $1::int AS probe /* <script>alert(1)</script> */"
INDEX_SQL = "CREATE INDEX CONCURRENTLY ON public.rpt_orders (customer_id);"
# A password set in the window, in the dollar-quoted form: no file of the report may hold it.
ROLE_SECRET = "Report-Window-Secret-" + __import__("secrets").token_hex(4)

SETUP = f"""
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE rpt_orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL,
                         note text);
INSERT INTO rpt_orders (customer_id, amount, note)
SELECT g % 5000, (g % 997) / 10.0, 'order ' || g FROM generate_series(1, {ORDERS_ROWS}) AS g;
CREATE TABLE rpt_items (id int PRIMARY KEY, sku text, qty int);
INSERT INTO rpt_items SELECT g, 'sku-' || g, g % 7 FROM generate_series(1, 1000) AS g;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {APP};
ANALYZE;
"""


def _app(server):
    return psycopg.connect(server.dsn(DB, user=APP, via="socket"), autocommit=True)


def _period(server, *, regress_s, pk_calls, xss=False):
    with _app(server) as conn:
        for i in range(20):
            conn.execute("SELECT count(*) FROM rpt_orders WHERE customer_id = %s", (i,))
        for i in range(pk_calls):
            conn.execute("SELECT amount FROM rpt_orders WHERE id = %s", (i + 1,))
        for i in range(5):
            conn.execute("SELECT id, pg_sleep(%s) FROM rpt_items WHERE id = %s", (regress_s, i + 1))
        for _ in range(2):
            conn.execute("SELECT pg_sleep(%s)", (1.05,))
        for i in range(50):
            conn.execute("SELECT sku FROM rpt_items WHERE id = %s", (i + 1,))
        if xss:
            for i in range(3):
                conn.execute("SELECT %s::int AS probe /* <script>alert(1)</script> */", (i,))


class Shop:
    def __init__(self, pg, server, root: Path):
        self.pg, self.server, self.root = pg, server, root
        self.history = str(root / "history.sqlite")
        self.out = root / "reports"
        self.ts: dict[str, str] = {}

    def snapshot(self, label):
        with vhdiag.connect(self.server.dsn(DB)) as target, History(self.history) as history:
            self.ts[label] = history.snapshot(target, "shop")["ts"].isoformat()


@pytest.fixture(scope="module")
def shop(pg, servers, tmp_path_factory):
    """The planted workload on a cluster of this version, its history, and the first report."""
    server = servers.extra(f"reports-{pg.id}", version=pg.id)
    fresh_database(server, DB, SETUP, role=APP)
    s = Shop(pg, server, tmp_path_factory.mktemp(f"shop-{pg.id}"))
    s.snapshot("A")
    _period(server, regress_s=0.001, pk_calls=300)
    s.snapshot("B")
    _period(server, regress_s=0.06, pk_calls=1500, xss=True)
    with server.admin(DB) as conn:
        conn.execute(f"ALTER ROLE {APP} PASSWORD $$" + ROLE_SECRET + "$$")
    s.snapshot("C")
    # A literal DSN with the superuser's password: the runner must never let it reach a file.
    s.first = reports.run_report("slow_queries", target=server.dsn(DB), history=s.history, target_name="shop",
                                 since=s.ts["B"], until=s.ts["C"], out=str(s.out), progress=False,
                                 parameters={"baseline_since": s.ts["A"], "baseline_until": s.ts["B"]})
    return s


def _by_kind(findings):
    out: dict[str, list] = {}
    for f in findings:
        out.setdefault(f["kind"], []).append(f)
    return out


def test_planted_problems_found_exactly(shop):
    summary = json.loads(shop.first.summary.read_text())
    findings = summary["findings"]
    assert findings == shop.first.findings and summary["schema_version"] == reports.SCHEMA_VERSION
    kinds = _by_kind(findings)
    assert sorted(kinds) == ["frequent_query", "missing_index", "regression", "slow_query"], findings
    assert all(len(v) == 1 for v in kinds.values()), findings
    for f in findings:
        assert set(f) >= {"kind", "severity", "subject", "title", "detail", "suggestion", "queryid", "query"}
        assert f["severity"] in ("info", "warning", "critical")
    (slow,), (index,), (regress,), (frequent,) = (kinds[k] for k in
                                                   ("slow_query", "missing_index", "regression", "frequent_query"))
    assert (slow["query"], slow["severity"], slow["metrics"]["calls"]) == (SLOW, "warning", 2)
    assert slow["metrics"]["mean_exec_ms"] > 1000 and slow["subject"] == str(slow["queryid"])
    assert (index["query"], index["subject"]) == (SEQ, "public.rpt_orders")
    assert index["suggestion"].splitlines()[0] == INDEX_SQL
    assert regress["query"] == REGRESS and "mean" in regress["metrics"]["why"]
    assert regress["metrics"]["mean_before_ms"] < 10 < 50 < regress["metrics"]["mean_exec_ms"]
    assert (frequent["query"], frequent["severity"], frequent["metrics"]["calls"]) == (PK, "info", 1500)
    assert "Cache query results" in frequent["suggestion"]


def test_planted_non_problems_not_reported(shop):
    findings = shop.first.findings
    # The cheap primary-key lookup is frequent, but neither slow nor a regression nor index advice.
    assert [f["kind"] for f in findings if f["query"] == PK] == ["frequent_query"]
    assert not [f for f in findings if f["query"] in (JITTER, XSS)]
    assert not [f for f in findings if "rpt_items" in f["subject"]]
    # vhdiag's own monitoring statements are never ranked: not in the findings, not in the tables.
    page = shop.first.html.read_text()
    for own in ("pg_has_role(", "FROM pg_locks", "pg_stat_statements_info", "BEGIN READ ONLY", "set_config(",
                "GENERIC_PLAN, VERBOSE"):
        assert own not in page
        assert not [f for f in findings if own in (f["query"] or "")]


def test_build_without_a_kernel_gives_the_notebooks_findings(shop):
    """reports.build() is what the notebook calls; its findings are exactly the summary's (before
    the ``second`` fixture builds the missing index)."""
    built = reports.build("slow_queries", target=shop.server.dsn(DB), history=shop.history, since=shop.ts["B"],
                          until=shop.ts["C"], target_name="shop", baseline_since=shop.ts["A"],
                          baseline_until=shop.ts["B"])
    for a, b in zip(built.findings, shop.first.findings):
        assert a == b, {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
    assert len(built.findings) == len(shop.first.findings)
    assert built.summary()["findings"] == built.findings and built.target == "shop"


def test_outputs_layout_and_index(shop):
    r = shop.first
    assert r.dir == shop.out / "shop" / r.period   # <out>/<target>/<period>/
    assert r.period == reports.period_name(shop.ts["B"], shop.ts["C"])
    assert {p.name for p in r.dir.iterdir()} >= {"slow_queries.ipynb", "slow_queries.html", "slow_queries.summary.json",
                                                  "slow_queries.report.json", "slow_queries.plans.json"}
    index = (shop.out / "index.html").read_text()
    assert f'href="shop/{r.period}/slow_queries.html"' in index
    html = r.html.read_text()
    assert "<h1" in html and "1. Headline" in html and "8. Findings and what to do next" in html
    assert "data:image/png;base64," in html           # plots inline
    assert "target: str =" not in html and "report = slow_queries.build(" not in html  # no code, no parameters
    assert INDEX_SQL in html
    assert "No earlier plans" in html or "needs PostgreSQL 16" in html
    assert len(html) < 5_000_000


def test_query_text_is_escaped_in_html(shop):
    html = shop.first.html.read_text()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _files(root: Path):
    return [p for p in root.rglob("*") if p.is_file() and p.name != "history.sqlite"]


def test_no_password_in_any_output(shop):
    password = shop.server.password
    files = _files(shop.out)
    assert len(files) >= 6
    for path in files:
        assert password.encode() not in path.read_bytes(), path
    for path in files + [p for p in shop.root.iterdir() if p.name.startswith("history.sqlite")]:
        assert ROLE_SECRET.encode() not in path.read_bytes(), path
    nb = json.loads(shop.first.notebook.read_text())
    params = nb["metadata"]["papermill"]["parameters"]
    assert params["target"] == "env:VHDIAG_REPORT_DSN"
    assert "VHDIAG_REPORT_DSN" not in os.environ   # restored after the run


@pytest.mark.pg(">= 16")
def test_generic_plans_saved(shop):
    plans = json.loads((shop.first.dir / "slow_queries.plans.json").read_text())
    shapes = {p["query"]: p.get("shape") for p in plans["plans"]}
    assert "Seq Scan on public.rpt_orders" in shapes[SEQ]
    assert "No earlier plans" in shop.first.html.read_text()


@pytest.mark.pg("< 16")
def test_generic_plans_need_16(shop):
    assert "EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16 or later" in shop.first.html.read_text()


@pytest.fixture(scope="module")
def second(shop):
    """After the missing index is built: window (C, D] through the CLI, same output root."""
    with shop.server.admin(DB) as conn:
        conn.execute("CREATE INDEX rpt_orders_customer_id_idx ON rpt_orders (customer_id)")
        conn.execute("ANALYZE rpt_orders")
    with _app(shop.server) as conn:
        for i in range(20):
            conn.execute("SELECT count(*) FROM rpt_orders WHERE customer_id = %s", (i,))
    shop.snapshot("D")
    env = {k: v for k, v in os.environ.items() if k not in ("VHDIAG_DSN", "DATABASE_URL", "VHDIAG_HISTORY")}
    proc = subprocess.run(
        [sys.executable, "-m", "vhdiag", "report", "slow-queries", "--dsn", shop.server.dsn(DB),
         "--history", shop.history, "--target-name", "shop", "--since", shop.ts["C"], "--until", shop.ts["D"], "--out", str(shop.out),
         "-p", f"baseline_since={shop.ts['B']}", "-p", f"baseline_until={shop.ts['C']}", "-p", "top_n=5"],
        capture_output=True, text=True, timeout=300, env=env)
    return proc


def test_cli_report_second_period(shop, second):
    assert second.returncode == 0, second.stderr
    period = reports.period_name(shop.ts["C"], shop.ts["D"])
    folder = shop.out / "shop" / period
    assert f"{folder / 'slow_queries.html'}" in second.stdout
    findings = json.loads((folder / "slow_queries.summary.json").read_text())["findings"]
    assert not [f for f in findings if f["kind"] == "missing_index"]   # the index exists now
    index = (shop.out / "index.html").read_text()
    assert index.index(f"shop/{period}/slow_queries.html") < index.index(f"shop/{shop.first.period}/slow_queries.html")
    assert shop.server.password not in second.stdout + second.stderr
    for path in _files(shop.out):
        assert shop.server.password.encode() not in path.read_bytes(), path


@pytest.mark.pg(">= 16")
def test_plan_change_against_previous_report(shop, second):
    folder = shop.out / "shop" / reports.period_name(shop.ts["C"], shop.ts["D"])
    changes = [f for f in json.loads((folder / "slow_queries.summary.json").read_text())["findings"]
               if f["kind"] == "plan_change"]
    assert [f["query"] for f in changes] == [SEQ]
    assert "Seq Scan on public.rpt_orders" in changes[0]["metrics"]["before"]
    assert "rpt_orders_customer_id_idx" in changes[0]["metrics"]["after"]
    assert f"Compared with the report of {shop.first.period}" in (folder / "slow_queries.html").read_text()


def test_cumulative_fallback_without_history(shop, tmp_path):
    """An empty store: figures since stats reset, clearly labelled; no baseline, no drill-down."""
    report = reports.run_report("slow_queries", target=shop.server.dsn(DB), history=str(tmp_path / "empty.sqlite"),
                                window="1h", out=str(tmp_path / "out"), progress=False)
    kinds = _by_kind(report.findings)
    assert "no_history" in kinds and "regression" not in kinds
    assert SLOW in [f["query"] for f in kinds["slow_query"]]
    html = report.html.read_text()
    assert "Since stats reset, no history" in html
    assert "<script>alert(1)" not in html
    for path in _files(tmp_path / "out"):
        assert shop.server.password.encode() not in path.read_bytes(), path


# -- the report package: build() without a kernel, settings, schema, wording ------------------
def _schema():
    import jsonschema
    schema = json.loads((Path(reports.__file__).parent / "summary.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_every_summary_matches_the_schema(shop, second):
    validator = _schema()
    summaries = list(shop.out.rglob("*.summary.json"))
    assert len(summaries) >= 2
    for path in summaries:
        errors = sorted(validator.iter_errors(json.loads(path.read_text())), key=str)
        assert not errors, (path, [e.message for e in errors])
    broken = next(d for d in map(json.loads, (p.read_text() for p in summaries)) if d["findings"])
    broken["findings"][0]["severity"] = "urgent"
    assert list(validator.iter_errors(broken))   # the schema can fail


def test_settings_file_changes_what_a_real_run_flags(shop, tmp_path):
    """[statements] slow_query_ms = 50 in a vhdiag.toml (--config): the 60 ms regression is now
    also a slow query; with the defaults it is not."""
    assert [f["query"] for f in shop.first.findings if f["kind"] == "slow_query"] == [SLOW]
    config = tmp_path / "vhdiag.toml"
    config.write_text("[statements]\nslow_query_ms = 50.0\n")
    run = reports.run_report("slow_queries", target=shop.server.dsn(DB), history=shop.history, target_name="shop",
                             since=shop.ts["B"],
                             until=shop.ts["C"], out=str(tmp_path / "out"), progress=False, config=str(config),
                             parameters={"baseline_since": shop.ts["A"], "baseline_until": shop.ts["B"]})
    slow = {f["query"]: f for f in run.findings if f["kind"] == "slow_query"}
    assert set(slow) == {SLOW, REGRESS}
    assert "over the runbook's 50 ms" in slow[REGRESS]["detail"]
    summary = json.loads(run.summary.read_text())
    assert summary["parameters"]["slow_ms"] == 50.0


def test_findings_name_statements_by_text_and_fit_the_cause(shop):
    kinds = _by_kind(shop.first.findings)
    (slow,), (frequent,), (index,), (regress,) = (kinds[k] for k in
                                                   ("slow_query", "frequent_query", "missing_index", "regression"))
    # Statements are named by their text, counts in words.
    assert slow["title"] == f"Slow query: {SLOW}: mean {slow['metrics']['mean_exec_ms']:,.1f} ms over 2 calls"
    assert f"«{SLOW}»" in slow["detail"] and "ran 2 times" in slow["detail"]
    # A statement that sleeps gets no index or cache advice.
    assert "pg_sleep()" in slow["detail"]
    assert "Add database indexes" not in slow["suggestion"] and "Cache query results" not in slow["suggestion"]
    assert slow["suggestion"].startswith("-- Find out why the application sleeps inside the database")
    # 1,500 single-row lookups by primary key: the N+1 pattern.
    assert frequent["title"] == "N+1 query: 1,500 single-row lookups (" + \
        f"{frequent['metrics']['calls_share_pct']:.0f}% of calls)"
    assert "WHERE id = ANY($1)" in frequent["suggestion"]
    # One index suggestion for the table and statement, runbook advice that fits.
    assert index["title"] == "Missing index: public.rpt_orders (customer_id)"
    assert "Add database indexes" in index["suggestion"]
    assert regress["title"].startswith("Regression: SELECT id, pg_sleep($1) FROM rpt_items WHERE id =…: mean ")
    html = shop.first.html.read_text()
    assert "total_time DESC" not in html and "ORDER BY total_exec_time DESC" in html
    assert not re.search(r"(?<![\d,.])1 (calls|times|sequential scans)\b", html)


def test_two_targets_in_one_week_both_survive(shop, tmp_path):
    """Two databases reported for the same ISO week into one --out: two folders, one index listing
    both; the CLI with --quiet prints nothing on success."""
    with shop.server.admin("postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS shop_eu")
        conn.execute("CREATE DATABASE shop_eu")
    with shop.server.admin("shop_eu") as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    week = pd.Timestamp(shop.ts["C"]).isocalendar()
    week = f"{week[0]}-W{week[1]:02d}"
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("VHDIAG_DSN", "DATABASE_URL", "VHDIAG_HISTORY")}
    for db, name in ((DB, ["--target-name", "shop"]), ("shop_eu", [])):
        proc = subprocess.run([sys.executable, "-m", "vhdiag", "report", "slow_queries", "--dsn", shop.server.dsn(db),
                               "--history", shop.history, "--week", week, "--out", str(out), "--quiet", *name],
                              capture_output=True, text=True, timeout=300, env=env)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), proc.stderr
    eu = f"127.0.0.1_{shop.server.port}_shop_eu"
    folders = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*") if not p.name.startswith("."))
    assert folders == sorted([f"shop/{week}", f"{eu}/{week}"])
    index = (out / "index.html").read_text()
    assert f'href="shop/{week}/slow_queries.html"' in index and f'href="{eu}/{week}/slow_queries.html"' in index
    assert f"week {int(week[-2:])} of {week[:4]}" in index


def test_quiet_snapshot_prints_nothing(shop, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("VHDIAG_DSN", "DATABASE_URL", "VHDIAG_HISTORY")}
    store = tmp_path / "h.sqlite"
    base = [sys.executable, "-m", "vhdiag", "snapshot", "--dsn", shop.server.dsn(DB), "--history", str(store)]
    proc = subprocess.run(base + ["--quiet"], capture_output=True, text=True, timeout=120, env=env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    proc = subprocess.run(base, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1 and proc.stdout.startswith("snapshot 2 of ")
    assert "{" not in proc.stdout and "pruned" not in proc.stdout
    bad = subprocess.run(base[:-2] + ["--history", str(tmp_path / "h.sqlite"), "--quiet", "--dsn",
                                      shop.server.dsn("no_such_db")], capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: database \"no_such_db\" does not exist")
