"""Bad input (issue 13, "Robustness tests"): one ``Error:`` line, a non-zero exit, nothing written,
and never a password echoed.

Already covered elsewhere (not repeated here): malformed and unreachable DSNs, wrong passwords,
unknown databases (test_errors.py); far, reversed and empty windows, ``7x``-like durations,
metric files with bad values, times and duplicates, unknown target names (test_hostile_input.py);
foreign, newer and missing stores (test_store_safety.py); unknown keys and wrong types in
vhdiag.toml (test_metrics_config.py); unwritable --out (test_report_package.py). What broke
here first, each now one line:

- a malformed store or Prometheus URL (``postgresql://u:pw@[::1``) was a traceback;
- a window starting in the future gave an empty answer that reads as "nothing happened";
- a wrong type in vhdiag.toml echoed the value, a URL's password included.

Property tests: whatever the DSN, store URL, Prometheus URL or configuration, the parsers give
a value or one ``VhdiagError`` line that does not hold the password.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vhdiag import cli
from vhdiag.display import terminal_safe
from vhdiag.config import defaults, load_config, resolve_config
from vhdiag.dsn import resolve
from vhdiag.errors import VhdiagError
from vhdiag.history.guard import location
from vhdiag.history.store import normalize_url
from vhdiag.metrics.prometheus import Prometheus

SECRET = "hunter2-Sec"


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


MALFORMED_STORE = ("Error: malformed history store URL (check the host, port and any brackets): expected "
                   "postgresql://user@host:5432/db or sqlite:///PATH\n")


@pytest.mark.parametrize("url", [f"postgresql://u:{SECRET}@[::1/db", f"postgres://u:{SECRET}@host:port/db",
                                 f"postgresql+psycopg://u:{SECRET}@h:99x/db"])
def test_malformed_store_url_is_one_line_without_the_password(url, capsys):
    for argv in (["history", "snapshots"], ["history", "check"], ["prune"]):
        code, out, err = run(capsys, *argv, "--history", url)
        assert (code, out, err) == (1, "", MALFORMED_STORE), argv


@pytest.mark.parametrize("url, why", [
    (f"http://u:{SECRET}@[::1", "invalid ipv6 url"),
    (f"http://u:{SECRET}@prometheus:99999", "port out of range 0-65535"),
    (f"http://u:{SECRET}@prometheus:90x0", "port could not be cast to integer value as '90x0'"),
])
def test_malformed_prometheus_url_is_one_line_without_the_password(url, why, capsys):
    assert run(capsys, "metrics", url, "--since", "1h") == (
        1, "", f"Error: malformed Prometheus URL ({why}): give its base URL, e.g. http://host:9090 or "
               "http://user:password@host:9090\n")


FUTURE = re.compile(r"Error: since \(2099-01-01T00:00:00\+00:00\) is in the future \(now is [0-9T:+-]+\): give a "
                    r"time before now, or a duration back from now \(7d\)\n")


def test_windows_in_the_future_are_refused_and_nothing_is_written(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text("ts,cpu_pct\n2026-11-28T12:00:00Z,1\n")
    for argv in (["history", "statements", "--history", tmp_path / "h.sqlite"],
                 ["metrics", csv],
                 ["metrics", "http://127.0.0.1:1"],
                 ["report", "slow_queries", "--dsn", "postgresql://u@127.0.0.1:1/db", "--out", tmp_path / "r"]):
        code, out, err = run(capsys, *argv, "--since", "2099-01-01")
        assert (code, out) == (1, ""), argv
        assert FUTURE.fullmatch(err), (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


@pytest.mark.parametrize("text, shown", [
    (f'[checks]\nhealth_urls = "http://admin:{SECRET}@app/health"\n',
     'checks.health_urls must be a list of strings (e.g. health_urls = ["/api/health/check", "/api/health/ready"]), '
     'not a string "http://admin:***@app/health"'),
    (f'[checks]\napp_base_url = ["http://admin:{SECRET}@app"]\n',
     'checks.app_base_url must be a string (e.g. app_base_url = ""), not a list of strings ["http://admin:***@app"]'),
    (f'[checks]\nmetrics = ["postgresql://vhdiag:{SECRET}@store/history"]\n',
     'checks.metrics must be a string (e.g. metrics = ""), not a list of strings '
     '["postgresql://vhdiag:***@store/history"]'),
])
def test_a_url_with_a_password_in_vhdiag_toml_is_never_echoed(tmp_path, capsys, text, shown):
    config = tmp_path / "vhdiag.toml"
    config.write_text(text)
    assert run(capsys, "metrics", "x.csv", "--config", config) == (1, "", f"Error: {config}: {shown}\n")


# -- property tests ---------------------------------------------------------------------------------
_PARTS = st.sampled_from(["postgresql://", "postgres://", "postgresql+psycopg://", "http://", "env:", "host=",
                          "u", ":", "@", "/", "?", "=", " ", "'", "[", "]", "::1", "%", "%4", "%40", "5432",
                          "99999", "db", "sslmode=", "\\", "\x00", "é", "#", "&"])
_TEXT = st.one_of(st.lists(_PARTS, max_size=6).map("".join), st.text(max_size=15))
# The password always where a password goes: a URI's user:PASSWORD@, or password=PASSWORD.
_WITH_PASSWORD = st.one_of(
    st.builds(lambda scheme, a, b: f"{scheme}{a}u:{SECRET}@{b}",
              st.sampled_from(["postgresql://", "postgres://", "postgresql+psycopg://", "http://", ""]), _TEXT, _TEXT),
    st.builds(lambda a, b: f"{a} password={SECRET} {b}", _TEXT, _TEXT),
    st.builds(lambda a, b: f"{a} password='{SECRET}' {b}", _TEXT, _TEXT))
_URLISH = st.one_of(_WITH_PASSWORD, _TEXT)


def _no_secret(exc: VhdiagError) -> None:
    message = terminal_safe(str(exc))      # as the CLI prints it: a newline in a key is shown as \n
    assert "\n" not in message and SECRET not in message, message


@settings(max_examples=400, deadline=None)
@given(_URLISH)
def test_generated_dsns_resolve_or_give_one_line_without_the_password(text):
    try:
        got = resolve(text)
    except VhdiagError as exc:
        _no_secret(exc)
    else:
        assert SECRET not in got.display


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.builds(lambda scheme, a, b: f"{scheme}{a}u:{SECRET}@{b}",
                           st.sampled_from(["postgresql://", "postgres://", "postgresql+psycopg://"]), _TEXT, _TEXT),
                 _TEXT))
def test_generated_store_urls_normalize_or_give_one_line_without_the_password(text):
    try:
        url = normalize_url(text)
        where = location(url)
    except VhdiagError as exc:
        _no_secret(exc)
    else:
        assert SECRET not in where


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.builds(lambda a, b: f"http://{a}u:{SECRET}@{b}", _TEXT, _TEXT), _TEXT.map("http://".__add__)))
def test_generated_prometheus_urls_parse_or_give_one_line_without_the_password(text):
    try:
        server = Prometheus(text)
    except VhdiagError as exc:
        _no_secret(exc)
    else:
        assert SECRET not in server.display


_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), st.text(max_size=12),
              st.just(f"http://u:{SECRET}@h")),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
_SECTIONS = st.sampled_from(sorted(defaults()))


def _known_key(section: str):
    return st.sampled_from(sorted(defaults()[section]) or ["x"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.dictionaries(st.text(max_size=10), _VALUES, max_size=3),
    _SECTIONS.flatmap(lambda s: st.dictionaries(st.just(s), st.dictionaries(_known_key(s), _VALUES, max_size=3),
                                                min_size=1))))
def test_generated_configurations_merge_or_give_one_line_without_the_password(overrides):
    try:
        cfg = resolve_config(overrides)
    except VhdiagError as exc:
        _no_secret(exc)
    else:
        assert set(cfg) == set(defaults())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["[checks]\n", "[thresholds.cpu_pct]\n", "[history]\n", "warning = ", "critical = ",
                                 "gap_factor = ", "app_base_url = ", "1", "0.5", "nan", "inf", '"70%"',
                                 f'"http://a:{SECRET}@h"', "[", "]", "\n", "=", "x = ", "true", '"', "#"]),
                max_size=12).map("".join))
def test_generated_vhdiag_toml_loads_or_gives_one_line(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vhdiag.toml"
        path.write_text(text)
        try:
            load_config(path)
        except VhdiagError as exc:
            _no_secret(exc)


@pytest.mark.parametrize("dsn", [f"postgresql:///u:{SECRET}@", f"postgresql://host/u:{SECRET}@db"])
def test_user_and_password_after_the_host_are_refused_not_shown(dsn):
    """libpq reads them as a database name, which every message and target name would then show
    (found by the property test below)."""
    with pytest.raises(VhdiagError, match="an '@' after the host") as err:
        resolve(dsn)
    _no_secret(err.value)
