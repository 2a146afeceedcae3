"""What every report is made of: typed parameters whose defaults come from the settings, and
the ``Report`` that ``build()`` returns.

A report module (``vhdiag/reports/NAME.py``, beside ``notebooks/NAME.ipynb``) declares

- ``TITLE`` and ``DESCRIPTION`` (one line each: ``vhdiag report --list``, the index, ``--help``);
- ``PARAMS``: a list of ``Param``, each with a type, a default (a literal, or a settings key read
  from ``defaults.toml`` under the user's ``vhdiag.toml``), bounds and help;
- ``build(target=None, history=None, since=None, until=None, target_name=None, config=None,
  **params) -> Report``: loads the frames and computes the findings, with no kernel.

The notebook calls ``build()`` once and only displays what it returns. Its last output carries
the summary (findings and artefacts such as plans) under a vhdiag MIME type, which the runner
turns into ``NAME.summary.json``: the notebook writes no file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from ..config import Config, resolve_config
from ..errors import ConfigError

SCHEMA_VERSION = 1
MIMETYPE = "application/vnd.vhdiag.report+json"
SEVERITIES = ("critical", "warning", "info")
_TYPES = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


@dataclass(frozen=True)
class Param:
    """One report parameter: ``-p name=value`` on the command line, ``name=`` to ``build()``."""

    name: str
    type: type
    default: Any = None
    help: str = ""
    setting: str | None = None      # dotted settings key whose value is the default
    minimum: float | None = None    # values below are refused
    internal: bool = False          # set by the runner, not by users (left out of --help)
    duration: bool = False          # a str that must read as a duration (30d, 90d, 12h)
    validate: Callable | None = None  # value -> value (normalized), or ConfigError; not called on ""

    def default_value(self, config: Config) -> Any:
        if self.setting is None:
            return self.default
        node: Any = config
        for key in self.setting.split("."):
            node = node[key]
        return self.check(self.type(node), "settings")

    def parse(self, text: str, report: str) -> Any:
        """A ``-p`` value (text) as this parameter's type, checked."""
        text = text.strip()
        try:
            if self.type is bool:
                low = text.lower()
                if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                    raise ValueError
                value = low in ("1", "true", "yes", "on")
            else:
                value = self.type(text)
        except ValueError:
            raise ConfigError(f"parameter {self.name} of report {report} must be {_TYPES[self.type]}, "
                              f"not {text!r}: e.g. -p {self.name}={self._example()}") from None
        return self.check(value, report)

    def check(self, value: Any, report: str) -> Any:
        """``value`` as this type, refused when not finite or below the minimum."""
        if self.type in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            try:
                value = self.type(value)
            except (TypeError, ValueError):
                raise ConfigError(f"parameter {self.name} of report {report} must be {_TYPES[self.type]}, "
                                  f"not {value!r}: e.g. -p {self.name}={self._example()}") from None
        if self.type is int and isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"parameter {self.name} of report {report} must be a whole number, not {value}")
            value = int(value)
        if self.type is float and not math.isfinite(value):
            raise ConfigError(f"parameter {self.name} of report {report} must be a finite number, not {value}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"parameter {self.name} of report {report} must be at least {self.minimum:g}, "
                              f"not {value}: e.g. -p {self.name}={self._example()}")
        if self.type is str and not isinstance(value, str):
            value = str(value)
        if self.duration:
            from ..timeparse import parse_duration
            try:
                if parse_duration(value).total_seconds() <= 0:
                    raise ConfigError("not positive")
            except ConfigError:
                raise ConfigError(f"parameter {self.name} of report {report} must be a positive duration, not "
                                  f"{value!r}: e.g. -p {self.name}=30d") from None
        if self.validate is not None and value != "":
            value = self.validate(value)
        return value

    def _example(self) -> str:
        if self.default is not None and self.default != "":
            return str(self.default).lower() if self.type is bool else str(self.default)
        return {int: "10", float: "1.5", bool: "true", str: "VALUE"}[self.type]


def resolve_params(declared: list[Param], given: dict, report: str, config=None) -> dict:
    """Every declared parameter's value: what was given (checked), else its default from the
    settings. An unknown name is refused with the known ones."""
    config = resolve_config(config)
    by_name = {p.name: p for p in declared}
    unknown = [k for k in given if k not in by_name]
    if unknown:
        known = ", ".join(p.name for p in declared if not p.internal)
        raise ConfigError(f"unknown parameter {unknown[0]!r} for report {report}: known: {known}")
    out = {}
    for p in declared:
        value = given.get(p.name)
        if value is not None and (p.type is str or value != ""):  # "" for a number: the default
            out[p.name] = p.check(value, report)
        else:
            out[p.name] = p.default_value(config)
    return out


@dataclass
class Report:
    """What ``build()`` returns: findings (exactly what ``NAME.summary.json`` holds), the
    frames the notebook shows, and artefacts the runner saves beside the report."""

    name: str
    title: str
    target: str                      # the target's name in the history store
    target_display: str              # user@host:port/db, never a password
    since: pd.Timestamp
    until: pd.Timestamp
    params: dict
    findings: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Saved beside the report: a JSON value as NAME.<key>.json, a text (str) as NAME.<key>
    # (``{"md": ...}`` -> NAME.md, ``{"team.txt": ...}`` -> NAME.team.txt).
    artefacts: dict = field(default_factory=dict)

    def counts(self) -> dict:
        return {s: sum(f["severity"] == s for f in self.findings) for s in SEVERITIES}

    def summary(self) -> dict:
        """``NAME.summary.json`` (schema: ``vhdiag/reports/summary.schema.json``)."""
        return {"schema_version": SCHEMA_VERSION, "report": self.name, "title": self.title,
                "target": self.target, "target_display": self.target_display,
                "since": self.since.isoformat(), "until": self.until.isoformat(),
                "generated_at": pd.Timestamp.now(tz="UTC").isoformat(),
                "parameters": {k: v for k, v in self.params.items()},
                "counts": self.counts(), "notes": list(self.notes), "findings": self.findings}

    def _repr_mimebundle_(self, include=None, exclude=None):
        # The runner reads this output of the executed notebook; the HTML export drops it.
        import json
        payload = json.loads(json.dumps({"summary": self.summary(), "artefacts": self.artefacts}, default=str))
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        return {MIMETYPE: payload, "text/plain": f"<{self.title} report: {counts}>"}
