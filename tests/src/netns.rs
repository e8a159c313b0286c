//! Another host on the LAN, made on this one: a network namespace behind a veth pair.
//! What runs in it reaches this host from an address that is not loopback, as a
//! terminal or a student's laptop does. Needs root and `ip` (iproute2).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

pub struct Namespace {
    pub name: String,
    /// The namespace's own address.
    pub address: Ipv4Addr,
    /// This host's end of the pair: one more address of the host.
    pub host_side: Ipv4Addr,
}

impl Namespace {
    /// `tag` (two or three letters) keeps the names of different tests apart; each
    /// process gets a /30 of `10.second.0.0/16` of its own.
    pub fn new(tag: &str, second: u8) -> Self {
        let pid = std::process::id();
        let name = format!("{tag}{pid}");
        let (host_link, outside_link) = (format!("{tag}{pid}h"), format!("{tag}{pid}o"));
        let block = (pid % 16384) * 4;
        let net = |last: u32| Ipv4Addr::new(10, second, (block >> 8) as u8, ((block & 0xff) + last) as u8);
        let (host_side, address) = (net(1), net(2));
        // What an earlier run of the same pid left.
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        let _ = Command::new("ip").args(["link", "del", &host_link]).stderr(Stdio::null()).status();
        ip(&["netns", "add", &name]);
        let namespace = Self { name, address, host_side };
        ip(&["link", "add", &host_link, "type", "veth", "peer", "name", &outside_link, "netns", &namespace.name]);
        ip(&["addr", "add", &format!("{host_side}/30"), "dev", &host_link]);
        ip(&["link", "set", &host_link, "up"]);
        ip(&["-n", &namespace.name, "addr", "add", &format!("{address}/30"), "dev", &outside_link]);
        ip(&["-n", &namespace.name, "link", "set", &outside_link, "up"]);
        ip(&["-n", &namespace.name, "link", "set", "lo", "up"]);
        namespace
    }

    /// `program` to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Whether this process runs as root (namespaces, and running the server as another
/// user, need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|status| status.lines().any(|line| line.split_whitespace().take(2).eq(["Uid:", "0"])))
}

fn ip(arguments: &[&str]) {
    let output = Command::new("ip").args(arguments).stdin(Stdio::null()).output().expect("ip runs");
    assert!(output.status.success(), "ip {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
}
