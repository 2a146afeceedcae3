"""load_metrics() and breaches() against a real Prometheus loaded with planted history
(tests/prometheus_harness.py): exact series, request splitting, default PromQL, errors."""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request

import pandas as pd
import pytest

from prometheus_harness import (  # noqa: F401  (prometheus is a fixture)
    CPU_LABELS, EXPECTED_DEFAULTS, N_CPU, SEGMENT_S, STEP_S, prometheus)
from vhdiag.errors import ConfigError, VhdiagError
from vhdiag.metrics import breaches, cli_load, load_metrics
from vhdiag.metrics.frame import labels_json
from vhdiag.server import free_port

PLANTED = {"cpu_pct": "vhdiag_planted_cpu_pct"}
PLANTED_LABELS = labels_json({"__name__": "vhdiag_planted_cpu_pct", **CPU_LABELS})


def utc(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(seconds, unit="s", tz="UTC").as_unit("ns")


def iso(seconds: int) -> str:
    return utc(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def planted_frame(p, first: int = 0, last: int = N_CPU - 1) -> pd.DataFrame:
    idx = range(first, last + 1)
    return pd.DataFrame({
        "ts": pd.to_datetime([p.ts(i) for i in idx], unit="s", utc=True).astype("datetime64[ns, UTC]"),
        "metric": pd.Series(["cpu_pct"] * len(idx), dtype="string"),
        "value": pd.Series([p.cpu[i] for i in idx], dtype="float64"),
        "labels": pd.Series([PLANTED_LABELS] * len(idx), dtype="string"),
    })


def test_seven_days_come_back_exactly_in_requests_of_at_most_11000_points(prometheus, caplog):
    caplog.set_level(logging.DEBUG, logger="vhdiag.metrics.prometheus")
    p = prometheus
    started = time.perf_counter()
    got = load_metrics(p.url, since=iso(p.start), until=iso(p.end), step="15s", queries=PLANTED)
    elapsed = time.perf_counter() - started
    pd.testing.assert_frame_equal(got, planted_frame(p))  # every timestamp and value, no boundary twice
    points = [r.args[-1] for r in caplog.records if r.getMessage().startswith("query_range cpu_pct")]
    assert points == [11_000, 11_000, 11_000, 7_321]
    print(f"\n7 days at 15 s ({len(got):,} points, {len(points)} requests) loaded in {elapsed:.3f} s")


def test_prometheus_really_refuses_more_than_11000_steps(prometheus):
    """The limit the splitting avoids: one request of 11,002 points is refused."""
    p = prometheus
    query = urllib.parse.urlencode({"query": "vhdiag_planted_cpu_pct", "start": p.start,
                                    "end": p.start + 11_001 * STEP_S, "step": STEP_S})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{p.url}/api/v1/query_range?{query}")
    assert err.value.code == 400
    assert "exceeded maximum resolution of 11,000 points per timeseries" in json.loads(err.value.read())["error"]


def test_since_and_until_as_datetimes_and_unaligned_times(prometheus):
    p = prometheus
    got = load_metrics(p.url, since=utc(p.ts(100)).to_pydatetime(), until=utc(p.ts(200)), queries=PLANTED)
    pd.testing.assert_frame_equal(got, planted_frame(p, 100, 200))
    # evaluation times are whole multiples of step: 7 s after sample 100 starts at sample 101
    got = load_metrics(p.url, since=iso(p.ts(100) + 7), until=iso(p.ts(200) + 7), step="15s", queries=PLANTED)
    pd.testing.assert_frame_equal(got, planted_frame(p, 101, 200))


def test_a_coarser_step_takes_every_fourth_sample(prometheus):
    p = prometheus
    got = load_metrics(p.url, since=iso(p.ts(0)), until=iso(p.ts(400)), step="1m", queries=PLANTED)
    assert got["ts"].tolist() == [utc(p.ts(i)) for i in range(0, 401, 4)]
    assert got["value"].tolist() == [p.cpu[i] for i in range(0, 401, 4)]


def test_default_queries_read_node_exporter_http_and_postgres_exporter_series(prometheus):
    p = prometheus
    c0 = p.counters_start
    got = load_metrics(p.url, since=iso(c0), until=iso(p.end), step="15s")  # queries=None: every default
    assert sorted(got["metric"].unique()) == sorted(EXPECTED_DEFAULTS)
    labels = got.groupby("metric")["labels"].unique().map(list).to_dict()
    assert labels == {
        "cpu_pct": ['{"instance":"planted:9100"}'],                     # avg by (instance)
        "memory_pct": ['{"instance":"planted:9100","job":"node"}'],
        "error_rate_pct": ["{}"], "response_time_p95_ms": ["{}"], "db_connections": ["{}"],
    }
    for metric, per_segment in EXPECTED_DEFAULTS.items():
        for segment, expected in enumerate(per_segment):
            at = utc(c0 + segment * SEGMENT_S + SEGMENT_S // 2)   # the 5m rate window lies inside the segment
            value = got.loc[(got["metric"] == metric) & (got["ts"] == at), "value"]
            assert value.tolist() == [pytest.approx(expected, rel=1e-12)], (metric, segment)


def test_queries_as_a_list_or_a_dict_with_none_take_the_configured_promql(prometheus):
    p = prometheus
    window = dict(since=iso(p.end - 600), until=iso(p.end), step="5m")
    by_list = load_metrics(p.url, queries=["db_connections"], **window)
    assert by_list["metric"].tolist() == ["db_connections"] * 3
    assert by_list["value"].tolist() == [19.0] * 3
    by_dict = load_metrics(p.url, queries={"db_connections": None, "idle": 'sum(pg_stat_activity_count{state="idle"})'},
                           **window)
    assert by_dict.groupby("metric")["value"].first().to_dict() == {"db_connections": 19.0, "idle": 12.0}
    via_cli = cli_load(p.url, since=iso(p.end - 600), until=iso(p.end), step="5m",
                       query=["idle=sum(pg_stat_activity_count{state='idle'})"])
    assert via_cli["value"].tolist() == [12.0] * 3


def test_config_file_replaces_a_default_query(prometheus, tmp_path):
    p = prometheus
    cfg = tmp_path / "vhdiag.toml"
    cfg.write_text("[prometheus.queries]\ndb_connections = 'sum(pg_stat_activity_count{state=\"active\"})'\n"
                   "cpu_pct = ''\nmemory_pct = ''\nerror_rate_pct = ''\nresponse_time_p95_ms = ''\n")
    got = load_metrics(p.url, since=iso(p.end - 600), until=iso(p.end), step="5m", config=cfg)
    assert got["metric"].tolist() == ["db_connections"] * 3
    assert got["value"].tolist() == [5.0] * 3


def test_breach_intervals_on_the_planted_series_match_to_the_second(prometheus):
    p = prometheus
    metrics = load_metrics(p.url, since=iso(p.start), until=iso(p.end), queries=PLANTED)
    got = breaches(metrics)
    rows = [(r.level, r.start, r.end, r.duration_s, r.peak, r.threshold, r.open, r.ended_by)
            for r in got.itertuples()]
    t = lambda i: utc(p.ts(i))  # noqa: E731
    assert rows == [
        ("warning", t(1000), t(1020), 300.0, 75.5, 70.0, False, "recovery"),    # 70.0 exactly ends it
        ("warning", t(5000), t(5040), 600.0, 95.25, 70.0, False, "recovery"),
        ("critical", t(5010), t(5020), 150.0, 95.25, 85.0, False, "recovery"),  # 85.0 exactly ends it
        ("warning", t(9000), t(9001), 15.0, 71.0, 70.0, False, "recovery"),
        ("warning", t(10990), t(11011), 315.0, 77.0, 70.0, False, "recovery"),  # across two requests
        ("warning", t(N_CPU - 4), t(N_CPU - 1), 45.0, 88.0, 70.0, True, "data end"),
        ("critical", t(N_CPU - 4), t(N_CPU - 1), 45.0, 88.0, 85.0, True, "data end"),
    ]
    assert set(got["metric"]) == {"cpu_pct"} and set(got["labels"]) == {PLANTED_LABELS}
    long_ones = breaches(metrics, min_duration="1m")
    assert [(r.level, r.start) for r in long_ones.itertuples()] == [
        ("warning", t(1000)), ("warning", t(5000)), ("critical", t(5010)), ("warning", t(10990))]


def test_bad_promql_names_the_metric_the_error_and_the_fix(prometheus):
    p = prometheus
    with pytest.raises(VhdiagError) as err:
        load_metrics(p.url, since=iso(p.end - 600), until=iso(p.end), queries={"cpu_pct": "sum(rate(x[5m])"})
    assert str(err.value) == (
        f"Prometheus at {p.url} rejected the cpu_pct query (bad_data: 1:16: parse error: unclosed left "
        f"parenthesis): fix its PromQL in queries= or in [prometheus.queries] of vhdiag.toml")


def test_credentials_in_the_url_are_used_and_never_shown(prometheus):
    p = prometheus
    secret_url = p.url.replace("http://", "http://monitor:s3cr%2Fet@")
    got = load_metrics(secret_url, since=iso(p.ts(0)), until=iso(p.ts(3)), queries=PLANTED)
    assert len(got) == 4
    with pytest.raises(VhdiagError) as err:
        load_metrics(secret_url + "/", since=iso(p.ts(0)), until=iso(p.ts(3)), queries={"cpu_pct": "rate(x)"})
    assert str(err.value).startswith(f"Prometheus at {p.url} rejected the cpu_pct query (bad_data: 1:6: ")
    assert "s3cr" not in str(err.value) and "monitor" not in str(err.value)


def test_a_url_that_is_not_the_api_base_says_so(prometheus):
    p = prometheus
    with pytest.raises(VhdiagError) as err:
        load_metrics(f"{p.url}/graph", since=iso(p.ts(0)), until=iso(p.ts(3)), queries=PLANTED)
    assert str(err.value) == (f"no Prometheus API at {p.url}/graph (HTTP 404 for /api/v1/query_range): "
                              f"give the Prometheus base URL, e.g. http://host:9090")


def test_unreachable_prometheus_names_the_url_without_credentials():
    port = free_port()
    with pytest.raises(VhdiagError) as err:
        load_metrics(f"http://admin:hunter2@127.0.0.1:{port}", since="1h", queries=PLANTED)
    assert str(err.value) == (f"cannot reach Prometheus at http://127.0.0.1:{port} (connection refused): "
                              f"is it running, and is this its base URL (e.g. http://host:9090)?")


def test_a_range_too_large_for_the_step_is_refused_before_asking():
    with pytest.raises(ConfigError) as err:
        load_metrics("http://127.0.0.1:9", since="2026-01-01T00:00:00Z", until="2026-12-31T00:00:00Z",
                     step="15s", queries=PLANTED)
    assert str(err.value) == (
        "2026-01-01T00:00:00+00:00 to 2026-12-31T00:00:00+00:00 at step 15s is 2,096,641 points "
        "per series, more than max_points_per_series (1,000,000): use a larger step or a shorter range")
