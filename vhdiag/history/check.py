"""`vhdiag history check`: is the history store sound? Read-only, on SQLite and PostgreSQL.

After a fault (the monitored server or vhdiag killed mid-snapshot, the store's disk full, two
writers at once) the question is whether the store still holds what it held and can take the
next snapshot. Four things answer it, each a line per problem:

- **integrity**: SQLite's ``PRAGMA integrity_check`` (a truncated or overwritten file); on
  PostgreSQL, which keeps its own pages sound, catalog sanity: every table and column of this
  schema version is there and no index of the store is left invalid;
- **orphan rows**: rows naming a snapshot, target or statement that does not exist (every
  foreign key the schema declares, so a table added later is checked too): a write that was
  not one transaction, or a hand edit;
- **schema version**: recorded, and not newer than this vhdiag (an older one is upgraded by
  the next ``vhdiag snapshot``: said as information);
- **gaps**: intervals between snapshots longer than ``[history] gap_factor`` times the
  target's usual (median) interval. Information, not a problem: a stopped cron or a server
  that was down leaves one, and the deltas across it are marked already.

Nothing here writes, creates or migrates: an SQLite file is opened ``mode=ro`` (the store's own
connections would switch it to WAL, a write). Messages name the file or the URL without its
password (``guard.location``).
"""
from __future__ import annotations

import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from ..errors import VhdiagError, first_line
from . import guard
from . import schema as S

PROBLEM, INFO = "problem", "info"
SHOWN = 10   # lines of one kind (integrity messages, gaps of a target) before "and N more"


@dataclass(frozen=True)
class Finding:
    level: str   # problem (the store is not sound) or info
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.text}"


@dataclass
class Checked:
    """``check()``'s answer: the findings, problems first, and what the store holds."""
    location: str
    findings: list[Finding]
    version: int | None = None
    snapshots: int = 0
    targets: int = 0

    @property
    def sound(self) -> bool:
        return not any(f.level == PROBLEM for f in self.findings)

    def lines(self) -> list[str]:
        """One line per finding; a sound store ends with a line saying so."""
        out = [str(f) for f in self.findings]
        if self.sound:
            out.append(f"history store {self.location} is sound: schema version {self.version}, "
                       f"{self.snapshots} snapshot(s) of {self.targets} target(s)")
        return out


def check(url: str | None = None, *, gap_factor: float | None = None, config=None) -> Checked:
    """What is wrong with the store at ``url`` (default: ``History()``'s). ``.sound`` when no
    finding is a problem (gaps and an older schema are information). A missing store or an empty
    database is ``guard.NoStoreError``, as for every reader."""
    from ..config import resolve_config
    from .store import normalize_url
    if gap_factor is None:
        gap_factor = float(resolve_config(config)["history"]["gap_factor"])
    url = normalize_url(url)
    where = guard.location(url)
    path = guard.sqlite_file(url)
    if path is not None:
        if not path.exists():
            raise guard.NoStoreError(f"there is no history store at {where} yet: vhdiag snapshot creates it")
        damaged = _sqlite_integrity(path, where)
        if damaged:
            return Checked(where, damaged)       # nothing read from a damaged file can be trusted
        engine = sa.create_engine("sqlite://", creator=lambda: _sqlite_ro(path), poolclass=sa.pool.NullPool)
    else:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    checked = Checked(where, [])
    try:
        with engine.connect() as conn:
            _check(conn, checked, gap_factor)
    except sa.exc.OperationalError as exc:
        raise VhdiagError(f"cannot open history store {where}: {first_line(exc)}: check the URL given to "
                          "--history and that the server accepts connections") from None
    finally:
        engine.dispose()
    checked.findings.sort(key=lambda f: f.level != PROBLEM)
    return checked


def _sqlite_ro(path: Path) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
    return sqlite3.connect(uri, uri=True)


def _sqlite_integrity(path: Path, where: str) -> list[Finding]:
    """``PRAGMA integrity_check`` through a read-only connection: its messages as problems."""
    try:
        conn = _sqlite_ro(path)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            return [Finding(PROBLEM, f"{where} is not an SQLite database (its header is damaged or it is "
                                     "another kind of file): restore the store from a backup")]
        return [Finding(PROBLEM, f"integrity: {where}: {exc}: restore the store from a backup (sqlite3 "
                                 "'.recover' may save what is left)")]
    if rows == ["ok"]:
        return []
    out = [Finding(PROBLEM, f"integrity: {where}: {msg}") for msg in rows[:SHOWN]]
    if len(rows) > SHOWN:
        out.append(Finding(PROBLEM, f"integrity: {where}: and {len(rows) - SHOWN} more messages: restore "
                                    "the store from a backup"))
    return out


def _check(conn, checked: Checked, gap_factor: float) -> None:
    checked.findings += _findings(conn, checked, gap_factor)


def _findings(conn, checked: Checked, gap_factor: float) -> list[Finding]:
    where = checked.location
    tables, version = guard.peek(conn)
    checked.version = version
    if not tables:
        raise guard.NoStoreError(f"there is no history store at {where} yet: vhdiag snapshot creates it")
    known = set(S.metadata.tables) | S.RETIRED_TABLES
    foreign = [t for t in tables if t not in known]
    if version is None:
        return [Finding(PROBLEM, f"{where} records no schema version (no vhdiag_meta row 'schema_version'): "
                                 "it is not a vhdiag history store, or that row was deleted")]
    if version > S.SCHEMA_VERSION:
        return [Finding(PROBLEM, f"schema version {version} is newer than this vhdiag's {S.SCHEMA_VERSION}: "
                                 "upgrade vhdiag (pip install -U vhdiag) before checking or writing it")]
    found = []
    if foreign:
        found.append(Finding(PROBLEM, f"tables that are not vhdiag's: {', '.join(foreign[:SHOWN])}: "
                                      "the store wants a database of its own"))
    if version < S.SCHEMA_VERSION:
        found.append(Finding(INFO, f"schema version {version}, older than this vhdiag's {S.SCHEMA_VERSION}: "
                                   "the next vhdiag snapshot upgrades it"))
    else:
        found += _structure(conn, set(tables))
    present = set(tables) - set(foreign)
    found += _orphans(conn, present)
    if "snapshots" in present and "targets" in present:
        checked.snapshots = conn.execute(sa.select(sa.func.count()).select_from(S.snapshots)).scalar()
        checked.targets = conn.execute(sa.select(sa.func.count()).select_from(S.targets)).scalar()
        found += _gaps(conn, gap_factor)
    return found


def _structure(conn, tables: set[str]) -> list[Finding]:
    """Every table and column of this schema version; on PostgreSQL, no invalid index."""
    inspector = sa.inspect(conn)
    out = []
    for name, table in S.metadata.tables.items():
        if name not in tables:
            out.append(Finding(PROBLEM, f"table {name} is missing: restore the store from a backup"))
            continue
        have = {c["name"] for c in inspector.get_columns(name)}
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            out.append(Finding(PROBLEM, f"table {name} lacks column(s) {', '.join(missing)}: "
                                        "restore the store from a backup"))
    if conn.dialect.name == "postgresql":
        bad = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready) ORDER BY 1").scalars().all()
        out += [Finding(PROBLEM, f"index {name} is invalid (an interrupted build): REINDEX INDEX {name} "
                                 "in the store's database") for name in bad]
    return out


def _orphans(conn, tables: set[str]) -> list[Finding]:
    """Rows whose foreign key names a row that does not exist, per declared foreign key."""
    out = []
    for table in S.metadata.sorted_tables:
        if table.name not in tables:
            continue
        for fk in sorted(table.foreign_keys, key=lambda k: k.parent.name):
            ref = fk.column
            if ref.table.name not in tables:
                continue
            missing = sa.select(sa.func.count(), sa.func.min(fk.parent)).where(
                fk.parent.is_not(None),
                ~sa.exists().where(ref == fk.parent))
            count, example = conn.execute(missing).one()
            if count:
                out.append(Finding(PROBLEM, f"orphan rows: {count} row(s) of {table.name} name a "
                                            f"{ref.table.name}.{ref.name} that does not exist (e.g. {example}): "
                                            "a write that bypassed vhdiag; delete them or restore the store"))
    return out


def _gaps(conn, factor: float) -> list[Finding]:
    """Per target, intervals over ``factor`` times its median interval."""
    s, t = S.snapshots, S.targets
    rows = conn.execute(sa.select(t.c.name, s.c.ts).join(t, t.c.id == s.c.target_id)
                        .order_by(t.c.name, s.c.ts)).all()
    if not rows:
        return []
    frame = pd.DataFrame(rows, columns=["target", "ts"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    out = []
    for name, group in frame.groupby("target", sort=True):
        steps = group["ts"].diff().dropna()
        if len(steps) < 2:
            continue
        usual = steps.median()
        if usual <= pd.Timedelta(0):
            continue
        long = steps[steps > usual * factor]
        for end_index, step in list(long.items())[:SHOWN]:
            end = group["ts"][end_index]
            start = end - step
            out.append(Finding(INFO, f"gap: {name}: no snapshot from {_iso(start)} to {_iso(end)} "
                                     f"({_span(step)}; usually {_span(usual)})"))
        if len(long) > SHOWN:
            out.append(Finding(INFO, f"gap: {name}: and {len(long) - SHOWN} more gaps"))
    return out


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(delta: pd.Timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0" + unit, unit)
    return f"{seconds:.0f}s"
