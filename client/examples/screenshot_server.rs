//! A management server whose desktops run on the compute test double, so that the
//! screenshot script can show states that need a running desktop (power actions, an
//! open session) without a hypervisor. Not part of the client.
//!
//! `cargo run -p thindesk-client --example screenshot_server -- PORT`: a student
//! `student` with password `student-password`, registration mode `auto`. Prints the
//! certificate fingerprint the client is to pin.

use std::sync::Arc;
use thindesk_server::compute::double::TestCompute;
use thindesk_server::service::Actor;
use thindesk_server::service::desktops::DesktopSpec;
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
    tokio::task::spawn_blocking(move || -> Result<(), thindesk_server::service::ServiceError> {
        let admin = Actor::system();
        services.terminals.add_place(&admin, "b101", "Building B, floor 1")?;
        services.terminals.set_registration_mode(&admin, RegistrationMode::Auto)?;
        services.accounts.create_user(&admin, "student", "student-password", false)?;
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
                    image: None,
                    flavor: None,
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
