"""How every vhdiag figure is drawn: the rules behind ``vhdiag.plot`` and the reports' own figures
(vhdiag/reports/figures.py), in one place.

Query text reaches matplotlib only through ``label``, and every figure is drawn ``plain``: ``DO
$$BEGIN ... END$$`` among the top statements once stopped the whole report, because matplotlib
read ``$...$`` as mathtext. LaTeX is never used, whatever the user's matplotlibrc says (it would be
handed query text, and run). Axes are named with their units (``axis_label``) and time axes are
UTC.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import pandas as pd

from .display import terminal_safe
from .errors import ConfigError


def label(value, n: int | None = None) -> str:
    """Text from the server (query text, names) as a chart label: one line, control characters
    shown (``\\x1b``), at most ``n`` characters (``…`` marks the cut), every ``$`` escaped as ``\\$``.

    Matplotlib reads ``$...$`` as mathtext: ``DO $$BEGIN ... END$$`` raised ValueError and stopped
    the report, ``$fn$ ... $fn$`` came out in italics. With no unescaped ``$`` nothing is math, so
    any matplotlib text with the default ``text.parse_math`` draws the label and shows ``\\$`` as
    ``$``; ``\\``, ``{``, ``}``, ``_`` and ``^`` mean something only inside math. vhdiag's own
    figures also draw every text plain (``plain``); this keeps a label safe wherever it goes.
    """
    text = re.sub(r"\s+", " ", "" if value is None else str(value)).strip()
    text = terminal_safe(text.encode("utf-8", "backslashreplace").decode("utf-8"))   # lone surrogates too
    if n is not None and len(text) > n:
        text = text[: max(n - 1, 0)] + "…"
    return text.replace("$", "\\$")


def unescaped(text: str) -> str:
    """What matplotlib shows for a label when mathtext is on (``\\$`` -> ``$``), for plain texts."""
    return text.replace("\\$", "$")


# Every vhdiag figure is built with these, whatever the user's matplotlibrc says: no LaTeX (it
# would get query text, and be run), no mathtext in texts or in the number formatters.
PLAIN_RC = {"text.usetex": False, "text.parse_math": False, "axes.formatter.use_mathtext": False}


@contextmanager
def figure():
    import matplotlib
    import matplotlib.pyplot as plt
    matplotlib.rcParams.update({"figure.dpi": 80, "font.size": 9})
    with matplotlib.rc_context(PLAIN_RC):
        yield plt


def plain(fig):
    """Draw every text of ``fig`` as it is: no mathtext, no LaTeX, labels unescaped back.

    Texts made while building already are plain (``PLAIN_RC``); this covers any made otherwise,
    and the fixed tick labels, whose formatter sets their text again at each draw (their number is
    fixed, so matplotlib makes no new tick texts later, which would take parse_math from the
    rcParams of that moment). Call it before ``tight_layout``, which lays the texts out."""
    import matplotlib.text
    from matplotlib.ticker import FixedLocator
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_locator(), FixedLocator):
                axis.set_ticklabels([unescaped(t.get_text()) for t in axis.get_majorticklabels()])
    for text in fig.findobj(matplotlib.text.Text):
        text.set_usetex(False)
        text.set_parse_math(False)
        text.set_text(unescaped(text.get_text()))
    return fig




# -- units ------------------------------------------------------------------------------------
# Axis labels of the columns vhdiag's frames share; any other column gets its unit from its
# suffix (``_ms``, ``_pct``, ``_bytes``, ``_s``), as the frames name them.
AXIS = {"total_exec_ms": "total execution time (ms)", "mean_exec_ms": "mean execution time (ms)",
        "share_pct": "share of total execution time (%)", "calls": "calls", "rows": "rows",
        "shared_blks_read": "shared blocks read", "temp_blks_written": "temp blocks written",
        "extra_ms": "extra execution time against the baseline (ms)", "n_live_tup": "live rows",
        "n_dead_tup": "dead rows", "seq_scan": "sequential scans", "idx_scan": "index scans",
        "growth_bytes_per_day": "growth (bytes/day)", "age_s": "age (s)", "total_bytes": "total size (bytes)",
        "table_bytes": "table size (bytes)", "index_bytes": "index size (bytes)"}
SUFFIX = (("_bytes_per_day", "bytes/day"), ("_ms", "ms"), ("_pct", "%"), ("_bytes", "bytes"), ("_s", "s"))
# The column that names a row, most specific first: statements by their text, then relations.
NAME_COLUMNS = ("query", "index", "table", "relation", "sequence", "name", "application", "database")


def axis_label(column: str) -> str:
    """``total_exec_ms`` -> ``total execution time (ms)``; unknown columns by their suffix."""
    if column in AXIS:
        return AXIS[column]
    for suffix, unit in SUFFIX:
        if column.endswith(suffix):
            return f"{column[: -len(suffix)].replace('_', ' ')} ({unit})"
    return column.replace("_", " ")


def byte_scale(top: float) -> tuple[float, str]:
    """(divisor, unit) so that ``top`` bytes reads in kB, MB or GB (powers of 1024, as PostgreSQL)."""
    return next(((1024.0 ** k, u) for k, u in ((4, "TB"), (3, "GB"), (2, "MB"), (1, "kB")) if top >= 1024.0 ** k),
                (1.0, "bytes"))


def numbers(series) -> pd.Series:
    """Floats with NaN for missing, from any numeric dtype (Int64, Float64, object of Decimals)."""
    return pd.to_numeric(pd.Series(series), errors="coerce").astype("Float64").astype(float)


def naive(ts) -> pd.Series:
    """UTC times without their zone (matplotlib's date axis), from any tz-aware or naive UTC column."""
    return pd.to_datetime(pd.Series(ts), utc=True).dt.tz_localize(None)


def row_names(frame: pd.DataFrame, n: int = 48) -> list[str]:
    """Each row's name for an axis: the statement text and ``[queryid]``, ``schema.table`` ..."""
    column = next((c for c in NAME_COLUMNS if c in frame.columns), None)
    if column is None:
        return [label(i) for i in frame.index]
    names = [label(v, n) for v in frame[column]]
    if column in ("table", "index", "sequence") and "schema" in frame.columns:
        names = [label(f"{s}.{t}", n) for s, t in zip(frame["schema"], frame[column])]
    if "queryid" in frame.columns:
        names = [f"{t}  [{label(q)}]" for t, q in zip(names, frame["queryid"])]
    return names


def need(frame, columns, what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"{what} takes a frame (from vhdiag.connect() or History), not {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{what}: the frame has no column {', '.join(map(repr, missing))}: "
                          f"choose from {', '.join(map(str, frame.columns))}")


def empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#888")


def time_axis(ax, xlabel: str | None = "time (UTC)", lo=None, hi=None) -> None:
    import matplotlib.dates as mdates
    if lo is not None and hi is not None:
        ax.set_xlim(lo, hi)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(axis="x", labelsize=8)
    if xlabel:
        ax.set_xlabel(xlabel)


def done(fig, plt):
    plain(fig).tight_layout()
    plt.close(fig)  # shown once, by display(fig) or the notebook's last expression
    return fig


# -- any frame: the top rows as bars ------------------------------------------------------------
