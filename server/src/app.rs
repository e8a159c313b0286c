//! The composition root: builds the store, the compute driver and the services from a
//! [`Config`], and assembles a running server from them. The binary, the command line,
//! the tests and the client's demo all start the server through here.

use crate::compute::openstack::{OpenStackCompute, OpenStackConfig};
use crate::compute::qemu::{QemuCompute, QemuConfig};
use crate::compute::{Compute, ComputeError, NoCompute};
use crate::config::{Config, Hypervisor};
use crate::http::{self, AppState};
pub use crate::service::Services;
use crate::service::{CloudAccess, ServiceError, ServiceSettings};
use crate::store::{Store, StoreError};
use crate::tls::{self, TlsError};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("the server's TLS certificate: {0}")]
    Tls(#[from] TlsError),
    #[error("start-up was interrupted: {0}")]
    Interrupted(String),
}

/// Opens the store in `config`'s data directory (migrating it) and builds every
/// service over it and `compute`: the one place where the pieces are put together.
/// Blocking.
pub fn open(config: &Config, compute: Arc<dyn Compute>) -> Result<Services, StartError> {
    let store = Arc::new(Store::open(&config.data_dir)?);
    let settings = ServiceSettings {
        token_ttl: config.token_ttl,
        public_address: config.public_address(),
        cloud_access: CloudAccess::new(
            config.cloud_api_allow.clone(),
            config.cloud_api_key.as_ref().map(|key| key.expose()),
        ),
        hashing: config.hashing(),
        status_ttl: config.desktop_status_ttl,
    };
    Ok(Services::new(store, compute, settings)?)
}

/// The compute driver `config` names. The QEMU driver's displays present the
/// server's certificate, made here first if this data directory has none yet.
pub fn compute_for(config: &Config) -> Result<Arc<dyn Compute>, ComputeError> {
    Ok(match config.hypervisor {
        Hypervisor::None => Arc::new(NoCompute),
        Hypervisor::Qemu => {
            let qemu = qemu_config(config);
            tls::ensure(&qemu.x509_dir, &tls::default_names(&config.public_address()))
                .map_err(|e| ComputeError::Failed(format!("the TLS certificate SPICE displays present: {e}")))?;
            Arc::new(QemuCompute::new(qemu)?)
        }
        Hypervisor::OpenStack => {
            let openstack = openstack_config(config)?;
            let driver = OpenStackCompute::new(openstack).map_err(ComputeError::from)?;
            Arc::new(driver)
        }
    })
}

/// The OpenStack driver's settings for a server configured with `config`: its
/// `[openstack]` table and this data directory's installation mark.
pub fn openstack_config(config: &Config) -> Result<OpenStackConfig, ComputeError> {
    let settings = config.openstack.as_ref().ok_or_else(|| {
        ComputeError::PlatformConfig("hypervisor = \"openstack\" needs an [openstack] table".to_owned())
    })?;
    Ok(OpenStackConfig {
        internet_network: settings.internet_network.clone(),
        isolated_network: settings.isolated_network.clone(),
        isolated_security_group: settings.isolated_security_group.clone(),
        installation: installation_mark(&config.data_dir)?,
        deadline: std::time::Duration::from_secs(settings.deadline_secs.max(10)),
        // The displays are this server's, whatever runs the machines.
        display_address: config.display_address,
        spice_ports: config.spice_ports.clone(),
        ..OpenStackConfig::new(&settings.clouds_file, &settings.cloud, &config.data_dir)
    })
}

/// This data directory's own mark, made once (`DATA_DIR/installation`): servers a
/// cloud holds for another installation, even in the same project, are not ours.
fn installation_mark(data_dir: &std::path::Path) -> Result<String, ComputeError> {
    let path = data_dir.join("installation");
    let failed = |e: std::io::Error| ComputeError::Failed(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(mark) if !mark.trim().is_empty() => return Ok(mark.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(failed)?;
    let mark = crate::random::token(12);
    let partial = data_dir.join("installation.partial");
    std::fs::write(&partial, format!("{mark}\n")).map_err(failed)?;
    std::fs::rename(&partial, &path).map_err(failed)?;
    Ok(mark)
}

/// The QEMU driver's settings for a server configured with `config`.
pub fn qemu_config(config: &Config) -> QemuConfig {
    QemuConfig {
        accel: config.accel,
        display_address: config.display_address,
        spice_ports: config.spice_ports.clone(),
        rdp_ports: config.rdp_ports.clone(),
        vm_memory_mib: config.vm_memory_mib,
        shutdown_deadline: config.shutdown_timeout,
        guest_probe_port: Some(config.listen.port()).filter(|port| *port != 0),
        ..QemuConfig::new(&config.data_dir)
    }
}

fn app_state(services: &Services, config: &Config) -> AppState {
    AppState {
        services: services.clone(),
        console: Arc::new(http::console::ConsoleState::new(config.console_secure_cookies)),
        password_change_by_token: config.password_change_by_token,
        plain_http: config.plain_http,
        tls_dir: tls::directory(&config.data_dir),
    }
}

/// A server accepting requests until [`RunningServer::shutdown`] or until dropped.
pub struct RunningServer {
    address: SocketAddr,
    services: Services,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// Follows a cloud's own catalogue, on drivers that have one.
    follower: Option<JoinHandle<()>>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
    }
}

/// How often a server on a cloud reads the cloud's images and flavors again.
pub const PLATFORM_CATALOGUE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Brings the catalogue in step with the platform's; a cloud that cannot be asked
/// now is said in the log and asked again later, the catalogue left as it was.
fn follow_platform_catalogue(services: &Services) {
    if let Err(error) = services.catalogue.follow_platform() {
        tracing::warn!(%error, "cannot read the platform's images and flavors; the catalogue stays as it was");
    }
}

impl RunningServer {
    /// Opens the data directory, binds `config.listen` (port 0 picks a free one) and
    /// starts serving in the background of the current tokio runtime.
    pub async fn start(config: Config, compute: Arc<dyn Compute>) -> Result<Self, StartError> {
        let (services, tls) = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                let services = open(&config, compute)?;
                // Whatever a crash interrupted is finished or undone before anyone
                // can ask (see `service::recovery`).
                let recovered = services.recovery.run()?;
                tracing::info!(?recovered, "records and machines brought into agreement");
                follow_platform_catalogue(&services);
                let desktops = services.desktops.reconcile()?;
                tracing::debug!(desktops, "desktop statuses reconciled with the hypervisor");
                let tls_dir = tls::directory(&config.data_dir);
                let identity = tls::ensure(&tls_dir, &tls::default_names(&config.public_address()))?;
                tracing::info!(fingerprint = %identity.fingerprint, "HTTPS and HTTP on the same port");
                Ok::<_, StartError>((services, tls::server_config(&tls_dir)?))
            })
            .await
            .map_err(|e| StartError::Interrupted(e.to_string()))??
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { address: config.listen, source })?;
        let address = listener.local_addr().map_err(|source| StartError::Bind { address: config.listen, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = http::serve::Limits {
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections,
        };
        let server = http::serve::serve(listener, app_state(&services, &config), limits, tls, async {
            // Either an explicit stop or the handle being dropped ends the server.
            let _ = stopped.await;
        });
        let task = tokio::spawn(server);
        let follower = services.catalogue.follows_platform().then(|| {
            let services = services.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(PLATFORM_CATALOGUE_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every.tick().await;
                loop {
                    every.tick().await;
                    let services = services.clone();
                    let _ = tokio::task::spawn_blocking(move || follow_platform_catalogue(&services)).await;
                }
            })
        });
        tracing::info!(%address, data_dir = %config.data_dir.display(), compute = services.desktops.compute_name(), "thindesk server listening");
        Ok(Self { address, services, stop: Some(stop), task: Some(task), follower })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://address`, with a wildcard listen address replaced by loopback.
    pub fn url(&self) -> String {
        format!("http://{}", self.loopback_address())
    }

    /// `https://address`: the same port, over TLS.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.loopback_address())
    }

    fn loopback_address(&self) -> SocketAddr {
        let mut address = self.address;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        address
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Stops accepting connections and waits for requests in flight to finish.
    pub async fn shutdown(mut self) {
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
