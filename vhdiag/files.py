"""Files vhdiag writes are the owner's alone: 0600 files, 0700 directories.

Statement text is sensitive (it names tables, columns and sometimes values), so the history
store, reports and logs are never readable by other users whatever the caller's umask. Writes
are atomic: a temporary file beside the target, renamed into place, so a killed or failed
write never leaves a truncated file where a good one was.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
UMASK = 0o077


def private_dir(path, mode: int = DIR_MODE) -> Path:
    """``path`` and its missing parents, created 0700 (or ``mode``); an existing folder is left
    as it is (``--out /srv/reports`` may be shared on purpose)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    for created in missing:  # mkdir's mode is filtered by the umask; say it again
        with contextlib.suppress(OSError):
            created.chmod(mode)
    return path


def write_private(path, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` as a 0600 file, atomically (temporary file, then rename)."""
    path = Path(path)
    raw = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def make_private(path) -> None:
    """chmod 0600 (a file) or 0700 (a folder) when it exists and is ours."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if path.exists() and path.stat().st_uid == os.geteuid():
            path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)


@contextlib.contextmanager
def private_umask():
    """Every file created meanwhile (by this process and the processes it starts, such as a
    report's kernel) is 0600 at most."""
    old = os.umask(UMASK)
    try:
        yield
    finally:
        os.umask(old)
