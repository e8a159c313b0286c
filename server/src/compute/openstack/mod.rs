//! The OpenStack driver: each machine is a Nova server in the project of a
//! clouds.yaml-style credential, so a school can run its desktops on the cloud it
//! already has. Keystone v3 (`keystone.rs`: token cached and renewed), Nova, Glance
//! and Neutron (`api.rs`: typed models over reqwest, synchronous like every driver).
//!
//! What this driver does today:
//! - `define` creates the server from the Glance image named as the spec's base
//!   disk's file stem (`thindesk-demo.qcow2` → image `thindesk-demo`) and the smallest
//!   flavor with at least the spec's vCPUs, RAM and disk, on the configured network
//!   for `internet` (`internet=false`: the isolated network and its security group),
//!   waits for ACTIVE and stops it, so a defined machine is off as the trait says.
//!   The server is named `thindesk-ID` and carries `thindesk_id=ID` in its metadata:
//!   state lives in Nova, nothing on this host.
//! - `power`, `inspect`, `destroy`, `machines` through Nova, each waiting until Nova
//!   has finished (`deadline`).
//!
//! - The display (`bridge.rs`, `spice_link.rs`): every running machine gets a SPICE
//!   port of this server's (`spice_ports`), TLS only with the server's certificate,
//!   and a ticket in memory only. The bridge checks the viewer's ticket itself and
//!   carries the channel to the guest's QEMU through nova-spicehtml5proxy's websocket
//!   (a `spice-html5` console token from Nova, reused while young). `inspect` of an
//!   ACTIVE machine gives its port, ticket and the authority; `new_ticket` and a start
//!   from SHUTOFF replace the ticket and cut open sessions; a stop or `destroy` closes
//!   the port. After a restart of this server every running machine gets a fresh
//!   bridge and ticket at its first `inspect`: Nova holds the state, this host no
//!   secret. The cost: display traffic crosses this host (`tests/openstack/README.md`
//!   has the figures).
//! - `define_with_user_data` gives the guest user data on a config drive (read
//!   without any network), `console_output` reads a running server's serial log.
//!
//! Not yet: a guest account (no guest agent channel through Nova), which answers an
//! error that says so; a console proxy behind `https` (the websocket client has no
//! TLS of its own).

pub mod accounts;
pub mod api;
pub mod bridge;
#[cfg(test)]
mod bridge_tests;
pub mod clouds;
pub mod keystone;
pub mod spice_link;

use super::{
    Compute, ComputeError, GuestAccount, MachineSpec, MachineView, PlatformCatalogue, PlatformFlavor, PlatformImage,
    PowerOp,
};
use accounts::GuestAccounts;
use api::{NewServer, Server};
use bridge::{BridgeSettings, Bridges, ConsoleSource};
use clouds::Cloud;
use keystone::Session;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use thindesk_shared::DesktopStatus;

/// The metadata key that ties a Nova server to its thindesk machine id.
pub const ID_KEY: &str = "thindesk_id";
/// The metadata key that ties a Nova server to the thindesk installation that made
/// it, so that two installations in one project (a test cloud, a school's second
/// server) never take each other's servers for their own strays.
pub const INSTALLATION_KEY: &str = "thindesk_installation";
/// How long an action waits for Nova to finish setting a guest's password.
const PASSWORD_TASK_PATIENCE: Duration = Duration::from_secs(60);
/// Every server this driver makes is named this, then the machine's id.
pub const NAME_PREFIX: &str = "thindesk-";

#[derive(Debug, thiserror::Error)]
pub enum OpenStackError {
    /// The configuration or the credentials file is wrong.
    #[error("OpenStack configuration: {0}")]
    Config(String),
    #[error("Keystone refused thindesk's credentials: {0}")]
    Auth(String),
    #[error("{service} at {url} cannot be reached: {detail}")]
    Unreachable { service: &'static str, url: String, detail: String },
    #[error("{service} answered {status}: {message}")]
    Api { service: &'static str, status: u16, message: String },
    #[error("{service}'s answer is not understood: {detail}")]
    Protocol { service: &'static str, detail: String },
    /// Nova put the server in ERROR; its fault message.
    #[error("Nova failed the server: {0}")]
    Fault(String),
    #[error("{0}")]
    Timeout(String),
}

impl From<OpenStackError> for ComputeError {
    fn from(error: OpenStackError) -> Self {
        match &error {
            OpenStackError::Fault(message) if message.contains("No valid host") => {
                ComputeError::NoCapacity(error.to_string())
            }
            OpenStackError::Api { status: 403 | 413, message, .. } if message.contains("uota") => {
                ComputeError::NoCapacity(error.to_string())
            }
            OpenStackError::Fault(_) => ComputeError::PlatformFault(error.to_string()),
            OpenStackError::Config(_) | OpenStackError::Auth(_) | OpenStackError::Unreachable { .. } => {
                ComputeError::PlatformConfig(error.to_string())
            }
            OpenStackError::Api { status: 401 | 403, .. } => ComputeError::PlatformConfig(format!(
                "{error} (the credentials' project or role does not allow this; README: the rights it needs)"
            )),
            _ => ComputeError::Failed(error.to_string()),
        }
    }
}

/// The driver's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenStackConfig {
    /// A clouds.yaml-style file, readable by its owner only.
    pub clouds_file: PathBuf,
    /// Which cloud of the file.
    pub cloud: String,
    /// The network of machines with `internet = true` (a name), routed outside.
    pub internet_network: String,
    /// The network of machines with `internet = false`: no router.
    pub isolated_network: String,
    /// The security group of machines with `internet = false`: lets nothing out.
    pub isolated_security_group: String,
    /// This installation's own mark on its servers (see [`INSTALLATION_KEY`]).
    pub installation: String,
    /// How long to wait for Nova to finish an operation.
    pub deadline: Duration,
    /// How often to ask Nova meanwhile.
    pub poll: Duration,
    /// Where the SPICE bridges listen (viewers connect there).
    pub display_address: IpAddr,
    /// The bridges' ports, one per running machine. Not 5900 up by default: that is
    /// libvirt's range, and Nova's own QEMU may run on this host.
    pub spice_ports: RangeInclusive<u16>,
    /// Open SPICE connections per machine (a viewer opens one per channel).
    pub spice_connections: usize,
    /// A viewer's link phase must be done within this, Nova's console API included.
    pub spice_link_deadline: Duration,
    /// How long a console token of Nova's is reused before a new one is asked for:
    /// half of Nova's default `[consoleauth] token_ttl` (600 s), so a token is never
    /// used near its end; a refused one is replaced at once anyway.
    pub console_token_reuse: Duration,
    /// The server's TLS identity (`DATA_DIR/tls`), which the bridges present.
    pub tls_dir: PathBuf,
}

impl OpenStackConfig {
    /// The names `tests/openstack/up.sh` creates; displays with the TLS identity of
    /// the data directory `data_dir`.
    pub fn new(clouds_file: impl Into<PathBuf>, cloud: impl Into<String>, data_dir: &std::path::Path) -> Self {
        OpenStackConfig {
            clouds_file: clouds_file.into(),
            cloud: cloud.into(),
            internet_network: "thindesk-internet".to_owned(),
            isolated_network: "thindesk-isolated".to_owned(),
            isolated_security_group: "thindesk-isolated".to_owned(),
            installation: "default".to_owned(),
            deadline: Duration::from_secs(180),
            poll: Duration::from_millis(500),
            display_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            spice_ports: 5800..=5899,
            spice_connections: 32,
            spice_link_deadline: Duration::from_secs(20),
            console_token_reuse: Duration::from_secs(300),
            tls_dir: crate::tls::directory(data_dir),
        }
    }
}

pub struct OpenStackCompute {
    config: OpenStackConfig,
    session: Arc<Session>,
    /// The same credentials, for the bridges' console calls (see `new`).
    console_session: Arc<Session>,
    /// Machine id → Nova server id, as found.
    servers: Mutex<HashMap<String, String>>,
    bridges: Bridges,
    /// Whether the cloud has `spice-direct` consoles, once asked.
    spice_direct: OnceLock<bool>,
    /// Each machine's guest account, set in the guest after every start.
    accounts: GuestAccounts,
}

/// How long a new bridge keeps asking Nova for its first console token.
const PREFETCH_WITHIN: Duration = Duration::from_secs(60);

/// When a new bridge gets its first console token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefetch {
    /// Before the call returns: a start is done when its display can be reached.
    Now,
    /// In the background: `inspect` answers at once.
    Soon,
}

/// Nova's status word as the seed's (the seed's words are Nova's, and Nova has more).
pub fn status_of(nova: &str) -> Option<DesktopStatus> {
    Some(match nova {
        // PASSWORD: running, while Nova sets the guest's password (`accounts`).
        "ACTIVE" | "PASSWORD" => DesktopStatus::Active,
        "SHUTOFF" | "STOPPED" | "SHELVED" | "SHELVED_OFFLOADED" => DesktopStatus::Shutoff,
        "SUSPENDED" => DesktopStatus::Suspended,
        "PAUSED" => DesktopStatus::Paused,
        "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "REVERT_RESIZE" | "MIGRATING" => DesktopStatus::Build,
        "REBOOT" | "HARD_REBOOT" => DesktopStatus::Reboot,
        "ERROR" | "RESCUE" | "UNKNOWN" => DesktopStatus::Error,
        // DELETED, SOFT_DELETED: gone, as far as thindesk is concerned.
        _ => return None,
    })
}

/// `^thindesk-ID$` for Nova's regular-expression name filter, `ID` escaped.
fn name_pattern(id: &str) -> String {
    let mut pattern = format!("^{NAME_PREFIX}");
    for c in id.chars() {
        if !c.is_ascii_alphanumeric() {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('$');
    pattern
}

impl OpenStackCompute {
    /// Reads the credentials; Keystone is first asked at the first operation (see
    /// [`OpenStackCompute::check`] to ask now).
    pub fn new(config: OpenStackConfig) -> Result<Self, OpenStackError> {
        let cloud = Cloud::load(&config.clouds_file, &config.cloud)?;
        let session = Arc::new(Session::new(cloud, Duration::from_secs(60))?);
        let accounts = GuestAccounts::new(session.clone());
        // Consoles have a session of their own with a short timeout: Nova's console
        // call waits on nova-compute, which sometimes never answers (then Nova gives up
        // after its RPC timeout, 60 s), and asking again soon does better than waiting.
        let console_session =
            Arc::new(Session::new(Cloud::load(&config.clouds_file, &config.cloud)?, Duration::from_secs(15))?);
        let bridges = Bridges::new(BridgeSettings {
            address: config.display_address,
            ports: config.spice_ports.clone(),
            max_connections: config.spice_connections,
            link_deadline: config.spice_link_deadline,
            token_reuse: config.console_token_reuse,
            tls_dir: config.tls_dir.clone(),
        })
        .map_err(|e| OpenStackError::Config(e.to_string()))?;
        Ok(OpenStackCompute {
            config,
            session,
            console_session,
            servers: Mutex::new(HashMap::new()),
            bridges,
            spice_direct: OnceLock::new(),
            accounts,
        })
    }

    /// Authenticates and finds the compute endpoint: the cloud and project this
    /// driver works in, as `(cloud, project name)`.
    pub fn check(&self) -> Result<(String, String), OpenStackError> {
        let (_, project) = self.session.project()?;
        self.session.endpoint("compute")?;
        Ok((self.session.cloud().name.clone(), project))
    }

    /// Whether `server` was made by this installation.
    fn is_ours(&self, server: &Server) -> bool {
        server.metadata.get(INSTALLATION_KEY) == Some(&self.config.installation)
    }

    /// The Keystone session every request goes through.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The Nova server of machine `id`.
    pub fn server_of(&self, id: &str) -> Result<Server, ComputeError> {
        let cached = self.servers.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        if let Some(server_id) = cached {
            let current = api::server(&self.session, &server_id)?;
            if let Some(server) = current.filter(|server| status_of(&server.status).is_some()) {
                return Ok(server);
            }
            self.servers.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        }
        let found = api::servers(&self.session, &name_pattern(id))?.into_iter().find(|server| {
            server.metadata.get(ID_KEY).map(String::as_str) == Some(id)
                && self.is_ours(server)
                && status_of(&server.status).is_some()
        });
        let server = found.ok_or_else(|| ComputeError::NoSuchMachine(id.to_owned()))?;
        self.servers.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), server.id.clone());
        Ok(server)
    }

    /// A new `spice-html5` console of the running machine `id` through Nova's
    /// remote-console API: the URL of nova-spicehtml5proxy with a token, which its
    /// websocket accepts and over which raw SPICE flows (what the bridge uses).
    pub fn spice_console(&self, id: &str) -> Result<api::RemoteConsole, ComputeError> {
        let server = self.server_of(id)?;
        api::spice_html5_console(&self.console_session, &server.id)?
            .ok_or_else(|| ComputeError::NoSuchMachine(id.to_owned()))
    }

    /// Whether the cloud offers `spice-direct` consoles (microversion 2.99: a token
    /// for QEMU's SPICE port itself, for a SPICE-aware proxy). Zed has none (406);
    /// asked once, and only said in the log: the bridge speaks through the
    /// `spice-html5` websocket, which every cloud with SPICE has.
    pub fn spice_direct(&self, server_id: &str) -> bool {
        *self.spice_direct.get_or_init(|| {
            let offered = api::spice_direct_offered(&self.session, server_id).unwrap_or_else(|error| {
                tracing::debug!(%error, "asking for a spice-direct console failed");
                false
            });
            tracing::info!(offered, "the cloud's spice-direct consoles (the bridge uses spice-html5 either way)");
            offered
        })
    }

    /// The machine's display: its bridge, opened with a fresh ticket if it has none.
    /// A new bridge gets its first console token from Nova now ([`Prefetch::Now`]), or in
    /// the background.
    fn display_of(&self, id: &str, server: &Server, prefetch: Prefetch) -> Result<super::Display, ComputeError> {
        if let Some(display) = self.bridges.display(id) {
            return Ok(display);
        }
        self.spice_direct(&server.id);
        let session = self.console_session.clone();
        let server_id = server.id.clone();
        let console: ConsoleSource = Arc::new(move || match api::spice_html5_console(&session, &server_id) {
            Ok(Some(console)) => Ok(console.url),
            Ok(None) => Err(format!("Nova has no server {server_id}")),
            Err(error) => Err(error.to_string()),
        });
        let display = self.bridges.open(id, console)?;
        match prefetch {
            Prefetch::Now => {
                self.bridges.prefetch(id, PREFETCH_WITHIN);
            }
            Prefetch::Soon => self.bridges.prefetch_soon(id, PREFETCH_WITHIN),
        }
        Ok(display)
    }

    /// [`Compute::define`], with `user_data` for the guest on a config drive (Nova's
    /// `user_data` with `config_drive: true`). The same image can then boot with
    /// different instructions per server, e.g. the network probe's targets.
    pub fn define_with_user_data(&self, spec: &MachineSpec, user_data: Option<&[u8]>) -> Result<(), ComputeError> {
        let server_id = self.create(spec, user_data)?;
        if let Some(account) = &spec.guest_account {
            self.accounts.remember(&spec.id, account.clone());
        }
        // Nova boots what it creates; a defined machine is off, so stop it once up.
        let defined = self.wait_for(&spec.id, "ACTIVE", "creating the server").and_then(|server| {
            self.action(&spec.id, &server, json!({"os-stop": null}))?;
            self.wait_for(&spec.id, "SHUTOFF", "stopping the new server")
        });
        self.undo_unless(defined.map(|_| ()), &spec.id, &server_id)
    }

    /// The last `lines` lines of the running machine `id`'s serial console, as Nova
    /// logged them (every boot of the server, one after the other).
    pub fn console_output(&self, id: &str, lines: u32) -> Result<String, ComputeError> {
        let server = self.server_of(id)?;
        api::console_output(&self.session, &server.id, lines)?.ok_or_else(|| ComputeError::NoSuchMachine(id.to_owned()))
    }

    /// Polls machine `id` until `done` says so, an ERROR or the deadline.
    fn wait(&self, id: &str, what: &str, done: impl Fn(&Server) -> bool) -> Result<Server, ComputeError> {
        let started = Instant::now();
        loop {
            let server = self.server_of(id)?;
            if done(&server) {
                return Ok(server);
            }
            if server.status == "ERROR" {
                let fault = server.fault.map(|f| f.message).unwrap_or_else(|| "no fault recorded".to_owned());
                return Err(OpenStackError::Fault(format!("{what}: {fault}")).into());
            }
            if started.elapsed() > self.config.deadline {
                return Err(OpenStackError::Timeout(format!(
                    "{what}: server {} still {} (task {}) after {:?}",
                    server.id,
                    server.status,
                    server.task_state.as_deref().unwrap_or("none"),
                    self.config.deadline
                ))
                .into());
            }
            std::thread::sleep(self.config.poll);
        }
    }

    /// Waits until Nova has no task on the server and its status is `status`.
    fn wait_for(&self, id: &str, status: &str, what: &str) -> Result<Server, ComputeError> {
        self.wait(id, what, |server| server.status == status && server.task_state.is_none())
    }

    fn action(&self, id: &str, server: &Server, body: serde_json::Value) -> Result<(), ComputeError> {
        let started = Instant::now();
        loop {
            match api::action(&self.session, &server.id, &body) {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    self.servers.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
                    return Err(ComputeError::NoSuchMachine(id.to_owned()));
                }
                // Nova refuses an action while it sets the guest's password (this
                // driver's own background task, `accounts`): wait for that, briefly.
                Err(OpenStackError::Api { status: 409, .. })
                    if started.elapsed() < PASSWORD_TASK_PATIENCE
                        && self.server_of(id)?.task_state.as_deref() == Some("updating_password") =>
                {
                    std::thread::sleep(self.config.poll);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Creates the server of `spec` (Nova boots it at once): its Nova id.
    fn create(&self, spec: &MachineSpec, user_data: Option<&[u8]>) -> Result<String, ComputeError> {
        match self.server_of(&spec.id) {
            Ok(_) => return Err(ComputeError::AlreadyDefined(spec.id.clone())),
            Err(ComputeError::NoSuchMachine(_)) => {}
            Err(other) => return Err(other),
        }
        let image_id = self.image_for(spec)?;
        let flavor_id = self.flavor_for(spec)?;
        let network_id = self.network_for(spec.internet)?;
        let security_groups =
            if spec.internet { Vec::new() } else { vec![self.config.isolated_security_group.clone()] };
        let name = format!("{NAME_PREFIX}{}", spec.id);
        let metadata = BTreeMap::from([
            (ID_KEY.to_owned(), spec.id.clone()),
            (INSTALLATION_KEY.to_owned(), self.config.installation.clone()),
            ("thindesk_name".to_owned(), spec.name.chars().take(255).collect()),
        ]);
        let new = NewServer {
            name: &name,
            image_id: &image_id,
            flavor_id: &flavor_id,
            network_id: &network_id,
            security_groups: &security_groups,
            metadata,
            user_data,
        };
        let server_id = api::create_server(&self.session, &new)?;
        self.servers.lock().unwrap_or_else(|p| p.into_inner()).insert(spec.id.clone(), server_id.clone());
        Ok(server_id)
    }

    /// `outcome`, after deleting the half-made server if it is an error: a machine
    /// that could not be made leaves nothing behind.
    fn undo_unless(&self, outcome: Result<(), ComputeError>, id: &str, server_id: &str) -> Result<(), ComputeError> {
        if outcome.is_err() {
            if let Err(undo) = self.destroy(id) {
                tracing::warn!(%id, server = %server_id, %undo, "a half-made server could not be deleted");
            }
        }
        outcome
    }

    /// The Glance image the catalogue calls `spec.image`: exactly one active image of
    /// that name (the contract: a name that is ambiguous is said to be).
    fn image_for(&self, spec: &MachineSpec) -> Result<String, ComputeError> {
        let name = &spec.image;
        let images: Vec<api::Image> =
            api::images_named(&self.session, name)?.into_iter().filter(|image| image.status == "active").collect();
        match images.as_slice() {
            [image] => Ok(image.id.clone()),
            [] => Err(ComputeError::BadImage(format!("the cloud has no active image named {name:?}"))),
            _ => Err(ComputeError::BadImage(format!(
                "the name {name:?} is ambiguous: the cloud has {} active images of that name",
                images.len()
            ))),
        }
    }

    /// The Nova flavor the catalogue calls `spec.flavor`.
    fn flavor_for(&self, spec: &MachineSpec) -> Result<String, ComputeError> {
        let name = &spec.flavor;
        let flavors: Vec<api::Flavor> =
            api::flavors(&self.session)?.into_iter().filter(|flavor| &flavor.name == name).collect();
        match flavors.as_slice() {
            [flavor] => Ok(flavor.id.clone()),
            [] => Err(ComputeError::NoCapacity(format!("the cloud has no flavor named {name:?}"))),
            _ => Err(ComputeError::NoCapacity(format!("the flavor name {name:?} is ambiguous in the cloud"))),
        }
    }

    fn network_for(&self, internet: bool) -> Result<String, ComputeError> {
        let name = if internet { &self.config.internet_network } else { &self.config.isolated_network };
        let networks = api::networks_named(&self.session, name)?;
        match networks.as_slice() {
            [network] => Ok(network.id.clone()),
            [] => Err(OpenStackError::Config(format!("the cloud has no network named {name:?}")).into()),
            _ => {
                Err(OpenStackError::Config(format!("the cloud has {} networks named {name:?}", networks.len())).into())
            }
        }
    }
}

impl Compute for OpenStackCompute {
    fn name(&self) -> &'static str {
        "openstack"
    }

    fn define(&self, spec: &MachineSpec) -> Result<(), ComputeError> {
        self.define_with_user_data(spec, None)
    }

    fn define_and_start(&self, spec: &MachineSpec) -> Result<(), ComputeError> {
        // One boot: the server Nova creates is the started machine.
        let server_id = self.create(spec, None)?;
        if let Some(account) = &spec.guest_account {
            self.accounts.remember(&spec.id, account.clone());
        }
        // Started means its display can be reached, as after `power`.
        let started = self
            .wait_for(&spec.id, "ACTIVE", "creating the server")
            .and_then(|server| self.display_of(&spec.id, &server, Prefetch::Now).map(|_| ()));
        let started = self.undo_unless(started, &spec.id, &server_id);
        if started.is_ok() {
            self.accounts.apply_soon(&spec.id, &server_id);
        }
        started
    }

    fn destroy(&self, id: &str) -> Result<(), ComputeError> {
        let server = self.server_of(id)?;
        self.bridges.close(id);
        if !api::delete_server(&self.session, &server.id)? {
            self.servers.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
            return Err(ComputeError::NoSuchMachine(id.to_owned()));
        }
        let started = Instant::now();
        loop {
            match api::server(&self.session, &server.id)? {
                Some(left) if status_of(&left.status).is_some() => {
                    if started.elapsed() > self.config.deadline {
                        return Err(OpenStackError::Timeout(format!(
                            "deleting server {}: still {} after {:?}",
                            left.id, left.status, self.config.deadline
                        ))
                        .into());
                    }
                    std::thread::sleep(self.config.poll);
                }
                _ => break,
            }
        }
        self.servers.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.accounts.forget(id);
        Ok(())
    }

    fn power(&self, desktop_id: &str, op: PowerOp) -> Result<(), ComputeError> {
        let server = self.server_of(desktop_id)?;
        let (body, target) = match (op, server.status.as_str()) {
            (PowerOp::Start | PowerOp::Resume, "ACTIVE") => return Ok(()),
            (PowerOp::Start | PowerOp::Resume, "SUSPENDED") => (json!({"resume": null}), "ACTIVE"),
            (PowerOp::Start | PowerOp::Resume, "PAUSED") => (json!({"unpause": null}), "ACTIVE"),
            (PowerOp::Start | PowerOp::Resume, _) => (json!({"os-start": null}), "ACTIVE"),
            (PowerOp::Reboot, _) => (json!({"reboot": {"type": "SOFT"}}), "ACTIVE"),
            (PowerOp::Reset, _) => (json!({"reboot": {"type": "HARD"}}), "ACTIVE"),
            (PowerOp::Shutdown | PowerOp::PowerOff, "SHUTOFF") => return Ok(()),
            // Nova's stop asks the guest (ACPI) and forces it off after the cloud's
            // shutdown_timeout; the API has no immediate power-off for its owner.
            (PowerOp::Shutdown | PowerOp::PowerOff, _) => (json!({"os-stop": null}), "SHUTOFF"),
        };
        // A stop ends the display; a start from off gets a fresh ticket (the
        // contract), so the old bridge goes first either way. A resume of a paused
        // or suspended machine and a reboot keep the ticket and the port.
        let starts =
            matches!(op, PowerOp::Start | PowerOp::Resume) && status_of(&server.status) == Some(DesktopStatus::Shutoff);
        if starts || matches!(op, PowerOp::Shutdown | PowerOp::PowerOff) {
            self.bridges.close(desktop_id);
        }
        self.action(desktop_id, &server, body)?;
        // The action is accepted at once; wait until Nova has carried it out. A
        // reboot's task must start and end, so wait for the task to be gone.
        let server = self.wait_for(desktop_id, target, &format!("{op:?}"))?;
        if target == "ACTIVE" {
            // A guest that booted again needs its account again (the contract: set
            // at every start).
            self.accounts.apply_soon(desktop_id, &server.id);
            self.display_of(desktop_id, &server, Prefetch::Now)?;
        }
        Ok(())
    }

    fn inspect(&self, desktop_id: &str) -> Result<MachineView, ComputeError> {
        let server = self.server_of(desktop_id)?;
        let status = status_of(&server.status).ok_or_else(|| ComputeError::NoSuchMachine(desktop_id.to_owned()))?;
        let display = match status {
            // A display that cannot be had (no port free, no TLS identity) is said in
            // the log and by power(); the machine's state is still worth knowing.
            DesktopStatus::Active => match self.display_of(desktop_id, &server, Prefetch::Soon) {
                Ok(display) => Some(display),
                Err(error) => {
                    tracing::warn!(id = desktop_id, %error, "a running OpenStack machine has no display");
                    None
                }
            },
            // Off (from the guest, or the cloud's dashboard): the port is freed, and the
            // next start, whoever makes it, brings a fresh ticket.
            DesktopStatus::Shutoff | DesktopStatus::Error => {
                self.bridges.close(desktop_id);
                None
            }
            _ => None,
        };
        Ok(MachineView { status, display, address: fixed_address(&server) })
    }

    fn new_ticket(&self, desktop_id: &str) -> Result<(), ComputeError> {
        let server = self.server_of(desktop_id)?;
        if self.bridges.new_ticket(desktop_id) || server.status != "ACTIVE" {
            // Not running: its next start makes a new ticket anyway.
            return Ok(());
        }
        self.display_of(desktop_id, &server, Prefetch::Soon).map(|_| ())
    }

    fn machines(&self) -> Result<Vec<String>, ComputeError> {
        let servers = api::servers(&self.session, &format!("^{NAME_PREFIX}"))?;
        let mut ids: Vec<String> = servers
            .into_iter()
            .filter(|server| status_of(&server.status).is_some() && self.is_ours(server))
            .filter_map(|server| server.metadata.get(ID_KEY).cloned())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn set_guest_account(&self, desktop_id: &str, account: &GuestAccount) -> Result<(), ComputeError> {
        let server = self.server_of(desktop_id)?;
        self.accounts.remember(desktop_id, account.clone());
        if server.status == "ACTIVE" {
            self.accounts.apply_soon(desktop_id, &server.id);
        }
        Ok(())
    }

    fn guest_accounts_in_memory(&self) -> bool {
        true
    }

    fn platform_catalogue(&self) -> Result<Option<PlatformCatalogue>, ComputeError> {
        let images = api::images(&self.session)?;
        let flavors = api::flavors(&self.session)?;
        Ok(Some(platform_catalogue(images, flavors)))
    }

    fn has_platform_catalogue(&self) -> bool {
        true
    }

    fn location(&self) -> Option<String> {
        let project = &self.session.cloud().project_label();
        Some(format!("OpenStack cloud {:?}, project {project}", self.session.cloud().name))
    }
}

/// The server's fixed address (not a floating one), IPv4 first: what `vm_ip` says.
fn fixed_address(server: &Server) -> Option<String> {
    let mut addresses: Vec<&api::Address> = server
        .addresses
        .values()
        .flatten()
        .filter(|address| address.kind.as_deref().is_none_or(|kind| kind == "fixed"))
        .collect();
    addresses.sort_by_key(|address| address.version);
    addresses.first().map(|address| address.addr.clone())
}

/// The platform's catalogue as the server keeps it: active images with a name, and
/// every flavor the project may use.
fn platform_catalogue(images: Vec<api::Image>, flavors: Vec<api::Flavor>) -> PlatformCatalogue {
    let images = images
        .into_iter()
        .filter(|image| image.status == "active")
        .filter_map(|image| {
            let name = image.name.clone().filter(|name| !name.trim().is_empty())?;
            let yes = |key: &str| image.property(key).is_some_and(|v| v.eq_ignore_ascii_case("yes") || v == "true");
            Some(PlatformImage {
                name,
                location: format!("glance:{}", image.id),
                os_username: image.property("os_admin_user").unwrap_or("root").to_owned(),
                guest_agent: yes("hw_qemu_guest_agent"),
                rdp: image.property("os_type").is_some_and(|os| os.eq_ignore_ascii_case("windows")),
            })
        })
        .collect();
    let flavors = flavors
        .into_iter()
        .map(|f| PlatformFlavor { name: f.name, vcpus: f.vcpus, ram_mib: f.ram, disk_gib: f.disk })
        .collect();
    PlatformCatalogue { images, flavors }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_of_nova_maps() {
        assert_eq!(status_of("ACTIVE"), Some(DesktopStatus::Active));
        assert_eq!(status_of("SHUTOFF"), Some(DesktopStatus::Shutoff));
        assert_eq!(status_of("HARD_REBOOT"), Some(DesktopStatus::Reboot));
        assert_eq!(status_of("VERIFY_RESIZE"), Some(DesktopStatus::Build));
        assert_eq!(status_of("SHELVED_OFFLOADED"), Some(DesktopStatus::Shutoff));
        assert_eq!(status_of("UNKNOWN"), Some(DesktopStatus::Error));
        assert_eq!(status_of("SOFT_DELETED"), None);
        assert_eq!(status_of("DELETED"), None);
    }

    #[test]
    fn ids_are_escaped_in_the_name_filter() {
        assert_eq!(name_pattern("ab12"), "^thindesk-ab12$");
        assert_eq!(name_pattern("a.b-c"), "^thindesk-a\\.b\\-c$");
    }

    #[test]
    fn nova_faults_about_room_are_capacity() {
        let error: ComputeError = OpenStackError::Fault("No valid host was found.".into()).into();
        assert!(matches!(error, ComputeError::NoCapacity(_)));
        let error: ComputeError = OpenStackError::Fault("disk full".into()).into();
        assert!(matches!(error, ComputeError::PlatformFault(_)));
    }

    #[test]
    fn keystone_and_configuration_errors_are_the_platforms_configuration() {
        let error: ComputeError = OpenStackError::Auth("401".into()).into();
        assert!(matches!(error, ComputeError::PlatformConfig(_)));
        let error: ComputeError = OpenStackError::Config("no network named \"x\"".into()).into();
        assert!(matches!(error, ComputeError::PlatformConfig(_)));
        let error: ComputeError =
            OpenStackError::Api { service: "compute", status: 403, message: "Policy doesn't allow".into() }.into();
        assert!(matches!(error, ComputeError::PlatformConfig(_)));
        let error: ComputeError =
            OpenStackError::Api { service: "compute", status: 403, message: "Quota exceeded for cores".into() }.into();
        assert!(matches!(error, ComputeError::NoCapacity(_)));
    }

    #[test]
    fn the_catalogue_takes_named_active_images_with_their_login_and_agent() {
        let image = |name: Option<&str>, status: &str, properties: serde_json::Value| api::Image {
            id: format!("id-{}", name.unwrap_or("none")),
            name: name.map(str::to_owned),
            status: status.to_owned(),
            properties: serde_json::from_value(properties).expect("properties"),
        };
        let images = vec![
            image(Some("desk"), "active", json!({"os_admin_user": "student", "hw_qemu_guest_agent": "yes"})),
            image(Some("win"), "active", json!({"os_type": "windows"})),
            image(Some("queued"), "queued", json!({})),
            image(None, "active", json!({})),
        ];
        let flavors = vec![api::Flavor { id: "f".into(), name: "m1.small".into(), ram: 2048, vcpus: 1, disk: 20 }];
        let catalogue = platform_catalogue(images, flavors);
        let names: Vec<&str> = catalogue.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["desk", "win"]);
        assert_eq!(
            catalogue.images[0],
            PlatformImage {
                name: "desk".into(),
                location: "glance:id-desk".into(),
                os_username: "student".into(),
                guest_agent: true,
                rdp: false
            }
        );
        assert!(catalogue.images[1].rdp && !catalogue.images[1].guest_agent);
        assert_eq!(catalogue.images[1].os_username, "root");
        assert_eq!(
            catalogue.flavors[0],
            PlatformFlavor { name: "m1.small".into(), vcpus: 1, ram_mib: 2048, disk_gib: 20 }
        );
    }
}
