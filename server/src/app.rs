//! Assembles a running server from a configuration and a compute driver. The binary,
//! the tests and (later) the client's demo mode all start the server through here.

use crate::compute::Compute;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::service::{
    Accounts, Audit, Catalogue, Cloud, CloudAccess, Desktops, ServiceError, Terminals, ThrottlePolicy,
};
use crate::store::{Store, StoreError};
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
    #[error("start-up was interrupted: {0}")]
    Interrupted(String),
}

/// The services over one data directory.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<Store>,
    pub accounts: Arc<Accounts>,
    pub terminals: Arc<Terminals>,
    pub desktops: Arc<Desktops>,
    pub catalogue: Arc<Catalogue>,
    pub cloud: Arc<Cloud>,
    pub audit: Arc<Audit>,
    /// Whether the console's cookies are marked `Secure`.
    console_secure_cookies: bool,
}

impl Services {
    /// Opens the store (migrating it) and builds every service. Blocking.
    pub fn open(config: &Config, compute: Arc<dyn Compute>) -> Result<Self, StartError> {
        let store = Arc::new(Store::open(&config.data_dir)?);
        let access =
            CloudAccess::new(config.cloud_api_allow.clone(), config.cloud_api_key.as_ref().map(|key| key.expose()));
        Ok(Self {
            accounts: Arc::new(Accounts::new(store.clone(), config.token_ttl, ThrottlePolicy::default())?),
            terminals: Arc::new(Terminals::new(store.clone())),
            desktops: Arc::new(Desktops::new(store.clone(), compute.clone(), config.public_address())),
            catalogue: Arc::new(Catalogue::new(store.clone())),
            cloud: Arc::new(Cloud::new(store.clone(), compute, config.public_address(), access)),
            audit: Arc::new(Audit::new(store.clone())),
            console_secure_cookies: config.console_secure_cookies,
            store,
        })
    }

    fn app_state(&self) -> AppState {
        AppState {
            accounts: self.accounts.clone(),
            terminals: self.terminals.clone(),
            desktops: self.desktops.clone(),
            catalogue: self.catalogue.clone(),
            cloud: self.cloud.clone(),
            audit: self.audit.clone(),
            console: Arc::new(http::console::ConsoleState::new(self.console_secure_cookies)),
        }
    }
}

/// A server accepting requests until [`RunningServer::shutdown`] or until dropped.
pub struct RunningServer {
    address: SocketAddr,
    services: Services,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Opens the data directory, binds `config.listen` (port 0 picks a free one) and
    /// starts serving in the background of the current tokio runtime.
    pub async fn start(config: Config, compute: Arc<dyn Compute>) -> Result<Self, StartError> {
        let services = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                let services = Services::open(&config, compute)?;
                let desktops = services.desktops.reconcile()?;
                tracing::debug!(desktops, "desktop statuses reconciled with the hypervisor");
                Ok::<_, StartError>(services)
            })
            .await
            .map_err(|e| StartError::Interrupted(e.to_string()))??
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { address: config.listen, source })?;
        let address = listener.local_addr().map_err(|source| StartError::Bind { address: config.listen, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = warp::serve(http::routes(services.app_state())).incoming(listener).graceful(async {
            // Either an explicit stop or the handle being dropped ends the server.
            let _ = stopped.await;
        });
        let task = tokio::spawn(server.run());
        tracing::info!(%address, data_dir = %config.data_dir.display(), compute = services.desktops.compute_name(), "thindesk server listening");
        Ok(Self { address, services, stop: Some(stop), task: Some(task) })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://address`, with a wildcard listen address replaced by loopback.
    pub fn url(&self) -> String {
        let mut address = self.address;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}")
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Stops accepting connections and waits for requests in flight to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
