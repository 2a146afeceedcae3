"""Figures for the frames vhdiag returns: ``vhdiag.plot`` (public; the reports draw with it too).

Each function takes what ``vhdiag.connect()`` and ``History`` hand out, with no reshaping, and
returns a matplotlib Figure with its axes labelled in units (ms, %, MB, UTC):

>>> import vhdiag
>>> from vhdiag import plot
>>> from vhdiag.history import History
>>> db, h = vhdiag.connect("env:DATABASE_URL"), History()
>>> plot.top(db.statements())                 # the runbook's ORDER BY total_exec_time, as bars
>>> plot.statement(h, queryid, since="24h")   # calls and mean time per snapshot interval
>>> plot.growth(h, since="30d")               # the tables that grew most, size over time
>>> plot.compare(h.compare("7d", "now"))      # this week's mean time against last week's

How they are drawn (query text only through ``label``, mathtext and LaTeX off, units on the
axes, UTC) is vhdiag/plotting.py, which the reports' own figures (vhdiag/reports/figures.py) share;
``label`` is public here too. The reports' HTML tables are in vhdiag/reports/tables.py.
"""
from __future__ import annotations

import pandas as pd

from .errors import ConfigError
from .plotting import axis_label, byte_scale, done, empty, figure, label, naive, need, numbers, row_names, time_axis


def top(frame: pd.DataFrame, by: str = "total_exec_ms", n: int = 10, title: str | None = None):
    """Horizontal bars: the ``n`` rows of ``frame`` with the largest ``by``, each named by its
    query-ish column (statement text and queryid; ``schema.table``; index; application ...).

    Any frame vhdiag returns: ``db.statements()`` (the runbook's *High CPU Usage* ``ORDER BY
    total_exec_time DESC``), ``History().statements(since="7d")``, ``db.tables()``, ``db.indexes()``.

    >>> plot.top(db.statements())                          # total execution time, ms
    >>> plot.top(History().statements(since="7d"), by="calls")
    >>> plot.top(db.tables(), by="total_bytes", n=5)       # bytes shown in kB/MB/GB
    """
    need(frame, [by], "plot.top")
    values = numbers(frame[by].to_numpy())
    rows = frame.assign(_v=values.to_numpy()).dropna(subset=["_v"]).sort_values("_v", ascending=False, kind="stable")
    rows = rows.head(max(int(n), 1))
    v = rows["_v"].astype(float).tolist()
    scale, unit = byte_scale(max(v + [0.0])) if by.endswith("bytes") else (1.0, "")
    xlabel = f"{axis_label(by)[: -len('(bytes)')]}({unit})" if unit else axis_label(by)
    with figure() as plt:
        fig, ax = plt.subplots(figsize=(10, 0.35 * max(len(rows), 1) + 1.1))
        shown = [x / scale for x in v]
        ax.barh(range(len(rows)), shown, color="#4c72b0")
        suffix = f" {unit}" if unit else {"%": " %", "ms": " ms"}.get(xlabel.rsplit("(", 1)[-1].rstrip(")"), "")
        for i, x in enumerate(shown):
            ax.text(x, i, f" {x:,.1f}{suffix}" if suffix or unit else f" {x:,.0f}", va="center", fontsize=8)
        ax.set_yticks(range(len(rows)), row_names(rows), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(shown + [1e-9]) * 1.15)
        ax.set_xlabel(label(xlabel))
        if not len(rows):
            empty(ax, "no rows")
        ax.set_title(label(title or f"Top {len(rows)} by {axis_label(by)}", 200))
        ax.grid(axis="x", alpha=0.3)
        return done(fig, plt)


# -- one statement over time, from the history store ----------------------------------------------
def _series(history, queryid, since, until, target) -> pd.DataFrame:
    from .analysis.slow_queries import per_interval
    if isinstance(history, pd.DataFrame):
        frame = history
    else:
        frame = history.statement_series(int(queryid), since, until, target=target)
    need(frame, ["ts", "interval_s", "calls", "mean_exec_ms" if "mean_exec_ms" in frame.columns else "total_exec_ms"],
          "plot.statement")
    if "user" in frame.columns and len(frame):   # History.statement_series: one row per user and database
        frame = per_interval(frame)
    return frame


def _interval_bars(ax, begin, end, heights) -> None:
    """A bar per interval as one artist: a week is 672 bars, and as patches (``ax.bar``) the
    drill-down of five statements took seconds to draw (benchmarks/weekly_run.py)."""
    import matplotlib.dates as mdates
    from matplotlib.collections import PolyCollection
    ax.xaxis.update_units(begin)          # a time axis, as ax.bar would have made it
    edges = zip(mdates.date2num(begin), mdates.date2num(end), heights)
    verts = [((a, 0.0), (a, h), (b, h), (b, 0.0)) for a, b, h in edges]
    ax.add_collection(PolyCollection(verts, facecolors="#4c72b0", edgecolors="white", linewidths=0.5))
    ax.autoscale_view()
    ax.set_ylim(bottom=0)


def _statement_axes(calls_ax, mean_ax, frame: pd.DataFrame) -> None:
    """Calls per interval as bars spanning each interval; mean execution time as points at the
    interval's middle; an interval with incomplete figures marked with a red x."""
    end = naive(frame["ts"])
    span = pd.to_timedelta(numbers(frame["interval_s"]).fillna(0).to_numpy(), unit="s")
    begin, mid = end - span, end - span / 2
    calls = numbers(frame["calls"]).fillna(0)
    _interval_bars(calls_ax, begin, end, calls.to_numpy(dtype=float))
    mean = numbers(frame["mean_exec_ms"]) if "mean_exec_ms" in frame.columns else \
        numbers(frame["total_exec_ms"]) / calls.where(calls > 0)
    mean_ax.plot(mid, mean, marker="o", color="#dd8452", linestyle="-" if len(mean) > 1 else "none")
    bad = ~frame["complete"].astype(bool).to_numpy() if "complete" in frame.columns else None
    if bad is not None and bad.any():
        mean_ax.plot(mid[bad], mean[bad], "x", color="red", markersize=9, label="incomplete interval")
        mean_ax.legend(loc="upper left", fontsize=8)
    mean_ax.set_ylim(bottom=0, top=max(float(mean.max()) * 1.2, 1e-3) if mean.notna().any() else 1)
    if len(frame):      # both panels span the intervals (one point alone stretched its axis over years)
        for ax in (calls_ax, mean_ax):
            ax.set_xlim(begin.min(), end.max())
    calls_ax.set_ylabel("calls per interval")
    mean_ax.set_ylabel("mean execution time (ms)")
    if not len(frame):
        for ax in (calls_ax, mean_ax):
            empty(ax, "no interval in the window")


def statement(history, queryid: int, since=None, until=None, *, target: str | None = None,
              title: str | None = None):
    """Calls per snapshot interval (bars) and mean execution time (ms, points) of one statement,
    from the history store (summed over the users and databases it ran as).

    ``history`` is a ``History`` (read with ``statement_series(queryid, since, until, target)``)
    or a frame it returned.

    >>> h = History()
    >>> plot.statement(h, 7647473976462414831, since="24h")
    >>> plot.statement(h, h.statements(since="7d").iloc[0]["queryid"], since="7d", target="db1:5432/shop")
    """
    frame = _series(history, queryid, since, until, target)
    with figure() as plt:
        fig, (calls_ax, mean_ax) = plt.subplots(1, 2, figsize=(11, 3.2))
        _statement_axes(calls_ax, mean_ax, frame)
        for ax in (calls_ax, mean_ax):
            ax.grid(alpha=0.3)
            time_axis(ax)
        fig.suptitle(label(title or f"queryid {queryid}: calls and mean execution time per interval", 200))
        return done(fig, plt)


def drilldown(series: dict, since=None, until=None, title: str = "Top queries over the window", queries=None):
    """The slow-query report's drill-down: ``statement``'s two panels for each of its top
    statements (``series``: queryid -> per-interval frame), on the window's time axis."""
    with figure() as plt:
        n = max(len(series), 1)
        fig, axes = plt.subplots(n, 2, figsize=(11, 2.2 * n + 0.6), squeeze=False)
        lo = naive([since]).iloc[0] if since is not None else None
        hi = naive([until]).iloc[0] if until is not None else None
        for row, (key, frame) in enumerate(series.items()):
            calls_ax, mean_ax = axes[row]
            _statement_axes(calls_ax, mean_ax, frame)
            # Each title stays above its own axes: the text on the left, the queryid on the right.
            shown, name = label(key, 40), label((queries or {}).get(key, ""), 48)
            calls_ax.set_title(f"{name}: calls", fontsize=8, loc="left")
            mean_ax.set_title(f"queryid {shown}: mean time", fontsize=8, loc="left")
            for ax in (calls_ax, mean_ax):
                ax.grid(alpha=0.3)
                time_axis(ax, "time (UTC)" if row == n - 1 else None, lo, hi)
        fig.suptitle(label(title, 200))
        return done(fig, plt)


# -- table sizes over time ------------------------------------------------------------------------
def growth(history, table: str | None = None, since=None, until=None, *, target: str | None = None,
           n: int = 5, title: str | None = None):
    """Size over time (total: heap, indexes and TOAST) of one table, or of the ``n`` tables that
    grew most in the window, one line each with a point per snapshot (the runbook's *Check table
    sizes*, over time).

    ``history`` is a ``History`` (read with ``table_series(since, until, target)``) or a frame it
    returned; ``table`` is ``schema.table`` or a name unique among the schemas.

    >>> plot.growth(History(), since="30d")                 # the five that grew most
    >>> plot.growth(History(), "public.sales", since="90d")
    """
    frame = history if isinstance(history, pd.DataFrame) else history.table_series(since, until, target=target)
    need(frame, ["ts", "schema", "table", "total_bytes"], "plot.growth")
    names = frame["schema"].astype(str) + "." + frame["table"].astype(str)
    if table is not None:
        wanted = names == table if "." in table else frame["table"].astype(str) == table
        if not wanted.any():
            known = sorted(set(names))
            raise ConfigError(f"plot.growth: no table {table!r} in the history of this window: known: "
                              f"{', '.join(known[:10]) or 'none'}{' ...' if len(known) > 10 else ''}")
        chosen = sorted(set(names[wanted]))
    else:
        size = numbers(frame["total_bytes"].to_numpy())
        ordered = frame.assign(_name=names.to_numpy(), _size=size.to_numpy()).sort_values("ts", kind="stable")
        grown = ordered.groupby("_name")["_size"].agg(lambda s: s.iloc[-1] - s.iloc[0])
        chosen = list(grown.sort_values(ascending=False, kind="stable").index[: max(int(n), 1)])
    top = float(numbers(frame["total_bytes"].to_numpy()).max()) if len(frame) else 0.0
    scale, unit = byte_scale(top if top == top else 0.0)
    with figure() as plt:
        fig, ax = plt.subplots(figsize=(11, 3.6))
        for name in chosen:
            rows = frame[(names == name).to_numpy()].sort_values("ts", kind="stable")
            ax.plot(naive(rows["ts"]), numbers(rows["total_bytes"].to_numpy()) / scale, marker="o", markersize=3,
                    label=label(name, 60))
        if chosen:
            ax.legend(loc="upper left", fontsize=8)
        else:
            empty(ax, "no table sizes in the window: vhdiag snapshot records them")
        ax.set_ylabel(f"size ({unit})")
        ax.grid(alpha=0.3)
        time_axis(ax)
        what = chosen[0] if table is not None and len(chosen) == 1 else f"the {len(chosen)} tables that grew most"
        ax.set_title(label(title or f"Size of {what}", 200))
        return done(fig, plt)


# -- two windows side by side -----------------------------------------------------------------------
_STATUS_COLOR = {"regressed": "#c44e52", "new": "#dd8452", "improved": "#55a868", "gone": "#8c8c8c",
                 "same": "#4c72b0"}


def compare(comparison: pd.DataFrame, n: int = 10, title: str | None = None):
    """Mean execution time (ms) of each statement in the window against the baseline, paired
    bars, for the first ``n`` rows of ``History.compare()`` that changed (regressed first, then
    new, improved, gone: its own order); ``same`` rows only when nothing changed. The scale is
    logarithmic when the means span more than a hundredfold.

    >>> c = History().compare("7d", "now")                   # this week against last week
    >>> plot.compare(c)
    >>> plot.compare(c[c.status == "regressed"], n=5)
    """
    need(comparison, ["status", "mean_exec_ms", "baseline_mean_exec_ms"], "plot.compare")
    changed = comparison[comparison["status"].astype(str) != "same"]
    rows = (changed if len(changed) else comparison).head(max(int(n), 1))
    now, before = numbers(rows["mean_exec_ms"].to_numpy()), numbers(rows["baseline_mean_exec_ms"].to_numpy())
    status = rows["status"].astype(str).tolist()
    with figure() as plt:
        fig, ax = plt.subplots(figsize=(10, 0.5 * max(len(rows), 1) + 1.3))
        y = pd.Series(range(len(rows)), dtype=float)
        ax.barh(y - 0.2, before.fillna(0), height=0.4, color="#b8bcc4", label="baseline")
        ax.barh(y + 0.2, now.fillna(0), height=0.4, color=[_STATUS_COLOR.get(s, "#4c72b0") for s in status],
                label="window")
        positive = [v for v in list(now) + list(before) if v == v and v > 0]
        if positive and max(positive) / min(positive) > 100:
            from matplotlib.ticker import FuncFormatter, NullFormatter
            ax.set_xscale("log")     # its default tick labels are mathtext, which plain shows raw
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        for i, (s, a, b) in enumerate(zip(status, now, before)):
            ratio = f" {a / b:,.1f}×" if a == a and b == b and b > 0 else ""
            ax.text(1.01, i, f"{s}{ratio}", transform=ax.get_yaxis_transform(), va="center", fontsize=8,
                    color=_STATUS_COLOR.get(s, "#333"))
        ax.set_yticks(range(len(rows)), row_names(rows, 44), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("mean execution time (ms)")
        ax.grid(axis="x", alpha=0.3)
        if len(rows):
            ax.legend(loc="lower right", fontsize=8)
        else:
            empty(ax, "no statement in either window")
        a = comparison.attrs
        when = (f": {a['since']:%Y-%m-%d %H:%M} to {a['until']:%Y-%m-%d %H:%M} UTC against the "
                f"{(a['until'] - a['since']) / pd.Timedelta(days=1):g} days before") \
            if "since" in a and "until" in a and a.get("baseline_until") == a["since"] else ""
        ax.set_title(label(title or f"Mean execution time, window against baseline{when}", 200))
        return done(fig, plt)
