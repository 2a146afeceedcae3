"""The history store: opening it, writing one snapshot as one transaction, reading windows.

Default store: an SQLite file in the user's data directory (nothing to run). For a team, any
PostgreSQL URL. Several targets share one store, keyed by target name.

Concurrency: a snapshot's write is one transaction that first takes the store's write lock
(SQLite ``BEGIN IMMEDIATE``; PostgreSQL a row lock on the target), so two ``vhdiag snapshot``
runs at the same moment are serialized: both succeed, the later one diffing against the
earlier, or one is refused with one line: when it waited longer than ``busy_timeout_s``, or
when the other, collected after it, was written first (a snapshot never goes in out of order). A process killed
mid-write leaves nothing behind: the transaction never committed.

Opening checks nothing; the first read or write does (``guard.py``): a read never creates or
migrates a store and a missing one is one line; no command touches a database with tables that
are not vhdiag's; a write creates a missing store (0600, folders 0700) or migrates an older one.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from ..errors import ConfigError, VhdiagError, first_line
from ..timeparse import parse_time, parse_window
from . import guard, names
from . import schema as S
from .reads import _between
from .values import utc_frame
from .checkruns import CheckRuns
from .write import SnapshotWriter

log = logging.getLogger("vhdiag.history")



def default_url() -> str:
    """$VHDIAG_HISTORY, else an SQLite file in the user data directory."""
    if os.environ.get("VHDIAG_HISTORY"):
        return os.environ["VHDIAG_HISTORY"]
    import platformdirs
    return str(Path(platformdirs.user_data_dir("vhdiag")) / "history.sqlite")


def normalize_url(url: str | None) -> str:
    """A path or sqlite:/// URL for SQLite; postgresql:// (any driver) for PostgreSQL."""
    url = url or default_url()
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+", "sqlite:")):
        guard.check_url(url)
        return url
    if "://" in url:
        scheme = url.split("://")[0]
        # Quoted only when it is a scheme: "password=pw postgresql://..." is not one, and not shown.
        shown = f" {scheme!r}" if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme) else ""
        raise ConfigError(f"unsupported history store URL scheme{shown}: "
                          "use a file path, sqlite:///PATH or postgresql://user@host/db")
    # No folder is made here: a reader must not, and a writer makes it 0700 (guard.create_sqlite_file).
    try:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    except (ValueError, RuntimeError, OSError) as exc:   # a NUL byte; a ~user that does not exist
        raise ConfigError(f"history store path is not usable ({exc}): give --history a file path") from None


class History(SnapshotWriter, CheckRuns):
    """A history store. ``History(url)``; see ``snapshot()`` and the window readers.

    Opening it touches nothing: the readers want an existing store of this schema version
    (``guard.NoStoreError`` when there is none yet), ``snapshot``/``record`` and metric imports
    create or migrate it, ``prune`` migrates it."""

    def __init__(self, url: str | None = None, *, busy_timeout_s: float = 30.0):
        self.url = normalize_url(url)
        self.busy_timeout_s = busy_timeout_s
        self.engine = self._engine()
        self.display = sa.engine.make_url(self.url).render_as_string(hide_password=True)
        self.location = guard.location(self.url)   # the file, or the URL without password
        self._current = False                       # checked: a vhdiag store of this schema version

    # -- opening ---------------------------------------------------------------------------
    def _engine(self) -> sa.Engine:
        if self.url.startswith("sqlite"):
            engine = sa.create_engine(self.url, connect_args={"timeout": self.busy_timeout_s})

            @sa.event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn, _record):
                # We issue BEGIN ourselves (pysqlite's implicit transactions cannot take the write
                # lock up front); WAL lets readers go on while a snapshot is written.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @sa.event.listens_for(engine, "begin")
            def _sqlite_begin(conn):
                conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", "DEFERRED"))

            return engine
        engine = sa.create_engine(self.url, pool_pre_ping=True)

        @sa.event.listens_for(engine, "begin")
        def _pg_begin(conn):
            if conn.get_execution_options().get("vhdiag_write"):
                # A writer waits for another writer's lock at most busy_timeout, then is refused.
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(self.busy_timeout_s * 1000)}")

        return engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _locked(self):
        """A connection whose transactions hold the store's write lock from their first statement."""
        conn = self.engine.connect()
        if self.is_sqlite:
            return conn.execution_options(sqlite_begin="IMMEDIATE")
        return conn.execution_options(vhdiag_write=True)

    @contextlib.contextmanager
    def _write(self, mode: str = guard.CREATE):
        """``with history._write() as conn, conn.begin():`` a write transaction on a checked store."""
        self._ready(mode)
        with self._errors(), self._locked() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self):
        """A connection to a checked store: never creates or migrates one."""
        self._ready(guard.READ)
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _errors(self, opening: bool = False):
        """The driver's errors as one line naming the store and the fix."""
        try:
            yield
        except sa.exc.OperationalError as exc:
            text = str(exc.orig)
            path = guard.sqlite_file(self.url)
            if path is not None and guard.disk_full(path, exc.orig):
                raise guard.full(self.location) from None
            if "readonly database" in text:
                raise guard.read_only(self.location) from None
            if "locked" in text or "lock timeout" in text:
                raise VhdiagError(f"history store {self.display} is busy: another snapshot held it for over "
                                  f"{self.busy_timeout_s:.0f} s; try again") from None
            if opening and not self.is_sqlite:
                raise VhdiagError(f"cannot open history store {self.location}: {first_line(exc)}: check the "
                                  "URL given to --history and that the server accepts connections") from None
            if opening or "unable to open database file" in text:
                raise VhdiagError(f"cannot open history store {self.location}: {first_line(exc)}: check the "
                                  "permissions of the file and its folder, or give --history another path") from None
            raise

    def _ready(self, mode: str) -> None:
        """Check the store once (guard.judge) before ``mode`` (read, write, create) touches it;
        create an empty one or migrate an older one when ``mode`` allows."""
        if self._current:
            return
        with self._errors(opening=True):
            path = guard.sqlite_file(self.url)
            if path is not None and not path.exists():
                if mode != guard.CREATE:
                    raise guard.NoStoreError(f"there is no history store at {self.location} yet: "
                                             "vhdiag snapshot creates it")
                guard.create_sqlite_file(path)
                state = "empty"
            elif path is not None:
                # Not through the engine: its connections set WAL mode, a write to a foreign file.
                state = guard.judge(*guard.peek_sqlite(path, self.location, self.busy_timeout_s),
                                    self.location, mode)
            else:
                with self.engine.connect() as conn:
                    state = guard.judge(*guard.peek(conn), self.location, mode)
            if state != "current":
                with self._locked() as conn, conn.begin():
                    if not self.is_sqlite:
                        # Two first snapshots at once must not both create the tables.
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7068125)"))
                    tables, version = guard.peek(conn)  # again, under the write lock
                    state = guard.judge(tables, version, self.location, mode)
                    if state == "empty":
                        S.create_all(conn)
                        conn.execute(S.meta.insert().values(key="schema_version", value=str(S.SCHEMA_VERSION)))
                    elif state == "older":
                        for step in range(version + 1, S.SCHEMA_VERSION + 1):
                            S.MIGRATIONS[step](conn)
                        conn.execute(S.meta.update().where(S.meta.c.key == "schema_version")
                                     .values(value=str(S.SCHEMA_VERSION)))
        self._current = True

    def prepare(self) -> None:
        """Create (or migrate) the store now: parallel writers (snapshot --targets) then share
        a ready store instead of racing to create it, which SQLite answers with "locked"."""
        self._ready(guard.CREATE)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<vhdiag.History {self.display}>"

    # -- writing ---------------------------------------------------------------------------
    def record(self, frames: dict, name: str) -> dict:
        """Write collected frames as one snapshot of target ``name``, then sum the hours and days
        it completed (history/sums.py) in a transaction of its own: a snapshot whose sums fail is
        still stored, and reads of those hours take the raw deltas."""
        result = super().record(frames, name)
        self.update_sums(name)
        return result

    def update_sums(self, name: str) -> int:
        """Sum the complete hours and days of target ``name`` not summed yet (what ``record``
        does after each snapshot); returns how many were summed."""
        from . import sums
        try:
            with self._write() as conn, conn.begin():
                return sums.build(conn, self._lock_target(conn, name))
        except (VhdiagError, sa.exc.SQLAlchemyError) as exc:
            log.warning("the window sums of %s were not updated (%s): reads of those hours use the raw deltas",
                        name, first_line(exc))
            return 0

    def snapshot(self, target, name: str | None = None) -> dict:
        """Collect from ``target`` and record one snapshot; returns a summary dict."""
        from .snapshot import collect
        from .sparse import size_plan
        self._ready(guard.CREATE)  # a store that cannot take it is refused before the target is queried
        name = name or default_target_name(target)
        with self._read() as conn:
            plan = size_plan(conn, name, pd.Timestamp.now(tz="UTC"))
        frames = collect(target, plan)
        return self.record(frames, name)

    def targets(self) -> pd.DataFrame:
        with self._read() as conn:
            frame = pd.read_sql(sa.select(S.targets.c.name, S.targets.c.created_at), conn)
        return utc_frame(frame, "created_at")

    def _target_id(self, conn, target: str | None) -> int:
        rows = conn.execute(sa.select(S.targets.c.id, S.targets.c.name)).all()
        if target is None:
            if len(rows) == 1:
                return rows[0][0]
            if not rows:
                raise VhdiagError(f"history store {self.display} has no snapshots yet: run vhdiag snapshot first")
            raise VhdiagError(f"history store {self.display} holds several targets ({', '.join(r[1] for r in rows)}): "
                              "pass target=NAME (--target-name NAME)")
        found = names.match(rows, target)   # an older store's socket name too (names.py)
        if found is not None:
            return found[0]
        raise VhdiagError(f"no target named {target!r} in history store {self.display}: "
                          f"known: {', '.join(r[1] for r in rows) or 'none'}")

    @staticmethod
    def _window(since, until) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        return parse_window(since, until, open_start=True)    # deltas over (since, until]

    def snapshots(self, target: str | None = None, since=None, until=None) -> pd.DataFrame:
        """One row per snapshot: ts, interval_s, events, notes, versions, duration."""
        since, until = self._window(since, until)
        with self._read() as conn:
            tid = self._target_id(conn, target)
            q = sa.select(S.snapshots).where(S.snapshots.c.target_id == tid)
            q = _between(q, S.snapshots.c.ts, since, until)
            frame = pd.read_sql(q.order_by(S.snapshots.c.ts), conn)
        return utc_frame(frame, "ts", "postmaster_start", "pgss_stats_reset").rename(columns={"id": "snapshot_id"})

    def statements(self, since=None, until=None, target: str | None = None) -> pd.DataFrame:
        """Per statement, summed over the snapshots in (since, until]."""
        from .reads import statements_window
        since, until = self._window(since, until)
        with self._read() as conn:
            return statements_window(conn, self._target_id(conn, target), since, until)

    def statement_series(self, queryid: int, since=None, until=None, target: str | None = None) -> pd.DataFrame:
        """Per snapshot interval, the deltas of one queryid (every user/database it ran as)."""
        from .reads import statement_series
        since, until = self._window(since, until)
        with self._read() as conn:
            return statement_series(conn, self._target_id(conn, target), int(queryid), since, until)

    def compare(self, since, until, baseline_since=None, baseline_until=None, *, target: str | None = None,
                config=None, **thresholds) -> pd.DataFrame:
        """Per statement, the window ``since``..``until`` against a baseline: what the slow-query
        report compares (vhdiag/history/compare.py), with its thresholds from the settings
        (``[statements]`` regression_ratio, regression_floor_ms, regression_share_pct; or pass
        them, and ``exclude_roles``, here). The baseline defaults to the period of the same
        length just before the window.

        Columns: ``queryid, user, database, toplevel, status`` (regressed, new, improved, gone,
        same), ``why`` (mean/total for a regression), ``significant`` (a new statement worth a
        finding), ``calls, baseline_calls, mean_exec_ms, baseline_mean_exec_ms, mean_ratio,
        mean_change_ms, total_exec_ms, baseline_total_exec_ms, total_ratio, extra_ms, share_pct,
        complete, notes, query``; regressed first. ``frame.attrs`` holds the bounds and
        ``completeness`` (what makes the window's figures less than exact).

        >>> h = History()
        >>> c = h.compare("7d", "now", target="db1:5432/shop")      # this week against last week
        >>> c[c.status == "regressed"][["query", "baseline_mean_exec_ms", "mean_exec_ms", "mean_ratio"]]
        """
        from . import compare as C
        from ..analysis import slow_queries as sq
        p = C.settings(config, **thresholds)
        start, end, b_start, b_end = C.bounds(since, until, baseline_since, baseline_until)
        window, baseline = self.statements(start, end, target=target), self.statements(b_start, b_end, target=target)
        out = C.compare(window, baseline, window_s=(end - start).total_seconds(),
                        baseline_s=(b_end - b_start).total_seconds(), **p)
        kept = sq.prepare(C.drop_own(window, C.own_users(window, baseline), p["exclude_roles"]))
        out.attrs.update(since=start, until=end, baseline_since=b_start, baseline_until=b_end,
                         completeness=sq.completeness(kept, self.snapshots(target, start, end), start, end))
        return out

    def table_growth(self, since=None, until=None, target: str | None = None) -> pd.DataFrame:
        """Per table: size and row counts at the start and end of the window, and the change."""
        from .reads import table_growth
        since, until = self._window(since, until)
        with self._read() as conn:
            return table_growth(conn, self._target_id(conn, target), since, until)

    def table_series(self, since=None, until=None, target: str | None = None) -> pd.DataFrame:
        """Per snapshot and table: size and rows (the capacity report's table forecasts)."""
        from .reads import table_series
        since, until = self._window(since, until)
        with self._read() as conn:
            return table_series(conn, self._target_id(conn, target), since, until)

    def database_series(self, since=None, until=None, target: str | None = None) -> pd.DataFrame:
        """Per snapshot interval and database: TPS, rollbacks, cache hit, size, connections."""
        from .reads import database_series
        since, until = self._window(since, until)
        with self._read() as conn:
            return database_series(conn, self._target_id(conn, target), since, until)

    def incident_view(self, since=None, until=None, target: str | None = None) -> dict:
        """Per snapshot in [since, until] (and the one before, to diff): ``settings`` (name, value),
        ``connections`` (application, state, connections) and ``sessions`` (idle in transaction,
        waiting or blocking), each with the snapshot's ``ts``: what the post-mortem reads."""
        since, until = self._window(since, until)
        s = S.snapshots
        out = {}
        with self._read() as conn:
            tid = self._target_id(conn, target)
            lo = None
            if since is not None:
                lo = conn.execute(sa.select(sa.func.max(s.c.ts)).where(
                    s.c.target_id == tid, s.c.ts <= since.to_pydatetime())).scalar()
            for key, table in (("settings", S.setting_values), ("connections", S.connection_counts),
                               ("sessions", S.activity_sessions)):
                q = sa.select(s.c.ts, *[c for c in table.c if c.name != "snapshot_id"]) \
                    .join(s, s.c.id == table.c.snapshot_id).where(s.c.target_id == tid)
                if since is not None:
                    q = q.where(s.c.ts >= (lo if lo is not None else since.to_pydatetime()))
                if until is not None:
                    q = q.where(s.c.ts <= until.to_pydatetime())
                out[key] = utc_frame(pd.read_sql(q.order_by(s.c.ts), conn), "ts")
        return out

    def auto_prune(self, every_s: float = 86400, raw_days: float = 14, rollup_days: float = 400,
                   keep_top: int = 200) -> dict | None:
        """Prune when the last prune is older than ``every_s`` (what `vhdiag snapshot` does daily)."""
        with self._read() as conn:
            last = conn.execute(sa.select(S.meta.c.value).where(S.meta.c.key == "last_prune")).scalar()
        now = pd.Timestamp.now(tz="UTC")
        if last is not None and (now - pd.Timestamp(last)).total_seconds() < every_s:
            return None
        return self.prune(raw_days=raw_days, rollup_days=rollup_days, keep_top=keep_top)

    def prune(self, raw_days: float = 14, rollup_days: float = 400, now=None, keep_top: int = 200) -> dict:
        """Roll up and delete raw snapshots older than ``raw_days``; drop roll-ups older than ``rollup_days``.
        Per hour, statements outside the top ``keep_top`` by time and by calls are folded together."""
        from .retention import prune
        now = parse_time(now) if now is not None else pd.Timestamp.now(tz="UTC")
        with self._write(guard.WRITE) as conn, conn.begin():
            if not self.is_sqlite:
                # Two prunes at once (two targets' cron snapshots) would roll up the same deltas.
                # SQLite's BEGIN IMMEDIATE already serializes them; a second prune finds nothing.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7068126)"))
            result = prune(conn, raw_days=raw_days, rollup_days=rollup_days, now=now, keep_top=keep_top)
            conn.execute(S.meta.delete().where(S.meta.c.key == "last_prune"))
            conn.execute(S.meta.insert().values(key="last_prune", value=now.isoformat()))
        return result


def default_target_name(target) -> str:
    """The target's name in the store unless ``--target-name`` gives one: ``host:port/dbname``,
    a Unix socket as ``local`` (``local:5432/vendhub``); stable across users, no secret in it.
    The one rule for snapshot, check and report (vhdiag/dsn.py ``target_name``). ``target``: a
    Target (what its connection reached) or a ResolvedDSN (what it would reach)."""
    return target.name
