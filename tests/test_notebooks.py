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

from vhdiag import cli, reports

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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
    assert (params["top_n"]["inferred_type_name"], params["top_n"]["default"]) == ("int", "10")
    assert (params["slow_ms"]["inferred_type_name"], params["slow_ms"]["default"]) == ("float", "1000.0")
    for name in ("since", "until", "window", "baseline_since", "baseline_until", "regression_ratio",
                 "regression_floor_ms", "exclude_roles", "output_dir"):
        assert params[name]["help"], name


def test_report_names_and_alias():
    assert reports.notebook_path("slow-queries") == reports.notebook_path("slow_queries")
    assert reports.notebook_path("slow-queries")[0] == "slow_queries"


def test_period_names():
    assert reports.period_name("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z") == "2026-W48"
    assert reports.period_name("2026-11-20T09:30:00Z", "2026-11-27T09:30:00Z") == "2026-11-20_2026-11-27"
    assert reports.period_name("2026-11-29T12:00:00Z", "2026-11-29T12:15:00Z") == "2026-11-29T1200_2026-11-29T1215"
    assert reports.period_name("2026-11-29T12:00:05Z", "2026-11-29T12:00:09Z") == \
        "2026-11-29T120005_2026-11-29T120009"
    since, until = reports.resolve_window(window="7d", until="2026-11-30T00:00:00Z")
    assert reports.period_name(since, until) == "2026-W48"


def test_parameters_are_typed_as_declared():
    declared = reports.notebook_parameters(ROOT / "notebooks" / "slow_queries.ipynb")
    assert reports.parse_assignments(["top_n=20", "slow_ms=250", "exclude_roles=monitor,backup"], declared,
                                     "slow_queries") == {"top_n": 20, "slow_ms": 250.0, "exclude_roles": "monitor,backup"}


def _report(capsys, *argv):
    code = cli.main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_report_and_parameter_are_one_line(capsys, monkeypatch):
    monkeypatch.setenv("VHDIAG_DSN", "postgresql://u@localhost/db")
    code, out, err = _report(capsys, "nope")
    assert code == 1 and out == ""
    assert err.startswith("Error: no report named 'nope' in ") and err.endswith(": choose from slow_queries "
                                                                                "(or set VHDIAG_NOTEBOOKS)\n")
    code, out, err = _report(capsys, "slow-queries", "-p", "top=5")
    assert (code, err.count("\n")) == (1, 1)
    assert err.startswith("Error: unknown parameter 'top' for notebook slow_queries: known: target, history, ")
    code, out, err = _report(capsys, "slow-queries", "-p", "top_n=many")
    assert err == "Error: parameter top_n of notebook slow_queries must be int, not 'many'\n"
    code, out, err = _report(capsys, "slow-queries", "--since", "1d", "--window", "7d")
    assert err == "Error: give either --since/--until or --window, not both\n"


def test_failing_cell_is_one_line_and_keeps_the_partial_notebook(tmp_path, capsys, monkeypatch):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('target: str = "env:VHDIAG_DSN"  # the target\n'
                                       'output_dir: str = ""  # set by the runner')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell('raise ValueError("planted failure\\nsecond line")')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path / "nbs"
    folder.mkdir()
    nbformat.write(nb, str(folder / "failing.ipynb"))
    monkeypatch.setenv("VHDIAG_NOTEBOOKS", str(folder))
    secret = "Planted-Secret-77"
    code, out, err = _report(capsys, "failing", "--dsn", f"postgresql://u:{secret}@localhost:5999/db",
                             "--since", "2026-11-23", "--until", "2026-11-30", "--out", str(tmp_path / "out"), "--quiet")
    partial = tmp_path / "out" / "2026-W48" / "failing.ipynb"
    assert code == 1
    assert err.splitlines()[-1] == (f"Error: notebook failing failed in cell 4: ValueError: planted failure; "
                                    f"partial notebook kept at {partial}")
    kept = json.loads(partial.read_text())
    assert kept["metadata"]["papermill"]["parameters"]["target"] == "env:VHDIAG_REPORT_DSN"
    assert secret not in partial.read_text() and secret not in out + err
