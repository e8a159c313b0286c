//! The OpenStack driver against a real cloud: the single-node OpenStack that
//! `tests/openstack/up.sh` starts (its credentials in
//! `/var/lib/thindesk-openstack/clouds.yaml`, or the file `THINDESK_OPENSTACK_CLOUDS`
//! names, cloud `THINDESK_OPENSTACK_CLOUD` or `thindesk`). Without a cloud the tests
//! fail under CI (`CI` set) and are skipped elsewhere, loudly.

use std::path::PathBuf;
use std::time::Instant;
use thindesk_server::compute::openstack::{OpenStackCompute, OpenStackConfig, api};
use thindesk_server::compute::{Compute, ComputeError, MachineSpec, PowerOp};
use thindesk_shared::{DesktopStatus, Policy};

/// The driver, over a data directory of its own whose TLS identity the displays
/// present.
pub struct Cloud {
    pub driver: OpenStackCompute,
    /// Held for the driver's lifetime: its TLS identity.
    _data_dir: tempfile::TempDir,
}

impl std::ops::Deref for Cloud {
    type Target = OpenStackCompute;
    fn deref(&self) -> &OpenStackCompute {
        &self.driver
    }
}

pub fn cloud(test: &str) -> Option<Cloud> {
    cloud_with(test, |_| {})
}

/// [`cloud`], the driver's settings changed by `adjust` first.
pub fn cloud_with(test: &str, adjust: impl FnOnce(&mut OpenStackConfig)) -> Option<Cloud> {
    let file = std::env::var_os("THINDESK_OPENSTACK_CLOUDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/thindesk-openstack/clouds.yaml"));
    let name = std::env::var("THINDESK_OPENSTACK_CLOUD").unwrap_or_else(|_| "thindesk".to_owned());
    let data_dir = tempfile::tempdir().expect("data dir");
    thindesk_server::tls::ensure(&thindesk_server::tls::directory(data_dir.path()), &["127.0.0.1".to_owned()])
        .expect("a TLS identity");
    let mut config = OpenStackConfig::new(&file, &name, data_dir.path());
    config.display_address = std::net::Ipv4Addr::LOCALHOST.into();
    adjust(&mut config);
    let missing = if file.is_file() {
        match OpenStackCompute::new(config) {
            Ok(driver) => match driver.check() {
                Ok(_) => return Some(Cloud { driver, _data_dir: data_dir }),
                Err(error) => format!("needs the cloud of {} to answer: {error}", file.display()),
            },
            Err(error) => format!("needs a usable {}: {error}", file.display()),
        }
    } else {
        format!("needs a cloud's credentials in {} (run tests/openstack/up.sh)", file.display())
    };
    let message = format!("{test} {missing}");
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {message} !!!!!!!!\n");
    None
}

pub fn spec(id: &str, internet: bool) -> MachineSpec {
    MachineSpec {
        id: id.to_owned(),
        name: format!("openstack test {id}"),
        base_disk: PathBuf::from("glance:thindesk-demo"),
        // The Glance image and Nova flavor that up.sh makes.
        image: "thindesk-demo".to_owned(),
        flavor: "thindesk.tiny".to_owned(),
        vcpus: 1,
        ram_mib: 256,
        disk_gib: 1,
        internet,
        rdp: false,
        policy: Policy::default(),
        guest_account: None,
    }
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}{}x{nanos}", std::process::id())
}

fn status(driver: &OpenStackCompute, id: &str) -> DesktopStatus {
    driver.inspect(id).expect("inspect").status
}

/// Runs `step`, printing how long it took.
fn timed<T>(what: &str, step: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = step();
    eprintln!("openstack: {what} took {:.1} s", started.elapsed().as_secs_f64());
    result
}

/// Opens nova-spicehtml5proxy's websocket with the token of a `spice-html5` console
/// URL, sends a SPICE link message through it and returns the first bytes of the
/// answer (a SPICE server's starts with `REDQ`). A minimal RFC 6455 client.
fn spice_through_proxy(console_url: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let rest = console_url.strip_prefix("http://").expect("an http:// console URL");
    let (authority, path) = rest.split_once('/').expect("a path");
    let token = path.split_once("token=").map(|(_, token)| token).expect("a token");
    let mut stream = std::net::TcpStream::connect(authority).expect("the proxy answers");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "GET /?token={token} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    )
    .expect("handshake sent");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("handshake answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "the proxy upgrades to a websocket: {head}");
    // SPICE link: header (magic, major 2, minor 2, size) and a link message for the
    // main channel with no capabilities.
    let mut link = b"REDQ".to_vec();
    for word in [2u32, 2, 18, 0] {
        link.extend(word.to_le_bytes());
    }
    link.extend([1u8, 0]);
    for word in [0u32, 0, 18] {
        link.extend(word.to_le_bytes());
    }
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x82u8, 0x80 | link.len() as u8];
    frame.extend(mask);
    frame.extend(link.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).expect("link message sent");
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).expect("a frame");
    let length = match header[1] & 0x7f {
        126 => {
            let mut extended = [0u8; 2];
            stream.read_exact(&mut extended).expect("length");
            u16::from_be_bytes(extended) as usize
        }
        127 => panic!("an unexpectedly long first frame"),
        short => short as usize,
    };
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).expect("the frame's payload");
    payload
}

#[test]
fn a_machine_is_defined_started_rebooted_stopped_and_deleted_on_a_real_cloud() {
    let Some(driver) = cloud("the OpenStack driver's lifecycle test") else { return };
    let id = unique("life");
    timed("define (create, ACTIVE, stop, SHUTOFF)", || driver.define(&spec(&id, true))).expect("defined");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(status(&driver, &id), DesktopStatus::Shutoff, "a defined machine is off");
        assert!(driver.machines().expect("machines").contains(&id));
        assert!(matches!(driver.define(&spec(&id, true)), Err(ComputeError::AlreadyDefined(_))));

        timed("start", || driver.power(&id, PowerOp::Start)).expect("started");
        assert_eq!(status(&driver, &id), DesktopStatus::Active);
        let display = driver.inspect(&id).expect("inspect").display.expect("a running machine has a display");
        assert!(display.spice_tls.is_some() && !display.spice_ticket.is_empty(), "TLS and a ticket");
        let console = driver.spice_console(&id).expect("a spice-html5 console");
        assert_eq!((console.protocol.as_str(), console.kind.as_str()), ("spice", "spice-html5"));
        let answer = spice_through_proxy(&console.url);
        assert!(answer.starts_with(b"REDQ"), "the guest's SPICE server answers through the proxy: {answer:?}");

        // The demo guest acts on ACPI once booted; Nova turns a soft reboot the guest
        // ignores into a hard one after [libvirt] wait_soft_reboot_seconds (up.sh:
        // 30 s). Either way the machine is ACTIVE again when power() returns.
        std::thread::sleep(std::time::Duration::from_secs(15));
        timed("soft reboot", || driver.power(&id, PowerOp::Reboot)).expect("rebooted");
        assert_eq!(status(&driver, &id), DesktopStatus::Active);
        timed("hard reboot", || driver.power(&id, PowerOp::Reset)).expect("reset");
        assert_eq!(status(&driver, &id), DesktopStatus::Active);
        // Resume of a running machine changes nothing.
        driver.power(&id, PowerOp::Resume).expect("resume while running");
        // Paused or suspended (from the dashboard, say), Resume brings it back.
        for (action, state, word) in
            [("pause", DesktopStatus::Paused, "PAUSED"), ("suspend", DesktopStatus::Suspended, "SUSPENDED")]
        {
            let server = driver.server_of(&id).expect("found");
            api::action(driver.session(), &server.id, &serde_json::json!({ action: null })).expect(action);
            let started = Instant::now();
            while driver.server_of(&id).expect("found").status != word
                || driver.server_of(&id).expect("found").task_state.is_some()
            {
                assert!(started.elapsed().as_secs() < 120, "{action} did not finish within 120 s");
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            assert_eq!(status(&driver, &id), state);
            timed(&format!("resume after {action}"), || driver.power(&id, PowerOp::Resume)).expect("resumed");
            assert_eq!(status(&driver, &id), DesktopStatus::Active);
        }

        // A revoked token is renewed on the 401 it earns.
        driver.session().revoke_cached_token().expect("revoked");
        assert_eq!(status(&driver, &id), DesktopStatus::Active, "renewed after a 401");

        timed("shutdown", || driver.power(&id, PowerOp::Shutdown)).expect("shut down");
        assert_eq!(status(&driver, &id), DesktopStatus::Shutoff);
        driver.power(&id, PowerOp::Resume).expect("resume starts a stopped machine");
        assert_eq!(status(&driver, &id), DesktopStatus::Active);
        driver.power(&id, PowerOp::PowerOff).expect("powered off");
        assert_eq!(status(&driver, &id), DesktopStatus::Shutoff);
        assert_eq!(driver.inspect(&id).expect("inspect").display, None, "no display while off");
        driver.new_ticket(&id).expect("a machine that is off gets its ticket at its start");
    }));
    let destroyed = timed("destroy", || driver.destroy(&id));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    destroyed.expect("destroyed");
    assert!(matches!(driver.inspect(&id), Err(ComputeError::NoSuchMachine(_))));
    assert!(!driver.machines().expect("machines").contains(&id));
    assert!(matches!(driver.destroy(&id), Err(ComputeError::NoSuchMachine(_))));
    assert!(matches!(driver.power(&id, PowerOp::Start), Err(ComputeError::NoSuchMachine(_))));
}

#[test]
fn a_machine_without_internet_is_on_the_isolated_network_and_what_the_cloud_lacks_is_said() {
    let Some(driver) = cloud("the OpenStack driver's isolation test") else { return };
    let id = unique("iso");
    driver.define(&spec(&id, false)).expect("defined without internet");
    let server = driver.server_of(&id).expect("found");
    let destroyed = driver.destroy(&id);
    destroyed.expect("destroyed");
    assert_eq!(server.metadata.get("thindesk_id"), Some(&id));
    let networks: Vec<&String> = server.addresses.keys().collect();
    assert_eq!(networks, ["thindesk-isolated"], "only the network with no router");
    let groups: Vec<&str> = server.security_groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["thindesk-isolated"], "only the group that lets nothing out");

    let mut no_image = spec(&unique("noimg"), true);
    no_image.image = "no-such-image".to_owned();
    let error = driver.define(&no_image).expect_err("no such image");
    assert!(matches!(error, ComputeError::BadImage(ref m) if m.contains("no-such-image")), "{error}");

    let mut no_flavor = spec(&unique("noflavor"), true);
    no_flavor.flavor = "no-such-flavor".to_owned();
    let error = driver.define(&no_flavor).expect_err("no such flavor");
    assert!(matches!(error, ComputeError::NoCapacity(ref m) if m.contains("no-such-flavor")), "{error}");
    assert!(driver.machines().expect("machines").iter().all(|machine| !machine.starts_with("no")), "nothing left");
}
