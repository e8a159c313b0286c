//! Versioned schema. Each entry moves the database from version `i` to `i + 1`
//! (`PRAGMA user_version`); entries are only ever appended, never edited.

use super::{Result, StoreError};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: users, tokens, places, terminals, settings, desktops.
    "CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        hash       TEXT PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        issued_at  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX tokens_by_user ON tokens(user_id);
    CREATE TABLE places (
        id      INTEGER PRIMARY KEY,
        name    TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE terminals (
        mac           TEXT PRIMARY KEY,
        place_id      INTEGER NOT NULL REFERENCES places(id) ON DELETE RESTRICT,
        seat_number   TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('APPROVED', 'WAITING', 'REJECTED')),
        register_mode TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        UNIQUE (place_id, seat_number)
    );
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE desktops (
        id                      TEXT PRIMARY KEY,
        name                    TEXT NOT NULL,
        owner_id                INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
        status                  TEXT NOT NULL,
        os_username             TEXT NOT NULL,
        os_password             TEXT NOT NULL,
        default_connection_type TEXT NOT NULL CHECK (default_connection_type IN ('rdp', 'spice')),
        enable_usb              INTEGER NOT NULL,
        enable_clipboard        INTEGER NOT NULL,
        enable_audio            INTEGER NOT NULL,
        created_at              INTEGER NOT NULL
    );
    CREATE INDEX desktops_by_owner ON desktops(owner_id);",
    // 2: the catalogue (images, flavors), what each desktop runs, cloud API instances.
    "CREATE TABLE images (
        id                      INTEGER PRIMARY KEY,
        name                    TEXT NOT NULL UNIQUE,
        base_disk               TEXT NOT NULL,
        default_connection_type TEXT NOT NULL CHECK (default_connection_type IN ('rdp', 'spice')),
        os_username             TEXT NOT NULL,
        os_password             TEXT NOT NULL,
        created_at              INTEGER NOT NULL
    );
    CREATE TABLE flavors (
        id       INTEGER PRIMARY KEY,
        name     TEXT NOT NULL UNIQUE,
        vcpus    INTEGER NOT NULL CHECK (vcpus BETWEEN 1 AND 64),
        ram_mib  INTEGER NOT NULL CHECK (ram_mib >= 64),
        disk_gib INTEGER NOT NULL CHECK (disk_gib >= 1)
    );
    INSERT INTO flavors (name, vcpus, ram_mib, disk_gib) VALUES
        ('m1.tiny', 1, 512, 1),
        ('m1.small', 1, 2048, 20),
        ('m1.medium', 2, 4096, 40);
    ALTER TABLE desktops ADD COLUMN image_id INTEGER REFERENCES images(id) ON DELETE RESTRICT;
    ALTER TABLE desktops ADD COLUMN flavor_id INTEGER REFERENCES flavors(id) ON DELETE RESTRICT;
    CREATE TABLE instances (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE RESTRICT,
        flavor_id  INTEGER NOT NULL REFERENCES flavors(id) ON DELETE RESTRICT,
        internet   INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );",
    // 3: the audit log (who did what, when, from where; never a secret) and the
    // management console's sessions (only the SHA-256 of a session id is kept).
    "CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        actor   TEXT NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        action  TEXT NOT NULL,
        target  TEXT NOT NULL DEFAULT '',
        detail  TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_time ON audit(at);
    CREATE TABLE console_sessions (
        hash       TEXT PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );",
    // 4: images that run the QEMU guest agent, through which each desktop's own OS
    // password is set in the guest.
    "ALTER TABLE images ADD COLUMN guest_agent INTEGER NOT NULL DEFAULT 0;",
    // 5: the launch and removal journal. A machine's record is written `pending`
    // before its machine is defined and made `ready` right before the caller is
    // answered; it turns `removing` before its machine is destroyed. Only `ready`
    // rows are shown; a server starting up finishes or undoes the others
    // (`service::recovery`).
    "ALTER TABLE instances ADD COLUMN phase TEXT NOT NULL DEFAULT 'ready'
        CHECK (phase IN ('pending', 'ready', 'removing'));
    ALTER TABLE desktops ADD COLUMN phase TEXT NOT NULL DEFAULT 'ready'
        CHECK (phase IN ('pending', 'ready', 'removing'));",
];

pub(super) fn apply(connection: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let found: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", version as i64 + 1)?;
    }
    transaction.commit()?;
    Ok(())
}
