"""The capacity report against a real workload on each server (no mocks): a steadily growing table
snapshotted once a "day" (real snapshots recorded with timestamps spread over two weeks), a table
with dead rows and autovacuum off, an unused index, a duplicate pair where only one is used, and
connection bursts over 20 and over 30.

What it must say: the growing table is the top grower and the database's quota date lies within
the stated range of the true date; the dead-row table, the unused index and the duplicate are
reported with their real sizes; the advice drops the unused member of the pair; the bursts come with
their times. What it must not: the used primary key, the small table with few dead rows.
"""
from __future__ import annotations

import json

import pandas as pd
import psycopg
import pytest

import vhdiag
import workload
from vhdiag import reports
from vhdiag.history import History
from vhdiag.history.snapshot import collect
from helpers import fresh_database

DB = "fleet"
DAYS = 14
ROWS_PER_DAY = 6000
SETUP = """
CREATE TABLE cap_growing (id bigserial PRIMARY KEY, payload text NOT NULL);
CREATE TABLE cap_dead (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
INSERT INTO cap_dead SELECT g, g FROM generate_series(1, 50000) g;
DELETE FROM cap_dead WHERE id <= 30000;
CREATE TABLE cap_small (id int PRIMARY KEY, v int);
INSERT INTO cap_small SELECT g, g FROM generate_series(1, 100) g;
DELETE FROM cap_small WHERE id <= 5;
CREATE TABLE cap_items (id int PRIMARY KEY, sku text NOT NULL, qty int NOT NULL);
INSERT INTO cap_items SELECT g, 'sku-' || g, g % 50 FROM generate_series(1, 20000) g;
CREATE INDEX cap_items_qty_idx ON cap_items (qty);
CREATE INDEX cap_items_sku_b ON cap_items (sku);
ANALYZE cap_items;
CREATE TABLE cap_churn (id int NOT NULL, k text NOT NULL) WITH (autovacuum_enabled = off);
INSERT INTO cap_churn SELECT g, md5(g::text) FROM generate_series(1, 300000) g;
CREATE INDEX cap_churn_k_idx ON cap_churn (k);
"""


def _record(server, store, ts):
    with vhdiag.connect(server.dsn(DB)) as target:
        frames = collect(target)
    frames["header"]["ts"] = ts
    store.record(frames, DB)


def _burst(server, n):
    return [psycopg.connect(server.dsn(DB, via="socket"), autocommit=True, application_name="cap_burst")
            for _ in range(n)]


@pytest.fixture(scope="module")
def fleet(pg, servers, tmp_path_factory):
    server = servers.extra(f"capacity-{pg.id}", version=pg.id)
    fresh_database(server, DB)
    with server.admin(DB) as conn:
        conn.execute(SETUP)
        # The used member of the pair scans first (alone); its twin, sorted first by name, never does.
        for i in range(1, 31):
            conn.execute("SELECT qty FROM cap_items WHERE sku = %s", (f"sku-{i}",))
            conn.execute("SELECT sku FROM cap_items WHERE id = %s", (i,))
        conn.execute("CREATE INDEX cap_items_sku_a ON cap_items (sku)")
        # 90 % of cap_churn deleted and vacuumed: no dead row left, but its heap and its index
        # (built full, at 90 %) keep their pages, a tenth used.
        conn.execute("DELETE FROM cap_churn WHERE id % 10 <> 0")
        workload.flush_stats(conn)                       # counted before the VACUUM that clears them
        conn.execute("VACUUM (ANALYZE) cap_churn")
        conn.execute("SELECT id FROM cap_churn WHERE k = md5('10')")    # used: not an unused index
        workload.flush_stats(conn)
    root = tmp_path_factory.mktemp(f"capacity-{pg.id}")
    url = str(root / "history.sqlite")
    now = pd.Timestamp.now(tz="UTC").floor("h")
    t0 = now - pd.Timedelta(days=DAYS)
    times, sizes, bursts = [], [], {}
    with History(url) as store:
        for day in range(DAYS):
            held = []
            if day == 5:
                held = _burst(server, 25)
            if day == 7:
                held = _burst(server, 35)
            ts = t0 + pd.Timedelta(days=day)
            _record(server, store, ts)
            for c in held:
                c.close()
            if held:
                bursts[len(held)] = ts
            with server.admin(DB) as conn:
                sizes.append(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
                conn.execute("INSERT INTO cap_growing (payload) SELECT repeat('x', 200) || g "
                             f"FROM generate_series(1, {ROWS_PER_DAY}) g")
                workload.flush_stats(conn)
            times.append(ts)
    # The planted growth: bytes per day over the two weeks, measured on the server.
    rate = (sizes[-1] - sizes[0]) / (DAYS - 1)
    quota = int(sizes[-1] + 30 * rate)          # crossed about 30 days after the last snapshot
    true_date = times[-1] + pd.Timedelta(days=(quota - sizes[-1]) / rate)
    with server.admin(DB) as conn:
        sizes_now = {r[0]: r[1] for r in conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public'").fetchall()}
    r = reports.build("capacity", target=server.dsn(DB), history=url, target_name=DB, until=now.isoformat(),
                      disk_quota_bytes=quota)
    return {"report": r, "quota": quota, "true_date": true_date, "bursts": bursts, "sizes": sizes_now,
            "server": server, "url": url, "root": root, "until": now, "rate": rate}


def _kinds(r, kind):
    return [f for f in r.findings if f["kind"] == kind]


def test_growing_table_is_the_top_grower(fleet):
    r = fleet["report"]
    top = _kinds(r, "table_growth")
    assert top[0]["subject"] == "public.cap_growing" and top[0]["metrics"]["rank"] == 1
    assert r.growth.iloc[0]["table"] == "cap_growing"
    assert {f["subject"] for f in top} == {"public.cap_growing"}   # nothing else grows 1 MB a day


def test_quota_date_lies_within_the_stated_range(fleet):
    r = fleet["report"]
    (disk,) = _kinds(r, "disk_forecast")
    f = r.forecasts["database fleet"][0]
    c = f.crossings[2]
    assert c.label == "the quota" and c.status == "crosses"
    true = fleet["true_date"]
    slack = pd.Timedelta(days=1)
    assert c.earliest - slack <= true <= c.latest + slack, (c, true)
    # the point forecast: within 10 % of the 30 days to go
    assert abs((c.point - true) / pd.Timedelta(days=1)) <= 3
    assert disk["severity"] == "critical" and "between" in disk["detail"]   # the quota itself, within 90 days
    assert f.backtest is not None and f.backtest["mape_pct"] < 5


def test_dead_rows_unused_and_duplicate_with_real_sizes(fleet):
    r, sizes = fleet["report"], fleet["sizes"]
    dead = {f["subject"]: f for f in _kinds(r, "dead_tuples")}
    assert set(dead) == {"public.cap_dead"}              # not cap_small (5 dead rows)
    assert dead["public.cap_dead"]["metrics"]["n_dead_tup"] == 30000
    assert "Autovacuum is off" in dead["public.cap_dead"]["detail"]
    assert dead["public.cap_dead"]["suggestion"].endswith("VACUUM (ANALYZE) public.cap_dead;")
    unused = {f["subject"]: f for f in _kinds(r, "unused_index")}
    assert set(unused) == {"public.cap_items_qty_idx"}
    assert unused["public.cap_items_qty_idx"]["metrics"]["bytes"] == sizes["cap_items_qty_idx"]
    (dup,) = _kinds(r, "duplicate_index")
    assert dup["subject"] == "public.cap_items_sku_a" and dup["metrics"]["keep"] == "cap_items_sku_b"
    assert dup["suggestion"] == "DROP INDEX CONCURRENTLY public.cap_items_sku_a;"
    assert dup["metrics"]["bytes"] == sizes["cap_items_sku_a"]
    every = json.dumps(r.findings)
    assert "cap_items_pkey" not in every and "cap_small" not in every
    assert "public.cap_churn" not in dead                # vacuumed: no dead row, only free space


def test_bursts_appear_with_their_times(fleet):
    r, bursts = fleet["report"], fleet["bursts"]
    crit = [f for f in _kinds(r, "connections_headroom") if f["severity"] == "critical"]
    warn = [f for f in _kinds(r, "connections_headroom") if f["severity"] == "warning"]
    assert len(crit) == 1 and len(warn) == 1
    assert crit[0]["metrics"]["times"] == [bursts[35].isoformat()]
    assert warn[0]["metrics"]["times"] == [bursts[25].isoformat()]
    assert crit[0]["metrics"]["peak"] >= 36 and 26 <= warn[0]["metrics"]["peak"] <= 30
    assert f"{bursts[35]:%Y-%m-%d %H:%M} UTC" in crit[0]["title"]


def test_without_quota_it_says_so(fleet):
    r = reports.build("capacity", target=fleet["server"].dsn(DB), history=fleet["url"], target_name=DB,
                      until=fleet["until"].isoformat())
    assert not _kinds(r, "disk_forecast")
    assert any("no disk quota given" in n for n in r.notes)


def test_report_runs_as_a_notebook_and_validates(fleet, pg):
    if pg.id != "pg18":
        pytest.skip("the notebook run is the same on both versions: once is enough")
    import jsonschema
    from importlib.resources import files
    res = reports.run_report("capacity", target=fleet["server"].dsn(DB), history=fleet["url"], target_name=DB,
                             until=fleet["until"].isoformat(), out=str(fleet["root"] / "reports"), progress=False,
                             parameters={"disk_quota_bytes": fleet["quota"]})
    summary = json.loads(res.summary.read_text())
    schema = json.loads(files("vhdiag.reports").joinpath("summary.schema.json").read_text())
    jsonschema.validate(summary, schema)
    assert {f["kind"] for f in summary["findings"]} >= {"table_growth", "disk_forecast", "connections_headroom",
                                                        "dead_tuples", "unused_index", "duplicate_index"}
    html = res.html.read_text()
    assert "Theil-Sen" in html and "data:image/png" in html


def _fresh_size(server, index_sql):
    """Bytes of the same index built afresh (at its default fillfactor): what bloat is measured against."""
    with server.admin(DB) as conn:
        conn.execute(index_sql)
        size = conn.execute("SELECT pg_relation_size('cap_churn_fresh')").fetchone()[0]
        conn.execute("DROP INDEX cap_churn_fresh")
    return size


def test_index_bloat_estimate_names_its_method(fleet):
    from vhdiag.analysis.capacity_maintenance import STATS_METHOD
    r, sizes = fleet["report"], fleet["sizes"]
    bloat = {f["subject"]: f for f in _kinds(r, "bloat")}
    # cap_churn's heap is a tenth used but holds no dead row: the dead-row share sees no bloat there
    assert set(bloat) == {"public.cap_churn_k_idx"}, r.index_bloat.to_string()
    f = bloat["public.cap_churn_k_idx"]
    real = sizes["cap_churn_k_idx"]
    true_bloat = real - _fresh_size(fleet["server"], "CREATE INDEX cap_churn_fresh ON cap_churn (k)")
    assert f["metrics"]["method"] == STATS_METHOD and STATS_METHOD in f["detail"]
    assert f["metrics"]["bytes"] == real
    assert abs(f["metrics"]["bloat_bytes"] - true_bloat) <= 0.1 * true_bloat, (f["metrics"], true_bloat)
    assert 80 <= f["metrics"]["bloat_pct"] <= 95
    assert f["suggestion"].startswith("REINDEX INDEX CONCURRENTLY public.cap_churn_k_idx;")
    row = r.index_bloat.set_index("index").loc["cap_items_pkey"]
    assert not row["over"] and row["bloat_pct"] < 30    # built once, never churned
    assert any("pgstattuple is not installed" in line for line in reports.capacity.bloat_method_lines(r))


def test_pgstattuple_measures_the_top_relations_when_installed(fleet):
    from vhdiag.collect.bloat import INDEX_METHOD, TABLE_METHOD
    server = fleet["server"]
    with server.admin(DB) as conn:
        conn.execute("CREATE EXTENSION pgstattuple")
    try:
        r = reports.build("capacity", target=server.dsn(DB), history=fleet["url"], target_name=DB,
                          until=fleet["until"].isoformat(), disk_quota_bytes=fleet["quota"])
    finally:
        with server.admin(DB) as conn:
            conn.execute("DROP EXTENSION pgstattuple")
    bloat = {f["subject"]: f for f in _kinds(r, "bloat")}
    assert set(bloat) == {"public.cap_churn", "public.cap_churn_k_idx"}
    heap, idx = bloat["public.cap_churn"], bloat["public.cap_churn_k_idx"]
    assert heap["metrics"]["method"] == TABLE_METHOD and heap["metrics"]["relation"] == "table"
    assert heap["metrics"]["bloat_pct"] >= 80 and TABLE_METHOD in heap["detail"]
    assert idx["metrics"]["method"] == INDEX_METHOD and 80 <= idx["metrics"]["bloat_pct"] <= 95
    assert idx["metrics"]["bytes"] == fleet["sizes"]["cap_churn_k_idx"]
    assert 1 <= (r.index_bloat["method"] == INDEX_METHOD).sum() <= 5     # bloat_exact_top_n, no more
    assert not any("not installed" in line for line in reports.capacity.bloat_method_lines(r))


def test_a_user_function_named_like_pgstattuple_is_never_called(fleet):
    from vhdiag.collect import bloat as B
    server = fleet["server"]
    with server.admin(DB) as conn:
        conn.execute("CREATE FUNCTION public.pgstattuple_approx(regclass) RETURNS TABLE (table_len bigint) "
                     "LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'user function called'; END$$")
    try:
        with vhdiag.connect(server.dsn(DB)) as t:
            assert B.extension(t) is None
            assert B.exact(t, [("public", "cap_churn")], []).empty
    finally:
        with server.admin(DB) as conn:
            conn.execute("DROP FUNCTION public.pgstattuple_approx(regclass)")


def test_connections_by_application_peak_and_p95_from_the_history(fleet):
    import numpy as np
    r, bursts = fleet["report"], fleet["bursts"]
    h = r.by_app_history
    row = h[(h["application"] == "cap_burst") & (h["state"] == "(all states)")].iloc[0]
    # 14 snapshots: the app held 25 connections in one, 35 in another, none in the twelve others
    assert row["snapshots"] == DAYS and row["peak"] == 35 and row["peak_ts"] == bursts[35]
    assert row["p95"] == pytest.approx(np.percentile([0] * 12 + [25, 35], 95))
    assert row["peak_pct_of_usable"] == pytest.approx(100 * 35 / r.usable)
    assert h.iloc[0]["application"] == "cap_burst"          # the largest peak first
    idle = h[(h["application"] == "cap_burst") & (h["state"] == "idle")].iloc[0]
    assert idle["peak"] == 35


def _metrics_csv(path, start, days):
    """Hourly CPU and memory: CPU 30 % rising 2 points a day, plus 15 points from 12:00 to 17:59
    each day (the daily peak 45 + 2 x day crosses the runbook's 85 % on day 20); memory flat at 50 %."""
    rows = ["ts,cpu_pct,memory_pct"]
    cpu = []
    for h in range(days * 24):
        ts = start + pd.Timedelta(hours=h)
        v = 30 + 2 * h / 24 + (15 if 12 <= ts.hour < 18 else 0)
        cpu.append(v)
        rows.append(f"{ts.isoformat()},{v:.4f},50")
    path.write_text("\n".join(rows) + "\n")
    return cpu


def test_cpu_forecast_and_replica_limit_from_a_metrics_file(fleet):
    until = fleet["until"]
    start = until.floor("D") - pd.Timedelta(days=DAYS)
    path = fleet["root"] / "metrics.csv"
    cpu = _metrics_csv(path, start, DAYS)
    r = reports.build("capacity", target=fleet["server"].dsn(DB), history=fleet["url"], target_name=DB,
                      until=until.isoformat(), metrics=str(path))
    (cf,) = _kinds(r, "cpu_forecast")
    assert not _kinds(r, "memory_forecast")                  # flat at 50 %: no date
    f = r.forecasts["daily peak cpu_pct"][0]
    crit = f.crossings[1]
    assert crit.label == "runbook critical" and crit.status == "crosses"
    true = start + pd.Timedelta(days=20)                   # 30 + 2 x t + 15 = 85
    assert abs((crit.point - true) / pd.Timedelta(days=1)) <= 1.5, (crit, true)
    assert crit.earliest <= crit.point <= crit.latest
    assert cf["severity"] == "critical" and "between" in cf["detail"]
    rep = r.replicas.set_index("metric")
    seen = [v for v, h in zip(cpu, range(len(cpu))) if start + pd.Timedelta(hours=h) <= until]
    assert rep.loc["cpu_pct", "hours_above_scale"] == sum(v > 70 for v in seen)
    assert rep.loc["cpu_pct", "hours_above_critical"] == sum(v > 85 for v in seen)
    assert rep.loc["memory_pct", "hours_above_scale"] == 0
    (rl,) = _kinds(r, "replica_limit")
    limit = 70 * (5 - 1) / 2                                # 140 % of the minimum fleet
    assert rl["subject"] == "cpu_pct" and rl["metrics"]["limit_pct"] == limit
    assert f.crossings[2].status == "crosses"
    assert abs((f.crossings[2].point - (start + pd.Timedelta(days=(limit - 45) / 2))) / pd.Timedelta(days=1)) <= 3
    assert "load of the minimum fleet (2 replicas)" in rl["detail"] and "keeps its trend" in rl["detail"]
    assert "load of the minimum fleet" in r.replica_assumption
