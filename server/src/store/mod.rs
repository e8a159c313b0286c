//! SQLite, the only place thindesk keeps anything. Nothing outside this module
//! touches rusqlite.
//!
//! The store is synchronous: callers on the async side reach it through
//! `tokio::task::spawn_blocking` (see `http::blocking`), so SQLite's locking and disk
//! waits never stall a runtime worker.

mod accounts;
mod audit;
mod catalogue;
mod desktops;
mod migrations;
mod terminals;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The image runs the guest agent: the desktop's OS password is its own, set in
    /// the guest by the driver.
    pub guest_agent: bool,
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
    /// `Pending` while its machine is being defined (see [`Phase`]).
    pub phase: Phase,
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
    /// The image runs the QEMU guest agent: each desktop gets its own OS password,
    /// set in the guest at every start. Without one, desktops share `os_password`.
    pub guest_agent: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage<'a> {
    pub name: &'a str,
    pub base_disk: &'a str,
    pub default_connection_type: ConnectionType,
    pub os_username: &'a str,
    pub os_password: &'a Secret,
    pub guest_agent: bool,
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

/// Where a machine's record is in its life: the journal that makes launching,
/// creating and destroying safe against a crash at any point. Only `Ready` records
/// are shown to anyone; a starting server finishes or undoes the others
/// (`service::recovery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Written before its machine is defined; its id has been told to no one.
    Pending,
    /// Its caller has been (or is being) told of it.
    Ready,
    /// Its machine is being destroyed; the record goes once the machine has.
    Removing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Ready => "ready",
            Phase::Removing => "removing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Phase::Pending),
            "ready" => Some(Phase::Ready),
            "removing" => Some(Phase::Removing),
            _ => None,
        }
    }
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
    pub phase: Phase,
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
    /// Bumped by every write of this process that changes a user or revokes a token
    /// (`write_revoking`), before and after it commits; with SQLite's `data_version`
    /// (which moves when another process, the command line, commits) it makes the
    /// [`AuthGeneration`] that the token cache is valid for.
    auth_writes: AtomicU64,
}

/// Changes when anything that could revoke a token or change a user may have been
/// written: by this process (a counter) or by another one (`PRAGMA data_version`).
/// Cheap to read: no disk access, one cached statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthGeneration {
    local: u64,
    data_version: i64,
}

/// How many prepared statements each connection keeps (rusqlite's default is 16;
/// the store has more queries than that on hot paths).
const STATEMENT_CACHE: usize = 64;

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
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { connection: Mutex::new(connection), path, auth_writes: AtomicU64::new(0) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-written state behind (every
        // write is a transaction), so a poisoned lock is safe to keep using.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current [`AuthGeneration`].
    pub fn auth_generation(&self) -> Result<AuthGeneration> {
        let local = self.auth_writes.load(Ordering::SeqCst);
        Ok(AuthGeneration { local, data_version: self.data_version()? })
    }

    /// SQLite's `data_version` of this store's connection: it changes when another
    /// connection (another process: the command line) commits, never for this one's
    /// own writes.
    pub fn data_version(&self) -> Result<i64> {
        let connection = self.lock();
        Ok(connection.prepare_cached("PRAGMA data_version")?.query_row([], |row| row.get(0))?)
    }

    /// [`Store::write`] for a write that changes a user or revokes tokens: the token
    /// cache's generation moves before it starts and again once it has committed (or
    /// failed), so no cached token outlives it.
    fn write_revoking<T>(&self, work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        self.auth_writes.fetch_add(1, Ordering::SeqCst);
        let outcome = self.write(work);
        self.auth_writes.fetch_add(1, Ordering::SeqCst);
        outcome
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
            phase: Phase::Ready,
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
            guest_agent: false,
        };
        let image_id = store.insert_image(&image, 1).expect("image");
        assert!(matches!(store.insert_image(&image, 2), Err(StoreError::Conflict(Conflict::ImageExists))));
        let flavor = store.flavor_by_name("m1.small").expect("q").expect("seeded");
        let tiny = NewFlavor { name: "m1.tiny", vcpus: 1, ram_mib: 64, disk_gib: 1 };
        assert!(matches!(store.insert_flavor(&tiny), Err(StoreError::Conflict(Conflict::FlavorExists))));
        let instance = NewInstance {
            id: "vm1",
            phase: Phase::Pending,
            name: "exam",
            image_id,
            flavor_id: flavor.id,
            internet: false,
        };
        store.insert_instance(&instance, 3).expect("instance");
        assert!(store.instance("vm1").expect("q").is_none(), "a pending instance is shown to no one");
        assert!(store.instances().expect("list").is_empty());
        assert_eq!(store.instance_phases().expect("phases"), [("vm1".to_owned(), Phase::Pending)]);
        assert!(store.move_instance("vm1", Phase::Pending, Phase::Ready).expect("settle"));
        assert!(!store.move_instance("vm1", Phase::Pending, Phase::Ready).expect("only once"));
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
            guest_agent: false,
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
            phase: Phase::Ready,
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
