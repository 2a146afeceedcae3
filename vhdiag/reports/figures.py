"""The reports' own figures: a forecast against its thresholds (capacity) and the runbook's five
metrics around an incident (postmortem). Drawn with ``vhdiag.plot``'s machinery (plain text, no
LaTeX, every server text through ``plot.label``), so the reports have one plotting layer.
"""
from __future__ import annotations

import pandas as pd

from ..plotting import figure, label, plain


def forecast(f, name: str, unit: str = "", thresholds=()):
    """History (points), the fitted trend, the forecast with its band, the thresholds as dashed
    lines and each crossing's date range as a shaded span."""
    import matplotlib.dates as mdates
    scale, axis_unit = 1.0, unit
    if unit == "bytes":
        top = max([float(f.history["value"].max())] + [float(t) for t, _ in thresholds]) if len(f.history) else 1
        scale, axis_unit = next(((1024.0 ** k, u) for k, u in ((3, "GB"), (2, "MB"), (1, "kB"))
                                 if top >= 1024.0 ** k), (1.0, "bytes"))
    with figure() as plt:
        fig, ax = plt.subplots(figsize=(11, 3.6))
        h = f.history
        hx = pd.to_datetime(h["ts"], utc=True).dt.tz_localize(None)
        ax.plot(hx, h["value"] / scale, "o", color="#4c72b0", markersize=3, label="history")
        ax.plot(hx, h["fitted"] / scale, "-", color="#4c72b0", alpha=0.6, label="trend (Theil-Sen)")
        fut = f.future
        if len(fut):
            fx = pd.to_datetime(fut["ts"], utc=True).dt.tz_localize(None)
            ax.fill_between(fx, fut["lower"] / scale, fut["upper"] / scale, color="#dd8452", alpha=0.25,
                            label="prediction band")
            ax.plot(fx, fut["point"] / scale, "--", color="#dd8452", label="forecast")
        colors = ["#c9a400", "#b00", "#600"]
        marks = []
        for i, c in enumerate(f.crossings):
            col = colors[min(i, 2)]
            ax.axhline(c.threshold / scale, color=col, linestyle=":", linewidth=1)
            marks.append((c.threshold / scale, label(c.label, 40), col))
            if c.status == "crosses" and c.earliest is not None:
                lo = pd.Timestamp(c.earliest).tz_convert("UTC").tz_localize(None)
                hi = (pd.Timestamp(c.latest).tz_convert("UTC").tz_localize(None) if c.latest is not None
                      else fx.iloc[-1])
                ax.axvspan(lo, hi, color=col, alpha=0.12)
        locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("date (UTC)")
        ax.set_ylabel(label(f"size ({axis_unit})" if unit == "bytes" else (f"{unit}" if unit != "%" else "percent (%)"), 40))
        ax.set_title(label(f"{name}: {f.model}", 160))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        _threshold_labels(ax, marks)
        plain(fig).tight_layout()
        plt.close(fig)
    return fig


def _threshold_labels(ax, marks, gap: float = 0.075):
    """Each threshold's label right of the plot, at its line's height, moved apart where lines are
    close (80, 90 and 100 % of a quota far above the data are a few pixels apart): labels at
    least ``gap`` of the axes' height from each other, joined to their line by a short tick."""
    import matplotlib.transforms as mtransforms
    lo, hi = ax.get_ylim()
    ys = sorted(((v - lo) / (hi - lo) if hi > lo else 0.5, text, col) for v, text, col in marks)
    placed: list[float] = []
    for y, _, _ in ys:
        placed.append(max(y, placed[-1] + gap) if placed else y)
    over = (placed[-1] - 1.0) if placed else 0
    if over > 0:                                   # pushed past the top: shift down, keep the gaps
        placed = [p - over for p in placed]
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    trans = mtransforms.blended_transform_factory(ax.transAxes, ax.transAxes)
    for (y, text, col), at in zip(ys, placed):
        ax.annotate(text, xy=(1.0, y), xycoords=trans, xytext=(1.012, at), textcoords=trans, color=col,
                    fontsize=8, va="center", ha="left", annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": col, "linewidth": 0.6})


def incident_metrics(metrics: pd.DataFrame, start=None, end=None, since=None, until=None, thresholds=None,
                     names=None, title: str = "The five metrics around the incident"):
    """The runbook's five metrics, one panel each, on one shared time axis (UTC), with the warning
    and critical thresholds drawn and the incident window shaded; a metric with no data says so."""
    import matplotlib.dates as mdates
    names = names or {}
    thresholds = thresholds or {}
    keys = list(names) or sorted(set(metrics["metric"]))
    with figure() as plt:
        fig, axes = plt.subplots(len(keys), 1, figsize=(11, 1.7 * len(keys) + 0.8), sharex=True, squeeze=False)
        naive = lambda t: pd.Timestamp(t).tz_convert("UTC").tz_localize(None)  # noqa: E731
        for ax, key in zip(axes[:, 0], keys):
            sub = metrics[metrics["metric"] == key]
            for labels, group in sub.groupby("labels"):
                ax.plot(pd.to_datetime(group["ts"], utc=True).dt.tz_localize(None), group["value"].astype(float),
                        color="#4c72b0", linewidth=1.2)
            if not len(sub):
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#888")
            for level, color in (("warning", "#dd8452"), ("critical", "#c44e52")):
                if key in thresholds and level in thresholds[key] and len(sub):
                    ax.axhline(float(thresholds[key][level]), color=color, linestyle="--", linewidth=0.8)
            if start is not None and end is not None:
                ax.axvspan(naive(start), naive(end), color="#c44e52", alpha=0.12)
            ax.set_ylabel(label(names.get(key, key), 22), fontsize=8)
            ax.grid(alpha=0.3)
        if since is not None and until is not None:
            axes[0, 0].set_xlim(naive(since), naive(until))
        locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
        axes[-1, 0].xaxis.set_major_locator(locator)
        axes[-1, 0].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes[-1, 0].set_xlabel("time (UTC); shaded: the incident; dashed: warning and critical thresholds")
        fig.suptitle(label(title, 200))
        plain(fig).tight_layout()
        plt.close(fig)
        return fig
