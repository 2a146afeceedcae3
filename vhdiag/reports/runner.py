"""Run a report's notebook with papermill and keep what it produced, whole or not at all.

``run_report("slow_queries", target=..., since=..., until=...)`` (``vhdiag report NAME``) writes
``<out>/<target>/<period>/``:

- ``NAME.ipynb``: the executed notebook, for the DBA who wants to dig in;
- ``NAME.html``: the same without code cells (nbconvert ``exclude_input``), plots inline;
- ``NAME.summary.json``: the findings (``Report.summary()``; versioned, with a JSON Schema);
- ``NAME.<artefact>.json``: what the report keeps for next time (the slow-query plans), and
  ``NAME.<artefact>`` for a text artefact (the post-mortem's ``postmortem.md`` and messages);
- ``NAME.report.json``: what ran, when, for how long; ``<out>/index.html`` lists every report.

The run happens in a temporary folder beside the target; its files are renamed into place only
when every one is written, so a killed, failed or disk-full run never leaves half a report or
replaces a good one. A failed run keeps its partial notebook under ``<out>/<target>/.failed/`` and the
index says why. No file is written by the notebook: its ``Report`` output carries the summary.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import dsn as dsn_mod
from ..config import load_config
from ..errors import ConfigError, VhdiagError, first_line
from ..redact import redact_message
from ..files import private_dir, private_umask, write_private
from . import html, periods, refs, registry
from .base import MIMETYPE, SEVERITIES, resolve_params

FAILED_DIR = ".failed"


@dataclass
class RunResult:
    name: str
    title: str
    target: str
    period: str
    dir: Path
    notebook: Path
    html: Path
    summary: Path
    findings: list = field(default_factory=list)
    duration_s: float = 0.0


def target_slug(name: str) -> str:
    """A target's name as a folder name: ``127.0.0.1:5432/vendhub`` -> ``127.0.0.1_5432_vendhub``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return slug or "target"


def parse_assignments(pairs, spec: registry.ReportSpec) -> dict:
    """``["top_n=5"]`` -> ``{"top_n": 5}``, typed and checked as the report declares them."""
    declared = {p.name: p for p in spec.params if not p.internal}
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"bad parameter {pair!r}: write -p key=value, e.g. -p top_n=20")
        if key not in declared:
            raise ConfigError(f"unknown parameter {key!r} for report {spec.name}: known: {', '.join(declared)}")
        out[key] = declared[key].parse(value, spec.name)
    return out


def _check_out(out) -> Path:
    """``--out`` as a folder vhdiag can write in, checked before any kernel starts (nothing is
    created: the first existing folder on the way is tried with a file that is gone at once)."""
    import tempfile
    root = Path(out).expanduser().resolve()
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"--out {root}: {probe} is a file, not a folder: give --out a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write reports in {probe}: {exc.strerror or exc}: give a folder you can write "
                          "to with --out DIR") from None
    return root


def run_report(name: str, *, target: str | None = None, history: str | None = None, since=None, until=None,
               window=None, week=None, month=None, day=None, out="reports", parameters: dict | None = None,
               assignments=None, target_name: str | None = None, statement_timeout_ms: int | None = None,
               config: str | None = None, progress: bool | None = None, now=None, folder: str | None = None,
               kernel=None, banner: str | None = None) -> RunResult:
    """Execute the report's notebook for a window and write its folder (module docstring).

    ``folder``: the period folder to write to instead of the window's name (the weekly run files a
    capacity report learning from 30 days under its week); ``kernel``: a ``kernel.SharedKernel``
    to run in instead of starting a kernel of its own (its environment is the caller's business).

    Raises VhdiagError (one line) when the notebook fails, naming the cell and where the partial
    notebook is kept."""
    import papermill
    spec = registry.get(name)
    given = dict(parameters or {})
    given.update(parse_assignments(assignments, spec))
    # The kernel runs elsewhere, where ./vhdiag.toml is not the caller's: name the caller's file
    # (found and checked here, so a bad key fails before any kernel starts).
    found = load_config(config).sources
    config = str(Path(found[0]).resolve()) if found else None
    with refs.exported({"VHDIAG_CONFIG": config} if config else {}):
        params = resolve_params(spec.params, given, spec.name)  # every value checked before a kernel starts
        # A report may check its parameters together, and derive the window from them (the
        # post-mortem's -p around=TIME): both before any kernel starts, so bad input writes nothing.
        if callable(getattr(spec.module, "check_params", None)):
            spec.module.check_params(params)
    if callable(getattr(spec.module, "run_window", None)) and not any(v not in (None, False, "")
                                                                         for v in (week, month, day)):
        since, until, window = spec.module.run_window(params, since, until, window, now=now)
    if any(v not in (None, False, "") for v in (week, month, day)):
        if since or until or window:
            raise ConfigError("give either --week/--month/--day or --since/--until/--window, not both")
        start, end = periods.calendar_window(week=week, month=month, day=day, now=now)
    else:
        if not since and not window and hasattr(spec.module, "default_window"):
            window = spec.module.default_window(params)  # e.g. capacity: its window (30d), not 7 days
        start, end = periods.resolve_window(since, until, window, now=now)
    period = folder or periods.period_name(start, end)
    root = _check_out(out)
    target_ref, env = refs.target_reference(target)
    history_ref, history_env = refs.history_reference(history)
    env.update(history_env)
    if config:
        env["VHDIAG_CONFIG"] = config
    with refs.exported(env):
        name_in_store, display = _target_identity(target_ref, target_name, statement_timeout_ms)
    base = private_dir(root / target_slug(name_in_store))
    _clean_stale(base)
    final = base / period
    if "reports_dir" in {p.name for p in spec.params}:
        params["reports_dir"] = str(base)
    work = Path(_mkdtemp(base, f".{period}.{spec.name}.partial-"))
    lock = _hold(work)
    executed = work / f"{spec.name}.ipynb"
    # The name as given (the kernel derives the same default): a given name must be in the store.
    shown_params, param_env = refs.param_references(params)
    env.update(param_env)
    nb_params = {"target": target_ref, "history": history_ref, "target_name": target_name or "",
                 "since": start.isoformat(), "until": end.isoformat(), "params": shown_params}
    if statement_timeout_ms is not None:
        nb_params["statement_timeout_ms"] = int(statement_timeout_ms)
    show_progress = (sys.stderr.isatty() if progress is None else progress)
    started = time.perf_counter()
    with refs.exported(env), private_umask():
        try:
            # The kernel's log level: its warning about TCP without encryption is not the DBA's business.
            papermill.execute_notebook(str(spec.notebook), str(executed), parameters=nb_params,
                                       progress_bar=show_progress, cwd=str(work),
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                       **({"km": kernel.manager()} if kernel is not None else {}))
            nb = html.read_notebook(executed)
            payload = _payload(nb, spec.name)
            wall = time.perf_counter() - started
            meta = _meta(spec, period, start, end, name_in_store, display, wall, payload["summary"], executed)
            if banner:      # e.g. the demo's "demo data": on the page and in the index
                meta["banner"] = banner
            _write_outputs(work, spec, nb, payload, meta, f"{spec.title}: {name_in_store}, "
                           f"{periods.period_words(start, end)}", banner)
            _scan_for_password(work, target_ref, env)
        except BaseException as exc:
            reason = _reason(exc, spec.name)
            kept = _keep_failure(base, work, spec, period, start, end, name_in_store, display, reason)
            _scrub_failure(kept, target_ref, env)
            html.write_index(root)
            lock.close()
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise VhdiagError(f"{reason}; partial notebook kept at {kept / executed.name}") from None
        (work / LOCK_FILE).unlink()
        _move_into_place(work, final, spec.name)
        lock.close()
        html.write_index(root)
    return RunResult(spec.name, spec.title, name_in_store, period, final, final / executed.name,
                     final / f"{spec.name}.html", final / f"{spec.name}.summary.json",
                     payload["summary"]["findings"], wall)


LOCK_FILE = ".running"


def _hold(work: Path):
    """Lock ``work`` for as long as this process lives: the kernel closes no lock of ours, and a
    killed run's lock is gone with it, which is how the next run tells dead folders from live ones."""
    import fcntl
    fh = open(work / LOCK_FILE, "w")  # noqa: SIM115 - held until the run ends
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def _clean_stale(base: Path) -> None:
    """Temporary folders of killed runs (their lock is free); a running report's folder is locked."""
    import fcntl
    for path in base.glob(".*.partial-*"):
        try:
            with open(path / LOCK_FILE, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(path)
        except OSError:  # locked: a run in progress; or already gone
            continue


def _mkdtemp(base: Path, prefix: str) -> str:
    import tempfile
    return tempfile.mkdtemp(prefix=prefix, dir=base)  # 0700


def _target_identity(target_ref, given, statement_timeout_ms) -> tuple[str, str]:
    """(the target's name in the store, user@host:port/db) from one short connection."""
    from ..target import connect
    from .data import resolve_target_name
    options = {"statement_timeout_ms": statement_timeout_ms} if statement_timeout_ms else {}
    with connect(target_ref, **options) as db:
        return resolve_target_name(db, given), db.display


def _payload(nb, name: str) -> dict:
    """The ``Report`` the notebook displayed (its last vhdiag output)."""
    found = None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if MIMETYPE in data:
                found = data[MIMETYPE]
    if found is None:
        raise VhdiagError(f"notebook {name} ran but showed no report: its first cell after the parameters "
                          "must display what build() returns")
    return found


def _meta(spec, period, start, end, target, display, wall, summary, executed) -> dict:
    return {"schema_version": summary.get("schema_version"), "status": "ok", "name": spec.name,
            "title": spec.title, "period": period, "period_words": periods.period_words(start, end),
            "since": start.isoformat(), "until": end.isoformat(), "target": target, "target_display": display,
            "generated_at": pd.Timestamp.now(tz="UTC").isoformat(), "duration_s": round(wall, 2),
            "html": f"{spec.name}.html", "notebook": executed.name, "summary": f"{spec.name}.summary.json",
            "findings": {s: int(summary.get("counts", {}).get(s, 0)) for s in SEVERITIES},
            # what the index adds up per period: not the copies of other reports' findings (the handoff's tasks)
            "findings_own": {s: sum(1 for f in summary.get("findings", []) if f.get("severity") == s
                                    and not (f.get("metrics") or {}).get("from_report")) for s in SEVERITIES}}


def _write_outputs(work: Path, spec, nb, payload: dict, meta: dict, title: str, banner: str | None = None) -> None:
    write_private(work / f"{spec.name}.summary.json", json.dumps(payload["summary"], indent=1, default=str))
    for key, value in (payload.get("artefacts") or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", str(key)):
            raise VhdiagError(f"report {spec.name} has an artefact named {key!r}: use letters, digits, _ - and .")
        if isinstance(value, str):  # a text: NAME.md, NAME.team.txt
            write_private(work / f"{spec.name}.{key}", value)
        else:
            write_private(work / f"{spec.name}.{key}.json", json.dumps(value, indent=1, default=str))
    write_private(work / f"{spec.name}.html", html.to_html(nb, title, banner))
    write_private(work / f"{spec.name}.report.json", json.dumps(meta, indent=1))


def _secrets(target_ref: str, env: dict) -> dict[str, str]:
    """Every password the run was given: the target's, the store's, any URL parameter's."""
    found = {}
    with refs.exported(env):
        try:
            found["the target's password"] = dsn_mod.resolve(target_ref).password
        except VhdiagError:
            pass
        found["the history store's password"] = refs.secret_of(os.environ.get(refs.HISTORY_ENV)
                                                             or os.environ.get("VHDIAG_HISTORY"))
    for var, value in env.items():
        if var.startswith(refs.PARAM_ENV):
            found[f"the password of -p {var[len(refs.PARAM_ENV):].lower()}"] = refs.secret_of(value)
    return {what: pw for what, pw in found.items() if pw}


def _scan_for_password(work: Path, target_ref: str, env: dict) -> None:
    """The last guard: no output file may hold a password the run was given."""
    secrets = _secrets(target_ref, env)
    for path in work.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for what, password in secrets.items():
            if password.encode() in data:
                raise VhdiagError(f"the report's {path.name} contains {what}; nothing was kept: "
                                  "report this as a vhdiag bug")


def _scrub_failure(kept: Path, target_ref: str, env: dict) -> None:
    """A failed run's kept files are outputs too: one holding a password is deleted."""
    secrets = _secrets(target_ref, env)
    for path in kept.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and any(pw.encode() in path.read_bytes() for pw in secrets.values()):
                path.unlink()


def _reason(exc: BaseException, name: str) -> str:
    import papermill
    if isinstance(exc, papermill.PapermillExecutionError):
        evalue = redact_message((str(exc.evalue).strip().splitlines() or [""])[0])
        return f"notebook {name} failed in cell {exc.exec_count}: {exc.ename}: {evalue}"
    if isinstance(exc, KeyboardInterrupt):
        return f"notebook {name} was interrupted"
    if isinstance(exc, VhdiagError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"notebook {name} could not write its report: {exc.strerror or exc}: free space or fix permissions"
    return f"notebook {name} failed: {type(exc).__name__}: {redact_message(first_line(exc))}"


def _keep_failure(base, work, spec, period, start, end, target, display, reason) -> Path:
    """Move the partial run to ``<base>/.failed/<period>-<time>/`` with a report.json saying why."""
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
    kept = private_dir(base / FAILED_DIR) / f"{period}-{spec.name}-{stamp}"
    with contextlib.suppress(OSError):
        (work / LOCK_FILE).unlink()
    with contextlib.suppress(OSError):
        os.replace(work, kept)
    if not kept.is_dir():
        kept = work
    meta = {"status": "failed", "reason": reason, "name": spec.name, "title": spec.title, "period": period,
            "period_words": periods.period_words(start, end), "since": start.isoformat(),
            "until": end.isoformat(), "target": target, "target_display": display,
            "generated_at": pd.Timestamp.now(tz="UTC").isoformat(), "notebook": f"{spec.name}.ipynb"}
    with contextlib.suppress(OSError):
        write_private(kept / f"{spec.name}.report.json", json.dumps(meta, indent=1))
    return kept


def _move_into_place(work: Path, final: Path, name: str) -> None:
    """Move the finished files into the period folder (which other reports of the period share),
    each by an atomic rename, ``NAME.report.json`` last: the index lists the report only once
    all of it is there, and every file is always either the old one or the new one, complete."""
    private_dir(final)
    produced = sorted(work.iterdir(), key=lambda p: (p.name.endswith(".report.json"), p.name))
    for path in produced:
        os.replace(path, final / path.name)
    names = {p.name for p in produced}
    for stale in final.glob(f"{name}.*"):  # an artefact the previous run had and this one does not
        if stale.name not in names and stale.is_file():
            stale.unlink()
    shutil.rmtree(work, ignore_errors=True)
