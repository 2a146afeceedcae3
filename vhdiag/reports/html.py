"""HTML: an executed notebook without its code, and the index of every report in a folder."""
from __future__ import annotations

import contextlib
import copy
import html as h
import json
from pathlib import Path

from ..files import write_private
from .base import MIMETYPE, SEVERITIES

HIDDEN_TAGS = {"parameters", "injected-parameters", "notebook-only"}


def read_notebook(path: Path):
    import nbformat
    return nbformat.read(str(path), as_version=4)


def to_html(nb, title: str) -> str:
    """The executed notebook as HTML: no code, no parameters, no stderr, no ``notebook-only``
    cells, and not the report payload the runner reads."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                            and MIMETYPE not in (o.get("data") or {})]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            exclude_anchor_links=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=HIDDEN_TAGS), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def _metas(root: Path) -> list[tuple[Path, dict]]:
    """Every ``*.report.json`` under ``root/<target>/<period>/`` and ``root/<target>/.failed/*/``."""
    found = []
    for pattern in ("*/*/*.report.json", "*/.failed/*/*.report.json"):
        for path in root.glob(pattern):
            if path.parent.name.startswith(".") and ".failed" not in path.parts:
                continue  # a run in progress
            with contextlib.suppress(ValueError, OSError):
                found.append((path, json.loads(path.read_text())))
    return found


def write_index(root: Path) -> Path:
    """``root/index.html``: every report under ``root``, newest first, failures included."""
    root = Path(root)
    rows = []
    for path, m in sorted(_metas(root), key=lambda pm: pm[1].get("generated_at", ""), reverse=True):
        rel = path.parent.relative_to(root).as_posix() + "/"
        failed = m.get("status") == "failed"
        if failed:
            status = f'<span class="failed">failed</span>: {h.escape(m.get("reason", ""))}'
            links = [f'<a href="{h.escape(rel + m.get("notebook", ""))}">partial notebook</a>']
        else:
            counts = m.get("findings", {})
            status = ", ".join(f'<span class="{s}">{counts[s]} {s}</span>' for s in SEVERITIES
                               if counts.get(s)) or "no findings"
            links = [f'<a href="{h.escape(rel + m["html"])}">report</a>',
                     f'<a href="{h.escape(rel + m["notebook"])}">notebook</a>']
            if m.get("summary"):
                links.append(f'<a href="{h.escape(rel + m["summary"])}">findings (JSON)</a>')
        period = m.get("period_words") or m.get("period", "")
        rows.append(f"<tr><td>{h.escape(m.get('generated_at', '')[:19].replace('T', ' '))}</td>"
                    f"<td>{h.escape(m.get('title', ''))}</td><td>{h.escape(m.get('target', ''))}</td>"
                    f"<td>{h.escape(period)}</td><td>{status}</td><td>{' · '.join(links)}</td></tr>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>vhdiag reports</title><style>"
            "body{font-family:sans-serif;margin:24px} table{border-collapse:collapse} td,th{padding:4px 10px;"
            "border-bottom:1px solid #ccd;text-align:left;vertical-align:top} th{background:#eef1f5}"
            ".failed,.critical{color:#b00;font-weight:bold} .warning{color:#a60}</style></head><body>"
            "<h1>vhdiag reports</h1><table><thead><tr><th>generated (UTC)</th><th>report</th><th>target</th>"
            "<th>period</th><th>findings</th><th></th></tr></thead><tbody>" + "".join(rows) +
            "</tbody></table></body></html>")
    return write_private(root / "index.html", page)
