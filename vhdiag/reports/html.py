"""HTML: an executed notebook without its code, and the index of every report in a folder."""
from __future__ import annotations

import contextlib
import copy
import html as h
import json
import re
from pathlib import Path

from ..files import write_private
from .base import MIMETYPE, SEVERITIES

HIDDEN_TAGS = {"parameters", "injected-parameters", "notebook-only"}


def read_notebook(path: Path):
    import nbformat
    return nbformat.read(str(path), as_version=4)


def to_html(nb, title: str, banner: str | None = None) -> str:
    """The executed notebook as HTML: no code, no parameters, no stderr, no ``notebook-only``
    cells, and not the report payload the runner reads; ``banner`` (e.g. "demo data") across
    the top of the page."""
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
    if banner:
        strip = (f'<div class="vhdiag-banner" style="background:#fff3cd;border-bottom:2px solid #e0a800;'
                 f'padding:8px 24px;font:bold 15px sans-serif;color:#7a5600">{h.escape(banner)}</div>')
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + strip, body, count=1)
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
    """``root/index.html``: per target (a section each), one row per period folder (a week, a
    month, a window), newest first, linking each report of the period, with the findings counted
    by severity over its reports (a handoff's copies of other reports' findings count once). A
    report whose newest run failed shows why, with its partial notebook."""
    root = Path(root)
    groups: dict[str, dict[str, dict]] = {}
    for path, m in _metas(root):
        target_dir = path.relative_to(root).parts[0]
        failed = m.get("status") == "failed"
        period = m.get("period", "") if failed else path.parent.name
        row = groups.setdefault(m.get("target") or target_dir, {}).setdefault(
            f"{target_dir}/{period}", {"period": period, "words": "", "since": "", "reports": {}})
        # the period in words from a report that covers exactly the folder's period (a capacity
        # report filed under its week learned from 30 days)
        exact = bool(m.get("since") and m.get("until")) and _period(m["since"], m["until"]) == period
        if exact or not row["words"]:
            row["words"], row["since"] = m.get("period_words") or period, m.get("since", "")
        rel = path.parent.relative_to(root).as_posix() + "/"
        runs = row["reports"].setdefault(m.get("name"), {})
        kind = "failed" if failed else "ok"
        if kind not in runs or m.get("generated_at", "") > runs[kind][0].get("generated_at", ""):
            runs[kind] = (m, rel)
    sections = []
    for target in sorted(groups):
        rows = sorted(groups[target].values(), key=lambda r: (r["since"], r["period"]), reverse=True)
        banners = sorted({run[0].get("banner") for r in rows for runs in r["reports"].values()
                          for run in runs.values() if run[0].get("banner")})
        marks = "".join(f' <span class="banner">{h.escape(b)}</span>' for b in banners)
        sections.append(f"<h2>{h.escape(target)}{marks}</h2><table><thead><tr><th>period</th><th>reports</th>"
                        "<th>findings</th><th>generated (UTC)</th></tr></thead><tbody>"
                        + "".join(_row(r) for r in rows) + "</tbody></table>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>vhdiag reports</title><style>"
            "body{font-family:sans-serif;margin:24px} table{border-collapse:collapse;margin-bottom:18px} "
            "td,th{padding:4px 10px;border-bottom:1px solid #ccd;text-align:left;vertical-align:top} "
            "th{background:#eef1f5} .failed,.critical{color:#b00;font-weight:bold} .warning{color:#a60} "
            "small a{color:#557} .banner{font-size:14px;background:#fff3cd;color:#7a5600;padding:2px 8px;"
            "border-radius:4px;vertical-align:middle}</style></head><body><h1>vhdiag reports</h1>" + "".join(sections) + "</body></html>")
    return write_private(root / "index.html", page)


def _period(since, until) -> str:
    from .periods import period_name
    try:
        return period_name(since, until)
    except (ValueError, TypeError):
        return ""


def _row(row: dict) -> str:
    totals = dict.fromkeys(SEVERITIES, 0)
    links, latest = [], ""
    for name in sorted(row["reports"], key=lambda n: (n != "handoff", n or "")):
        runs = row["reports"][name]
        ok, bad = runs.get("ok"), runs.get("failed")
        if bad and (ok is None or bad[0].get("generated_at", "") > ok[0].get("generated_at", "")):
            m, rel = bad   # the newest run failed; the report before it (if any) is still in place
            latest = max(latest, m.get("generated_at", ""))
            links.append(f'<div>{h.escape(m.get("title", ""))}: <span class="failed">failed</span>: '
                         f'{h.escape(m.get("reason", ""))} <small><a href="{h.escape(rel + m.get("notebook", ""))}">'
                         "partial notebook</a></small></div>")
        if ok is None:
            continue
        m, rel = ok
        latest = max(latest, m.get("generated_at", ""))
        for s in SEVERITIES:
            totals[s] += int((m.get("findings_own") or m.get("findings") or {}).get(s, 0))
        extra = [f'<a href="{h.escape(rel + m["notebook"])}">notebook</a>']
        if m.get("summary"):
            extra.append(f'<a href="{h.escape(rel + m["summary"])}">findings (JSON)</a>')
        links.append(f'<div><a href="{h.escape(rel + m["html"])}">{h.escape(m.get("title", ""))}</a> '
                     f'<small>{" · ".join(extra)}</small></div>')
    counts = ", ".join(f'<span class="{s}">{totals[s]} {s}</span>' for s in SEVERITIES if totals[s]) or "no findings"
    return (f"<tr><td>{h.escape(row['words'])}</td><td>{''.join(links)}</td><td>{counts}</td>"
            f"<td>{h.escape(latest[:19].replace('T', ' '))}</td></tr>")
