"""vhdiag.server as root: which binaries it trusts, and which process it believes is its server.

No test here starts a server of its own: the binaries are tiny shell scripts, the processes
are this pytest process and the harness's running servers.
"""
import hashlib
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from vhdiag import binaries as server_mod  # where binaries and the service account come from
from vhdiag.errors import VhdiagError
from vhdiag.binaries import embedded_bin_dir

from vhdiag.server import LocalServer

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root copies binaries for the service user")

GENUINE = "#!/bin/sh\necho 'postgres (PostgreSQL) 18.1'\n"
PLANTED = "#!/bin/sh\necho 'postgres (PostgreSQL) 99.1'  # planted\n"
NOBODY = 65534


@pytest.fixture
def scratch():
    """A root-owned 0755 directory under /tmp (its parent, /tmp, is root-owned and sticky)."""
    path = Path(tempfile.mkdtemp(prefix="vhdiag-server-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def install(scratch, monkeypatch):
    """A fake install the service user cannot reach (it sits in a 0700 directory), and the
    cache redirected into the scratch directory."""
    private = scratch / "private"
    private.mkdir(mode=0o700)
    bin_dir = private / "pginstall" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "postgres").write_text(GENUINE)
    (bin_dir / "postgres").chmod(0o755)
    (private / "pginstall" / "lib").mkdir()
    (private / "pginstall" / "lib" / "libpq.so.5.18").write_text("not really a library\n")
    (private / "pginstall" / "lib" / "libpq.so.5").symlink_to("libpq.so.5.18")
    monkeypatch.setattr(server_mod, "CACHE_ROOT", scratch / "cache", raising=False)
    return bin_dir


def _plant(target: Path, *, owner: int = 0, dir_mode: int = 0o755, file_owner: int = 0,
           file_mode: int = 0o755) -> None:
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "postgres").write_text(PLANTED)
    (target / "bin" / "postgres").chmod(file_mode)
    os.chown(target / "bin" / "postgres", file_owner, file_owner)
    (target / "bin").chmod(0o755)
    target.chmod(dir_mode)
    os.chown(target, owner, owner)


def _assert_genuine_root_copy(result: Path, target: Path) -> None:
    assert result == target / "bin"
    assert (target / "bin" / "postgres").read_text() == GENUINE
    for path in (target, target / "bin", target / "bin" / "postgres", target / "lib" / "libpq.so.5.18"):
        st = os.lstat(path)
        assert st.st_uid == 0 and not st.st_mode & 0o022, path
    assert os.readlink(target / "lib" / "libpq.so.5") == "libpq.so.5.18"
    assert oct(stat.S_IMODE(os.stat(target.parent).st_mode)) == "0o755"
    # No staging directory left behind.
    assert [p.name for p in target.parent.iterdir()] == [target.name]


@as_root
@pytest.mark.parametrize("plant", [
    pytest.param(dict(owner=NOBODY), id="dir-owned-by-another-user"),
    pytest.param(dict(dir_mode=0o777), id="dir-world-writable"),
    pytest.param(dict(file_owner=NOBODY), id="binary-owned-by-another-user"),
    pytest.param(dict(file_mode=0o777), id="binary-world-writable"),
])
def test_untrusted_cached_copy_is_rebuilt(install, plant):
    account = server_mod.service_account()
    assert not server_mod._usable_by(account, install)
    root = server_mod._cache_root()
    target = server_mod.cached_install_dir(install.parent)
    assert target.parent == root
    _plant(target, **plant)
    result = server_mod.reachable_bin_dir(install, account)
    _assert_genuine_root_copy(result, target)


@as_root
def test_predictable_tmp_copy_is_never_run(install):
    """The /tmp path earlier versions cached the copy in: anyone could have created it first."""
    key = hashlib.sha1(str(install.parent.resolve()).encode()).hexdigest()[:12]
    legacy = Path(tempfile.gettempdir()) / f"vhdiag-pginstall-{key}"
    _plant(legacy, owner=NOBODY, dir_mode=0o777, file_owner=NOBODY, file_mode=0o777)
    try:
        result = server_mod.reachable_bin_dir(install, server_mod.service_account())
        assert legacy not in (result, *result.parents)
        assert (result / "postgres").read_text() == GENUINE
    finally:
        shutil.rmtree(legacy, ignore_errors=True)


@as_root
def test_cached_copy_is_built_once_then_reused(install):
    account = server_mod.service_account()
    first = server_mod.reachable_bin_dir(install, account)
    target = server_mod.cached_install_dir(install.parent)
    _assert_genuine_root_copy(first, target)
    inode = os.stat(first / "postgres").st_ino
    assert server_mod.reachable_bin_dir(install, account) == first
    assert os.stat(first / "postgres").st_ino == inode


@as_root
def test_cache_root_writable_by_others_is_refused(install, scratch):
    cache = scratch / "cache"
    cache.mkdir(mode=0o755)
    os.chown(cache, NOBODY, NOBODY)
    with pytest.raises(VhdiagError) as err:
        server_mod.reachable_bin_dir(install, server_mod.service_account())
    assert str(err.value) == (f"{cache} is not safe to run PostgreSQL binaries from as root (it or a parent "
                              "is not owned by root, or is writable by group or others): remove it, or "
                              f"chown root:root {cache} && chmod 755 {cache}")
    assert list(cache.iterdir()) == []


@as_root
def test_version_probe_runs_as_the_service_account(scratch):
    bin_dir = scratch / "bin"
    bin_dir.mkdir()
    # Reports the uid it ran as in place of the major version.
    (bin_dir / "postgres").write_text("#!/bin/sh\necho \"postgres (PostgreSQL) $(id -u).0\"\n")
    (bin_dir / "postgres").chmod(0o755)
    account = server_mod.service_account()
    assert account.pw_uid != 0
    assert server_mod.bin_major(bin_dir, account) == account.pw_uid


# -- postmaster.pid naming a process that is not our server ----------------------------------
def _stale_pid_file(data_dir: Path, pid: int, port: int = 54329) -> None:
    data_dir.mkdir(mode=0o700, exist_ok=True)
    (data_dir / "PG_VERSION").write_text("18\n")
    (data_dir / "postmaster.pid").write_text(
        f"{pid}\n{data_dir}\n{int(time.time())}\n{port}\n{data_dir}\n127.0.0.1\n  5432001     0\nready   \n")


def test_stale_pid_of_an_unrelated_process_is_not_running(scratch):
    """After a reboot the PID in a stale postmaster.pid may be anyone's: here, pytest's own."""
    data_dir = scratch / "pg"
    _stale_pid_file(data_dir, os.getpid())
    server = LocalServer(embedded_bin_dir(), data_dir)
    assert not server.running()
    assert server.port != 54329  # the stale file's port is not taken for a live cluster's
    server.stop()                # must neither signal us nor run pg_ctl against our PID
    server.stop("immediate")
    assert (data_dir / "postmaster.pid").exists()


def test_stale_pid_of_another_clusters_postmaster_is_not_running(pg, scratch):
    """A postgres process, but serving another data directory (e.g. a copied data dir)."""
    other = pg.server.postmaster_pid()
    data_dir = scratch / "copy"
    _stale_pid_file(data_dir, other, pg.server.port)
    server = LocalServer(pg.server.bin_dir, data_dir)
    assert not server.running()
    server.stop("immediate")
    assert pg.server.running() and pg.server.postmaster_pid() == other
    with psycopg.connect(pg.dsn(), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_own_running_server_is_recognised(pg):
    """The same data directory, seen afresh (as vhdiag demo --stop does): running, same port."""
    again = LocalServer(pg.server.bin_dir, pg.server.data_dir)
    assert again.running()
    assert again.port == pg.server.port


@as_root
def test_a_wheel_installed_where_the_service_user_cannot_reach_still_runs(scratch, monkeypatch):
    """The real wheel, laid out as pip lays it out, inside a 0700 directory (as a venv under
    /root is): the copy must carry the libraries auditwheel vendored beside the package."""
    monkeypatch.setattr(server_mod, "CACHE_ROOT", scratch / "cache", raising=False)
    site = scratch / "private" / "site-packages"
    site.mkdir(parents=True)
    (scratch / "private").chmod(0o700)
    wheel_bin = embedded_bin_dir()
    package = wheel_bin.parent.parent
    shutil.copytree(wheel_bin.parent, site / package.name / "pginstall", symlinks=True)
    shutil.copytree(package.parent / f"{package.name}.libs", site / f"{package.name}.libs", symlinks=True)
    data = scratch / "data"
    data.mkdir(mode=0o755)
    srv = LocalServer(site / package.name / "pginstall" / "bin", data / "pg").start()
    try:
        assert srv.bin_dir.parent.parent == (scratch / "cache").resolve()
        with srv.admin() as conn:
            assert conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0] == 18
    finally:
        srv.destroy()
