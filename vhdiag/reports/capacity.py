"""The capacity report: will we run out, and when? Space now, growth, forecasts with their
uncertainty, connection headroom, replicas and maintenance debt (runbook 2 *Database Connection
Issues*, 5 *Auto-Scaling*, 6 *Performance Optimization*, "Critical Thresholds").

Growth and forecasts come from the history store (``vhdiag snapshot``): database and table sizes
and connection counts per snapshot. Forecasts use ``vhdiag.analysis.forecast`` (scipy's Theil-Sen
robust trend with a prediction band, a weekly cycle where the series has one). CPU and memory come
from ``metrics`` (Prometheus, a file or the store) when given. Everything suggested is text.
hypopg ("would the plans change without this index?") is not used here: it is optional and not
installed on the test servers; the slow-query report's plannable check is where it would go.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..analysis import capacity as C
from ..analysis import capacity_connections as CC
from ..analysis import capacity_maintenance as CM
from ..analysis import findings as F
from ..analysis import forecast as fc
from ..config import resolve_config
from ..display import human_bytes
from ..timeparse import parse_duration
from .base import Param, Report, resolve_params
from .data import open_inputs
from .periods import resolve_window

TITLE = "Capacity"
DESCRIPTION = "space, growth, forecasts with their uncertainty, connection headroom, replicas, maintenance debt"

PARAMS = [
    Param("window", str, help="history to learn from, the report's window when --window/--since is not given "
          "(a duration: 30d)", setting="capacity.window", duration=True),
    Param("horizon", str, help="how far ahead to forecast (a duration: 90d)", setting="capacity.horizon",
          duration=True),
    Param("disk_quota_bytes", int, help="the plan's storage limit in bytes; 0: unknown (no quota dates)",
          setting="capacity.disk_quota_bytes", minimum=0),
    Param("pool_size", int, 0, "the application's connection pool size; 0: not compared", minimum=0),
    Param("metrics", str, "", "CPU and memory history: a Prometheus URL, a CSV or Parquet file, or the store"),
    Param("top_n", int, help="tables and indexes listed and forecast", setting="reports.top_n", minimum=1),
]


def default_window(params: dict) -> str:
    """The runner's window when none is given: ``window`` of history (not the 7 days of a weekly report)."""
    return params["window"]


def _days(duration: str) -> float:
    return parse_duration(duration).total_seconds() / 86400


@dataclass
class CapacityReport(Report):
    database: str = ""
    settings: dict = field(default_factory=dict)
    forecast_settings: fc.Settings | None = None
    db_size: int | None = None
    tables: pd.DataFrame | None = None
    indexes: pd.DataFrame | None = None
    growth: pd.DataFrame | None = None
    db_series: pd.DataFrame | None = None
    forecasts: dict = field(default_factory=dict)      # name -> (Forecast, unit)
    conn_series: pd.DataFrame | None = None
    usable: int | None = None
    peaks: dict = field(default_factory=dict)
    by_app: pd.DataFrame | None = None
    by_app_history: pd.DataFrame | None = None
    idle_in_xact_s: float = 0.0
    metrics: pd.DataFrame | None = None
    replicas: pd.DataFrame | None = None
    replica_assumption: str = ""
    dead: pd.DataFrame | None = None
    bloat: pd.DataFrame | None = None
    index_bloat: pd.DataFrame | None = None
    unused: pd.DataFrame | None = None
    duplicates: pd.DataFrame | None = None
    invalid: pd.DataFrame | None = None
    wraparound: pd.DataFrame | None = None
    sequences: pd.DataFrame | None = None


def build(target=None, history=None, since=None, until=None, target_name=None, *, window=None,
          statement_timeout_ms=None, config=None, **params) -> CapacityReport:
    """The capacity report over the last ``window`` before ``until`` (or ``since``..``until``)."""
    cfg = resolve_config(config)
    p = resolve_params(PARAMS, params, "capacity", cfg)
    start, end = resolve_window(since or None, until or None,
                                None if since else (window or default_window(p)))
    inputs = open_inputs(target, history, target_name, statement_timeout_ms)
    try:
        return _build(inputs, p, cfg, start, end)
    finally:
        inputs.close()


def _build(inputs, p, cfg, start, end) -> CapacityReport:
    from ..collect import indexes as ix
    db, store, name = inputs.db, inputs.store, inputs.target_name
    cap = cfg["capacity"]
    th = cfg["thresholds"]
    s = fc.Settings.from_config(cap)
    horizon = _days(p["horizon"])
    dbname = db.display.rsplit("/", 1)[-1]
    r = CapacityReport(name="capacity", title=TITLE, target=name, target_display=db.display, since=start, until=end,
                       params=p, database=dbname, settings=dict(cap), forecast_settings=s)
    top_n = p["top_n"]
    tables, indexes, maint = db.tables(), db.indexes(), db.maintenance()
    dbs = db.database()
    row = dbs[dbs["database"] == dbname]
    r.db_size = int(row["size_bytes"].iloc[0]) if len(row) and pd.notna(row["size_bytes"].iloc[0]) else None
    r.tables, r.indexes = C.top_tables(tables, top_n), C.top_indexes(indexes, top_n)
    findings: list[dict] = []

    # 2-3. growth and forecasts, from the history
    if store is not None and inputs.has_history:
        length = end - start
        r.growth = C.growth(store.table_growth(start, end, target=name),
                            store.table_growth(start - length, start, target=name), cap["growth_acceleration_ratio"])
        series = store.database_series(start, end, target=name)
        r.db_series = series[series["database"] == dbname][["ts", "size_bytes"]].dropna()
        r.conn_series = series.drop_duplicates("ts")[["ts", "connections"]].dropna()
        tseries = store.table_series(start, end, target=name)
    else:
        r.notes.append("the history store holds no snapshots of this target: no growth, no forecast "
                       "(run `vhdiag snapshot` every 15 minutes)")
        r.growth, r.db_series, r.conn_series = C.growth(None, None, 2), pd.DataFrame(), pd.DataFrame()
        tseries = pd.DataFrame(columns=["ts", "schema", "table", "total_bytes"])
    quota = p["disk_quota_bytes"]
    if quota:
        levels = [("warning", f"{cap['quota_warning_pct']:g} % of quota"),
                  ("critical", f"{cap['quota_critical_pct']:g} % of quota"), ("critical", "the quota")]
        limits = [quota * cap["quota_warning_pct"] / 100, quota * cap["quota_critical_pct"] / 100, quota]
    else:
        levels, limits = [], []
        r.notes.append("no disk quota given (-p disk_quota_bytes=...): the database size is forecast, "
                       "but no date of running out can be given")
    thresholds = list(zip(limits, [lab for _, lab in levels]))
    if len(r.db_series):
        f = fc.fit(r.db_series["ts"], r.db_series["size_bytes"], horizon, s, thresholds=thresholds, unit="bytes")
        f.backtest = fc.backtest(r.db_series["ts"], r.db_series["size_bytes"], s)
        r.forecasts[f"database {dbname}"] = (f, "bytes", limits)
        got = C.forecast_finding("disk_forecast", dbname, f"Database {dbname} size", f, levels, horizon,
                                 "-- runbook 5, Scaling: raise the plan's storage, or archive old data (runbook 2, "
                                 "Slow Queries: Archive old data); the top growers are in section 2.",
                                 human_bytes) if levels else None
        if got:
            findings.append(got)
    for rec in r.growth.head(top_n).to_dict("records"):
        ts_ = tseries[(tseries["schema"] == rec["schema"]) & (tseries["table"] == rec["table"])]
        if len(ts_):
            f = fc.fit(ts_["ts"], ts_["total_bytes"], horizon, s, unit="bytes")
            f.backtest = fc.backtest(ts_["ts"], ts_["total_bytes"], s)
            r.forecasts[f"{rec['schema']}.{rec['table']}"] = (f, "bytes", [])
    grow = r.growth[r.growth["growth_bytes_per_day"].astype(float) >= cap["growth_min_bytes_per_day"]]
    for i, rec in enumerate(grow.head(top_n).to_dict("records")):
        subject = f"{rec['schema']}.{rec['table']}"
        findings.append(F.finding(
            "table_growth", "info", subject,
            f"Growth #{i + 1}: {subject} +{human_bytes(rec['growth_bytes_per_day'])} per day",
            f"{subject} grew {human_bytes(rec['growth_bytes'])} over {rec['days']:.1f} days "
            f"({human_bytes(rec['growth_bytes_per_day'])} per day; {int(rec['n_tup_ins'] or 0):,} rows inserted, "
            f"{int(rec['n_tup_del'] or 0):,} deleted); now {human_bytes(rec['end_total_bytes'])}.",
            "-- runbook 2, Slow Queries: Archive old data (partition by time, or delete what is past its retention)",
            rank=i + 1, growth_bytes_per_day=rec["growth_bytes_per_day"], growth_bytes=rec["growth_bytes"]))
        if rec["accelerated"]:
            findings.append(F.finding(
                "growth_acceleration", "warning", subject,
                f"Growth accelerated: {subject} {human_bytes(rec['growth_bytes_per_day'])}/day, was "
                f"{human_bytes(rec['before_bytes_per_day'])}/day",
                f"{subject} grows {rec['growth_bytes_per_day'] / rec['before_bytes_per_day']:.1f} times as fast "
                "as in the previous window of the same length.",
                "-- which deployment or job changed the write rate? Compare the top statements (vhdiag report "
                "slow_queries) of the two windows.", growth_bytes_per_day=rec["growth_bytes_per_day"],
                before_bytes_per_day=rec["before_bytes_per_day"]))

    # 4. connections
    conns = db.connections()
    r.usable = CC.usable_connections(conns)
    r.peaks = CC.connection_peaks(r.conn_series, r.usable)
    r.by_app = CC.by_app_state(conns, r.usable)
    hist = (store.incident_view(start, end, target=name)["connections"] if store is not None and inputs.has_history
            else None)
    if hist is not None and len(hist):
        hist = hist[hist["ts"] >= start]     # incident_view adds the snapshot before the window
    r.by_app_history = CC.by_app_history(hist, r.usable)
    act = db.activity()
    idle = act[act["state"].isin(["idle in transaction", "idle in transaction (aborted)"])]
    r.idle_in_xact_s = float(idle["state_duration_s"].fillna(0).sum())
    cw, cc = th["db_connections"]["warning"], th["db_connections"]["critical"]
    findings += CC.headroom_findings(r.conn_series, cw, cc, r.usable, name)
    if len(r.conn_series):
        peaks = fc.daily_peaks(r.conn_series["ts"], r.conn_series["connections"])
        clevels = [("warning", "runbook warning"), ("critical", "runbook critical")]
        cth = [(cw, "runbook warning"), (cc, "runbook critical")]
        if r.usable:
            clevels.append(("critical", "usable max_connections"))
            cth.append((r.usable, "usable max_connections"))
        f = fc.fit(peaks["ts"], peaks["value"], horizon, s, thresholds=cth, unit="connections")
        f.backtest = fc.backtest(peaks["ts"], peaks["value"], s)
        r.forecasts["daily peak connections"] = (f, "connections", [t for t, _ in cth])
        got = C.forecast_finding("connections_forecast", name, "Daily peak connections", f, clevels, horizon,
                                 "-- runbook 2, Database Connection Issues: a pooler, or raise max_connections "
                                 "with the instance size (runbook 5, Increase Instance Size)")
        if got and f.status == "ok":
            findings.append(got)

    # 5. replicas (CPU and memory from the metrics)
    r.replica_assumption = replica_assumption(cfg)
    if p["metrics"]:
        from .. import load_metrics
        r.metrics = load_metrics(p["metrics"], since=start, until=end, config=cfg)
        findings += _replicas(r, cfg, s, horizon)
    else:
        r.notes.append("no metrics given (-p metrics=...): no CPU, memory or replica forecast")

    # 6. maintenance debt
    r.dead = CM.dead_tuple_tables(maint, cap["dead_tuples_min"], cap["dead_tuples_pct"], cap["vacuum_max_age_days"], end)
    r.bloat, r.index_bloat = _bloat(db, tables, cap)
    r.duplicates = CM.duplicate_groups(indexes)
    dropped = set(zip(r.duplicates["schema"], r.duplicates["index"]))
    r.unused = CM.unused_indexes(indexes, tables, dropped)
    r.invalid = ix.invalid(db, indexes)
    r.wraparound = db.wraparound()
    r.wraparound = r.wraparound[r.wraparound["database"] == dbname]
    r.sequences = db.sequences()
    findings += CM.maintenance_findings(dead=r.dead, bloat=r.bloat, unused=r.unused, dups=r.duplicates,
                                       invalid=r.invalid, wrap=r.wraparound, seqs=r.sequences,
                                       wrap_pct=cap["wraparound_pct"], seq_pct=cap["sequence_used_pct"],
                                       index_bloat=r.index_bloat)
    order = {"critical": 0, "warning": 1, "info": 2}
    r.findings = sorted(findings, key=lambda f: order[f["severity"]])
    return r


def _bloat(db, tables: pd.DataFrame, cap) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table and btree-index bloat, each row naming its method: the statistics estimates for all,
    pgstattuple (when installed and allowed) for the ``bloat_exact_top_n`` largest tables and the
    most bloated btree indexes by the estimate."""
    from ..collect import bloat as B
    est = db.index_bloat()
    n = int(cap["bloat_exact_top_n"])
    top_t = tables.dropna(subset=["table_bytes"]).sort_values("table_bytes", ascending=False).head(n)
    top_i = est[~est["is_na"].fillna(False).astype(bool)].head(n)
    exact = B.exact(db, list(zip(top_t["schema"], top_t["table"])),
                    list(zip(top_i["schema"], top_i["index"], top_i["fillfactor"]))) if n else None
    heap = CM.with_exact_tables(CM.heap_bloat(tables, 0, 0), exact)
    heap = heap[(heap["bloat_pct"].astype(float) >= cap["bloat_pct"])
                & (heap["bloat_bytes"].astype(float) >= cap["bloat_min_bytes"])]
    heap = heap.sort_values("bloat_bytes", ascending=False).reset_index(drop=True)
    return heap, CM.index_bloat(est, exact, cap["bloat_pct"], cap["bloat_min_bytes"])


def bloat_method_lines(r: CapacityReport) -> list[str]:
    """Which method each bloat figure comes from, in words, for the notebook."""
    from ..collect import bloat as B
    methods = set(r.index_bloat["method"]) if r.index_bloat is not None and len(r.index_bloat) else set()
    tmethods = set(r.bloat["method"]) if r.bloat is not None and len(r.bloat) else set()
    lines = [f"Tables: '{CM.BLOAT_METHOD}' (dead-row share) unless the row says {B.TABLE_METHOD} (the pgstattuple "
             "extension: dead rows plus free space, read from the pages that are not all-visible).",
             f"Btree indexes: '{CM.STATS_METHOD}', from pg_class, pg_index and pg_stats (as fresh as the last "
             f"ANALYZE), unless the row says {B.INDEX_METHOD} (the pgstattuple extension: empty and deleted "
             "pages plus the leaf pages' room below the fillfactor, read from the index)."]
    if not ({B.TABLE_METHOD, B.INDEX_METHOD} & (methods | tmethods)):
        lines.append("pgstattuple is not installed (or not allowed for this role), so every figure is an estimate "
                     "from the statistics; CREATE EXTENSION pgstattuple (contrib) and GRANT pg_stat_scan_tables "
                     f"give measured figures for the {int(r.settings['bloat_exact_top_n'])} largest tables and "
                     "most bloated indexes.")
    return lines


def replica_assumption(cfg) -> str:
    """What load the replica projection assumes, in words (the notebook and the finding say it)."""
    a = cfg["autoscaling"]
    return (f"the CPU and memory figures are read as the load of the minimum fleet ({a['min_replicas']} replicas), "
            f"and that load keeps its trend; the autoscaler runs ceil({a['min_replicas']} x load / threshold) "
            f"replicas (CPU {a['cpu_threshold_pct']:g} %, memory {a['memory_threshold_pct']:g} %), so all "
            f"{a['max_replicas']} are running once the load passes threshold x ({a['max_replicas']} - 1) / "
            f"{a['min_replicas']}: over 100 % means more than the minimum fleet could carry")


def _replicas(r: CapacityReport, cfg, s, horizon) -> list[dict]:
    """CPU and memory against the runbook's thresholds and auto-scaling settings."""
    auto, th, out, rows = cfg["autoscaling"], cfg["thresholds"], [], []
    m = r.metrics
    for metric, scale_at, kind in (("cpu_pct", auto["cpu_threshold_pct"], "cpu_forecast"),
                                   ("memory_pct", auto["memory_threshold_pct"], "memory_forecast")):
        sub = m[m["metric"] == metric].groupby("ts", as_index=False)["value"].mean()
        if sub.empty:
            continue
        w, c = th[metric]["warning"], th[metric]["critical"]
        # At min replicas, the autoscaler asks for ceil(min * value / threshold) replicas: the
        # maximum is reached when value > threshold * (max - 1) / min (the metric read as the load on
        # the minimum fleet: vhdiag's assumption, said in the report).
        limit = scale_at * (auto["max_replicas"] - 1) / auto["min_replicas"]
        peaks = fc.daily_peaks(sub["ts"], sub["value"])
        f = fc.fit(peaks["ts"], peaks["value"], horizon, s,
                   thresholds=[(w, "runbook warning"), (c, "runbook critical"), (limit, "max replicas")], unit="%")
        f.backtest = fc.backtest(peaks["ts"], peaks["value"], s)
        r.forecasts[f"daily peak {metric}"] = (f, "%", [w, c])
        rows.append({"metric": metric, "peak_pct": sub["value"].max(), "scale_threshold_pct": scale_at,
                     "hours_above_scale": CC.hours_above(sub["ts"], sub["value"], scale_at),
                     "hours_above_warning": CC.hours_above(sub["ts"], sub["value"], w),
                     "hours_above_critical": CC.hours_above(sub["ts"], sub["value"], c),
                     "max_replicas_at_pct": limit, "max_replicas": f.crossings[2].words(horizon)})
        got = C.forecast_finding(kind, metric, f"Daily peak {metric}", f,
                                 [("warning", ""), ("critical", ""), ("warning", "")][:2], horizon,
                                 "-- runbook 5, Scaling: railway scale --replicas 3, or a larger instance",
                                 lambda v: f"{v:.1f} %")
        if got and f.status == "ok":
            out.append(got)
        if f.crossings[2].status in ("crosses", "already"):
            out.append(F.finding("replica_limit", "warning", metric,
                                 f"Max {auto['max_replicas']} replicas reached: {f.crossings[2].words(horizon)}",
                                 f"At the projected trend of the daily peak {metric}, the autoscaler ({auto['min_replicas']}"
                                 f" to {auto['max_replicas']} replicas at {scale_at:g} %) would need more than "
                                 f"{auto['max_replicas']} replicas {f.crossings[2].words(horizon)} (load "
                                 f"{limit:g} %). Assumed: {replica_assumption(cfg)}.",
                                 "-- runbook 5, Auto-Scaling: raise Max replicas, or Increase Instance Size",
                                 limit_pct=limit))
    r.replicas = pd.DataFrame(rows)
    return out


# -- what the notebook shows, as text ----------------------------------------------------------
def overview(r: CapacityReport) -> pd.DataFrame:
    fmt = "%Y-%m-%d %H:%M"
    rows = [("target", r.target_display), ("history window (UTC)", f"{r.since:{fmt}} to {r.until:{fmt}}"),
            ("horizon", f"{_days(r.params['horizon']):g} days"),
            ("database size now", human_bytes(r.db_size) if r.db_size is not None else "unknown"),
            ("disk quota", human_bytes(r.params["disk_quota_bytes"]) if r.params["disk_quota_bytes"] else "not given"),
            ("forecast model", "Theil-Sen robust trend (scipy), prediction band at "
             f"{r.forecast_settings.confidence:.0%}, weekly cycle where the series has one")]
    return pd.DataFrame(rows, columns=["what", "value"])


def forecast_rows(r: CapacityReport) -> pd.DataFrame:
    """One row per forecast: status, trend, crossing dates in words, backtest."""
    rows = []
    horizon = _days(r.params["horizon"])
    for name, (f, unit, _) in r.forecasts.items():
        bt = f.backtest
        rows.append({"series": name, "model": f.model or "none", "points": f.n_points,
                     "history": f"{f.span_days:.1f} days", "forecast": f.message,
                     "crossings": "; ".join(f"{c.label}: {c.words(horizon)}" for c in f.crossings) or "",
                     "backtest": (f"MAE {fc._fmt(bt['mae'], unit)}, MAPE {bt['mape_pct']:.1f} %, "
                                  f"{bt['coverage_pct']:.0f} % in band ({bt['n_train']} train / {bt['n_test']} test points)"
                                  if bt and bt.get("mape_pct") is not None else "not enough history")})
    return pd.DataFrame(rows)


def connection_lines(r: CapacityReport) -> list[str]:
    p = r.peaks
    lines = []
    if p.get("samples"):
        usable = f" of {r.usable} usable slots" if r.usable else ""
        lines.append(f"Peak {p['peak']:.0f} connections at {p['peak_ts']:%Y-%m-%d %H:%M} UTC "
                     f"({p['peak_pct']:.0f} %{usable}); p95 {p['p95']:.0f} ({p['p95_pct']:.0f} %), over "
                     f"{p['samples']} snapshots.")
    else:
        lines.append("No connection history: the figures below are of now.")
    lines.append(f"Sessions idle in transaction now: {r.idle_in_xact_s:,.0f} s in all.")
    if r.params["pool_size"]:
        pool = r.params["pool_size"]
        peak = p.get("peak")
        lines.append(f"Pool size {pool}: the peak used {100 * peak / pool:.0f} % of it." if peak else f"Pool size {pool}.")
    return lines
