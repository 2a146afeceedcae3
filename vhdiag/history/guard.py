"""Is this database a vhdiag history store? Decided before vhdiag writes a byte to it.

``vhdiag history snapshots --history sqlite:///other_app.sqlite`` used to add eleven tables and a
``vhdiag_meta`` row to another application's database, and a read of a missing path left an empty
store behind. The rules now:

- reading commands never create or migrate a store: a missing file or an empty database is
  ``NoStoreError`` ("there is no history store at PATH yet: vhdiag snapshot creates it");
- every command refuses a database with tables that are not vhdiag's, read or write, SQLite or
  PostgreSQL. On PostgreSQL every schema counts (vhdiag wants a database of its own), except
  what extensions own. An SQLite file is looked at through a read-only connection first: the
  store's own connections set ``PRAGMA journal_mode = WAL``, which rewrites the file header;
- a store newer than this vhdiag is refused (upgrade vhdiag); an older one is migrated by
  writing commands only;
- an empty database is initialised by the commands that record something (``snapshot``,
  ``metrics import``); a missing SQLite file is created 0600, in folders created 0700
  (``vhdiag/files.py``): the store holds statement text. SQLite gives its -wal, -shm and
  -journal files the database file's mode.

Messages name the file, or the URL without its password and driver. A full disk says so: SQLite
reports it as "disk I/O error" when it cannot even make its -shm file, which read as a
permissions problem until the message looked at the free space (issue 13).
"""
from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import urllib.parse
from pathlib import Path

import sqlalchemy as sa

from ..errors import ConfigError, VhdiagError
from ..files import FILE_MODE, private_dir
from . import schema as S

READ, WRITE, CREATE = "read", "write", "create"   # what a command may do to the store
SHOWN_TABLES = 10

PG_TABLES = """
SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""
SQLITE_TABLES = ("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                 "AND name NOT LIKE 'sqlite^_%' ESCAPE '^' ORDER BY 1")   # not SQLite's own
VERSION = "SELECT value FROM vhdiag_meta WHERE key = 'schema_version'"


class NoStoreError(VhdiagError):
    """Nothing has been recorded at this place yet (a reader's answer; writers create the store)."""


def sqlite_file(url: str) -> Path | None:
    """The file of an ``sqlite:///PATH`` URL; None for PostgreSQL, in-memory and ``uri=true`` URLs."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def location(url: str) -> str:
    """What messages call the store: the SQLite file, or the URL without password and driver."""
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    parsed = sa.engine.make_url(url)
    bare = sa.engine.URL.create(parsed.get_backend_name(), parsed.username, None, parsed.host, parsed.port,
                                parsed.database, parsed.query)  # URL.set(password=None) keeps the password
    return bare.render_as_string(hide_password=False)


def peek(conn) -> tuple[list[str], int | None]:
    """(tables, schema version or None) through an SQLAlchemy connection; writes nothing."""
    sql = PG_TABLES if conn.dialect.name == "postgresql" else SQLITE_TABLES
    tables = [name for (name,) in conn.exec_driver_sql(sql)]
    version = conn.exec_driver_sql(VERSION).scalar() if "vhdiag_meta" in tables else None
    return tables, _int(version)


def peek_sqlite(path: Path, where: str, timeout_s: float) -> tuple[list[str], int | None]:
    """``peek`` of an existing SQLite file through a read-only connection (``mode=ro``)."""
    uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_s)
        try:
            tables = [name for (name,) in conn.execute(SQLITE_TABLES)]
            version = conn.execute(VERSION).fetchone() if "vhdiag_meta" in tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if disk_full(path, exc):
            raise full(where) from None
        if "not a database" in str(exc):
            raise VhdiagError(f"{where} is not a vhdiag history store (it is not an SQLite database): "
                              "give --history a new file or a vhdiag store") from None
        raise VhdiagError(f"cannot open history store {where}: {exc}: check the permissions of the file and "
                          "its folder, or give --history another path") from None
    return tables, _int(version[0] if version else None)


def _int(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def judge(tables: list[str], version: int | None, where: str, mode: str) -> str:
    """``current``, ``empty`` (create it) or ``older`` (migrate it), or the one-line refusal."""
    if not tables:
        if mode == CREATE:
            return "empty"
        raise NoStoreError(f"there is no history store at {where} yet: vhdiag snapshot creates it")
    if version is not None and version > S.SCHEMA_VERSION:
        raise VhdiagError(f"history store {where} has schema version {version}, newer than this vhdiag's "
                          f"{S.SCHEMA_VERSION}: upgrade vhdiag (pip install -U vhdiag)")
    known = set(S.metadata.tables) | S.RETIRED_TABLES
    foreign = [t for t in tables if t not in known]
    if foreign or version is None:
        shown = foreign or tables
        more = f", and {len(shown) - SHOWN_TABLES} more" if len(shown) > SHOWN_TABLES else ""
        raise VhdiagError(f"{where} is not a vhdiag history store (it has tables: "
                          f"{', '.join(shown[:SHOWN_TABLES])}{more}): give --history a new file or a vhdiag store")
    if version < S.SCHEMA_VERSION:
        if mode == READ:
            raise VhdiagError(f"history store {where} has schema version {version}, older than this vhdiag's "
                              f"{S.SCHEMA_VERSION}: the next vhdiag snapshot upgrades it")
        return "older"
    return "current"


def create_sqlite_file(path: Path) -> None:
    """An empty 0600 file (SQLite would create it 0644 under the usual umask), in folders
    created 0700; one that appeared meanwhile (another first snapshot) is left to the caller."""
    try:
        private_dir(path.parent)
    except OSError as exc:
        raise VhdiagError(f"cannot create the folder {path.parent} for the history store: {exc.strerror}: "
                          "give --history a path in a folder you can write") from None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    except OSError as exc:
        if disk_full(path, exc):
            raise full(str(path)) from None
        raise VhdiagError(f"cannot create the history store {path}: {exc.strerror}: "
                          "give --history a path in a folder you can write") from None


def read_only(where: str) -> VhdiagError:
    return VhdiagError(f"the history store {where} is read-only: check its permissions or give --history "
                       "a writable path")


# SQLite appends whole pages (4 KiB by default) to its WAL: with less than two free, no write fits.
PAGE_ROOM = 2 * 4096


def disk_full(path: Path, exc: BaseException) -> bool:
    """Did ``exc`` (a write or an open near ``path``) fail for want of space?"""
    if getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in str(exc):
        return True
    if "disk I/O error" not in str(exc) and not isinstance(exc, OSError):
        return False
    try:
        return shutil.disk_usage(path.parent).free < PAGE_ROOM
    except OSError:
        return False


def full(where: str) -> VhdiagError:
    return VhdiagError(f"the disk of history store {where} is full: free space there or give --history a path "
                       "on another disk")


def check_url(url: str) -> None:
    """A store URL SQLAlchemy can parse, with nothing like credentials where messages show it
    (``postgresql://u:pw@[::1`` was a traceback; ``postgresql:///u:pw@h`` shows as the database)."""
    try:
        parsed = sa.engine.make_url(url)
        shown = [parsed.database or "", *map(str, parsed.query.keys()), *map(str, parsed.query.values())]
        nested = "://" in url.split("://", 1)[1]
        if not url.startswith("sqlite:") and (nested or any("@" in part for part in shown)):
            raise ValueError("credentials after the host")
    except (ValueError, sa.exc.ArgumentError):
        # SQLAlchemy's message quotes the URL, password and all: name the parts instead.
        raise ConfigError("malformed history store URL (check the host, port and any brackets): expected "
                          "postgresql://user@host:5432/db or sqlite:///PATH") from None
