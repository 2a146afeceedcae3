"""backups: WAL archiving status, replication slots, and a real streaming standby."""
import shutil

import pandas as pd
import pytest

import vhdiag
import workload
from helpers import dtypes_of, eventually
from vhdiag.collect import backups
from vhdiag.server import LocalServer

STANDBY_SLOT = "vh_standby_slot"
STANDBY_APP = "vh_standby"
WAIT_S = 15.0  # eventually()'s timeout in this module, above its default of 10 s


def _lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def _lowpriv(server) -> vhdiag.Target:
    return vhdiag.connect(server.dsn(workload.DB, user=workload.LOWPRIV_USER, password=workload.LOWPRIV_PASSWORD))


def test_archiver_with_archiving_off(target):
    df = backups.archiver(target)
    assert df.dtypes.astype(str).to_dict() == dtypes_of(backups.ARCHIVER_COLUMNS)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["archive_mode"], row["archived_count"], row["failed_count"], row["pending_wal_files"]) == ("off", 0, 0, 0)
    assert not row["archive_command_set"] and pd.isna(row["archive_library"])
    assert pd.isna(row["last_archived_time"]) and pd.isna(row["last_archived_age_s"])
    assert row["archive_timeout_s"] == 0 and not row["in_recovery"]
    assert target.notices == {}


def test_archive_command_seen_even_while_archive_mode_is_off(pg, target):
    # With archive_mode off, SHOW archive_command says "(disabled)"; the configured value counts.
    with pg.admin("postgres") as conn:
        conn.execute("ALTER SYSTEM SET archive_command = 'test ! -f /nonexistent/%f'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        df = eventually(lambda: backups.archiver(target), lambda d: d["archive_command_set"].iloc[0],
                        timeout=WAIT_S)
        assert df["archive_command_set"].iloc[0] and df["archive_mode"].iloc[0] == "off"
        assert "nonexistent" not in df.to_string()             # never the command itself
    finally:
        with pg.admin("postgres") as conn:
            conn.execute("ALTER SYSTEM RESET archive_command")
            conn.execute("SELECT pg_reload_conf()")
    df = eventually(lambda: backups.archiver(target), lambda d: not d["archive_command_set"].iloc[0],
                    timeout=WAIT_S)
    assert not df["archive_command_set"].iloc[0]


def test_archiver_for_a_low_privilege_role(pg):
    t = _lowpriv(pg.server)
    try:
        row = backups.archiver(t).iloc[0]
        assert row["archived_count"] == 0 and pd.isna(row["pending_wal_files"])
        assert t.notices == {"backups:archive_status": (
            f"role {workload.LOWPRIV_USER} may not list pg_wal/archive_status, so WAL segments waiting to be "
            f"archived are not counted: GRANT pg_monitor TO {workload.LOWPRIV_USER};")}
    finally:
        t.close()


def test_physical_slot_retains_wal(pg, target):
    slot = "vh_test_slot"
    with pg.admin("postgres") as conn:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
    try:
        df = backups.replication(target)
        assert df.dtypes.astype(str).to_dict() == dtypes_of(backups.REPLICATION_COLUMNS)
        row = df[df["slot_name"] == slot].iloc[0]
        assert (row["kind"], row["slot_type"], row["active"], row["temporary"]) == ("slot", "physical", False, False)
        assert row["wal_status"] == "reserved" and not row["in_recovery"]
        assert pd.isna(row["pid"]) and pd.isna(row["state"]) and pd.isna(row["confirmed_flush_lsn"])
        assert row["retained_wal_bytes"] >= 0
        assert row["retained_wal_bytes"] == _lsn(row["current_lsn"]) - _lsn(row["restart_lsn"])
        # Writing WAL moves the current position; the unused slot keeps its restart_lsn.
        with pg.admin("postgres") as conn:
            conn.execute("SELECT pg_logical_emit_message(false, 'vhdiag-test', repeat('x', 100000))")
        # pg_current_wal_lsn() is the write position: the WAL writer gets there within
        # wal_writer_delay (these servers run with synchronous_commit off).
        later = eventually(lambda: backups.replication(target),
                           lambda d: d.loc[d["slot_name"] == slot, "current_lsn"].iloc[0] != row["current_lsn"],
                           timeout=WAIT_S)
        later = later[later["slot_name"] == slot].iloc[0]
        assert later["restart_lsn"] == row["restart_lsn"]
        assert later["retained_wal_bytes"] - row["retained_wal_bytes"] == \
            _lsn(later["current_lsn"]) - _lsn(row["current_lsn"]) > 0
    finally:
        with pg.admin("postgres") as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    assert slot not in set(backups.replication(target)["slot_name"].dropna())


@pytest.fixture(scope="module")
def standby(pg, servers):
    """A streaming hot standby of the test server, fed through a physical slot."""
    primary = pg.server
    server = LocalServer(primary.bin_dir, servers.base / f"{pg.id}-standby", password=primary.password,
                         extra_settings={
                             "primary_conninfo": f"'host={primary.socket_dir} port={primary.port} "
                                                 f"user=postgres application_name={STANDBY_APP}'",
                             "primary_slot_name": f"'{STANDBY_SLOT}'",
                         })
    with primary.admin("postgres") as conn:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (STANDBY_SLOT,))
    try:
        server.data_dir.mkdir(mode=0o700)
        server._own(server.data_dir)
        server._run("pg_basebackup", "-D", str(server.data_dir), "-h", str(primary.socket_dir),
                    "-p", str(primary.port), "-U", "postgres", "-X", "stream", "-R", "--no-sync",
                    "-c", "fast")
        server.start()
        yield server
    finally:
        server.destroy()
        shutil.rmtree(server.data_dir, ignore_errors=True)
        with primary.admin("postgres") as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = %s", (STANDBY_SLOT,))


def test_primary_sees_the_standby_on_its_slot(target, standby):
    def streaming(df):
        caught_up = df["state"].eq("streaming").fillna(False) & df["replay_lag_bytes"].eq(0).fillna(False)
        return bool((df["slot_name"].eq(STANDBY_SLOT).fillna(False) & caught_up).any())

    df = eventually(lambda: backups.replication(target), streaming, timeout=WAIT_S)
    rows = df[df["slot_name"] == STANDBY_SLOT]
    assert len(rows) == 1                                     # slot and sender on one row
    row = rows.iloc[0]
    assert (row["kind"], row["slot_type"], row["active"]) == ("slot", "physical", True)
    assert (row["application"], row["state"], row["sync_state"], row["user"]) == \
        (STANDBY_APP, "streaming", "async", "postgres")
    assert pd.isna(row["client_addr"])                        # over the Unix socket
    assert row["replay_lsn"] == row["current_lsn"] and row["replay_lag_bytes"] == 0
    assert row["send_lag_bytes"] == _lsn(row["current_lsn"]) - _lsn(row["sent_lsn"])
    assert row["retained_wal_bytes"] == _lsn(row["current_lsn"]) - _lsn(row["restart_lsn"])
    assert row["pid"] > 0 and row["reply_time"].tzinfo is not None
    assert not (df["kind"] == "standby").any()                # the only sender uses the slot


def test_standby_reports_its_receiver(pg, standby):
    t = vhdiag.connect(standby.dsn(workload.DB))
    try:
        assert t.capabilities.in_recovery
        df = eventually(lambda: backups.replication(t),
                        lambda d: bool((d["kind"].eq("receiver") & d["state"].eq("streaming")).fillna(False).any()),
                        timeout=WAIT_S)
        assert df.dtypes.astype(str).to_dict() == dtypes_of(backups.REPLICATION_COLUMNS)
        row = df[df["kind"] == "receiver"].iloc[0]
        assert (row["state"], row["slot_name"], row["client_addr"]) == \
            ("streaming", STANDBY_SLOT, str(pg.server.socket_dir))
        assert row["in_recovery"] and row["replay_lag_s"] >= 0
        # On a standby the lag is measured from the last received position, not pg_current_wal_lsn().
        assert row["replay_lag_bytes"] == _lsn(row["current_lsn"]) - _lsn(row["replay_lsn"])
        archiver = backups.archiver(t).iloc[0]
        assert archiver["in_recovery"] and archiver["archived_count"] == 0
    finally:
        t.close()


def test_low_privilege_role_sees_only_the_sender_pid(pg, standby):
    t = _lowpriv(pg.server)
    try:
        df = backups.replication(t)
        row = df[df["slot_name"] == STANDBY_SLOT].iloc[0]
        assert row["active"] and row["pid"] > 0
        assert pd.isna(row["state"]) and pd.isna(row["replay_lsn"]) and pd.isna(row["replay_lag_bytes"])
        assert t.notices["backups:replication"] == (
            f"role {workload.LOWPRIV_USER} cannot see the state and lag of WAL senders and receivers: "
            f"GRANT pg_read_all_stats TO {workload.LOWPRIV_USER};")
    finally:
        t.close()


def test_other_collectors_run_on_a_standby(standby):
    from vhdiag.collect import activity, database, maintenance
    t = vhdiag.connect(standby.dsn(workload.DB))
    try:
        assert t.capabilities.in_recovery
        # Replayed from the primary: the planted sequence and databases are there.
        seq = maintenance.sequences(t)
        assert seq.loc[seq["sequence"] == workload.NEAR_END_SEQUENCE, "last_value"].iloc[0] == 32000
        assert workload.DB in set(database.collect(t)["database"])
        assert workload.DB in set(maintenance.databases(t)["database"])
        assert "machine_events" in set(maintenance.tables(t)["table"])
        assert activity.summary(t)["total_connections"].iloc[0] >= 1
        assert t.notices == {}
    finally:
        t.close()
