//! A management server whose desktops run on the compute test double, so that the
//! screenshot script can show states that need a running desktop (power actions, an
//! open session) without a hypervisor. Not part of the client.
//!
//! `cargo run -p thindesk-client --example screenshot_server -- PORT`: a student
//! `student` with password `student-password`, registration mode `auto`. Prints the
//! certificate fingerprint the client is to pin.

use std::sync::Arc;
use thindesk_server::compute::double::TestCompute;
use thindesk_server::service::catalogue::{Flavor, ImageSpec};
use thindesk_server::service::desktops::DesktopSpec;
use thindesk_server::service::{Actor, ServiceError};
use thindesk_server::{Config, RunningServer};
use thindesk_shared::{ConnectionType, Policy, RegistrationMode};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).ok_or("usage: screenshot_server PORT")?.parse()?;
    let data_dir = tempfile::tempdir()?;
    let config = Config {
        listen: ([127, 0, 0, 1], port).into(),
        data_dir: data_dir.path().to_owned(),
        public_address: Some("127.0.0.1".into()),
        ..Config::default()
    };
    let server = RunningServer::start(config, Arc::new(TestCompute::new())).await?;
    let services = server.services().clone();
    // A small file stands in for the image's base disk.
    let disk = data_dir.path().join("debian-12.qcow2");
    std::fs::write(&disk, b"QFI\xfb")?;
    tokio::task::spawn_blocking(move || -> Result<(), ServiceError> {
        let admin = Actor::system();
        services.terminals.add_place(&admin, "b101", "Building B, floor 1")?;
        services.terminals.set_registration_mode(&admin, RegistrationMode::Auto)?;
        services.accounts.create_user(&admin, "student", "student-password", false)?;
        // The catalogue, so that the tiles show an OS and a size.
        services.catalogue.add_image(
            &admin,
            &ImageSpec {
                name: "Debian 12".into(),
                base_disk: disk,
                default_connection_type: ConnectionType::Spice,
                os_username: "student".into(),
                os_password: "os-password".into(),
                guest_agent: false,
            },
        )?;
        services
            .catalogue
            .add_flavor(&admin, &Flavor { name: "medium".into(), vcpus: 2, ram_mib: 4096, disk_gib: 20 })?;
        for name in ["Lab PC", "Exam desktop"] {
            services.desktops.create(
                &admin,
                &DesktopSpec {
                    name: name.into(),
                    owner: "student".into(),
                    os_username: Some("student".into()),
                    os_password: Some("os-password".into()),
                    default_connection_type: Some(ConnectionType::Spice),
                    policy: Policy::default(),
                    image: Some("Debian 12".into()),
                    flavor: Some("medium".into()),
                },
            )?;
        }
        Ok(())
    })
    .await??;
    let identity = thindesk_server::tls::show(&thindesk_server::tls::directory(data_dir.path()))?;
    println!("ready on {}", server.url());
    println!("fingerprint {}", identity.fingerprint);
    std::future::pending::<()>().await;
    Ok(())
}
