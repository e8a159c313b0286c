//! SQLite, the only place thindesk keeps anything. Nothing outside this module
//! touches rusqlite.
//!
//! The store is synchronous: callers on the async side reach it through
//! `tokio::task::spawn_blocking` (see `http::blocking`), so SQLite's locking and disk
//! waits never stall a runtime worker.

mod migrations;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use thindesk_shared::{ConnectionType, DesktopStatus, MacAddress, Policy, RegistrationMode, Secret, TerminalState};

pub const DATABASE_FILE: &str = "thindesk.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("the database is at schema version {found}, newer than this program knows ({known}); upgrade thindesk")]
    TooNew { found: i64, known: i64 },
    #[error("stored value {value:?} in {column} is not valid")]
    Corrupt { column: &'static str, value: String },
    #[error("{0}")]
    Conflict(Conflict),
    /// A delete refused because other rows still refer to the row.
    #[error("still in use: {0:?}")]
    InUse(Dependents),
    /// A write that names a row that is not there.
    #[error("no such {0}")]
    Missing(&'static str),
}

/// What still refers to a row that was to be deleted; the services put it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependents {
    /// A user's desktops.
    Desktops,
    /// A place's terminals.
    Terminals,
    /// An image's or a flavor's desktops and cloud instances.
    Machines,
}

/// A write that would break a uniqueness rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("a user with this name exists")]
    UserExists,
    #[error("a place with this name exists")]
    PlaceExists,
    #[error("a terminal with this MAC address exists")]
    TerminalExists,
    #[error("this seat of this place already has a terminal")]
    SeatTaken,
    #[error("an image with this name exists")]
    ImageExists,
    #[error("a flavor with this name exists")]
    FlavorExists,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub user: UserRecord,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceRecord {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalRecord {
    pub mac: MacAddress,
    pub place: String,
    pub seat_number: String,
    pub state: TerminalState,
    pub register_mode: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTerminal<'a> {
    pub mac: MacAddress,
    pub place: &'a str,
    pub seat_number: &'a str,
    pub state: TerminalState,
    pub register_mode: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopRecord {
    pub id: String,
    pub name: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub status: DesktopStatus,
    pub os_username: String,
    pub os_password: Secret,
    pub default_connection_type: ConnectionType,
    pub policy: Policy,
    pub created_at: i64,
    /// The catalogue image and flavor the desktop's machine was defined from, by name;
    /// `None` for desktops made before the catalogue existed.
    pub image: Option<String>,
    pub flavor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDesktop<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub owner_id: i64,
    pub status: DesktopStatus,
    pub os_username: &'a str,
    pub os_password: &'a Secret,
    pub default_connection_type: ConnectionType,
    pub policy: Policy,
    pub image_id: Option<i64>,
    pub flavor_id: Option<i64>,
}

/// A base disk and how to log in to the system on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: i64,
    pub name: String,
    pub base_disk: PathBuf,
    pub default_connection_type: ConnectionType,
    pub os_username: String,
    pub os_password: Secret,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage<'a> {
    pub name: &'a str,
    pub base_disk: &'a str,
    pub default_connection_type: ConnectionType,
    pub os_username: &'a str,
    pub os_password: &'a Secret,
}

/// A machine size, as OpenStack names them (`m1.small`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlavorRecord {
    pub id: i64,
    pub name: String,
    pub vcpus: u32,
    pub ram_mib: u32,
    pub disk_gib: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlavor<'a> {
    pub name: &'a str,
    pub vcpus: u32,
    pub ram_mib: u32,
    pub disk_gib: u32,
}

/// A virtual machine launched through the cloud API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub id: String,
    pub name: String,
    pub image: String,
    pub flavor: String,
    pub internet: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub image_id: i64,
    pub flavor_id: i64,
    pub internet: bool,
}

/// One line of the audit log as written. No field may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub address: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Which audit entries to read; `None` matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: i64,
}

/// Keys of the `settings` table: the same names the admin API reads and writes.
pub mod setting {
    pub const TERMINAL_REGISTRATION_MODE: &str = thindesk_shared::admin::Settings::TERMINAL_REGISTRATION_MODE;
}

/// The database. One connection, serialised by a mutex: a school's server sees a few
/// requests a second, and SQLite writes one at a time anyway. Other processes (the
/// admin command line) may open the same file meanwhile; WAL and a busy timeout make
/// that safe.
pub struct Store {
    connection: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up
    /// to date.
    pub fn open(data_dir: &Path) -> Result<Self> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DATABASE_FILE);
        let mut connection = Connection::open(&path)?;
        restrict_to_owner(&path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        migrations::apply(&mut connection)?;
        Ok(Self { connection: Mutex::new(connection), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-written state behind (every
        // write is a transaction), so a poisoned lock is safe to keep using.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` in one IMMEDIATE transaction: it commits if `work` returns `Ok`, and
    /// leaves the database untouched otherwise.
    fn write<T>(&self, work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&transaction)?;
        transaction.commit()?;
        Ok(value)
    }

    // ----- users ---------------------------------------------------------------

    pub fn insert_user(&self, name: &str, password_hash: &str, is_admin: bool, now: i64) -> Result<i64> {
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::UserExists));
            }
            tx.execute(
                "INSERT INTO users (name, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, password_hash, is_admin, now],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Inserts every user or none: one name that exists refuses the whole batch.
    pub fn insert_users(&self, users: &[(String, String, bool)], now: i64) -> Result<()> {
        self.write(|tx| {
            for (name, password_hash, is_admin) in users {
                if tx.query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some() {
                    return Err(StoreError::Conflict(Conflict::UserExists));
                }
                tx.execute(
                    "INSERT INTO users (name, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![name, password_hash, is_admin, now],
                )?;
            }
            Ok(())
        })
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                "SELECT id, name, password_hash, is_admin, created_at FROM users WHERE name = ?1",
                [name],
                user_from_row,
            )
            .optional()?)
    }

    pub fn users(&self) -> Result<Vec<UserRecord>> {
        let connection = self.lock();
        let mut statement =
            connection.prepare("SELECT id, name, password_hash, is_admin, created_at FROM users ORDER BY name")?;
        let rows = statement.query_map([], user_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets a new password hash and drops every token of the user except `keep_token`.
    /// Returns false when there is no such user.
    pub fn set_password(&self, user_id: i64, password_hash: &str, keep_token: Option<&str>) -> Result<bool> {
        self.write(|tx| {
            let changed =
                tx.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![password_hash, user_id])?;
            if changed == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM tokens WHERE user_id = ?1 AND hash IS NOT ?2", params![user_id, keep_token])?;
            Ok(true)
        })
    }

    pub fn set_admin(&self, user_id: i64, is_admin: bool) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("UPDATE users SET is_admin = ?1 WHERE id = ?2", params![is_admin, user_id])? > 0))
    }

    /// Deletes a user and their tokens. Refused while the user owns desktops, so that no
    /// running machine is orphaned.
    pub fn delete_user(&self, user_id: i64) -> Result<bool> {
        self.write(|tx| {
            let desktops: i64 =
                tx.query_row("SELECT count(*) FROM desktops WHERE owner_id = ?1", [user_id], |row| row.get(0))?;
            if desktops > 0 {
                return Err(StoreError::InUse(Dependents::Desktops));
            }
            Ok(tx.execute("DELETE FROM users WHERE id = ?1", [user_id])? > 0)
        })
    }

    // ----- tokens --------------------------------------------------------------

    /// Stores a token's hash, and forgets tokens that have expired.
    pub fn insert_token(&self, hash: &str, user_id: i64, issued_at: i64, expires_at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM tokens WHERE expires_at <= ?1", [issued_at])?;
            tx.execute(
                "INSERT INTO tokens (hash, user_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![hash, user_id, issued_at, expires_at],
            )?;
            Ok(())
        })
    }

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                "SELECT u.id, u.name, u.password_hash, u.is_admin, u.created_at, t.issued_at, t.expires_at
                 FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
                [hash],
                |row| Ok(TokenRecord { user: user_from_row(row)?, issued_at: row.get(5)?, expires_at: row.get(6)? }),
            )
            .optional()?)
    }

    // ----- places --------------------------------------------------------------

    pub fn insert_place(&self, name: &str, address: &str) -> Result<()> {
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM places WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::PlaceExists));
            }
            tx.execute("INSERT INTO places (name, address) VALUES (?1, ?2)", params![name, address])?;
            Ok(())
        })
    }

    pub fn places(&self) -> Result<Vec<PlaceRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare("SELECT name, address FROM places ORDER BY name")?;
        let rows = statement.query_map([], |row| Ok(PlaceRecord { name: row.get(0)?, address: row.get(1)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn place_exists(&self, name: &str) -> Result<bool> {
        let connection = self.lock();
        Ok(connection.query_row("SELECT 1 FROM places WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some())
    }

    /// Deletes a place. Refused while terminals sit in it.
    pub fn delete_place(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            let terminals: i64 = tx.query_row(
                "SELECT count(*) FROM terminals t JOIN places p ON p.id = t.place_id WHERE p.name = ?1",
                [name],
                |row| row.get(0),
            )?;
            if terminals > 0 {
                return Err(StoreError::InUse(Dependents::Terminals));
            }
            Ok(tx.execute("DELETE FROM places WHERE name = ?1", [name])? > 0)
        })
    }

    // ----- terminals -----------------------------------------------------------

    /// Registers a terminal, checking both uniqueness rules inside one transaction so
    /// that two terminals racing for one seat cannot both get it.
    pub fn insert_terminal(&self, terminal: &NewTerminal<'_>, now: i64) -> Result<()> {
        let mac = terminal.mac.to_string();
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM terminals WHERE mac = ?1", [&mac], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::TerminalExists));
            }
            let place_id: i64 =
                tx.query_row("SELECT id FROM places WHERE name = ?1", [terminal.place], |r| r.get(0))?;
            let seat_taken = tx
                .query_row(
                    "SELECT 1 FROM terminals WHERE place_id = ?1 AND seat_number = ?2",
                    params![place_id, terminal.seat_number],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if seat_taken {
                return Err(StoreError::Conflict(Conflict::SeatTaken));
            }
            tx.execute(
                "INSERT INTO terminals (mac, place_id, seat_number, state, register_mode, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![mac, place_id, terminal.seat_number, terminal.state.as_str(), terminal.register_mode, now],
            )?;
            Ok(())
        })
    }

    pub fn terminal(&self, mac: MacAddress) -> Result<Option<TerminalRecord>> {
        let connection = self.lock();
        connection
            .query_row(&format!("{TERMINAL_SELECT} WHERE t.mac = ?1"), [mac.to_string()], terminal_from_row)
            .optional()?
            .transpose()
    }

    pub fn terminals(&self, state: Option<TerminalState>) -> Result<Vec<TerminalRecord>> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!("{TERMINAL_SELECT} WHERE ?1 IS NULL OR t.state = ?1 ORDER BY p.name, t.seat_number"))?;
        let rows = statement.query_map([state.map(TerminalState::as_str)], terminal_from_row)?;
        rows.map(|row| row?).collect()
    }

    pub fn set_terminal_state(&self, mac: MacAddress, state: TerminalState) -> Result<bool> {
        self.write(|tx| {
            Ok(tx
                .execute("UPDATE terminals SET state = ?1 WHERE mac = ?2", params![state.as_str(), mac.to_string()])?
                > 0)
        })
    }

    /// Moves a terminal to another place and seat; false when there is no such
    /// terminal. The seat must be free (or be the terminal's own).
    pub fn move_terminal(&self, mac: MacAddress, place: &str, seat_number: &str) -> Result<bool> {
        let mac = mac.to_string();
        self.write(|tx| {
            let Some(place_id) =
                tx.query_row("SELECT id FROM places WHERE name = ?1", [place], |r| r.get::<_, i64>(0)).optional()?
            else {
                return Err(StoreError::Missing("place"));
            };
            let taken = tx
                .query_row(
                    "SELECT 1 FROM terminals WHERE place_id = ?1 AND seat_number = ?2 AND mac <> ?3",
                    params![place_id, seat_number, mac],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if taken {
                return Err(StoreError::Conflict(Conflict::SeatTaken));
            }
            Ok(tx.execute(
                "UPDATE terminals SET place_id = ?1, seat_number = ?2 WHERE mac = ?3",
                params![place_id, seat_number, mac],
            )? > 0)
        })
    }

    pub fn delete_terminal(&self, mac: MacAddress) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM terminals WHERE mac = ?1", [mac.to_string()])? > 0))
    }

    // ----- settings ------------------------------------------------------------

    pub fn registration_mode(&self) -> Result<RegistrationMode> {
        let connection = self.lock();
        let value: Option<String> = connection
            .query_row("SELECT value FROM settings WHERE key = ?1", [setting::TERMINAL_REGISTRATION_MODE], |r| r.get(0))
            .optional()?;
        match value {
            None => Ok(RegistrationMode::default()),
            Some(text) => RegistrationMode::parse(&text)
                .ok_or(StoreError::Corrupt { column: "settings.terminal_registration_mode", value: text }),
        }
    }

    pub fn set_registration_mode(&self, mode: RegistrationMode) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![setting::TERMINAL_REGISTRATION_MODE, mode.as_str()],
            )?;
            Ok(())
        })
    }

    // ----- desktops ------------------------------------------------------------

    pub fn insert_desktop(&self, desktop: &NewDesktop<'_>, now: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO desktops (id, name, owner_id, status, os_username, os_password,
                    default_connection_type, enable_usb, enable_clipboard, enable_audio, created_at,
                    image_id, flavor_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    desktop.id,
                    desktop.name,
                    desktop.owner_id,
                    desktop.status.as_str(),
                    desktop.os_username,
                    desktop.os_password.expose(),
                    desktop.default_connection_type.as_str(),
                    desktop.policy.enable_usb,
                    desktop.policy.enable_clipboard,
                    desktop.policy.enable_audio,
                    now,
                    desktop.image_id,
                    desktop.flavor_id
                ],
            )?;
            Ok(())
        })
    }

    pub fn desktop(&self, id: &str) -> Result<Option<DesktopRecord>> {
        let connection = self.lock();
        connection
            .query_row(&format!("{DESKTOP_SELECT} WHERE d.id = ?1"), [id], desktop_from_row)
            .optional()?
            .transpose()
    }

    pub fn desktops_of(&self, owner_id: i64) -> Result<Vec<DesktopRecord>> {
        let connection = self.lock();
        let mut statement =
            connection.prepare(&format!("{DESKTOP_SELECT} WHERE d.owner_id = ?1 ORDER BY d.name, d.id"))?;
        let rows = statement.query_map([owner_id], desktop_from_row)?;
        rows.map(|row| row?).collect()
    }

    /// Every desktop, of every owner.
    pub fn all_desktops(&self) -> Result<Vec<DesktopRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!("{DESKTOP_SELECT} ORDER BY u.name, d.name, d.id"))?;
        let rows = statement.query_map([], desktop_from_row)?;
        rows.map(|row| row?).collect()
    }

    pub fn set_desktop_status(&self, id: &str, status: DesktopStatus) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute("UPDATE desktops SET status = ?1 WHERE id = ?2", params![status.as_str(), id])? > 0)
        })
    }

    pub fn set_desktop_owner(&self, id: &str, owner_id: i64) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("UPDATE desktops SET owner_id = ?1 WHERE id = ?2", params![owner_id, id])? > 0))
    }

    pub fn delete_desktop(&self, id: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM desktops WHERE id = ?1", [id])? > 0))
    }

    // ----- images --------------------------------------------------------------

    pub fn insert_image(&self, image: &NewImage<'_>, now: i64) -> Result<i64> {
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM images WHERE name = ?1", [image.name], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::ImageExists));
            }
            tx.execute(
                "INSERT INTO images (name, base_disk, default_connection_type, os_username, os_password, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    image.name,
                    image.base_disk,
                    image.default_connection_type.as_str(),
                    image.os_username,
                    image.os_password.expose(),
                    now
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    pub fn image_by_name(&self, name: &str) -> Result<Option<ImageRecord>> {
        let connection = self.lock();
        connection.query_row(&format!("{IMAGE_SELECT} WHERE name = ?1"), [name], image_from_row).optional()?.transpose()
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!("{IMAGE_SELECT} ORDER BY name"))?;
        let rows = statement.query_map([], image_from_row)?;
        rows.map(|row| row?).collect()
    }

    /// Deletes an image. Refused while a desktop or an instance runs on it: their
    /// overlays need its base disk.
    pub fn delete_image(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            let users: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM desktops d JOIN images i ON i.id = d.image_id WHERE i.name = ?1)
                      + (SELECT count(*) FROM instances n JOIN images i ON i.id = n.image_id WHERE i.name = ?1)",
                [name],
                |row| row.get(0),
            )?;
            if users > 0 {
                return Err(StoreError::InUse(Dependents::Machines));
            }
            Ok(tx.execute("DELETE FROM images WHERE name = ?1", [name])? > 0)
        })
    }

    // ----- flavors -------------------------------------------------------------

    pub fn insert_flavor(&self, flavor: &NewFlavor<'_>) -> Result<i64> {
        self.write(|tx| {
            if tx.query_row("SELECT 1 FROM flavors WHERE name = ?1", [flavor.name], |_| Ok(())).optional()?.is_some() {
                return Err(StoreError::Conflict(Conflict::FlavorExists));
            }
            tx.execute(
                "INSERT INTO flavors (name, vcpus, ram_mib, disk_gib) VALUES (?1, ?2, ?3, ?4)",
                params![flavor.name, flavor.vcpus, flavor.ram_mib, flavor.disk_gib],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    pub fn flavor_by_name(&self, name: &str) -> Result<Option<FlavorRecord>> {
        let connection = self.lock();
        Ok(connection.query_row(&format!("{FLAVOR_SELECT} WHERE name = ?1"), [name], flavor_from_row).optional()?)
    }

    /// Smallest first.
    pub fn flavors(&self) -> Result<Vec<FlavorRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!("{FLAVOR_SELECT} ORDER BY vcpus, ram_mib, disk_gib, name"))?;
        let rows = statement.query_map([], flavor_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a flavor. Refused while a desktop or an instance is of that size.
    pub fn delete_flavor(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            let users: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM desktops d JOIN flavors f ON f.id = d.flavor_id WHERE f.name = ?1)
                      + (SELECT count(*) FROM instances n JOIN flavors f ON f.id = n.flavor_id WHERE f.name = ?1)",
                [name],
                |row| row.get(0),
            )?;
            if users > 0 {
                return Err(StoreError::InUse(Dependents::Machines));
            }
            Ok(tx.execute("DELETE FROM flavors WHERE name = ?1", [name])? > 0)
        })
    }

    // ----- audit log -----------------------------------------------------------

    pub fn insert_audit(&self, entry: &NewAudit<'_>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit (at, actor, address, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![entry.at, entry.actor, entry.address, entry.action, entry.target, entry.detail],
            )?;
            Ok(())
        })
    }

    /// Newest first. `action` matches a whole action (`login`) or a dotted prefix
    /// (`terminal` matches `terminal.approve`).
    pub fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, at, actor, address, action, target, detail FROM audit
             WHERE (?1 IS NULL OR actor = ?1)
               AND (?2 IS NULL OR action = ?2 OR action LIKE ?2 || '.%')
               AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at <= ?4)
             ORDER BY at DESC, id DESC LIMIT ?5",
        )?;
        let rows =
            statement.query_map(params![query.actor, query.action, query.since, query.until, query.limit], |row| {
                Ok(AuditRecord {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    actor: row.get(2)?,
                    address: row.get(3)?,
                    action: row.get(4)?,
                    target: row.get(5)?,
                    detail: row.get(6)?,
                })
            })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ----- console sessions ----------------------------------------------------

    /// Stores a console session by the hash of its id, and forgets expired ones.
    pub fn insert_console_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM console_sessions WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "INSERT INTO console_sessions (hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, user_id, csrf, now, expires_at],
            )?;
            Ok(())
        })
    }

    /// The session's user, its CSRF token and when it expires.
    pub fn console_session(&self, hash: &str) -> Result<Option<(UserRecord, String, i64)>> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                "SELECT u.id, u.name, u.password_hash, u.is_admin, u.created_at, s.csrf, s.expires_at
                 FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?1",
                [hash],
                |row| Ok((user_from_row(row)?, row.get(5)?, row.get(6)?)),
            )
            .optional()?)
    }

    pub fn delete_console_session(&self, hash: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM console_sessions WHERE hash = ?1", [hash])? > 0))
    }

    // ----- cloud API instances -------------------------------------------------

    pub fn insert_instance(&self, instance: &NewInstance<'_>, now: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO instances (id, name, image_id, flavor_id, internet, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![instance.id, instance.name, instance.image_id, instance.flavor_id, instance.internet, now],
            )?;
            Ok(())
        })
    }

    pub fn instance(&self, id: &str) -> Result<Option<InstanceRecord>> {
        let connection = self.lock();
        Ok(connection.query_row(&format!("{INSTANCE_SELECT} WHERE n.id = ?1"), [id], instance_from_row).optional()?)
    }

    /// Oldest first.
    pub fn instances(&self) -> Result<Vec<InstanceRecord>> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!("{INSTANCE_SELECT} ORDER BY n.created_at, n.id"))?;
        let rows = statement.query_map([], instance_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_instance(&self, id: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM instances WHERE id = ?1", [id])? > 0))
    }
}

const TERMINAL_SELECT: &str = "SELECT t.mac, p.name, t.seat_number, t.state, t.register_mode, t.created_at
     FROM terminals t JOIN places p ON p.id = t.place_id";

const DESKTOP_SELECT: &str = "SELECT d.id, d.name, d.owner_id, u.name, d.status, d.os_username, d.os_password,
        d.default_connection_type, d.enable_usb, d.enable_clipboard, d.enable_audio, d.created_at, i.name, f.name
     FROM desktops d JOIN users u ON u.id = d.owner_id
     LEFT JOIN images i ON i.id = d.image_id LEFT JOIN flavors f ON f.id = d.flavor_id";

const IMAGE_SELECT: &str =
    "SELECT id, name, base_disk, default_connection_type, os_username, os_password, created_at FROM images";

const FLAVOR_SELECT: &str = "SELECT id, name, vcpus, ram_mib, disk_gib FROM flavors";

const INSTANCE_SELECT: &str = "SELECT n.id, n.name, i.name, f.name, n.internet, n.created_at
     FROM instances n JOIN images i ON i.id = n.image_id JOIN flavors f ON f.id = n.flavor_id";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        password_hash: row.get(2)?,
        is_admin: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// Rows whose text columns hold values this program does not know are reported as
/// corrupt rather than guessed at.
fn terminal_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TerminalRecord>> {
    let mac: String = row.get(0)?;
    let state: String = row.get(3)?;
    let record = (|| {
        Ok(TerminalRecord {
            mac: mac.parse().map_err(|_| StoreError::Corrupt { column: "terminals.mac", value: mac.clone() })?,
            place: row.get(1)?,
            seat_number: row.get(2)?,
            state: TerminalState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt { column: "terminals.state", value: state.clone() })?,
            register_mode: row.get(4)?,
            created_at: row.get(5)?,
        })
    })();
    Ok(record)
}

fn desktop_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<DesktopRecord>> {
    let status: String = row.get(4)?;
    let connection_type: String = row.get(7)?;
    let record = (|| {
        Ok(DesktopRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            owner_id: row.get(2)?,
            owner_name: row.get(3)?,
            status: DesktopStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt { column: "desktops.status", value: status.clone() })?,
            os_username: row.get(5)?,
            os_password: Secret::new(row.get::<_, String>(6)?),
            default_connection_type: ConnectionType::parse(&connection_type).ok_or_else(|| StoreError::Corrupt {
                column: "desktops.default_connection_type",
                value: connection_type.clone(),
            })?,
            policy: Policy { enable_usb: row.get(8)?, enable_clipboard: row.get(9)?, enable_audio: row.get(10)? },
            created_at: row.get(11)?,
            image: row.get(12)?,
            flavor: row.get(13)?,
        })
    })();
    Ok(record)
}

fn image_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ImageRecord>> {
    let connection_type: String = row.get(3)?;
    let base_disk: String = row.get(2)?;
    let record = (|| {
        Ok(ImageRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            base_disk: PathBuf::from(base_disk.clone()),
            default_connection_type: ConnectionType::parse(&connection_type).ok_or_else(|| StoreError::Corrupt {
                column: "images.default_connection_type",
                value: connection_type.clone(),
            })?,
            os_username: row.get(4)?,
            os_password: Secret::new(row.get::<_, String>(5)?),
            created_at: row.get(6)?,
        })
    })();
    Ok(record)
}

fn flavor_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FlavorRecord> {
    Ok(FlavorRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        vcpus: row.get(2)?,
        ram_mib: row.get(3)?,
        disk_gib: row.get(4)?,
    })
}

fn instance_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRecord> {
    Ok(InstanceRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        image: row.get(2)?,
        flavor: row.get(3)?,
        internet: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// The data directory holds password hashes and desktop credentials: only its owner
/// may read it.
fn create_private_dir(dir: &Path) -> Result<()> {
    let error = |source| StoreError::DataDir { path: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
    }
    Ok(())
}

fn restrict_to_owner(file: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| StoreError::DataDir { path: file.to_owned(), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    #[test]
    fn reopening_keeps_data_and_does_not_reapply_migrations() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open(dir.path()).expect("open");
            store.insert_user("alice", "hash", false, 1).expect("insert");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.user_by_name("alice").expect("query").map(|u| u.name), Some("alice".to_owned()));
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let (_dir, store) = store();
        store.insert_place("b101", "one floor").expect("place");
        let mac: MacAddress = "08:00:20:0a:8c:6d".parse().expect("mac");
        let terminal = NewTerminal {
            mac,
            place: "b101",
            seat_number: "01",
            state: TerminalState::Waiting,
            register_mode: "approval",
        };
        store.insert_terminal(&terminal, 1).expect("first");
        let other: MacAddress = "08:00:20:0a:8c:6e".parse().expect("mac");
        let clash = NewTerminal { mac: other, ..terminal.clone() };
        assert!(matches!(store.insert_terminal(&clash, 2), Err(StoreError::Conflict(Conflict::SeatTaken))));
        assert!(matches!(store.insert_terminal(&terminal, 3), Err(StoreError::Conflict(Conflict::TerminalExists))));
        assert_eq!(store.terminals(None).expect("list").len(), 1);
        assert!(store.terminal(other).expect("lookup").is_none());
    }

    #[test]
    fn password_change_keeps_only_the_named_token() {
        let (_dir, store) = store();
        let id = store.insert_user("bob", "old", false, 1).expect("user");
        for hash in ["a", "b", "c"] {
            store.insert_token(hash, id, 10, 1_000).expect("token");
        }
        assert!(store.set_password(id, "new", Some("b")).expect("set"));
        assert!(store.token("a").expect("q").is_none());
        assert!(store.token("b").expect("q").is_some());
        assert!(store.token("c").expect("q").is_none());
        assert!(store.set_password(id, "newer", None).expect("set"));
        assert!(store.token("b").expect("q").is_none());
    }

    #[test]
    fn a_user_with_desktops_cannot_be_deleted() {
        let (_dir, store) = store();
        let id = store.insert_user("carol", "h", false, 1).expect("user");
        let desktop = NewDesktop {
            id: "d1",
            name: "desk",
            owner_id: id,
            status: DesktopStatus::Shutoff,
            os_username: "u",
            os_password: &Secret::new("p"),
            default_connection_type: ConnectionType::Spice,
            policy: Policy::default(),
            image_id: None,
            flavor_id: None,
        };
        store.insert_desktop(&desktop, 1).expect("desktop");
        assert!(matches!(store.delete_user(id), Err(StoreError::InUse(Dependents::Desktops))));
        assert!(store.user_by_name("carol").expect("q").is_some());
    }

    #[test]
    fn the_catalogue_starts_with_openstacks_flavors() {
        let (_dir, store) = store();
        let flavors: Vec<(String, u32, u32, u32)> =
            store.flavors().expect("list").into_iter().map(|f| (f.name, f.vcpus, f.ram_mib, f.disk_gib)).collect();
        assert_eq!(
            flavors,
            [("m1.tiny".into(), 1, 512, 1), ("m1.small".into(), 1, 2048, 20), ("m1.medium".into(), 2, 4096, 40)]
        );
    }

    #[test]
    fn images_and_flavors_in_use_cannot_be_deleted_and_names_are_unique() {
        let (_dir, store) = store();
        let image = NewImage {
            name: "xubuntu",
            base_disk: "/var/lib/thindesk/xubuntu.qcow2",
            default_connection_type: ConnectionType::Spice,
            os_username: "student",
            os_password: &Secret::new("pw"),
        };
        let image_id = store.insert_image(&image, 1).expect("image");
        assert!(matches!(store.insert_image(&image, 2), Err(StoreError::Conflict(Conflict::ImageExists))));
        let flavor = store.flavor_by_name("m1.small").expect("q").expect("seeded");
        let tiny = NewFlavor { name: "m1.tiny", vcpus: 1, ram_mib: 64, disk_gib: 1 };
        assert!(matches!(store.insert_flavor(&tiny), Err(StoreError::Conflict(Conflict::FlavorExists))));
        let instance = NewInstance { id: "vm1", name: "exam", image_id, flavor_id: flavor.id, internet: false };
        store.insert_instance(&instance, 3).expect("instance");
        assert!(matches!(store.delete_image("xubuntu"), Err(StoreError::InUse(Dependents::Machines))));
        assert!(matches!(store.delete_flavor("m1.small"), Err(StoreError::InUse(Dependents::Machines))));
        let listed = store.instance("vm1").expect("q").expect("exists");
        assert_eq!((listed.image.as_str(), listed.flavor.as_str(), listed.internet), ("xubuntu", "m1.small", false));
        assert!(store.delete_instance("vm1").expect("delete"));
        assert!(!store.delete_instance("vm1").expect("delete again"));
        assert!(store.delete_image("xubuntu").expect("free now"));
        assert!(store.delete_flavor("m1.small").expect("free now"));
        assert!(!store.delete_flavor("m1.small").expect("gone"));
    }

    #[test]
    fn a_desktop_knows_its_image_and_flavor_and_keeps_them_in_use() {
        let (_dir, store) = store();
        let owner = store.insert_user("dan", "h", false, 1).expect("user");
        let image = NewImage {
            name: "win",
            base_disk: "/images/win.qcow2",
            default_connection_type: ConnectionType::Rdp,
            os_username: "Administrator",
            os_password: &Secret::new("pw"),
        };
        let image_id = store.insert_image(&image, 1).expect("image");
        let flavor_id = store.flavor_by_name("m1.medium").expect("q").expect("seeded").id;
        let desktop = NewDesktop {
            id: "d1",
            name: "desk",
            owner_id: owner,
            status: DesktopStatus::Shutoff,
            os_username: "Administrator",
            os_password: &Secret::new("pw"),
            default_connection_type: ConnectionType::Rdp,
            policy: Policy::default(),
            image_id: Some(image_id),
            flavor_id: Some(flavor_id),
        };
        store.insert_desktop(&desktop, 1).expect("desktop");
        let record = store.desktop("d1").expect("q").expect("exists");
        assert_eq!((record.image.as_deref(), record.flavor.as_deref()), (Some("win"), Some("m1.medium")));
        assert!(matches!(store.delete_image("win"), Err(StoreError::InUse(Dependents::Machines))));
        assert_eq!(store.all_desktops().expect("all").len(), 1);
        assert!(store.delete_desktop("d1").expect("delete"));
        assert!(store.delete_image("win").expect("free now"));
    }

    #[test]
    fn registration_mode_defaults_to_approval_and_persists() {
        let (_dir, store) = store();
        assert_eq!(store.registration_mode().expect("get"), RegistrationMode::Approval);
        store.set_registration_mode(RegistrationMode::Auto).expect("set");
        assert_eq!(store.registration_mode().expect("get"), RegistrationMode::Auto);
    }
}
