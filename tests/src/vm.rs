//! Real virtual machines for tests: the demo image, a QEMU driver over a temporary
//! state directory, and waiting for what a guest reports.
//!
//! These tests need QEMU and the demo image's build tools. Where they are missing a
//! test fails under CI (`CI` set) and is skipped elsewhere with a loud message.

use std::path::{Path, PathBuf};
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
    let message = format!("{test} needs {} (bash .ci/run installs them)", missing.join(", "));
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

/// Driver settings for tests: loopback displays, ports of the test's own (see
/// [`crate::ports`]), a short shutdown deadline.
pub fn qemu_config(state_dir: &Path) -> QemuConfig {
    QemuConfig {
        display_address: "127.0.0.1".parse().expect("address"),
        spice_ports: crate::ports::block(8),
        rdp_ports: crate::ports::block(8),
        shutdown_deadline: Duration::from_secs(20),
        ..QemuConfig::new(state_dir)
    }
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
        vcpus: 1,
        ram_mib: 256,
        disk_gib: 1,
        internet,
        rdp: false,
        policy: thindesk_shared::Policy::default(),
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
/// returns the whole log.
pub fn wait_for_serial(compute: &QemuCompute, id: &str, needle: &str) -> String {
    let mut log = String::new();
    wait_until(&format!("{needle:?} on the serial console of {id}"), Duration::from_secs(120), || {
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
