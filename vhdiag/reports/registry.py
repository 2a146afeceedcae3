"""Which reports exist: one module and one notebook each, found without a list to maintain.

- Built in: every module of ``vhdiag.reports`` that defines ``TITLE`` and ``build``, with its
  notebook ``NAME.ipynb`` in ``notebooks/`` (in the repository; the wheel carries the folder as
  ``vhdiag/notebooks`` through setuptools' package-dir mapping).
- Added: every ``NAME.py`` + ``NAME.ipynb`` pair in the folders of ``$VHDIAG_REPORTS``
  (``os.pathsep``-separated), so a team's own report needs no change to vhdiag.

``vhdiag report NAME``, ``vhdiag report --list``, ``--help`` and the index read this.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import ConfigError
from .base import Param

REPORTS_ENV = "VHDIAG_REPORTS"
NOTEBOOKS_ENV = "VHDIAG_NOTEBOOKS"   # another folder for the built-in reports' notebooks


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    description: str
    module: ModuleType
    notebook: Path

    @property
    def params(self) -> list[Param]:
        return list(getattr(self.module, "PARAMS", []))

    def build(self, **kwargs):
        return self.module.build(**kwargs)


def builtin_notebooks() -> Path:
    """``$VHDIAG_NOTEBOOKS``; else ``vhdiag/notebooks`` of an installed wheel; else ``notebooks/``
    of the repository checkout the package runs from."""
    env = os.environ.get(NOTEBOOKS_ENV)
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent.parent
    installed = package / "notebooks"
    return installed if installed.is_dir() else package.parent / "notebooks"


def _is_report(module: ModuleType) -> bool:
    return isinstance(getattr(module, "TITLE", None), str) and callable(getattr(module, "build", None))


def _spec(name: str, module: ModuleType, notebook: Path) -> ReportSpec:
    return ReportSpec(name, module.TITLE, getattr(module, "DESCRIPTION", module.TITLE), module, notebook)


def reports() -> dict[str, ReportSpec]:
    """name -> ReportSpec, built-in first, then ``$VHDIAG_REPORTS`` (a name there may not shadow a built-in)."""
    from .. import reports as package
    found: dict[str, ReportSpec] = {}
    nb_dir = builtin_notebooks()
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if _is_report(module):
            found[info.name] = _spec(info.name, module, nb_dir / f"{info.name}.ipynb")
    for folder in filter(None, os.environ.get(REPORTS_ENV, "").split(os.pathsep)):
        for path in sorted(Path(folder).expanduser().glob("*.py")):
            notebook = path.with_suffix(".ipynb")
            if path.stem.startswith("_") or not notebook.is_file() or path.stem in found:
                continue
            module = _load_file(path)
            if _is_report(module):
                found[path.stem] = _spec(path.stem, module, notebook)
    return found


def _load_file(path: Path) -> ModuleType:
    name = f"vhdiag_user_reports.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"report module {path} failed to load: {type(exc).__name__}: {exc}: fix it or "
                          f"remove its folder from ${REPORTS_ENV}") from None
    return module


def get(name: str) -> ReportSpec:
    """The report called ``name`` (``slow-queries`` and ``slow_queries`` are the same)."""
    known = reports()
    canonical = name.replace("-", "_")
    if canonical not in known:
        raise ConfigError(f"no report named {name!r}: choose from {', '.join(known) or 'none'} "
                          f"(vhdiag report --list)")
    spec = known[canonical]
    if not spec.notebook.is_file():
        raise ConfigError(f"report {canonical} has no notebook at {spec.notebook}: reinstall vhdiag "
                          f"or set ${NOTEBOOKS_ENV}")
    return spec


def load(name: str) -> ModuleType:
    """The module of a report, for ``from vhdiag.reports import registry; registry.load(...)``."""
    return get(name).module
