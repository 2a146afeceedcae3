"""What the report notebooks show: matplotlib figures and HTML tables, every text escaped.

Query text is user data: a statement may carry ``/* <script>...</script> */`` in a comment, and
pg_stat_statements keeps comments. Everything here that turns text into HTML goes through
``html.escape``; nothing builds HTML from unescaped text. Control characters are shown as their
escapes (``\\x1b``), as on the terminal. Every fragment sits in a ``tex2jax_ignore`` element: the
exported HTML loads MathJax, which would typeset ``$1 ... $2`` of a query as math.

Query text reaches matplotlib only through ``label``, and every figure is drawn plain
(``_plain``): ``DO $$BEGIN ... END$$`` among the top statements once stopped the whole report,
because matplotlib read ``$...$`` as mathtext. Numbers become strings with their unit only here,
at display time (``12.3 ms``, ``1.2 s``, ``45.1 %``, ``1.5 MB``).
"""
from __future__ import annotations

import html
import re
from contextlib import contextmanager

import pandas as pd

from .display import human_bytes, terminal_safe

# Column -> header shown; the unit is in each cell.
HEADERS = {
    "queryid": "queryid", "user": "user", "database": "database", "calls": "calls",
    "total_exec_ms": "total time", "share_pct": "share of DB time", "mean_exec_ms": "mean",
    "stddev_exec_ms": "stddev", "rows_per_call": "rows/call", "cache_hit_pct": "cache hit",
    "shared_blks_read": "blocks read", "temp_blks": "temp blocks", "query": "query",
    "calls_share_pct": "share of calls", "mean_before_ms": "mean before", "total_before_ms": "total before",
    "calls_before": "calls before", "mean_ratio": "mean ×", "total_ratio": "total ×", "extra_ms": "extra time",
    "why": "grew by", "seq_scan": "seq scans", "seq_tup_read": "rows read by seq scans",
    "rows_per_seq_scan": "rows per seq scan", "n_live_tup": "live rows", "total_bytes": "size",
    "idx_scan": "index scans", "suggestion": "suggestion", "ts": "time (UTC)", "interval_s": "interval",
    "events": "events", "notes": "notes",
    "growth_bytes_per_day": "growth", "before_bytes_per_day": "growth, previous window",
    "growth_bytes": "grown", "end_total_bytes": "size now", "n_tup_ins": "rows inserted",
    "n_tup_del": "rows deleted", "share_of_usable_pct": "share of usable slots",
}

STYLE = """<style>
table.vh {border-collapse: collapse; font-size: 12px; margin: 4px 0 12px 0;}
table.vh th {background: #eef1f5; text-align: left; padding: 3px 6px; border-bottom: 1px solid #99a;}
table.vh td {padding: 2px 6px; border-bottom: 1px solid #dde; vertical-align: top;}
table.vh td.n {text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums;}
table.vh td.q, table.vh td.sql {font-family: monospace; font-size: 11px; max-width: 560px; word-break: break-word;}
table.vh td.sql {white-space: pre-wrap;}
table.vh td.warn {color: #a40;}
p.vh-more {color: #666; font-size: 11px; margin-top: -8px;}
span.sev-critical {color: #fff; background: #b00; padding: 0 4px; border-radius: 3px;}
span.sev-warning {color: #000; background: #fc3; padding: 0 4px; border-radius: 3px;}
span.sev-info {color: #fff; background: #57a; padding: 0 4px; border-radius: 3px;}
</style>"""


# Inline, because the notebook HTML template right-aligns every table cell with more specific CSS.
_LEFT, _RIGHT = "text-align: left", "text-align: right"


class Html:
    """An HTML fragment the notebook displays as is; only built from escaped text."""

    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self) -> str:
        # MathJax (loaded by the exported HTML and by Jupyter) skips this class: $...$ stays text.
        return f'<div class="tex2jax_ignore">{self.markup}</div>' if self.markup else ""

    def __repr__(self) -> str:
        return re.sub(r"<[^>]+>", " ", self.markup).strip()[:2000]


def esc(value) -> str:
    """HTML-escaped text; control characters shown as escapes, newlines and tabs kept (plans, SQL)."""
    return html.escape(terminal_safe(value, keep="\n\t"), quote=True)


def ms(v) -> str:
    if v is None or pd.isna(v):
        return ""
    v = float(v)
    if abs(v) >= 10_000:
        return f"{v / 1000:,.1f} s"
    if abs(v) >= 100:
        return f"{v:,.0f} ms"
    return f"{v:.1f} ms" if abs(v) >= 1 else f"{v:.3f} ms"


def _cell(column: str, value) -> tuple[str, str]:
    """(css class, escaped text) of one cell."""
    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return "n", ""
    if column == "query":
        text = re.sub(r"\s+", " ", str(value)).strip()
        return "q", esc(text if len(text) <= 300 else text[:299] + "…")
    if column == "queryid":
        return "", esc(int(value))
    if column in ("suggestion", "plan"):
        return "sql", esc(value)
    if column.endswith("_ms"):
        return "n", esc(ms(value))
    if column.endswith("_pct"):
        return "n", esc(f"{float(value):.1f} %")
    if column.endswith("_ratio"):
        return "n", esc("new" if value == float("inf") else f"{float(value):.1f}×")
    if column.endswith("bytes_per_day"):
        return "n", esc(human_bytes(value) + "/day")
    if column.endswith("bytes"):
        return "n", esc(human_bytes(value))
    if column == "interval_s":
        return "n", esc(f"{float(value):,.0f} s")
    if column == "rows_per_call" or column == "rows_per_seq_scan":
        return "n", esc(f"{float(value):,.1f}")
    if isinstance(value, pd.Timestamp):
        return "", esc(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, (int, float)) and not isinstance(value, bool) or hasattr(value, "item"):
        try:
            return "n", esc(f"{int(value):,}" if float(value).is_integer() else f"{float(value):,.2f}")
        except (TypeError, ValueError):
            pass
    return "", esc(value)


def table(frame: pd.DataFrame, columns: list[str] | None = None, *, max_rows: int | None = None,
          empty: str = "none") -> Html:
    """An escaped HTML table with units in the cells. ``complete``/``notes`` become one ``data``
    column marking incomplete figures (⚠ and what happened). ``max_rows`` cuts the list, saying so."""
    if frame is None or len(frame) == 0:
        return Html(STYLE + f"<p><em>{esc(empty)}</em></p>")
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns and c not in ("complete", "notes")]
    mark = "complete" in frame.columns
    if "notes" in frame.columns and "complete" not in frame.columns and "notes" in (columns or frame.columns):
        cols.append("notes")
    shown = frame if max_rows is None else frame.head(max_rows)
    head = "".join(f'<th style="{_LEFT}">{esc(HEADERS.get(c, c))}</th>' for c in cols) + \
        (f'<th style="{_LEFT}">data</th>' if mark else "")
    body = []
    for rec in shown.to_dict("records"):
        cells = []
        for c in cols:
            cls, text = _cell(c, rec.get(c))
            cells.append(f'<td class="{cls}" style="{_RIGHT if cls == "n" else _LEFT}">{text}</td>')
        if mark:
            ok = bool(rec.get("complete", True))
            note = rec.get("notes") or ""
            cells.append("<td></td>" if ok else f'<td class="warn" style="{_LEFT}">⚠ {esc(note or "incomplete")}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="vh-more">{max_rows} of {len(frame)} rows; the executed notebook has them all.</p>'
    return Html(f'{STYLE}<table class="vh"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}')


def paragraph(*parts: str) -> Html:
    """One paragraph of escaped text."""
    return Html("<p>" + esc(" ".join(p for p in parts if p)) + "</p>")


def bullets(items) -> Html:
    items = [i for i in items if i]
    if not items:
        return Html("")
    return Html("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")


def code(text: str) -> Html:
    return Html(f'<pre style="font-size: 11px; background: #f6f7f9; padding: 6px;">{esc(text)}</pre>')


def findings_table(findings: list[dict], max_rows: int | None = None) -> Html:
    """Findings as a table: severity, what, detail, what to do."""
    if not findings:
        return Html(STYLE + "<p><em>No findings: nothing crossed a threshold in this window.</em></p>")
    rows = []
    for f in findings[: max_rows or len(findings)]:
        sev = esc(f["severity"])
        rows.append(f'<tr><td style="{_LEFT}"><span class="sev-{sev}">{sev}</span></td><td style="{_LEFT}">'
                    f'{esc(f["title"])}<br><small>{esc(f["kind"])} · {esc(f["subject"])}</small></td>'
                    f'<td style="{_LEFT}">{esc(f["detail"])}</td>'
                    f'<td class="sql" style="{_LEFT}">{esc(f["suggestion"])}</td></tr>')
    more = ""
    if max_rows and len(findings) > max_rows:
        more = f'<p class="vh-more">{max_rows} of {len(findings)} findings; the summary JSON has them all.</p>'
    head = "".join(f'<th style="{_LEFT}">{h}</th>' for h in ("severity", "finding", "detail", "what to do next"))
    return Html(f'{STYLE}<table class="vh"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}')


# -- figures ----------------------------------------------------------------------------------
def label(value, n: int | None = None) -> str:
    """Text from the server (query text, names) as a chart label: one line, control characters
    shown (``\\x1b``), at most ``n`` characters (``…`` marks the cut), every ``$`` escaped as ``\\$``.

    Matplotlib reads ``$...$`` as mathtext: ``DO $$BEGIN ... END$$`` raised ValueError and stopped
    the report, ``$fn$ ... $fn$`` came out in italics. With no unescaped ``$`` nothing is math, so
    any matplotlib text with the default ``text.parse_math`` draws the label and shows ``\\$`` as
    ``$``; ``\\``, ``{``, ``}``, ``_`` and ``^`` mean something only inside math. vhdiag's own
    figures also draw every text plain (``_plain``); this keeps a label safe wherever it goes.
    """
    text = re.sub(r"\s+", " ", "" if value is None else str(value)).strip()
    text = terminal_safe(text.encode("utf-8", "backslashreplace").decode("utf-8"))   # lone surrogates too
    if n is not None and len(text) > n:
        text = text[: max(n - 1, 0)] + "…"
    return text.replace("$", "\\$")


def _unescaped(text: str) -> str:
    """What matplotlib shows for a label when mathtext is on (``\\$`` -> ``$``), for plain texts."""
    return text.replace("\\$", "$")


# Every vhdiag figure is built with these, whatever the user's matplotlibrc says: no LaTeX (it
# would get query text, and be run), no mathtext in texts or in the number formatters.
_PLAIN_RC = {"text.usetex": False, "text.parse_math": False, "axes.formatter.use_mathtext": False}


@contextmanager
def _figure():
    import matplotlib
    import matplotlib.pyplot as plt
    matplotlib.rcParams.update({"figure.dpi": 80, "font.size": 9})
    with matplotlib.rc_context(_PLAIN_RC):
        yield plt


def _plain(fig):
    """Draw every text of ``fig`` as it is: no mathtext, no LaTeX, labels unescaped back.

    Texts made while building already are plain (``_PLAIN_RC``); this covers any made otherwise,
    and the fixed tick labels, whose formatter sets their text again at each draw (their number is
    fixed, so matplotlib makes no new tick texts later, which would take parse_math from the
    rcParams of that moment). Call it before ``tight_layout``, which lays the texts out."""
    import matplotlib.text
    from matplotlib.ticker import FixedLocator
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_locator(), FixedLocator):
                axis.set_ticklabels([_unescaped(t.get_text()) for t in axis.get_majorticklabels()])
    for text in fig.findobj(matplotlib.text.Text):
        text.set_usetex(False)
        text.set_parse_math(False)
        text.set_text(_unescaped(text.get_text()))
    return fig


def share_bars(top: pd.DataFrame, title: str = "Share of DB time in the window"):
    """Horizontal bars: each top statement's share of total execution time."""
    with _figure() as plt:
        fig, ax = plt.subplots(figsize=(10, 0.35 * max(len(top), 1) + 1.1))
        labels = [f"{label(q, 48)}  [{label(qid)}]" for q, qid in zip(top["query"], top["queryid"])]
        values = [float(v) for v in top["share_pct"].fillna(0)]
        ax.barh(range(len(top)), values, color="#4c72b0")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.1f} %", va="center", fontsize=8)
        ax.set_yticks(range(len(top)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(values + [1]) * 1.15)
        ax.set_xlabel("share of total execution time in the window (%)")
        ax.set_title(label(title, 200))
        ax.grid(axis="x", alpha=0.3)
        _plain(fig).tight_layout()
        plt.close(fig)  # shown once, by display(fig)
    return fig


def drilldown(series: dict, since=None, until=None, title: str = "Top queries over the window", queries=None):
    """One row per query: calls per snapshot interval (bars spanning the interval) and mean execution
    time (points at the interval's middle), on the window's time axis. Intervals with incomplete
    figures are marked with a red x."""
    import matplotlib.dates as mdates
    with _figure() as plt:
        n = max(len(series), 1)
        fig, axes = plt.subplots(n, 2, figsize=(11, 2.2 * n + 0.6), squeeze=False)
        lo = pd.Timestamp(since).tz_convert("UTC").tz_localize(None) if since is not None else None
        hi = pd.Timestamp(until).tz_convert("UTC").tz_localize(None) if until is not None else None
        for row, (key, frame) in enumerate(series.items()):
            calls_ax, mean_ax = axes[row]
            end = pd.to_datetime(frame["ts"], utc=True).dt.tz_localize(None)
            span = pd.to_timedelta(frame["interval_s"].fillna(0).astype(float), unit="s")
            begin, mid = end - span, end - span / 2
            calls_ax.bar(begin, frame["calls"].fillna(0).astype(float), width=(span / pd.Timedelta(days=1)).to_numpy(),
                         align="edge", color="#4c72b0", edgecolor="white")
            mean = frame["mean_exec_ms"].astype(float)
            mean_ax.plot(mid, mean, marker="o", color="#dd8452")
            bad = ~frame["complete"].astype(bool)
            if bad.any():
                mean_ax.plot(mid[bad], mean[bad], "x", color="red", markersize=9, label="incomplete interval")
                mean_ax.legend(loc="upper left", fontsize=8)
            mean_ax.set_ylim(bottom=0, top=max(float(mean.max()) * 1.2, 1e-3) if mean.notna().any() else 1)
            calls_ax.set_ylabel("calls per interval")
            mean_ax.set_ylabel("mean execution time (ms)")
            # Each title stays above its own axes: the text on the left, the queryid on the right.
            shown, name = label(key, 40), label((queries or {}).get(key, ""), 48)
            calls_ax.set_title(f"{name}: calls", fontsize=8, loc="left")
            mean_ax.set_title(f"queryid {shown}: mean time", fontsize=8, loc="left")
            for ax in (calls_ax, mean_ax):
                ax.grid(alpha=0.3)
                if lo is not None and hi is not None:
                    ax.set_xlim(lo, hi)
                locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
                ax.tick_params(axis="x", labelsize=8)
                if row == n - 1:
                    ax.set_xlabel("time (UTC)")
        fig.suptitle(label(title, 200))
        _plain(fig).tight_layout()
        plt.close(fig)  # shown once, by display(fig)
        return fig


def forecast_figure(f, name: str, unit: str = "", thresholds=()):
    """History (points), the fitted trend, the forecast with its band, the thresholds as dashed
    lines and each crossing's date range as a shaded span."""
    import matplotlib.dates as mdates
    scale, axis_unit = 1.0, unit
    if unit == "bytes":
        top = max([float(f.history["value"].max())] + [float(t) for t, _ in thresholds]) if len(f.history) else 1
        scale, axis_unit = next(((1024.0 ** k, u) for k, u in ((3, "GB"), (2, "MB"), (1, "kB"))
                                 if top >= 1024.0 ** k), (1.0, "bytes"))
    with _figure() as plt:
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
        _plain(fig).tight_layout()
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
    with _figure() as plt:
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
        _plain(fig).tight_layout()
        plt.close(fig)
        return fig
