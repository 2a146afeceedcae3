"""The report package as a team would extend and install it, against real servers.

- A report added in a folder of ``$VHDIAG_REPORTS`` (one module, one notebook) runs through
  ``vhdiag report`` with no other change, and is listed by ``--list`` and the index.
- A failed run leaves the previous report of the period byte for byte, keeps its partial
  notebook under ``.failed/`` and says why in the index.
- The wheel, installed outside the checkout, runs ``vhdiag report slow_queries``.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

from vhdiag import cli, reports

ROOT = Path(__file__).resolve().parent.parent

MODULE = '''
"""A report of the tests: counts the user tables, fails when asked to."""
import vhdiag
from vhdiag.reports.base import Param, Report, resolve_params
from vhdiag.reports.periods import resolve_window

TITLE = "Table count"
DESCRIPTION = "how many user tables the database has"
PARAMS = [Param("fail", bool, False, "raise in build()"), Param("at_least", int, 1, "flag fewer", minimum=0),
          Param("hang_after", str, "", "touch this file, then sleep (a run to kill)")]


def build(target=None, history=None, since=None, until=None, target_name=None, *, statement_timeout_ms=None,
          config=None, **params):
    p = resolve_params(PARAMS, params, "table_count", config)
    if p["fail"]:
        raise RuntimeError("planted failure")
    if p["hang_after"]:
        import pathlib, time
        pathlib.Path(p["hang_after"]).touch()
        time.sleep(600)
    start, end = resolve_window(since or None, until or None)
    with vhdiag.connect(target) as db:
        n = len(db.tables())
        finding = {"kind": "table_count", "severity": "warning" if n < p["at_least"] else "info",
                   "subject": db.display, "title": f"{n} user tables", "detail": "", "suggestion": "",
                   "queryid": None, "query": None, "metrics": {"tables": n}}
        return Report("table_count", TITLE, target_name or "probe", db.display, start, end, p, [finding])
'''


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'target: str = "env:VHDIAG_DSN"  # the target\nhistory: str = ""  # the store\n'
        'target_name: str = ""  # name\nsince: str = ""  # start\nuntil: str = ""  # end\n'
        'statement_timeout_ms: int = 5000  # bound\nparams: dict = {}  # parameters')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from vhdiag.reports import registry\n"
        "report = registry.load('table_count').build(target, history, since, until, target_name, **params)\n"
        "display(report)\nprint(report.findings[0]['title'])")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture
def team_reports(tmp_path, monkeypatch):
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "table_count.py").write_text(MODULE)
    _notebook(folder / "table_count.ipynb")
    monkeypatch.setenv("VHDIAG_REPORTS", str(folder))
    return folder


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_report_runs_without_any_other_change(pg, team_reports, tmp_path, capsys):
    assert "table_count" in reports.registry.reports()
    assert cli.main(["report", "--list"]) == 0
    assert "table_count: Table count (how many user tables the database has)" in capsys.readouterr().out
    out = tmp_path / "out"
    code = cli.main(["report", "table_count", "--dsn", pg.dsn(), "--target-name", "probe", "--day", "2026-11-29",
                     "--out", str(out), "-p", "at_least=100000", "--quiet"])
    assert (code, capsys.readouterr()) == (0, ("", ""))
    folder = out / "probe" / "2026-11-29"
    summary = json.loads((folder / "table_count.summary.json").read_text())
    assert summary["findings"][0]["severity"] == "warning" and summary["parameters"]["at_least"] == 100000
    assert summary["since"] == "2026-11-29T00:00:00+00:00"
    index = (out / "index.html").read_text()
    assert 'href="probe/2026-11-29/table_count.html"' in index and "Sun 29 Nov 2026" in index
    html = (folder / "table_count.html").read_text()
    assert "user tables" in html and reports.MIMETYPE not in html and "registry.load" not in html


def test_a_failed_run_keeps_the_previous_report_and_says_why(pg, team_reports, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["report", "table_count", "--dsn", pg.dsn(), "--target-name", "probe", "--week", "2026-W48",
            "--out", str(out)]
    assert cli.main(argv) == 0
    folder = out / "probe" / "2026-W48"
    before = {p.name: _sha(p) for p in folder.iterdir()}
    capsys.readouterr()
    assert cli.main(argv + ["-p", "fail=true"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("Error: notebook table_count failed in cell 3: RuntimeError: planted failure; "
                          f"partial notebook kept at {out / 'probe' / '.failed'}/2026-W48-table_count-")
    assert {p.name: _sha(p) for p in folder.iterdir()} == before   # byte for byte
    failed = list((out / "probe" / ".failed").glob("*/table_count.report.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["status"] == "failed"
    assert not list((out / "probe" / ".failed").glob("*/table_count.summary.json"))
    index = (out / "index.html").read_text()
    assert "failed</span>: notebook table_count failed in cell 3: RuntimeError: planted failure" in index
    assert index.count("<tr><td>") == 1   # one row for the week: the good report and the failure
    assert 'href="probe/2026-W48/table_count.html"' in index
    assert not [p for p in (out / "probe").iterdir() if ".partial-" in p.name]   # no temporary folder left


def test_out_that_is_a_file_or_not_writable_is_one_line(pg, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code = cli.main(["report", "slow_queries", "--dsn", pg.dsn(), "--out", str(afile / "sub")])
    assert (code, capsys.readouterr().err) == (1, f"Error: --out {afile / 'sub'}: {afile} is a file, not a folder: "
                                                  "give --out a folder\n")


@pytest.mark.pg(">= 18")
def test_the_wheel_runs_a_report_outside_the_checkout(pg, tmp_path):
    """pip builds the wheel without warnings; installed into a fresh venv (dependencies from this
    one, vhdiag from the wheel), `vhdiag report slow_queries` runs from another folder."""
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    noise = [line for line in (build.stdout + build.stderr).splitlines()
             if "warning" in line.lower() and "pip version" not in line.lower()]
    assert not noise, noise
    (wheel,) = dist.glob("vhdiag-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python3*/site-packages"))
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VHDIAG_NOTEBOOKS", "VHDIAG_REPORTS")}
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                              "--ignore-installed", "--no-index", str(wheel)], capture_output=True, text=True,
                             timeout=300, env=env)
    assert install.returncode == 0, install.stderr
    # Then the dependencies from the test venv, read as a plain path (its .pth files, among them
    # the editable install of this checkout, are not processed from there).
    here = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "pandas").is_dir())
    (site / "zz_test_dependencies.pth").write_text(here + "\n")
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # nbconvert's templates, beside them
    assert "warning" not in (install.stdout + install.stderr).lower().replace("pip version", "")
    assert (site / "vhdiag" / "notebooks" / "slow_queries.ipynb").is_file()
    assert not (site / "vhdiag" / "notebooks" / "conftest.py").exists()
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import vhdiag.reports.registry as r; print(r.get('slow_queries').notebook)"],
                           capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert where.stdout.strip() == str(site / "vhdiag" / "notebooks" / "slow_queries.ipynb"), where.stderr
    run = subprocess.run([str(env_dir / "bin" / "vhdiag"), "report", "slow_queries", "--dsn", pg.dsn(),
                          "--history", str(tmp_path / "none.sqlite"), "--window", "1h", "--out", "reports",
                          "--quiet"], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), run.stderr
    (summary,) = (work / "reports").glob("*/*/slow_queries.summary.json")
    assert json.loads(summary.read_text())["schema_version"] == reports.SCHEMA_VERSION


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (read from /proc), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop(0))
        todo += children.get(out[-1], [])
    return out


def test_a_killed_run_leaves_the_previous_report_and_the_next_run_cleans_up(pg, team_reports, tmp_path):
    from helpers import eventually
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "vhdiag", "report", "table_count", "--dsn", pg.dsn(), "--target-name", "probe",
            "--week", "2026-W48", "--out", str(out), "--quiet"]
    assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
    folder = out / "probe" / "2026-W48"
    before = {p.name: _sha(p) for p in folder.iterdir()}
    index_before = (out / "index.html").read_bytes()
    generated = json.loads((folder / "table_count.report.json").read_text())["generated_at"]
    marker = tmp_path / "hanging"
    proc = subprocess.Popen(argv + ["-p", f"hang_after={marker}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        eventually(marker.exists, lambda ok: ok or proc.poll() is not None, timeout=180)
        assert marker.exists(), "the run to kill never reached its notebook"
    finally:
        for pid in _descendants(proc.pid):   # the runner first, then its kernel
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert {p.name: _sha(p) for p in folder.iterdir()} == before
    assert (out / "index.html").read_bytes() == index_before
    (leftover,) = [p for p in (out / "probe").iterdir() if ".partial-" in p.name]
    # A live run's folder is locked, so the next run leaves it; a killed run's is not, so it goes.
    assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
    assert not leftover.exists()
    assert json.loads((folder / "table_count.report.json").read_text())["generated_at"] > generated


@pytest.fixture(params=["immutable", "read-only mount"])
def read_only(request, tmp_path):
    """A folder nothing can be written in, and the system's words for why; root ignores
    permissions, so it is made immutable (chattr +i) or is a read-only tmpfs."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if request.param == "immutable":
        make, undo, why = ["chattr", "+i", str(folder)], ["chattr", "-i", str(folder)], "Operation not permitted"
    else:
        make, undo, why = (["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], ["umount", str(folder)],
                           "Read-only file system")
    try:
        done = subprocess.run(make, capture_output=True, text=True)
    except FileNotFoundError as exc:
        pytest.skip(f"{make[0]} is not installed: {exc}")
    if done.returncode:
        pytest.skip(f"{' '.join(make[:2])} does not work here: {done.stderr.strip()}")
    try:
        yield folder, why
    finally:
        subprocess.run(undo, check=True)


def test_out_on_a_read_only_folder_is_one_line(pg, read_only, capsys):
    folder, why = read_only
    code = cli.main(["report", "slow_queries", "--dsn", pg.dsn(), "--out", str(folder / "reports")])
    assert (code, capsys.readouterr().err) == (1, f"Error: cannot write reports in {folder}: {why}: give a folder "
                                                  "you can write to with --out DIR\n")
    assert list(folder.iterdir()) == []


def test_windows_out_of_range_are_refused_before_any_kernel(capsys, tmp_path):
    from vhdiag.errors import ConfigError
    # 100000 days fit, but the baseline of the same length before them does not.
    with pytest.raises(ConfigError, match=r"^--window 100000d is out of range: vhdiag handles times from "):
        reports.resolve_window(window="100000d", until="2026-11-30T00:00:00Z")
    code = cli.main(["report", "slow_queries", "--dsn", "postgresql://nobody@127.0.0.1:1/x", "--window", "10000000d",
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "10000000d" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
