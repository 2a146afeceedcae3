"""The scheduler examples under deploy/ (issue 12): the systemd units pass `systemd-analyze
verify`, the CronJob manifest has the fields Kubernetes requires, the Airflow DAG builds a task
per target; and every vhdiag command line in them is one vhdiag's own parser accepts."""
import datetime as dt
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path

import jinja2
import pytest
import yaml

from vhdiag import cli

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
CRON_FIELD = r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$"


def _parses(argv: list[str]) -> None:
    """vhdiag's parser takes the command line (argparse exits 2 on anything it does not know)."""
    assert argv[0].endswith("vhdiag"), argv
    args = cli.build_parser().parse_args(argv[1:])
    assert args.command in cli.COMMANDS


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: .ci/run installs the systemd package"
    vhdiag_bin = Path(sys.executable).with_name("vhdiag")
    assert vhdiag_bin.exists()
    units = sorted((DEPLOY / "systemd").glob("vhdiag-*"))
    assert {u.suffix for u in units} == {".service", ".timer"} and len(units) == 6
    for unit in units:
        text = unit.read_text()
        # verify checks that ExecStart's binary exists: point it at this checkout's vhdiag
        (tmp_path / unit.name).write_text(text.replace("/opt/vhdiag/bin/vhdiag", str(vhdiag_bin)))
        if unit.suffix == ".service":
            line = next(l for l in text.splitlines() if l.startswith("ExecStart="))
            _parses(shlex.split(line.removeprefix("ExecStart=")))
            assert "UMask=0077" in text                                  # owner-only files
            assert "postgresql://" not in text.replace("# The DSNs come from /etc/vhdiag/env (owner-only: "
                                                       "PROD_DSN=postgresql://...)", "")
        else:
            assert unit.with_suffix(".service").exists()                 # each timer starts its service
    result = subprocess.run([analyze, "verify", "--man=no", *map(str, sorted(tmp_path.iterdir()))],
                            capture_output=True, text=True, timeout=120)
    complaints = [l for l in result.stderr.splitlines() if "vhdiag" in l and "/etc/vhdiag/env" not in l]
    assert result.returncode == 0 and not complaints, result.stderr


def test_systemd_timers_match_the_readme_schedule():
    timers = {u.stem: u.read_text() for u in (DEPLOY / "systemd").glob("*.timer")}
    assert "OnCalendar=*:0/15" in timers["vhdiag-snapshot"]
    assert "OnCalendar=*-*-* 09:00:00 UTC" in timers["vhdiag-check-morning"]
    assert "OnCalendar=Mon *-*-* 06:00:00 UTC" in timers["vhdiag-weekly"]


def test_kubernetes_cronjobs_have_the_required_fields():
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjobs.yaml").read_text()))
    assert [d["metadata"]["name"] for d in docs] == ["vhdiag-snapshot", "vhdiag-weekly"]
    for doc in docs:
        assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "CronJob"
        spec = doc["spec"]
        fields = spec["schedule"].split()
        assert len(fields) == 5 and all(__import__("re").match(CRON_FIELD, f) for f in fields), spec["schedule"]
        assert spec["concurrencyPolicy"] in {"Allow", "Forbid", "Replace"}
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] in {"Never", "OnFailure"}          # the only two a Job accepts
        assert pod["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            assert container["name"] and container["image"]
            _parses(container["command"])
            assert {"secretRef": {"name": "vhdiag"}} in container["envFrom"]   # DSNs from a Secret
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes
            assert "postgresql://" not in yaml.safe_dump(container)


def test_airflow_dag_builds_one_task_per_target_with_commands_vhdiag_accepts(tmp_path, monkeypatch):
    targets = tmp_path / "targets.toml"
    targets.write_text('[targets.prod]\ndsn = "env:PROD_DSN"\n[targets."eu-1.staging"]\ndsn = "env:EU1"\n')
    monkeypatch.setenv("VHDIAG_TARGETS", str(targets))
    tasks, dags = [], []

    class DAG:  # what the DAG file uses of Airflow's DAG: a context manager taking keywords
        def __init__(self, **kw):
            self.kw = kw
            dags.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def bash_operator(**kw):
        tasks.append((dags[-1].kw["dag_id"], kw))

    # Airflow itself is not installed in CI (hundreds of packages): the file runs against the
    # two names it imports, so its own code (target listing, commands, templates) is exercised.
    airflow = types.ModuleType("airflow")
    airflow.DAG = DAG
    operators = types.ModuleType("airflow.operators.bash")
    operators.BashOperator = bash_operator
    for name, module in {"airflow": airflow, "airflow.operators": types.ModuleType("airflow.operators"),
                         "airflow.operators.bash": operators}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "airflow.providers", None)   # Airflow 2: the fallback import
    source = (DEPLOY / "airflow" / "vhdiag_dag.py").read_text()
    exec(compile(source, "vhdiag_dag.py", "exec"), {"__name__": "vhdiag_dag"})

    assert [d.kw["dag_id"] for d in dags] == ["vhdiag_snapshot", "vhdiag_weekly"]
    assert [d.kw["schedule"] for d in dags] == ["*/15 * * * *", "0 6 * * 1"]
    assert [(dag, kw["task_id"]) for dag, kw in tasks] == [
        ("vhdiag_snapshot", "snapshot_prod"), ("vhdiag_snapshot", "snapshot_eu-1_staging"),
        ("vhdiag_weekly", "weekly_prod"), ("vhdiag_weekly", "weekly_eu-1_staging")]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    run_end = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.timezone.utc)
    for _dag, kw in tasks:
        command = env.from_string(kw["bash_command"]).render(
            params=kw["params"], data_interval_end=run_end, macros=types.SimpleNamespace(timedelta=dt.timedelta))
        argv = shlex.split(command)
        _parses(argv)
        assert argv[argv.index("--only") + 1] == kw["params"]["name"]
        if "weekly" in argv:
            assert argv[argv.index("--week") + 1] == "2026-W48"      # the week before the run's date


@pytest.mark.parametrize("example", ["systemd", "kubernetes", "airflow"])
def test_the_readme_points_at_each_example(example):
    readme = (DEPLOY.parent / "README.md").read_text()
    assert f"deploy/{example}/" in readme
