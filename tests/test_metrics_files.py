"""load_metrics() from CSV and Parquet files in the long and wide layouts, and every bad-input
message, asserted exactly."""
from __future__ import annotations

import gzip

import pandas as pd
import pytest

from vhdiag.errors import ConfigError, VhdiagError
from vhdiag.metrics import load_metrics
from vhdiag.metrics.frame import COLUMNS
from vhdiag.metrics.names import MetricNameWarning

EXPECTED = ("expected a time column (ts, timestamp or time) and either metric,value[,labels] columns "
            "(long format) or one column per metric (wide format)")


def ts(*texts: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(t).tz_convert("UTC") if pd.Timestamp(t).tzinfo else pd.Timestamp(t, tz="UTC")
            for t in texts]


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [(r.ts, r.metric, r.value, r.labels) for r in frame.itertuples()]


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_long_csv_with_json_and_prometheus_labels_and_an_extra_label_column(tmp_path):
    path = write(tmp_path, "long.csv", (
        "ts,metric,value,labels,region\n"
        "2026-11-29T12:00:00Z,cpu_pct,42.5,\"{\"\"instance\"\": \"\"db1\"\"}\",eu\n"
        "2026-11-29T12:00:15Z,cpu_pct,71,\"instance=\"\"db1\"\"\",eu\n"
        "2026-11-29T12:00:00Z,db_connections,17,,\n"
        "\n"))
    got = load_metrics(path)
    assert {c: str(t) for c, t in got.dtypes.items()} == COLUMNS
    assert rows(got) == [
        (*ts("2026-11-29T12:00:00Z"), "cpu_pct", 42.5, '{"instance":"db1","region":"eu"}'),
        (*ts("2026-11-29T12:00:15Z"), "cpu_pct", 71.0, '{"instance":"db1","region":"eu"}'),
        (*ts("2026-11-29T12:00:00Z"), "db_connections", 17.0, "{}"),
    ]


def test_wide_csv_with_naive_times_is_utc_and_column_names_map_to_runbook_ids(tmp_path):
    path = write(tmp_path, "railway.csv", (
        "Timestamp,CPU %,Memory Usage (%),Error Rate,Response Time (s),DB Connections,Memory Usage (GB)\n"
        "2026-11-29 12:00:00,42.5,61,0.5,0.25,17,3.5\n"
        "2026-11-29 12:01:00,80,,1.5,1.5,21,3.75\n"))
    with pytest.warns(MetricNameWarning, match=r"column 'Memory Usage \(GB\)' maps to no metric vhdiag knows"):
        got = load_metrics(path)
    assert rows(got) == [
        (*ts("2026-11-29T12:00:00Z"), "Memory Usage (GB)", 3.5, "{}"),      # another unit: kept as written
        (*ts("2026-11-29T12:01:00Z"), "Memory Usage (GB)", 3.75, "{}"),
        (*ts("2026-11-29T12:00:00Z"), "cpu_pct", 42.5, "{}"),
        (*ts("2026-11-29T12:01:00Z"), "cpu_pct", 80.0, "{}"),
        (*ts("2026-11-29T12:00:00Z"), "db_connections", 17.0, "{}"),
        (*ts("2026-11-29T12:01:00Z"), "db_connections", 21.0, "{}"),
        (*ts("2026-11-29T12:00:00Z"), "error_rate_pct", 0.5, "{}"),
        (*ts("2026-11-29T12:01:00Z"), "error_rate_pct", 1.5, "{}"),
        (*ts("2026-11-29T12:00:00Z"), "memory_pct", 61.0, "{}"),           # the empty cell is no sample
        (*ts("2026-11-29T12:00:00Z"), "response_time_p95_ms", 250.0, "{}"),  # seconds -> ms
        (*ts("2026-11-29T12:01:00Z"), "response_time_p95_ms", 1500.0, "{}"),
    ]


def test_epoch_seconds_and_milliseconds_and_zone_offsets(tmp_path):
    seconds = write(tmp_path, "s.csv", "time,cpu_usage\n1795953600,10\n1795953615.5,20\n")
    millis = write(tmp_path, "ms.csv", "time,cpu_usage\n1795953600000,10\n1795953615500,20\n")
    offsets = write(tmp_path, "tz.csv", "time,cpu_usage\n2026-11-29T13:00:00+01:00,10\n2026-11-29T07:00:15.5-05:00,20\n")
    expected = [(*ts("2026-11-29T12:00:00Z"), "cpu_pct", 10.0, "{}"),
                (*ts("2026-11-29T12:00:15.5Z"), "cpu_pct", 20.0, "{}")]
    assert rows(load_metrics(seconds)) == expected
    assert rows(load_metrics(millis)) == expected
    assert rows(load_metrics(offsets)) == expected


def test_semicolons_gzip_and_case_insensitive_columns(tmp_path):
    path = tmp_path / "grafana.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("Time;Series;Value\n2026-11-29 12:00:00;CPU Utilization (%);33.5\n")
    assert rows(load_metrics(path)) == [(*ts("2026-11-29T12:00:00Z"), "cpu_pct", 33.5, "{}")]


def test_since_until_step_and_metric_selection(tmp_path):
    lines = ["ts,cpu_pct,memory_pct"] + [f"2026-11-29T12:00:{s:02d}Z,{s},{100 - s}" for s in range(0, 60, 15)]
    path = write(tmp_path, "m.csv", "\n".join(lines) + "\n")
    got = load_metrics(path, since="2026-11-29T12:00:15Z", until="2026-11-29T12:00:45Z", queries=["cpu_pct"])
    assert got["value"].tolist() == [15.0, 30.0, 45.0]
    averaged = load_metrics(path, step="30s")   # mean per 30 s bucket, labelled with the bucket start
    assert rows(averaged) == [
        (*ts("2026-11-29T12:00:00Z"), "cpu_pct", 7.5, "{}"), (*ts("2026-11-29T12:00:30Z"), "cpu_pct", 37.5, "{}"),
        (*ts("2026-11-29T12:00:00Z"), "memory_pct", 92.5, "{}"),
        (*ts("2026-11-29T12:00:30Z"), "memory_pct", 62.5, "{}")]


def test_parquet_long_and_wide_with_aware_naive_and_index_times(tmp_path):
    long = pd.DataFrame({"ts": pd.to_datetime(["2026-11-29T13:00:00+01:00"] * 2, utc=False).tz_convert("Europe/Paris"),
                         "metric": ["CPU %", "connections"], "value": [12.5, 7], "labels": ['{"host":"a"}', ""]})
    long.to_parquet(tmp_path / "long.parquet")
    assert rows(load_metrics(tmp_path / "long.parquet")) == [
        (*ts("2026-11-29T12:00:00Z"), "cpu_pct", 12.5, '{"host":"a"}'),
        (*ts("2026-11-29T12:00:00Z"), "db_connections", 7.0, "{}")]
    wide = pd.DataFrame({"memory_pct": [61.0, 62.0]},
                        index=pd.DatetimeIndex(["2026-11-29 12:00", "2026-11-29 12:01"], name="timestamp"))
    wide.to_parquet(tmp_path / "wide.data")   # no suffix: recognised by Parquet's magic bytes
    assert rows(load_metrics(tmp_path / "wide.data")) == [
        (*ts("2026-11-29T12:00:00Z"), "memory_pct", 61.0, "{}"),
        (*ts("2026-11-29T12:01:00Z"), "memory_pct", 62.0, "{}")]


def test_a_dataframe_is_a_source_too():
    frame = pd.DataFrame({"time": ["2026-11-29T12:00:00Z"], "DB Connections": [31]})
    assert rows(load_metrics(frame)) == [(*ts("2026-11-29T12:00:00Z"), "db_connections", 31.0, "{}")]


@pytest.mark.parametrize("name, text, message", [
    ("empty.csv", "", "{path}: the file is empty: " + EXPECTED),
    ("notime.csv", "when,cpu_pct\n2026-11-29,1\n", "{path}: no time column: " + EXPECTED),
    ("onlytime.csv", "ts\n2026-11-29T12:00:00Z\n", "{path}: no metric columns beside ts: " + EXPECTED),
    ("badtime.csv", "ts,cpu_pct\n2026-11-29T12:00:00Z,1\n29/11/2026 12:00,2\n",
     "{path}: line 3: cannot read time '29/11/2026 12:00' in column ts: write ISO 8601 "
     "(2026-11-29T12:00:00Z; no zone = UTC) or epoch seconds"),
    ("notime2.csv", "ts,cpu_pct\n2026-11-29T12:00:00Z,1\n,2\n",
     "{path}: line 3: no time in column ts: every row needs one"),
    ("badnumber.csv", "ts,cpu_pct\n2026-11-29T12:00:00Z,1\n2026-11-29T12:00:15Z,42,5\n",
     "{path}: not a readable CSV file (Error tokenizing data. C error: Expected 2 fields in line 3, saw 3): "
     + EXPECTED),
    ("percent.csv", "ts,CPU %\n2026-11-29T12:00:00Z,1\n2026-11-29T12:00:15Z,42.5%\n",
     "{path}: line 3: '42.5%' in column CPU % is not a number: values must be plain numbers (42.5, not 42,5 or 42.5%)"),
    ("twice.csv", "ts,CPU %,cpu_usage\n2026-11-29T12:00:00Z,1,2\n",
     "{path}: columns 'CPU %' and 'cpu_usage' both mean cpu_pct: keep one, or rename one to another name"),
    ("labels.csv", "ts,metric,value,labels\n2026-11-29T12:00:00Z,cpu_pct,1,instance:db1\n",
     "{path}: line 2: cannot read labels 'instance:db1': write a JSON object such as {{\"instance\": \"db1\"}} "
     "or instance=\"db1\""),
    ("noname.csv", "ts,metric,value\n2026-11-29T12:00:00Z,,1\n",
     "{path}: line 2: no metric name in column metric"),
    ("broken.parquet", "PAR1 this is not parquet",
     "{path}: not a readable Parquet file ({detail}): " + EXPECTED),
])
def test_bad_files_give_one_line_naming_file_problem_and_format(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as err:
        load_metrics(path)
    got = str(err.value)
    if "{detail}" in message:  # pyarrow's own wording varies by version: check the frame of the line
        head, tail = message.split("{detail}")
        assert got.startswith(head.format(path=path)) and got.endswith(tail) and "\n" not in got
    else:
        assert got == message.format(path=path)


def test_missing_file_and_unsupported_sources(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_metrics(tmp_path / "nope.csv")
    assert str(err.value) == f"{tmp_path / 'nope.csv'}: no such file: give the path of a CSV or Parquet export"
    with pytest.raises(ConfigError) as err:
        load_metrics("ftp://example/metrics.csv")
    assert str(err.value) == ("unsupported metrics source scheme ftp://: give a CSV or Parquet file path, "
                              "a Prometheus URL (http://host:9090) or a history store URL (sqlite:///path)")
    with pytest.raises(ConfigError) as err:
        load_metrics(tmp_path / "x.csv", queries={"cpu_pct": "up"})
    assert str(err.value) == ("queries= holds PromQL, which only a Prometheus source runs: "
                              "for a file or a frame pass a list of metric ids to keep")
    with pytest.raises(ConfigError) as err:
        load_metrics(tmp_path / "x.csv", since="2026-11-29", until="2026-11-28")
    assert str(err.value) == ("since (2026-11-29T00:00:00+00:00) is after until (2026-11-28T00:00:00+00:00): "
                              "swap them")


