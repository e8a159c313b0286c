//! End to end: the real xfreerdp, started by the client's viewer module, against a
//! real RDP server (FreeRDP's shadow server on an Xvfb screen). The certificate of a
//! desktop is trusted on first use and recorded for that desktop only: another
//! certificate on the same port is refused for it, and accepted for another desktop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use thindesk_client::viewer::{self, Launch, ViewerPrograms};
use thindesk_shared::{ConnectionInfo, ConnectionType, Desktop, DesktopStatus, Policy};
use thindesk_tests::screen::VirtualScreen;
use thindesk_tests::{ports, vm};

/// Programs this test runs.
const TOOLS: &[&str] = &["Xvfb", "xfreerdp", "freerdp-shadow-cli"];

#[tokio::test(flavor = "multi_thread")]
async fn rdp_certificates_are_trusted_on_first_use_per_desktop() {
    if !vm::tools_present("the client's RDP certificate test", TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let records = dir.path().join("state/thindesk/rdp");
    let server_screen = VirtualScreen::start(640, 480);
    let client_screen = VirtualScreen::start(800, 600);
    let port = ports::one();

    // The first server, with a certificate of its own, and desktop A's first connection.
    let first = Shadow::start(&server_screen.display, &dir.path().join("server-1"), port);
    let a = desktop("desk-a", port);
    let mut viewer = connect(&a, &records, &client_screen.display).await;
    let known_a = viewer::desktop_records(&records, "desk-a").join("freerdp/known_hosts2");
    wait_recorded(&known_a, port).await;
    stays_connected(&mut viewer).await;
    let record_a = std::fs::read_to_string(&known_a).expect("desktop A's record");
    let mode = std::fs::metadata(viewer::desktop_records(&records, "desk-a")).expect("dir").permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o700, "the records are private");
    let _ = viewer.child.kill().await;
    let _ = viewer.child.wait().await;
    let first_cert = first.certificate();
    drop(first);

    // Another server on the same port, with another certificate: desktop A is refused.
    let second = Shadow::start(&server_screen.display, &dir.path().join("server-2"), port);
    assert_ne!(second.certificate(), first_cert, "the two servers have different certificates");
    let mut viewer = connect(&a, &records, &client_screen.display).await;
    let exit = tokio::time::timeout(Duration::from_secs(60), viewer.wait()).await.expect("xfreerdp gives up");
    assert!(exit.certificate_changed, "xfreerdp refused the changed certificate: {exit:?}");
    assert_eq!(exit.status.expect("status").code(), Some(143), "xfreerdp's TLS failure");
    assert_eq!(std::fs::read_to_string(&known_a).expect("record"), record_a, "desktop A's record is kept");

    // Desktop B on the same port has no record yet: its first connection is accepted.
    let b = desktop("desk-b", port);
    let mut viewer = connect(&b, &records, &client_screen.display).await;
    let known_b = viewer::desktop_records(&records, "desk-b").join("freerdp/known_hosts2");
    wait_recorded(&known_b, port).await;
    stays_connected(&mut viewer).await;
    let record_b = std::fs::read_to_string(&known_b).expect("desktop B's record");
    assert_ne!(fingerprint(&record_b), fingerprint(&record_a), "B recorded the second certificate");
    let _ = viewer.child.kill().await;
    let _ = viewer.child.wait().await;
    drop(second);
}

fn desktop(id: &str, port: u16) -> Desktop {
    Desktop {
        id: id.into(),
        name: format!("Lab PC {id}"),
        status: DesktopStatus::Active,
        os_username: "student".into(),
        os_password: "os-secret".into(),
        default_connection_type: ConnectionType::Rdp,
        policy: Policy { enable_usb: false, enable_clipboard: false, enable_audio: false },
        connection_info: vec![ConnectionInfo {
            kind: ConnectionType::Rdp,
            ip: "127.0.0.1".into(),
            port: Some(port.to_string()),
            password: None,
            tls_port: None,
            ca: None,
            host_subject: None,
            secure_channels: None,
        }],
        image: None,
        size: None,
    }
}

/// Starts xfreerdp as the client plans it, on `display`.
async fn connect(desktop: &Desktop, records: &Path, display: &str) -> viewer::Viewer {
    let plan = viewer::plan_with_records(desktop, &ViewerPrograms::default(), false, Some(records)).expect("a plan");
    assert!(plan.args.iter().all(|arg| !arg.contains("ignore") && !arg.contains("os-secret")), "{plan:?}");
    let mut env = plan.env.clone();
    env.push(("DISPLAY".into(), display.into()));
    viewer::start(&Launch { env, ..plan }).await.expect("xfreerdp starts")
}

/// Waits for xfreerdp to record the server's certificate for this desktop.
async fn wait_recorded(known_hosts: &Path, port: u16) {
    let (path, entry) = (known_hosts.to_owned(), format!("127.0.0.1 {port} "));
    tokio::task::spawn_blocking(move || {
        vm::wait_until("xfreerdp to record the certificate", Duration::from_secs(60), || {
            std::fs::read_to_string(&path).is_ok_and(|text| text.contains(&entry))
        });
    })
    .await
    .expect("joined");
}

/// The viewer is still connected a while after it accepted the certificate.
async fn stays_connected(viewer: &mut viewer::Viewer) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(viewer.child.try_wait().expect("status").is_none(), "xfreerdp stays connected");
}

/// The fingerprint field of a `known_hosts2` line.
fn fingerprint(record: &str) -> String {
    record.split_whitespace().nth(2).expect("a fingerprint").to_owned()
}

/// FreeRDP's shadow server for `display`, on loopback `port`. It makes a certificate
/// of its own in `$XDG_CONFIG_HOME/freerdp/shadow` the first time, so each `config`
/// is another certificate. Killed when dropped.
struct Shadow {
    child: Child,
    config: PathBuf,
}

impl Shadow {
    fn start(display: &str, config: &Path, port: u16) -> Self {
        std::fs::create_dir_all(config).expect("config dir");
        let log = config.join("shadow.log");
        let spawn = || {
            let log = std::fs::File::create(&log).expect("log");
            Command::new("freerdp-shadow-cli")
                .args([format!("/port:{port}"), "/bind-address:127.0.0.1".into(), "-auth".into()])
                .env("DISPLAY", display)
                .env("XDG_CONFIG_HOME", config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("freerdp-shadow-cli starts")
        };
        let mut shadow = Self { child: spawn(), config: config.to_owned() };
        let mut tries = 1;
        vm::wait_until("the shadow server to listen", Duration::from_secs(90), || {
            // Now and then it ends at its start, unable to open the fresh screen
            // ("failed to open display"): start it again.
            if let Some(status) = shadow.child.try_wait().expect("status") {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                eprintln!("freerdp-shadow-cli ended at its start ({status}, try {tries}):\n{said}");
                std::thread::sleep(Duration::from_millis(500));
                shadow.child = spawn();
                tries += 1;
                return false;
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        shadow
    }

    fn certificate(&self) -> Vec<u8> {
        std::fs::read(self.config.join("freerdp/shadow/shadow.crt")).expect("the shadow server's certificate")
    }
}

impl Drop for Shadow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
