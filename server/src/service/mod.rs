//! The rules of thindesk: who may do what, and what each request changes. Services
//! depend on the store and on compute drivers, never on HTTP; the HTTP layer and the
//! command line both call them.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod catalogue;
pub mod cloud;
pub mod desktops;
mod error;
pub mod hashing;
pub mod recovery;
pub mod status;
pub mod terminals;
mod throttle;
mod token_cache;

pub use accounts::{Accounts, Authentication, ConsoleSession, Credentials, LineError, PasswordCheck, Principal};
pub use admin::Admin;
pub use audit::{Actor, Audit, AuditFilter};
pub use catalogue::Catalogue;
pub use cloud::{Cloud, CloudAccess, CloudError, CloudRequest};
pub use desktops::Desktops;
pub use error::{FieldErrors, ServiceError};
pub use hashing::{HashError, HashPool, HashPoolSettings};
pub use recovery::{Recovered, Recovery};
pub use terminals::Terminals;
pub use throttle::{ThrottlePolicy, Throttled};

use crate::compute::Compute;
use crate::store::Store;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the services need to know about this installation.
pub struct ServiceSettings {
    pub token_ttl: Duration,
    /// The address terminals use to reach this host's desktops.
    pub public_address: String,
    pub cloud_access: CloudAccess,
    /// The password hashing pool's workers, queue bound and deadline.
    pub hashing: HashPoolSettings,
    /// How long desktop listings may use a machine's last view (`status.rs`).
    pub status_ttl: Duration,
}

/// Every service over one store and one compute driver. Cheap to clone; the HTTP
/// faces, the command line and the tests all hold the same one.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<Store>,
    pub accounts: Arc<Accounts>,
    pub terminals: Arc<Terminals>,
    pub desktops: Arc<Desktops>,
    pub catalogue: Arc<Catalogue>,
    pub cloud: Arc<Cloud>,
    pub audit: Arc<Audit>,
    /// Run once by a starting server, before it serves.
    pub recovery: Arc<Recovery>,
}

impl Services {
    pub fn new(store: Arc<Store>, compute: Arc<dyn Compute>, settings: ServiceSettings) -> Result<Self, ServiceError> {
        let hasher = Arc::new(HashPool::new(settings.hashing)?);
        let accounts = Arc::new(Accounts::new(store.clone(), settings.token_ttl, ThrottlePolicy::default(), hasher)?);
        let terminals = Arc::new(Terminals::new(store.clone()));
        let desktops = Arc::new(Desktops::new(
            store.clone(),
            compute.clone(),
            settings.public_address.clone(),
            settings.status_ttl,
        ));
        let catalogue = Arc::new(Catalogue::new(store.clone(), compute.clone()));
        let cloud =
            Arc::new(Cloud::new(store.clone(), compute.clone(), settings.public_address, settings.cloud_access));
        let audit = Arc::new(Audit::new(store.clone()));
        let recovery = Arc::new(Recovery::new(store.clone(), compute));
        Ok(Self { store, accounts, terminals, desktops, catalogue, cloud, audit, recovery })
    }

    /// Logs a terminal out: its token is revoked and the user's display sessions are
    /// cut (their desktops get new tickets), so the next person at the terminal finds
    /// nothing of theirs open.
    pub fn log_out(&self, principal: &Principal) -> Result<(), ServiceError> {
        self.accounts.log_out(principal)?;
        self.desktops.end_sessions_of(principal)
    }

    /// Administrative operations over these services.
    pub fn admin(&self) -> Admin<'_> {
        Admin { services: self }
    }
}

/// Seconds since the Unix epoch, the unit every stored time uses.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `2016-03-04T21:08:12Z`: ISO 8601 in UTC, whole seconds, as the seed writes times.
pub fn iso8601(unix_seconds: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

pub(crate) use crate::random::token as random_token;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_the_seed_shows() {
        assert_eq!(iso8601(1_457_125_692), "2016-03-04T21:08:12Z");
    }

    #[test]
    fn no_debug_output_shows_a_secret() {
        const SECRET: &str = "correct-horse-battery";
        let secret = || thindesk_shared::Secret::new(SECRET);
        let image = catalogue::ImageSpec {
            name: "xubuntu".into(),
            base_disk: "/images/x.qcow2".into(),
            default_connection_type: thindesk_shared::ConnectionType::Rdp,
            os_username: "student".into(),
            os_password: secret(),
            guest_agent: false,
        };
        let desktop = desktops::DesktopSpec {
            os_password: Some(secret()),
            ..desktops::DesktopSpec::from_catalogue("d", "kim", "xubuntu", "m1.small")
        };
        let display =
            crate::compute::Display { spice_port: 5900, spice_ticket: secret(), rdp_port: None, spice_tls: None };
        let shown = [
            format!("{image:?}"),
            format!("{desktop:?}"),
            format!("{display:?}"),
            format!("{:?}", Credentials::Password { user: "kim".into(), password: secret() }),
            format!("{:?}", Credentials::Token(secret())),
            format!("{:?}", Credentials::TokenOrPassword { user: secret(), password: secret() }),
            format!("{:?}", admin::Command::CreateUser { name: "kim".into(), password: secret(), is_admin: false }),
            format!("{:?}", admin::Command::AddImage(image.clone())),
        ];
        for text in shown {
            assert!(!text.contains(SECRET), "{text}");
        }
    }

    #[test]
    fn random_tokens_differ_and_carry_enough_bits() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }
}
