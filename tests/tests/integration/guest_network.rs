//! Nothing inside a desktop or exam machine reaches the management host.
//!
//! A real `thindesk-server`, run as `thindesk` like an installed one (the user whose
//! connections to this host `assets/guest-net.nft` refuses), launches through the
//! cloud API a machine to attack (the demo image, with RDP) and two probe guests
//! (`assets/probe-image/`), one with internet and one without. Each probe tries, and
//! reports on its serial console: the server's HTTP port, the other machine's SPICE
//! and forwarded RDP ports, a stand-in SSH service and a stand-in UDP service on the
//! host, through the gateway 10.0.2.2 (QEMU's alias for the host's loopback), on
//! 127.0.0.1 itself (routed out of the guest) and on the host's own addresses; and a
//! service on a host outside (a network namespace behind a veth pair). Only the
//! outside service answers, and only the probe with internet, while the host itself
//! reaches every one of those services. Both probes still take connections on their
//! forwarded RDP ports, as terminals make them.
//!
//! It needs root (to run the server as `thindesk` and to make the namespace) and the
//! `thindesk` user; `assets/install-packages.sh` makes the user and loads the table.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use thindesk_tests::netns::{self, Namespace};
use thindesk_tests::vm::{self, Hello, Probed, Target};

const TEST: &str = "the guest network test";
/// The user the server runs as, and whom the table names.
const USER: &str = "thindesk";
/// QEMU's user-mode network's address for the host (its loopback, unless refused).
const GATEWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2));
/// How long the probes may take to boot and try everything, under TCG on a busy host.
const PROBE_LIMIT: Duration = Duration::from_secs(600);

/// `cargo test --workspace` builds the server's binary beside the test executables.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let binary = exe.parent().and_then(Path::parent).map(|dir| dir.join("thindesk-server")).expect("target dir");
    assert!(binary.is_file(), "{} is missing: run `cargo test --workspace`, which builds it", binary.display());
    binary
}

/// The uid and gid of `user`, if there is one.
fn ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| {
        let output = Command::new("id").args([flag, user]).stderr(Stdio::null()).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().parse().ok()).flatten()
    };
    Some((id("-u")?, id("-g")?))
}

fn prerequisites() -> bool {
    let mut tools = vm::TOOLS.to_vec();
    tools.extend(["ip", "setpriv", "mtype", "id", "kill"]);
    if !vm::tools_present(TEST, &tools) {
        return false;
    }
    let problem = if !netns::is_root() {
        Some("must run as root: it runs the server as thindesk and makes a network namespace".to_owned())
    } else if ids(USER).is_none() {
        Some(format!("needs the {USER} user (sudo bash assets/install-packages.sh makes it)"))
    } else {
        None
    };
    vm::prerequisite(TEST, problem)
}

/// A host on another network, with a TCP service that answers every connection with
/// a banner.
struct Outside {
    namespace: Namespace,
    port: u16,
    listener: Child,
}

impl Outside {
    fn new(banner: &str) -> Self {
        let namespace = Namespace::new("tdg", 254);
        let port = 7777;
        let listener = namespace
            .command("busybox")
            .args(["nc", "-ll", "-p", &port.to_string(), "-e", "echo", banner])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the outside service starts");
        let address = namespace.address;
        let outside = Self { namespace, port, listener };
        vm::wait_until("the outside service", Duration::from_secs(20), || {
            read_banner(SocketAddr::new(IpAddr::V4(address), port)).is_some_and(|answer| answer == banner)
        });
        outside
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
    }
}

/// Connects, says nothing (closing its own side), and reads what the service says
/// until it closes (at most 10 s), trimmed.
fn read_banner(address: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.shutdown(std::net::Shutdown::Write).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    Some(String::from_utf8_lossy(&answer).trim().to_owned())
}

/// A service on this host that counts who contacted it.
struct StandIn {
    port: u16,
    contacts: Arc<AtomicUsize>,
}

impl StandIn {
    /// TCP, on every address: sends `banner` and closes, as an SSH server greets.
    fn tcp(banner: &str) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("listener");
        let port = listener.local_addr().expect("address").port();
        let contacts = Arc::new(AtomicUsize::new(0));
        let (counter, banner) = (contacts.clone(), format!("{banner}\r\n"));
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(banner.as_bytes());
            }
        });
        Self { port, contacts }
    }

    /// UDP, on every address: answers each datagram with a TFTP error packet carrying
    /// `banner`, which the probe's TFTP client reports.
    fn udp(banner: &str) -> Self {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("socket");
        let port = socket.local_addr().expect("address").port();
        let contacts = Arc::new(AtomicUsize::new(0));
        let counter = contacts.clone();
        let mut answer = vec![0, 5, 0, 0];
        answer.extend_from_slice(banner.as_bytes());
        answer.push(0);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while let Ok((_, peer)) = socket.recv_from(&mut buffer) {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = socket.send_to(&answer, peer);
            }
        });
        Self { port, contacts }
    }

    fn contacts(&self) -> usize {
        self.contacts.load(Ordering::SeqCst)
    }
}

/// The real server binary, run as `thindesk` over a data directory of its own, on
/// every address of the host, its machines' displays too. Machines run under TCG:
/// where nested KVM opens but cannot run a guest, QEMU starts and its guest never
/// boots, and this test is about networks, not speed.
struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    binary: PathBuf,
    config: PathBuf,
    port: u16,
    url: String,
    owner: (u32, u32),
    runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start() -> Self {
        let owner = ids(USER).expect("the thindesk user");
        let dir = tempfile::tempdir().expect("dir");
        std::os::unix::fs::chown(dir.path(), Some(owner.0), Some(owner.1)).expect("chown");
        let port = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).and_then(|l| l.local_addr()).expect("port").port();
        let (spice, rdp) = (thindesk_tests::ports::block(8), thindesk_tests::ports::block(8));
        // A copy its user can run wherever the build is (a checkout under /root, say).
        let binary = dir.path().join("thindesk-server");
        std::fs::copy(server_binary(), &binary).expect("copy the server binary");
        let config = dir.path().join("server.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"0.0.0.0:{port}\"\ndata_dir = \"{}\"\ndisplay_address = \"0.0.0.0\"\n\
                 public_address = \"127.0.0.1\"\nspice_ports = \"{}-{}\"\nrdp_ports = \"{}-{}\"\n\
                 shutdown_timeout = 10\naccel = \"tcg\"\n",
                dir.path().join("data").display(),
                spice.start(),
                spice.end(),
                rdp.start(),
                rdp.end()
            ),
        )
        .expect("config");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let url = format!("http://127.0.0.1:{port}");
        let mut server = Self { child: None, dir, binary, config, port, url, owner, runtime };
        let log = std::fs::File::create(server.dir.path().join("server.log")).expect("log");
        let child = server.command().arg("serve").stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn();
        server.child = Some(child.expect("serve"));
        let places = format!("{}/api/v1.0/places", server.url);
        let up = server.runtime.block_on(async {
            for _ in 0..300 {
                if reqwest::get(&places).await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        });
        assert!(up, "the server did not come up: {}", server.log());
        server
    }

    fn command(&self) -> Command {
        let mut command = Command::new("setpriv");
        command.args(["--reuid", USER, "--regid", USER, "--init-groups", "--"]).arg(&self.binary);
        command.arg("--config").arg(&self.config);
        command
    }

    /// An administration command as `thindesk`, with `stdin` as its standard input.
    fn admin(&self, arguments: &[&str], stdin: &str) {
        let mut command = self.command();
        command.args(arguments);
        thindesk_tests::run_with_stdin(command, stdin);
    }

    /// Adds `disk` to the catalogue as an RDP image named `name`, from a copy in the
    /// server's directory that its user may read.
    fn add_image(&self, name: &str, disk: &Path) {
        let copy = self.dir.path().join(format!("{name}.qcow2"));
        if disk != copy {
            std::fs::copy(disk, &copy).expect("copy the disk");
        }
        std::os::unix::fs::chown(&copy, Some(self.owner.0), Some(self.owner.1)).expect("chown");
        let copy = copy.to_string_lossy();
        self.admin(&["image", "add", name, "--disk", &copy, "--connection", "rdp", "--os-username", "x"], "pw\n");
    }

    fn cloud(&self, form: &[(&str, &str)]) -> Value {
        let url = format!("{}/cloud_api", self.url);
        self.runtime.block_on(async {
            let reply = reqwest::Client::new().post(url).form(form).send().await.expect("sent");
            reply.json().await.expect("json")
        })
    }

    /// Launches `image` as an exam machine would be, and answers (id, SPICE port,
    /// forwarded RDP port).
    fn launch(&self, image: &str, internet: bool, name: &str) -> (String, u16, u16) {
        let internet = if internet { "true" } else { "false" };
        let answer = self.cloud(&[
            ("command", "launch_instance"),
            ("image", image),
            ("flavor", "m1.probe"),
            ("internet", internet),
            ("name", name),
        ]);
        assert_eq!(answer["ret_code"], 0, "{answer}\n{}", self.log());
        let port = |key: &str| {
            answer[key].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or_else(|| panic!("no {key}: {answer}"))
        };
        (answer["vm_id"].as_str().expect("vm_id").to_owned(), port("spice_port"), port("rdp_port"))
    }

    fn serial(&self, id: &str) -> String {
        let bytes = std::fs::read(self.dir.path().join(format!("data/vms/{id}/serial.log"))).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn wait_for_serial(&self, id: &str, needle: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.serial(id);
            if log.contains(needle) {
                return log;
            }
            assert!(start.elapsed() < limit, "gave up after {limit:?} waiting for {needle:?} from {id}:\n{log}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    /// Kills every machine (their QEMU processes outlive the server on purpose), then
    /// the server.
    fn drop(&mut self) {
        let machines = std::fs::read_dir(self.dir.path().join("data/vms")).into_iter().flatten().flatten();
        for machine in machines {
            if let Ok(pid) = std::fs::read_to_string(machine.path().join("qemu.pid")) {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).stderr(Stdio::null()).status();
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The address this host's default route leaves from (no packet is sent).
fn default_route_address() -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect(("9.9.9.9", 53)).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(address) if !address.is_unspecified() && !address.is_loopback() => Some(address),
        _ => None,
    }
}

/// Reads the probe's verdicts, printing them for the record.
fn verdicts(name: &str, log: &str, targets: &[Target]) -> BTreeMap<String, Probed> {
    eprintln!("--- {name}:");
    for line in log.lines().filter(|line| line.starts_with("thindesk-probe target=")) {
        eprintln!("    {line}");
    }
    let results = vm::probe_results(log);
    for target in targets {
        assert!(results.contains_key(&target.name), "{name} said nothing of {}:\n{log}", target.name);
    }
    results
}

#[test]
fn guests_reach_outside_networks_only_and_never_this_host() {
    if !prerequisites() {
        return;
    }
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::UNIX_EPOCH.elapsed().map_or(0, |t| t.subsec_nanos())
    );
    let outside_banner = format!("outside-{nonce}");
    let outside = Outside::new(&outside_banner);
    let ssh = StandIn::tcp(&format!("SSH-2.0-thindesk-stand-in-{nonce}"));
    let udp = StandIn::udp(&format!("udp-stand-in-{nonce}"));
    let server = Server::start();
    let http_port = server.port;

    server.add_image("demo-rdp", &vm::demo_image());
    server.admin(&["flavor", "add", "m1.probe", "--vcpus", "1", "--ram", "256", "--disk", "1"], "");
    // The machine to attack: an exam machine with its ticketed SPICE port and the
    // RDP port forwarded to its guest, which answers "thindesk-demo victim".
    let (victim, victim_spice, victim_rdp) = server.launch("demo-rdp", false, "victim");

    let host = IpAddr::V4(default_route_address().unwrap_or(outside.namespace.host_side));
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let targets = vec![
        Target::new("api-gateway", GATEWAY, http_port, Hello::Http),
        Target::new("api-loopback", loopback, http_port, Hello::Http),
        Target::new("api-host", host, http_port, Hello::Http),
        Target::new("api-veth", IpAddr::V4(outside.namespace.host_side), http_port, Hello::Http),
        Target::new("spice-gateway", GATEWAY, victim_spice, Hello::Spice),
        Target::new("spice-host", host, victim_spice, Hello::Spice),
        Target::new("rdp-gateway", GATEWAY, victim_rdp, Hello::None),
        Target::new("rdp-host", host, victim_rdp, Hello::None),
        Target::new("ssh-gateway", GATEWAY, ssh.port, Hello::None),
        Target::new("ssh-host", host, ssh.port, Hello::None),
        Target::new("udp-gateway", GATEWAY, udp.port, Hello::Udp),
        Target::new("udp-host", host, udp.port, Hello::Udp),
        Target::new("outside", IpAddr::V4(outside.namespace.address), outside.port, Hello::None),
    ];
    server.add_image("probe", &vm::probe_image(server.dir.path(), &targets));
    let (with_internet, _, with_internet_rdp) = server.launch("probe", true, "probe-internet");
    let (exam, _, exam_rdp) = server.launch("probe", false, "probe-exam");

    let with_internet_log =
        server.wait_for_serial(&with_internet, "thindesk-probe done name=probe-internet", PROBE_LIMIT);
    let exam_log = server.wait_for_serial(&exam, "thindesk-probe done name=probe-exam", PROBE_LIMIT);
    let reached = verdicts("with internet", &with_internet_log, &targets);
    let exam_reached = verdicts("exam", &exam_log, &targets);
    let contacts = (ssh.contacts(), udp.contacts());

    // Nothing on the host: every target but the outside one is this host's.
    let hint = "(is the table of assets/guest-net.nft loaded? sudo bash assets/install-packages.sh)";
    for target in targets.iter().filter(|target| target.name != "outside") {
        for (probe, results) in [("with internet", &reached), ("exam", &exam_reached)] {
            let result = &results[&target.name];
            assert!(!result.connected, "the probe {probe} reached {} on the host: {result:?} {hint}", target.name);
        }
    }
    assert_eq!(contacts, (0, 0), "the stand-in SSH and UDP services were contacted");
    // Outside: only with internet.
    assert_eq!(
        reached["outside"],
        Probed { connected: true, reply: outside_banner.clone() },
        "the probe with internet did not reach the outside host {hint}\n{}",
        server.log()
    );
    assert!(
        !exam_reached["outside"].connected,
        "the exam probe reached the outside host: {:?}",
        exam_reached["outside"]
    );

    // The control: from the host itself every one of those services answers, so the
    // probes' "no" is their network's doing, not a dead service.
    server.wait_for_serial(&victim, "thindesk-demo banner", PROBE_LIMIT);
    let ca = std::fs::read_to_string(server.dir.path().join("data/tls/ca-cert.pem")).expect("the server's authority");
    for address in [loopback, host] {
        let victim_rdp = read_banner(SocketAddr::new(address, victim_rdp));
        assert_eq!(victim_rdp.as_deref(), Some("thindesk-demo victim"), "the victim's RDP port on {address}");
        let ssh_banner = read_banner(SocketAddr::new(address, ssh.port)).unwrap_or_default();
        assert!(ssh_banner.starts_with("SSH-2.0-thindesk-stand-in-"), "the stand-in SSH on {address}: {ssh_banner:?}");
        // SPICE speaks TLS only: a link over TLS, trusting the server's authority, gets
        // SPICE's verdict on a ticket.
        let spice = thindesk_tests::spice::try_ticket_at(SocketAddr::new(address, victim_spice), &ca, "not-it");
        assert_eq!(spice.expect("SPICE answers over TLS"), thindesk_tests::spice::Verdict::Refused(7), "on {address}");
        let api = server.runtime.block_on(reqwest::get(format!("http://{address}:{http_port}/api/v1.0/token")));
        assert_eq!(api.expect("the API answers").status(), 401, "the API on {address}");
    }
    let udp_probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("socket");
    udp_probe.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    udp_probe.send_to(b"\0\x01probe\0octet\0", (Ipv4Addr::LOCALHOST, udp.port)).expect("send");
    let mut answer = [0u8; 256];
    assert!(udp_probe.recv(&mut answer).is_ok_and(|n| n > 4), "the stand-in UDP service answers the host");

    // Terminals still reach both probes through their forwarded RDP ports.
    for (name, port) in [("probe-internet", with_internet_rdp), ("probe-exam", exam_rdp)] {
        for address in [loopback, host] {
            let answer = read_banner(SocketAddr::new(address, port));
            assert_eq!(answer, Some(format!("thindesk-probe {name}")), "{name}'s RDP port on {address}");
        }
    }
}
