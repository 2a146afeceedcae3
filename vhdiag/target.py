"""Opening a monitored database safely, and knowing what it lets us see.

Every connection vhdiag opens to a monitored database:
- runs each transaction ``READ ONLY`` (psycopg's ``read_only``) and sets
  ``default_transaction_read_only`` for the session as a second guard;
- bounds every statement with ``statement_timeout`` (5 s) and every lock wait with
  ``lock_timeout`` (100 ms), so a diagnosis never queues behind an ACCESS EXCLUSIVE lock;
- says who it is with ``application_name=vhdiag`` (visible in pg_stat_activity);
- gives up connecting after ``connect_timeout`` (5 s);
- gives up waiting for any answer after ``statement_timeout`` + 2 s, on the client side, so a
  frozen server fails a query with one line instead of hanging vhdiag (vhdiag/bounded.py);
- marks every statement it writes with ``/* vhdiag */`` (vhdiag/marker.py), and sends none of
  the statements SQLAlchemy's dialect would send on a first connection (``select
  pg_catalog.version()``, ``show standard_conforming_strings``, the hstore type lookup): what a
  report cannot tell apart by its text is limited to ``BEGIN READ ONLY`` and ``ROLLBACK``, which
  the report recognises by role (vhdiag/analysis/query_text.py).

The frame methods (``db.statements()``, ``db.tables()``, ...) come from the collector registry
(vhdiag/collect/registry.py): one per registered collector, added to ``Target`` at import.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import registry as dialect_registry
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.pool import QueuePool

from . import bounded, coltypes
from . import dsn as dsn_mod
from .errors import CapabilityError, ConfigError, ConnectError, NoAnswerError, VhdiagError, first_line
from .marker import MARKER

log = logging.getLogger("vhdiag")

APPLICATION_NAME = "vhdiag"


@dataclass(frozen=True)
class Capabilities:
    """What the server is and what this role may see. Read once at connect()."""

    server_version_num: int          # 180001
    server_version: str              # full version() string
    user: str
    database: str
    is_superuser: bool
    reads_all_stats: bool            # superuser or member of pg_read_all_stats (query text of others)
    pgss_version: str | None         # installed pg_stat_statements extension version, e.g. "1.12"
    pgss_schema: str | None          # schema the extension lives in
    pgss_preloaded: bool             # listed in shared_preload_libraries
    postmaster_start: pd.Timestamp
    in_recovery: bool

    @property
    def major(self) -> int:
        return self.server_version_num // 10000

    @property
    def pgss_version_tuple(self) -> tuple[int, int] | None:
        if not self.pgss_version:
            return None
        major, _, minor = self.pgss_version.partition(".")
        return int(major), int(minor or 0)

    @property
    def pgss_usable(self) -> bool:
        return bool(self.pgss_version and self.pgss_preloaded)


# Sent on every new connection, then at the start of every transaction.
SESSION_SETUP_SQL = (f"SELECT {MARKER} set_config('default_transaction_read_only', 'on', false),"
                     " set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)")
TRANSACTION_BOUNDS_SQL = (f"SELECT {MARKER} set_config('statement_timeout', %(st)s, true),"
                          " set_config('lock_timeout', %(lt)s, true)")

_CAPABILITIES_SQL = f"""
SELECT {MARKER} current_setting('server_version_num')::int AS server_version_num,
       version() AS server_version,
       current_user AS "user",
       current_database() AS database,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_superuser,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS reads_all_stats,
       e.extversion AS pgss_version,
       n.nspname AS pgss_schema,
       -- shared_preload_libraries is readable only by superusers and pg_read_all_settings;
       -- pg_settings hides it from others, and the extension's own settings exist only when
       -- it was loaded at start, so they answer for any role.
       coalesce((SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'),
                CASE WHEN current_setting('pg_stat_statements.max', true) IS NOT NULL
                     THEN 'pg_stat_statements' ELSE '' END) AS preload,
       pg_postmaster_start_time() AS postmaster_start,
       pg_is_in_recovery() AS in_recovery
FROM (SELECT 1) AS one
LEFT JOIN pg_extension e ON e.extname = 'pg_stat_statements'
LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
"""


def _is_preloaded(setting: str) -> bool:
    # shared_preload_libraries = 'pg_stat_statements, auto_explain' or '$libdir/pg_stat_statements'
    return any(part.strip().strip('"').rsplit("/", 1)[-1] == "pg_stat_statements"
               for part in setting.split(","))


class _Dialect(PGDialect_psycopg):
    """SQLAlchemy's psycopg dialect, without the statements it sends on a first connection.

    SQLAlchemy's ``initialize()`` asks the server ``select pg_catalog.version()``, ``select
    current_schema()``, ``show transaction isolation level`` and ``show
    standard_conforming_strings``; they would sit in pg_stat_statements under vhdiag's role,
    unmarked. The version and standard_conforming_strings are in libpq's connection status
    already; the other two are asked with the marker. (The hstore type lookup is switched off
    with ``use_native_hstore=False``: vhdiag reads no hstore.)
    """

    supports_statement_cache = True   # what the parent dialect compiles, cached as there

    def _get_server_version_info(self, connection):
        num = connection.connection.driver_connection.info.server_version   # 180001, 90624
        return (num // 10000, num % 10000) if num >= 100000 else (num // 10000, num // 100 % 100, num % 100)

    def _get_default_schema_name(self, connection):
        return connection.exec_driver_sql(f"SELECT {MARKER} current_schema()").scalar()

    def _set_backslash_escapes(self, connection):
        status = connection.connection.driver_connection.info.parameter_status("standard_conforming_strings")
        self._backslash_escapes = status == "off"

    def get_isolation_level(self, dbapi_connection):
        idle = dbapi_connection.info.transaction_status == self._psycopg_TransactionStatus.IDLE
        with dbapi_connection.cursor() as cur:
            cur.execute(f"SELECT {MARKER} current_setting('transaction_isolation')")
            value = cur.fetchone()[0].upper()
        if idle:
            self.do_rollback(dbapi_connection)
        return value

    def do_rollback(self, dbapi_connection):
        """End a read-only transaction with COMMIT: the same for the data, but pg_stat_database
        counts rollbacks, and the runbook's error-rate checks read them (SQLAlchemy's rollback on
        every connection close made vhdiag's own a few per run). A failed one still rolls back."""
        driver = getattr(dbapi_connection, "driver_connection", None) or dbapi_connection
        if driver.info.transaction_status == self._psycopg_TransactionStatus.INTRANS:
            dbapi_connection.commit()
        else:
            dbapi_connection.rollback()


dialect_registry.register("postgresql.vhdiag", __name__, "_Dialect")


class Target:
    """A monitored database, opened read-only. One method per question, each a DataFrame
    (generated from the collector registry: vhdiag/collect/registry.py)."""

    def __init__(self, resolved: dsn_mod.ResolvedDSN, *, statement_timeout_ms: int = 5000,
                 lock_timeout_ms: int = 100, connect_timeout_s: int = 5,
                 application_name: str = APPLICATION_NAME):
        self._dsn = resolved
        self.reference = resolved.reference
        # Until a connection says where it went (see _open): the DSN plus libpq's PG* variables.
        self.display = resolved.display
        # Its default name in the history store (host:port/dbname, a socket as "local"), likewise.
        self.name = resolved.name
        self.statement_timeout_ms = _at_least_one(
            "statement_timeout_ms", statement_timeout_ms, "vhdiag never runs unbounded queries",
            "pass --statement-timeout-ms 5000")
        self.lock_timeout_ms = _at_least_one(
            "lock_timeout_ms", lock_timeout_ms, "vhdiag never waits unbounded for a lock",
            "pass lock_timeout_ms=100")
        self.connect_timeout_s = _at_least_one(
            "connect_timeout_s", connect_timeout_s, "vhdiag never waits unbounded for a connection",
            "pass connect_timeout_s=5")
        self.application_name = application_name
        self.notices: dict[str, str] = {}
        self.engine = sa.create_engine("postgresql+vhdiag://", creator=self._open, poolclass=QueuePool,
                                       pool_size=2, max_overflow=2, pool_reset_on_return="rollback",
                                       use_native_hstore=False)
        sa.event.listen(self.engine, "begin", self._bound_transaction)
        sa.event.listen(self.engine, "handle_error", _drop_unanswered)
        sa.event.listen(self.engine, "checkout", _no_closed_connection)
        self.capabilities = self._probe()

    # -- connections ----------------------------------------------------------------------
    def _open(self) -> psycopg.Connection:
        # Keepalives for a dead host or network, unless the DSN sets its own.
        tcp = {key: value for key, value in bounded.tcp_options(self.statement_timeout_ms).items()
               if key not in self._dsn.params}
        try:
            conn = bounded.BoundedConnection.connect(
                self._dsn.conninfo, application_name=self.application_name,
                connect_timeout=self.connect_timeout_s, **tcp)
        except psycopg.OperationalError as exc:
            raise _connect_error(exc, self._dsn) from None
        # What libpq actually reached: service files, PG* variables and multi-host lists resolved.
        self.display = _live_display(conn)
        self.name = dsn_mod.target_name(conn.info.host, conn.info.port, conn.info.dbname, conn.info.user)
        # From here on, no wait for the server outlasts statement_timeout + grace.
        conn.bound(self.statement_timeout_ms, self.display.removeprefix(f"{conn.info.user}@"))
        try:
            # Session settings first, outside a transaction (no BEGIN/COMMIT to count), then every
            # later transaction starts as BEGIN READ ONLY (psycopg's read_only attribute).
            conn.autocommit = True
            conn.execute(SESSION_SETUP_SQL, (f"{self.statement_timeout_ms}ms", f"{self.lock_timeout_ms}ms"))
            conn.autocommit = False
        except NoAnswerError:
            conn.close()
            raise
        conn.read_only = True
        return conn

    def _bound_transaction(self, conn) -> None:
        """The timeouts again, for this transaction only: behind a pooler in transaction mode
        (PgBouncer), the session settings of _open() may belong to another server connection."""
        conn.exec_driver_sql(TRANSACTION_BOUNDS_SQL,
                             {"st": f"{self.statement_timeout_ms}ms", "lt": f"{self.lock_timeout_ms}ms"})

    def _probe(self) -> Capabilities:
        try:
            # As Python values: a NULL (no pg_stat_statements) is None, not pd.NA.
            row = self.query(_CAPABILITIES_SQL).astype(object).iloc[0].where(lambda r: r.notna(), None)
        except sa.exc.DBAPIError as exc:
            raise ConnectError(f"connected to {self.display} but could not read its settings: "
                               f"{self._dsn.scrub(first_line(exc.orig))}") from None
        return Capabilities(
            server_version_num=int(row.server_version_num), server_version=str(row.server_version),
            user=str(row.user), database=str(row.database), is_superuser=bool(row.is_superuser),
            reads_all_stats=bool(row.reads_all_stats), pgss_version=row.pgss_version,
            pgss_schema=row.pgss_schema, pgss_preloaded=_is_preloaded(row.preload),
            postmaster_start=pd.Timestamp(row.postmaster_start).tz_convert("UTC"),
            in_recovery=bool(row.in_recovery),
        )

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only statement and return its rows as a typed DataFrame.

        Each column's dtype follows its PostgreSQL type (the oid in the result's description,
        not a guess from the values; vhdiag/coltypes.py): integers ``Int64`` (nullable, exact
        to 64 bits), real/double/**numeric** ``float64`` (numeric loses digits past float64's
        15-17), booleans ``boolean``, text ``string``, timestamps ``datetime64[ns, UTC]`` (a
        timestamp without time zone read as UTC); anything else (date, interval, arrays, json)
        stays Python objects.

        >>> db.query("SELECT relname, reltuples::bigint AS n FROM pg_class LIMIT 3").dtypes
        """
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(sql), params or {})
            # Read before fetchall(), which may close the cursor.
            oids = [d.type_code for d in result.cursor.description] if result.returns_rows else []
            rows = result.fetchall()
            return coltypes.frame(list(result.keys()), oids, rows)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<vhdiag.Target {self.display}>"

    # -- degraded mode --------------------------------------------------------------------
    def notice(self, key: str, message: str) -> None:
        """Say once (per Target) that a feature is unavailable, and how to get it."""
        if key not in self.notices:
            self.notices[key] = message
            log.warning(message)

    def require_pgss(self) -> Capabilities:
        """Raise CapabilityError naming the fix when pg_stat_statements cannot be read."""
        caps = self.capabilities
        if not caps.pgss_version:
            raise CapabilityError(
                f"pg_stat_statements is not installed in database {caps.database}: "
                "run CREATE EXTENSION pg_stat_statements; as a superuser")
        if not caps.pgss_preloaded:
            raise CapabilityError(
                "pg_stat_statements is installed but not preloaded: add it to shared_preload_libraries "
                "in postgresql.conf and restart the server")
        return caps

    # -- questions: one method per registered collector, added by registry.bind() below ---
    def explain(self, queryid_or_sql, generic: bool = True):
        """The plan of one statement (a pg_stat_statements queryid, or SQL text), never executed:
        ``.frame`` (one row per node), ``.text``, or ``.refusal`` saying why it was not planned
        (it names something user-defined, whose code planning could run; or $n parameters on a
        server before 16). See vhdiag/explain.py.

        >>> db = vhdiag.connect("env:DATABASE_URL")
        >>> top = db.statements().sort_values("total_exec_ms", ascending=False)
        >>> print(db.explain(top["queryid"].iloc[0]))        # EXPLAIN (GENERIC_PLAN), PostgreSQL 16+
        """
        from . import explain
        return explain.explain(self, queryid_or_sql, generic)

    def doctor(self) -> pd.DataFrame:
        """What this role can and cannot see, each line with the fix."""
        from . import doctor
        return doctor.checks(self)


from .collect import registry as _registry  # noqa: E402  (the collectors need nothing from this module)

_registry.bind(Target)


def connect(target: str | None = None, **options: Any) -> Target:
    """Open a monitored database.

    ``target`` is a DSN (``postgresql://user:pw@host:5432/db`` or ``host=... dbname=...``),
    ``env:NAME`` to read it from an environment variable, or None for ``VHDIAG_DSN`` then
    ``DATABASE_URL``. Options: ``statement_timeout_ms`` (5000), ``lock_timeout_ms`` (100),
    ``connect_timeout_s`` (5), ``application_name`` ("vhdiag").
    """
    if isinstance(target, Target):
        return target
    return Target(dsn_mod.resolve(target), **options)


def _drop_unanswered(ctx) -> None:
    """A connection vhdiag gave up on is gone: SQLAlchemy must discard it (and the pool's other
    connections to that server) instead of rolling it back and pooling it again."""
    if isinstance(ctx.original_exception, NoAnswerError):
        ctx.is_disconnect = True


def _no_closed_connection(dbapi_conn, _record, _proxy) -> None:
    """A pooled connection found closed (given up on while used raw, as the report's EXPLAINs
    do, so handle_error never saw it) is replaced by a new one: SQLAlchemy's DisconnectionError."""
    if dbapi_conn.closed:
        raise sa.exc.DisconnectionError("connection closed")


def _at_least_one(name: str, value: Any, why: str, fix: str) -> int:
    """A timeout option as an int; 0 or less would switch PostgreSQL's or libpq's bound off."""
    number = int(value)
    if number < 1:
        raise ConfigError(f"{name} must be at least 1 ({why}): {fix}")
    return number


def _live_display(conn: psycopg.Connection) -> str:
    """user@host:port/dbname of an open connection (its host is a directory for a Unix socket)."""
    info = conn.info
    return dsn_mod.format_display(info.user, info.host, info.port, info.dbname)




_AUTH = re.compile(r"password authentication failed|no password supplied|authentication failed|"
                   r"fe_sendauth", re.I)


def _connect_error(exc: psycopg.OperationalError, resolved: dsn_mod.ResolvedDSN) -> VhdiagError:
    """Turn libpq's connection failure into one line that names the fix."""
    text = resolved.scrub(str(exc))
    where = resolved.display
    host, port = resolved.host, resolved.port
    if _AUTH.search(text):
        return ConnectError(f"authentication failed for {where}: check the user and password "
                            "(in the DSN, PGPASSWORD or ~/.pgpass) and pg_hba.conf")
    m = re.search(r'database "([^"]+)" does not exist', text)
    if m:
        return ConnectError(f'database "{m.group(1)}" does not exist on {host}:{port}: '
                            "check the database name in the DSN (psql -l lists them)")
    m = re.search(r'role "([^"]+)" does not exist', text)
    if m:
        return ConnectError(f'role "{m.group(1)}" does not exist on {host}:{port}: check the user name in the DSN')
    if re.search(r"timeout expired|timed out", text, re.I):
        return ConnectError(f"timed out connecting to {host}:{port}: check the host, the port and any firewall")
    if re.search(r"Connection refused|No such file or directory|could not connect|Network is unreachable|"
                 r"could not translate host name", text, re.I):
        return ConnectError(f"cannot reach {host}:{port}: is PostgreSQL running there and accepting "
                            "connections (listen_addresses, port)?")
    if re.search(r"no pg_hba.conf entry", text, re.I):
        return ConnectError(f"the server at {host}:{port} refuses this client: add a pg_hba.conf entry for "
                            f"{resolved.user or 'this user'} and reload")
    return ConnectError(f"cannot connect to {where}: {first_line(Exception(text))}")
