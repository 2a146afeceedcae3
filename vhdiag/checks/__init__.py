"""`vhdiag check morning|evening`: the runbook's daily checklists, made runnable.

``run(kind, target=..., history=..., ...)`` connects, runs every registered check of that run
(``registry.checks(kind)``), records the results in the history store and returns a ``CheckRun``:
``.results`` (pass/warn/fail, one line of evidence, the fix), ``.status`` (the worst),
``.exit_code`` (0 all pass, 1 warnings, 2 failures) and ``.as_json()`` (schema in the README).
A check that cannot run (no connection, no history store, no permission, an error) is a warning
saying why; it never ends the run.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd

from ..errors import VhdiagError, first_line
from ..redact import redact_message
from .registry import RUNS, STATUSES, CheckSpec, Result, checks

__all__ = ["run", "CheckRun", "Result", "checks", "RUNS", "JSON_SCHEMA_VERSION"]
JSON_SCHEMA_VERSION = 1
EXIT_CODES = {"pass": 0, "warn": 1, "fail": 2}
log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a check may use. ``target`` is None when the connection failed (``target_error``);
    ``history`` None when there is no store to read."""
    kind: str
    config: dict
    now: pd.Timestamp
    target: object = None
    target_error: str | None = None
    connect_ms: float | None = None
    display: str = ""
    target_name: str = ""
    history: object = None
    history_url: str | None = None
    history_error: str | None = None
    previous_ts: pd.Timestamp | None = None
    previous: dict = field(default_factory=dict)
    metrics: str | None = None       # --metrics SOURCE, else [checks] metrics


@dataclass
class CheckRun:
    kind: str
    target: str
    ts: pd.Timestamp
    previous_ts: pd.Timestamp | None
    results: list[Result]
    recorded: str | None = None      # the store written to, or why not
    notified: dict | None = None     # --notify: {"to": scheme://host, "sent", "error"}; None when nothing was posted

    @property
    def status(self) -> str:
        return max((r.status for r in self.results), key=STATUSES.index, default="pass")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def counts(self) -> dict:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    def as_json(self) -> dict:
        return {"schema_version": JSON_SCHEMA_VERSION, "kind": self.kind, "target": self.target,
                "ts": self.ts.isoformat(), "previous_check": self.previous_ts.isoformat() if self.previous_ts else None,
                "status": self.status, "exit_code": self.exit_code, "counts": self.counts(),
                "checks": [r.as_dict() for r in self.results], "notify": self.notified}


def _default_name(connected, given, display: str) -> str:
    """snapshot's and report's name for the target; unreachable, the name its DSN would give."""
    from ..dsn import resolve
    from ..history.store import default_target_name
    if connected is not None:
        return default_target_name(connected)
    try:
        return default_target_name(resolve(given) if not hasattr(given, "name") else given)
    except VhdiagError:
        return display


def run(kind: str, target=None, history=None, target_name: str | None = None, config=None, *,
        statement_timeout_ms: int = 5000, record: bool = True, now=None, metrics=None, notify=None,
        notify_always: bool = False) -> CheckRun:
    """Run the ``kind`` checklist (morning, evening) against ``target`` (a DSN, ``env:NAME`` or
    None for $VHDIAG_DSN / $DATABASE_URL), reading and writing ``history``; ``metrics``: a metrics
    source (default ``[checks] metrics``); ``notify``: a webhook URL or ``env:NAME`` (default
    ``[checks] notify_url``), posted to after the results are recorded (checks/notify.py)."""
    import vhdiag
    from ..config import resolve_config
    from ..history import History
    from ..history.store import normalize_url
    if kind not in RUNS:
        raise VhdiagError(f"unknown check run {kind!r}: give one of {', '.join(RUNS)}")
    cfg = resolve_config(config)
    ctx = Context(kind=kind, config=cfg, now=pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC"),
                  metrics=metrics)
    started = time.perf_counter()
    try:
        ctx.target = vhdiag.connect(target, statement_timeout_ms=statement_timeout_ms,
                                    connect_timeout_s=max(1, int(round(cfg["checks"]["connect_timeout_s"]))))
        ctx.display = ctx.target.display
        ctx.target.capabilities                        # connects
        ctx.connect_ms = (time.perf_counter() - started) * 1000
    except VhdiagError as exc:
        ctx.target_error = redact_message(str(exc))
        ctx.display = getattr(ctx.target, "display", None) or "the target"
        if ctx.target is not None:
            ctx.target.close()
        ctx.target = None
    try:
        ctx.target_name = target_name or _default_name(ctx.target, target, ctx.display)
        ctx.history_url = normalize_url(history)
        store = History(ctx.history_url)
        try:
            ctx.previous_ts, ctx.previous = store.previous_checks(ctx.target_name, before=ctx.now)
            ctx.history = store
        except VhdiagError as exc:           # no store yet: the first run creates it
            ctx.history_error = first_line(exc)
        results = []
        for spec in checks(kind):
            results.extend(_run_one(spec, ctx))
        out = CheckRun(kind, ctx.target_name, ctx.now, ctx.previous_ts, results)
        if record:
            try:
                store.record_checks(ctx.target_name, kind, ctx.now, [r.as_dict() for r in results])
                out.recorded = store.display
            except VhdiagError as exc:
                out.results.append(Result("history.record", "warn", f"results not recorded: {first_line(exc)}",
                                          "give --history a writable store"))
        _notify(out, notify or cfg["checks"]["notify_url"], cfg["checks"]["notify_timeout_s"], notify_always)
        return out
    finally:
        if ctx.target is not None:
            ctx.target.close()


def _notify(out: CheckRun, url: str, timeout_s: float, always: bool) -> None:
    """Last, after the store has the results: a failed post is a warning, never the run's status."""
    import warnings
    from ..errors import VhdiagWarning
    from .notify import notify
    if not url:
        return
    out.notified = notify(out, url, timeout_s, always)
    if out.notified and not out.notified["sent"]:
        warnings.warn(VhdiagWarning(f"notification to {out.notified['to']} failed: {out.notified['error']}; "
                                    f"the results stand (exit code {out.exit_code}"
                                    + (", recorded in the history store)" if out.recorded else ")")), stacklevel=2)


def _run_one(spec: CheckSpec, ctx: Context) -> list[Result]:
    if "db" in spec.needs and ctx.target is None:
        return [Result(spec.name, "warn", "cannot run: no connection to the database", "see database.connect")]
    if "history" in spec.needs and ctx.history is None:
        return [Result(spec.name, "warn", "cannot run: no history store yet (vhdiag snapshot creates it)",
                       "run vhdiag snapshot every 15 minutes from cron")]
    try:
        return list(spec.func(ctx))
    except Exception as exc:  # a permission, a missing extension, a timeout: say why, go on
        import sqlalchemy as sa
        if not isinstance(exc, (VhdiagError, sa.exc.SQLAlchemyError, OSError)):
            raise
        log.info("check %s could not run", spec.name, exc_info=True)
        return [Result(spec.name, "warn", f"cannot run: {redact_message(first_line(exc))}",
                       "vhdiag doctor says what the role lacks")]
