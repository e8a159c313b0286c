//! An outside client written only from the seed document (`tests/seed_client.py`,
//! Python's standard library) works against the server unchanged: in plain HTTP on
//! loopback, as seed-era callers do, and over HTTPS trusting the server's authority.

use std::process::Command;
use thindesk_tests::{STUDENT, TestServer};

/// Runs the seed client against `base`; `ca`: the authority Python's `ssl` trusts.
async fn run_seed_client(base: String, ca: Option<std::path::PathBuf>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/seed_client.py");
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("python3");
        command.args([script, &base, STUDENT.0, STUDENT.1, "a-new-password", "08:00:20:0a:8c:6d"]);
        if let Some(ca) = ca {
            // OpenSSL's own variable: the script itself stays as the seed wrote it.
            command.env("SSL_CERT_FILE", ca);
        }
        command.output()
    })
    .await
    .expect("joined")
    .expect("python3 is installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "seed client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 20, "{stdout}");
    assert_eq!(stdout.lines().last(), Some("done"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_written_from_the_seed_alone_works_unchanged() {
    let server = TestServer::start().await;
    server.create_desktop(STUDENT.0, "seed desktop").await;
    run_seed_client(server.server.url(), None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_client_works_over_https_trusting_the_servers_authority() {
    let server = TestServer::start().await;
    server.create_desktop(STUDENT.0, "seed desktop").await;
    let ca = server.data_dir().join("tls").join("ca-cert.pem");
    run_seed_client(server.server.https_url(), Some(ca)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_client_works_unchanged_with_desktops_on_openstack() {
    use thindesk_tests::openstack::{DEMO_IMAGE, TINY_FLAVOR, TestCloud};
    let Some(cloud) = TestCloud::find_async("the seed client on OpenStack").await else { return };
    let (_, driver, server) = crate::openstack::cloud_server(&cloud, "seed").await;
    let id =
        thindesk_tests::desktop_from_image(server.services(), STUDENT.0, "seed desktop", DEMO_IMAGE, TINY_FLAVOR).await;
    // Its resume, reboot and shutdown are carried out by Nova.
    run_seed_client(server.server.url(), None).await;
    let services = server.services().clone();
    let status = tokio::task::spawn_blocking(move || {
        let status = services.desktops.list_all(None).expect("desktops")[0].status;
        services.desktops.delete(&thindesk_server::service::Actor::system(), &id).expect("delete");
        status
    })
    .await
    .expect("joined");
    assert_eq!(status, thindesk_shared::DesktopStatus::Shutoff, "the seed client's last action was a shutdown");
    let left = crate::openstack::machines(&driver).await;
    assert!(left.is_empty(), "{left:?}");
}
