"""SQL that several queries share is written once, in a fragment (``sql/_*.sql``) each query
includes with a line ``-- include: _name.sql``; load_sql puts the fragment's SQL there, so the
server gets the same text as when every file carried its own copy (vhdiag/collect/_base.py)."""
from __future__ import annotations

import hashlib
import re

import pytest

import vhdiag.collect
from vhdiag.collect import _base
from vhdiag.marker import MARKER

# Each fragment, and the queries that include it. The `locked` CTE and the size_skipped test of
# a table were copied by hand into each of these files before.
SHARED = {
    "_locked_relations.sql": ["space_tables", "space_tables_post_160000", "space_tables_snapshot",
                              "indexes", "indexes_post_150000", "indexes_post_160000", "indexes_snapshot"],
    "_tables_size_skipped.sql": ["space_tables", "space_tables_post_160000", "space_tables_snapshot"],
}

# sha256 of each query's SQL, without its comment lines, as the server got it when each file held
# its own copy (commit 5a502a5): moving the copies into fragments changed no byte of it.
BEFORE = {
    "space_tables": "4f4c73ca6cfd208002c0e5bf4ac0e0eef0aa5250b9d4014eef3672b2953d21ff",
    "space_tables_post_160000": "ca9211aa94026dab47a00c93296605fad30356f15688b9cc368936d431a80ffa",
    "space_tables_snapshot": "ccbf1e02fc543715332fada1d9f8ca379fb17c6d214434fee8289faf5de6543a",
    "indexes": "4d7823bd7cccb91d858b62538145bd384352045bdf98e8bfb110eda8ecc54d6d",
    "indexes_post_150000": "0ddd3d7580e7aa131cb268c88820855b921fe9351c93f24ab61fe4787440361a",
    "indexes_post_160000": "7bdab5ec6bb450546fd43bb6871800f38848bdf395a9d3881fb729a0956884ee",
    "indexes_snapshot": "97caa7decc51689d827b8ae4ce2df64debf19f3b7324c0719bbf0f9fbfa6f594",
}


def _without_comment_lines(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("--"))


def _fragment_sql(name: str) -> str:
    """A fragment's SQL: its text after the leading comment lines."""
    return re.sub(r"^(?:[ \t]*--[^\n]*\n)*", "", (_base.SQL_DIR / name).read_text())


def test_shared_sql_is_written_once():
    for fragment, queries in SHARED.items():
        sql = _fragment_sql(fragment)
        assert sql.count("\n") >= 6, fragment
        copies = [p.name for p in _base.SQL_DIR.glob("*.sql") if p.name != fragment and sql in p.read_text()]
        assert copies == [], fragment
        for name in queries:
            assert f"\n-- include: {fragment}\n" in (_base.SQL_DIR / f"{name}.sql").read_text(), name
            assert sql in _base.load_sql(name), name


def test_the_server_gets_the_same_sql_as_before():
    assert set(BEFORE) == {q for queries in SHARED.values() for q in queries}
    for name, digest in BEFORE.items():
        text = _base.load_sql(name)
        assert hashlib.sha256(_without_comment_lines(text).encode()).hexdigest() == digest, name
        body = re.sub(r"^(?:\s*--[^\n]*\n)*\s*", "", text)
        assert body.startswith(f"WITH {MARKER} locked AS (\n    SELECT DISTINCT l.relation AS oid\n"), name


def test_every_query_file_loads_with_its_fragments_in_place():
    names = sorted(p.stem for p in _base.SQL_DIR.glob("*.sql") if not p.name.startswith("_"))
    assert len(names) > 30
    for name in names:
        assert "-- include:" not in _base.load_sql(name), name
    fragments = sorted(p.name for p in _base.SQL_DIR.glob("_*.sql"))
    assert fragments == sorted(SHARED)
    for fragment in fragments:          # its SQL runs inside the including query, which holds the marker
        assert MARKER not in _fragment_sql(fragment), fragment


@pytest.fixture
def sql_folder(tmp_path, monkeypatch):
    """An SQL folder added to vhdiag.collect's search path (as an outside collector's is)."""
    (tmp_path / "sql").mkdir()
    monkeypatch.setattr(vhdiag.collect, "__path__", [*vhdiag.collect.__path__, str(tmp_path)])
    return tmp_path / "sql"


def test_an_include_is_replaced_by_the_fragment_sql_only(sql_folder):
    (sql_folder / "_frag_probe_part.sql").write_text("-- Why this part: for readers of the source.\n"
                                                     "--\n    SELECT 1 AS x\n")
    (sql_folder / "frag_probe_ok.sql").write_text("-- The probe.\nWITH /* vhdiag */ part AS (\n"
                                                  "  -- include: _frag_probe_part.sql\n)\nSELECT x FROM part\n")
    assert _base.load_sql("frag_probe_ok") == (
        "-- The probe.\nWITH /* vhdiag */ part AS (\n    SELECT 1 AS x\n)\nSELECT x FROM part\n")


def test_a_missing_fragment_is_an_error_at_load_time(sql_folder):
    (sql_folder / "frag_probe_missing.sql").write_text("SELECT /* vhdiag */ x FROM (\n"
                                                       "-- include: _frag_probe_nowhere.sql\n) AS t\n")
    folders = ", ".join(str(d) for d in _base.sql_dirs())
    with pytest.raises(LookupError) as err:
        _base.load_sql("frag_probe_missing")
    assert str(err.value) == (f"frag_probe_missing.sql includes _frag_probe_nowhere.sql, which no SQL folder "
                              f"holds ({folders}): create it there, or fix the name")
    (sql_folder / "frag_probe_badname.sql").write_text("SELECT /* vhdiag */ 1 AS x\n-- include: ../locks.sql\n")
    with pytest.raises(LookupError, match=r"^frag_probe_badname\.sql includes '\.\./locks\.sql': a fragment's "
                                          r"name is _<name>\.sql \(lower case letters, digits and _\), in the "
                                          r"same folder as the queries$"):
        _base.load_sql("frag_probe_badname")


def test_fragments_go_one_level_deep_and_are_no_queries(sql_folder):
    (sql_folder / "_frag_probe_inner.sql").write_text("    SELECT 1 AS x\n")
    (sql_folder / "_frag_probe_outer.sql").write_text("-- include: _frag_probe_inner.sql\n")
    (sql_folder / "frag_probe_nested.sql").write_text("SELECT /* vhdiag */ x FROM (\n"
                                                      "-- include: _frag_probe_outer.sql\n) AS t\n")
    with pytest.raises(LookupError, match=r"^_frag_probe_outer\.sql includes another fragment: includes go one "
                                          r"level deep, so include both from frag_probe_nested\.sql$"):
        _base.load_sql("frag_probe_nested")
    with pytest.raises(LookupError, match=r"^_locked_relations\.sql is a fragment, not a query: include it "
                                          r"with a line '-- include: _locked_relations\.sql' in the query's SQL file$"):
        _base.load_sql("_locked_relations")
