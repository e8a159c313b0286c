//! Whether a guest with internet would be kept off this host.
//!
//! A guest's network is QEMU's user-mode stack: whatever the guest connects to, its
//! QEMU process connects to, with an ordinary socket, as the server's user. That
//! reaches every service of the host (its loopback through the gateway 10.0.2.2, and
//! its own addresses like any outside one) unless the kernel refuses this user such
//! connections, which the table in `assets/guest-net.nft` does (loaded once as root by
//! `assets/install-packages.sh`, and by the systemd unit before every start).
//!
//! [`check`] asks the kernel rather than trusting that the table is there: it listens
//! on a port of its own and connects to it on loopback and on each of the host's IPv4
//! addresses, as the same user as the QEMU processes it starts. A connection that
//! succeeds is one a guest could make too. Guests have no IPv6 (`ipv6=off`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// How long one connection attempt may take; the table rejects at once, and an
/// attempt that times out did not connect either.
const ATTEMPT: Duration = Duration::from_millis(500);

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shield {
    /// Every connection to the host's own addresses was refused.
    InForce,
    /// This process could connect to the host: so could a guest with internet.
    Missing(String),
}

/// Tries to connect to a listener of its own on every address of this host.
pub fn check() -> Shield {
    let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)) {
        Ok(listener) => listener,
        Err(error) => return Shield::Missing(format!("cannot listen for the check: {error}")),
    };
    let port = match listener.local_addr() {
        Ok(address) => address.port(),
        Err(error) => return Shield::Missing(format!("cannot listen for the check: {error}")),
    };
    let mut addresses = local_ipv4_addresses();
    if !addresses.contains(&Ipv4Addr::LOCALHOST) {
        addresses.insert(0, Ipv4Addr::LOCALHOST);
    }
    for address in addresses {
        let target = SocketAddr::new(IpAddr::V4(address), port);
        if TcpStream::connect_timeout(&target, ATTEMPT).is_ok() {
            return Shield::Missing(format!("the server's user connected to {target}, this host's own address"));
        }
    }
    Shield::InForce
}

/// The host's IPv4 addresses, from the kernel's routing tables (`/proc/net/fib_trie`
/// lists each as a `/32 host LOCAL` entry); only loopback if it cannot be read.
fn local_ipv4_addresses() -> Vec<Ipv4Addr> {
    std::fs::read_to_string("/proc/net/fib_trie").map(|text| parse_fib_trie(&text)).unwrap_or_default()
}

fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut addresses = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(address) = line.strip_prefix("|-- ") {
            last = address.parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(address) = last.take().filter(|address| !addresses.contains(address)) {
                addresses.push(address);
            }
        }
    }
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_addresses_are_the_local_host_routes() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
                    \x20    +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.0\n           /8 host LOCAL\n\
                    \x20       |-- 127.0.0.1\n           /32 host LOCAL\n        |-- 127.255.255.255\n\
                    \x20          /32 link BROADCAST\n     |-- 192.0.2.2\n        /32 host LOCAL\n\
                    Local:\n     |-- 192.0.2.2\n        /32 host LOCAL\n     |-- 10.1.2.3\n        /32 host LOCAL\n";
        let expected: Vec<Ipv4Addr> =
            ["127.0.0.1", "192.0.2.2", "10.1.2.3"].iter().map(|a| a.parse().expect("address")).collect();
        assert_eq!(parse_fib_trie(trie), expected);
    }

    #[test]
    fn the_verdict_agrees_with_a_connection_to_loopback() {
        // Whoever runs this (the table's user or not, with or without the table),
        // the check must say what a connection of this process to loopback shows.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listener");
        let connected = TcpStream::connect(listener.local_addr().expect("address")).is_ok();
        assert_eq!(check() == Shield::InForce, !connected, "{:?}", check());
    }
}
