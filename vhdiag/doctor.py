"""`vhdiag doctor`: what this role can and cannot see on the target, each gap with its fix."""
from __future__ import annotations

import time

import pandas as pd
import sqlalchemy as sa

from .collect import registry
from .errors import VhdiagError, first_line
from .marker import MARKER

SUPPORTED_MAJORS = range(13, 19)
COLUMNS = ["check", "status", "detail", "fix"]   # status: ok, warn, missing


def checks(target) -> pd.DataFrame:
    caps = target.capabilities
    rows: list[tuple[str, str, str, str]] = []

    def add(check, ok, detail, fix="", warn=False):
        rows.append((check, "ok" if ok else ("warn" if warn else "missing"), detail, "" if ok else fix))

    add("server version", caps.major in SUPPORTED_MAJORS,
        f"PostgreSQL {caps.server_version_num // 10000}.{caps.server_version_num % 10000}"
        + (" (standby)" if caps.in_recovery else ""),
        "vhdiag supports PostgreSQL 13 to 18; other versions may give incomplete frames", warn=True)
    add("connection safety", True,
        f"read-only transactions, statement_timeout {target.statement_timeout_ms} ms, "
        f"lock_timeout {target.lock_timeout_ms} ms, application_name {target.application_name}")
    add("pg_stat_statements installed", caps.pgss_version is not None,
        f"version {caps.pgss_version} in schema {caps.pgss_schema}" if caps.pgss_version
        else f"not installed in database {caps.database}",
        "CREATE EXTENSION pg_stat_statements;  -- as a superuser, in this database")
    add("pg_stat_statements preloaded", caps.pgss_preloaded,
        "listed in shared_preload_libraries" if caps.pgss_preloaded else "not in shared_preload_libraries",
        "shared_preload_libraries = 'pg_stat_statements' in postgresql.conf, then restart the server")
    default_version = _scalar(target, f"SELECT {MARKER} default_version FROM pg_available_extensions "
                                      "WHERE name = 'pg_stat_statements'")
    if caps.pgss_version and default_version:
        add("pg_stat_statements up to date", caps.pgss_version == default_version,
            f"installed {caps.pgss_version}, server ships {default_version}",
            "ALTER EXTENSION pg_stat_statements UPDATE;", warn=True)
    add("other roles' query text", caps.reads_all_stats,
        f"{caps.user} is " + ("superuser" if caps.is_superuser else
                              "a member of pg_read_all_stats" if caps.reads_all_stats else
                              "neither superuser nor in pg_read_all_stats: others' queries show as hidden"),
        f"GRANT pg_read_all_stats TO {caps.user};")
    io_timing = _scalar(target, f"SELECT {MARKER} current_setting('track_io_timing')")
    add("track_io_timing", io_timing == "on", f"track_io_timing = {io_timing}",
        "ALTER SYSTEM SET track_io_timing = on; SELECT pg_reload_conf();  -- I/O times stay 0 without it",
        warn=True)
    if caps.pgss_usable:
        track = _scalar(target, f"SELECT {MARKER} current_setting('pg_stat_statements.track', true)")
        add("pg_stat_statements.track", track in ("top", "all"), f"pg_stat_statements.track = {track}",
            "ALTER SYSTEM SET pg_stat_statements.track = 'top'; SELECT pg_reload_conf();")

    # Every registered collector, tried for real, so doctor reports what collection will do.
    for entry in registry.collectors():
        started = time.perf_counter()
        try:
            frame = getattr(target, entry.method)()
        except (VhdiagError, sa.exc.DBAPIError) as exc:
            message = str(exc) if isinstance(exc, VhdiagError) else first_line(exc)
            add(f"collect {entry.name}", False, f"failed: {message}", _fix_from(message))
            continue
        ms = (time.perf_counter() - started) * 1000
        unmet = entry.unmet(caps)
        add(f"collect {entry.name}", unmet is None, f"{len(frame)} rows in {ms:.0f} ms"
            + (f"; {unmet}" if unmet else ""), "", warn=True)
    for key, message in target.notices.items():
        add(f"degraded: {key}", False, message, _fix_from(message), warn=True)
    return pd.DataFrame(rows, columns=COLUMNS)


def _scalar(target, sql: str):
    try:
        frame = target.query(sql)
    except sa.exc.DBAPIError:
        return None
    return frame.iat[0, 0] if len(frame) else None




def _fix_from(message: str) -> str:
    """Our messages end with the fix after a colon; keep that part for the fix column."""
    return message.rsplit(": ", 1)[-1] if ": " in message else ""
