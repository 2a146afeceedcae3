"""defaults.toml carries the runbook's numbers; a user's vhdiag.toml overrides them; mistakes are
one line naming the file, the key and the fix."""
from __future__ import annotations

import pytest

from vhdiag.config import DEFAULTS_PATH, load_config, resolve_config
from vhdiag.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    """Neither $VHDIAG_CONFIG, ./vhdiag.toml nor the real user config dir leak into the tests."""
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_runbooks_numbers():
    cfg = load_config()
    assert cfg.sources == []
    assert {m: (t["warning"], t["critical"]) for m, t in cfg["thresholds"].items()} == {
        "cpu_pct": (70, 85), "memory_pct": (75, 90), "error_rate_pct": (1, 5),
        "response_time_p95_ms": (1000, 5000), "db_connections": (20, 30)}
    assert {m: (s["comparison"], s["target"], s["objective_pct"]) for m, s in cfg["slo"].items()} == {
        "up": (">=", 1, 99.9), "cpu_pct": ("<", 50, 99.9), "memory_pct": ("<", 60, 99.9),
        "error_rate_pct": ("<", 0.1, 99.9), "response_time_p95_ms": ("<", 500, 99.9),
        "db_connections": ("<", 20, 99.9)}
    assert cfg["statements"]["slow_query_ms"] == 1000
    assert {k: (v["impact"], v["response_minutes"]) for k, v in cfg["severities"].items()} == {
        "P1": ("Complete outage", 5), "P2": ("Partial outage", 15), "P3": ("Degraded performance", 60),
        "P4": ("Minor issue", 240)}
    steps = ("acknowledge_minutes", "assess_minutes", "mitigate_minutes", "resolve_minutes")
    assert {k: tuple(v.get(s) for s in steps) for k, v in cfg["severities"].items()} == {
        "P1": (2, 5, 15, 60), "P2": (5, 15, 30, 60), "P3": (None,) * 4, "P4": (None,) * 4}
    assert cfg["escalation"] == {
        "level1": {"who": "On-Call Engineer", "after_unresolved_minutes": 0},
        "level2": {"who": "DevOps Lead", "after_unresolved_minutes": 15},
        "level3": {"who": "Engineering Manager", "after_unresolved_minutes": 30},
        "level4": {"who": "Executive", "after_down_minutes": 60}}
    assert cfg["autoscaling"] == {"min_replicas": 2, "max_replicas": 5, "cpu_threshold_pct": 70,
                                  "memory_threshold_pct": 80}


CAPACITY_OWN = ("window", "horizon", "disk_quota_bytes", "quota_warning_pct", "quota_critical_pct",
                "forecast_min_points", "forecast_min_days", "forecast_confidence_pct", "forecast_flat_pct",
                "forecast_weekly_min_strength", "growth_acceleration_ratio", "growth_min_bytes_per_day",
                "dead_tuples_min", "dead_tuples_pct", "vacuum_max_age_days", "bloat_pct", "bloat_min_bytes",
                "bloat_exact_top_n",
                "wraparound_pct", "sequence_used_pct")


CHECKS_OWN = ("connect_timeout_s", "expect_recovery", "long_transaction_s", "idle_in_transaction_s",
              "backup_max_age", "dumps_dir", "pg_restore", "app_base_url", "health_timeout_s",
              "metrics", "metrics_window", "metrics_min_duration", "notify_url", "notify_timeout_s",
              "errors_max_per_day", "require_password_expiry", "growth_spike_ratio", "growth_spike_min_bytes",
              "growth_baseline")

HANDOFF_OWN = ("reports", "snapshot_gap", "metrics_quiet_after")


def test_every_handoff_default_says_it_is_vhdiags_own():
    lines = [ln for ln in DEFAULTS_PATH.read_text().splitlines() if ln.split("=")[0].strip() in HANDOFF_OWN]
    assert len(lines) == len(HANDOFF_OWN)
    assert all("vhdiag's own" in ln for ln in lines)
    assert load_config()["handoff"]["reports"] == ["slow_queries", "capacity"]


LAB_OWN = ("dir", "port", "start_timeout_s")   # [lab]: vhdiag lab


def test_every_lab_default_says_it_is_vhdiags_own():
    lines = [ln for ln in DEFAULTS_PATH.read_text().splitlines() if ln.split("=")[0].strip() in LAB_OWN]
    assert len(lines) == len(LAB_OWN) and all("vhdiag's own" in ln for ln in lines)


def test_every_checks_default_says_it_is_vhdiags_own():
    lines = [ln for ln in DEFAULTS_PATH.read_text().splitlines() if ln.split("=")[0].strip() in CHECKS_OWN]
    assert len(lines) == len(CHECKS_OWN)
    assert all("vhdiag's own" in ln for ln in lines)
    assert load_config()["checks"]["backup_max_age"] == "26h"
    # The health URLs are the runbook's own curl lines, relative to a base URL that is not set.
    assert load_config()["checks"]["health_urls"] == ["/api/health/check", "/api/health/ready"]
    assert load_config()["checks"]["app_base_url"] == ""
    with pytest.raises(ConfigError) as err:
        resolve_config({"checks": {"health_urls": "/api/health/check"}})
    assert str(err.value) == ('config argument: checks.health_urls must be a list of strings (e.g. health_urls = '
                              '["/api/health/check", "/api/health/ready"]), not a string "/api/health/check"')


def test_every_capacity_default_says_it_is_vhdiags_own():
    lines = [ln for ln in DEFAULTS_PATH.read_text().splitlines() if ln.split("=")[0].strip() in CAPACITY_OWN]
    assert len(lines) == len(CAPACITY_OWN)
    assert all("vhdiag's own" in ln for ln in lines)


def test_every_default_cites_the_runbook():
    for line in DEFAULTS_PATH.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")) and not line.split("=")[0].strip() in (
                "step", "default_since", "timeout_s", "max_points_per_series", "cpu_pct", "memory_pct",
                "error_rate_pct", "response_time_p95_ms", "db_connections", "comparison",
                    # vhdiag's own rules where the runbook has none (said so in defaults.toml)
                    "regression_ratio", "regression_floor_ms", "regression_share_pct", "frequent_min_calls",
                    # [capacity]: vhdiag's own, each line says so
                    *CAPACITY_OWN, *CHECKS_OWN, *HANDOFF_OWN, *LAB_OWN, "gap_factor"):
            assert "runbook" in line, line


def test_a_user_file_overrides_some_keys_and_adds_a_metric(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[thresholds.cpu_pct]\nwarning = 60\n\n[thresholds.disk_pct]\nwarning = 80.0\ncritical = 95.0\n\n'
                    '[slo.disk_pct]\ntarget = 70.0\ncomparison = "<="\nobjective_pct = 99.0\n\n'
                    '[prometheus.queries]\ndisk_pct = "100 - node_filesystem_avail_bytes"\n')
    cfg = load_config(path)
    assert cfg.sources == [str(path)]
    assert cfg["thresholds"]["cpu_pct"] == {"warning": 60, "critical": 85.0}
    assert cfg["thresholds"]["disk_pct"] == {"warning": 80.0, "critical": 95.0}
    assert cfg["slo"]["disk_pct"] == {"target": 70.0, "comparison": "<=", "objective_pct": 99.0}
    assert cfg["prometheus"]["queries"]["disk_pct"] == "100 - node_filesystem_avail_bytes"
    assert cfg["prometheus"]["queries"]["cpu_pct"].startswith("100 * (1 - avg by (instance)")


def test_where_the_user_file_is_found(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg" / "vhdiag"
    xdg.mkdir(parents=True)
    (xdg / "vhdiag.toml").write_text("[statements]\nslow_query_ms = 400.0\n")
    assert load_config()["statements"]["slow_query_ms"] == 400.0            # 4. user config dir
    (tmp_path / "vhdiag.toml").write_text("[statements]\nslow_query_ms = 300.0\n")
    assert load_config()["statements"]["slow_query_ms"] == 300.0            # 3. ./vhdiag.toml
    env = tmp_path / "env.toml"
    env.write_text("[statements]\nslow_query_ms = 200.0\n")
    monkeypatch.setenv("VHDIAG_CONFIG", str(env))
    assert load_config()["statements"]["slow_query_ms"] == 200.0            # 2. $VHDIAG_CONFIG
    given = tmp_path / "given.toml"
    given.write_text("[statements]\nslow_query_ms = 100.0\n")
    assert load_config(given)["statements"]["slow_query_ms"] == 100.0       # 1. the path given
    assert resolve_config({"statements": {"slow_query_ms": 50}})["statements"]["slow_query_ms"] == 50


@pytest.mark.parametrize("text, message", [
    ("[thresholds.cpu_pct]\nwarnign = 60\n",
     "{f}: unknown key thresholds.cpu_pct.warnign: did you mean warning? remove or rename it "
     "(known keys under [thresholds.cpu_pct]: warning, critical)"),
    ("[tresholds.cpu_pct]\nwarning = 1.0\n",
     "{f}: unknown key tresholds: did you mean thresholds? remove or rename it (known keys: statements, "
     "tables, reports, capacity, handoff, checks, thresholds, slo, severities, escalation, autoscaling, prometheus, "
     "metrics, triage, lab, history)"),
    ('[thresholds.cpu_pct]\nwarning = "70%"\n',
     '{f}: thresholds.cpu_pct.warning must be a number (e.g. warning = 70.0), not a string "70%"'),
    ("[thresholds]\ncpu_pct = 70\n",
     "{f}: thresholds.cpu_pct must be a table (e.g. [thresholds.cpu_pct]), not a whole number 70"),
    ("[severities.P1]\nresponse_minutes = 5.5\n",
     "{f}: severities.P1.response_minutes must be a whole number (e.g. response_minutes = 5), not a number 5.5"),
    ("[thresholds.disk_pct]\nwarning = 80.0\n", "{f}: thresholds.disk_pct needs critical (e.g. critical = 85.0)"),
    ("[thresholds.cpu_pct]\nwarning = 90\n",
     "{f}: thresholds.cpu_pct: warning (90) is above critical (85.0): make warning <= critical"),
    ('[slo.cpu_pct]\ncomparison = "lt"\n',
     "{f}: slo.cpu_pct.comparison = \"lt\" is not one of '<', '<=', '>', '>=': e.g. comparison = \"<\""),
    ("[slo.cpu_pct]\nobjective_pct = 100\n",
     "{f}: slo.cpu_pct.objective_pct = 100 must be between 0 and 100 (exclusive), e.g. objective_pct = 99.9"),
    ('[prometheus]\nstep = "15"\n',
     '{f}: prometheus.step = "15" is not a duration: write a number with a unit, e.g. step = "15s"'),
    ("[prometheus.queries]\nnope = 5\n",
     '{f}: prometheus.queries.nope must be a string (e.g. nope = "sum(up)"), not a whole number 5'),
    ("[autoscaling]\nmin_replicas = 6\n",
     "{f}: autoscaling.min_replicas (6) is above max_replicas (5): make min_replicas <= max_replicas"),
    ("x = [\n", "{f}: not valid TOML (Invalid value (at end of document)): fix the syntax there"),
])
def test_a_bad_user_file_is_one_line_naming_file_key_and_fix(tmp_path, text, message):
    path = tmp_path / "vhdiag.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == message.format(f=path)


def test_a_missing_file_is_named(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml")
    assert str(err.value) == f"config file {tmp_path / 'nope.toml'} not found: check the path, or leave it out to use the defaults"
    monkeypatch.setenv("VHDIAG_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError) as err:
        load_config()
    assert str(err.value) == (f"VHDIAG_CONFIG names {tmp_path / 'gone.toml'}, which is not a file: "
                              f"fix the path or unset VHDIAG_CONFIG")
