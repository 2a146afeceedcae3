"""Turning frames into text for people: pretty strings only at display time.

Everything vhdiag prints to a terminal or a stream goes through ``terminal_safe`` (``render``
does it for frames, ``echo`` for lines): names and query text come from the server, and a table
named ``U&"\\001B]0;PWNED\\0007"`` would otherwise set the terminal's title, clear the screen or,
with bidi overrides, make one name read as another. Control characters are shown, never obeyed.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where frames are rendered: the CLI's error path stays light
    import pandas as pd

# What a terminal obeys instead of showing: C0 controls, DEL, C1 controls (U+009B is a one-byte
# CSI), the bidi marks, embeddings, overrides and isolates (Unicode TR9: U+061C, U+200E, U+200F,
# U+202A-U+202E, U+2066-U+2069, "Trojan Source"), and the line/paragraph separators U+2028/U+2029
# (str.splitlines breaks on them).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(match: re.Match) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text, keep: str = "") -> str:
    """``text`` with every control character shown as its escape (``\\x1b``, ``\\u202e``, ``\\n``),
    except those in ``keep`` (CSV keeps newlines and tabs inside its quoted fields). Printable
    text, backslashes included, is unchanged, so the result reads like the original and a second
    pass changes nothing."""
    text = "" if text is None else str(text)
    if keep:
        return CONTROL.sub(lambda m: m.group() if m.group() in keep else _visible(m), text)
    return CONTROL.sub(_visible, text)


def echo(*parts, file=None, sep: str = " ") -> None:
    """``print`` for anything shown to a person: one line, control characters escaped."""
    print(terminal_safe(sep.join(str(p) for p in parts)), file=file if file is not None else sys.stdout)


class TerminalFormatter(logging.Formatter):
    """Log lines (``vhdiag -v``) carry names and server messages too."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record), keep="\n")


_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"]


def human_bytes(n) -> str:
    """1536 -> '1.5 kB', as pg_size_pretty does (powers of 1024, PostgreSQL's unit names)."""
    import pandas as pd
    if n is None or pd.isna(n):
        return ""
    n = float(n)
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # unreachable


def for_terminal(df: pd.DataFrame, max_query_chars: int = 70) -> pd.DataFrame:
    """A copy for printing: sizes pretty, milliseconds rounded, long query text cut."""
    import pandas as pd
    out = df.copy()
    for col in out.columns:
        series = out[col]
        if col == "bytes" or col.endswith("_bytes"):
            out[col] = series.map(human_bytes)
        elif col.endswith(("_ms", "_s", "_pct")) and pd.api.types.is_numeric_dtype(series):
            out[col] = series.astype("Float64").round(2)
        elif col in ("query", "definition") and len(out):
            out[col] = series.astype("string").str.replace(r"\s+", " ", regex=True).map(
                lambda q: q if pd.isna(q) or len(q) <= max_query_chars else q[: max_query_chars - 1] + "…")
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            out[col] = series.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    return out


def _safe_cells(df: pd.DataFrame, keep: str = "") -> pd.DataFrame:
    """A copy whose text cells and column names are ``terminal_safe``."""
    import pandas as pd
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, pd.StringDtype):
            out[col] = out[col].map(lambda v: terminal_safe(v, keep) if isinstance(v, str) else v)
    out.columns = [terminal_safe(c, keep) for c in out.columns]
    return out


def render(df: pd.DataFrame, fmt: str, columns: list[str] | None = None) -> str:
    """table (for people), csv or json (records, ISO 8601 UTC timestamps) (for scripts).

    No format carries a raw control character: table cells show them escaped (a tab or newline
    too: a cell is one line); CSV keeps newlines and tabs inside its quoted fields and escapes the
    rest; JSON escapes them itself (``\\u001b``), and DEL, which the encoder leaves raw, here."""
    if columns:
        df = df[[c for c in columns if c in df.columns]]
    if fmt == "csv":
        return _safe_cells(df, keep="\n\t").to_csv(index=False)
    if fmt == "json":
        text = df.to_json(orient="records", date_format="iso", date_unit="s", indent=1) + "\n"
        return text.replace("\x7f", "\\u007f")   # only ever inside a JSON string
    if df.empty:
        return "(no rows)\n"
    shown = _safe_cells(for_terminal(df).astype(object))
    return shown.where(shown.notna(), "").to_string(index=False) + "\n"
