"""The README's first command: `vhdiag demo` on an embedded server it starts itself."""
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from vhdiag import demo, demo_week
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


def test_demo_replays_a_week_and_writes_every_report_with_what_it_planted(data, tmp_path):
    out = io.StringIO()
    reports = tmp_path / "reports"
    assert demo.run(data_dir=str(data), out=out, reports_dir=str(reports)) == 0
    text = out.getvalue()
    assert "created database vendhub" in text
    iso = re.search(r"replaying ISO week (\d{4}-W\d{2})", text).group(1)
    assert f"snapshot 42 of 42" in text and "[5/5] a morning check" in text
    # The frames: the settlement report over 1000 ms, the duplicate and the unused index.
    slow = text.split("== Slow queries")[1].split("==")[1]
    assert "SELECT pg_sleep($2), count(*) FROM refill_tasks WHERE status = $1" in slow
    assert "sales_sold_at_idx1" in text and "products_name_idx" in text
    # The simulated Thursday morning check fails on Wednesday afternoon's incident; the others do not.
    checks = dict(re.findall(r"morning check (\w{3}) \d\d \w{3} 09:00: .* (\d+) fail", text))
    assert checks["Thu"] != "0" and checks["Mon"] == checks["Tue"] == checks["Wed"] == "0"
    # Every report of the week, the post-mortem and the index, each marked as demo data.
    folder = reports / "demo_vendhub" / iso
    assert sorted(p.name for p in folder.glob("*.html")) == ["capacity.html", "handoff.html", "slow_queries.html"]
    postmortem = next(reports.glob("demo_vendhub/*/postmortem.html"))
    for page in [*folder.glob("*.html"), postmortem, reports / "index.html"]:
        assert "Demo data" in page.read_text(), page
    assert f"Open {reports.resolve() / 'index.html'}" in text
    # The handoff lists the planted incident, settings change and pending index.
    handoff = json.loads((folder / "handoff.summary.json").read_text())
    titles = " | ".join(f["title"] for f in handoff["findings"])
    assert "work_mem" in titles
    assert "public.sales (machine_id" in titles
    breach = [f for f in handoff["findings"] if f["severity"] == "critical" and "db_connections" in f["title"]]
    assert breach and "14:05" in breach[0]["title"]
    assert any(f["title"].startswith("Post-mortem: ") for f in handoff["findings"])   # the week's post-mortem
    # The post-mortem found the incident (42 minutes from 14:05) and its probable cause.
    pm = [f["title"] for f in json.loads(postmortem.with_name("postmortem.summary.json").read_text())["findings"]]
    assert "Error rate over its critical threshold for 42 min" in pm
    assert "Hypothesis 1: connection pool exhaustion" in pm
    assert postmortem.with_name("postmortem.md").exists()
    # A second run reuses the cluster and starts its history afresh (safe to run twice).
    out = io.StringIO()
    assert demo.run(data_dir=str(data), out=out, report=False) == 0
    assert "reused database vendhub" in out.getvalue()
    from vhdiag.history import History
    with History(str(data / "history.sqlite")) as history:
        assert len(history.snapshots(demo.DEMO_TARGET)) == 42


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
