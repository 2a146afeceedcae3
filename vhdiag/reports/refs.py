"""References instead of secrets: what a notebook is handed for the target and the store.

papermill copies parameters into the executed notebook twice (an injected cell and its
metadata), so a literal DSN (or store URL) given to the runner goes into an environment
variable of the kernel (``VHDIAG_REPORT_DSN``, ``VHDIAG_REPORT_HISTORY``; the kernel inherits
this process's environment while it runs) and the notebook receives ``env:VHDIAG_REPORT_DSN``.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .. import dsn as dsn_mod
from ..errors import ConfigError

DSN_ENV = "VHDIAG_REPORT_DSN"
HISTORY_ENV = "VHDIAG_REPORT_HISTORY"


def target_reference(target: str | None) -> tuple[str, dict]:
    """(the ``env:NAME`` the notebook gets, the variables to export while it runs)."""
    if not target:
        for var in dsn_mod.DEFAULT_ENV_VARS:
            if os.environ.get(var):
                return f"env:{var}", {}
        dsn_mod.resolve(None)  # raises the one-line "no database given" error
    if target.startswith("env:"):
        dsn_mod.resolve(target)  # the variable must be set
        return target, {}
    dsn_mod.resolve(target)  # a malformed DSN fails here, before any kernel starts
    return f"env:{DSN_ENV}", {DSN_ENV: target}


def history_reference(history: str | None) -> tuple[str, dict]:
    """What the notebook gets for the store: ``env:NAME``, or a file path (not secret)."""
    if not history:
        return "env:VHDIAG_HISTORY", {}
    if history.startswith(("env:", "sqlite:")):
        return history, {}
    if "://" not in history:
        return str(Path(history).expanduser().resolve()), {}
    return f"env:{HISTORY_ENV}", {HISTORY_ENV: history}


PARAM_ENV = "VHDIAG_REPORT_PARAM_"


def secret_of(value) -> str | None:
    """The password of a URL (``http://user:pw@host``, ``postgresql://...``), else None."""
    import urllib.parse
    if not isinstance(value, str) or "://" not in value:
        return None
    try:
        return urllib.parse.unquote(urllib.parse.urlsplit(value.strip()).password or "") or None
    except ValueError:
        return None


def param_references(params: dict) -> tuple[dict, dict]:
    """(the parameters the notebook gets, the variables to export): a URL holding a password
    (``-p metrics=http://user:pw@prometheus:9090``) becomes ``env:VHDIAG_REPORT_PARAM_METRICS``;
    papermill would copy it into the notebook, and the report into its summary."""
    shown, env = dict(params), {}
    for name, value in params.items():
        if secret_of(value):
            var = PARAM_ENV + name.upper()
            shown[name], env[var] = f"env:{var}", value
    return shown, env


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
def exported(values: dict):
    """Set environment variables for the duration (the kernel inherits them), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
