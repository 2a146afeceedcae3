"""vhdiag under Airflow: one task per target of targets.toml, so each target retries, fails and
shows in the grid on its own, and Airflow's own parallelism replaces ``--jobs``.

Drop this file in the DAGs folder of a deployment where ``vhdiag`` is installed on the workers.
The DSNs are environment variables of the workers (or Airflow connections exported as such),
referenced in targets.toml as ``env:NAME``; the history store is a shared PostgreSQL
(``VHDIAG_HISTORY``). Settings: the Airflow Variables ``vhdiag_targets`` (the path of
targets.toml) and ``vhdiag_reports`` (where reports go).
"""
from __future__ import annotations

import os
import tomllib
from datetime import datetime, timedelta

from airflow import DAG

try:                                              # Airflow 3: the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:                               # Airflow 2
    from airflow.operators.bash import BashOperator

TARGETS = os.environ.get("VHDIAG_TARGETS", "/etc/vhdiag/targets.toml")
REPORTS = os.environ.get("VHDIAG_REPORTS", "/srv/vhdiag/reports")


def _target_names(path: str) -> list[str]:
    """Parsed at DAG-load time: a target added to the file becomes a task at the next parse."""
    try:
        with open(path, "rb") as fh:
            return list(tomllib.load(fh).get("targets", {}))
    except FileNotFoundError:
        return []


DEFAULTS = {"owner": "dba", "retries": 1, "retry_delay": timedelta(minutes=2)}

with DAG(
    dag_id="vhdiag_snapshot",
    description="vhdiag snapshot of every target, every 15 minutes",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULTS, "retries": 0, "execution_timeout": timedelta(minutes=10)},
    tags=["vhdiag"],
) as snapshot_dag:
    for name in _target_names(TARGETS):
        BashOperator(
            task_id=f"snapshot_{name.replace(':', '_').replace('.', '_')}",
            bash_command="vhdiag snapshot --targets {{ params.targets }} --only {{ params.name }} --quiet",
            params={"targets": TARGETS, "name": name},
        )

with DAG(
    dag_id="vhdiag_weekly",
    description="vhdiag weekly reports and on-call handoff of the last ISO week, per target",
    schedule="0 6 * * 1",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULTS, "execution_timeout": timedelta(hours=2)},
    tags=["vhdiag"],
) as weekly_dag:
    for name in _target_names(TARGETS):
        BashOperator(
            task_id=f"weekly_{name.replace(':', '_').replace('.', '_')}",
            # The week of the run's logical date: a re-run of last Monday rebuilds that week.
            bash_command=("vhdiag report weekly --targets {{ params.targets }} --only {{ params.name }} "
                          "--week {{ (data_interval_end - macros.timedelta(days=7)).strftime('%G-W%V') }} "
                          "--out {{ params.reports }}"),
            params={"targets": TARGETS, "name": name, "reports": REPORTS},
        )
