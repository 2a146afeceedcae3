"""Finding a target in the store by name, across the change to short default names (issue 14).

The default target name was ``host:port/dbname`` from the connection's display, so a target
reached through a Unix socket was stored as ``[socket /var/run/postgresql]:5432/vendhub``, which
nobody types; it is now ``local:5432/vendhub`` (vhdiag/dsn.py ``target_name``). Stores written
before keep the old names, so a name is looked up exactly first, then by its short form: when
exactly one stored old name has that short form, that is the target (two old names that differ
only in the socket directory are two targets, and stay apart: neither is guessed); an old name
given (a cron line written before) finds its short form.

Reads never change the store (a read never migrates, see guard.py); the next write under the
short name renames the old entry, inside that write's transaction (``SnapshotWriter._lock_target``), so
the history continues under the name people type, without a schema step that every store
would need at once.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..dsn import short_target_name
from . import schema as S


def match(rows, name: str):
    """The ``(id, name)`` row of ``rows`` that ``name`` means, or None: the exact name; else for
    a short name the one old socket name that shortens to it; for an old name, its short form."""
    rows = list(rows)
    for row in rows:
        if row[1] == name:
            return row
    short = short_target_name(name)
    if short != name:
        return next((row for row in rows if row[1] == short), None)
    same = [row for row in rows if short_target_name(row[1]) == short]
    return same[0] if len(same) == 1 else None


def find(conn, name: str):
    """``(id, stored name)`` of target ``name`` in the store, or None."""
    return match(conn.execute(sa.select(S.targets.c.id, S.targets.c.name)).all(), name)


def stored_name(names, name: str) -> str | None:
    """Which of the stored ``names`` the name ``name`` means, or None."""
    row = match(((n, n) for n in names), name)
    return row[1] if row else None
