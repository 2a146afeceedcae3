-- Replication slots, WAL senders and (on a standby) the WAL receiver, with lag.
-- PostgreSQL 17 added pg_replication_slots.inactive_since and invalidation_reason.
WITH /* vhdiag */ cur AS (
    SELECT pg_is_in_recovery() AS in_recovery,
           CASE WHEN pg_is_in_recovery()
                THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END AS lsn
), senders AS (
    SELECT CASE WHEN s.slot_name IS NOT NULL THEN 'slot' ELSE 'standby' END AS kind,
           s.slot_name, s.slot_type, s.plugin, s.database, s.active, s.temporary,
           s.restart_lsn, s.confirmed_flush_lsn, s.wal_status, s.safe_wal_size,
           s.inactive_since, s.invalidation_reason,
           coalesce(r.pid, s.active_pid) AS pid, r.usename, r.application_name, host(r.client_addr) AS client_addr,
           r.state, r.sync_state, r.sent_lsn, r.write_lsn, r.flush_lsn, r.replay_lsn,
           r.write_lag, r.flush_lag, r.replay_lag, r.reply_time
    FROM pg_replication_slots s
    FULL JOIN pg_stat_replication r ON r.pid = s.active_pid
), receiver AS (
    SELECT 'receiver'::text AS kind,
           w.slot_name, NULL::text AS slot_type, NULL::name AS plugin, NULL::name AS database,
           NULL::boolean AS active, NULL::boolean AS temporary,
           NULL::pg_lsn AS restart_lsn, NULL::pg_lsn AS confirmed_flush_lsn, NULL::text AS wal_status,
           NULL::bigint AS safe_wal_size, NULL::timestamptz AS inactive_since, NULL::text AS invalidation_reason,
           w.pid, NULL::name AS usename, NULL::text AS application_name, w.sender_host AS client_addr,
           w.status AS state, NULL::text AS sync_state, w.latest_end_lsn AS sent_lsn,
           w.written_lsn AS write_lsn, w.flushed_lsn AS flush_lsn, pg_last_wal_replay_lsn() AS replay_lsn,
           NULL::interval AS write_lag, NULL::interval AS flush_lag,
           -- replay delay: none when everything received is replayed, else the age of the
           -- last replayed transaction
           CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN interval '0'
                ELSE statement_timestamp() - pg_last_xact_replay_timestamp() END AS replay_lag,
           w.last_msg_receipt_time AS reply_time
    FROM pg_stat_wal_receiver w
)
SELECT x.kind,
       x.slot_name,
       x.slot_type,
       x.plugin,
       x.database,
       x.active,
       x.temporary,
       x.restart_lsn::text AS restart_lsn,
       x.confirmed_flush_lsn::text AS confirmed_flush_lsn,
       pg_wal_lsn_diff(cur.lsn, x.restart_lsn)::bigint AS retained_wal_bytes,
       pg_wal_lsn_diff(cur.lsn, x.confirmed_flush_lsn)::bigint AS confirmed_lag_bytes,
       x.wal_status,
       x.safe_wal_size AS safe_wal_size_bytes,
       x.inactive_since,
       x.invalidation_reason,
       x.pid,
       x.usename AS "user",
       x.application_name AS application,
       x.client_addr,
       x.state,
       x.sync_state,
       x.sent_lsn::text AS sent_lsn,
       x.write_lsn::text AS write_lsn,
       x.flush_lsn::text AS flush_lsn,
       x.replay_lsn::text AS replay_lsn,
       pg_wal_lsn_diff(cur.lsn, x.sent_lsn)::bigint AS send_lag_bytes,
       pg_wal_lsn_diff(cur.lsn, x.replay_lsn)::bigint AS replay_lag_bytes,
       extract(epoch FROM x.write_lag)::float8 AS write_lag_s,
       extract(epoch FROM x.flush_lag)::float8 AS flush_lag_s,
       extract(epoch FROM x.replay_lag)::float8 AS replay_lag_s,
       x.reply_time,
       cur.lsn::text AS current_lsn,
       cur.in_recovery,
       statement_timestamp() AS ts
FROM (SELECT * FROM senders UNION ALL SELECT * FROM receiver) x
CROSS JOIN cur
ORDER BY x.kind, x.slot_name, x.pid
