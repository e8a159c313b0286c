//! Real virtual machines for tests: the demo image, the network probe image, a QEMU
//! driver over a temporary state directory, and waiting for what a guest reports.
//!
//! These tests need QEMU and the demo image's build tools. Where they are missing a
//! test fails under CI (`CI` set) and is skipped elsewhere with a loud message.

use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thindesk_server::compute::qemu::{QemuCompute, QemuConfig, demo_image};
use thindesk_server::compute::{Compute, MachineSpec};

/// Programs the VM tests run.
pub const TOOLS: &[&str] = &["qemu-system-x86_64", "qemu-img", "mcopy", "syslinux", "busybox"];

/// True when every tool in `tools` is on `PATH`. Under CI a missing tool fails the
/// test; elsewhere the test is skipped, saying so loudly.
pub fn tools_present(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|tool| !on_path(tool)).collect();
    if missing.is_empty() {
        return true;
    }
    prerequisite(test, Some(format!("needs {} (bash .ci/run installs them)", missing.join(", "))))
}

/// The same rule for any other prerequisite: `missing` says what is wrong (`None`:
/// nothing). Under CI the test fails with it; elsewhere it is skipped, loudly.
pub fn prerequisite(test: &str, missing: Option<String>) -> bool {
    let Some(missing) = missing else { return true };
    let message = format!("{test} {missing}");
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {message} !!!!!!!!\n");
    false
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The demo image, built once and cached (see `demo_image::ensure`).
pub fn demo_image() -> PathBuf {
    demo_image::ensure(&demo_image::default_cache_dir()).expect("the demo image builds")
}

/// Driver settings for tests over the data directory `data_dir`: loopback displays,
/// ports of the test's own (see [`crate::ports`]), a short shutdown deadline, and the
/// server's TLS identity made in `data_dir/tls` (for `127.0.0.1`) as a server's
/// first start makes it.
pub fn qemu_config(data_dir: &Path) -> QemuConfig {
    let config = QemuConfig {
        display_address: "127.0.0.1".parse().expect("address"),
        spice_ports: crate::ports::block(8),
        rdp_ports: crate::ports::block(8),
        shutdown_deadline: Duration::from_secs(20),
        ..QemuConfig::new(data_dir)
    };
    thindesk_server::tls::ensure(&config.x509_dir, &["127.0.0.1".into(), "localhost".into()])
        .expect("the server's TLS identity");
    config
}

/// A service on every host address that guests try to reach (it stands for "outside
/// networks"): it takes connections and closes them, as long as the test process
/// runs. Returns its port, for `QemuConfig::guest_probe_port`.
pub fn host_probe() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("listener");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    port
}

/// A spec for the demo image with the smallest flavor.
pub fn demo_spec(id: &str, name: &str, internet: bool) -> MachineSpec {
    MachineSpec {
        id: id.into(),
        name: name.into(),
        base_disk: demo_image(),
        image: "demo".into(),
        flavor: "tiny".into(),
        vcpus: 1,
        ram_mib: 256,
        disk_gib: 1,
        internet,
        rdp: false,
        policy: thindesk_shared::Policy::default(),
        guest_account: None,
    }
}

/// Polls `condition` every 100 ms until it holds, failing the test with `what` if it
/// has not after `limit`. The limit only keeps a broken guest from hanging the suite.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "gave up waiting after {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the guest's serial console has a line containing `needle`, and
/// returns the whole log. (Under TCG on a busy 2-core host a boot can take minutes;
/// the limit only keeps a broken guest from hanging the suite.)
pub fn wait_for_serial(compute: &QemuCompute, id: &str, needle: &str) -> String {
    let mut log = String::new();
    wait_until(&format!("{needle:?} on the serial console of {id}"), Duration::from_secs(300), || {
        log = compute.serial_log(id).unwrap_or_default();
        log.contains(needle)
    });
    log
}

/// True while something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// True while `pid` is a live process.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

/// Destroys every machine of a driver when dropped, so a failing test leaves no
/// QEMU running.
pub struct Cleanup<'a>(pub &'a QemuCompute);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for id in self.0.machine_ids().unwrap_or_default() {
            let _ = self.0.destroy(&id);
        }
    }
}

/// What a probe guest sends once connected, so that the reply tells which service it
/// reached (see `assets/probe-image/init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
    /// Nothing: the service speaks first.
    None,
    /// `GET /api/v1.0/token HTTP/1.0`.
    Http,
    /// A SPICE link message.
    Spice,
    /// A TFTP read request over UDP.
    Udp,
}

/// Somewhere a probe guest tries to reach.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub address: std::net::IpAddr,
    pub port: u16,
    pub hello: Hello,
}

impl Target {
    pub fn new(name: &str, address: std::net::IpAddr, port: u16, hello: Hello) -> Self {
        Self { name: name.into(), address, port, hello }
    }

    fn spec(&self) -> String {
        let hello = match self.hello {
            Hello::None => "none",
            Hello::Http => "http",
            Hello::Spice => "spice",
            Hello::Udp => "udp",
        };
        format!("{}={}:{}:{hello}", self.name, self.address, self.port)
    }
}

/// What a probe guest said of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub connected: bool,
    /// The first bytes it was answered with (printable ASCII).
    pub reply: String,
}

/// Runs `command` to its end, failing the test unless it succeeds; its output.
fn run(command: &mut Command) -> Vec<u8> {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    output.stdout
}

fn repository_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The probe guest's disk without targets: the demo image's recipe with the probe's
/// init (`assets/probe-image/init`), built once and cached beside the demo image
/// under a name derived from both files.
pub fn probe_base_image() -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (script, init) = (repository_file("assets/demo-image/build.sh"), repository_file("assets/probe-image/init"));
    let mut digest = Sha1::new();
    for file in [&script, &init] {
        digest.update(std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())));
        digest.update([0]);
    }
    let name: String = digest.finalize().iter().take(6).map(|byte| format!("{byte:02x}")).collect();
    let cache = demo_image::default_cache_dir();
    let image = cache.join(format!("thindesk-probe-{name}.qcow2"));
    if image.is_file() {
        return image;
    }
    std::fs::create_dir_all(&cache).expect("image cache");
    let partial = cache.join(format!("building-probe-{}.qcow2", std::process::id()));
    run(Command::new("bash").arg(&script).arg(&partial).arg(&init));
    std::fs::rename(&partial, &image).expect("probe image stored");
    image
}

/// A probe guest's disk in `dir` that tries `targets`, in order, once booted: the
/// cached base image with the targets added to its kernel command line.
pub fn probe_image(dir: &Path, targets: &[Target]) -> PathBuf {
    let base = probe_base_image();
    let targets = targets.iter().map(Target::spec).collect::<Vec<_>>().join(",");
    let (raw, config, image) = (dir.join("probe.raw"), dir.join("syslinux.cfg"), dir.join("probe.qcow2"));
    let convert = |from: &str, to: &str, source: &Path, target: &Path| {
        run(Command::new("qemu-img").args(["convert", "-f", from, "-O", to]).arg(source).arg(target));
    };
    convert("qcow2", "raw", &base, &raw);
    let shipped = run(Command::new("mtype").arg("-i").arg(&raw).arg("::/syslinux.cfg"));
    let shipped = String::from_utf8(shipped).expect("syslinux.cfg is text");
    let mut appended = false;
    let lines: Vec<String> = shipped
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("APPEND ") {
                appended = true;
                format!("{line} thindesk.targets={targets}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(appended, "no APPEND line in the probe image's syslinux.cfg: {shipped}");
    let command_line = lines.iter().find(|line| line.trim_start().starts_with("APPEND ")).map_or(0, String::len);
    assert!(command_line < 2000, "the kernel command line would be too long ({command_line} bytes)");
    std::fs::write(&config, lines.join("\n") + "\n").expect("syslinux.cfg");
    run(Command::new("mcopy").args(["-o", "-i"]).arg(&raw).arg(&config).arg("::/syslinux.cfg"));
    convert("raw", "qcow2", &raw, &image);
    let _ = std::fs::remove_file(&raw);
    let _ = std::fs::remove_file(&config);
    image
}

/// The probe's verdict on each target, from its serial console: lines
/// `thindesk-probe target=NAME connected=yes|no reply="..."`.
pub fn probe_results(log: &str) -> BTreeMap<String, Probed> {
    log.lines()
        .filter_map(|line| line.trim().strip_prefix("thindesk-probe target="))
        .filter_map(|rest| {
            let (name, rest) = rest.split_once(' ')?;
            let (connected, reply) = rest.split_once(' ')?;
            let connected = match connected {
                "connected=yes" => true,
                "connected=no" => false,
                _ => return None,
            };
            let reply = reply.strip_prefix("reply=\"")?.strip_suffix('"')?.trim().to_owned();
            Some((name.to_owned(), Probed { connected, reply }))
        })
        .collect()
}
