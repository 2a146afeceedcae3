"""The capacity report's connection headroom, from frames (no database here): the usable slots,
peaks and p95 over the snapshots, connections by application and state, hours over a level, and
the ``connections_headroom`` findings (critical over the runbook's 30, warning over 20; runbook 2
"Database Connection Issues" for what to do).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .capacity import as_float, at_minute
from .findings import finding, plural


# -- 4. connections -------------------------------------------------------------------------
def usable_connections(conns: pd.DataFrame) -> int | None:
    """max_connections minus the superuser and (PostgreSQL 16+) reserved slots."""
    if conns is None or conns.empty:
        return None
    r = conns.iloc[0]
    return int(r["max_connections"] - as_float(r["superuser_reserved_connections"]) - as_float(r["reserved_connections"]))


def connection_peaks(series: pd.DataFrame, usable: int | None) -> dict:
    """Peak and p95 of connections over the history (one value per snapshot)."""
    if series is None or series.empty or series["connections"].isna().all():
        return {"samples": 0}
    s = series.dropna(subset=["connections"])
    peak_at = s.loc[s["connections"].astype(float).idxmax()]
    peak, p95 = float(peak_at["connections"]), float(np.percentile(s["connections"].astype(float), 95))
    return {"samples": len(s), "peak": peak, "peak_ts": peak_at["ts"], "p95": p95,
            "peak_pct": 100 * peak / usable if usable else None, "p95_pct": 100 * p95 / usable if usable else None}


def by_app_state(conns: pd.DataFrame, usable: int | None) -> pd.DataFrame:
    if conns is None or conns.empty:
        return pd.DataFrame(columns=["application", "state", "connections", "share_of_usable_pct"])
    g = conns.assign(application=conns["application"].fillna("").replace("", "(none)"),
                     state=conns["state"].fillna("(hidden)")) \
        .groupby(["application", "state"], as_index=False)["connections"].sum()
    g["share_of_usable_pct"] = 100 * g["connections"] / usable if usable else np.nan
    return g.sort_values("connections", ascending=False).reset_index(drop=True)


def by_app_history(hist: pd.DataFrame, usable: int | None) -> pd.DataFrame:
    """Peak and p95 connections by application and state over the history store's snapshots
    (``History.incident_view()["connections"]``), with the share of the usable slots and the time
    of the peak. A snapshot without the pair counts 0 for it, so p95 is over every snapshot; the
    ``(all states)`` rows sum an application's states per snapshot."""
    cols = ["application", "state", "peak", "peak_ts", "p95", "peak_pct_of_usable", "p95_pct_of_usable", "snapshots"]
    if hist is None or hist.empty:
        return pd.DataFrame(columns=cols)
    h = hist.assign(application=hist["application"].fillna("").replace("", "(none)"),
                    state=hist["state"].fillna("(hidden)"))
    h = pd.concat([h, h.assign(state="(all states)")])
    wide = h.pivot_table(index="ts", columns=["application", "state"], values="connections", aggfunc="sum",
                         fill_value=0)
    snaps = sorted(hist["ts"].unique())
    wide = wide.reindex(snaps, fill_value=0)
    rows = []
    for (app, state), col in wide.items():
        v = col.astype(float)
        peak = float(v.max())
        p95 = float(np.percentile(v, 95))
        rows.append({"application": app, "state": state, "peak": peak, "peak_ts": v.idxmax(), "p95": p95,
                     "peak_pct_of_usable": 100 * peak / usable if usable else np.nan,
                     "p95_pct_of_usable": 100 * p95 / usable if usable else np.nan, "snapshots": len(v)})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["peak", "application", "state"], ascending=[False, True, True]).reset_index(drop=True)


def hours_above(ts, values, threshold: float) -> float:
    """Hours a sampled series spent strictly above ``threshold``: each sample stands for the time
    to the next one (the last one for the median step)."""
    frame = pd.DataFrame({"ts": pd.to_datetime(pd.Series(list(ts)), utc=True), "v": list(values)}).sort_values("ts")
    if len(frame) < 2:
        return 0.0
    steps = frame["ts"].diff().shift(-1).dt.total_seconds()
    steps = steps.fillna(steps.median())
    return float(steps[frame["v"] > threshold].sum() / 3600)


def headroom_findings(series: pd.DataFrame, warning: float, critical: float, usable: int | None,
                      subject: str) -> list[dict]:
    """A critical finding for the snapshots over ``critical`` connections, a warning for those over
    ``warning`` (and not over critical), each with the times."""
    out = []
    if series is None or series.empty:
        return out
    s = series.dropna(subset=["connections"])
    crit = s[s["connections"] > critical]
    warn = s[(s["connections"] > warning) & (s["connections"] <= critical)]
    todo = ("-- runbook 2, Database Connection Issues: check the count (SELECT count(*) FROM pg_stat_activity;) "
            "against SHOW max_connections; put a pooler (PgBouncer) in front or lower the pool sizes; end idle "
            "sessions: SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' "
            "AND state_change < now() - interval '10 minutes';")
    for sev, rows, level in (("critical", crit, critical), ("warning", warn, warning)):
        if rows.empty:
            continue
        peak = rows.loc[rows["connections"].astype(float).idxmax()]
        times = ", ".join(f"{int(c)} at {at_minute(t)}" for t, c in zip(rows["ts"], rows["connections"]))
        share = f" ({100 * float(peak['connections']) / usable:.0f} % of the {usable} usable slots)" if usable else ""
        out.append(finding("connections_headroom", sev, subject,
                           f"Connections over {level:g}: peak {int(peak['connections'])} at {at_minute(peak['ts'])}",
                           f"{plural(len(rows), 'snapshot')} counted more than the runbook's {level:g} connections "
                           f"({sev}): {times}. Peak {int(peak['connections'])}{share}.", todo,
                           peak=int(peak["connections"]), peak_ts=pd.Timestamp(peak["ts"]).isoformat(),
                           level=level, times=[pd.Timestamp(t).isoformat() for t in rows["ts"]]))
    return out
