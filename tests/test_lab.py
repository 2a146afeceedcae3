"""`vhdiag lab` (issue 14, item 3): JupyterLab starts in its folder with explore.ipynb, answers on
the URL it prints, and holds the DSN only in the kernel's environment.

The DSN here carries a password and points nowhere (lab does not connect; the notebook does):
it must reach neither the folder's files nor what the command prints.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from vhdiag import cli
from vhdiag.cli.lab import copy_notebook

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-lab-pw"
DSN = f"postgresql://monitor:{SECRET}@127.0.0.1:1/shop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines_of(proc) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            q.put(line)
        q.put(None)
    threading.Thread(target=read, daemon=True).start()
    return q


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def test_lab_starts_answers_and_is_stopped(tmp_path):
    folder, port = tmp_path / "lab", free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime")}
    proc = subprocess.Popen([sys.executable, "-m", "vhdiag", "lab", "--no-browser", "--port", str(port),
                             "--dir", str(folder), "--dsn", DSN, "--history", str(tmp_path / "h.sqlite"),
                             "--target-name", "shop"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    out, url = [], None
    try:
        q = lines_of(proc)
        while url is None:
            line = q.get(timeout=120)          # JupyterLab's start; the command's own bound is 60 s
            assert line is not None, "".join(out)
            out.append(line)
            if line.strip().startswith("open:"):
                url = line.split("open:", 1)[1].strip()
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/explore.ipynb?token=")
        status, page = get(url)
        assert status == 200 and b"JupyterLab" in page
        token = url.split("token=", 1)[1]
        status, body = get(f"http://127.0.0.1:{port}/api/contents/explore.ipynb?token={token}")
        shipped = json.loads((ROOT / "notebooks" / "explore.ipynb").read_text())
        assert status == 200 and json.loads(body)["content"]["cells"][1]["source"] == \
            "".join(shipped["cells"][1]["source"])
        # The kernels JupyterLab starts inherit its environment: the DSN is there, by name.
        (child,) = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        environ = dict(v.split("=", 1) for v in Path(f"/proc/{child}/environ").read_text().split("\0") if "=" in v)
        assert (environ["VHDIAG_DSN"], environ["VHDIAG_TARGET_NAME"]) == (DSN, "shop")
        assert environ["VHDIAG_HISTORY"] == f"sqlite:///{tmp_path / 'h.sqlite'}"
        with pytest.raises(urllib.error.HTTPError) as err:      # the token is required
            get(f"http://127.0.0.1:{port}/api/contents/explore.ipynb")
        assert err.value.code == 403
    finally:
        os.killpg(proc.pid, signal.SIGTERM)                      # vhdiag and JupyterLab: one group
        proc.wait(timeout=30)
    printed = "".join(out)
    assert printed.startswith(f"vhdiag lab: copied explore.ipynb into {folder}\n")
    assert "  database: monitor@127.0.0.1:1/shop (as $VHDIAG_DSN in the kernel)\n" in printed
    assert f"  history:  sqlite:///{tmp_path / 'h.sqlite'} (target shop)\n" in printed
    if os.geteuid() == 0:
        assert "running as root: JupyterLab is started with --allow-root" in printed
    assert SECRET not in printed
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct((folder / "explore.ipynb").stat().st_mode & 0o777) == "0o600"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:                       # stopped: nothing answers on the port
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.2)
    else:
        pytest.fail(f"JupyterLab still answers on {port}")


def test_an_edited_copy_is_kept(tmp_path):
    path, said = copy_notebook(tmp_path)
    assert said == f"copied explore.ipynb into {tmp_path}"
    assert copy_notebook(tmp_path)[1] == f"{path} is the shipped explore.ipynb"
    path.write_text(path.read_text().replace("Exploring a database", "My exploration"))
    mine = path.read_bytes()
    _, said = copy_notebook(tmp_path)
    assert said.startswith(f"kept your edited {path} (not overwritten; the shipped one is ")
    assert path.read_bytes() == mine


def test_a_busy_port_and_a_bad_dsn_are_one_line(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(["lab", "--no-browser", "--port", str(port), "--dir", str(tmp_path / "x"), "--dsn", DSN])
    assert (code, capsys.readouterr().err) == (
        1, f"Error: port {port} on 127.0.0.1 is in use: give --port another, e.g. --port {port + 1}\n")
    code = cli.main(["lab", "--no-browser", "--dir", str(tmp_path / "x"), "--dsn", "env:VHDIAG_LAB_UNSET"])
    assert (code, capsys.readouterr().err) == (
        1, "Error: environment variable VHDIAG_LAB_UNSET is not set or empty: "
           "export VHDIAG_LAB_UNSET=postgresql://user@host/db\n")
    assert not (tmp_path / "x").exists()                     # refused before anything was written
