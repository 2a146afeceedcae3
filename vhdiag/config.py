"""Settings: the runbook's defaults (``defaults.toml``, shipped with the package) under a user's
``vhdiag.toml``.

The user file is the first of:

1. the ``path`` given to ``load_config`` (``--config`` on the command line),
2. the file named by ``$VHDIAG_CONFIG``,
3. ``./vhdiag.toml`` in the current directory,
4. ``vhdiag.toml`` in the user config directory (``platformdirs.user_config_dir("vhdiag")``,
   e.g. ``~/.config/vhdiag/vhdiag.toml`` on Linux),

and none at all is fine. A user file holds only the keys it changes; tables merge key by key.
It may add a metric to ``[thresholds.*]``, ``[slo.*]`` and ``[prometheus.queries]``, a
severity to ``[severities.*]`` and a file column name to ``[metrics.names]``; every other key
must exist in the defaults, with the same type. Numbers must be finite (TOML allows ``nan`` and
``inf``: ``warning = nan`` would silently remove a level, since no value is above it), and a
warning threshold must not be above its critical one. A mistake is a one-line ``ConfigError``
naming the file, the key and the fix.
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
ENV_VAR = "VHDIAG_CONFIG"
FILE_NAME = "vhdiag.toml"
COMPARISONS = ("<", "<=", ">", ">=")
DURATION_KEYS = {("prometheus", "step"), ("prometheus", "default_since"), ("capacity", "window"),
                 ("capacity", "horizon"), ("checks", "backup_max_age"),
                 ("checks", "metrics_window"), ("checks", "growth_baseline")}

# Tables a user may add entries to; a new entry must look like the named default entry (a
# path), or like the example value given.
OPEN_TABLES = {
    ("thresholds",): ("thresholds", "cpu_pct"),
    ("slo",): ("slo", "cpu_pct"),
    ("severities",): ("severities", "P1"),
    ("prometheus", "queries"): "sum(up)",
    ("metrics", "names"): "response_time_p95_ms",
}
METRIC_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_:]*$")


class Config(dict):
    """The merged settings, a plain nested dict; ``sources`` lists the files merged in."""

    sources: list[str]

    def __init__(self, data: dict, sources: list[str]):
        super().__init__(data)
        self.sources = sources


def defaults() -> dict:
    """The shipped defaults as a fresh nested dict."""
    with DEFAULTS_PATH.open("rb") as fh:
        return tomllib.load(fh)


def find_config_file(path=None) -> Path | None:
    """Which user file ``load_config`` reads (see the module docstring), or None."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} not found: check the path, or leave it out to use the defaults")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"{ENV_VAR} names {p}, which is not a file: fix the path or unset {ENV_VAR}")
        return p
    local = Path(FILE_NAME)
    if local.is_file():
        return local
    import platformdirs
    user = Path(platformdirs.user_config_dir("vhdiag")) / FILE_NAME
    return user if user.is_file() else None


def load_config(path=None) -> Config:
    """The defaults merged with the user's ``vhdiag.toml`` (found as the module docstring says)."""
    found = find_config_file(path)
    if found is None:
        return Config(defaults(), [])
    try:
        user = tomllib.loads(found.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found}: not valid TOML ({exc}): fix the syntax there") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{found}: cannot read it ({exc}): check the file") from None
    return Config(_merged(user, str(found)), [str(found)])


def resolve_config(config=None) -> Config:
    """What functions taking ``config=`` accept: None (``load_config()``), a path, a ``Config``,
    or a mapping of overrides (merged over the defaults like a user file)."""
    if config is None:
        return load_config()
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return Config(_merged(dict(config), "config argument"), [])
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    raise ConfigError(f"config must be a path, a dict or None, not {type(config).__name__}")


def override(config: Config, overrides: Mapping, source: str) -> Config:
    """``config`` with ``overrides`` merged over it, checked like a user file (a fleet target's
    own settings over vhdiag.toml); ``config`` itself is left as it was."""
    if not overrides:
        return config
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{source}: settings must be a table, e.g. [targets.NAME.settings.statements]")
    base = copy.deepcopy(dict(config))
    _merge(base, overrides, (), source, defaults())
    _check_values(base, source)
    return Config(base, list(config.sources) + [source])


def _merged(user: dict, source: str) -> dict:
    base = defaults()
    _merge(base, user, (), source, defaults())  # new entries are checked against pristine defaults
    _check_values(base, source)
    return base


def _merge(base: dict, user: Mapping, path: tuple, source: str, root: dict) -> None:
    for key, value in user.items():
        here = path + (key,)
        if key in base:
            _check_type(value, base[key], here, source)
            if isinstance(base[key], dict):
                _merge(base[key], value, here, source, root)
            else:
                base[key] = value
        elif path in OPEN_TABLES:
            spec = OPEN_TABLES[path]
            template = _get(root, spec) if isinstance(spec, tuple) else spec
            _check_type(value, template, here, source)
            if isinstance(template, dict):
                for missing in (k for k in template if k not in value):
                    raise ConfigError(f"{source}: {_dotted(here)} needs {missing} "
                                      f"(e.g. {missing} = {_toml(template[missing])})")
                entry = copy.deepcopy(template)
                _merge(entry, value, here, source, root)
                value = entry
            base[key] = value
        else:
            raise ConfigError(_unknown(here, base, source))


def _shown(value) -> str:
    """A value as TOML for a message, a URL's or DSN's password hidden (app_base_url, health_urls)."""
    from .redact import redact_message
    return redact_message(_toml(value))


def _check_type(value, default, here: tuple, source: str) -> None:
    kind = _kind(default)
    ok = {
        "a table": isinstance(value, dict),
        "a number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "a whole number": isinstance(value, int) and not isinstance(value, bool),
        "a string": isinstance(value, str),
        "a boolean": isinstance(value, bool),
        "a list of strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if ok and kind == "a number" and not math.isfinite(value):
        raise ConfigError(f"{source}: {_dotted(here)} = {_toml(value)} is not a finite number: "
                          f"e.g. {here[-1]} = {_toml(default)}")
    if not ok:
        example = f"[{_dotted(here)}]" if kind == "a table" else f"{here[-1]} = {_toml(default)}"
        raise ConfigError(f"{source}: {_dotted(here)} must be {kind} (e.g. {example}), "
                          f"not {_kind(value)} {_shown(value)}")


def _check_values(cfg: dict, source: str) -> None:
    from .timeparse import parse_duration
    for (table, key) in DURATION_KEYS:
        value = cfg[table][key]
        try:
            if parse_duration(value) <= parse_duration(0):
                raise ConfigError("not positive")
        except ConfigError:
            raise ConfigError(f'{source}: {table}.{key} = {_shown(value)} is not a duration: '
                              f'write a number with a unit, e.g. {key} = "15s"') from None
    for metric, levels in cfg["thresholds"].items():
        if levels["warning"] > levels["critical"]:
            raise ConfigError(f"{source}: thresholds.{metric}: warning ({levels['warning']}) is above critical "
                              f"({levels['critical']}): make warning <= critical")
    for name, metric in cfg["metrics"]["names"].items():
        if not name.strip() or not METRIC_ID.match(metric):
            raise ConfigError(f"{source}: metrics.names.{json.dumps(name)} = {_shown(metric)} does not map a column "
                              f"name to a metric id: e.g. \"p95 ms\" = \"response_time_p95_ms\"")
    if not cfg["history"]["gap_factor"] > 1:
        raise ConfigError(f"{source}: history.gap_factor = {cfg['history']['gap_factor']} must be above 1 "
                          "(an interval this many times the usual one is a gap), e.g. gap_factor = 3.0")
    scaling = cfg["autoscaling"]
    if scaling["min_replicas"] > scaling["max_replicas"]:
        raise ConfigError(f"{source}: autoscaling.min_replicas ({scaling['min_replicas']}) is above max_replicas "
                          f"({scaling['max_replicas']}): make min_replicas <= max_replicas")
    for metric, slo in cfg["slo"].items():
        if slo["comparison"] not in COMPARISONS:
            raise ConfigError(f"{source}: slo.{metric}.comparison = {_toml(slo['comparison'])} is not one of "
                              f"{', '.join(repr(c) for c in COMPARISONS)}: e.g. comparison = \"<\"")
        if not 0 < slo["objective_pct"] < 100:
            raise ConfigError(f"{source}: slo.{metric}.objective_pct = {slo['objective_pct']} must be between "
                              f"0 and 100 (exclusive), e.g. objective_pct = 99.9")


def _unknown(here: tuple, base: dict, source: str) -> str:
    known = [str(k) for k in base]
    close = difflib.get_close_matches(str(here[-1]), known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    where = f" under [{_dotted(here[:-1])}]" if len(here) > 1 else ""
    return (f"{source}: unknown key {_dotted(here)}: {hint}remove or rename it "
            f"(known keys{where}: {', '.join(known)})")


def _get(root: dict, path: tuple):
    for key in path:
        root = root[key]
    return root


def _kind(value) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list of strings"
    return f"a {type(value).__name__}"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)
