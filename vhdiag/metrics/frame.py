"""The metric frame: one long frame ``(ts, metric, value, labels)`` whatever the source.

========  =======================  ==========================================================
column    dtype                    meaning
========  =======================  ==========================================================
ts        datetime64[ns, UTC]      when the value was observed (sample or evaluation time)
metric    string                   a metric id: the runbook's (``cpu_pct``, ``memory_pct``,
                                   ``error_rate_pct``, ``response_time_p95_ms``,
                                   ``db_connections``, ``up``) or the source's own name
value     float64                  the value, in the unit the metric id names; never NaN
                                   (a missing or NaN sample is no row); may be +inf
labels    string                   the series' labels as JSON with sorted keys and string
                                   values, compact (``{"instance":"db1:9100"}``); ``{}``
                                   when the series has none
========  =======================  ==========================================================

Rows are sorted by metric, labels, ts; a (metric, labels, ts) triple occurs once.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

COLUMNS = {"ts": "datetime64[ns, UTC]", "metric": "string", "value": "float64", "labels": "string"}
NO_LABELS = "{}"
_PROM_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def empty() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in COLUMNS.items()})


def labels_json(labels: dict | None) -> str:
    """The canonical text of a label dict: sorted keys, string values, no spaces."""
    if not labels:
        return NO_LABELS
    return json.dumps({str(k): str(v) for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))


def parse_labels(text) -> dict:
    """Labels as a file may hold them: a JSON object (``{"instance": "a"}``), Prometheus style
    (``{instance="a",job="node"}`` or without braces), or empty. Raises ValueError otherwise."""
    if text is None or (isinstance(text, float) and pd.isna(text)) or text is pd.NA:
        return {}
    text = str(text).strip()
    if text in ("", "{}"):
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    labels, pos = {}, 0
    while pos < len(body):
        m = _PROM_LABEL.match(body, pos)
        if not m or m.end() == pos:
            raise ValueError("not JSON and not name=\"value\" pairs")
        labels[m.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(2))
        pos = m.end()
    return labels


def finish(df: pd.DataFrame) -> pd.DataFrame:
    """Cast to the frame's dtypes, drop NaN values and duplicate samples (the last one stays), sort.

    Sorted and deduplicated on integer codes of metric and labels (a handful of distinct
    values), not on the strings: a month at 15 s of five metrics is 864,005 rows, and string
    sorting and hashing was most of a Prometheus load (benchmarks/metrics_month.py)."""
    if df is None or len(df) == 0:
        return empty()
    ts = pd.to_datetime(df["ts"], utc=True).astype(COLUMNS["ts"]).array.asi8   # ns since the epoch
    value = pd.to_numeric(df["value"]).astype("float64").to_numpy()
    labels = df["labels"] if "labels" in df else pd.Series(NO_LABELS, index=df.index)
    keep = ~np.isnan(value)
    ts, value = ts[keep], value[keep]
    metric_codes, metrics = _coded(pd.Series(df["metric"])[keep])
    label_codes, label_texts = _coded(pd.Series(labels)[keep])
    # Sorted by metric, labels, time, then position: of equal samples the last one ends each run.
    order = np.lexsort((np.arange(len(value)), ts, label_codes, metric_codes))
    m, lab, t = metric_codes[order], label_codes[order], ts[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (m[1:] != m[:-1]) | (lab[1:] != lab[:-1]) | (t[1:] != t[:-1])
    order = order[last]
    return pd.DataFrame({
        "ts": pd.Series(pd.to_datetime(ts[order], unit="ns", utc=True)).astype(COLUMNS["ts"]),
        "metric": pd.Series(metrics.take(metric_codes[order], allow_fill=True)),
        "value": pd.Series(value[order], dtype="float64"),
        "labels": pd.Series(label_texts.take(label_codes[order], allow_fill=True)),
    })


def _coded(col: pd.Series):
    """(codes, texts): each row's rank among the column's distinct texts (-1 for NA), and those
    texts sorted, as a string array."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, uniques = col.cat.codes.to_numpy(), col.cat.categories
    else:
        codes, uniques = pd.factorize(col)
    texts = [str(u) for u in uniques]
    rank = np.empty(len(texts) + 1, dtype=np.int64)
    order = sorted(range(len(texts)), key=texts.__getitem__)
    rank[order] = np.arange(len(texts))
    rank[-1] = -1                      # codes of -1 (NA) stay -1
    return rank[codes], pd.array([texts[i] for i in order], dtype="string")
