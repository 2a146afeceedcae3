"""The checks `vhdiag check morning|evening` runs, one registry like the reports' and collectors'.

A check is a function ``f(ctx) -> list[Result]`` registered with ``@check``. It says which runs
it belongs to (the runbook's "Morning Checklist (9 AM UTC)" and "Evening Checklist (6 PM UTC)")
and what it needs: ``"db"`` (an open Target) or ``"history"`` (the history store). A check whose
needs are missing is not called: the runner reports it as a warning saying why, so a missing
source never crashes the run and never passes silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

STATUSES = ("pass", "warn", "fail")


@dataclass
class Result:
    """One line of a check run: ``status`` pass/warn/fail, one line of ``evidence``, the ``fix``.

    ``items`` are the subjects the check saw (queryids, index names, sequence names): stored
    with the run, so the next run can say which are new "since the previous check".
    """
    check: str
    status: str
    evidence: str
    fix: str = ""
    items: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def as_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "evidence": self.evidence, "fix": self.fix,
                "items": list(self.items), "new": list(self.new)}


@dataclass(frozen=True)
class CheckSpec:
    name: str
    title: str
    runs: tuple[str, ...]
    needs: tuple[str, ...]
    func: Callable


_CHECKS: dict[str, CheckSpec] = {}
RUNS = ("morning", "evening")
FAMILIES = ("app", "database", "backup", "metrics", "changes",   # the runbook's checklist order, then what changed,
            "errors", "maintenance", "security")                 # then the evening's additions


def check(name: str, title: str, runs: tuple[str, ...] = RUNS, needs: tuple[str, ...] = ("db",)):
    def register(func):
        _CHECKS[name] = CheckSpec(name, title, tuple(runs), tuple(needs), func)
        return func
    return register


def checks(run: str | None = None) -> list[CheckSpec]:
    """Registered checks, family by family in the runbook's checklist order."""
    from . import health  # noqa: F401, I001  (registration, in the checklist's order)
    from . import database  # noqa: F401
    from . import backups  # noqa: F401
    from . import metrics  # noqa: F401
    from . import changes  # noqa: F401
    from . import evening  # noqa: F401
    from . import security  # noqa: F401
    found = [c for c in _CHECKS.values() if run is None or run in c.runs]
    return sorted(found, key=lambda c: FAMILIES.index(c.name.split(".")[0]))   # stable within a family
