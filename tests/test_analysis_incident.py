"""analysis/incident.py on hand-made frames: the window, the severity rule, response, escalation;
and incident_timeline.py's lock graph (no database)."""
from __future__ import annotations

import pandas as pd

from vhdiag.analysis import incident as I
from vhdiag.analysis import incident_timeline as TL
from vhdiag.config import load_config

T = pd.Timestamp("2026-11-29T12:00:00Z")
M = pd.Timedelta(minutes=1)


def _breaches(*spans):
    return pd.DataFrame([{"metric": m, "level": "warning", "start": T + s * M, "end": T + e * M} for m, s, e in spans])


def test_window_grows_over_overlapping_breaches_and_ignores_far_ones():
    b = _breaches(("error_rate_pct", 0, 10), ("response_time_p95_ms", 8, 20), ("cpu_pct", 90, 95))
    start, end, how = I.find_window(b, [], T + 5 * M, pd.Timedelta("2h"), pd.Timedelta("5m"))
    assert (start, end) == (T, T + 20 * M) and "breaches" in how
    quiet = I.find_window(b.iloc[0:0], [], T, pd.Timedelta("2h"), pd.Timedelta("5m"))
    assert quiet[:2] == (None, None)
    db_only = I.find_window(b.iloc[0:0], [T + 3 * M, T + 7 * M], T, pd.Timedelta("1h"), pd.Timedelta("5m"))
    assert db_only[:2] == (T + 3 * M, T + 7 * M)


def test_severity_follows_the_runbook_definitions():
    cfg = load_config()
    sev, th = cfg["severities"], cfg["thresholds"]
    assert I.propose_severity({"peak_error_rate_pct": 95.0}, {}, sev, 90, th)[0] == "P1"
    assert I.propose_severity({"peak_error_rate_pct": 30.0}, {}, sev, 90, th)[0] == "P2"
    assert I.propose_severity({"peak_error_rate_pct": 2.0}, {}, sev, 90, th)[0] == "P3"
    assert I.propose_severity({"peak_error_rate_pct": 0.5, "peak_response_time_p95_ms": 1500.0}, {}, sev, 90, th)[0] == "P3"
    assert I.propose_severity({"peak_error_rate_pct": 0.5, "peak_response_time_p95_ms": 400.0}, {}, sev, 90, th)[0] == "P4"
    assert I.propose_severity({}, {"lock_waiters": True}, sev, 90, th)[0] == "P3"


def test_response_and_escalation_against_p1_targets():
    cfg = load_config()
    resp = I.response(T, {"acknowledge": T + 3 * M, "assess": None, "mitigate": T + 10 * M, "resolve": T + 70 * M},
                      cfg["severities"]["P1"]).set_index("step")
    assert resp["met"].tolist() == [False, None, True, False]
    assert resp.loc["acknowledge", "verdict"] == "missed by 1.0 min"
    esc = I.escalation(T, T + 70 * M, 70.0, cfg["escalation"], None).set_index("level")
    assert esc["required"].tolist() == [True, True, True, True]
    esc = I.escalation(T, T + 20 * M, 0.0, cfg["escalation"], None).set_index("level")
    assert esc["required"].tolist() == [True, True, False, False]


def test_lock_pileup_counts_waiters_down_the_queue_to_the_root_blocker():
    s = pd.DataFrame([
        {"ts": T, "pid": 1, "application": "worker", "user": "app", "state": "idle in transaction",
         "state_duration_s": 30.0, "blocked_by": None, "blocking_count": 1},
        {"ts": T, "pid": 2, "application": "api", "user": "app", "state": "active", "state_duration_s": 5.0,
         "blocked_by": "1", "blocking_count": 2},
        {"ts": T, "pid": 3, "application": "api", "user": "app", "state": "active", "state_duration_s": 4.0,
         "blocked_by": "2", "blocking_count": 0},
        {"ts": T, "pid": 4, "application": "api", "user": "app", "state": "active", "state_duration_s": 4.0,
         "blocked_by": "1,2", "blocking_count": 0},
    ])
    (pile,) = TL.lock_pileups(s)
    assert (pile["pid"], pile["application"], pile["waiters"]) == (1, "worker", 3)
