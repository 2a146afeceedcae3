"""vhdiag.analysis: slow-query rankings, regressions, index advice and findings on constructed frames."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from vhdiag.analysis import findings as F
from vhdiag.analysis import plans as P
from vhdiag.analysis import query_text as Q
from vhdiag.analysis import slow_queries as sq
from vhdiag.collect import _base

COLLECTED = (_base.SQL_DIR / "statements_info.sql").read_text()


def frame(*rows) -> pd.DataFrame:
    """Window rows as History.statements() returns them; each row gives queryid, query, calls,
    total_exec_ms and whatever else differs from the defaults."""
    out = []
    for r in rows:
        calls, total = r["calls"], r["total_exec_ms"]
        out.append({"queryid": r["queryid"], "userid": 10, "dbid": 5, "user": r.get("user", "app"),
                    "database": "shop", "toplevel": r.get("toplevel", True), "query": r["query"], "calls": calls,
                    "total_exec_ms": total, "mean_exec_ms": total / calls if calls else None,
                    "stddev_exec_ms": 0.0, "rows_per_call": 1.0, "cache_hit_pct": 100.0,
                    "shared_blks_read": r.get("shared_blks_read", 0), "temp_blks_read": 0,
                    "temp_blks_written": r.get("temp_blks_written", 0), "complete": r.get("complete", True),
                    "notes": r.get("notes", "")})
    return sq.prepare(pd.DataFrame(out))


def test_own_statements_are_marked_not_guessed():
    # PostgreSQL 15 keeps a leading comment, 18 drops it; the marker after the first keyword stays.
    pg15 = COLLECTED.replace("{pgss}", '"public"')
    pg18 = 'SELECT /* vhdiag */ i.dealloc,\n       i.stats_reset\nFROM "public".pg_stat_statements_info AS i'
    assert Q.is_own(pg15) and Q.is_own(pg18)
    # The same text without the marker is an application's, whoever runs it.
    assert not Q.is_own(pg18.replace(" /* vhdiag */", ""), "monitor", "monitor")
    assert not Q.is_own("SELECT count(*) FROM pg_stat_activity", "monitor", "monitor")
    assert Q.is_own("SELECT /* vhdiag */ set_config($3, $4, $5), set_config($6, $1, $7)")
    assert Q.is_own("EXPLAIN /* vhdiag */ (GENERIC_PLAN, VERBOSE, FORMAT JSON) SELECT 1", "app", "monitor")


def test_session_statements_are_own_only_for_the_monitoring_role():
    for text in ("BEGIN READ ONLY", "ROLLBACK", "COMMIT", "SAVEPOINT $1", 'RELEASE "_pg3_1"',
                 "select pg_catalog.version()", "show  transaction isolation level"):
        assert Q.is_own(text, "monitor", "monitor"), text
        assert not Q.is_own(text, "app", "monitor"), text
        assert not Q.is_own(text), text
    assert not Q.is_own("SELECT count(*) FROM orders WHERE customer_id = $1", "monitor", "monitor")
    assert not Q.is_own("BEGINNING_TABLE", "monitor", "monitor") and not Q.is_own(None, "monitor", "monitor")


def test_exclude_own_and_roles():
    w = frame({"queryid": 1, "query": "SELECT 1 FROM t WHERE a = $1", "calls": 1, "total_exec_ms": 1.0},
              {"queryid": 2, "query": COLLECTED, "calls": 1, "total_exec_ms": 1.0},
              {"queryid": 3, "query": "SELECT 2 FROM t WHERE a = $1", "calls": 1, "total_exec_ms": 1.0,
               "user": "backup"})
    kept, excluded = sq.exclude_own(w, "monitor", "backup, other")
    assert list(kept["queryid"]) == [1] and sorted(excluded["queryid"]) == [2, 3]


def test_shape_tables_and_predicate_columns():
    s = Q.shape("SELECT o.id FROM shop.orders o JOIN customers c ON c.id = o.customer_id AND c.region = $3 "
                "WHERE o.status = $1 AND o.created_at > $2 AND o.total BETWEEN $4 AND $5")
    assert s.tables == (("shop", "orders"), (None, "customers"))
    assert s.index_columns(("shop", "orders")) == ["status", "created_at"]   # equality first, then one range
    assert s.index_columns((None, "customers")) == ["region"]                # the join column is not a value
    # Unqualified columns with two tables: which table is the catalog's business, not a guess.
    assert Q.shape("SELECT 1 FROM a, b WHERE x = $1").equality == {}
    assert Q.shape("SELECT count(*) FROM t WHERE a = $1 OR b = $2").equality == {}
    assert Q.shape("SELECT (") is None
    cte = Q.shape("WITH r AS (SELECT * FROM big WHERE k = $1) SELECT * FROM r WHERE r.v = $2")
    assert cte.tables == ((None, "big"),) and cte.index_columns((None, "big")) == ["k"]
    assert Q.quote_ident("Orders") == '"Orders"' and Q.quote_ident("user") == '"user"' and Q.quote_ident("ok_1") == "ok_1"


def test_rankings_and_shares_count_toplevel_time_only():
    w = frame({"queryid": 1, "query": "q1", "calls": 10, "total_exec_ms": 600.0},
              {"queryid": 2, "query": "q2", "calls": 1000, "total_exec_ms": 400.0, "shared_blks_read": 50},
              {"queryid": 3, "query": "nested", "calls": 5, "total_exec_ms": 300.0, "toplevel": False})
    assert list(sq.top_by(w, "total_time", 2)["queryid"]) == [1, 2]
    assert list(sq.top_by(w, "calls", 10)["queryid"]) == [2, 1, 3]
    assert list(sq.top_by(w, "shared_blks_read", 10)["queryid"]) == [2]
    assert sq.top_by(w, "temp", 10).empty
    assert list(sq.top_by(w, "total_time", 1).columns) == sq.RANK_COLUMNS
    assert w.set_index("queryid")["share_pct"].to_dict() == {1: 60.0, 2: 40.0, 3: 30.0}
    h = sq.headline(w, top=1)
    assert (h["total_exec_ms"], h["calls"], h["top_share_pct"]) == (1000.0, 1010, 60.0)


def test_slow_is_strictly_over_the_threshold():
    w = frame({"queryid": 1, "query": "a", "calls": 2, "total_exec_ms": 2000.0},
              {"queryid": 2, "query": "b", "calls": 2, "total_exec_ms": 2100.0},
              {"queryid": 3, "query": "c", "calls": 1, "total_exec_ms": 9000.0})
    assert list(sq.slow(w, 1000)["queryid"]) == [3, 2]


def test_regressions_need_ratio_and_floor():
    base = frame({"queryid": 1, "query": "jitter", "calls": 100, "total_exec_ms": 1.0},
                 {"queryid": 2, "query": "slower", "calls": 5, "total_exec_ms": 5.0},
                 {"queryid": 3, "query": "more calls", "calls": 100, "total_exec_ms": 100.0},
                 {"queryid": 4, "query": "same", "calls": 10, "total_exec_ms": 1000.0},
                 {"queryid": 5, "query": "cheap more calls", "calls": 10, "total_exec_ms": 0.2})
    win = frame({"queryid": 1, "query": "jitter", "calls": 100, "total_exec_ms": 3.0},      # 3x, +0.02 ms
                {"queryid": 2, "query": "slower", "calls": 5, "total_exec_ms": 300.0},     # 60x, +59 ms
                {"queryid": 3, "query": "more calls", "calls": 1000, "total_exec_ms": 1000.0},  # total 10x
                {"queryid": 4, "query": "same", "calls": 10, "total_exec_ms": 1100.0},
                {"queryid": 5, "query": "cheap more calls", "calls": 1000, "total_exec_ms": 20.0},
                {"queryid": 6, "query": "new", "calls": 1, "total_exec_ms": 500.0})
    regs = sq.regressions(win, base, ratio=2, floor_ms=10, share_pct=5, window_s=3600, baseline_s=3600)
    assert regs.set_index("queryid")["why"].to_dict() == {3: "total", 2: "mean,total"}
    # Totals are compared per hour: a window 100 times as long as the baseline may hold 100 times the time.
    regs = sq.regressions(win, base, ratio=2, floor_ms=10, share_pct=5, window_s=3600 * 100, baseline_s=3600)
    assert regs.set_index("queryid")["why"].to_dict() == {2: "mean"}
    new = sq.new_queries(win, base, share_pct=5)
    assert list(new["queryid"]) == [6] and bool(new["significant"].iloc[0])


def test_frequent_cheap_queries():
    w = frame({"queryid": 1, "query": "pk", "calls": 5000, "total_exec_ms": 50.0},
              {"queryid": 2, "query": "slow", "calls": 2, "total_exec_ms": 3000.0},
              {"queryid": 3, "query": "few", "calls": 900, "total_exec_ms": 9.0})
    assert list(sq.frequent(w, share_pct=20, min_calls=1000)["queryid"]) == [1]


TABLES = pd.DataFrame({"schema": ["public", "public", "Sales"], "table": ["orders", "small", "Items"],
                       "seq_scan": [40, 1000, 10], "seq_tup_read": [8_000_000, 50_000, 500_000],
                       "n_live_tup": [200_000, 50, 50_000], "total_bytes": [16 << 20, 8192, 4 << 20],
                       "idx_scan": [10, 0, 0]})
INDEXES = pd.DataFrame({"schema": ["public", "public"], "table": ["orders", "orders"],
                        "index": ["orders_pkey", "orders_bad_idx"], "columns": ["id", "note"], "valid": [True, False]})


def test_seq_scan_tables_and_index_advice():
    heavy = sq.seq_scan_tables(TABLES, min_rows=10_000)
    assert list(heavy["table"]) == ["orders", "Items"]
    top = frame({"queryid": 1, "query": "SELECT count(*) FROM orders WHERE customer_id = $1 AND created_at > $2",
                 "calls": 20, "total_exec_ms": 200.0},
                {"queryid": 2, "query": "SELECT amount FROM orders WHERE id = $1", "calls": 900, "total_exec_ms": 9.0},
                {"queryid": 3, "query": 'SELECT * FROM "Sales"."Items" WHERE "Sku" = $1', "calls": 5,
                 "total_exec_ms": 50.0},
                {"queryid": 4, "query": "SELECT * FROM small WHERE v = $1", "calls": 5, "total_exec_ms": 5.0},
                {"queryid": 5, "query": "SELECT * FROM orders WHERE note = $1", "calls": 5, "total_exec_ms": 4.0})
    advice = sq.index_advice(top, heavy, INDEXES, TABLES)
    assert list(advice["suggestion"]) == [
        "CREATE INDEX CONCURRENTLY ON public.orders (customer_id, created_at);",
        'CREATE INDEX CONCURRENTLY ON "Sales"."Items" ("Sku");',
        "CREATE INDEX CONCURRENTLY ON public.orders (note);",   # an invalid index serves nothing
    ]
    assert list(advice["queryid"]) == [1, 3, 5]


def test_completeness_names_what_happened_and_when():
    ts = pd.to_datetime(["2026-11-29T12:00Z", "2026-11-29T12:15Z", "2026-11-29T12:30Z", "2026-11-29T13:30Z"])
    snaps = pd.DataFrame({"ts": ts, "interval_s": [None, 900.0, 900.0, 3600.0],
                          "events": ["baseline", "", "reset", "gap"], "notes": ["", "", "", ""]})
    w = frame({"queryid": 1, "query": "a", "calls": 1, "total_exec_ms": 1.0, "complete": False, "notes": "reset"},
              {"queryid": 2, "query": "b", "calls": 1, "total_exec_ms": 1.0})
    c = sq.completeness(w, snaps, "2026-11-29T12:00Z", "2026-11-29T13:30Z")
    assert list(c["events"]["events"]) == ["reset", "gap"]
    assert list(c["statements"]["queryid"]) == [1]
    assert c["messages"] == []
    c = sq.completeness(w, snaps, "2026-11-29T10:00Z", "2026-11-29T16:00Z")
    assert c["messages"] == ["the window starts 2026-11-29 10:00:00 UTC but the first interval in it starts "
                             "2026-11-29 12:00:00 UTC",
                             "the last snapshot in the window is 2026-11-29 13:30:00 UTC, before its end "
                             "2026-11-29 16:00:00 UTC"]


def test_findings_kinds_severities_and_json():
    w = frame({"queryid": 1, "query": "SELECT pg_sleep($1)", "calls": 2, "total_exec_ms": 2100.0},
              {"queryid": 2, "query": "SELECT 6", "calls": 1, "total_exec_ms": 6000.0},
              {"queryid": 3, "query": "SELECT amount FROM t WHERE id = $1", "calls": 5000, "total_exec_ms": 10.0})
    found = F.slow_query_findings(slow=sq.slow(w, 1000), frequent=sq.frequent(w, 20, 1000), cumulative=True,
                                  slow_ms=1000, critical_ms=5000, window_s=100, subject="shop")
    assert [(f["kind"], f["severity"], f["subject"]) for f in found] == [
        ("slow_query", "critical", "2"), ("slow_query", "warning", "1"), ("frequent_query", "info", "3"),
        ("no_history", "info", "shop")]
    # Advice that fits the cause: a statement that sleeps gets no EXPLAIN, index or cache advice.
    assert found[1]["suggestion"].startswith("-- Find out why the application sleeps inside the database")
    assert "pg_sleep()" in found[1]["detail"] and "EXPLAIN" not in found[1]["suggestion"]
    assert "EXPLAIN (ANALYZE, BUFFERS) SELECT 6;" in found[0]["suggestion"]
    assert found[0]["title"] == "Slow query: SELECT 6: mean 6,000.0 ms over 1 call"
    assert "ran 1 time " in found[0]["detail"] and "«SELECT 6»" in found[0]["detail"]
    assert "Cache query results" in found[2]["suggestion"] and "50.0 per second" in found[2]["detail"]
    assert found[3]["queryid"] is None and found[3]["query"] is None
    json.dumps(found)  # plain JSON types only


PLAN_A = [{"Plan": {"Node Type": "Aggregate", "Strategy": "Plain", "Total Cost": 3971.1, "Plan Rows": 1, "Plans": [
    {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "orders", "Total Cost": 3971.0,
     "Plan Rows": 40, "Filter": "(orders.customer_id = $1)"}]}}]
PLAN_B = [{"Plan": {"Node Type": "Aggregate", "Strategy": "Plain", "Total Cost": 5.2, "Plan Rows": 1, "Plans": [
    {"Node Type": "Index Only Scan", "Schema": "public", "Relation Name": "orders", "Index Name": "orders_c_idx",
     "Total Cost": 5.1, "Plan Rows": 40}]}}]


def test_plan_shapes_and_changes():
    assert P.shape(PLAN_A) == "Aggregate(Seq Scan on public.orders)"
    assert P.text(PLAN_A).splitlines() == ["Aggregate  (cost=3971.10 rows=1)",
                                           "  -> Seq Scan on public.orders  (cost=3971.00 rows=40)",
                                           "       Filter: (orders.customer_id = $1)"]
    before = [{"queryid": 7, "user": "app", "database": "shop", "query": "q", "shape": P.shape(PLAN_A), "cost": 3971.1}]
    same = [dict(before[0], cost=4000.0)]
    after = [dict(before[0], shape=P.shape(PLAN_B), cost=5.2)]
    assert P.changes(same, before).empty   # costs move with every ANALYZE: not a plan change
    change = P.changes(after, before, "2026-W47")
    assert change.iloc[0][["queryid", "before", "after", "before_report"]].tolist() == [
        7, "Aggregate(Seq Scan on public.orders)", "Aggregate(Index Only Scan on public.orders using orders_c_idx)",
        "2026-W47"]
    assert P.changes(after, []).empty


def test_utility_statements_are_ranked_but_never_findings():
    w = frame({"queryid": 1, "query": "CREATE INDEX orders_c_idx ON orders (c)", "calls": 1, "total_exec_ms": 5000.0},
              {"queryid": 2, "query": "/* job */ VACUUM orders", "calls": 1, "total_exec_ms": 3000.0},
              {"queryid": 3, "query": "WITH x AS (SELECT 1) SELECT * FROM x", "calls": 1, "total_exec_ms": 2000.0})
    assert list(sq.slow(w, 1000)["queryid"]) == [1, 2, 3]
    found = F.slow_query_findings(slow=sq.slow(w, 1000), new=sq.new_queries(w, w.iloc[:0], share_pct=5))
    assert [(f["kind"], f["queryid"]) for f in found] == [("slow_query", 3), ("new_query", 3)]
    assert not Q.is_explainable("VACUUM t") and Q.is_explainable("(SELECT 1) UNION (SELECT 2)")


def test_wording_helpers():
    assert [F.plural(n, "call") for n in (0, 1, 2, 1500)] == ["0 calls", "1 call", "2 calls", "1,500 calls"]
    assert F.plural(1, "sequential scan") == "1 sequential scan"
    assert F.short_sql("SELECT  a,\n   b FROM t", 70) == "SELECT a, b FROM t"
    assert F.short_sql("x" * 100, 10) == "xxxxxxxxx…"
    # "+17316 %" said as people say it; small changes stay percentages.
    assert [F.change_words(v) for v in (17316.0, 250.0, 35.4, -60.0, None)] == ["174x", "4x", "+35 %", "-60 %", "n/a"]


def test_n_plus_one_and_frequent_are_told_apart():
    w = frame({"queryid": 1, "query": "SELECT name FROM products WHERE id = $1", "calls": 5000, "rows": 5000,
               "total_exec_ms": 10.0},
              {"queryid": 2, "query": "SELECT count(*) FROM products", "calls": 5000, "rows": 5000,
               "total_exec_ms": 10.0})
    found = F.slow_query_findings(slow=sq.slow(w, 1000), frequent=sq.frequent(w, 20, 1000), window_s=100)
    titles = {f["queryid"]: f["title"] for f in found}
    assert titles[1] == "N+1 query: 5,000 single-row lookups (50% of calls)"
    assert titles[2] == "Frequent query: SELECT count(*) FROM products: 50% of all calls"
    n1 = next(f for f in found if f["queryid"] == 1)
    assert "WHERE id = ANY($1)" in n1["suggestion"] and "one at a time" in n1["detail"]


def test_index_advice_orders_by_after_equality_and_drops_prefixes():
    heavy = pd.DataFrame([{"schema": "public", "table": "sales", "seq_scan": 40, "seq_tup_read": 12_000_000,
                           "rows_per_seq_scan": 300_000.0, "n_live_tup": 300_000, "total_bytes": 1, "idx_scan": 0}])
    indexes = pd.DataFrame(columns=["schema", "table", "columns", "valid"])
    top = frame({"queryid": 1, "query": "SELECT count(*) FROM sales WHERE machine_id = $1", "calls": 40,
                 "total_exec_ms": 400.0},
                {"queryid": 2, "query": "SELECT * FROM sales WHERE machine_id = $1 ORDER BY sold_at DESC LIMIT $2",
                 "calls": 40, "total_exec_ms": 300.0})
    sleeping = frame({"queryid": 3, "query": "SELECT pg_sleep($1), count(*) FROM sales WHERE status = $2",
                      "calls": 2, "total_exec_ms": 2000.0})
    advice = sq.index_advice(pd.concat([sleeping, top], ignore_index=True), heavy, indexes, heavy)
    # A statement that sleeps gets no index advice; (machine_id) is a prefix of (machine_id, sold_at), which serves both statements: one suggestion.
    assert list(advice["suggestion"]) == ["CREATE INDEX CONCURRENTLY ON public.sales (machine_id, sold_at);"]
    assert list(advice["queryid"]) == [2]


def test_own_statements_of_a_dropped_role_are_not_the_monitors():
    from vhdiag.analysis.query_text import is_own
    assert is_own("ROLLBACK", pd.NA, "monitor") is False
    assert is_own("ROLLBACK", "monitor", "monitor") is True
    assert is_own("ROLLBACK", "app", "monitor") is False
