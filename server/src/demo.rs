//! A throw-away installation for trying thindesk: a temporary data directory with
//! two places, an administrator, a student, and the student's desktop running on
//! the demo image. `thindesk-server demo` and the client's `--demo` both start it.
//! Stopping it destroys its machines and removes every file it made.

use crate::app::{RunningServer, StartError};
use crate::compute::ComputeError;
use crate::compute::qemu::demo_image;
use crate::config::Config;
use crate::service::catalogue::ImageSpec;
use crate::service::desktops::DesktopSpec;
use crate::service::{Actor, Credentials, ServiceError, random_token};
use std::net::SocketAddr;
use thindesk_shared::{ConnectionType, DesktopAction, RegistrationMode, Secret};

pub const IMAGE: &str = "thindesk-demo";
pub const FLAVOR: &str = "m1.tiny";
pub const DESKTOP: &str = "Demo desktop";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare the demo's data directory or port: {0}")]
    DataDir(std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the demo needs QEMU and the demo image: {0}")]
    Compute(#[from] ComputeError),
    #[error("cannot set up the demo: {0}")]
    Setup(#[from] ServiceError),
    #[error("the demo's set-up was interrupted")]
    Interrupted,
}

/// Who may log in to the demo. The passwords are made up at every start.
#[derive(Debug, Clone)]
pub struct DemoLogins {
    pub admin: (String, String),
    pub student: (String, String),
}

pub struct Demo {
    pub server: RunningServer,
    pub logins: DemoLogins,
    pub desktop_id: String,
    data_dir: tempfile::TempDir,
}

impl Demo {
    /// Starts the demo server on `listen`, building the demo image first if this
    /// host has never built it (a few seconds, once).
    pub async fn start(mut listen: SocketAddr) -> Result<Self, DemoError> {
        let data_dir = tempfile::Builder::new().prefix("thindesk-demo-").tempdir().map_err(DemoError::DataDir)?;
        // The guests are told the server's port so that the demo screen can show it
        // reachable; "any free port" has to be a known one before the driver starts.
        if listen.port() == 0 {
            let probe = std::net::TcpListener::bind(listen).map_err(DemoError::DataDir)?;
            listen = probe.local_addr().map_err(DemoError::DataDir)?;
        }
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        let config = Config {
            listen,
            data_dir: data_dir.path().to_owned(),
            display_address: loopback,
            public_address: Some(loopback.to_string()),
            ..Config::default()
        };
        let (compute, image) = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || -> Result<_, DemoError> {
                let image = demo_image::ensure(&demo_image::default_cache_dir())?;
                Ok((crate::app::compute_for(&config)?, image))
            })
            .await
            .map_err(|_| DemoError::Interrupted)??
        };
        let server = RunningServer::start(config, compute).await?;
        let services = server.services().clone();
        let logins =
            DemoLogins { admin: ("admin".into(), random_token(9)), student: ("student".into(), random_token(9)) };
        let seeded = {
            let logins = logins.clone();
            tokio::task::spawn_blocking(move || -> Result<String, ServiceError> {
                let by = Actor::system();
                services.terminals.add_place(&by, "b101", "Building B, floor 1")?;
                services.terminals.add_place(&by, "b201", "Building B, floor 2")?;
                services.terminals.set_registration_mode(&by, RegistrationMode::Auto)?;
                services.accounts.create_user(&by, &logins.admin.0, &logins.admin.1, true)?;
                services.accounts.create_user(&by, &logins.student.0, &logins.student.1, false)?;
                services.catalogue.add_image(
                    &by,
                    &ImageSpec {
                        name: IMAGE.into(),
                        base_disk: image,
                        default_connection_type: ConnectionType::Spice,
                        os_username: "student".into(),
                        // Unused: the image runs the guest agent, so the desktop gets
                        // its own password.
                        os_password: Secret::new(random_token(9)),
                        guest_agent: true,
                    },
                )?;
                let desktop_id = services
                    .desktops
                    .create(&by, &DesktopSpec::from_catalogue(DESKTOP, &logins.student.0, IMAGE, FLAVOR))?;
                let student = services.accounts.authenticate(
                    &Credentials::Password {
                        user: logins.student.0.clone(),
                        password: logins.student.1.clone().into(),
                    },
                    None,
                )?;
                services.desktops.act(&student, &desktop_id, DesktopAction::Resume)?;
                Ok(desktop_id)
            })
            .await
        };
        let demo = |desktop_id| Self { server, logins, desktop_id, data_dir };
        match seeded {
            Ok(Ok(desktop_id)) => Ok(demo(desktop_id)),
            Ok(Err(error)) => {
                demo(String::new()).stop().await;
                Err(error.into())
            }
            Err(_) => {
                demo(String::new()).stop().await;
                Err(DemoError::Interrupted)
            }
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Stops serving, destroys every machine the demo started and removes its files.
    pub async fn stop(self) {
        let Self { server, data_dir, .. } = self;
        let services = server.services().clone();
        server.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || {
            for desktop in services.desktops.list_all(None).unwrap_or_default() {
                if let Err(error) = services.desktops.delete(&Actor::system(), &desktop.id) {
                    tracing::warn!(desktop = %desktop.id, %error, "cannot remove a demo desktop");
                }
            }
            for instance in services.cloud.list_instances().unwrap_or_default() {
                let _ = services.cloud.destroy_instance(&instance.vm_id);
            }
        })
        .await;
        drop(data_dir);
    }
}
