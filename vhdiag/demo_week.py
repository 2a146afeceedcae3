"""The demo's simulated week: the last complete ISO week, replayed in a minute or two.

The vending-fleet workload runs for real on the demo server, in phases; after each phase a
snapshot is recorded with the time at which it would have been taken (every 6 hours, every
15 minutes around the incident), so the history store holds a week that growth, forecasts and
the weekly handoff can read. A day before the week is simulated too: the slow-query report
compares the week with the period before it.

Planted, at fixed times of the week (everything is deterministic: a fixed seed, no clock):

- Tuesday 10:00, a settings change: ``work_mem`` 4MB -> 1MB (``ALTER SYSTEM``, reloaded);
- Wednesday 14:05-14:47, the runbook's own example incident: the application's connection pool
  exhausted (32 sessions of ``vendhub-api`` held open) with half the requests failing (the metric
  history: error rate ~50 %, p95 response time over 5 s, DB connections over 30);
- Thursday 11:00, DDL: ``ALTER TABLE machines ADD COLUMN firmware``;
- from Thursday, a new statement: a stock-alert scan of ``telemetry`` with no index to use;
- Friday 16:00-16:20, a CPU warning (78 %);
- every night at 02:00, the settlement report that waits on the payment provider (> 1 s);
- all week, sales and telemetry rows inserted (growth), the dashboard query with no index on
  ``sales.machine_id``, the unused and duplicate indexes of the seed.

The metric history (CPU, memory, error rate, p95 response time, DB connections, one sample a
minute, labelled ``source=demo``) runs from the day before the week until now, so a morning
check has its last 24 hours.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg

SEED = 24                                   # VH-M24
SNAPSHOT_EVERY = pd.Timedelta(hours=6)
DENSE_EVERY = pd.Timedelta(minutes=15)      # around the incident: the runbook's 15-minute checks
DEMO_LABELS = '{"source": "demo"}'   # as vhdiag.metrics frames hold labels: a JSON object

# Offsets from the start of the ISO week (Monday 00:00 UTC).
SETTINGS_CHANGE_AT = pd.Timedelta(days=1, hours=10)
INCIDENT = (pd.Timedelta(days=2, hours=14, minutes=5), pd.Timedelta(days=2, hours=14, minutes=47))
DENSE = (pd.Timedelta(days=2, hours=13, minutes=30), pd.Timedelta(days=2, hours=15, minutes=30))
DDL_AT = pd.Timedelta(days=3, hours=11)
NEW_STATEMENT_FROM = pd.Timedelta(days=3)
CPU_WARNING = (pd.Timedelta(days=4, hours=16), pd.Timedelta(days=4, hours=16, minutes=20))
POOL_SESSIONS = 32                          # over the runbook's 30: critical
MORNING_CHECK_AT = pd.Timedelta(hours=9)    # the runbook's morning checklist, 09:00 UTC

STOCK_ALERT_SQL = ("SELECT machine_id, min(stock_level) FROM telemetry WHERE stock_level < %s "
                   "GROUP BY machine_id ORDER BY 2 LIMIT 20")


@dataclass(frozen=True)
class Week:
    """What was simulated: the week's bounds, the incident, and the planted changes' times."""

    start: pd.Timestamp
    end: pd.Timestamp
    incident: tuple[pd.Timestamp, pd.Timestamp]
    settings_change: pd.Timestamp
    ddl: pd.Timestamp
    snapshots: int

    @property
    def iso_week(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def incident_middle(self) -> pd.Timestamp:
        return self.incident[0] + (self.incident[1] - self.incident[0]) / 2


def snapshot_times(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """Every 6 hours from the day before ``start`` to ``end``, every 15 minutes around the incident."""
    times = set(pd.date_range(start - pd.Timedelta(days=1), end, freq=SNAPSHOT_EVERY))
    times |= set(pd.date_range(start + DENSE[0], start + DENSE[1], freq=DENSE_EVERY))
    return sorted(times)


def metric_history(start: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
    """The five runbook metrics, one sample a minute from the day before the week to ``until``,
    as a long frame (ts, metric, value, labels): quiet daily cycles, the incident, a CPU warning."""
    rng = np.random.default_rng(SEED)
    ts = pd.date_range(start - pd.Timedelta(days=1), until, freq="1min", tz="UTC")
    hours = (ts.hour + ts.minute / 60).to_numpy()
    day = np.sin((hours - 9) / 24 * 2 * np.pi)              # busiest in the afternoon
    n = len(ts)
    series = {
        "cpu_pct": 36 + 8 * day + rng.normal(0, 2.0, n),
        "memory_pct": 52 + 2 * day + rng.normal(0, 0.8, n),
        "error_rate_pct": np.abs(0.03 + 0.01 * day + rng.normal(0, 0.01, n)),
        "response_time_p95_ms": 310 + 60 * day + rng.normal(0, 20, n),
        "db_connections": np.round(12 + 3 * day + rng.normal(0, 1.2, n)),
    }
    incident = (ts >= start + INCIDENT[0]) & (ts < start + INCIDENT[1])
    k = int(incident.sum())
    series["error_rate_pct"][incident] = 50 + rng.normal(0, 3, k)
    series["response_time_p95_ms"][incident] = 6500 + rng.normal(0, 600, k)
    series["db_connections"][incident] = POOL_SESSIONS + 1 + rng.integers(0, 4, k)
    series["cpu_pct"][incident] = 74 + rng.normal(0, 3, k)
    series["memory_pct"][incident] = 71 + rng.normal(0, 1.5, k)
    cpu = (ts >= start + CPU_WARNING[0]) & (ts < start + CPU_WARNING[1])
    series["cpu_pct"][cpu] = 78 + rng.normal(0, 1.0, int(cpu.sum()))
    frames = [pd.DataFrame({"ts": ts, "metric": name, "value": np.clip(values, 0, None).round(2)})
              for name, values in series.items()]
    out = pd.concat(frames, ignore_index=True)
    out["labels"] = DEMO_LABELS
    return out


def simulate(server, history, target_name: str, start: pd.Timestamp, app_role: str, db: str,
             say: Callable[[str], None], morning_check: Callable[[pd.Timestamp], None] | None = None) -> Week:
    """Replay the week on ``server`` into ``history`` (its own store: the demo starts it empty);
    ``morning_check(ts)`` is called at each simulated 09:00, after the snapshot before it."""
    import vhdiag
    from .history.snapshot import collect
    end = start + pd.Timedelta(days=7)
    times = snapshot_times(start, end)
    rng = np.random.default_rng(SEED)
    app_dsn = server.dsn(db, user=app_role, via="socket")
    admin_dsn = server.dsn(db, via="socket")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:       # the same start on every run
        admin.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {app_role}")   # sales keep coming
        admin.execute("ALTER SYSTEM SET work_mem = '4MB'")
        admin.execute("SELECT pg_reload_conf()")
    held: list[psycopg.Connection] = []
    done = {"settings": False, "ddl": False}
    checks = [start + pd.Timedelta(days=d) + MORNING_CHECK_AT for d in range(7)]
    with vhdiag.connect(admin_dsn) as target:
        previous = None
        for i, ts in enumerate(times):
            offset = ts - start
            if previous is not None:
                _phase(app_dsn, previous - start, offset, rng)
            if not done["settings"] and offset >= SETTINGS_CHANGE_AT:
                with psycopg.connect(admin_dsn, autocommit=True) as admin:
                    admin.execute("ALTER SYSTEM SET work_mem = '1MB'")
                    admin.execute("SELECT pg_reload_conf()")
                done["settings"] = True
            if not done["ddl"] and offset >= DDL_AT:
                with psycopg.connect(admin_dsn, autocommit=True) as admin:
                    admin.execute("ALTER TABLE machines ADD COLUMN IF NOT EXISTS firmware text")
                done["ddl"] = True
            in_incident = INCIDENT[0] <= offset < INCIDENT[1]
            if in_incident and not held:                # the pool exhausted: sessions that do not return
                held = [psycopg.connect(app_dsn, application_name="vendhub-api") for _ in range(POOL_SESSIONS)]
                for conn in held:
                    conn.execute("SELECT 1")            # idle in transaction: the leak
            elif not in_incident and held:
                for conn in held:
                    conn.close()
                held = []
            _flush(admin_dsn)
            frames = collect(target)
            frames["header"]["ts"] = ts
            history.record(frames, target_name)
            following = times[i + 1] if i + 1 < len(times) else end
            for when in checks:
                if morning_check is not None and ts <= when < following:   # 09:00: after the 06:00 snapshot
                    morning_check(when)
            previous = ts
            if i % 8 == 0 or i == len(times) - 1:
                say(f"  simulated {ts:%a %d %b %H:%M} UTC: snapshot {i + 1} of {len(times)}")
    for conn in held:
        conn.close()
    return Week(start=start, end=end, incident=(start + INCIDENT[0], start + INCIDENT[1]),
                settings_change=start + SETTINGS_CHANGE_AT, ddl=start + DDL_AT, snapshots=len(times))


def _phase(app_dsn: str, since: pd.Timedelta, until: pd.Timedelta, rng) -> None:
    """The application's work between two snapshots, scaled to the simulated time."""
    hours = max((until - since) / pd.Timedelta(hours=1), 0.25)
    scale = min(hours / 6, 1.0)
    with psycopg.connect(app_dsn, autocommit=True, application_name="vendhub-api") as conn:
        machines = rng.integers(1, 501, size=max(2, int(8 * scale)))
        for m in machines:
            conn.execute("SELECT count(*), sum(amount) FROM sales WHERE machine_id = %s "
                         "AND sold_at > %s::timestamptz - interval '30 days'", (int(m), "2026-11-27 00:00:00+00"))
        for p in rng.integers(1, 201, size=max(10, int(300 * scale))):
            conn.execute("SELECT name, price FROM products WHERE id = %s", (int(p),))
        for m in rng.integers(1, 501, size=max(5, int(60 * scale))):
            conn.execute("SELECT temperature_c, stock_level FROM telemetry WHERE machine_id = %s "
                         "ORDER BY ts DESC LIMIT 1", (int(m),))
        rows = max(200, int(4000 * scale))                       # sales keep coming: the table grows
        conn.execute("INSERT INTO sales (machine_id, product_id, sold_at, amount, payment_method) "
                     "SELECT 1 + (g * 7919) %% 500, 1 + (g * 104729) %% 200, now(), 0.5 + (g %% 40) * 0.25, "
                     "(ARRAY['card','cash','qr'])[g %% 3 + 1] FROM generate_series(1, %s) g", (rows,))
        conn.execute("UPDATE refill_tasks SET status = 'done', done_at = created_at + interval '2 hours' "
                     "WHERE id %% 97 = %s AND status = 'open'", (int(rng.integers(0, 97)),))
        if since >= NEW_STATEMENT_FROM:
            for level in rng.integers(5, 30, size=max(2, int(6 * scale))):
                conn.execute(STOCK_ALERT_SQL, (int(level),))
        # The nightly settlement: once per simulated night, at the 00:00-06:00 phase.
        if int(until / pd.Timedelta(hours=1)) % 24 == 6 and hours >= 6:
            conn.execute("SELECT pg_sleep(1.1), count(*) FROM refill_tasks WHERE status = %s", ("open",))


def _flush(admin_dsn: str) -> None:
    """Ended sessions have reported their statistics (PostgreSQL 15+ flushes them at exit, which
    the client does not wait for): a fresh session asks for a flush and reads a counter."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT pg_stat_clear_snapshot()")
