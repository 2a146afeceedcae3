"""Analysis: pure functions from frames to frames and findings. No database access here.

- ``slow_queries``: rankings, regressions against a baseline, index advice and the findings of
  the slow-query report (``notebooks/slow_queries.ipynb``).
- ``query_text``: what a normalized pg_stat_statements text touches (tables, predicate columns),
  and which statements are vhdiag's own monitoring queries.
- ``plans``: EXPLAIN (FORMAT JSON) plans as short text and as comparable shapes.
- ``plan_safety``: the names a statement uses that planning it could run (functions, operators,
  types, relations), so that nothing user-written is ever planned (``vhdiag.collect.plannable``).

A finding is a dict with at least ``kind``, ``severity`` (info, warning, critical), ``subject``,
``title``, ``detail`` and ``suggestion`` (the SQL or command to run by hand), and for queries
``queryid`` and ``query``; reports write them to ``NAME.summary.json``.
"""
SEVERITIES = ("info", "warning", "critical")
