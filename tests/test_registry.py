"""The collector registry: the one list of questions that Target, `vhdiag show`, doctor and
snapshot read, so that a new collector is one module and one SQL file."""
from __future__ import annotations

import argparse
import re
import sys
from types import SimpleNamespace

import pytest

import vhdiag
import vhdiag.collect
from vhdiag import cli
from vhdiag.collect import registry
from vhdiag.history import snapshot
from vhdiag.target import Target

NAMES = {"statements", "statements-info", "tables", "indexes", "activity", "connections", "database",
         "maintenance", "wraparound", "sequences", "backups", "replication",
         "index-bloat", "locks"}
# Target's public methods that are not frames.
NOT_FRAMES = {"query", "close", "notice", "require_pgss", "doctor", "explain"}


def test_registry_lists_every_collector():
    entries = registry.collectors()
    assert {e.name for e in entries} == NAMES
    public = {name for name, value in vars(Target).items() if callable(value) and not name.startswith("_")}
    assert public - NOT_FRAMES == {e.method for e in entries}
    for e in entries:
        assert getattr(Target, e.method).collector == e.name
        assert e.description and "\n" not in e.description, e.name
    assert {e.name for e in entries if e.snapshot} == {"statements", "tables", "indexes", "database", "connections"}
    assert registry.get("statements-info").min_pgss == (1, 9)
    assert registry.get("statements-info").requirement() == "pg_stat_statements 1.9+"
    assert registry.get("tables").requirement() == ""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    show_name = next(a for a in commands.choices["show"]._actions if a.dest == "name")
    assert set(show_name.choices) == NAMES


def test_what_a_collector_needs_is_said():
    info = registry.get("statements-info")
    caps = SimpleNamespace(major=13, pgss_version="1.8", pgss_version_tuple=(1, 8))
    assert info.unmet(caps) == "needs pg_stat_statements 1.9+ (installed 1.8)"
    assert info.unmet(SimpleNamespace(major=18, pgss_version=None, pgss_version_tuple=None)) == \
        "needs pg_stat_statements 1.9+ (not installed)"
    assert info.unmet(SimpleNamespace(major=18, pgss_version="1.12", pgss_version_tuple=(1, 12))) is None
    assert registry.get("tables").unmet(caps) is None


def test_show_help_lists_each_collector_with_its_description(capsys):
    with pytest.raises(SystemExit):
        cli.main(["show", "--help"])
    out = capsys.readouterr().out
    for e in registry.collectors():
        assert re.search(rf"^  {re.escape(e.name)} +{re.escape(e.description)}", out, re.M), e.name


def test_names_that_clash_are_refused():
    with pytest.raises(ValueError, match="would replace Target.query"):
        registry.collector(name="query", description="x")(lambda t: None)
    with pytest.raises(ValueError, match="lower-case words"):
        registry.collector(name="Bad_Name", description="x")(lambda t: None)
    assert "query" not in registry.names() and "Bad_Name" not in registry.names()


def test_doctor_tries_every_collector(pg):
    with vhdiag.connect(pg.dsn()) as target:
        result = target.doctor()
    tried = result[result["check"].str.startswith("collect ")]
    assert set(tried["check"]) == {f"collect {name}" for name in NAMES}
    assert set(tried["status"]) == {"ok"}, tried


def test_default_columns_are_columns_of_the_frame(target):
    for e in registry.collectors():
        if e.columns:
            frame = getattr(target, e.method)()
            assert set(e.columns) <= set(frame.columns), e.name


PROBE_MODULE = '''\
"""A collector written by a test: one module, one SQL file."""
from vhdiag.collect import _base
from vhdiag.collect.registry import collector

COLUMNS = {"answer": "int", "note": "string"}


@collector(name="fleet-probe", description="a probe added by a test", columns=["answer"], snapshot=True,
           min_server=13)
def probe(target):
    return _base.typed(target.query(_base.load_sql("fleet_probe")), COLUMNS)
'''
PROBE_SQL = "-- The probe's one statement.\nSELECT /* vhdiag */ 42 AS answer, 'not shown' AS note\n"


@pytest.fixture
def probe_package(tmp_path, monkeypatch):
    """A directory added to vhdiag.collect's search path holding one new collector module."""
    (tmp_path / "sql").mkdir()
    (tmp_path / "fleet_probe.py").write_text(PROBE_MODULE)
    (tmp_path / "sql" / "fleet_probe.sql").write_text(PROBE_SQL)
    monkeypatch.setattr(vhdiag.collect, "__path__", [*vhdiag.collect.__path__, str(tmp_path)])
    yield tmp_path
    if "fleet-probe" in {e.name for e in registry._ENTRIES.values()}:
        registry.unregister("fleet-probe")
    sys.modules.pop("vhdiag.collect.fleet_probe", None)


def test_a_new_collector_appears_everywhere(pg, probe_package, capsys):
    assert not hasattr(Target, "fleet_probe")
    # What `vhdiag show --help` does (read the registry) is all it takes.
    with pytest.raises(SystemExit):
        cli.main(["show", "--help"])
    assert re.search(r"^  fleet-probe +a probe added by a test \(PostgreSQL 13\+\)$", capsys.readouterr().out, re.M)
    with vhdiag.connect(pg.dsn()) as target:
        assert target.fleet_probe()["answer"].tolist() == [42]
        assert "a probe added by a test" in Target.fleet_probe.__doc__
        collected = snapshot.collect(target)
        assert collected["fleet-probe"]["answer"].tolist() == [42]
        assert {"statements", "tables", "indexes", "database", "connections"} <= set(collected)
        doctor = target.doctor().set_index("check")
    assert doctor.loc["collect fleet-probe", "status"] == "ok"
    assert cli.main(["show", "fleet-probe", "--dsn", pg.dsn()]) == 0
    out = capsys.readouterr().out
    assert out.split() == ["answer", "42"]          # the default columns: not `note`
    registry.unregister("fleet-probe")
    assert not hasattr(Target, "fleet_probe")
