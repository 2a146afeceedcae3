"""The default target name: ``host:port/dbname``, a Unix socket as ``local``, one rule for
snapshot, check and report; stores written with the old socket names are still read."""
import pytest

import vhdiag
from vhdiag.history import History
from vhdiag.history.store import default_target_name
from vhdiag.reports.data import open_inputs, resolve_target_name

import workload


def test_default_name_is_short_for_a_socket_and_host_port_db_over_tcp(pg):
    with vhdiag.connect(pg.dsn(via="socket")) as socket_target, vhdiag.connect(pg.dsn()) as tcp_target:
        socket_target.capabilities
        assert default_target_name(socket_target) == f"local:{pg.server.port}/{workload.DB}"
        assert default_target_name(tcp_target) == f"127.0.0.1:{pg.server.port}/{workload.DB}"
        # The report's rule is the same function.
        assert resolve_target_name(socket_target) == f"local:{pg.server.port}/{workload.DB}"
        assert resolve_target_name(socket_target, "given") == "given"


def test_check_names_an_unreachable_target_as_snapshot_would():
    from vhdiag.checks import _default_name
    # No user in the name: the same database seen by two roles is one target.
    assert _default_name(None, "postgresql://monitor@/shop?host=/run/postgresql&port=5433",
                         "x") == "local:5433/shop"
    assert _default_name(None, "host=db1 port=6432 dbname=shop user=monitor", "x") == "db1:6432/shop"


def test_snapshot_stores_the_short_name(pg, tmp_path):
    with vhdiag.connect(pg.dsn(via="socket")) as target, History(str(tmp_path / "h.sqlite")) as history:
        history.snapshot(target)
        assert list(history.targets()["name"]) == [f"local:{pg.server.port}/{workload.DB}"]


def test_store_with_the_old_socket_name_is_read_and_renamed_on_write(pg, tmp_path):
    url = str(tmp_path / "h.sqlite")
    old = f"[socket {pg.server.socket_dir}]:{pg.server.port}/{workload.DB}"   # what vhdiag wrote before
    short = f"local:{pg.server.port}/{workload.DB}"
    with vhdiag.connect(pg.dsn(via="socket")) as target, History(url) as history:
        history.snapshot(target, old)
        # Reads find it by the short name, and change nothing.
        assert len(history.snapshots(target=short)) == 1
        assert history.statements(target=short).columns[0] == "queryid"
        assert list(history.targets()["name"]) == [old]
        inputs = open_inputs(pg.dsn(via="socket"), url)
        assert (inputs.target_name, inputs.has_history) == (short, True)
        inputs.close()
        inputs = open_inputs(pg.dsn(via="socket"), url, target_name=short)
        assert len(inputs.snapshots) == 1
        inputs.close()
        # The next snapshot under the default name continues that history, under the short name.
        history.snapshot(target)
        assert list(history.targets()["name"]) == [short]
        assert len(history.snapshots(target=short)) == 2
        # An old name still given explicitly (a cron line) finds it too.
        assert len(history.snapshots(target=old)) == 2


def test_two_old_names_with_one_short_form_are_not_guessed(pg, tmp_path):
    with vhdiag.connect(pg.dsn(via="socket")) as target, History(str(tmp_path / "h.sqlite")) as history:
        history.snapshot(target, f"[socket /tmp]:{pg.server.port}/{workload.DB}")
        history.snapshot(target, f"[socket /run/postgresql]:{pg.server.port}/{workload.DB}")
        with pytest.raises(vhdiag.errors.VhdiagError, match="no target named 'local:"):
            history.snapshots(target=f"local:{pg.server.port}/{workload.DB}")
