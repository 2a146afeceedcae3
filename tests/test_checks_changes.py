"""What changed since the previous check (issue 11): growth spikes from the history store's table
sizes, and a new slow query's fix fitted to its evidence (pg_sleep waits; index advice)."""
import pandas as pd
import pytest

import vhdiag
import workload
from helpers import scratch_database
from vhdiag import checks
from vhdiag.checks import changes as C
from vhdiag.history import History

NOW = pd.Timestamp("2026-11-30T09:00:00Z")


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def _growth(*rows):
    return pd.DataFrame([{"schema": "public", "table": t, "growth_bytes": g, "days": d,
                          "growth_bytes_per_day": g / d if d else None} for t, g, d in rows])


MB = 1048576


# -- growth spikes ---------------------------------------------------------------------------------
def test_growth_spikes_against_the_usual_rate_and_a_minimum_size():
    window = _growth(("sales", 300 * MB, 1.0), ("steady", 150 * MB, 1.0), ("tiny", 5 * MB, 1.0),
                     ("fresh", 200 * MB, 1.0), ("idle", 200 * MB, 1.0))
    baseline = _growth(("sales", 70 * MB, 7.0), ("steady", 700 * MB, 7.0), ("tiny", 0, 7.0), ("idle", 0, 7.0))
    spikes, unknown = C.growth_spikes(window, baseline, ratio=3.0, min_bytes=100 * MB)
    assert spikes == [("public.sales", "public.sales +300.0 MB (300.0 MB/day, usual 10.0 MB/day: 30x)"),
                      ("public.idle", "public.idle +200.0 MB (200.0 MB/day, usual 0.0 MB/day: it did not grow before)")]
    assert unknown == 1                      # "fresh" has no usual rate; "steady" grows as usual; "tiny" is small


def test_a_bulk_insert_between_snapshots_is_a_growth_spike(pg, tmp_path):
    db = f"vh_growth_{pg.id}"
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    cfg = {"checks": {"growth_spike_min_bytes": MB, "dumps_dir": str(tmp_path)}}
    with scratch_database(pg, db):
        with pg.admin(db) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE TABLE vh_big (id int, pad text); CREATE TABLE vh_small (id int)")
            conn.execute("INSERT INTO vh_big SELECT g, repeat('x', 200) FROM generate_series(1, 1000) g")
        store = History(url)
        with vhdiag.connect(pg.dsn(db)) as target:
            store.snapshot(target, "grow")
            store.snapshot(target, "grow")                   # the usual rate: no growth at all
            first = {r.check: r for r in checks.run("morning", target=pg.dsn(db), history=url, target_name="grow",
                                                    config=cfg).results}["changes.growth"]
            assert first.status == "pass" and first.items == []
            with pg.admin(db) as conn:
                conn.execute("INSERT INTO vh_big SELECT g, repeat('x', 200) FROM generate_series(1, 30000) g")
                conn.execute("INSERT INTO vh_small SELECT g FROM generate_series(1, 10) g")
            store.snapshot(target, "grow")
        second = checks.run("morning", target=pg.dsn(db), history=url, target_name="grow", config=cfg)
        got = {r.check: r for r in second.results}["changes.growth"]
        assert (got.status, got.items, got.new) == ("warn", ["public.vh_big"], ["public.vh_big"])
        assert got.evidence.startswith(f"1 tables grew far faster than usual since {second.previous_ts:%Y-%m-%d %H:%M} "
                                       "UTC (3x the usual rate over 7d and at least 1.0 MB): public.vh_big +")
        assert got.evidence.endswith("it did not grow before)") and "vh_small" not in got.evidence


# -- the new slow query's fix ------------------------------------------------------------------------
def _slow(qid, query):
    return {"kind": "slow_query", "queryid": qid, "query": query, "title": f"Slow query: {query}", "suggestion": "--"}


def test_the_fix_fits_the_evidence():
    sleeper = _slow(1, "SELECT pg_sleep($1), count(*) FROM refill_tasks WHERE status = $2")
    scan = _slow(2, "SELECT count(*) FROM orders WHERE customer_id = $1")
    other = _slow(3, "SELECT sum(amount) FROM orders")
    advice = {"kind": "missing_index", "queryid": 2, "query": scan["query"],
              "suggestion": "CREATE INDEX CONCURRENTLY ON public.orders (customer_id);\n-- runbook 2 ..."}
    (only_sleep, _) = C.slow_query_results([sleeper], {})
    assert only_sleep.fix == C.SLEEP_FIX and "CREATE INDEX" not in only_sleep.fix and "add the index" not in only_sleep.fix
    (indexed, _) = C.slow_query_results([scan, advice], {})
    assert indexed.fix == ("CREATE INDEX CONCURRENTLY ON public.orders (customer_id); by hand, then ANALYZE and compare "
                           "its plan (runbook 2 \"Slow Queries\": add database indexes)")
    assert C.slow_query_results([other], {})[0].fix == C.SLOW_FIX
    mixed = C.slow_query_fix(["1", "2"], [sleeper, scan, advice])
    assert mixed == f"queryid 1: {C.SLEEP_FIX}; queryid 2: CREATE INDEX CONCURRENTLY ON public.orders (customer_id); " \
                    "by hand, then ANALYZE and compare its plan (runbook 2 \"Slow Queries\": add database indexes)"


def test_a_sleeping_statement_is_told_it_waits_on_a_real_server(pg, tmp_path):
    """The planted workload's pg_sleep and its sequential scans of orders, slow under a 1 ms limit."""
    with pg.admin() as conn:
        qids = dict(conn.execute(
            "SELECT query, queryid::text FROM pg_stat_statements WHERE query IN (%s, %s)",
            (workload.SEQ_QUERY, "SELECT pg_sleep($1)")).fetchall())
    run = checks.run("morning", target=pg.dsn(), history=str(tmp_path / "h.sqlite"), target_name="planted",
                     config={"statements": {"slow_query_ms": 1.0}}, record=False)
    slow = {r.check: r for r in run.results}["changes.slow_queries"]
    assert {qids[workload.SEQ_QUERY], qids["SELECT pg_sleep($1)"]} <= set(slow.new)
    fixes = dict(part.split(": ", 1) for part in slow.fix.split("; queryid ")) if "; queryid " in slow.fix else {}
    fixes = {k.removeprefix("queryid "): v for k, v in fixes.items()}
    assert fixes[qids["SELECT pg_sleep($1)"]] == C.SLEEP_FIX
    assert fixes[qids[workload.SEQ_QUERY]].startswith("CREATE INDEX CONCURRENTLY ON public.orders (customer_id)")
