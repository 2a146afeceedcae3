"""Last backup: the runbook's Morning Checklist step 3, "Checking last backup... # Add backup
check logic", and the Evening Checklist's "Verify backup completed".

Two sources, each compared with ``[checks] backup_max_age``:

- **WAL archiving** (``pg_stat_archiver`` through the ``backups`` collector): the age of the last
  archived segment, and failures since the last success. With ``archive_mode`` off there is no
  WAL archive: a warning, unless a dumps directory is the backup.
- **A directory of dumps** (``[checks] dumps_dir``): the newest file's age and size, and whether
  ``pg_restore --list`` can read it (a dump nobody can restore is no backup).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from ..display import terminal_safe
from ..timeparse import parse_duration
from .registry import Result, check

FIX_ARCHIVE = ("set archive_mode = on and an archive_command (or archive_library) in postgresql.conf, "
               "or name a dumps directory in [checks] dumps_dir")


def _age(seconds: float) -> str:
    seconds = float(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def evaluate_archiver(archiver: pd.DataFrame, max_age_s: float, dumps_configured: bool) -> Result | None:
    """From backups.archiver()'s one row. None: archiving is off and dumps are the backup."""
    row = archiver.iloc[0]
    name = "backup.wal_archive"
    if row["archive_mode"] == "off":
        if dumps_configured:
            return None
        return Result(name, "warn", "archive_mode is off and no dumps directory is configured: "
                      "no backup vhdiag can see", FIX_ARCHIVE)
    limit = _age(max_age_s)
    last_ok, last_bad = row["last_archived_time"], row["last_failed_time"]
    failing = pd.notna(last_bad) and (pd.isna(last_ok) or last_bad > last_ok)
    if failing:
        since = f"last success {_age(row['last_archived_age_s'])} ago" if pd.notna(last_ok) else "never archived"
        return Result(name, "fail", f"archiving fails: {int(row['failed_count'])} failures, the last "
                      f"{_age(row['last_failed_age_s'])} ago on {row['last_failed_wal']}; {since}",
                      "read the server log for archive_command's error and fix the command or its destination")
    if pd.isna(last_ok):
        return Result(name, "warn", "WAL archiving is on but no segment has been archived yet",
                      "write some WAL (or SELECT pg_switch_wal()) and check again; set archive_timeout")
    evidence = (f"last WAL segment {row['last_archived_wal']} archived {_age(row['last_archived_age_s'])} ago "
                f"(max {limit}); {int(row['failed_count'])} failures, none since")
    if row["last_archived_age_s"] > max_age_s:
        return Result(name, "fail", evidence, "an idle server switches segments only with archive_timeout: "
                      "set it below backup_max_age; else check archive_command")
    return Result(name, "pass", evidence)


def dump_files(directory: str | os.PathLike) -> pd.DataFrame:
    """Regular, non-hidden files of ``directory``: path, bytes, mtime (UTC), newest first."""
    rows = []
    for entry in os.scandir(directory):
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        st = entry.stat(follow_symlinks=False)
        rows.append({"path": entry.path, "bytes": st.st_size,
                     "mtime": pd.Timestamp(st.st_mtime, unit="s", tz="UTC")})
    frame = pd.DataFrame(rows, columns=["path", "bytes", "mtime"])
    return frame.sort_values("mtime", ascending=False, kind="stable").reset_index(drop=True)


def evaluate_dumps(files: pd.DataFrame, directory: str, now: pd.Timestamp, max_age_s: float,
                   readable: str | None) -> Result:
    """The newest dump of ``files``; ``readable``: None when pg_restore read it, else why not."""
    name = "backup.dumps"
    where = terminal_safe(str(directory))
    if files.empty:
        return Result(name, "fail", f"no dump in {where}", "check the backup job that writes there")
    newest = files.iloc[0]
    age = (now - newest["mtime"]).total_seconds()
    evidence = (f"newest dump {terminal_safe(Path(newest['path']).name)}: {_age(max(age, 0))} old "
                f"(max {_age(max_age_s)}), {int(newest['bytes']):,} bytes")
    if newest["bytes"] == 0:
        return Result(name, "fail", evidence + ", empty", "the dump job failed: read its log")
    if readable is not None:
        return Result(name, "fail", f"{evidence}; pg_restore --list cannot read it: {terminal_safe(readable)}",
                      "the dump is damaged or not a custom/tar/directory format dump: check the dump job")
    if age > max_age_s:
        return Result(name, "fail", evidence, "the backup job has not run: check its schedule and log")
    return Result(name, "pass", evidence + ", pg_restore --list reads it")


def restore_lists(path: str, pg_restore: str) -> str | None:
    """None when ``pg_restore --list PATH`` succeeds, else its first error line."""
    from ..binaries import library_env
    env = {**os.environ, **library_env(Path(pg_restore).parent)}
    try:
        done = subprocess.run([pg_restore, "--list", path], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc).splitlines()[0]
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]


@check("backup.wal_archive", "Last backup: WAL archiving", needs=("db",))
def wal_archive(ctx) -> list[Result]:
    from ..collect import backups
    c = ctx.config["checks"]
    result = evaluate_archiver(backups.archiver(ctx.target), parse_duration(c["backup_max_age"]).total_seconds(),
                               bool(c["dumps_dir"] or c["backup_command"]))
    return [result] if result else []


@check("backup.dumps", "Last backup: a directory of dumps", needs=())
def dumps(ctx) -> list[Result]:
    c = ctx.config["checks"]
    if not c["dumps_dir"]:
        return []
    directory = c["dumps_dir"]
    try:
        files = dump_files(directory)
    except OSError as exc:
        return [Result("backup.dumps", "fail", f"cannot read {terminal_safe(directory)}: {exc.strerror}",
                       "check [checks] dumps_dir and its permissions")]
    readable = None
    if not files.empty and files.iloc[0]["bytes"] > 0:
        tool = c["pg_restore"] or shutil.which("pg_restore")
        if not tool:
            return [Result("backup.dumps", "warn", "pg_restore not found: cannot verify the newest dump",
                           "install the PostgreSQL client or set [checks] pg_restore")]
        readable = restore_lists(str(files.iloc[0]["path"]), tool)
    return [evaluate_dumps(files, directory, ctx.now, parse_duration(c["backup_max_age"]).total_seconds(), readable)]


TIME_KEYS = ("inserted_at", "created_at", "completed_at", "finished_at", "time", "timestamp", "date")
BAD_STATUS = {"failed", "error", "errored", "cancelled", "canceled"}


def listed_backups(output: str) -> pd.DataFrame:
    """The backups a command printed as JSON (a list, or an object with a list under ``backups``
    or ``data``): time (UTC) and status, newest first. Raises ValueError on anything else."""
    import json
    doc = json.loads(output)
    if isinstance(doc, dict):
        doc = next((doc[k] for k in ("backups", "data") if isinstance(doc.get(k), list)), None)
    if not isinstance(doc, list):
        raise ValueError("expected a JSON list of backups")
    rows = []
    for item in doc:
        key = next((k for k in TIME_KEYS if isinstance(item, dict) and item.get(k)), None)
        if key is None:
            raise ValueError(f"a backup without a time ({', '.join(TIME_KEYS)})")
        when = pd.Timestamp(item[key])
        rows.append({"time": when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC"),
                     "status": str(item.get("status") or "")})
    frame = pd.DataFrame(rows, columns=["time", "status"])
    return frame.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)


@check("backup.command", "Last backup: a command that lists backups (supabase db backup list)", needs=())
def command(ctx) -> list[Result]:
    c = ctx.config["checks"]
    if not c["backup_command"]:
        return []
    import shlex
    name, fix = "backup.command", "run the command by hand: check its credentials and output ([checks] backup_command)"
    try:
        done = subprocess.run(shlex.split(c["backup_command"]), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Result(name, "fail", f"the backup command did not run: {terminal_safe(str(exc).splitlines()[0])}",
                       fix)]
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return [Result(name, "fail", f"the backup command failed: {terminal_safe(why)}", fix)]
    try:
        listed = listed_backups(done.stdout)
    except (ValueError, TypeError) as exc:
        return [Result(name, "fail", f"cannot read the backup command's JSON: {terminal_safe(str(exc))}", fix)]
    max_age_s = parse_duration(c["backup_max_age"]).total_seconds()
    good = listed[~listed["status"].str.lower().isin(BAD_STATUS)]
    if good.empty:
        return [Result(name, "fail", f"the backup command lists {len(listed)} backups, none completed",
                       "the provider's backups are not running: check the project's backup settings")]
    age = (ctx.now - good.iloc[0]["time"]).total_seconds()
    status = f", {terminal_safe(good.iloc[0]['status'])}" if good.iloc[0]["status"] else ""
    evidence = (f"newest of {len(listed)} listed backups: {good.iloc[0]['time']:%Y-%m-%d %H:%M} UTC{status}, "
                f"{_age(max(age, 0))} old (max {_age(max_age_s)})")
    if age > max_age_s:
        return [Result(name, "fail", evidence, "the provider's backups have stopped: check its dashboard")]
    return [Result(name, "pass", evidence)]
