"""The project's promises about itself: dependency lists agree, docs match the CLI."""
import re
import tomllib
from pathlib import Path

from vhdiag import cli
from vhdiag.collect import registry

ROOT = Path(__file__).resolve().parent.parent


def _req_name(req: str) -> tuple[str, str]:
    """'psycopg[binary]>=3.1' -> ('psycopg', '>=3.1')"""
    m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(.*)$", req.strip())
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return dict(_req_name(r) for r in reqs)


def _environment_requirements() -> dict[str, str]:
    """The conda and pip entries of environment.yml (a flat list; no YAML library needed)."""
    reqs = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s+-\s+([^#]+?)\s*$", line)
        if not m or m.group(1) in ("pip", "conda-forge", "-e .", "pip:"):
            continue
        name, spec = _req_name(m.group(1))
        if name != "python":
            reqs[name] = spec
    return reqs


def test_environment_yml_matches_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["./run demo", "./run test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*\./run test\b", ci, re.M)


def test_every_command_and_frame_is_documented():
    readme = (ROOT / "README.md").read_text()
    for command in cli.COMMANDS:
        assert f"vhdiag {command}" in readme, command
    for frame in registry.names():
        assert f"`{frame}`" in readme, frame


def test_every_package_ships_in_the_wheel():
    """pyproject lists packages by hand (the notebooks ship from another folder): a package left
    out installs in editable mode and is missing from the wheel. vhdiag.checks once was."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vhdiag").rglob("__init__.py")}
    assert found - listed == set()
    assert listed - found == {"vhdiag.notebooks", "vhdiag.collect.sql"}   # data folders
