"""The reports' HTML: tables, paragraphs, lists and code, every text escaped (internal to the reports).

Query text is user data: a statement may carry ``/* <script>...</script> */`` in a comment, and
pg_stat_statements keeps comments. Everything here that turns text into HTML goes through
``html.escape``; nothing builds HTML from unescaped text. Control characters are shown as their
escapes (``\\x1b``), as on the terminal. Every fragment sits in a ``tex2jax_ignore`` element: the
exported HTML loads MathJax, which would typeset ``$1 ... $2`` of a query as math. Numbers become
strings with their unit only here, at display time (``12.3 ms``, ``1.2 s``, ``45.1 %``, ``1.5 MB``).

Figures are ``vhdiag.plot`` (public, the same functions a notebook user calls).
"""
from __future__ import annotations

import html
import re

import pandas as pd

from ..display import human_bytes, terminal_safe

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
table.vh td.q, table.vh td.sql {font-family: monospace; font-size: 11px; max-width: 560px; overflow-wrap: anywhere;}
table.vh td.q {min-width: 22em; white-space: normal;}
div.vh-scroll {overflow-x: auto; max-width: 100%;}
table.vh td.sql {white-space: pre-wrap;}
table.vh td.warn {color: #a40;}
p.vh-more {color: #666; font-size: 11px; margin-top: -8px;}
span.sev-critical {color: #fff; background: #b00; padding: 0 4px; border-radius: 3px;}
span.sev-warning {color: #000; background: #fc3; padding: 0 4px; border-radius: 3px;}
span.sev-info {color: #fff; background: #57a; padding: 0 4px; border-radius: 3px;}
</style>"""


# Inline, because the notebook HTML template right-aligns every table cell with more specific CSS.
_LEFT, _RIGHT = "text-align: left", "text-align: right"
# A long statement wraps at word boundaries in a column at least 22 characters wide: with only
# ``word-break`` and a dozen nowrap number columns beside it, the browser squeezed the query column
# to four characters a line (a 300-character statement became 75 lines). Too narrow a page
# scrolls the table sideways instead (``vh-scroll``).
_STYLE = {"n": _RIGHT, "q": _LEFT + "; min-width: 22em; white-space: normal; overflow-wrap: anywhere"}


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
            cells.append(f'<td class="{cls}" style="{_STYLE.get(cls, _LEFT)}">{text}</td>')
        if mark:
            ok = bool(rec.get("complete", True))
            note = rec.get("notes") or ""
            cells.append("<td></td>" if ok else f'<td class="warn" style="{_LEFT}">⚠ {esc(note or "incomplete")}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="vh-more">{max_rows} of {len(frame)} rows; the executed notebook has them all.</p>'
    return Html(f'{STYLE}<div class="vh-scroll"><table class="vh"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table></div>{more}')


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
