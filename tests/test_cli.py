"""The command line: thin commands, `Error: ...` lines, no tracebacks, no passwords."""
import json
import subprocess
import sys

import pytest

from vhdiag import cli

import workload


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_tables_json(pg, capsys):
    code, out, err = run_cli(capsys, "show", "tables", "--dsn", pg.dsn(), "--format", "json")
    assert code == 0, err
    rows = {r["table"]: r for r in json.loads(out)}
    assert rows["orders"]["n_live_tup"] == workload.ORDERS_ROWS
    assert rows["machine_events"]["n_dead_tup"] == workload.EVENTS_DELETED
    assert pg.server.password not in out + err


def test_show_statements_table_and_csv(pg, capsys):
    code, out, err = run_cli(capsys, "show", "statements", "--dsn", pg.dsn(), "--limit", "1000")
    assert code == 0, err
    assert "orders WHERE customer_id = $1" in out
    code, out, err = run_cli(capsys, "show", "statements", "--dsn", pg.dsn(), "--format", "csv",
                             "--columns", "query,calls")
    assert code == 0, err
    assert out.splitlines()[0] == "query,calls"
    assert f"{workload.SEQ_QUERY},{workload.SEQ_QUERY_CALLS}" in out.splitlines()


def test_dsn_from_environment(pg, capsys, monkeypatch):
    monkeypatch.setenv("VHDIAG_DSN", pg.dsn())
    code, out, err = run_cli(capsys, "show", "indexes", "--format", "csv", "--columns", "index,unused")
    assert code == 0, err
    assert f"{workload.UNUSED_INDEX},True" in out.splitlines()


def test_unknown_column_is_one_line(pg, capsys):
    code, out, err = run_cli(capsys, "show", "tables", "--dsn", pg.dsn(), "--columns", "nope")
    assert code == 1
    assert err.startswith("Error: unknown column 'nope' for tables: choose from schema, table, ")
    assert err.count("\n") == 1


def test_error_line_and_exit_code_without_traceback(pg):
    wrong = "Wrong-Pass-For-Cli-7"
    proc = subprocess.run([sys.executable, "-m", "vhdiag", "-v", "show", "tables", "--dsn", pg.dsn(password=wrong)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (f"Error: authentication failed for postgres@127.0.0.1:{pg.server.port}/{workload.DB}: "
                           "check the user and password (in the DSN, PGPASSWORD or ~/.pgpass) and pg_hba.conf\n")
    assert wrong not in proc.stderr


def test_missing_extension_through_cli(pg, capsys):
    code, out, err = run_cli(capsys, "show", "statements", "--dsn", pg.dsn(workload.NOPGSS_DB))
    assert (code, out) == (1, "")
    assert err == (f"Error: pg_stat_statements is not installed in database {workload.NOPGSS_DB}: "
                   "run CREATE EXTENSION pg_stat_statements; as a superuser\n")


def test_doctor_superuser(pg, capsys):
    code, out, err = run_cli(capsys, "doctor", "--dsn", pg.dsn())
    assert code == 0, err
    assert "[ok  ] pg_stat_statements installed" in out
    assert "[ok  ] pg_stat_statements preloaded" in out
    assert "[ok  ] collect statements:" in out
    assert "MISS" not in out
    assert pg.server.password not in out


def test_doctor_low_privilege_names_the_grant(pg, capsys):
    dsn = pg.dsn(user=workload.LOWPRIV_USER, password=workload.LOWPRIV_PASSWORD)
    code, out, err = run_cli(capsys, "doctor", "--dsn", dsn)
    assert code == 0, err
    assert "[MISS] other roles' query text:" in out
    assert f"fix: GRANT pg_read_all_stats TO {workload.LOWPRIV_USER};" in out
    assert workload.LOWPRIV_PASSWORD not in out + err


def test_doctor_missing_extension(pg, capsys):
    code, out, err = run_cli(capsys, "doctor", "--dsn", pg.dsn(workload.NOPGSS_DB))
    assert code == 0, err
    assert "[MISS] pg_stat_statements installed: not installed in database nopgss" in out
    assert "fix: CREATE EXTENSION pg_stat_statements;" in out


@pytest.mark.parametrize("command", ["show", "doctor", "demo"])
def test_every_command_has_an_example(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert "Example:" in out and f"vhdiag {command}" in out


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["show", "nonsense"])
    assert exit_.value.code == 2
