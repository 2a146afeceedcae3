"""Local PostgreSQL servers that vhdiag starts itself: the embedded demo and the test harness.

Which binaries, and the unprivileged account that runs them when we are root, come from
``vhdiag.binaries``; this module initialises, configures, starts and stops a cluster.
"""
from __future__ import annotations

import atexit
import contextlib
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

from .binaries import as_account, bin_major, library_env, reachable_bin_dir, service_account
from .errors import VhdiagError

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




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
        self._account = service_account()
        self.bin_dir = reachable_bin_dir(Path(self.bin_dir), self._account)
        self.data_dir = Path(self.data_dir)
        self.major = bin_major(self.bin_dir, self._account)
        if not self.port:
            # A cluster left running (vhdiag demo --keep-running) keeps its port: postmaster.pid's 4th line.
            self.port = self._running_port() or free_port()

    # -- running the binaries -------------------------------------------------------------
    def _run(self, exe: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = as_account(self._account)
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
