"""Schema migrations: an ordered list of functions, each applied once in its own
transaction and recorded by name in the `migrations` table.

Never edit a migration that has shipped; append a new one. A database carrying a
migration this code does not know was written by a newer opsconsole and is refused,
since this version would misread (or damage) whatever that migration changed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import sqlite_utils

from opsconsole.errors import StoreError
from opsconsole.store.transaction import write_transaction

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration; its function name is its recorded name."""
    MIGRATIONS.append(fn)
    return fn


def migrate(db: sqlite_utils.Database, path: str = "") -> list[str]:
    """Apply every migration not yet recorded; return the names applied now.

    Safe when two consoles open a fresh file at once: each migration re-checks, inside
    its write transaction, that the other did not apply it first.
    """
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_ts REAL NOT NULL)"
    )
    known = [fn.__name__ for fn in MIGRATIONS]
    recorded = {name for (name,) in conn.execute("SELECT name FROM migrations")}
    unknown = sorted(recorded - set(known))
    if unknown:
        raise StoreError(
            f"store {path}: database was written by a newer opsconsole "
            f"(unknown migration {', '.join(unknown)}); upgrade opsconsole or use another file"
        )
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in recorded:
            continue
        with write_transaction(db, f"migration {fn.__name__}") as tx:
            done = tx.execute("SELECT 1 FROM migrations WHERE name = ?", (fn.__name__,))
            if done.fetchone() is not None:
                continue
            fn(db)
            tx.execute(
                "INSERT INTO migrations (name, applied_ts) VALUES (?, ?)",
                (fn.__name__, time.time()),
            )
        applied.append(fn.__name__)
    return applied


def _run(db: sqlite_utils.Database, script: str) -> None:
    # Statement by statement: sqlite3's executescript() would commit our transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.conn.execute(statement)


def _run_with_triggers(db: sqlite_utils.Database, script: str) -> None:
    """Like `_run`, but a statement ends only where SQLite says it is complete, so trigger
    bodies (which hold `;` between BEGIN and END) stay whole."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                db.conn.execute(pending)
            pending = ""
    if pending.strip(" \n;"):
        db.conn.execute(pending)


@migration
def m0001_inventory(db: sqlite_utils.Database) -> None:
    """Sites, racks, hosts from the config; GPU slots and swaps from agent hellos."""
    _run(
        db,
        """
        CREATE TABLE sites (
            name TEXT PRIMARY KEY,
            description TEXT NOT NULL DEFAULT '',
            timezone TEXT NOT NULL DEFAULT 'UTC'
        );
        CREATE TABLE racks (
            name TEXT PRIMARY KEY,
            site TEXT NOT NULL REFERENCES sites(name),
            leaf TEXT,
            power_budget_kw REAL
        );
        CREATE TABLE hosts (
            name TEXT PRIMARY KEY,
            site TEXT REFERENCES sites(name),
            rack TEXT REFERENCES racks(name),
            address TEXT,
            host_class TEXT,
            expected_gpus INTEGER,
            mode TEXT,
            in_config INTEGER NOT NULL DEFAULT 1,
            first_seen_ts REAL,
            last_seen_ts REAL,
            last_hello TEXT
        );
        CREATE INDEX hosts_rack ON hosts(rack);
        CREATE TABLE gpu_slots (
            host TEXT NOT NULL REFERENCES hosts(name),
            gpu_index INTEGER NOT NULL,
            uuid TEXT,
            model TEXT,
            serial TEXT,
            pci_bus_id TEXT,
            first_seen_ts REAL NOT NULL,
            last_seen_ts REAL NOT NULL,
            PRIMARY KEY (host, gpu_index)
        );
        CREATE INDEX gpu_slots_uuid ON gpu_slots(uuid);
        CREATE TABLE gpu_swaps (
            id INTEGER PRIMARY KEY,
            host TEXT NOT NULL REFERENCES hosts(name),
            gpu_index INTEGER NOT NULL,
            old_uuid TEXT NOT NULL,
            new_uuid TEXT NOT NULL,
            ts REAL NOT NULL
        );
        CREATE INDEX gpu_swaps_ts ON gpu_swaps(ts);
        """,
    )


@migration
def m0002_telemetry(db: sqlite_utils.Database) -> None:
    """Per-GPU minute rollups and the event log.

    No foreign keys to hosts here: telemetry from a host since removed from the config
    must neither fail a flush nor vanish with it. Event kinds are checked in Python, not
    by a CHECK constraint, so adding a kind does not need a table rebuild.
    """
    _run(
        db,
        """
        CREATE TABLE gpu_minute (
            host TEXT NOT NULL,
            gpu_index INTEGER NOT NULL,
            minute_ts INTEGER NOT NULL,
            n INTEGER NOT NULL,
            util_pct_n INTEGER NOT NULL,
            util_pct_min REAL,
            util_pct_avg REAL,
            util_pct_max REAL,
            temp_c_n INTEGER NOT NULL,
            temp_c_min REAL,
            temp_c_avg REAL,
            temp_c_max REAL,
            power_w_n INTEGER NOT NULL,
            power_w_min REAL,
            power_w_avg REAL,
            power_w_max REAL,
            mem_used_mib_n INTEGER NOT NULL,
            mem_used_mib_avg REAL,
            mem_used_mib_max REAL,
            clock_event_n INTEGER NOT NULL,
            clock_event_share_power REAL,
            clock_event_share_thermal REAL,
            PRIMARY KEY (host, gpu_index, minute_ts)
        ) WITHOUT ROWID;
        CREATE INDEX gpu_minute_minute_ts ON gpu_minute(minute_ts);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            host TEXT NOT NULL,
            gpu_index INTEGER,
            kind TEXT NOT NULL,
            code INTEGER,
            source TEXT,
            message TEXT NOT NULL DEFAULT '',
            fingerprint TEXT NOT NULL UNIQUE
        );
        CREATE INDEX events_ts ON events(ts);
        CREATE INDEX events_host_ts ON events(host, ts);
        """,
    )


@migration
def m0003_leases(db: sqlite_utils.Database) -> None:
    """Tenants, leases over GPU slots, drains and the hash-chained audit log.

    `lease_slots` is the booking index: one row per (lease, host, GPU index) carrying the
    lease's booked window, shortened on release and emptied (end = start) on cancel, so
    "is this slot free from s to e" is one indexed range query inside the write
    transaction. The triggers re-check that on every insert and window change: a bug in
    the placement code, or a second program writing the file, still cannot double-book.
    `lease_slots_window` covers "what is booked in this window" (placement's main read)
    without touching the table. The audit log refuses UPDATE and DELETE; `audit_head`
    holds the last row's id and hash so removing the newest rows is noticed too.
    """
    overlap = """
        SELECT 1 FROM lease_slots s
        WHERE s.host = NEW.host AND s.gpu_index = NEW.gpu_index AND s.lease_id != NEW.lease_id
          AND s.end_ts > s.start_ts AND s.end_ts > NEW.start_ts AND s.start_ts < NEW.end_ts
    """
    _run_with_triggers(
        db,
        f"""
        CREATE TABLE tenants (
            name TEXT PRIMARY KEY,
            contact TEXT NOT NULL DEFAULT '',
            colour TEXT NOT NULL DEFAULT '',
            allowed_sites TEXT,
            gpu_quota INTEGER NOT NULL CHECK (gpu_quota >= 0),
            created_ts REAL NOT NULL,
            archived_ts REAL
        );
        CREATE TABLE leases (
            id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL REFERENCES tenants(name),
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            gpu_count INTEGER NOT NULL CHECK (gpu_count > 0),
            request TEXT NOT NULL,
            placement TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT '',
            override_reason TEXT,
            created_ts REAL NOT NULL,
            created_by TEXT NOT NULL,
            released_ts REAL,
            cancelled_ts REAL,
            CHECK (end_ts > start_ts)
        );
        CREATE INDEX leases_tenant ON leases(tenant, end_ts);
        CREATE INDEX leases_end ON leases(end_ts);
        CREATE TABLE lease_slots (
            lease_id INTEGER NOT NULL REFERENCES leases(id),
            host TEXT NOT NULL,
            gpu_index INTEGER NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            PRIMARY KEY (lease_id, host, gpu_index),
            CHECK (end_ts >= start_ts)
        );
        CREATE INDEX lease_slots_slot ON lease_slots(host, gpu_index, end_ts);
        CREATE INDEX lease_slots_window ON lease_slots(end_ts, start_ts, host, gpu_index, lease_id);
        CREATE TRIGGER lease_slots_no_overlap_insert BEFORE INSERT ON lease_slots
        WHEN NEW.end_ts > NEW.start_ts AND EXISTS ({overlap})
        BEGIN SELECT RAISE(ABORT, 'GPU slot already leased in that window'); END;
        CREATE TRIGGER lease_slots_no_overlap_update BEFORE UPDATE OF start_ts, end_ts, host,
            gpu_index ON lease_slots
        WHEN NEW.end_ts > NEW.start_ts AND EXISTS ({overlap})
        BEGIN SELECT RAISE(ABORT, 'GPU slot already leased in that window'); END;
        CREATE TABLE drains (
            id INTEGER PRIMARY KEY,
            host TEXT NOT NULL,
            gpu_index INTEGER,
            reason TEXT NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL,
            created_ts REAL NOT NULL,
            created_by TEXT NOT NULL,
            lifted_ts REAL,
            lifted_by TEXT
        );
        CREATE INDEX drains_host ON drains(host, gpu_index);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            before TEXT,
            after TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_log_subject ON audit_log(subject);
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TABLE audit_head (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            id INTEGER NOT NULL,
            hash TEXT NOT NULL
        );
        INSERT INTO audit_head (one, id, hash) VALUES (1, 0, '{"0" * 64}')
        """,
    )


@migration
def m0004_alerts(db: sqlite_utils.Database) -> None:
    """Alerts keyed by fingerprint, every state transition, and silences.

    One row per fingerprint for its whole life: a condition that returns after being
    resolved re-opens its row (`fire_count` goes up), so the history of one GPU's
    overheating stays in one place. `notified_ts` is the time the current firing was
    handed out for notification, written in the same transaction that decides it, so a
    restart or a second console never notifies the same firing twice. Silences carry
    their own CHECK on the window; "at least one matcher" is checked in Python with a
    message for the operator.
    """
    _run(
        db,
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            fingerprint TEXT NOT NULL UNIQUE,
            rule TEXT NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            labels TEXT NOT NULL,
            summary TEXT NOT NULL,
            from_readings INTEGER NOT NULL DEFAULT 1,
            keep_firing_for_s REAL NOT NULL DEFAULT 0,
            state TEXT NOT NULL,
            first_fired_ts REAL NOT NULL,
            fired_ts REAL NOT NULL,
            last_seen_ts REAL NOT NULL,
            fire_count INTEGER NOT NULL DEFAULT 1,
            notified_ts REAL,
            silenced_by INTEGER,
            acked_ts REAL,
            acked_by TEXT,
            ack_comment TEXT,
            ack_expires_ts REAL,
            resolved_ts REAL,
            resolved_by TEXT,
            resolve_comment TEXT
        );
        CREATE INDEX alerts_state ON alerts(state, fired_ts);
        CREATE TABLE alert_history (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id),
            ts REAL NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            operator TEXT,
            comment TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX alert_history_alert ON alert_history(alert_id, ts);
        CREATE TABLE silences (
            id INTEGER PRIMARY KEY,
            site TEXT,
            rack TEXT,
            host TEXT,
            gpu TEXT,
            rule TEXT,
            tenant TEXT,
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            created_ts REAL NOT NULL,
            created_by TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            CHECK (end_ts > start_ts)
        );
        CREATE INDEX silences_end ON silences(end_ts);
        """,
    )


@migration
def m0005_alert_engine(db: sqlite_utils.Database) -> None:
    """Which alert engine records alerts for this store, and when it last said so.

    A headless `opsconsole poll` and any number of consoles may share one store; each
    runs an engine, but only the holder of this one row records and notifies, so two
    engines whose views differ for a moment cannot resolve and re-open each other's
    alerts. The others evaluate on stand-by and take over when the heartbeat is stale.
    """
    _run(
        db,
        """
        CREATE TABLE alert_engine (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            owner TEXT NOT NULL,
            heartbeat_ts REAL NOT NULL
        );
        """,
    )


@migration
def m0009_plugin_queue(db: sqlite_utils.Database) -> None:
    """Work a plugin must not lose across a restart (a notifier's undelivered messages).

    Owned by `opsconsole.plugin.queue`, which is the only code that reads or writes it;
    each row belongs to one plugin by name. `due_ts` is when the next attempt may run.
    """
    _run(
        db,
        """
        CREATE TABLE plugin_queue (
            id INTEGER PRIMARY KEY,
            plugin TEXT NOT NULL,
            created_ts REAL NOT NULL,
            due_ts REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            payload TEXT NOT NULL
        );
        CREATE INDEX plugin_queue_due ON plugin_queue (plugin, due_ts);
        """,
    )


@migration
def m0010_flight_recorder(db: sqlite_utils.Database) -> None:
    """The flight recorder (`store/recorder.py`): raw samples, one row per host-minute, in
    a ring keyed by slot so the table is bounded without a deletion job (rowid tables:
    the bodies are kilobytes); the ring's layout; hellos for replay; and the minutes kept
    around critical alerts for as long as the alert is kept; and the first and last
    reading of NVML's energy counter per GPU per hour (kept as long as the rollups),
    from which reports take measured energy."""
    _run(
        db,
        """
        CREATE TABLE recorder_ring (
            slot INTEGER NOT NULL,
            host TEXT NOT NULL,
            minute_ts INTEGER NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (slot, host)
        );
        CREATE INDEX recorder_ring_minute ON recorder_ring(minute_ts);
        CREATE TABLE recorder_meta (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            slot_s REAL NOT NULL,
            slots INTEGER NOT NULL
        );
        CREATE TABLE recorder_hellos (
            host TEXT NOT NULL,
            ts REAL NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (host, ts)
        ) WITHOUT ROWID;
        CREATE TABLE recorder_capture (
            alert_id INTEGER NOT NULL,
            host TEXT NOT NULL,
            minute_ts INTEGER NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (alert_id, host, minute_ts)
        );
        CREATE INDEX recorder_capture_minute ON recorder_capture(minute_ts);
        CREATE TABLE gpu_energy_hour (
            host TEXT NOT NULL,
            gpu_index INTEGER NOT NULL,
            hour_ts INTEGER NOT NULL,
            first_ts REAL NOT NULL,
            first_mj INTEGER NOT NULL,
            last_ts REAL NOT NULL,
            last_mj INTEGER NOT NULL,
            PRIMARY KEY (host, gpu_index, hour_ts)
        ) WITHOUT ROWID;
        CREATE INDEX gpu_energy_hour_ts ON gpu_energy_hour(hour_ts);
        """,
    )


@migration
def m0011_validation(db: sqlite_utils.Database) -> None:
    """Validation runs and node handover (issue 18).

    `validation_runs` and `validation_checks` belong to `opsconsole.validate` (every run
    with its raw output, figures, verdict and operator). `node_handover`, `node_passes`
    and `handover_epoch` belong to `opsconsole.leases.handover`: which nodes are held by
    a run, each node's last pass per level, its last failure and last cleaning, and from
    when ended leases send their nodes to cleaning (set when cleaning is first switched
    on: leases that ended before are not cleaned retroactively).
    """
    _run(
        db,
        """
        CREATE TABLE validation_runs (
            id INTEGER PRIMARY KEY,
            level TEXT NOT NULL,
            fabric INTEGER NOT NULL DEFAULT 0,
            hosts TEXT NOT NULL,
            state TEXT NOT NULL,
            operator TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            override_reason TEXT,
            summary TEXT NOT NULL DEFAULT '',
            verdicts TEXT,
            started_ts REAL NOT NULL,
            finished_ts REAL
        );
        CREATE INDEX validation_runs_started ON validation_runs(started_ts);
        CREATE TABLE validation_checks (
            run_id INTEGER NOT NULL REFERENCES validation_runs(id),
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            hosts TEXT NOT NULL,
            status TEXT NOT NULL,
            summary TEXT NOT NULL,
            figures TEXT NOT NULL,
            command TEXT NOT NULL,
            raw TEXT NOT NULL,
            exit_status INTEGER,
            blame TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (run_id, seq)
        );
        CREATE TABLE node_handover (
            host TEXT PRIMARY KEY,
            busy TEXT CHECK (busy IN ('validating', 'cleaning')),
            busy_run_id INTEGER,
            busy_since_ts REAL,
            busy_until_ts REAL,
            clean_tried_ts REAL,
            cleaned_ts REAL,
            failed_run_id INTEGER,
            failed_ts REAL,
            failed_reason TEXT
        );
        CREATE TABLE node_passes (
            host TEXT NOT NULL,
            level TEXT NOT NULL,
            passed_ts REAL NOT NULL,
            run_id INTEGER NOT NULL,
            PRIMARY KEY (host, level)
        );
        CREATE TABLE handover_epoch (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            since_ts REAL NOT NULL,
            clean_through_ts REAL
        );
        """,
    )
