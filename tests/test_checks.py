"""vhdiag check morning|evening (issue 11): pure evaluation on frames, then real servers made to
pass, warn and fail, and the day-over-day diff."""
import json
import os
import subprocess
import time

import pandas as pd
import pytest

from helpers import LoopbackHTTP, eventually
from vhdiag import checks, cli
from vhdiag.binaries import library_env
from vhdiag.checks import backups as B
from vhdiag.checks import changes as C
from vhdiag.checks import database as D
from vhdiag.checks import health as H
from vhdiag.config import load_config, resolve_config

NOW = pd.Timestamp("2026-11-30T09:00:00Z")


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def _summary(total, idle_xact=0, oldest_idle=None, longest=None, maxc=100):
    return pd.DataFrame([{"total_connections": total, "active": 1, "idle": total - 1 - idle_xact,
                          "idle_in_transaction": idle_xact, "idle_in_transaction_aborted": 0,
                          "max_connections": maxc, "superuser_reserved_connections": 3,
                          "reserved_connections": pd.NA, "oldest_idle_in_transaction_s": oldest_idle,
                          "longest_transaction_s": longest}])


def _by_check(results):
    return {r.check: r.status for r in results}


# -- pure evaluation ------------------------------------------------------------------------------
def test_database_ready_against_the_runbooks_20_30():
    cfg = load_config()
    assert _by_check(D.evaluate_ready(_summary(5), False, cfg)) == {
        "database.recovery": "pass", "database.connections": "pass", "database.long_transactions": "pass",
        "database.idle_in_transaction": "pass"}
    assert _by_check(D.evaluate_ready(_summary(20), False, cfg))["database.connections"] == "pass"  # > 20 warns
    assert _by_check(D.evaluate_ready(_summary(21), False, cfg))["database.connections"] == "warn"
    assert _by_check(D.evaluate_ready(_summary(31), False, cfg))["database.connections"] == "fail"
    # No free slot fails whatever the thresholds say.
    loose = resolve_config({"thresholds": {"db_connections": {"warning": 500.0, "critical": 900.0}}})
    full = D.evaluate_ready(_summary(97, maxc=100), False, loose)
    assert _by_check(full)["database.connections"] == "fail" and "0 free" in full[1].evidence
    got = D.evaluate_ready(_summary(4, idle_xact=2, oldest_idle=61.0, longest=301.0), True, cfg)
    assert _by_check(got) == {"database.recovery": "fail", "database.connections": "pass",
                              "database.long_transactions": "warn", "database.idle_in_transaction": "warn"}
    assert got[3].evidence == "2 sessions idle in transaction, the oldest for 61 s (limit 60 s)"
    standby = resolve_config({"checks": {"expect_recovery": True}})
    assert _by_check(D.evaluate_ready(_summary(4), True, standby))["database.recovery"] == "pass"


def _archiver(mode="on", ok_age=None, bad_age=None, failed=0):
    ts = pd.Timestamp("2026-11-30T09:00:00Z")
    return pd.DataFrame([{
        "archive_mode": mode, "last_archived_wal": "000000010000000000000003" if ok_age is not None else None,
        "last_archived_time": ts - pd.Timedelta(seconds=ok_age) if ok_age is not None else pd.NaT,
        "last_archived_age_s": ok_age, "failed_count": failed,
        "last_failed_wal": "000000010000000000000004" if bad_age is not None else None,
        "last_failed_time": ts - pd.Timedelta(seconds=bad_age) if bad_age is not None else pd.NaT,
        "last_failed_age_s": bad_age}])


def test_wal_archiving_pass_warn_fail():
    day = 26 * 3600
    assert B.evaluate_archiver(_archiver(ok_age=60), day, False).status == "pass"
    assert B.evaluate_archiver(_archiver(ok_age=60, bad_age=600, failed=3), day, False).status == "pass"  # recovered
    failing = B.evaluate_archiver(_archiver(ok_age=600, bad_age=60, failed=3), day, False)
    assert failing.status == "fail" and failing.evidence.startswith("archiving fails: 3 failures, the last 60 s ago")
    assert B.evaluate_archiver(_archiver(ok_age=day + 1), day, False).status == "fail"
    assert B.evaluate_archiver(_archiver(), day, False).status == "warn"                 # nothing archived yet
    assert B.evaluate_archiver(_archiver(mode="off"), day, False).status == "warn"
    assert B.evaluate_archiver(_archiver(mode="off"), day, True) is None                # dumps are the backup


def test_dumps_pass_and_fail_on_frames():
    files = pd.DataFrame([{"path": "/d/new.dump", "bytes": 2048, "mtime": NOW - pd.Timedelta(hours=2)},
                          {"path": "/d/old.dump", "bytes": 2048, "mtime": NOW - pd.Timedelta(days=3)}])
    ok = B.evaluate_dumps(files, "/d", NOW, 26 * 3600, None)
    assert (ok.status, ok.evidence) == ("pass", "newest dump new.dump: 2.0 h old (max 26.0 h), 2,048 bytes, "
                                                "pg_restore --list reads it")
    assert B.evaluate_dumps(files.iloc[1:], "/d", NOW, 26 * 3600, None).status == "fail"
    assert B.evaluate_dumps(files, "/d", NOW, 26 * 3600, "input file is too short").status == "fail"
    assert B.evaluate_dumps(files.iloc[:0], "/d", NOW, 26 * 3600, None).evidence == "no dump in /d"


def test_diff_names_only_what_is_new():
    first = C.diff("changes.unused_indexes", ["public.a", "public.b"], {}, what="unused indexes", labels={}, fix="x")
    assert (first.status, first.new) == ("warn", ["public.a", "public.b"]) and "first check" in first.evidence
    previous = {"changes.unused_indexes": {"items": ["public.a", "public.b"]}}
    same = C.diff("changes.unused_indexes", ["public.b", "public.a"], previous, what="unused indexes", labels={},
                  fix="x")
    assert (same.status, same.new, same.evidence) == (
        "pass", [], "no new unused indexes since the previous check (2 known)")
    more = C.diff("changes.unused_indexes", ["public.a", "public.c"], previous, what="unused indexes", labels={},
                  fix="x")
    assert (more.status, more.new) == ("warn", ["public.c"])
    assert more.evidence == "1 new unused indexes since the previous check: public.c"


def test_settings_changes_between_first_and_last_snapshot():
    t0, t1 = NOW - pd.Timedelta(hours=1), NOW
    frame = pd.DataFrame([(t0, "work_mem", "4MB"), (t0, "jit", "off"), (t1, "work_mem", "64MB"),
                          (t1, "log_min_duration_statement", "1s")], columns=["ts", "name", "value"])
    assert C.settings_changes(frame) == ["jit: off -> (default)", "log_min_duration_statement: (default) -> 1s",
                                         "work_mem: 4MB -> 64MB"]
    assert C.settings_changes(frame[frame["ts"] == t0]) == []


# -- real servers ---------------------------------------------------------------------------------
def _pg_dump(server, path):
    """A real dump of a small database made for it and dropped after (dumping the planted one
    would scan its tables and change the counters other tests assert)."""
    with server.admin("postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS checks_dump WITH (FORCE)")
        conn.execute("CREATE DATABASE checks_dump")
    try:
        with server.admin("checks_dump") as conn:
            conn.execute("CREATE TABLE kept (id int PRIMARY KEY)")
        env = {**os.environ, **library_env(server.bin_dir)}
        subprocess.run([str(server.bin_dir / "pg_dump"), "-Fc", "-f", str(path), "-d", server.dsn("checks_dump")],
                       check=True, env=env, capture_output=True, timeout=120)
    finally:
        with server.admin("postgres") as conn:
            conn.execute("DROP DATABASE IF EXISTS checks_dump WITH (FORCE)")


def test_morning_check_on_a_real_server(pg, tmp_path, idle_in_transaction):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    _pg_dump(pg.server, dumps / "planted-1.dump")
    cfg = {"checks": {"dumps_dir": str(dumps), "pg_restore": str(pg.server.bin_dir / "pg_restore"),
                      "idle_in_transaction_s": 0.0}}
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    run = checks.run("morning", target=pg.dsn(), history=url, target_name="planted", config=cfg)
    got = {r.check: r for r in run.results}
    assert (got["app.health"].status, got["app.health"].evidence) == ("warn", "not configured: no [checks] app_base_url")
    got = {k: r for k, r in got.items() if not k.startswith("app.")}
    assert list(got)[:6] == ["database.connect", "database.recovery", "database.connections",
                             "database.long_transactions", "database.idle_in_transaction", "backup.dumps"]
    assert {k: got[k].status for k in list(got)[:6]} == {
        "database.connect": "pass", "database.recovery": "pass", "database.connections": "pass",
        "database.long_transactions": "pass", "database.idle_in_transaction": "warn", "backup.dumps": "pass"}
    assert "backup.wal_archive" not in got                          # archiving off, dumps are the backup
    assert got["changes.settings"].status == "warn"                 # no history store with snapshots yet
    assert "cannot run: no history store" in got["changes.settings"].evidence
    assert run.previous_ts is None and run.recorded and run.exit_code == 1

    # A stale dump fails, and so does an unreadable one, however fresh.
    old = time.time() - 3 * 86400
    os.utime(dumps / "planted-1.dump", (old, old))
    stale = {r.check: r for r in checks.run("morning", target=pg.dsn(), history=url, target_name="planted",
                                            config=cfg, record=False).results}["backup.dumps"]
    assert stale.status == "fail" and "3.0 d old (max 26.0 h)" in stale.evidence
    (dumps / "planted-2.dump").write_bytes(b"PGDMP not really")
    broken = {r.check: r for r in checks.run("morning", target=pg.dsn(), history=url, target_name="planted",
                                             config=cfg, record=False).results}["backup.dumps"]
    assert broken.status == "fail" and "pg_restore --list cannot read it" in broken.evidence
    assert "planted-2.dump" in broken.evidence


def test_a_server_that_cannot_be_reached_fails_without_crashing(tmp_path):
    run = checks.run("morning", target="postgresql://nobody@127.0.0.1:1/none", history=str(tmp_path / "h.sqlite"),
                     target_name="gone", config={"checks": {"connect_timeout_s": 1.0}})
    got = {r.check: r.status for r in run.results}
    assert got["database.connect"] == "fail" and run.exit_code == 2
    assert got["database.ready"] == "warn" and got["changes.unused_indexes"] == "warn"


def test_new_slow_query_and_unused_index_since_the_previous_check(pg, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    cfg = {"checks": {"dumps_dir": str(tmp_path)}}   # an empty folder: backup.dumps fails, not our subject
    index = f"vh_check_unused_{pg.id}"
    first = {r.check: r for r in checks.run("morning", target=pg.dsn(), history=url, target_name="planted",
                                            config=cfg).results}
    assert first["changes.unused_indexes"].status == "warn"          # the first check sees them all as new
    known_slow = set(first["changes.slow_queries"].items)
    with pg.admin() as conn:
        conn.execute(f"CREATE INDEX {index} ON machine_events (payload)")
    with pg.admin() as conn:
        conn.execute("SELECT pg_sleep(1.05), 'vh_check_new_slow'")
    try:
        second = checks.run("morning", target=pg.dsn(), history=url, target_name="planted", config=cfg)
        got = {r.check: r for r in second.results}
        assert second.previous_ts is not None
        assert got["changes.unused_indexes"].new == [f"public.{index}"]
        assert got["changes.unused_indexes"].status == "warn"
        slow = got["changes.slow_queries"]
        assert slow.status == "warn" and len(slow.new) == 1 and slow.new[0] not in known_slow
        assert "pg_sleep" in slow.evidence and "since the previous check" in slow.evidence
        third = {r.check: r for r in checks.run("morning", target=pg.dsn(), history=url, target_name="planted",
                                                config=cfg).results}
        assert (third["changes.unused_indexes"].status, third["changes.unused_indexes"].new) == ("pass", [])
        assert (third["changes.slow_queries"].status, third["changes.slow_queries"].new) == ("pass", [])
        assert third["changes.sequences"].status == "pass"
    finally:
        with pg.admin() as conn:
            conn.execute(f"DROP INDEX {index}")


def test_wal_archiving_succeeds_then_fails(pg, servers, tmp_path):
    server = servers.extra(f"{pg.id}-archiving", version=pg.id, extra_settings={
        "archive_mode": "on", "archive_command": "'mkdir -p vh_archive && cp %p vh_archive/%f'"})
    dsn = server.dsn("postgres")

    def wal_check():
        res = checks.run("morning", target=dsn, history=str(tmp_path / "h.sqlite"), target_name="arch",
                         record=False)
        return {r.check: r for r in res.results}["backup.wal_archive"]

    with server.admin("postgres") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (i int); INSERT INTO t SELECT 1")
        conn.execute("SELECT pg_switch_wal()")
    ok = eventually(wal_check, lambda r: r.status == "pass", timeout=15)
    assert ok.evidence.startswith("last WAL segment ") and "0 failures, none since" in ok.evidence
    with server.admin("postgres") as conn:
        conn.execute("ALTER SYSTEM SET archive_command = 'false'")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    with server.admin("postgres") as conn:
        conn.execute("INSERT INTO t SELECT 2")
        conn.execute("SELECT pg_switch_wal()")
    bad = eventually(wal_check, lambda r: r.status == "fail", timeout=30)
    assert bad.evidence.startswith("archiving fails: ")


def test_cli_exit_codes_and_json(pg, tmp_path, capsys):
    url = str(tmp_path / "h.sqlite")
    conf = tmp_path / "vhdiag.toml"
    conf.write_text(f'[checks]\ndumps_dir = "{tmp_path / "none"}"\n')
    code = cli.main(["check", "morning", "--dsn", pg.dsn(), "--history", url, "--target-name", "planted",
                     "--json", "--config", str(conf)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["exit_code"] == 2 and doc["status"] == "fail"      # the dumps folder is missing
    assert set(doc) == {"schema_version", "kind", "target", "ts", "previous_check", "status", "exit_code",
                        "counts", "checks", "notify"}
    assert doc["notify"] is None                                                # no --notify, no notify_url
    assert doc["kind"] == "morning" and doc["previous_check"] is None and doc["schema_version"] == 1
    assert all(set(c) == {"check", "status", "evidence", "fix", "items", "new"} for c in doc["checks"])
    assert {c["check"]: c["status"] for c in doc["checks"]}["backup.dumps"] == "fail"
    assert pg.server.password not in json.dumps(doc)
    code = cli.main(["check", "morning", "--dsn", pg.dsn(), "--history", url, "--target-name", "planted",
                     "--format", "table", "--no-record"])
    out = capsys.readouterr().out
    assert code == 1 and "[PASS] database.connect" in out and "\x1b[" not in out     # warnings only; no colour in a pipe
    assert "previous check " in out.splitlines()[0]


# -- application health: a real HTTP server on loopback -------------------------------------------
class _Health(LoopbackHTTP):
    """A stdlib HTTP server on 127.0.0.1 (a free port) answering each path as ``routes`` say:
    path -> (status, body, delay_s)."""

    def __init__(self, routes):
        import http.server
        routes_ = routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body, delay = routes_[self.path]
                time.sleep(delay)
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass                     # the client gave up (the timeout case)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.base = f"http://127.0.0.1:{self.port}"


@pytest.fixture
def health_server():
    routes = {}
    server = _Health(routes)
    server.routes = routes
    yield server
    server.close()


def _health(base, **checks_cfg):
    from types import SimpleNamespace
    cfg = resolve_config({"checks": {"app_base_url": base, **checks_cfg},
                          "thresholds": {"response_time_p95_ms": {"warning": 150.0, "critical": 5000.0}}})
    return {r.check: r for r in H.health(SimpleNamespace(config=cfg))}


def test_application_health_pass_warn_fail_on_a_loopback_server(health_server):
    srv = health_server
    srv.routes.update({"/api/health/check": (200, '{"status": "ok", "db": "up"}', 0),
                       "/api/health/ready": (200, "ready", 0)})
    got = _health(srv.base)
    assert list(got) == ["app.health /api/health/check", "app.health /api/health/ready"]
    check, ready = got.values()
    assert check.status == "pass" and ready.status == "pass"
    assert check.evidence.startswith(f"GET {srv.base}/api/health/check: HTTP 200 in ")
    assert check.evidence.endswith(' ms, status "ok" (thresholds 150/5000 ms)')
    assert "status" not in ready.evidence                     # not JSON: no status field to judge
    # Slow (over the warning threshold, here 150 ms), a 503, a JSON body that says it is unhealthy.
    srv.routes.update({"/api/health/check": (200, '{"status": "ok"}', 0.3),
                       "/api/health/ready": (503, '{"status": "ok"}', 0)})
    check, ready = _health(srv.base).values()
    assert check.status == "warn" and "slow answers" in check.fix
    assert ready.status == "fail" and "HTTP 503 in " in ready.evidence
    srv.routes.update({"/api/health/check": (200, '{"status": "down"}', 0),
                       "/api/health/ready": (200, '{"status": "degraded"}', 0)})
    check, ready = _health(srv.base).values()
    assert (check.status, ready.status) == ("fail", "warn") and 'status "down"' in check.evidence
    # No answer within the timeout.
    srv.routes.update({"/api/health/check": (200, '{"status": "ok"}', 2.0)})
    late = _health(srv.base, health_timeout_s=0.3, health_urls=["/api/health/check"])
    assert list(late) == ["app.health /api/health/check"]
    assert late["app.health /api/health/check"].status == "fail"
    assert late["app.health /api/health/check"].evidence == f"GET {srv.base}/api/health/check: no answer within 0.3 s"


def test_application_health_not_configured_and_no_secret_shown(health_server):
    got = _health("")
    assert {k: (r.status, r.evidence) for k, r in got.items()} == {
        "app.health": ("warn", "not configured: no [checks] app_base_url")}
    srv = health_server
    srv.routes.update({"/api/health/check?token=s3cret": (200, '{"status": "ok"}', 0)})
    port = srv.server.server_address[1]
    hidden = _health(f"http://user:pw@127.0.0.1:{port}", health_urls=["/api/health/check?token=s3cret"])
    (r,) = hidden.values()
    assert r.status == "pass" and "s3cret" not in r.evidence and "pw" not in r.evidence
    closed = _health("http://127.0.0.1:1", health_urls=["/x"])
    assert closed["app.health /x"].status == "fail" and closed["app.health /x"].evidence.startswith(
        "GET http://127.0.0.1:1/x: ")


# -- metrics over the last 24 h: CSV files ---------------------------------------------------------
def _metrics_csv(tmp_path, name, cpu=lambda t: 40.0, p95=lambda t: 300.0):
    """A wide CSV: one sample every 5 minutes over the 24 h before NOW, plus one a day older."""
    times = pd.date_range(NOW - pd.Timedelta(hours=24), NOW, freq="5min")
    lines = ["ts,cpu_pct,response_time_p95_ms", f"{(NOW - pd.Timedelta(hours=30)).isoformat()},99,9999"]
    lines += [f"{t.isoformat()},{cpu(t)},{p95(t)}" for t in times]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _metrics(source, **checks_cfg):
    from types import SimpleNamespace

    from vhdiag.checks import metrics as M
    cfg = resolve_config({"checks": checks_cfg})
    return {r.check: r for r in M.metrics(SimpleNamespace(config=cfg, metrics=source, now=NOW, target_name="t"))}


def _at(hh, mm=0):
    return NOW.normalize() + pd.Timedelta(hours=hh, minutes=mm)


def test_metrics_pass_warn_fail_against_the_runbooks_thresholds_and_slos(tmp_path):
    ok = _metrics(_metrics_csv(tmp_path, "ok.csv"))          # the sample 30 h old (99 %, 9999 ms) is outside
    assert {k: (r.status, r.evidence) for k, r in ok.items()} == {
        "metrics.cpu_pct": ("pass", "289 samples in the last 24.0 h, max 40, under warning 70; SLO met"),
        "metrics.response_time_p95_ms": ("pass", "289 samples in the last 24.0 h, max 300, under warning 1000; "
                                                 "SLO met")}
    # CPU over 70 % for 30 minutes warns; p95 over the SLO's 500 ms (never over 1 s) in 3 samples warns.
    warm = _metrics(_metrics_csv(tmp_path, "warn.csv", cpu=lambda t: 75.0 if _at(2) <= t <= _at(2, 30) else 40.0,
                                 p95=lambda t: 600.0 if _at(4) <= t <= _at(4, 10) else 300.0))
    assert {k: r.status for k, r in warm.items()} == {"metrics.cpu_pct": "warn", "metrics.response_time_p95_ms": "warn"}
    # An interval lasts until the next sample under the threshold (breaches()' rule).
    assert warm["metrics.cpu_pct"].evidence == ("0 critical, 1 warning intervals in the last 24.0 h; worst "
                                                "2026-11-30 02:00-02:35 UTC (35 min): peak 75 > warning 70")
    assert warm["metrics.response_time_p95_ms"].evidence == (
        "0 critical, 0 warning intervals in the last 24.0 h; SLO response_time_p95_ms < 500 met by 98.96 % of "
        "289 samples (objective 99.9 %)")
    # Over 85 % for 20 minutes fails; a one-sample spike to 95 % (5 min) is shorter than
    # metrics_min_duration = 10m, so the 20 minutes are the worst interval.
    hot_csv = _metrics_csv(tmp_path, "fail.csv",
                           cpu=lambda t: 90.0 if _at(3) <= t <= _at(3, 20) else 95.0 if t == _at(5) else 40.0)
    hot = _metrics(hot_csv, metrics_min_duration="10m")
    assert hot["metrics.cpu_pct"].status == "fail" and hot["metrics.response_time_p95_ms"].status == "pass"
    assert hot["metrics.cpu_pct"].evidence == ("1 critical, 1 warning intervals in the last 24.0 h; worst "
                                               "2026-11-30 03:00-03:25 UTC (25 min): peak 90 > critical 85")
    spiky = _metrics(hot_csv, metrics_min_duration="0s")      # now the spike counts, and is the worst
    assert spiky["metrics.cpu_pct"].evidence == ("2 critical, 2 warning intervals in the last 24.0 h; worst "
                                                 "2026-11-30 05:00-05:05 UTC (5 min): peak 95 > critical 85")


def test_metrics_cannot_run_without_a_source_and_through_the_runner(tmp_path):
    assert {k: (r.status, r.evidence) for k, r in _metrics(None).items()} == {
        "metrics": ("warn", "cannot run: no metrics source")}
    old = tmp_path / "old.csv"
    old.write_text("ts,cpu_pct\n2026-11-01T00:00:00Z,99\n")
    assert _metrics(str(old))["metrics"].evidence == f"no samples from {old} in the last 24.0 h"
    hot = _metrics_csv(tmp_path, "hot.csv", cpu=lambda t: 90.0 if _at(3) <= t <= _at(3, 20) else 40.0)
    run = checks.run("morning", target="postgresql://nobody@127.0.0.1:1/none", history=str(tmp_path / "h.sqlite"),
                     target_name="gone", config={"checks": {"connect_timeout_s": 1.0}}, now=NOW, metrics=hot,
                     record=False)
    got = {r.check: r.status for r in run.results}
    assert got["metrics.cpu_pct"] == "fail" and got["metrics.response_time_p95_ms"] == "pass"
    assert list(got).index("metrics.cpu_pct") > list(got).index("database.connect")


def _backup_cmd(tmp_path, text, code=0):
    script = tmp_path / "list-backups.py"
    script.write_text(f"import sys\nsys.stdout.write({text!r})\nsys.stderr.write('denied\\n')\nsys.exit({code})\n")
    import sys
    from types import SimpleNamespace
    cfg = resolve_config({"checks": {"backup_command": f"{sys.executable} {script}"}})
    return B.command(SimpleNamespace(config=cfg, now=NOW))[0]


def test_backup_list_command_pass_and_fail(tmp_path):
    fresh = json.dumps([{"inserted_at": "2026-11-29T03:00:00Z", "status": "COMPLETED"},
                        {"inserted_at": "2026-11-30T03:00:00Z", "status": "COMPLETED"},
                        {"inserted_at": "2026-11-30T08:00:00Z", "status": "FAILED"}])
    ok = _backup_cmd(tmp_path, fresh)
    assert (ok.status, ok.evidence) == ("pass", "newest of 3 listed backups: 2026-11-30 03:00 UTC, COMPLETED, "
                                                "6.0 h old (max 26.0 h)")
    stale = _backup_cmd(tmp_path, json.dumps({"backups": [{"created_at": "2026-11-27T03:00:00Z"}]}))
    assert (stale.status, stale.evidence) == ("fail", "newest of 1 listed backups: 2026-11-27 03:00 UTC, "
                                                      "3.2 d old (max 26.0 h)")
    assert _backup_cmd(tmp_path, "[]").evidence == "the backup command lists 0 backups, none completed"
    assert _backup_cmd(tmp_path, "not json").evidence.startswith("cannot read the backup command's JSON: ")
    failed = _backup_cmd(tmp_path, fresh, code=1)
    assert (failed.status, failed.evidence) == ("fail", "the backup command failed: denied")
