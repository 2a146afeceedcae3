"""Reports: run a notebook with papermill, export HTML without code, keep findings and an index.

``run_report("slow_queries", target=..., since=..., until=...)`` (``vhdiag report NAME``) writes
under ``<out>/<period>/`` (``reports/2026-W48/`` for an ISO week, else a date range):

- ``NAME.ipynb``: the executed notebook, for the DBA who wants to dig in;
- ``NAME.html``: the same without code cells (nbconvert ``exclude_input``), plots inline as PNG,
  cells tagged ``notebook-only`` (long lists) and the parameters left out;
- ``NAME.summary.json``: the findings, a list of objects (see ``vhdiag.analysis.findings``);
- ``NAME.report.json``: what ran, when, for how long; and ``<out>/index.html`` lists every report.

Secrets: the notebook gets a *reference* to the target, never a DSN with a password. papermill
copies parameters into the executed notebook twice (an injected cell and its metadata), so a
literal DSN (or history URL) given to the runner goes into an environment variable of the kernel
process (``VHDIAG_REPORT_DSN``, ``VHDIAG_REPORT_HISTORY``; the kernel inherits this process's
environment) and the notebook receives ``env:VHDIAG_REPORT_DSN``.

Notebooks live in ``notebooks/`` at the repository root, or in ``$VHDIAG_NOTEBOOKS``.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import dsn as dsn_mod
from .config import ENV_VAR as CONFIG_ENV
from .config import load_config, resolve_config
from .errors import ConfigError, NoAnswerError, VhdiagError
from .marker import MARKER
from .timeparse import check_window, parse_duration, parse_time
from .redact import redact_message

NOTEBOOKS_ENV = "VHDIAG_NOTEBOOKS"
DSN_ENV = "VHDIAG_REPORT_DSN"
HISTORY_ENV = "VHDIAG_REPORT_HISTORY"
DEFAULT_WINDOW = "7d"
HIDDEN_TAGS = {"parameters", "injected-parameters", "notebook-only"}
TITLES = {"slow_queries": "Slow queries"}


def notebooks_dir() -> Path:
    """``$VHDIAG_NOTEBOOKS``, else ``notebooks/`` beside the package (the repository root)."""
    import vhdiag
    env = os.environ.get(NOTEBOOKS_ENV)
    return Path(env) if env else Path(vhdiag.__file__).resolve().parent.parent / "notebooks"


def notebook_path(name: str) -> tuple[str, Path]:
    """(canonical name, path): ``slow-queries`` and ``slow_queries`` are the same report."""
    canonical = name.replace("-", "_")
    folder = notebooks_dir()
    path = folder / f"{canonical}.ipynb"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        raise ConfigError(f"no report named {name!r} in {folder}: choose from {', '.join(known) or 'none'}"
                          f" (or set {NOTEBOOKS_ENV})")
    return canonical, path


# -- the window and its name ------------------------------------------------------------------
def resolve_window(since=None, until=None, window=None, now=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(since, until) in UTC: explicit bounds, or ``window`` back from ``until`` (default now, 7d)."""
    if since and window:
        raise ConfigError("give either --since/--until or --window, not both")
    end = parse_time(until, now=now) if until else parse_time("now", now=now)
    start = parse_time(since, now=now) if since else end - parse_duration(window or DEFAULT_WINDOW)
    check_window(start, end, open_start=True)
    return start, end


def period_name(since, until) -> str:
    """``2026-W48`` for a Monday-to-Monday ISO week, else ``2026-11-20_2026-11-27`` (a window of a
    day or more), else ``2026-11-29T1200_2026-11-29T1215`` (UTC; with seconds when the bounds have them)."""
    since, until = pd.Timestamp(since), pd.Timestamp(until)
    if since == since.normalize() and since.day_of_week == 0 and until - since == pd.Timedelta(days=7):
        year, week, _ = since.isocalendar()
        return f"{year}-W{week:02d}"
    if until - since >= pd.Timedelta(days=1):
        return f"{since:%Y-%m-%d}_{until:%Y-%m-%d}"
    minutes = since.second == until.second == 0 and since.microsecond == until.microsecond == 0
    fmt = "%Y-%m-%dT%H%M" if minutes else "%Y-%m-%dT%H%M%S"
    return f"{since.strftime(fmt)}_{until.strftime(fmt)}"


# -- references instead of secrets ------------------------------------------------------------
def target_reference(target: str | None) -> str:
    """The ``env:NAME`` the notebook gets for ``target``; a literal DSN goes to ``$VHDIAG_REPORT_DSN``
    (set by ``_exported`` while the notebook runs)."""
    if not target:
        for var in dsn_mod.DEFAULT_ENV_VARS:
            if os.environ.get(var):
                return f"env:{var}"
        dsn_mod.resolve(None)  # raises the one-line "no database given" error
    if target.startswith("env:"):
        dsn_mod.resolve(target)  # the variable must be set
        return target
    dsn_mod.resolve(target)  # a malformed DSN fails here, before any kernel starts
    return f"env:{DSN_ENV}"


def history_reference(history: str | None) -> str:
    """What the notebook gets for the history store: ``env:NAME``, or a file path (not secret)."""
    if not history:
        return "env:VHDIAG_HISTORY"
    if history.startswith("env:") or "://" not in history or history.startswith("sqlite:"):
        return history if history.startswith(("env:", "sqlite:")) else str(Path(history).expanduser().resolve())
    return f"env:{HISTORY_ENV}"


def history_url(reference: str | None) -> str | None:
    """The store a notebook opens: ``env:NAME`` read (unset ``VHDIAG_HISTORY``: the default store)."""
    if not reference:
        return None
    if reference.startswith("env:"):
        value = os.environ.get(reference[4:])
        if value:
            return value
        if reference[4:] == "VHDIAG_HISTORY":
            return None
        raise ConfigError(f"environment variable {reference[4:]} is not set or empty: "
                          f"export {reference[4:]}=sqlite:///PATH or postgresql://...")
    return reference


@contextlib.contextmanager
def _exported(values: dict):
    """Set environment variables for the duration (the kernel inherits them), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- parameters -------------------------------------------------------------------------------
def notebook_parameters(path: Path) -> dict:
    """The notebook's declared parameters (papermill's reading of its ``parameters`` cell)."""
    import papermill
    return papermill.inspect_notebook(str(path))


def parse_assignments(pairs, declared: dict, name: str) -> dict:
    """``["top_n=5"]`` -> ``{"top_n": 5}``, typed as the notebook declares them."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"bad parameter {pair!r}: write -p key=value, e.g. -p top_n=20")
        if key not in declared:
            raise ConfigError(f"unknown parameter {key!r} for notebook {name}: known: {', '.join(declared)}")
        kind = (declared[key].get("inferred_type_name") or "str").lower()
        try:
            if kind == "int":
                out[key] = int(value)
            elif kind == "float":
                out[key] = float(value)
            elif kind == "bool":
                out[key] = value.strip().lower() in ("1", "true", "yes", "on")
            else:
                out[key] = value
        except ValueError:
            raise ConfigError(f"parameter {key} of notebook {name} must be {kind}, not {value!r}") from None
    return out


# -- running ----------------------------------------------------------------------------------
@dataclass
class Report:
    name: str
    period: str
    dir: Path
    notebook: Path
    html: Path
    summary: Path
    findings: list = field(default_factory=list)
    duration_s: float = 0.0
    kernel_start_s: float | None = None


def run_report(name: str, *, target: str | None = None, history: str | None = None, since=None, until=None,
               window=None, out="reports", parameters: dict | None = None, assignments=None,
               target_name: str | None = None, statement_timeout_ms: int | None = None,
               progress: bool = True, now=None) -> Report:
    """Execute ``notebooks/NAME.ipynb`` for a window and write the report files (module docstring).

    Raises VhdiagError (one line) when the notebook fails, naming the cell and where the partial
    notebook is kept."""
    import papermill
    name, path = notebook_path(name)
    declared = notebook_parameters(path)
    params = dict(parameters or {})
    params.update(parse_assignments(assignments, declared, name))
    target = params.pop("target", target)
    history = params.pop("history", history)
    start, end = resolve_window(params.pop("since", since), params.pop("until", until),
                                params.pop("window", window), now=now)
    period = period_name(start, end)
    folder = Path(out).expanduser().resolve() / period
    folder.mkdir(parents=True, exist_ok=True)
    env = {}
    target_ref = target_reference(target)
    if target_ref == f"env:{DSN_ENV}":
        env[DSN_ENV] = target
    history_ref = history_reference(history)
    if history_ref == f"env:{HISTORY_ENV}":
        env[HISTORY_ENV] = history
    # The kernel runs in notebooks/, where ./vhdiag.toml is not the caller's: name the caller's
    # file (checked here, so a bad key fails before any kernel starts), e.g. [reports] plans = false.
    config = load_config()
    if config.sources:
        env[CONFIG_ENV] = str(Path(config.sources[0]).resolve())
    given = {"target": target_ref, "history": history_ref, "since": start.isoformat(), "until": end.isoformat(),
             "output_dir": str(folder), "history_target": target_name, "statement_timeout_ms": statement_timeout_ms}
    params.update({k: v for k, v in given.items() if k in declared and v is not None})
    executed = folder / f"{name}.ipynb"
    started = time.perf_counter()
    with _exported(env):
        try:
            # The kernel's log level: its warning about TCP without encryption is not the DBA's business.
            papermill.execute_notebook(str(path), str(executed), parameters=params, progress_bar=progress,
                                       request_save_on_cell_execute=True, cwd=str(path.parent),
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except papermill.PapermillExecutionError as exc:
            evalue = redact_message((str(exc.evalue).strip().splitlines() or [""])[0])
            raise VhdiagError(f"notebook {name} failed in cell {exc.exec_count}: {exc.ename}: {evalue}; "
                              f"partial notebook kept at {executed}") from None
        except Exception as exc:  # the kernel died or did not start
            text = redact_message((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            raise VhdiagError(f"notebook {name} failed: {type(exc).__name__}: {text}; "
                              f"partial notebook kept at {executed}") from None
    wall = time.perf_counter() - started
    html_path = folder / f"{name}.html"
    nb = _read(executed)
    html_path.write_text(to_html(nb, f"{TITLES.get(name, name)} {period}"), encoding="utf-8")
    summary = folder / f"{name}.summary.json"
    findings = json.loads(summary.read_text()) if summary.is_file() else []
    cells_s = sum(float(c.get("metadata", {}).get("papermill", {}).get("duration") or 0) for c in nb["cells"])
    meta = {"name": name, "title": TITLES.get(name, name), "period": period, "since": start.isoformat(),
            "until": end.isoformat(), "target": _display(target_ref, env), "generated_at":
            pd.Timestamp.now(tz="UTC").isoformat(), "duration_s": round(wall, 2), "cells_s": round(cells_s, 2),
            "kernel_and_overhead_s": round(wall - cells_s, 2), "html": html_path.name, "notebook": executed.name,
            "summary": summary.name if summary.is_file() else None,
            "findings": {s: sum(f.get("severity") == s for f in findings) for s in ("critical", "warning", "info")}}
    (folder / f"{name}.report.json").write_text(json.dumps(meta, indent=1))
    write_index(folder.parent)
    return Report(name, period, folder, executed, html_path, summary, findings, wall, wall - cells_s)


def _display(reference: str, env: dict) -> str:
    """user@host:port/db of the target, no password (for the index page)."""
    try:
        with _exported(env):
            return dsn_mod.resolve(reference).display
    except VhdiagError:
        return reference


def _read(path: Path):
    import nbformat
    return nbformat.read(str(path), as_version=4)


def to_html(nb, title: str) -> str:
    """The executed notebook as HTML: no code, no parameters, no stderr, no ``notebook-only`` cells."""
    import copy

    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            exclude_anchor_links=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=HIDDEN_TAGS), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def write_index(root: Path) -> Path:
    """``root/index.html``: every report under ``root``, newest first."""
    import html as h
    metas = []
    for p in Path(root).glob("*/*.report.json"):
        with contextlib.suppress(ValueError, OSError):
            metas.append(json.loads(p.read_text()))
    metas.sort(key=lambda m: m.get("generated_at", ""), reverse=True)
    rows = []
    for m in metas:
        base = f"{h.escape(m['period'])}/"
        counts = m.get("findings", {})
        found = ", ".join(f"{counts[s]} {s}" for s in ("critical", "warning", "info") if counts.get(s)) or "none"
        links = [f'<a href="{base}{h.escape(m["html"])}">report</a>', f'<a href="{base}{h.escape(m["notebook"])}">notebook</a>']
        if m.get("summary"):
            links.append(f'<a href="{base}{h.escape(m["summary"])}">findings (JSON)</a>')
        rows.append(f"<tr><td>{h.escape(m['generated_at'][:19].replace('T', ' '))}</td><td>{h.escape(m['title'])}</td>"
                    f"<td>{h.escape(m['period'])}</td><td>{h.escape(m['target'])}</td><td>{h.escape(found)}</td>"
                    f"<td>{' · '.join(links)}</td></tr>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>vhdiag reports</title><style>"
            "body{font-family:sans-serif;margin:24px} table{border-collapse:collapse} td,th{padding:4px 10px;"
            "border-bottom:1px solid #ccd;text-align:left} th{background:#eef1f5}</style></head><body>"
            "<h1>vhdiag reports</h1><table><thead><tr><th>generated (UTC)</th><th>report</th><th>period</th>"
            "<th>target</th><th>findings</th><th></th></tr></thead><tbody>" + "".join(rows) +
            "</tbody></table></body></html>")
    path = Path(root) / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


# -- what the notebooks call ------------------------------------------------------------------
def save_findings(findings: list[dict], output_dir: str, name: str) -> Path | None:
    """``output_dir/NAME.summary.json``; nothing when the notebook runs without an output_dir."""
    if not output_dir:
        return None
    path = Path(output_dir) / f"{name}.summary.json"
    path.write_text(json.dumps(findings, indent=1, default=str))
    return path


def save_plans(plans: list[dict], output_dir: str, name: str, target_name: str, since, until) -> Path | None:
    if not output_dir:
        return None
    path = Path(output_dir) / f"{name}.plans.json"
    keep = [{k: v for k, v in p.items() if k != "plan"} for p in plans]
    path.write_text(json.dumps({"target": target_name, "since": str(since), "until": str(until),
                                "generated_at": pd.Timestamp.now(tz="UTC").isoformat(), "plans": keep},
                               indent=1, default=str))
    return path


def previous_plans(output_dir: str, name: str, target_name: str) -> tuple[list[dict], str]:
    """The plans saved by the newest earlier report of the same target beside ``output_dir``:
    (records, its period), or ([], "") when there is none."""
    if not output_dir:
        return [], ""
    here = Path(output_dir).resolve()
    best = None
    for p in here.parent.glob(f"*/{name}.plans.json"):
        if p.parent == here:
            continue
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(p.read_text())
            if data.get("target") == target_name and (best is None or data["generated_at"] > best[0]["generated_at"]):
                best = (data, p.parent.name)
    return (best[0]["plans"], best[1]) if best else ([], "")


# -- inputs of the slow-query report (database access lives here, not in vhdiag.analysis) ----
@dataclass
class SlowQueryData:
    """What ``notebooks/slow_queries.ipynb`` analyses; ``load_slow_query_data`` fills it."""

    target: object
    target_name: str
    source: str                   # "history" (deltas over the window) or "cumulative" (no history yet)
    since: pd.Timestamp
    until: pd.Timestamp
    baseline_since: pd.Timestamp
    baseline_until: pd.Timestamp
    window: pd.DataFrame          # prepared, vhdiag's own statements excluded
    baseline: pd.DataFrame | None
    excluded: pd.DataFrame        # what exclude_own() left out
    snapshots: pd.DataFrame
    tables: pd.DataFrame
    indexes: pd.DataFrame
    history: object = None
    notes: list = field(default_factory=list)

    @property
    def window_s(self) -> float:
        return (self.until - self.since).total_seconds()

    @property
    def baseline_s(self) -> float:
        return (self.baseline_until - self.baseline_since).total_seconds()

    def series(self, queryid) -> pd.DataFrame:
        """Per snapshot interval, calls and mean time of one queryid over the window."""
        return self.history.statement_series(int(queryid), self.since, self.until, target=self.target_name)


def load_slow_query_data(target: str, history: str, *, history_target: str = "", since="", until="",
                         window=DEFAULT_WINDOW, baseline_since="", baseline_until="", exclude_roles="",
                         statement_timeout_ms: int = 5000) -> SlowQueryData:
    """Open the target and the store and read the window, the baseline, tables and indexes."""
    import vhdiag
    from .analysis import slow_queries as sq
    from .history import History
    from .history.guard import NoStoreError
    from .history.store import default_target_name
    start, end = resolve_window(since or None, until or None, None if since else window)
    b_end = parse_time(baseline_until) if baseline_until else start
    b_start = parse_time(baseline_since) if baseline_since else b_end - (end - start)
    db = vhdiag.connect(target, statement_timeout_ms=statement_timeout_ms)
    store = History(history_url(history))
    try:
        names = list(store.targets()["name"])
    except NoStoreError:  # nothing recorded yet: cumulative figures, and no store is created
        names = []
    if history_target and names and history_target not in names:  # a typo would read no history, quietly
        raise VhdiagError(f"no target named {history_target!r} in history store {store.display}: "
                          f"known: {', '.join(names)}")
    name = history_target or (names[0] if len(names) == 1 else default_target_name(db))
    notes = []
    snaps = store.snapshots(name) if name in names else pd.DataFrame()
    user = db.capabilities.user
    if len(snaps):
        raw_window = store.statements(start, end, target=name)
        raw_base = store.statements(b_start, b_end, target=name)
        source = "history"
    else:
        if names:
            notes.append(f"the history store holds no snapshots of {name} (it has: {', '.join(names)})")
        raw_window, raw_base, source = sq.from_cumulative(db.statements()), None, "cumulative"
    kept, excluded = sq.exclude_own(raw_window, user, exclude_roles)
    window_frame = sq.prepare(kept)
    base_frame = sq.prepare(sq.exclude_own(raw_base, user, exclude_roles)[0]) if raw_base is not None else None
    return SlowQueryData(db, name, source, start, end, b_start, b_end, window_frame, base_frame, excluded,
                         snaps, db.tables(), db.indexes(), store if source == "history" else None, notes)


PLANS_OFF = ("Plans are off ([reports] plans = false in vhdiag.toml): no statement was planned, "
             "and EXPLAIN did not run.")


def plans_enabled(config=None) -> bool:
    """``[reports] plans`` (default true): false and the report runs no EXPLAIN at all."""
    return bool(resolve_config(config)["reports"]["plans"])


def generic_plans(target, frame: pd.DataFrame, config=None) -> tuple[list[dict], str]:
    """``EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON)`` of each statement in ``frame`` that ran in the
    target's database: (records, message). PostgreSQL 16+: GENERIC_PLAN plans a statement with
    ``$1`` parameters as they are, and EXPLAIN without ANALYZE does not execute it. Each runs in
    the Target's read-only transaction under its statement_timeout.

    Planning runs code, though (IMMUTABLE functions are folded, views expanded): a statement is
    planned only when ``vhdiag.collect.plannable`` finds nothing user-defined in it, checked in
    the transaction the EXPLAIN then runs in; the others get a ``note`` saying why
    (``not planned: calls user-defined function public.f``). ``config``: see ``plans_enabled``."""
    from .analysis import plans as plan_mod
    from .analysis.query_text import is_explainable
    from .collect import plannable
    if not plans_enabled(config):
        return [], PLANS_OFF
    caps = target.capabilities
    if caps.major < 16:
        return [], (f"EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16 or later; this server is {caps.major}, "
                    "so no plans were taken (run EXPLAIN with real values by hand).")
    records = []
    with target.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for rec in frame.to_dict("records"):
            if rec["database"] != caps.database or not is_explainable(rec["query"]):
                continue
            out = {"queryid": int(rec["queryid"]), "user": rec["user"], "database": rec["database"],
                   "query": rec["query"]}
            try:
                reason = plannable.refusal(conn, rec["query"])
                if reason:
                    out["note"] = f"not planned: {reason}"
                else:
                    # The marker keeps this EXPLAIN out of the next report's rankings (query_text.is_own).
                    row = raw.execute(f"EXPLAIN {MARKER} (GENERIC_PLAN, VERBOSE, FORMAT JSON) {rec['query']}").fetchone()
                    plan = _json(row[0])
                    out.update(plan=plan, shape=plan_mod.shape(plan), cost=plan_mod.total_cost(plan),
                               text=plan_mod.text(plan))
            except NoAnswerError:  # the server froze: no plan to record, the report fails in one line
                raise
            except Exception as exc:  # psycopg.Error: a statement the monitoring role cannot plan
                out["error"] = redact_message((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            finally:
                conn.rollback()
            records.append(out)
    refused = sum("note" in r for r in records)
    return records, (f"{sum('shape' in r for r in records)} generic plans taken (EXPLAIN does not execute them)"
                     + (f"; {refused} not planned, since planning could run user-written code."
                        if refused else "."))


def hypopg_costs(target, advice: pd.DataFrame, config=None) -> tuple[pd.DataFrame, str]:
    """The planner's cost of each advised query without and with its index as a hypothetical
    index (hypopg; nothing is built). Needs the hypopg extension and PostgreSQL 16+ (generic plans).
    The same rule as ``generic_plans``: a query that names anything user-defined is not planned
    (its ``error`` says why), and ``[reports] plans = false`` turns this off too."""
    from .analysis import plans as plan_mod
    from .collect import plannable
    cols = ["queryid", "suggestion", "cost_without", "cost_with", "error"]
    caps = target.capabilities
    if not plans_enabled(config):
        return pd.DataFrame(columns=cols), PLANS_OFF
    if not _hypopg_installed(target):
        return pd.DataFrame(columns=cols), (f"hypopg is not installed in database {caps.database}: the cost with "
                                            "each suggested index is not estimated (CREATE EXTENSION hypopg; to get it).")
    if caps.major < 16:
        return pd.DataFrame(columns=cols), "hypopg is installed, but comparing generic plans needs PostgreSQL 16 or later."
    rows = []
    with target.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for rec in advice.to_dict("records"):
            create = rec["suggestion"].replace(" CONCURRENTLY", "").rstrip(";")
            explain = f"EXPLAIN {MARKER} (GENERIC_PLAN, VERBOSE, FORMAT JSON) {rec['query']}"
            out = {"queryid": rec["queryid"], "suggestion": rec["suggestion"], "cost_without": None,
                   "cost_with": None, "error": None}
            try:
                reason = plannable.refusal(conn, rec["query"])
                if reason:
                    out["error"] = f"not planned: {reason}"
                else:
                    out["cost_without"] = plan_mod.total_cost(_json(raw.execute(explain).fetchone()[0]))
                    raw.execute(f"SELECT {MARKER} indexrelid FROM hypopg_create_index(%s)", (create,))
                    out["cost_with"] = plan_mod.total_cost(_json(raw.execute(explain).fetchone()[0]))
                    raw.execute(f"SELECT {MARKER} hypopg_reset()")
            except NoAnswerError:  # the server froze: no plan to record, the report fails in one line
                raise
            except Exception as exc:
                out["error"] = redact_message((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            finally:
                conn.rollback()
            rows.append(out)
    return pd.DataFrame(rows, columns=cols), "hypothetical indexes (hypopg): planner cost without and with each."


def _hypopg_installed(target) -> bool:
    return bool(target.query(f"SELECT {MARKER} count(*) AS n FROM pg_extension WHERE extname = 'hypopg'")["n"].iloc[0])


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
