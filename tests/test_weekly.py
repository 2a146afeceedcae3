"""`vhdiag report weekly` and the on-call handoff over a prepared week, on real servers.

The history (per server version, on a cluster of its own): real snapshots recorded with fixed
timestamps every 12 hours across an ISO week three weeks back, one before it; check runs recorded
each morning; a metrics file of 5-minute samples over that week and the one before. Planted:

- a breach: CPU at 92 % on Wednesday 14:00-14:30 (over the warning 70 and the critical 85);
- a settings change: ``ALTER SYSTEM SET work_mem = '8MB'`` and a reload on Tuesday;
- a pending index: ``SELECT count(*), sum(amount) FROM wk_sales WHERE machine_id = $1`` runs in
  every interval, sequentially scanning 200,000 rows (the slow-query report's missing index);
- a monitoring gap: no snapshot on Thursday (36 hours between two), over ``snapshot_gap = 13h``;
- a failed check: ``backup.wal_archive`` fails on Wednesday's morning check;
- a metric that went quiet: ``error_rate_pct`` stops on Saturday at noon;
- last week's handoff, with the same pending index and a slow query that is gone since.

Not planted, so not reported: a restart, an index made or dropped, another breach, another
setting, another check failure, a memory or CPU silence.
"""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pandas as pd
import psycopg
import pytest

import vhdiag
import workload
from vhdiag import cli
from vhdiag.history import History
from vhdiag.history.snapshot import collect
from vhdiag.reports import period_name
from helpers import fresh_database

DB = "wk"
SETUP = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE wk_sales (id bigserial PRIMARY KEY, machine_id int NOT NULL, amount numeric(10,2) NOT NULL);
INSERT INTO wk_sales (machine_id, amount) SELECT g % 500, (g % 997) / 10.0 FROM generate_series(1, 200000) g;
ANALYZE wk_sales;
"""
LOOKUP = "SELECT count(*), sum(amount) FROM wk_sales WHERE machine_id = %s"
TITLE = "Missing index: public.wk_sales (machine_id)"


def _week():
    now = pd.Timestamp.now(tz="UTC").normalize()
    start = now - pd.Timedelta(days=now.day_of_week + 21)
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}", start


def _record(server, store, ts):
    with vhdiag.connect(server.dsn(DB)) as target:
        frames = collect(target)
    frames["header"]["ts"] = ts
    store.record(frames, DB)


def _work(server):
    with psycopg.connect(server.dsn(DB, via="socket"), autocommit=True, application_name="wk-app") as conn:
        for i in range(4):
            conn.execute(LOOKUP, (i,))
        workload.flush_stats(conn)


def _metrics(path, start):
    grid = pd.date_range(start - pd.Timedelta(days=7), start + pd.Timedelta(days=7), freq="5min", inclusive="left")
    hot = (grid >= start + pd.Timedelta(days=2, hours=14)) & (grid < start + pd.Timedelta(days=2, hours=14, minutes=30))
    quiet_from = start + pd.Timedelta(days=5, hours=12)
    rows = [(t, "cpu_pct", 92.0 if h else 40.0) for t, h in zip(grid, hot)]
    rows += [(t, "memory_pct", 50.0) for t in grid]
    rows += [(t, "error_rate_pct", 0.05) for t in grid if t < quiet_from]
    pd.DataFrame(rows, columns=["ts", "metric", "value"]).to_csv(path, index=False)


@pytest.fixture(scope="module")
def week(pg, servers, tmp_path_factory):
    server = servers.extra(f"weekly-{pg.id}", version=pg.id)
    fresh_database(server, DB, SETUP)
    root = tmp_path_factory.mktemp(f"weekly-{pg.id}")
    history, out = str(root / "history.sqlite"), root / "reports"
    name, start = _week()
    times = [start - pd.Timedelta(hours=6)] + [start + pd.Timedelta(hours=6 + 12 * i) for i in range(14)]
    times = [t for t in times if t.day_of_week != 3 or t < start]        # Thursday: no snapshot (the gap)
    with History(history) as store:
        for ts in times:
            _record(server, store, ts)
            _work(server)
            if ts == start + pd.Timedelta(days=1, hours=6):               # Tuesday: the settings change
                with server.admin(DB) as conn:
                    conn.execute("ALTER SYSTEM SET work_mem = '8MB'")
                    conn.execute("SELECT pg_reload_conf()")
        for day in range(7):
            ts = start + pd.Timedelta(days=day, hours=9)
            store.record_checks(DB, "morning", ts, [
                {"check": "database.connect", "status": "pass", "evidence": "connected in 0.01 s"},
                {"check": "backup.wal_archive", "status": "fail" if day == 2 else "pass",
                 "evidence": "last archived WAL 30 h ago" if day == 2 else "last archived WAL 1 h ago",
                 "fix": "check archive_command" if day == 2 else ""}])
    with server.admin(DB) as conn:   # the week is over: the server's configuration as it was
        conn.execute("ALTER SYSTEM RESET work_mem")
        conn.execute("SELECT pg_reload_conf()")
    metrics = root / "metrics.csv"
    _metrics(metrics, start)
    config = root / "vhdiag.toml"
    config.write_text('[handoff]\nsnapshot_gap = "13h"\n')
    previous = out / DB / period_name(start - pd.Timedelta(days=7), start)
    previous.mkdir(parents=True)
    (previous / "handoff.summary.json").write_text(json.dumps({"report": "handoff", "findings": [
        {"kind": "pending_task", "severity": "warning", "subject": "public.wk_sales", "title": TITLE,
         "metrics": {"from_report": "slow_queries", "from_kind": "missing_index"}},
        {"kind": "pending_task", "severity": "warning", "subject": "42", "title": "Slow query: SELECT pg_sleep($1)",
         "metrics": {"from_report": "slow_queries", "from_kind": "slow_query"}}]}))
    argv = ["-v", "report", "weekly", "--dsn", server.dsn(DB), "--history", history, "--target-name", DB, "--week", name,
            "--out", str(out), "--config", str(config), "-p", f"handoff.metrics={metrics}"]
    proc = subprocess.run([sys.executable, "-m", "vhdiag", *argv], capture_output=True, text=True, timeout=600)
    folder = out / DB / name
    summary = json.loads((folder / "handoff.summary.json").read_text()) if (folder / "handoff.summary.json").exists() \
        else None
    return {"proc": proc, "out": out, "folder": folder, "name": name, "start": start, "summary": summary,
            "server": server, "history": history, "config": config, "metrics": metrics}


def _kind(summary, kind):
    return [f for f in summary["findings"] if f["kind"] == kind]


def test_the_weekly_run_writes_every_report_and_says_so(week):
    proc = week["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines[:3]] == ["ok      slow_queries", "ok      capacity", "ok      handoff"]
    assert lines[3] == f"week {week['name']}: 3 of 3 reports written"
    assert lines[4].startswith("kernel start: ") and "1 kernel(s) for 3 reports" in lines[4]
    for report in ("slow_queries", "capacity", "handoff"):
        for suffix in (".ipynb", ".html", ".summary.json", ".report.json"):
            assert (week["folder"] / f"{report}{suffix}").is_file(), (report, suffix)
    capacity = json.loads((week["folder"] / "capacity.summary.json").read_text())
    assert pd.Timestamp(capacity["until"]) == week["start"] + pd.Timedelta(days=7)
    assert pd.Timestamp(capacity["since"]) == week["start"] - pd.Timedelta(days=23)   # its 30 days, filed by week


def test_the_index_has_one_row_for_the_week_with_every_report_and_the_counts(week):
    index = (week["out"] / "index.html").read_text()
    assert index.count("<h2>") == 1 and f"<h2>{DB}</h2>" in index
    assert index.count("<tr><td>") == 1
    n = int(week["name"][-2:])
    assert f"week {n} of {week['name'][:4]}" in index
    for report in ("slow_queries", "capacity", "handoff"):
        assert f'href="{DB}/{week["name"]}/{report}.html"' in index
    totals = dict.fromkeys(("critical", "warning", "info"), 0)
    for report in ("slow_queries", "capacity", "handoff"):
        s = json.loads((week["folder"] / f"{report}.summary.json").read_text())
        for f in s["findings"]:
            if not f["metrics"].get("from_report"):     # the handoff's tasks are the other reports' findings
                totals[f["severity"]] += 1
    expected = ", ".join(f'<span class="{s}">{totals[s]} {s}</span>' for s in totals if totals[s])
    assert f"<td>{expected}</td>" in index


def test_the_handoff_lists_the_planted_breach_and_nothing_else(week):
    s, start = week["summary"], week["start"]
    breaches = [(f["subject"], f["metrics"]["level"], pd.Timestamp(f["metrics"]["start"])) for f in _kind(s, "breach")]
    wed = start + pd.Timedelta(days=2, hours=14)
    assert breaches == [("cpu_pct", "warning", wed), ("cpu_pct", "critical", wed)]
    assert [f["severity"] for f in _kind(s, "breach")] == ["warning", "critical"]


def test_the_handoff_lists_the_planted_settings_change_and_nothing_else(week):
    s = week["summary"]
    assert [(f["subject"], f["title"]) for f in _kind(s, "settings_change")] == [("work_mem", "work_mem: default -> 8192kB")]
    assert pd.Timestamp(_kind(s, "settings_change")[0]["metrics"]["ts"]) == week["start"] + pd.Timedelta(days=1, hours=18)
    ddl = [f["query"].split(" (ran between")[0] for f in _kind(s, "ddl")]
    assert ddl in (["ALTER SYSTEM SET work_mem = '8MB'"], ["ALTER SYSTEM SET work_mem = $1"])   # 18 normalizes it
    assert not _kind(s, "index_new") and not _kind(s, "index_dropped") and not _kind(s, "server_event")


def test_the_handoff_lists_the_planted_pending_index_first_among_its_tasks(week):
    s = week["summary"]
    tasks = _kind(s, "pending_task")
    index = [t for t in tasks if t["metrics"]["from_kind"] == "missing_index"]
    assert [(t["subject"], t["title"], t["metrics"]["from_report"]) for t in index] == \
        [("public.wk_sales", TITLE, "slow_queries")]
    assert index[0]["suggestion"].startswith("CREATE INDEX CONCURRENTLY") and "(machine_id)" in index[0]["suggestion"]
    order = {"critical": 0, "warning": 1, "info": 2}
    assert [order[t["severity"]] for t in tasks] == sorted(order[t["severity"]] for t in tasks)
    slow = json.loads((week["folder"] / "slow_queries.summary.json").read_text())
    capacity = json.loads((week["folder"] / "capacity.summary.json").read_text())
    assert len(tasks) == len(slow["findings"]) + len(capacity["findings"])
    assert all(t["suggestion"] for t in tasks)


def test_the_handoff_checks_monitoring_health(week):
    s, start = week["summary"], week["start"]
    gaps = [(pd.Timestamp(f["metrics"]["start"]), pd.Timestamp(f["metrics"]["end"])) for f in _kind(s, "snapshot_gap")]
    assert gaps == [(start + pd.Timedelta(days=2, hours=18), start + pd.Timedelta(days=4, hours=6))]
    checks = _kind(s, "check")
    assert [(c["subject"], c["severity"], c["metrics"]["failed"]) for c in checks] == [("backup.wal_archive", "critical", 1)]
    assert checks[0]["detail"] == "last archived WAL 30 h ago" and checks[0]["suggestion"] == "check archive_command"
    assert [f["suggestion"] for f in _kind(s, "breach")][0] == \
        f"vhdiag report postmortem -p around={(start + pd.Timedelta(days=2, hours=14)).isoformat()} -p metrics={week['metrics']}"
    assert [(f["subject"], f["title"]) for f in _kind(s, "metrics_quiet")] == \
        [("error_rate_pct", "error_rate_pct quiet for 36.1 h before the week's end")]
    assert not _kind(s, "no_check") and not _kind(s, "report_failed") and not _kind(s, "postmortem")


def test_the_handoff_page_and_what_changed_since_last_week(week):
    html = (week["folder"] / "handoff.html").read_text()
    for heading in ("1. Incidents and breaches of the week", "2. Pending tasks", "3. Monitoring health",
                    "4. Recent changes", "5. Since last week", "6. Contacts"):
        assert heading in html
    assert "work_mem" in html and "CREATE INDEX CONCURRENTLY" in html and "DevOps Lead" in html
    assert "extension versions other than pg_stat_statements" in html
    nb = nbformat.read(str(week["folder"] / "handoff.ipynb"), as_version=4)
    table = [o for c in nb.cells for o in c.get("outputs", []) if "still open" in str(o.get("data", {}))]
    assert table, "the comparison with last week's handoff is shown"
    text = str(table[0]["data"])
    assert "resolved" in text and "Slow query: SELECT pg_sleep($1)" in text and TITLE in text


def test_a_failing_report_fails_the_run_and_the_others_are_written(week, tmp_path, monkeypatch, capsys):
    team = tmp_path / "team"
    team.mkdir()
    (team / "broken.py").write_text(
        'TITLE = "Broken"\nPARAMS = []\n\ndef build(*args, **kwargs):\n    raise RuntimeError("planted failure")\n')
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('target: str = ""  # t\nhistory: str = ""  # h\ntarget_name: str = ""  # n\n'
                                       'since: str = ""  # s\nuntil: str = ""  # u\nstatement_timeout_ms: int = 5000  # b\n'
                                       'params: dict = {}  # p')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from vhdiag.reports import registry\n"
                                                  "registry.load('broken').build(target)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(team / "broken.ipynb"))
    monkeypatch.setenv("VHDIAG_REPORTS", str(team))
    out = tmp_path / "out"
    argv = ["report", "weekly", "--dsn", week["server"].dsn(DB), "--history", week["history"], "--target-name", DB,
            "--week", week["name"], "--out", str(out), "--config", str(week["config"]), "--reports", "slow_queries,broken"]
    capsys.readouterr()
    code = cli.main(argv)
    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines[:3]] == ["ok      slow_queries", "FAILED  broken", "ok      handoff"]
    assert lines[1].startswith("FAILED  broken: notebook broken failed in cell ") and \
        "RuntimeError: planted failure; partial notebook kept at " in lines[1]
    assert lines[3] == f"week {week['name']}: 2 of 3 reports written; failed: broken"
    folder = out / DB / week["name"]
    assert (folder / "slow_queries.html").is_file() and (folder / "handoff.html").is_file()
    assert not (folder / "broken.html").exists() and not (folder / "capacity.html").exists()
    kept = list((out / DB / ".failed").glob(f"{week['name']}-broken-*/broken.ipynb"))
    assert len(kept) == 1
    summary = json.loads((folder / "handoff.summary.json").read_text())
    (failed,) = _kind(summary, "report_failed")
    assert failed["subject"] == "broken" and "RuntimeError: planted failure" in failed["detail"]
    index = (out / "index.html").read_text()
    assert "Broken: <span class=\"failed\">failed</span>: notebook broken failed in cell" in index
