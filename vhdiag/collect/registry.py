"""The collector registry: one entry per question, and everything that lists questions reads it.

A collector module registers its functions with ``@collector(name=..., description=...)``, and
``collectors()`` imports every module of this package first (pkgutil), so adding a question is
one module and one SQL file, nothing else. What reads the registry:

- ``Target``: one method per entry, generated (``db.statements()``, ``db.statements_info()``:
  the name with ``-`` as ``_``), its docstring the description;
- ``vhdiag show``: the choices, the help lines and the columns the table format shows;
- ``vhdiag doctor``: it tries every entry for real;
- ``vhdiag snapshot``: it collects the entries with ``snapshot=True`` (the store writes those it
  has tables for) and reads ``statements-info`` for the snapshot's header.

``min_server`` (a major version) and ``min_pgss`` (the pg_stat_statements extension version)
say what a collector needs; on an older server it returns an empty frame and a notice, and
``doctor`` says which version it needs.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# Modules of this package that hold no collector.
_NOT_COLLECTORS = {"registry"}


@dataclass(frozen=True)
class Collector:
    """One question: its ``vhdiag show`` name, the function answering it, and how it is shown."""

    name: str                                  # vhdiag show name: statements-info
    function: Callable[..., pd.DataFrame]      # function(target) -> DataFrame
    description: str                           # one line, for vhdiag show --help and the docs
    columns: tuple[str, ...] | None = None     # what the table format shows; None: every column
    snapshot: bool = False                     # vhdiag snapshot collects it
    min_server: int | None = None              # PostgreSQL major version it needs
    min_pgss: tuple[int, int] | None = None    # pg_stat_statements extension version it needs
    # What a snapshot calls instead of ``function`` when the store keeps only a few columns
    # and the full frame costs the monitored server more (indexes: definitions).
    snapshot_function: Callable[..., pd.DataFrame] | None = None

    @property
    def method(self) -> str:
        """The Target method: the name with ``-`` as ``_``."""
        return self.name.replace("-", "_")

    def requirement(self) -> str:
        """``PostgreSQL 14+``, ``pg_stat_statements 1.9+``, or "" when any supported server does."""
        needs = []
        if self.min_server:
            needs.append(f"PostgreSQL {self.min_server}+")
        if self.min_pgss:
            needs.append(f"pg_stat_statements {self.min_pgss[0]}.{self.min_pgss[1]}+")
        return ", ".join(needs)

    def unmet(self, capabilities) -> str | None:
        """What the server lacks for this collector (``needs ... (this server has ...)``), else None."""
        if self.min_server and capabilities.major < self.min_server:
            return f"needs PostgreSQL {self.min_server}+ (this server is {capabilities.major})"
        if self.min_pgss:
            have = capabilities.pgss_version_tuple
            needs = f"needs pg_stat_statements {self.min_pgss[0]}.{self.min_pgss[1]}+"
            if have is None:
                return f"{needs} (not installed)"
            if have < self.min_pgss:
                return f"{needs} (installed {capabilities.pgss_version})"
        return None


_ENTRIES: dict[str, Collector] = {}
_BOUND: list[type] = []


def collector(*, name: str, description: str, columns=None, snapshot: bool = False,
              min_server: int | None = None, min_pgss: tuple[int, int] | None = None,
              snapshot_function: Callable[..., pd.DataFrame] | None = None):
    """Register the decorated ``function(target) -> DataFrame`` as the collector ``name``."""
    def register_function(function):
        register(Collector(name, function, description, tuple(columns) if columns else None, snapshot,
                           min_server, tuple(min_pgss) if min_pgss else None, snapshot_function))
        return function
    return register_function


def register(entry: Collector) -> Collector:
    """Add ``entry``; a module imported again replaces its own entries, never another module's."""
    if not _NAME.fullmatch(entry.name):
        raise ValueError(f"collector name {entry.name!r}: lower-case words joined by '-', like statements-info")
    old = _ENTRIES.get(entry.name)
    if old is not None and old.function.__module__ != entry.function.__module__:
        raise ValueError(f"collector {entry.name!r} is registered twice: by {old.function.__module__} "
                         f"and by {entry.function.__module__}")
    for cls in _BOUND:
        _check_free(cls, entry)
    _ENTRIES[entry.name] = entry
    for cls in _BOUND:
        setattr(cls, entry.method, _method(entry.name, entry))
    return entry


def unregister(name: str) -> None:
    """Remove a collector and its Target method (for tests and plugins that unload)."""
    entry = _ENTRIES.pop(name)
    for cls in _BOUND:
        if getattr(cls.__dict__.get(entry.method), "collector", None) == name:
            delattr(cls, entry.method)


def discover() -> None:
    """Import every module of this package (and of any directory added to its ``__path__``):
    importing a collector module registers its collectors."""
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_") and info.name not in _NOT_COLLECTORS:
            importlib.import_module(f"{__package__}.{info.name}")


def collectors() -> list[Collector]:
    """Every registered collector, by name."""
    discover()
    return sorted(_ENTRIES.values(), key=lambda e: e.name)


def names() -> list[str]:
    return [e.name for e in collectors()]


def get(name: str) -> Collector:
    discover()
    return _ENTRIES[name]


def bind(cls: type) -> None:
    """Give ``cls`` (``vhdiag.Target``) one method per collector, now and for later registrations."""
    if cls not in _BOUND:
        _BOUND.append(cls)
    for entry in collectors():
        _check_free(cls, entry)
        setattr(cls, entry.method, _method(entry.name, entry))


def _check_free(cls: type, entry: Collector) -> None:
    current = cls.__dict__.get(entry.method)
    if current is not None and getattr(current, "collector", None) != entry.name:
        raise ValueError(f"collector {entry.name!r} would replace {cls.__name__}.{entry.method}: choose another name")


def _method(name: str, entry: Collector):
    def method(self) -> pd.DataFrame:
        return _ENTRIES[name].function(self)
    method.__name__ = entry.method
    method.__qualname__ = f"Target.{entry.method}"
    method.__module__ = "vhdiag.target"
    needs = f" Needs {entry.requirement()}." if entry.requirement() else ""
    method.__doc__ = (f"{entry.description}.{needs}\n\n``vhdiag show {name}``; "
                      f"see {entry.function.__module__}.{entry.function.__name__}.")
    method.collector = name
    return method
