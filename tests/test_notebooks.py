"""The committed notebooks and the report runner's contract, without a database.

nbval (``pytest --nbval-lax notebooks/``, part of ``./run test``) executes the notebooks; here:
they are committed without outputs, with a typed, documented, secret-free ``parameters`` cell,
and the runner's one-line errors, window names and parameter parsing.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest

import re

from vhdiag import cli, reports
from vhdiag.errors import ConfigError
from vhdiag.reports import registry
from vhdiag.reports.base import resolve_params
from vhdiag.reports.runner import parse_assignments

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPORT_NOTEBOOKS = [p for p in NOTEBOOKS if p.stem in registry.reports()]   # explore.ipynb is vhdiag lab's


def test_there_are_notebooks():
    assert "slow_queries" in [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_parameters(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "strip the outputs before committing"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    lines = [line for line in tagged[0].source.splitlines() if line.strip()]
    for line in lines:  # name: type = default  # help (what papermill --help-notebook shows)
        assert " = " in line and ": " in line.split(" = ")[0] and "  # " in line, line
    assert "papermill" not in nb.metadata


def test_slow_queries_parameters_are_references():
    params = papermill.inspect_notebook(str(ROOT / "notebooks" / "slow_queries.ipynb"))
    assert params["target"]["default"] == '"env:VHDIAG_DSN"'
    assert params["history"]["default"] == '"env:VHDIAG_HISTORY"'
    assert (params["params"]["inferred_type_name"], params["params"]["default"]) == ("dict", "{}")
    for name in ("since", "until", "target_name", "statement_timeout_ms", "params"):
        assert params[name]["help"], name


def test_notebooks_are_thin():
    """A report notebook calls build() once, then only displays: no findings, no file writes,
    no report name as a string."""
    assert [p.stem for p in REPORT_NOTEBOOKS] == sorted(registry.reports())
    for path in REPORT_NOTEBOOKS:
        code = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code")
        assert code.count(".build(") == 1, path
        for banned in ("open(", "write_text", "to_csv", "to_json", "json.dump", "findings(", "savefig",
                       f'"{path.stem}"', f"'{path.stem}'"):
            assert banned not in code, (path, banned)


def test_explore_notebook_is_thin_and_holds_references_only():
    """vhdiag lab's notebook: env: references for the database, the store and the name in it (the
    DSN stays in the kernel's environment), one public call per cell, no logic of its own."""
    path = ROOT / "notebooks" / "explore.ipynb"
    params = papermill.inspect_notebook(str(path))
    assert {k: v["default"] for k, v in params.items()} == {
        "target": '"env:VHDIAG_DSN"', "history": '"env:VHDIAG_HISTORY"', "target_name": '"env:VHDIAG_TARGET_NAME"',
        "since": '"7d"'}
    cells = [c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
    code = "\n".join(cells)
    for call in ("db.statements()", "db.tables()", "db.indexes()", "db.locks()", "h.snapshot(", "h.compare(",
                 "db.explain(", "plot.top(", "plot.compare(", "plot.statement(", "plot.growth("):
        assert call in code, call
    for banned in ("def ", "class ", "lambda", "\nfor ", "while ", "import os", "environ", "postgresql://", "open(",
                   "savefig", "to_csv"):
        assert banned not in code, banned
    assert max(len(c.splitlines()) for c in cells) <= 9


def test_report_names_and_alias():
    assert registry.get("slow-queries").name == registry.get("slow_queries").name == "slow_queries"
    assert registry.get("slow_queries").notebook == ROOT / "notebooks" / "slow_queries.ipynb"
    assert registry.get("slow_queries").title == "Slow queries"


def test_period_names():
    assert reports.period_name("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z") == "2026-W48"
    assert reports.period_name("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z") == "2026-11"
    assert reports.period_name("2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z") == "2026-11-29"
    assert reports.period_name("2026-11-20T09:30:00Z", "2026-11-27T09:30:00Z") == "2026-11-20T0930_2026-11-27T0930"
    assert reports.period_name("2026-11-29T12:00:00Z", "2026-11-29T12:15:00Z") == "2026-11-29T1200_2026-11-29T1215"
    assert reports.period_name("2026-11-29T12:00:05Z", "2026-11-29T12:00:09Z") == \
        "2026-11-29T120005_2026-11-29T120009"
    since, until = reports.resolve_window(window="7d", until="2026-11-30T00:00:00Z")
    assert reports.period_name(since, until) == "2026-W48"


def test_calendar_periods_in_utc_and_in_words():
    now = "2026-11-29T15:00:00Z"   # a Sunday of week 48
    week = reports.calendar_window(week="2026-W48")
    assert [t.isoformat() for t in week] == ["2026-11-23T00:00:00+00:00", "2026-11-30T00:00:00+00:00"]
    assert reports.calendar_window(week="last", now=now) == reports.calendar_window(week="2026-W47")
    assert reports.calendar_window(week=True, now="2026-11-30T00:00:01Z") == week
    assert [t.isoformat()[:10] for t in reports.calendar_window(month="2026-12")] == ["2026-12-01", "2027-01-01"]
    assert reports.calendar_window(month="last", now=now) == reports.calendar_window(month="2026-10")
    assert reports.calendar_window(day="last", now=now) == reports.calendar_window(day="2026-11-28")
    assert reports.period_words(*week) == "week 48 of 2026 (Mon 23 Nov to Sun 29 Nov)"
    assert reports.period_words(*reports.calendar_window(month="2026-11")) == "November 2026"
    assert reports.period_words(*reports.calendar_window(day="2026-11-29")) == "Sun 29 Nov 2026"
    assert reports.period_words("2026-11-20T09:30:00Z", "2026-11-27T09:30:00Z") == "20 Nov 09:30 to 27 Nov 09:30 UTC"
    for bad, message in ((dict(week="2026-W54"), "is not a week of 2026"), (dict(week="48"), "bad week '48'"),
                         (dict(month="2026-13"), "bad month"), (dict(day="2026-02-30"), "bad day"),
                         (dict(week="2026-W48", day="2026-11-29"), "give one of --week, --month, --day")):
        with pytest.raises(ConfigError, match=message):
            reports.calendar_window(**bad)


def test_parameters_are_typed_and_checked_as_declared():
    spec = registry.get("slow_queries")
    assert parse_assignments(["top_n=20", "slow_ms=250", "exclude_roles=monitor,backup"], spec) == \
        {"top_n": 20, "slow_ms": 250.0, "exclude_roles": "monitor,backup"}
    for bad, message in (("top_n=-5", "parameter top_n of report slow_queries must be at least 1, not -5: "
                                      "e.g. -p top_n=10"),
                         ("top_n=0", "must be at least 1, not 0"),
                         ("slow_ms=nan", "parameter slow_ms of report slow_queries must be a finite number, not nan"),
                         ("slow_ms=inf", "must be a finite number"),
                         ("regression_ratio=0.5", "must be at least 1, not 0.5"),
                         ("reports_dir=/tmp", "unknown parameter 'reports_dir'")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_assignments([bad], spec)


def test_defaults_come_from_the_settings(tmp_path, monkeypatch):
    spec = registry.get("slow_queries")
    values = resolve_params(spec.params, {}, "slow_queries")
    assert (values["slow_ms"], values["critical_ms"], values["top_n"]) == (1000.0, 5000.0, 10)
    user = tmp_path / "vhdiag.toml"
    user.write_text("[statements]\nslow_query_ms = 200.0\nregression_ratio = 3.0\n[reports]\ntop_n = 4\n")
    monkeypatch.setenv("VHDIAG_CONFIG", str(user))
    values = resolve_params(spec.params, {"top_n": 7}, "slow_queries")
    assert (values["slow_ms"], values["regression_ratio"], values["top_n"]) == (200.0, 3.0, 7)  # -p beats the file


def _report(capsys, *argv):
    code = cli.main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_report_and_parameter_are_one_line(capsys, monkeypatch):
    monkeypatch.setenv("VHDIAG_DSN", "postgresql://u@localhost/db")
    code, out, err = _report(capsys, "nope")
    assert code == 1 and out == ""
    assert err == (f"Error: no report named 'nope': choose from {', '.join(registry.reports())} "
                   "(vhdiag report --list)\n")
    assert "slow_queries" in err
    code, out, err = _report(capsys, "slow-queries", "-p", "top=5")
    assert (code, err.count("\n")) == (1, 1)
    assert err.startswith("Error: unknown parameter 'top' for report slow_queries: known: top_n, slow_ms, ")
    code, out, err = _report(capsys, "slow-queries", "-p", "top_n=many")
    assert err == ("Error: parameter top_n of report slow_queries must be a whole number, not 'many': "
                   "e.g. -p top_n=10\n")
    code, out, err = _report(capsys, "slow-queries", "-p", "top_n=-5")
    assert (code, err) == (1, "Error: parameter top_n of report slow_queries must be at least 1, not -5: "
                              "e.g. -p top_n=10\n")
    code, out, err = _report(capsys, "slow-queries", "--since", "1d", "--window", "7d")
    assert err == "Error: give either --since/--until or --window, not both\n"
    code, out, err = _report(capsys, "slow-queries", "--week", "2026-W48", "--window", "7d")
    assert err == "Error: give either --week/--month/--day or --since/--until/--window, not both\n"
    code, out, err = _report(capsys)
    assert err.startswith("Error: name a report (vhdiag report --list shows them)")


def test_report_list_and_help_read_the_registry(capsys):
    assert cli.main(["report", "--list"]) == 0
    out = capsys.readouterr().out
    names = [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert names == sorted(registry.reports()) and "slow_queries" in names   # one line per report
    assert "slow_queries: Slow queries (top statements by time" in out
    assert "  -p top_n=<int>  rows per ranking" in out and "(default: setting reports.top_n)" in out
    assert "reports_dir" not in out
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    assert "  slow_queries   Slow queries: top statements by time" in capsys.readouterr().out
