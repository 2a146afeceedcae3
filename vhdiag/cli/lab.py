"""`vhdiag lab`: JupyterLab in a working folder, with explore.ipynb and the database ready.

The design card's first user is the DBA exploring interactively: the README's "Exploring in
JupyterLab" starts here. The connection never enters the notebook: the kernel inherits
``VHDIAG_DSN`` (and ``VHDIAG_HISTORY``) from this process, and explore.ipynb's parameters say
``env:VHDIAG_DSN``. JupyterLab listens on 127.0.0.1 only, with a token of its own (passed in the
environment, not on the command line that ``ps`` shows); its log goes to ``jupyterlab.log`` in
the folder, and this command prints the URL to open once the server answers. A user's edited
explore.ipynb is never overwritten. As root, JupyterLab refuses to start without
``--allow-root``: it is added, and said.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..display import echo
from ..errors import ConfigError, VhdiagError
from .common import history_argument

NAME = "lab"
NOTEBOOK = "explore.ipynb"


def register(sub) -> None:
    # The shipped defaults for the help text: a broken ./vhdiag.toml must not break building the
    # parser of every command; run() reads the user's settings, where an error is one line.
    from ..config import defaults
    lab = defaults()["lab"]
    p = sub.add_parser(
        "lab", help="start JupyterLab with explore.ipynb, connected to the database",
        description="Start JupyterLab in a working folder with notebooks/explore.ipynb copied there (a guided "
                    "tour: top statements, tables, indexes, locks, a snapshot, compare, explain, plots). The DSN "
                    "reaches the kernel as the environment variable VHDIAG_DSN, never the notebook.",
        epilog="Example:\n  vhdiag lab --dsn env:DATABASE_URL --history /var/lib/vhdiag/history.sqlite\n"
               "  vhdiag lab --no-browser --port 8899     # then open the URL it prints",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--dsn", metavar="TARGET", default=None,
                   help="DSN or env:NAME (default: $VHDIAG_DSN, then $DATABASE_URL)")
    history_argument(p)
    p.add_argument("--target-name", default=None, metavar="NAME",
                   help="the database's name in the store (default: host:port/dbname, as vhdiag snapshot names it)")
    p.add_argument("--dir", default=None, metavar="DIR",
                   help=f"working folder for the notebooks (default: ./{lab['dir']}, created 0700)")
    p.add_argument("--port", type=int, default=None, help=f"port on 127.0.0.1 (default [lab] port, {lab['port']})")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; open the printed URL")


def _dsn_environment(dsn: str | None) -> tuple[dict, str]:
    """(``VHDIAG_DSN`` for the kernel, where it came from, without its password)."""
    from .. import dsn as dsn_mod
    if dsn is None and not any(os.environ.get(v) for v in dsn_mod.DEFAULT_ENV_VARS):
        return {}, "no database yet: give --dsn, or set target in the notebook's first cell"
    resolved = dsn_mod.resolve(dsn)           # a malformed DSN or an unset env:NAME: one line, now
    return {"VHDIAG_DSN": resolved.conninfo}, f"{resolved.display} (as $VHDIAG_DSN in the kernel)"


def copy_notebook(folder: Path) -> tuple[Path, str]:
    """explore.ipynb into ``folder`` unless the user's copy is there: (path, what happened)."""
    from ..files import private_dir, write_private
    from ..reports.registry import builtin_notebooks
    source = builtin_notebooks() / NOTEBOOK
    private_dir(folder)
    dest = folder / NOTEBOOK
    shipped = source.read_bytes()
    if not dest.exists():
        write_private(dest, shipped)
        return dest, f"copied {NOTEBOOK} into {folder}"
    if dest.read_bytes() == shipped:
        return dest, f"{dest} is the shipped {NOTEBOOK}"
    return dest, (f"kept your edited {dest} (not overwritten; the shipped one is {source}: "
                  f"delete or rename yours to get it)")


def _port_free(port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigError(f"port {port} on 127.0.0.1 is in use: give --port another, e.g. --port {port + 1}")


def _answering(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def run(args) -> int:
    from ..config import load_config
    from ..files import private_dir
    from ..history.store import default_url, normalize_url
    if shutil.which("jupyter-lab", path=os.path.dirname(sys.executable)) is None:
        try:
            import jupyterlab  # noqa: F401  (installed as a module but without its script)
        except ImportError:
            raise ConfigError("JupyterLab is not installed: pip install 'vhdiag[notebooks]' (or jupyterlab)")
    settings = load_config()["lab"]
    args.dir = args.dir or settings["dir"]
    args.port = settings["port"] if args.port is None else args.port
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: give a port between 1 and 65535")
    folder = Path(args.dir).expanduser().resolve()
    dsn_env, where = _dsn_environment(args.dsn)
    history = normalize_url(args.history) if args.history else os.environ.get("VHDIAG_HISTORY") or default_url()
    _port_free(args.port)
    notebook, copied = copy_notebook(folder)
    token = secrets.token_hex(24)
    env = {**os.environ, **dsn_env, "VHDIAG_HISTORY": history, "JUPYTER_TOKEN": token}
    if args.target_name:
        env["VHDIAG_TARGET_NAME"] = args.target_name
    cmd = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={args.port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={folder}"]
    cmd.append("--no-browser" if args.no_browser else f"--LabApp.default_url=/lab/tree/{NOTEBOOK}")
    echo(f"vhdiag lab: {copied}")
    echo(f"  database: {where}")
    echo(f"  history:  {history}" + (f" (target {args.target_name})" if args.target_name else ""))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
        echo("  running as root: JupyterLab is started with --allow-root (it refuses root otherwise)")
    log_path = private_dir(folder) / "jupyterlab.log"
    with open(log_path, "ab") as log:
        os.chmod(log_path, 0o600)
        # stdin not a terminal: Ctrl-C stops JupyterLab at once instead of asking on stdin.
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{args.port}"
    deadline = time.monotonic() + float(settings["start_timeout_s"])
    try:
        while not _answering(f"{base}/api/status?token={token}"):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise VhdiagError(f"JupyterLab did not start (see {log_path}): {tail[0][:300]}")
            time.sleep(0.3)
        echo(f"  open:     {base}/lab/tree/{notebook.name}?token={token}")
        echo(f"  log:      {log_path}; Ctrl-C stops JupyterLab")
        sys.stdout.flush()
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        echo("vhdiag lab: stopped")
        return 0
