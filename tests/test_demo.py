"""The README's first command: `vhdiag demo` on an embedded server it starts itself."""
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from vhdiag import demo
from vhdiag.errors import VhdiagError
from vhdiag.binaries import embedded_bin_dir


from vhdiag.server import LocalServer


@pytest.fixture
def data():
    """A directory the unprivileged server user can enter (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="vhdiag-demo-test-"))
    base.chmod(0o755)
    yield base / "demo"
    LocalServer(embedded_bin_dir(), base / "demo" / "pg", tcp=False).stop() if (base / "demo" / "pg").exists() else None
    shutil.rmtree(base, ignore_errors=True)


def test_demo_prints_the_planted_problems_and_writes_the_report(data, tmp_path):
    out = io.StringIO()
    assert demo.run(data_dir=str(data), out=out, reports_dir=str(tmp_path / "reports")) == 0
    text = out.getvalue()
    assert "(created database vendhub)" in text
    assert "2000 x product lookup" in text
    # The frames: the settlement report over 1000 ms, the duplicate and the unused index.
    slow = text.split("== Slow queries")[1].split("==")[1]
    assert "SELECT pg_sleep($2), count(*) FROM refill_tasks WHERE status = $1" in slow
    assert "sales_sold_at_idx1" in text and "products_name_idx" in text
    # The report found what the demo planted.
    assert "[warning] Missing index: public.sales (machine_id, sold_at)" in text
    assert "[warning] Slow query: SELECT pg_sleep($2), count(*) FROM refill_tasks" in text
    html = next((tmp_path / "reports").glob("demo_vendhub/*/slow_queries.html"))
    assert "refill_tasks" in html.read_text()
    # A second run reuses the cluster and the database.
    out = io.StringIO()
    assert demo.run(data_dir=str(data), out=out, report=False) == 0
    assert "(reused database vendhub)" in out.getvalue()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to an unprivileged user")
def test_unreachable_data_directory_is_one_clear_error(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(VhdiagError) as err:
        LocalServer(embedded_bin_dir(), private / "pg").start()
    assert str(err.value) == (f"PostgreSQL runs as the unprivileged user vhdiag-pg (we are root), which cannot "
                              f"reach {private}: choose a data directory whose parents it can enter "
                              "(e.g. under /var/lib or /tmp), or chmod o+x them")


def test_demo_stop_finds_the_demo_it_left_running(data, monkeypatch, capsys):
    """`vhdiag demo --stop` without --data-dir: the demo in the default data directory, or the one
    --keep-running left elsewhere (its state file); nothing running says so and succeeds."""
    from vhdiag.cli import main
    default = data.parent / "default" / "demo"
    monkeypatch.setattr(demo, "default_data_dir", lambda: default)
    assert main(["demo", "--stop"]) == 0
    assert capsys.readouterr().out == "no demo server is running\n"
    # Left running from another --data-dir: found through the state file, which then goes.
    server = demo.start_server(data)
    demo.remember(server)
    assert demo.state_file() == default.parent / "demo-running.json" and demo.state_file().exists()
    assert main(["demo", "--stop"]) == 0
    assert capsys.readouterr().out == f"demo server in {data / 'pg'} stopped\n"
    assert not server.running() and not demo.state_file().exists()
    assert main(["demo", "--stop"]) == 0
    assert capsys.readouterr().out == "no demo server is running\n"
    # In the default data directory, with no state file.
    monkeypatch.setattr(demo, "default_data_dir", lambda: data)
    server.start().detach()
    assert main(["demo", "--stop"]) == 0
    assert capsys.readouterr().out == f"demo server in {data / 'pg'} stopped\n"
    assert not server.running()
