"""A fleet of targets (issue 12): targets.toml read strictly, and snapshot/check run over real
databases in parallel, one of them unreachable."""
import json
import socket

import pandas as pd
import pytest

from helpers import ensure_database
from vhdiag import cli
from vhdiag.config import load_config
from vhdiag.errors import ConfigError
from vhdiag.fleet import load_targets, run_each, worst
from vhdiag.history import History


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    monkeypatch.delenv("VHDIAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def _write(tmp_path, text, name="targets.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]   # closed again when the block ends: nothing listens there


EXAMPLE = """
[targets.prod]
dsn = "env:PROD_DSN"
tags = ["prod", "eu"]
statement_timeout_ms = 3000
[targets.prod.settings.statements]
slow_query_ms = 500

[targets.staging]
dsn = "service:vendhub-staging"
tags = ["staging"]
"""


def test_targets_file_is_read_in_order_with_tags_settings_and_references(tmp_path):
    targets = load_targets(_write(tmp_path, EXAMPLE))
    assert [t.name for t in targets] == ["prod", "staging"]
    prod, staging = targets
    assert prod.dsn == "env:PROD_DSN" and prod.tags == ("prod", "eu")
    assert staging.dsn == "service=vendhub-staging"           # a libpq service, as libpq spells it
    assert prod.connect_options() == {"statement_timeout_ms": 3000}
    assert staging.connect_options() == {}
    assert [t.name for t in load_targets(tmp_path / "targets.toml", tags=["eu"])] == ["prod"]


def test_a_target_s_settings_override_vhdiag_toml_for_that_target_only(tmp_path):
    user = _write(tmp_path, "[statements]\nslow_query_ms = 800\n[reports]\ntop_n = 7\n", "vhdiag.toml")
    prod, staging = load_targets(_write(tmp_path, EXAMPLE))
    base = load_config(user)
    assert prod.config(base)["statements"]["slow_query_ms"] == 500
    assert prod.config(base)["reports"]["top_n"] == 7                 # the rest of vhdiag.toml stays
    assert staging.config(base)["statements"]["slow_query_ms"] == 800
    assert base["statements"]["slow_query_ms"] == 800                 # the base is not changed


@pytest.mark.parametrize("text, words", [
    ('[targets.a]\ndsn = "postgresql://app:s3cret@db/x"\n', ["holds a password", "env:NAME"]),
    ('[targets.a]\ndsn = "host=db password=s3cret"\n', ["holds a password"]),
    ('[targets.a]\ndsn = "env:PROD DSN"\n', ["env:NAME"]),
    ('[targets.a]\ntags = ["x"]\n', ["no dsn"]),
    ('[targets.a]\ndsn = "env:A"\ncolour = "red"\n', ["unknown key 'colour'"]),
    ('[targets.a]\ndsn = "env:A"\ntags = "prod"\n', ["tags must be a list"]),
    ('[targets.a]\ndsn = "env:A"\nstatement_timeout_ms = 0\n', ["1 or more"]),
    ('[targets.a]\ndsn = "env:A"\n[targets.a.settings.statements]\nslow_ms = 5\n', ["slow_ms", "[targets.a.settings]"]),
    ('[targets.a]\ndsn = "env:A"\n[targets.a.settings.statements]\nslow_query_ms = "fast"\n', ["slow_query_ms"]),
    ('[targets."a b"]\ndsn = "env:A"\n', ["rename it"]),
    ("[prod]\ndsn = 'env:A'\n", ["unknown top-level key 'prod'"]),
    ("", ["no targets"]),
    ("[targets.a\n", ["not valid TOML"]),
])
def test_a_bad_targets_file_is_one_line_naming_the_fix_and_never_the_secret(tmp_path, text, words):
    with pytest.raises(ConfigError) as err:
        load_targets(_write(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message and "s3cret" not in message
    for word in words:
        assert word in message


def test_no_target_with_the_tags_says_which_tags_exist(tmp_path):
    with pytest.raises(ConfigError, match="known tags: eu, prod, staging"):
        load_targets(_write(tmp_path, EXAMPLE), tags=["us"])


def test_one_failing_task_does_not_stop_the_others_and_the_worst_status_wins(tmp_path):
    targets = load_targets(_write(tmp_path, "".join(f'[targets.t{i}]\ndsn = "env:T{i}"\n' for i in range(6))))

    def task(t):
        if t.name == "t2":
            raise ConfigError("environment variable T2 is not set or empty")
        return (1 if t.name == "t4" else 0), t.name.upper()

    outcomes = run_each(targets, task, jobs=3, progress=False)
    assert [o.target.name for o in outcomes] == [f"t{i}" for i in range(6)]   # the file's order
    assert [o.value for o in outcomes] == ["T0", "T1", None, "T3", "T4", "T5"]
    assert outcomes[2].error == "environment variable T2 is not set or empty" and outcomes[2].status == 1
    assert worst(outcomes) == 1
    with pytest.raises(ConfigError, match="--jobs 0"):
        run_each(targets, task, jobs=0)


@pytest.fixture
def fleet_of_three(pg, tmp_path, monkeypatch):
    """Two real databases and one unreachable target."""
    for db in ("fleet_a", "fleet_b"):
        ensure_database(pg, db, "CREATE TABLE machines (id int PRIMARY KEY)")
    monkeypatch.setenv("FLEET_A", pg.dsn("fleet_a"))
    monkeypatch.setenv("FLEET_B", pg.dsn("fleet_b"))
    monkeypatch.setenv("FLEET_DOWN", f"postgresql://vhdiag@127.0.0.1:{_closed_port()}/nowhere")
    return _write(tmp_path, """
[targets.alpha]
dsn = "env:FLEET_A"
tags = ["prod"]
[targets.down]
dsn = "env:FLEET_DOWN"
tags = ["prod"]
connect_timeout_s = 2
[targets.beta]
dsn = "env:FLEET_B"
tags = ["staging"]
""")


def test_snapshot_over_a_fleet_records_the_reachable_and_names_the_unreachable(pg, fleet_of_three, tmp_path, capsys):
    store = tmp_path / "history.sqlite"
    status = cli.main(["snapshot", "--targets", str(fleet_of_three), "--jobs", "3", "--history", str(store)])
    out, err = capsys.readouterr()
    assert status == 1
    assert out.count("alpha: snapshot ") == 1 and out.count("beta: snapshot ") == 1
    assert "2 of 3 targets snapshotted" in out
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: down: ")
    with History(str(store)) as history:
        assert sorted(history.targets()["name"]) == ["alpha", "beta"]
        assert len(history.snapshots("alpha")) == 1 and len(history.snapshots("beta")) == 1


def test_snapshot_with_a_tag_runs_only_those_targets(pg, fleet_of_three, tmp_path, capsys):
    store = tmp_path / "history.sqlite"
    assert cli.main(["snapshot", "--targets", str(fleet_of_three), "--tag", "staging", "--history", str(store)]) == 0
    assert "1 of 1 targets snapshotted" in capsys.readouterr().out
    with History(str(store)) as history:
        assert list(history.targets()["name"]) == ["beta"]


def test_check_over_a_fleet_gives_each_target_its_result_and_the_worst_exit_code(pg, fleet_of_three, tmp_path,
                                                                                 capsys):
    store = tmp_path / "history.sqlite"
    status = cli.main(["check", "morning", "--targets", str(fleet_of_three), "--json", "--history", str(store)])
    doc = json.loads(capsys.readouterr().out)
    by_name = {t["name"]: t for t in doc["targets"]}
    assert list(by_name) == ["alpha", "down", "beta"]
    connect = {name: next(r["status"] for r in t["result"]["checks"] if r["check"] == "database.connect")
               for name, t in by_name.items()}
    assert connect == {"alpha": "pass", "down": "fail", "beta": "pass"}
    assert by_name["down"]["exit_code"] == 2 and status == 2 == doc["exit_code"]
    assert {by_name["alpha"]["result"]["target"], by_name["beta"]["result"]["target"]} == {"alpha", "beta"}


def test_fleet_and_one_target_options_do_not_mix(fleet_of_three, capsys):
    assert cli.main(["snapshot", "--targets", str(fleet_of_three), "--dsn", "env:FLEET_A"]) == 1
    assert "either --dsn or --targets" in capsys.readouterr().err
    assert cli.main(["check", "morning", "--targets", str(fleet_of_three), "--target-name", "x"]) == 1
    assert "--target-name names one target" in capsys.readouterr().err


def test_report_over_a_fleet_writes_each_target_with_its_own_settings(pg, fleet_of_three, tmp_path, capsys):
    text = fleet_of_three.read_text() + "[targets.alpha.settings.reports]\ntop_n = 3\n"
    fleet_of_three.write_text(text.replace('[targets.beta]', '[targets.beta]\nstatement_timeout_ms = 4000'))
    store, out = tmp_path / "history.sqlite", tmp_path / "reports"
    for _ in range(2):
        cli.main(["snapshot", "--targets", str(fleet_of_three), "--history", str(store)])
    capsys.readouterr()
    status = cli.main(["report", "slow_queries", "--targets", str(fleet_of_three), "--jobs", "2",
                       "--history", str(store), "--since", "1h", "--out", str(out), "-p", "plans=false"])
    stdout, stderr = capsys.readouterr()
    assert status == 1
    assert [l.split(":")[0] for l in stderr.splitlines() if l.startswith("Error:")] == ["Error"]
    assert "Error: down: " in stderr
    summaries = {p.parent.parent.name: json.loads(p.read_text()) for p in out.glob("*/*/slow_queries.summary.json")}
    assert sorted(summaries) == ["alpha", "beta"]
    assert summaries["alpha"]["parameters"]["top_n"] == 3                  # its own setting
    assert summaries["beta"]["parameters"]["top_n"] == load_config()["reports"]["top_n"]
    index = (out / "index.html").read_text()
    assert 'href="alpha/' in index and 'href="beta/' in index
    assert stdout.count("report slow_queries of alpha") == 1 and stdout.count("report slow_queries of beta") == 1
    assert not list(tmp_path.glob("vhdiag-target-*"))                      # the merged settings file is gone


def test_weekly_over_a_fleet_writes_each_target_s_week(pg, fleet_of_three, tmp_path, capsys):
    store, out = tmp_path / "history.sqlite", tmp_path / "reports"
    for _ in range(2):
        cli.main(["snapshot", "--targets", str(fleet_of_three), "--history", str(store)])
    capsys.readouterr()
    year, week, _ = pd.Timestamp.now(tz="UTC").isocalendar()
    iso = f"{year}-W{week:02d}"
    status = cli.main(["report", "weekly", "--targets", str(fleet_of_three), "--jobs", "2", "--week", iso,
                       "--history", str(store), "--out", str(out), "-p", "slow_queries.plans=false"])
    stdout, stderr = capsys.readouterr()
    assert status == 1                                                  # the unreachable target
    assert [l for l in stderr.splitlines() if l.startswith("Error:")][0].startswith("Error: down: ")
    for name in ("alpha", "beta"):
        folder = out / name / iso
        assert sorted(p.name for p in folder.glob("*.summary.json")) == [
            "capacity.summary.json", "handoff.summary.json", "slow_queries.summary.json"]
        assert f"{name}: week {iso}: 3 of 3 reports written" in stdout
    assert not (out / "down").exists()
