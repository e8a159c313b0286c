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
//! - `spice_console` gets a `spice-html5` console URL from Nova's remote-console API
//!   (its token opens nova-spicehtml5proxy's websocket, which carries raw SPICE).
//! - `define_with_user_data` gives the guest user data on a config drive (read
//!   without any network), `console_output` reads a running server's serial log.
//!
//! Not yet: the display as the trait has it (a SPICE port and ticket: that needs a
//! bridge from a local port to the proxy's websocket; `inspect` gives no display),
//! a new ticket, and a guest account (no guest agent channel through Nova): those
//! answer an error that says so.

pub mod api;
pub mod clouds;
pub mod keystone;

use super::{Compute, ComputeError, GuestAccount, MachineSpec, MachineView, PowerOp};
use api::{NewServer, Server};
use clouds::Cloud;
use keystone::Session;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use thindesk_shared::DesktopStatus;

/// The metadata key that ties a Nova server to its thindesk machine id.
pub const ID_KEY: &str = "thindesk_id";
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
    /// How long to wait for Nova to finish an operation.
    pub deadline: Duration,
    /// How often to ask Nova meanwhile.
    pub poll: Duration,
}

impl OpenStackConfig {
    /// The names `tests/openstack/up.sh` creates.
    pub fn new(clouds_file: impl Into<PathBuf>, cloud: impl Into<String>) -> Self {
        OpenStackConfig {
            clouds_file: clouds_file.into(),
            cloud: cloud.into(),
            internet_network: "thindesk-internet".to_owned(),
            isolated_network: "thindesk-isolated".to_owned(),
            isolated_security_group: "thindesk-isolated".to_owned(),
            deadline: Duration::from_secs(180),
            poll: Duration::from_millis(500),
        }
    }
}

pub struct OpenStackCompute {
    config: OpenStackConfig,
    session: Session,
    /// Machine id → Nova server id, as found.
    servers: Mutex<HashMap<String, String>>,
}

/// Nova's status word as the seed's (the seed's words are Nova's, and Nova has more).
pub fn status_of(nova: &str) -> Option<DesktopStatus> {
    Some(match nova {
        "ACTIVE" => DesktopStatus::Active,
        "SHUTOFF" | "STOPPED" | "SHELVED" | "SHELVED_OFFLOADED" => DesktopStatus::Shutoff,
        "SUSPENDED" => DesktopStatus::Suspended,
        "PAUSED" => DesktopStatus::Paused,
        "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "REVERT_RESIZE" | "MIGRATING" | "PASSWORD" => {
            DesktopStatus::Build
        }
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
        let session = Session::new(cloud, Duration::from_secs(60))?;
        Ok(OpenStackCompute { config, session, servers: Mutex::new(HashMap::new()) })
    }

    /// Authenticates and finds the compute endpoint: the cloud and project this
    /// driver works in, as `(cloud, project name)`.
    pub fn check(&self) -> Result<(String, String), OpenStackError> {
        let (_, project) = self.session.project()?;
        self.session.endpoint("compute")?;
        Ok((self.session.cloud().name.clone(), project))
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
            server.metadata.get(ID_KEY).map(String::as_str) == Some(id) && status_of(&server.status).is_some()
        });
        let server = found.ok_or_else(|| ComputeError::NoSuchMachine(id.to_owned()))?;
        self.servers.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), server.id.clone());
        Ok(server)
    }

    /// A new `spice-html5` console of the running machine `id` through Nova's
    /// remote-console API: the URL of nova-spicehtml5proxy with a one-time token,
    /// which its websocket accepts and over which raw SPICE flows. (Bridging it to a
    /// viewer is not done yet; see the module's documentation.)
    pub fn spice_console(&self, id: &str) -> Result<api::RemoteConsole, ComputeError> {
        let server = self.server_of(id)?;
        api::spice_html5_console(&self.session, &server.id)?.ok_or_else(|| ComputeError::NoSuchMachine(id.to_owned()))
    }

    /// [`Compute::define`], with `user_data` for the guest on a config drive (Nova's
    /// `user_data` with `config_drive: true`). The same image can then boot with
    /// different instructions per server, e.g. the network probe's targets.
    pub fn define_with_user_data(&self, spec: &MachineSpec, user_data: Option<&[u8]>) -> Result<(), ComputeError> {
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
        // Nova boots what it creates; a defined machine is off, so stop it once up.
        let defined = self.wait_for(&spec.id, "ACTIVE", "creating the server").and_then(|server| {
            self.action(&spec.id, &server, json!({"os-stop": null}))?;
            self.wait_for(&spec.id, "SHUTOFF", "stopping the new server")
        });
        match defined {
            Ok(_) => Ok(()),
            Err(error) => {
                // Undo: a machine that could not be defined leaves nothing behind.
                if let Err(undo) = self.destroy(&spec.id) {
                    tracing::warn!(id = %spec.id, server = %server_id, %undo, "a half-made server could not be deleted");
                }
                Err(error)
            }
        }
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
        if api::action(&self.session, &server.id, &body)? {
            Ok(())
        } else {
            self.servers.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
            Err(ComputeError::NoSuchMachine(id.to_owned()))
        }
    }

    fn image_for(&self, spec: &MachineSpec) -> Result<String, ComputeError> {
        let name = spec
            .base_disk
            .file_stem()
            .and_then(|stem| stem.to_str())
            .ok_or_else(|| ComputeError::BadImage(format!("{} names no image", spec.base_disk.display())))?;
        let images = api::images_named(&self.session, name)?;
        images.into_iter().find(|image| image.status == "active").map(|image| image.id).ok_or_else(|| {
            ComputeError::BadImage(format!(
                "the cloud has no active image named {name:?} (from {})",
                spec.base_disk.display()
            ))
        })
    }

    fn flavor_for(&self, spec: &MachineSpec) -> Result<String, ComputeError> {
        let mut fitting: Vec<api::Flavor> = api::flavors(&self.session)?
            .into_iter()
            .filter(|f| f.vcpus >= spec.vcpus && f.ram >= spec.ram_mib && f.disk >= spec.disk_gib)
            .collect();
        fitting.sort_by_key(|f| (f.ram, f.vcpus, f.disk));
        fitting.into_iter().next().map(|f| f.id).ok_or_else(|| {
            ComputeError::NoCapacity(format!(
                "no flavor of the cloud has {} vCPUs, {} MiB and {} GiB of disk",
                spec.vcpus, spec.ram_mib, spec.disk_gib
            ))
        })
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

    fn destroy(&self, id: &str) -> Result<(), ComputeError> {
        let server = self.server_of(id)?;
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
        self.action(desktop_id, &server, body)?;
        // The action is accepted at once; wait until Nova has carried it out. A
        // reboot's task must start and end, so wait for the task to be gone.
        self.wait_for(desktop_id, target, &format!("{op:?}"))?;
        Ok(())
    }

    fn inspect(&self, desktop_id: &str) -> Result<MachineView, ComputeError> {
        let server = self.server_of(desktop_id)?;
        let status = status_of(&server.status).ok_or_else(|| ComputeError::NoSuchMachine(desktop_id.to_owned()))?;
        Ok(MachineView { status, display: None })
    }

    fn new_ticket(&self, desktop_id: &str) -> Result<(), ComputeError> {
        Err(ComputeError::Failed(format!("the OpenStack driver has no display yet, so no ticket for {desktop_id}")))
    }

    fn machines(&self) -> Result<Vec<String>, ComputeError> {
        let servers = api::servers(&self.session, &format!("^{NAME_PREFIX}"))?;
        let mut ids: Vec<String> = servers
            .into_iter()
            .filter(|server| status_of(&server.status).is_some())
            .filter_map(|server| server.metadata.get(ID_KEY).cloned())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn set_guest_account(&self, desktop_id: &str, _account: &GuestAccount) -> Result<(), ComputeError> {
        Err(ComputeError::NoGuestAgent(format!("{desktop_id} (the OpenStack driver sets no guest passwords yet)")))
    }
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
        assert!(matches!(error, ComputeError::Failed(_)));
    }
}
