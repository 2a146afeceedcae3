"""The post-mortem report against real servers: a planted incident, recorded by snapshots before,
during and after it, with a metrics file that rises and recovers in the same window.

Planted (per server version, on a cluster of its own with max_connections 26):

- a query that regresses: ``pm_orders`` loses its customer index mid-run (DROP INDEX), so the
  same count by customer turns into a sequential scan;
- a lock pile-up: one session (application ``billing-worker``) updates a stock row and stays idle
  in transaction; 13 sessions (``checkout-api``) queue behind it;
- a connection burst to the limit: idle ``checkout-api`` connections fill the remaining slots,
  so one more ordinary connection is refused;
- the metrics file: error rate 0.2 % -> 20-30 % and p95 300 ms -> 6 s, exactly while it lasts;
- the events file: a deploy 5 minutes before, and the escalation to level 2.

The report must find the window within one sampling step (1 s), propose P2 (error rate over the
critical 5 % but far from an outage), list the breaches in order, rank the lock pile-up first and
name the blocker's application, and measure the response against the runbook's P2 targets.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import psycopg
import pytest

import vhdiag
from vhdiag import reports
from vhdiag.errors import ConfigError
from vhdiag.history import History
from helpers import fresh_database

DB = "incident"
APP = "pm_app"
WAITERS, FILLERS = 13, 9
SETUP = f"""
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE pm_orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL);
INSERT INTO pm_orders (customer_id, amount) SELECT g % 5000, (g % 997) / 10.0 FROM generate_series(1, 600000) g;
CREATE INDEX pm_orders_customer ON pm_orders (customer_id);
CREATE TABLE pm_stock (id int PRIMARY KEY, qty int NOT NULL);
INSERT INTO pm_stock SELECT g, 1000000 FROM generate_series(1, 10) g;
GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA public TO {APP};
ANALYZE;
"""
COUNT = "SELECT count(*) FROM pm_orders WHERE customer_id = $1"


def _app(server, name):
    return psycopg.connect(server.dsn(DB, user=APP, via="socket"), autocommit=True, application_name=name)


class Incident:
    def __init__(self, server, root: Path):
        self.server, self.root = server, root
        self.history = str(root / "history.sqlite")
        self.ts: dict[str, pd.Timestamp] = {}

    def snapshot(self, label):
        with vhdiag.connect(self.server.dsn(DB)) as t, History(self.history) as h:
            self.ts[label] = h.snapshot(t, "incident")["ts"]

    def build(self, **kw):
        return reports.build("postmortem", target=self.server.dsn(DB), history=self.history,
                             target_name="incident", **kw)


def _counts(server, n):
    with _app(server, "checkout-api") as conn:
        for i in range(n):
            conn.execute("SELECT count(*) FROM pm_orders WHERE customer_id = %s", (i,))


def _waiting(server) -> int:
    with server.admin(DB) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()[0]


@pytest.fixture(scope="module")
def incident(pg, servers, tmp_path_factory):
    server = servers.extra(f"postmortem-{pg.id}", version=pg.id,
                           extra_settings={"max_connections": "26", "superuser_reserved_connections": "3"})
    fresh_database(server, DB, SETUP, role=APP)
    inc = Incident(server, tmp_path_factory.mktemp(f"postmortem-{pg.id}"))
    inc.snapshot("A")
    _counts(server, 40)
    inc.snapshot("B")
    time.sleep(1.1)
    inc.t_on = pd.Timestamp.now(tz="UTC")
    time.sleep(1.5)   # the incident spans whole 1-second metric samples however fast the machine is
    with server.admin(DB) as conn:
        conn.execute("DROP INDEX pm_orders_customer")
    _counts(server, 40)
    blocker = _app(server, "billing-worker")
    blocker.autocommit = False
    blocker.execute("UPDATE pm_stock SET qty = qty - 1 WHERE id = 1")
    conns, threads = [], []
    for _ in range(WAITERS):
        c = _app(server, "checkout-api")
        conns.append(c)
        threads.append(threading.Thread(target=c.execute, args=("UPDATE pm_stock SET qty = qty - 1 WHERE id = 1",)))
        threads[-1].start()
    conns += [_app(server, "checkout-api") for _ in range(FILLERS)]
    deadline = time.monotonic() + 30
    while _waiting(server) < WAITERS and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(psycopg.OperationalError):   # at the limit: one more ordinary connection is refused
        _app(server, "late").close()
    inc.snapshot("C")
    blocker.rollback()
    blocker.close()
    for t in threads:
        t.join(30)
    for c in conns:
        c.close()
    inc.t_off = pd.Timestamp.now(tz="UTC")
    time.sleep(1.1)
    inc.snapshot("D")
    # The metrics file: 1 s samples, high exactly in [t_on, t_off).
    grid = pd.date_range(inc.t_on.ceil("s") - pd.Timedelta("60s"), inc.t_off.ceil("s") + pd.Timedelta("60s"), freq="1s")
    high = (grid >= inc.t_on) & (grid < inc.t_off)
    mid = grid[high][len(grid[high]) // 2]
    rows = []
    for t, h in zip(grid, high):
        rows += [(t, "error_rate_pct", (30.0 if t == mid else 20.0) if h else 0.2),
                 (t, "response_time_p95_ms", 6000.0 if h else 300.0),
                 (t, "cpu_pct", 40.0), (t, "memory_pct", 50.0)]
    inc.metrics = inc.root / "metrics.csv"
    pd.DataFrame(rows, columns=["ts", "metric", "value"]).to_csv(inc.metrics, index=False)
    inc.start, inc.end, inc.mid = grid[high][0], grid[(grid >= inc.t_on) & ~high][0], mid
    inc.events = inc.root / "events.csv"
    inc.events.write_text("ts,kind,description\n"
                          f"{(inc.t_on - pd.Timedelta('5min')).isoformat()},deploy,checkout-api v2.3.1\n"
                          f"{(inc.start + pd.Timedelta('16min')).isoformat()},escalation,paged level 2 (DevOps Lead)\n")
    inc.times = {"acknowledged_at": inc.start + pd.Timedelta("1min"), "mitigated_at": inc.start + pd.Timedelta("35min"),
                 "resolved_at": inc.start + pd.Timedelta("45min")}
    inc.params = {"around": mid.isoformat(), "metrics": str(inc.metrics), "events": str(inc.events),
                  **{k: v.isoformat() for k, v in inc.times.items()}}
    inc.report = inc.build(**inc.params)
    return inc


def _kinds(findings, kind):
    return [f for f in findings if f["kind"] == kind]


def test_the_window_is_found_within_one_step(incident):
    r = incident.report
    assert r.found
    assert abs(r.start - incident.t_on) <= pd.Timedelta("1s") and r.start == incident.start
    assert abs(r.end - incident.t_off) <= pd.Timedelta("1s") and r.end == incident.end


def test_severity_proposed_from_the_impact(incident):
    r = incident.report
    assert r.severity == "P2" and not r.severity_given
    assert r.severity_rule.startswith("P2 (Partial outage): the error rate reached 30.0 %")
    (sev,) = _kinds(r.findings, "severity")
    assert sev["metrics"] == {"priority": "P2", "given": False}
    assert r.impact["peak_error_rate_pct"] == 30.0 and r.impact["peak_response_time_p95_ms"] == 6000.0


def test_breaches_in_order_with_their_times(incident):
    r = incident.report
    file_breaches = [(b["subject"], b["metrics"]["level"], b["metrics"]["start"], b["metrics"]["end"])
                     for b in _kinds(r.findings, "metric_breach") if b["subject"] != "db_connections"]
    s, e = incident.start.isoformat(), incident.end.isoformat()
    assert file_breaches == [("error_rate_pct", "warning", s, e), ("error_rate_pct", "critical", s, e),
                             ("response_time_p95_ms", "warning", s, e), ("response_time_p95_ms", "critical", s, e)]
    # CPU and memory stayed quiet: no breach of theirs.
    assert not [b for b in _kinds(r.findings, "metric_breach") if b["subject"] in ("cpu_pct", "memory_pct")]
    tl = r.timeline
    first = tl[tl["event"] == "Error rate critical"].iloc[0]
    assert first["ts"] == incident.start and first["source"] == "metrics"
    assert tl[tl["event"] == "Error rate peak"].iloc[0]["ts"] == incident.mid
    assert tl[tl["event"] == "Error rate recovered"].iloc[0]["ts"] == incident.end
    assert list(tl["ts"]) == sorted(tl["ts"])


def test_the_lock_pileup_ranks_first_and_names_the_blocker(incident):
    r = incident.report
    hyps = [h["cause"] for h in r.hypotheses]
    assert hyps[0] == "lock_pileup", r.hypotheses
    assert {"connection_exhaustion", "regressed_query", "deploy"} <= set(hyps)
    assert "memory_pressure" not in hyps and "config_change" not in hyps
    top = r.hypotheses[0]
    assert f"{WAITERS} sessions waited behind pid" in top["for"][0] and "application billing-worker" in top["for"][0]
    assert "idle in transaction" in top["for"][0]
    conn = next(h for h in r.hypotheses if h["cause"] == "connection_exhaustion")
    assert any("symptom of the lock pile-up" in x for x in conn["against"])
    regress = next(h for h in r.hypotheses if h["cause"] == "regressed_query")
    assert regress["for"][0].startswith(COUNT) and any("DROP INDEX pm_orders_customer" in x for x in regress["for"])
    assert "CPU stayed under its warning threshold" in regress["against"]
    (changed,) = _kinds(r.findings, "query_change")
    assert changed["query"] == COUNT
    events = {e["title"].split(" at ")[0] for e in _kinds(r.findings, "db_event")}
    assert {"DDL", "lock waits", "idle in transaction", "connection burst"} <= events
    conns = r.connections.set_index(["application", "state"])["connections"]
    assert conns[("checkout-api", "active")] == WAITERS and conns[("checkout-api", "idle")] == FILLERS
    assert conns[("billing-worker", "idle in transaction")] == 1
    assert r.writes.set_index("table").loc["pm_stock", "writes"] >= WAITERS


def test_response_against_the_runbook(incident):
    r = incident.report
    resp = r.response.set_index("step")
    assert resp.loc["acknowledge", ["minutes", "target_minutes", "met"]].tolist() == [1.0, 5, True]
    assert pd.isna(resp.loc["assess", "minutes"]) and resp.loc["assess", "verdict"] == "not given"
    assert resp.loc["mitigate", ["minutes", "target_minutes", "met"]].tolist() == [35.0, 30, False]
    assert resp.loc["mitigate", "verdict"] == "missed by 5.0 min"
    assert resp.loc["resolve", ["minutes", "target_minutes", "met"]].tolist() == [45.0, 60, True]
    esc = r.escalation.set_index("level")
    assert esc["required"].tolist() == [True, True, True, False]   # 45 min unresolved; not down (P2)
    assert esc.loc[2, "recorded"] == (incident.start + pd.Timedelta("16min")).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert esc.loc[3, "recorded"] == "not recorded in the events file"
    assert esc.loc[1, "recorded"] == "acknowledged " + incident.times["acknowledged_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
    sla = {f["subject"]: f["metrics"]["met"] for f in _kinds(r.findings, "response_sla")}
    assert sla == {"acknowledge": True, "mitigate": False, "resolve": True}
    assert [f["metrics"]["level"] for f in _kinds(r.findings, "escalation")] == [2, 3]


def test_without_metrics_the_history_still_tells(incident):
    r = incident.build(around=incident.ts["C"].isoformat())
    assert r.found and r.hypotheses[0]["cause"] == "lock_pileup"
    assert any(n.startswith("not seen (no metrics source: give -p metrics=FILE_OR_URL): CPU, Memory, Error rate, "
                            "Response time (p95)") for n in r.notes), r.notes
    assert r.severity == "P3" and "no error rate or response time data" in r.severity_rule


def test_a_quiet_window_finds_no_incident(incident):
    r = incident.build(since=(incident.ts["A"] + pd.Timedelta("1ms")).isoformat(), until=incident.ts["B"].isoformat(),
                       metrics=str(incident.metrics))
    assert not r.found and r.findings == [] and r.hypotheses == []
    assert "no incident found: no threshold breach and no database event in the window" in r.notes


def test_the_runner_writes_the_drafts_beside_the_html(incident):
    out = incident.root / "reports"
    res = reports.run_report("postmortem", target=incident.server.dsn(DB), history=incident.history,
                             target_name="incident", out=str(out), progress=False,
                             assignments=[f"{k}={v}" for k, v in incident.params.items()] + ["severity=P1"])
    names = {p.name for p in res.dir.iterdir()}
    assert {"postmortem.html", "postmortem.md", "postmortem.status_page.txt", "postmortem.customer.txt",
            "postmortem.team.txt", "postmortem.summary.json"} <= names
    summary = json.loads(res.summary.read_text())
    import jsonschema
    jsonschema.validate(summary, json.loads((Path(reports.__file__).parent / "summary.schema.json").read_text()))
    kinds = {f["kind"] for f in summary["findings"]}
    assert {"metric_breach", "severity", "response_sla", "escalation", "cause_hypothesis", "query_change",
            "db_event"} <= kinds
    md = (res.dir / "postmortem.md").read_text()
    for head in ("## Incident", "## Root cause", "## Improvements", "## Runbook updates"):
        assert head in md
    assert "**[TO FILL:" in md and "billing-worker" in md
    assert "- **Severity:** P1 (Complete outage): given; vhdiag would propose P2 (Partial outage)" in md
    team = (res.dir / "postmortem.team.txt").read_text()
    assert team.startswith("@oncall-team\n\nP1 Incident: A lock pile-up behind one session on incident\n")
    assert f"Started: {incident.start:%Y-%m-%d %H:%M} UTC" in team and "Status: Resolved" in team
    customer = (res.dir / "postmortem.customer.txt").read_text()
    assert customer.startswith("Subject: Service Incident - VH-M24\n")
    span = f"between {incident.start:%H:%M} and {incident.times['resolved_at']:%H:%M} UTC"
    assert span in customer and "Service has been restored" in customer
    page = res.html.read_text()
    assert "2. Timeline (UTC)" in page and "billing-worker" in page and "data:image/png;base64," in page


@pytest.mark.parametrize("assignments, message", [
    ([], "a post-mortem needs the incident's time"),
    (["around=2026-11-29T12:00:00Z", "acknowledged_at=2026-11-29T12:30:00Z", "resolved_at=2026-11-29T12:10:00Z"],
     "resolved_at (2026-11-29 12:10:00 UTC) is before acknowledged_at"),
    (["around=not a time"], "is not a time"),
    (["around=2026-11-29T12:00:00Z", "events=BAD"], "events file"),
    (["around=2026-11-29T12:00:00Z", "severity=P7"], "is not one of the runbook's P1, P2, P3, P4"),
])
def test_bad_input_is_one_line_and_writes_nothing(incident, tmp_path, assignments, message):
    bad = tmp_path / "events.csv"
    bad.write_text("ts,kind,description\n2026-11-29T11:50:00Z,deploy\n")
    out = tmp_path / "out"
    assignments = [a.replace("BAD", str(bad)) for a in assignments]
    with pytest.raises(ConfigError) as err:
        reports.run_report("postmortem", target=incident.server.dsn(DB), history=incident.history,
                           target_name="incident", out=str(out), progress=False, assignments=assignments)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()
