//! What crosses loopback on one TCP port, captured with `tcpdump` and read here: the
//! pcap stream, each connection's bytes in both directions put back in order by TCP
//! sequence number, and those bytes read as TLS records. Capturing needs `tcpdump`
//! and the right to capture (root or `CAP_NET_RAW`); see [`Capture::start`].

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Programs the capture helpers run.
pub const TOOLS: &[&str] = &["tcpdump"];

/// A `tcpdump` on `lo` writing pcap to its stdout, which a thread collects.
pub struct Capture {
    tcpdump: Child,
    collected: Option<JoinHandle<Vec<u8>>>,
}

impl Capture {
    /// Starts capturing TCP on `lo` to or from `port`, and returns once `tcpdump`
    /// says it is listening; `Err` with its words when it cannot capture (no right
    /// to, no loopback).
    pub fn start(port: u16) -> Result<Self, String> {
        // `-U`: each packet is written as it comes; `-w -`: to the pipe, so dropping
        // root's rights (as Debian's tcpdump does) cannot keep it from a file.
        let mut tcpdump = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-s", "0", "-w", "-"])
            .arg(format!("tcp port {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run tcpdump: {e}"))?;
        let mut stdout = tcpdump.stdout.take().ok_or("tcpdump's stdout")?;
        let collected = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        let stderr = tcpdump.stderr.take().ok_or("tcpdump's stderr")?;
        let (said, heard) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = said.send(line);
            }
        });
        let mut words = Vec::new();
        loop {
            match heard.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => words.push(line),
                Err(_) => {
                    let _ = tcpdump.kill();
                    let _ = tcpdump.wait();
                    return Err(format!("tcpdump did not start capturing: {}", words.join(" / ")));
                }
            }
        }
        Ok(Self { tcpdump, collected: Some(collected) })
    }

    /// Stops `tcpdump` (SIGINT, so it writes out what it has) and returns the pcap.
    pub fn stop(mut self) -> Vec<u8> {
        let _ = Command::new("kill").args(["-INT", &self.tcpdump.id().to_string()]).status();
        let _ = self.tcpdump.wait();
        self.collected.take().map(|thread| thread.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.collected.is_some() {
            let _ = self.tcpdump.kill();
            let _ = self.tcpdump.wait();
        }
    }
}

/// One TCP connection to the server's port, as both sides sent it.
#[derive(Debug, Default, Clone)]
pub struct Connection {
    /// The client's port.
    pub client_port: u16,
    /// Whether the capture saw the connection open (both SYNs).
    pub opened: bool,
    pub from_client: Vec<u8>,
    pub from_server: Vec<u8>,
}

/// One direction's segments: the sequence number after the SYN (when seen) and each
/// payload by its sequence number.
#[derive(Debug, Default)]
struct Direction {
    first: Option<u32>,
    segments: Vec<(u32, Vec<u8>)>,
}

impl Direction {
    /// The bytes in order, each once (retransmissions overlap what came before).
    fn reassemble(&self) -> Result<Vec<u8>, String> {
        let Some(base) = self.first.or_else(|| self.segments.iter().map(|(seq, _)| *seq).min()) else {
            return Ok(Vec::new());
        };
        let mut ordered: Vec<(u32, &[u8])> =
            self.segments.iter().map(|(seq, data)| (seq.wrapping_sub(base), data.as_slice())).collect();
        ordered.sort_by_key(|(offset, _)| *offset);
        let mut bytes = Vec::new();
        for (offset, data) in ordered {
            let (offset, have) = (offset as usize, bytes.len());
            if offset > have {
                return Err(format!("{} bytes missing from the capture at offset {have}", offset - have));
            }
            if offset + data.len() > have {
                bytes.extend_from_slice(&data[have - offset..]);
            }
        }
        Ok(bytes)
    }
}

/// Every connection to `server_port` in a pcap of IPv4 TCP (link types Ethernet, as
/// Linux's `lo` has, and Linux cooked v1/v2), by client port.
pub fn connections(pcap: &[u8], server_port: u16) -> Result<Vec<Connection>, String> {
    if pcap.len() < 24 {
        return Err(format!("a pcap of {} bytes has no header", pcap.len()));
    }
    let magic = u32::from_le_bytes([pcap[0], pcap[1], pcap[2], pcap[3]]);
    let little = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        other => return Err(format!("not a pcap file (magic {other:#x})")),
    };
    let word = |at: usize| {
        let b = [pcap[at], pcap[at + 1], pcap[at + 2], pcap[at + 3]];
        if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
    };
    let link_header = match word(20) {
        1 => 14,
        113 => 16,
        276 => 20,
        other => return Err(format!("link type {other} is not one this reads")),
    };
    let mut directions: BTreeMap<(u16, bool), Direction> = BTreeMap::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let captured = word(at + 8) as usize;
        let original = word(at + 12) as usize;
        let frame = pcap.get(at + 16..at + 16 + captured).ok_or("a packet runs past the end of the capture")?;
        at += 16 + captured;
        if captured < original {
            return Err("a packet was captured short (snap length)".into());
        }
        let Some(ip) = frame.get(link_header..) else { continue };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
            continue;
        }
        let ip_header = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let Some(tcp) = ip.get(ip_header..total) else { continue };
        if tcp.len() < 20 {
            continue;
        }
        let (source, destination) = (u16::from_be_bytes([tcp[0], tcp[1]]), u16::from_be_bytes([tcp[2], tcp[3]]));
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let tcp_header = usize::from(tcp[12] >> 4) * 4;
        let syn = tcp[13] & 0x02 != 0;
        let (client_port, from_client) = match (source == server_port, destination == server_port) {
            (false, true) => (source, true),
            (true, false) => (destination, false),
            _ => continue,
        };
        let direction = directions.entry((client_port, from_client)).or_default();
        if syn {
            direction.first = Some(seq.wrapping_add(1));
        }
        let payload = tcp.get(tcp_header..).unwrap_or_default();
        if !payload.is_empty() {
            direction.segments.push((seq, payload.to_vec()));
        }
    }
    let mut found: BTreeMap<u16, Connection> = BTreeMap::new();
    for ((client_port, from_client), direction) in &directions {
        let connection = found.entry(*client_port).or_insert_with(|| Connection {
            client_port: *client_port,
            opened: true,
            ..Connection::default()
        });
        connection.opened &= direction.first.is_some();
        let bytes = direction.reassemble().map_err(|e| format!("connection from port {client_port}: {e}"))?;
        if *from_client {
            connection.from_client = bytes;
        } else {
            connection.from_server = bytes;
        }
    }
    // A connection seen from one side only never saw the other's SYN-ACK.
    for connection in found.values_mut() {
        connection.opened &= directions.contains_key(&(connection.client_port, true))
            && directions.contains_key(&(connection.client_port, false));
    }
    Ok(found.into_values().collect())
}

/// One TLS record's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// 20 change cipher spec, 21 alert, 22 handshake, 23 application data.
    pub content_type: u8,
    pub version: u16,
    pub length: usize,
    /// For a handshake record, its first message's type (1 ClientHello, 2 ServerHello).
    pub handshake_type: Option<u8>,
}

/// `bytes` as a sequence of TLS records, boundaries followed across segments. Every
/// record must have a TLS content type (20 to 23), a version 0x03xx and a length TLS
/// allows; the last one may be cut short by the end of the capture (returned as
/// `true`). Anything else is `Err`, saying where.
pub fn tls_records(bytes: &[u8]) -> Result<(Vec<Record>, bool), String> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 5) else { return Ok((records, true)) };
        let (content_type, version) = (header[0], u16::from_be_bytes([header[1], header[2]]));
        let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if !(20..=23).contains(&content_type) || version >> 8 != 3 || length > (1 << 14) + 2048 {
            let shown = &bytes[at..bytes.len().min(at + 16)];
            return Err(format!("not a TLS record at byte {at} (after {} records): {shown:02x?}", records.len()));
        }
        let handshake_type = (content_type == 22).then(|| bytes.get(at + 5).copied()).flatten();
        records.push(Record { content_type, version, length, handshake_type });
        if at + 5 + length > bytes.len() {
            return Ok((records, true));
        }
        at += 5 + length;
    }
    Ok((records, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_followed_across_their_boundaries_and_anything_else_is_named() {
        let mut bytes = vec![22, 3, 1, 0, 2, 1, 0];
        bytes.extend([23, 3, 3, 0, 3, 9, 9, 9]);
        let (records, cut) = tls_records(&bytes).expect("TLS");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].handshake_type, Some(1));
        assert_eq!((records[1].content_type, records[1].version, records[1].length), (23, 0x0303, 3));
        assert!(!cut);
        assert!(tls_records(&bytes[..10]).expect("cut short").1);
        assert!(tls_records(b"REDQ\x02\x00\x00\x00").is_err());
        bytes.extend(b"REDQ\x02\x00\x00\x00");
        assert!(tls_records(&bytes).expect_err("SPICE in the clear").contains("byte 15"));
    }

    #[test]
    fn segments_are_put_in_order_once() {
        let direction = Direction {
            first: Some(100),
            segments: vec![(104, b"efgh".to_vec()), (100, b"abcd".to_vec()), (102, b"cdef".to_vec())],
        };
        assert_eq!(direction.reassemble().expect("whole"), b"abcdefgh");
        let gap = Direction { first: Some(100), segments: vec![(104, b"efgh".to_vec())] };
        assert!(gap.reassemble().is_err());
    }
}
