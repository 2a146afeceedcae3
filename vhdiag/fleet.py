"""A fleet of targets: ``targets.toml`` and running one task over all of them in parallel.

The runbook's operator runs several databases (production, staging, one per region). A
``targets.toml`` names them, one table each::

    [targets.prod]
    dsn = "env:PROD_DSN"            # or "service:prod" (a libpq service name), never a password
    tags = ["prod", "eu"]
    statement_timeout_ms = 3000     # optional, per target
    [targets.prod.settings.statements]
    slow_query_ms = 500             # overrides of vhdiag.toml for this target only

``run_each`` runs a task per target in threads (the work is waiting on servers and stores, so
threads are enough, and they spare the second or so a process needs to import pandas), each
target with its own connection and timeouts. One target that fails is reported and does not
stop the others.
"""
from __future__ import annotations

import concurrent.futures
import copy
import re
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, defaults, load_config, override
from .dsn import resolve
from .errors import ConfigError, VhdiagError, first_line
from .redact import redact_message

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
TARGET_KEYS = {"dsn": str, "tags": list, "settings": dict, "statement_timeout_ms": int, "connect_timeout_s": int}


@dataclass(frozen=True)
class FleetTarget:
    """One named target of ``targets.toml``."""

    name: str
    dsn: str                                  # the reference as written: env:NAME or service=NAME
    tags: tuple[str, ...] = ()
    settings: dict = field(default_factory=dict, repr=False)
    statement_timeout_ms: int | None = None
    connect_timeout_s: int | None = None
    source: str = "targets.toml"

    def config(self, base=None) -> Config:
        """The settings this target runs with: ``base`` (vhdiag.toml) under its own overrides."""
        cfg = base if isinstance(base, Config) else load_config(base)
        return override(cfg, self.settings, f"{self.source} [targets.{self.name}.settings]")

    def connect_options(self) -> dict:
        options = {}
        if self.statement_timeout_ms is not None:
            options["statement_timeout_ms"] = self.statement_timeout_ms
        if self.connect_timeout_s is not None:
            options["connect_timeout_s"] = self.connect_timeout_s
        return options


def load_targets(path, tags: Iterable[str] | None = None, only: Iterable[str] | None = None) -> list[FleetTarget]:
    """The targets of a ``targets.toml`` (only those carrying every tag of ``tags``, and only those
    named in ``only`` when given), in file order.

    Every mistake is one ``ConfigError`` naming the file, the target and the fix; a DSN that holds a
    password is refused: the file would then be a secret."""
    p = Path(path).expanduser()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"targets file {p} not found: check the path (see `vhdiag snapshot --help`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read it ({exc.__class__.__name__}): check the file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}): fix the syntax there") from None
    unknown = set(data) - {"targets"}
    if unknown:
        raise ConfigError(f"{p}: unknown top-level key {sorted(unknown)[0]!r}: only [targets.NAME] tables belong here")
    table = data.get("targets")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{p}: no targets: add a table such as [targets.prod] with dsn = \"env:PROD_DSN\"")
    out = [_target(p, name, entry) for name, entry in table.items()]
    names = [t.name for t in out]
    for name in only or ():
        if name not in names:
            raise ConfigError(f"{p}: no target named {name!r}: known: {', '.join(names)}")
    if only:
        out = [t for t in out if t.name in set(only)]
    wanted = set(tags or ())
    chosen = [t for t in out if wanted <= set(t.tags)]
    if not chosen:
        raise ConfigError(f"{p}: no target has the tags {', '.join(sorted(wanted))}: "
                          f"known tags: {', '.join(sorted({g for t in out for g in t.tags})) or 'none'}")
    return chosen


def _target(path: Path, name: str, entry: Any) -> FleetTarget:
    where = f"{path}: [targets.{name}]"
    if not NAME_RE.match(name):
        raise ConfigError(f"{where}: a target name is letters, digits and _.:- (it names folders): rename it")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table with dsn = \"env:NAME\"")
    for key, value in entry.items():
        want = TARGET_KEYS.get(key)
        if want is None:
            raise ConfigError(f"{where}: unknown key {key!r}: use {', '.join(TARGET_KEYS)}")
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: {key} must be {'a number' if want is int else 'a ' + want.__name__}")
    if "dsn" not in entry:
        raise ConfigError(f"{where}: no dsn: add dsn = \"env:NAME\" (the DSN in an environment variable) "
                          f"or dsn = \"service:NAME\" (a libpq service)")
    dsn = _reference(where, entry["dsn"])
    tags = entry.get("tags", [])
    if not all(isinstance(t, str) and t for t in tags):
        raise ConfigError(f"{where}: tags must be a list of names, e.g. tags = [\"prod\", \"eu\"]")
    for key in ("statement_timeout_ms", "connect_timeout_s"):
        if key in entry and entry[key] < 1:
            raise ConfigError(f"{where}: {key} must be 1 or more (0 would switch the bound off)")
    target = FleetTarget(name=name, dsn=dsn, tags=tuple(tags), settings=copy.deepcopy(entry.get("settings", {})),
                         statement_timeout_ms=entry.get("statement_timeout_ms"),
                         connect_timeout_s=entry.get("connect_timeout_s"), source=str(path))
    override(Config(defaults(), []), target.settings, f"{path} [targets.{name}.settings]")  # checked now, not mid-run
    return target


def _reference(where: str, dsn: str) -> str:
    """env:NAME and service:NAME (a pg_service.conf entry) are references; a DSN written in the
    file is accepted only without a password."""
    if dsn.startswith("env:"):
        if not re.match(r"^env:[A-Za-z_][A-Za-z0-9_]*$", dsn):
            raise ConfigError(f"{where}: dsn {dsn!r} is not a variable name: use env:NAME, e.g. env:PROD_DSN")
        return dsn
    if dsn.startswith("service:"):
        service = dsn[len("service:"):]
        if not re.match(r"^[A-Za-z0-9_.-]+$", service):
            raise ConfigError(f"{where}: service name {service!r}: use letters, digits and _.-")
        return f"service={service}"
    try:
        resolved = resolve(dsn)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if resolved.password:
        raise ConfigError(f"{where}: the dsn holds a password: put the DSN in an environment variable and write "
                          f"dsn = \"env:NAME\" (or use a libpq service and ~/.pgpass)")
    return dsn


@dataclass
class Outcome:
    """What one target's task gave: its exit status (0 ok, 1 warnings or an error, 2 failures),
    the task's value, or one error line."""

    target: FleetTarget
    status: int
    value: Any = None
    error: str | None = None
    duration_s: float = 0.0


def run_each(targets: list[FleetTarget], task: Callable[[FleetTarget], tuple[int, Any]], *, jobs: int = 4,
             progress: bool | None = None, label: str = "targets") -> list[Outcome]:
    """Run ``task(target) -> (status, value)`` for every target, ``jobs`` at a time; the outcomes
    come back in the file's order. An exception of one target (unreachable, a wrong password, a
    store refusing) becomes its error line; the others go on."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more parallel targets")

    def one(target: FleetTarget) -> Outcome:
        started = time.perf_counter()
        try:
            status, value = task(target)
            return Outcome(target, status, value, None, time.perf_counter() - started)
        except (VhdiagError, OSError) as exc:
            return Outcome(target, 1, None, redact_message(first_line(exc)), time.perf_counter() - started)
        except Exception as exc:  # a query failed on the server: its first line, not a traceback
            import sqlalchemy as sa
            if not isinstance(exc, sa.exc.SQLAlchemyError):
                raise
            return Outcome(target, 1, None, f"query failed: {redact_message(first_line(exc))}",
                           time.perf_counter() - started)

    results: dict[str, Outcome] = {}
    bar = _progress(len(targets), label, progress)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(jobs, len(targets)),
                                               thread_name_prefix="vhdiag-fleet") as pool:
        futures = {pool.submit(one, t): t for t in targets}
        for future in concurrent.futures.as_completed(futures):
            outcome = future.result()
            results[outcome.target.name] = outcome
            if bar is not None:
                bar.set_postfix_str(outcome.target.name, refresh=False)
                bar.update(1)
    if bar is not None:
        bar.close()
    return [results[t.name] for t in targets]


def _progress(total: int, label: str, wanted: bool | None):
    """A tqdm bar on a terminal's stderr; none in a pipe or a cron mail."""
    if wanted is False or (wanted is None and not sys.stderr.isatty()):
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=label, unit="target", file=sys.stderr, leave=False)


def worst(outcomes: list[Outcome]) -> int:
    """The exit status of the fleet: the worst of its targets'."""
    return max((o.status for o in outcomes), default=0)
