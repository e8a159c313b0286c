//! On a real OpenStack (`tests/openstack/up.sh`), through the OpenStack driver: an
//! `internet=false` machine reaches neither the management host nor another machine,
//! and an `internet=true` one reaches the outside world.
//!
//! Three servers from the probe image (`assets/probe-image/`), which takes its
//! address by DHCP and its targets from the user data on its config drive, and says
//! on its serial port what it reached; the test reads that through Nova's console
//! log API:
//!
//! - `other`: `internet=false`, no targets: only its TCP 3389 answers.
//! - the isolated probe (`internet=false`), and the routed probe (`internet=true`),
//!   each trying: the outside world's listener (in the namespace `tdos-outside`
//!   behind the external network `public`, which up.sh makes), `other`'s port 3389,
//!   the DNS port of its own network's DHCP server (on its own link: nothing but a
//!   security group stands between), and a listener of this test on the management
//!   host, on the host's own address and on 127.0.0.1 (routed out of the guest).
//!
//! The routed probe reaching the outside listener and its DHCP server's DNS port is
//! the positive control: the isolated probe's "no" is then not a broken probe, and
//! its "no" for the DHCP server on its own link shows the security group with no
//! rules drops its traffic (isolation is not only the missing router). The
//! management listener counts every connection: none may come from a guest.
//!
//! It lives here, not beside the driver's own test, for the probe's helpers
//! (`thindesk_tests::vm`). It needs the cloud (skipped loudly without it, failed
//! under `CI`) and root (`ip netns exec` for the outside listener).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thindesk_server::compute::openstack::OpenStackCompute;
use thindesk_server::compute::{Compute, MachineSpec, PowerOp};
use thindesk_shared::Policy;
use thindesk_tests::netns;
use thindesk_tests::openstack::{TINY_FLAVOR, TestCloud};
use thindesk_tests::vm::{self, Probed};

const TEST: &str = "the OpenStack guest network test";
/// The namespace up.sh puts behind the external network, and its address there.
const OUTSIDE_NAMESPACE: &str = "tdos-outside";
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const OUTSIDE_BANNER: &str = "thindesk-outside";
const MANAGEMENT_BANNER: &str = "thindesk-management";
/// Boots under TCG on 2 busy cores: a probe's boot and tries take a minute or more.
const PROBE_LIMIT: Duration = Duration::from_secs(900);

/// The driver on the cloud of up.sh, or `None` (skipped) without one; under `CI`
/// a missing cloud, root or namespace fails the test. Its displays use `data_dir`.
fn cloud(data_dir: &std::path::Path) -> Option<OpenStackCompute> {
    let missing = if !netns::is_root() {
        Some("must run as root (the outside listener runs in a network namespace)".to_owned())
    } else if !Command::new("ip")
        .args(["netns", "exec", OUTSIDE_NAMESPACE, "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
    {
        Some(format!("needs the namespace {OUTSIDE_NAMESPACE} (run tests/openstack/up.sh)"))
    } else {
        None
    };
    if !vm::prerequisite(TEST, missing) {
        return None;
    }
    let cloud = TestCloud::find(TEST)?;
    Some(cloud.driver(&unique("network"), data_dir).expect("the OpenStack driver"))
}

fn spec(id: &str, internet: bool) -> MachineSpec {
    MachineSpec {
        id: id.to_owned(),
        name: format!("network test {id}"),
        base_disk: PathBuf::from("glance:thindesk-probe"),
        // The Glance image and Nova flavor that up.sh makes.
        image: "thindesk-probe".to_owned(),
        flavor: TINY_FLAVOR.to_owned(),
        vcpus: 1,
        ram_mib: 256,
        disk_gib: 1,
        internet,
        rdp: false,
        policy: Policy::default(),
        guest_account: None,
    }
}

/// The outside world's service: a banner on 203.0.113.1:7777 in up.sh's namespace.
struct OutsideListener(Child);

impl OutsideListener {
    const PORT: u16 = 7777;

    fn start() -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", OUTSIDE_NAMESPACE, "busybox", "nc", "-ll", "-p", &Self::PORT.to_string()])
            .args(["-e", "echo", OUTSIDE_BANNER])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the outside listener starts");
        let listener = Self(child);
        vm::wait_until("the outside listener", Duration::from_secs(20), || {
            let output = Command::new("ip")
                .args(["netns", "exec", OUTSIDE_NAMESPACE, "busybox", "nc", "-w", "2"])
                .arg(OUTSIDE.to_string())
                .arg(Self::PORT.to_string())
                .stdin(Stdio::null())
                .output();
            output.is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(OUTSIDE_BANNER))
        });
        listener
    }
}

impl Drop for OutsideListener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A service of the management host on every address of its own: a banner, and
/// who connected.
struct ManagementListener {
    port: u16,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl ManagementListener {
    fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("management listener");
        let port = listener.local_addr().expect("address").port();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&peers);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                if let Ok(peer) = stream.peer_addr() {
                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(peer);
                }
                let _ = stream.write_all(format!("{MANAGEMENT_BANNER}\n").as_bytes());
            }
        });
        Self { port, peers }
    }

    /// Connections from anywhere but the host itself.
    fn strangers(&self, host: &[IpAddr]) -> Vec<SocketAddr> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.iter().filter(|peer| !host.contains(&peer.ip())).copied().collect()
    }
}

fn read_banner(address: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.shutdown(Shutdown::Write).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    Some(String::from_utf8_lossy(&answer).trim().to_owned())
}

/// The address this host's default route leaves from (no packet is sent): the
/// management host's address as the rest of the network knows it.
fn default_route_address() -> Ipv4Addr {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("udp socket");
    socket.connect(("9.9.9.9", 53)).expect("a default route");
    match socket.local_addr().expect("local address").ip() {
        IpAddr::V4(address) if !address.is_unspecified() && !address.is_loopback() => address,
        other => panic!("no usable address of this host: {other}"),
    }
}

/// Deletes the servers it holds, whatever the test's outcome.
struct Servers<'a> {
    driver: &'a OpenStackCompute,
    ids: Mutex<Vec<String>>,
}

impl Servers<'_> {
    /// Defines (Nova boots it once and stops it) a probe server with `targets`.
    fn define(&self, id: &str, internet: bool, targets: &[(&str, String)]) {
        let list: Vec<String> = targets.iter().map(|(name, target)| format!("{name}={target}")).collect();
        let user_data = format!("thindesk.targets={}\n", list.join(","));
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).push(id.to_owned());
        let started = Instant::now();
        if let Err(error) = self.driver.define_with_user_data(&spec(id, internet), Some(user_data.as_bytes())) {
            panic!(
                "defining {id}: {error} (a server stuck in BUILD may be the linuxbridge agent stuck on \
                 ebtables: Known problems in tests/openstack/README.md)"
            );
        }
        eprintln!("openstack network: {id} defined in {:.1} s", started.elapsed().as_secs_f64());
    }

    fn start(&self, id: &str) -> Instant {
        let started = Instant::now();
        self.driver.power(id, PowerOp::Start).expect("started");
        started
    }

    /// Its address on `network`.
    fn address(&self, id: &str, network: &str) -> Ipv4Addr {
        let server = self.driver.server_of(id).expect("the server");
        let address = server.addresses.get(network).and_then(|list| list.iter().find(|a| a.version == 4));
        address.and_then(|a| a.addr.parse().ok()).unwrap_or_else(|| panic!("{id} has no address on {network}"))
    }

    /// The serial output of the server's last boot, once it has `needle`. Only
    /// while the server runs (Nova hangs on a stopped one's log).
    fn last_boot_with(&self, id: &str, needle: &str, since: Instant) -> String {
        let mut log = String::new();
        loop {
            // Now and then Nova's API loses nova-compute's reply and answers 500
            // MessagingTimeout after 60 s (nova-api's log: "greenlet.error: cannot
            // switch to a different thread", eventlet under several uwsgi threads);
            // the next call is answered again.
            match self.driver.console_output(id, 400) {
                Ok(output) => log = output,
                Err(error) => eprintln!("openstack network: {id}'s console output, will ask again: {error}"),
            }
            let last = log.rfind("thindesk-probe boot name=").map(|at| &log[at..]).unwrap_or("");
            if last.contains(needle) {
                return last.to_owned();
            }
            assert!(
                since.elapsed() < PROBE_LIMIT,
                "{id} did not print {needle:?} within {PROBE_LIMIT:?} of its start; its console:\n{log}"
            );
            std::thread::sleep(Duration::from_secs(15));
        }
    }
}

impl Drop for Servers<'_> {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if let Err(error) = self.driver.destroy(id) {
                eprintln!("openstack network: {id} could not be deleted: {error}");
            }
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// A probe's verdicts, printed for the record, after it got its targets from the
/// config drive and an address by DHCP.
fn verdicts(what: &str, log: &str) -> BTreeMap<String, Probed> {
    eprintln!("--- {what}:");
    for line in log.lines().filter(|line| line.starts_with("thindesk-probe")) {
        eprintln!("    {}", line.trim());
    }
    assert!(log.contains("thindesk-probe targets from=config-drive"), "{what} read no config drive:\n{log}");
    assert!(log.contains("thindesk-probe dhcp: lease from"), "{what} got no DHCP lease:\n{log}");
    vm::probe_results(log)
}

fn connected(verdicts: &BTreeMap<String, Probed>, what: &str, target: &str) -> bool {
    verdicts.get(target).unwrap_or_else(|| panic!("{what} printed nothing for {target}: {verdicts:?}")).connected
}

#[test]
fn an_isolated_machine_reaches_neither_the_management_host_nor_another_machine_on_a_real_cloud() {
    let data_dir = tempfile::tempdir().expect("dir");
    let Some(driver) = cloud(data_dir.path()) else { return };
    let outside = OutsideListener::start();
    let management = ManagementListener::start();
    let host = default_route_address();
    let host_addresses = [IpAddr::V4(host), IpAddr::V4(Ipv4Addr::LOCALHOST)];
    // The listener works for the host itself: a guest's "no" is the network's.
    for address in host_addresses {
        let banner = read_banner(SocketAddr::new(address, management.port));
        assert_eq!(banner.as_deref(), Some(MANAGEMENT_BANNER), "the management listener answers on {address}");
    }

    let servers = Servers { driver: &driver, ids: Mutex::new(Vec::new()) };
    let other = unique("netother");
    servers.define(&other, false, &[]);
    let other_started = servers.start(&other);
    let other_address = servers.address(&other, "thindesk-isolated");

    let targets = vec![
        ("outside", format!("{OUTSIDE}:{}:none", OutsideListener::PORT)),
        ("other-machine", format!("{other_address}:3389:none")),
        ("own-dhcp-server-dns", "@dhcp:53:none".to_owned()),
        ("management-host", format!("{host}:{}:none", management.port)),
        ("management-loopback", format!("127.0.0.1:{}:none", management.port)),
    ];
    let (isolated, routed) = (unique("netiso"), unique("netrouted"));
    std::thread::scope(|scope| {
        scope.spawn(|| servers.define(&isolated, false, &targets));
        scope.spawn(|| servers.define(&routed, true, &targets));
    });
    // The probes try `other` only once it listens, or their "no" would prove nothing.
    let other_log = servers.last_boot_with(&other, "thindesk-probe network:", other_started);
    assert!(other_log.contains("thindesk-probe dhcp: lease from"), "the other machine got no address:\n{other_log}");
    let isolated_started = servers.start(&isolated);
    let routed_started = servers.start(&routed);
    let isolated_log = servers.last_boot_with(&isolated, "thindesk-probe done", isolated_started);
    let routed_log = servers.last_boot_with(&routed, "thindesk-probe done", routed_started);
    eprintln!(
        "openstack network: the probes finished {:.0} s and {:.0} s after their start",
        isolated_started.elapsed().as_secs_f64(),
        routed_started.elapsed().as_secs_f64()
    );
    let isolated_reached = verdicts("internet=false", &isolated_log);
    let routed_reached = verdicts("internet=true", &routed_log);

    // The positive control: the probe works, the router routes, the outside listens.
    assert!(connected(&routed_reached, "internet=true", "outside"), "internet=true reaches the outside");
    assert_eq!(routed_reached["outside"].reply, OUTSIDE_BANNER, "and it is the outside listener that answers");
    assert!(
        connected(&routed_reached, "internet=true", "own-dhcp-server-dns"),
        "internet=true reaches its own network's DHCP server (DNS), on its link"
    );
    // The same kind of target, on the isolated probe's own link: only the security
    // group with no rules is in the way, so this "no" is the firewall's.
    assert!(
        !connected(&isolated_reached, "internet=false", "own-dhcp-server-dns"),
        "the isolated security group drops traffic to the DHCP server on the machine's own link"
    );
    for target in ["outside", "other-machine", "management-host", "management-loopback"] {
        assert!(!connected(&isolated_reached, "internet=false", target), "internet=false reaches {target}");
    }
    // Nor does a routed machine reach the management host or an isolated machine.
    for target in ["other-machine", "management-host", "management-loopback"] {
        assert!(!connected(&routed_reached, "internet=true", target), "internet=true reaches {target}");
    }
    let strangers = management.strangers(&host_addresses);
    assert!(strangers.is_empty(), "the management listener was reached from {strangers:?}");
    drop(outside);
}
