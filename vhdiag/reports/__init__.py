"""Reports: a ``build()`` per report that computes its findings with no kernel, a thin notebook
that shows them, and a runner that executes the notebook with papermill.

```python
from vhdiag import reports
r = reports.build("slow_queries", target="env:DATABASE_URL", since="7d")
r.findings                      # exactly what slow_queries.summary.json holds
reports.run_report("slow_queries", window="7d")   # the notebook, HTML and summary on disk
reports.registry.reports()      # name -> ReportSpec (title, parameters, notebook)
```

Adding a report means adding ``vhdiag/reports/NAME.py`` (``TITLE``, ``DESCRIPTION``, ``PARAMS``,
``build()``) and ``notebooks/NAME.ipynb``; nothing else (see ``registry``).
"""
from __future__ import annotations

from . import registry
from .base import MIMETYPE, SCHEMA_VERSION, Param, Report
from .periods import calendar_window, period_name, period_words, resolve_window
from .runner import RunResult, run_report

__all__ = ["MIMETYPE", "SCHEMA_VERSION", "Param", "Report", "RunResult", "build", "calendar_window",
           "period_name", "period_words", "registry", "resolve_window", "run_report"]


def build(name: str, **kwargs) -> Report:
    """``build("slow_queries", target=..., history=..., since=..., until=..., **params)``: the
    report's findings and frames, computed here (no notebook, no kernel)."""
    return registry.get(name).build(**kwargs)
