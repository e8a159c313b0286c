//! `thindesk --demo`: the management server inside the client, on loopback, over a
//! temporary data directory, seeded so the whole path can be walked at once.

use std::net::SocketAddr;
use std::sync::Arc;
use thindesk_server::compute::{Compute, NoCompute};
use thindesk_server::service::desktops::DesktopSpec;
use thindesk_server::{Config, RunningServer, Services};
use thindesk_shared::{ConnectionType, Policy, RegistrationMode};

/// Who can log in to the demo.
#[derive(Debug, Clone)]
pub struct DemoLogins {
    pub admin: (String, String),
    pub student: (String, String),
}

/// A demo server; dropping it stops the server and removes its data.
pub struct Demo {
    pub server: RunningServer,
    pub logins: DemoLogins,
    _data_dir: tempfile::TempDir,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot make a temporary directory: {0}")]
    TempDir(#[from] std::io::Error),
    #[error(transparent)]
    Start(#[from] thindesk_server::StartError),
    #[error("seeding the demo failed: {0}")]
    Seed(String),
}

/// Seeds the demo: two places, registration mode `auto` (the terminal registers with
/// one click), an administrator, a student and one desktop of the student's.
pub fn seed_demo(services: &Services) -> Result<DemoLogins, DemoError> {
    let seed = |e: thindesk_server::service::ServiceError| DemoError::Seed(e.to_string());
    let logins =
        DemoLogins { admin: ("admin".into(), short_password()), student: ("student".into(), short_password()) };
    services.terminals.add_place("b101", "Building B, floor 1").map_err(seed)?;
    services.terminals.add_place("b201", "Building B, floor 2").map_err(seed)?;
    services.terminals.set_registration_mode(RegistrationMode::Auto).map_err(seed)?;
    services.accounts.create_user(&logins.admin.0, &logins.admin.1, true).map_err(seed)?;
    services.accounts.create_user(&logins.student.0, &logins.student.1, false).map_err(seed)?;
    services
        .desktops
        .create(&DesktopSpec {
            name: "Demo desktop".into(),
            owner: logins.student.0.clone(),
            os_username: "student".into(),
            os_password: short_password(),
            default_connection_type: ConnectionType::Spice,
            policy: Policy::default(),
        })
        .map_err(seed)?;
    Ok(logins)
}

/// Starts the demo server on `127.0.0.1` (any free port) on the current runtime.
pub async fn start() -> Result<Demo, DemoError> {
    let data_dir = tempfile::Builder::new().prefix("thindesk-client-demo-").tempdir()?;
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.path().to_owned(),
        public_address: Some("127.0.0.1".into()),
        ..Config::default()
    };
    let compute: Arc<dyn Compute> = match thindesk_server::compute::from_config(&config) {
        Ok(compute) => compute,
        Err(e) => {
            tracing::warn!(error = %e, "no hypervisor for the demo; power actions will answer 503");
            Arc::new(NoCompute)
        }
    };
    let server = RunningServer::start(config, compute).await?;
    let services = server.services().clone();
    let logins = tokio::task::spawn_blocking(move || seed_demo(&services))
        .await
        .map_err(|e| DemoError::Seed(e.to_string()))??;
    Ok(Demo { server, logins, _data_dir: data_dir })
}

/// Eight letters and digits, easy to type from the screen. `RandomState` is seeded
/// from the operating system's randomness: enough for a throw-away loopback demo.
fn short_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (0..8)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
