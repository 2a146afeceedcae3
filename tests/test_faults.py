"""Faults produced for real (issue 13, "Robustness tests"), each followed by `vhdiag history check`
passing and no earlier data lost.

- the monitored server stopped (``pg_ctl stop -m immediate``) in the middle of a snapshot;
- Prometheus killed (SIGKILL) between the requests of a split range query;
- the store's disk full (a tmpfs mounted with a size limit; we are root);
- SIGKILL of ``vhdiag report`` in the middle of its run: the previous report and the index stay;
- two reports writing the same period at once: both finish, the folder is whole.

Nothing is mocked: the server, Prometheus, the filesystem and the processes are real; a test
only chooses *when* the fault strikes (a wrapper around one vhdiag function that strikes first).
Under the ``faults`` marker (registered in pyproject.toml); CI runs them.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import vhdiag
import vhdiag.target
from vhdiag import cli
from vhdiag.history import History
from vhdiag.history.check import check

from helpers import ensure_database, eventually
from prometheus_harness import prometheus  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

DB = "faults"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(servers):
    """A PostgreSQL 18 of these tests alone: they stop it."""
    server = servers.extra("faults-pg18")
    ensure_database(server, DB, "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)")
    return server


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(path) -> dict:
    """Every row of every table of the store, to compare before and after a fault."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            names = [n for (n,) in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY 1")]
            return {n: sorted(map(tuple, conn.exec_driver_sql(f'SELECT * FROM "{n}"')), key=repr) for n in names}
    finally:
        engine.dispose()


def assert_sound(path) -> None:
    checked = check(str(path))
    assert checked.sound, checked.lines()


# -- the monitored server stopped during a snapshot ------------------------------------------------
def test_server_stopped_mid_snapshot_stores_nothing_and_keeps_the_store_sound(server, tmp_path, monkeypatch,
                                                                            capsys):
    path = tmp_path / "h.sqlite"
    dsn = server.dsn(DB)
    with vhdiag.connect(dsn) as target, History(str(path)) as history:
        history.snapshot(target, "shop")
        history.snapshot(target, "shop")
    before = rows(path)

    # The table and index sizes are read after the statements: stop the server (immediate: every
    # backend dies at once, as in a crash) just before the first of those queries.
    from vhdiag.collect import _base
    original = _base.query_skipping_locks

    def stop_then_query(*a, **kw):
        if server.running():
            server.stop("immediate")
        return original(*a, **kw)
    monkeypatch.setattr(_base, "query_skipping_locks", stop_then_query)
    try:
        code, out, err = run(capsys, "snapshot", "--dsn", dsn, "--history", path, "--target-name", "shop",
                             "--no-prune")
    finally:
        monkeypatch.undo()
        server.start()
    assert (code, out) == (1, "")
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert rows(path) == before            # nothing half-written, nothing lost
    assert_sound(path)
    # And the next snapshot, after the restart, goes in, marked as after a restart.
    assert run(capsys, "snapshot", "--dsn", dsn, "--history", path, "--target-name", "shop", "--no-prune")[0] == 0
    with History(str(path)) as history:
        snaps = history.snapshots("shop")
    assert len(snaps) == 3 and "restart" in snaps["events"].iloc[-1]
    assert_sound(path)


# -- the store's disk full -------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs (we are root), unmounted after the test."""
    where = tmp_path / "small"
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): mounting needs root "
                    "and CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """A file taking every free byte of ``folder``'s filesystem but ``leave``."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
        if leave:
            os.ftruncate(fd, os.fstat(fd).st_size - leave)
    finally:
        os.close(fd)
    assert shutil.disk_usage(folder).free == leave
    return filler


# Full when the store opens (SQLite cannot make its -shm file), or room to open it but not to write.
@pytest.mark.parametrize("leave", [0, 64 * 1024], ids=["full", "almost-full"])
def test_store_disk_full_is_one_line_and_loses_nothing(server, small_disk, capsys, leave):
    path = small_disk / "h.sqlite"
    dsn = server.dsn(DB)
    args = ["snapshot", "--dsn", dsn, "--history", path, "--target-name", "shop", "--no-prune"]
    assert run(capsys, *args)[0] == 0
    assert run(capsys, *args)[0] == 0
    before = rows(path)
    filler = fill(small_disk, leave)
    code, out, err = run(capsys, *args)
    assert (code, out, err) == (1, "", f"Error: the disk of history store {path} is full: free space there "
                                       "or give --history a path on another disk\n")
    filler.unlink()
    assert rows(path) == before
    assert_sound(path)
    assert run(capsys, *args)[0] == 0
    assert_sound(path)
    assert len(rows(path)["snapshots"]) == 3


# -- reports: SIGKILL in the middle, and two at once ---------------------------------------------------
@pytest.fixture
def reported(server, tmp_path):
    """A store of two snapshots with some work between them, and the fixed window of the runs."""
    path = tmp_path / "h.sqlite"
    dsn = server.dsn(DB)
    with vhdiag.connect(dsn) as target, History(str(path)) as history:
        history.snapshot(target, "shop")
        with server.admin(DB) as conn:
            for i in range(20):
                conn.execute("SELECT count(*) FROM t WHERE v = %s", (str(i),))
        history.snapshot(target, "shop")
    now = time.time()
    window = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (now - 3600, now)]
    return dsn, path, window


def report_command(dsn, store, window, out) -> list[str]:
    return [sys.executable, "-m", "vhdiag", "report", "slow_queries", "--dsn", dsn, "--history", str(store),
            "--target-name", "shop", "--since", window[0], "--until", window[1], "--out", str(out)]


def report_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def finished(out: Path) -> dict:
    """sha256 of every file outside the temporary folders of runs."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and ".partial-" not in p.as_posix()}


def descendants(pid: int) -> list[int]:
    """pid's children, grandchildren ... (the report's kernel is one)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def test_sigkill_mid_report_leaves_the_previous_report_and_the_index(reported, tmp_path):
    dsn, store, window = reported
    out = tmp_path / "reports"
    cmd = report_command(dsn, store, window, out)
    first = subprocess.run(cmd, env=report_env(), capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr
    before = finished(out)
    assert "index.html" in before and any(n.endswith("/slow_queries.html") for n in before), before
    store_rows = rows(store)

    proc = subprocess.Popen(cmd, env=report_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        # The kernel runs once papermill has written the notebook it fills in, in the run's own folder.
        running = eventually(lambda: list(out.glob("shop/.*.partial-*/slow_queries.ipynb")), bool, timeout=120)
        assert running, "the second run never started its notebook"
        time.sleep(0.5)
        victims = [proc.pid, *descendants(proc.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert finished(out) == before                    # every file of the previous run, byte for byte
    assert rows(store) == store_rows
    assert_sound(store)
    # The next run clears the dead run's folder and replaces the report whole.
    again = subprocess.run(cmd, env=report_env(), capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    assert not list(out.glob("shop/.*.partial-*"))
    assert set(finished(out)) == set(before)
    assert_whole(out)


def assert_whole(out: Path) -> None:
    """One period folder holding one complete slow-query report, listed once by the index."""
    folders = [p for p in (out / "shop").iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1, folders
    folder = folders[0]
    assert sorted(p.name for p in folder.iterdir()) == [
        "slow_queries.html", "slow_queries.ipynb", "slow_queries.plans.json", "slow_queries.report.json",
        "slow_queries.summary.json"]
    meta = json.loads((folder / "slow_queries.report.json").read_text())
    assert meta["status"] == "ok"
    summary = json.loads((folder / "slow_queries.summary.json").read_text())
    assert summary["report"] == "slow_queries" and summary["target"] == "shop"
    json.loads((folder / "slow_queries.ipynb").read_text())
    assert (folder / "slow_queries.html").read_text().rstrip().endswith("</html>")
    assert (out / "index.html").read_text().count('href="shop/' + folder.name + '/slow_queries.html"') == 1


def test_two_reports_of_the_same_period_at_once_both_finish_and_the_folder_is_whole(reported, tmp_path):
    dsn, store, window = reported
    out = tmp_path / "reports"
    cmd = report_command(dsn, store, window, out)
    procs = [subprocess.Popen(cmd, env=report_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    # Both finish (the later rename wins, each file whole), or one is refused with one line.
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0 or (proc.returncode == 1 and err.startswith("Error: ")
                                        and err.count("\n") == 1), err
    assert 0 in [p.returncode for p in procs]
    assert not list(out.glob("shop/.*.partial-*"))
    assert not (out / "shop" / ".failed").exists()
    assert_whole(out)
    assert_sound(store)


# -- Prometheus stopped during a range query ----------------------------------------------------------
def test_prometheus_killed_between_the_requests_of_a_range_is_one_line(prometheus, tmp_path, monkeypatch, capsys):
    """A Prometheus of this test alone (on a copy of the planted blocks), SIGKILLed once it has
    answered the first of the four requests seven days at 15 s take."""
    from prometheus_harness import _find, _wait_ready
    from vhdiag.metrics import prometheus as P
    from vhdiag.server import free_port
    data = tmp_path / "data"
    shutil.copytree(prometheus.data_dir, data, ignore=shutil.ignore_patterns("lock", "wal", "chunks_head"))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 15s\n")
    port, log_path = free_port(), tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([_find("prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
                                 "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc, log_path)
        answered = []
        original = P.Prometheus.query_range

        def kill_after_first(self, *a, **kw):
            if answered:
                proc.kill()
                proc.wait(timeout=30)
            answered.append(original(self, *a, **kw))
            return answered[-1]
        monkeypatch.setattr(P.Prometheus, "query_range", kill_after_first)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(prometheus.start))
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(prometheus.end))
        code, out, err = run(capsys, "metrics", url, "--since", since, "--until", until, "--step", "15s",
                             "--query", "cpu_pct=vhdiag_planted_cpu_pct")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(answered) == 1 and proc.returncode == -signal.SIGKILL
    assert (code, out, err) == (1, "", f"Error: cannot reach Prometheus at {url} (connection refused): is it "
                                       "running, and is this its base URL (e.g. http://host:9090)?\n")
