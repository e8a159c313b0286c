//! Just enough of the SPICE link handshake to ask a server whether it accepts a
//! ticket, without a display: the client's link message, the server's RSA key, the
//! ticket encrypted with RSA-OAEP (SHA-1), and the server's verdict. This is what
//! `remote-viewer` does before it shows anything.

use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MAGIC: &[u8; 4] = b"REDQ";
const MAJOR_VERSION: u32 = 2;
const MINOR_VERSION: u32 = 2;
const CHANNEL_MAIN: u8 = 1;
/// A DER SubjectPublicKeyInfo of a 1024-bit RSA key.
const PUBKEY_BYTES: usize = 162;
const LINK_ERR_OK: u32 = 0;

/// What the server said of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// A SPICE link error code; 7 is permission denied.
    Refused(u32),
}

/// Connects to `127.0.0.1:port`, links the main channel and presents `ticket`.
pub fn try_ticket(port: u16, ticket: &str) -> std::io::Result<Verdict> {
    link(port, ticket).map(|(verdict, _)| verdict)
}

/// A display session on the main channel, linked with `ticket`: the server keeps it
/// open until the session is cut.
pub fn open_session(port: u16, ticket: &str) -> std::io::Result<TcpStream> {
    match link(port, ticket)? {
        (Verdict::Accepted, stream) => Ok(stream),
        (Verdict::Refused(code), _) => Err(invalid(&format!("the ticket was refused ({code})"))),
    }
}

/// Whether the server closes `session` within `within` (what it sends meanwhile is
/// read and dropped).
pub fn cut_within(mut session: TcpStream, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    let mut buffer = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        let _ = session.set_read_timeout(Some(Duration::from_millis(200)));
        match session.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn link(port: u16, ticket: &str) -> std::io::Result<(Verdict, TcpStream)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;

    // SpiceLinkMess without capabilities: the server then expects a plain SPICE
    // ticket, the oldest and simplest form of authentication.
    let mut link = Vec::new();
    link.extend_from_slice(&0u32.to_le_bytes()); // connection id: a new session
    link.push(CHANNEL_MAIN);
    link.push(0); // channel id
    link.extend_from_slice(&0u32.to_le_bytes()); // common caps
    link.extend_from_slice(&0u32.to_le_bytes()); // channel caps
    link.extend_from_slice(&18u32.to_le_bytes()); // caps offset: just after this message
    stream.write_all(&header(link.len()))?;
    stream.write_all(&link)?;

    let mut reply_header = [0u8; 16];
    stream.read_exact(&mut reply_header)?;
    if &reply_header[..4] != MAGIC {
        return Err(invalid("the server did not answer as SPICE"));
    }
    let size = u32::from_le_bytes([reply_header[12], reply_header[13], reply_header[14], reply_header[15]]) as usize;
    if !(4 + PUBKEY_BYTES..=4096).contains(&size) {
        return Err(invalid("the link reply has an unexpected size"));
    }
    let mut reply = vec![0u8; size];
    stream.read_exact(&mut reply)?;
    let error = u32::from_le_bytes([reply[0], reply[1], reply[2], reply[3]]);
    if error != LINK_ERR_OK {
        return Ok((Verdict::Refused(error), stream));
    }
    let key = RsaPublicKey::from_public_key_der(&reply[4..4 + PUBKEY_BYTES])
        .map_err(|_| invalid("the server's public key is not RSA"))?;
    let mut plain = ticket.as_bytes().to_vec();
    plain.push(0);
    let encrypted = key
        .encrypt(&mut rsa::rand_core::OsRng, Oaep::new::<sha1::Sha1>(), &plain)
        .map_err(|_| invalid("the ticket does not fit the server's key"))?;
    stream.write_all(&encrypted)?;

    let mut result = [0u8; 4];
    stream.read_exact(&mut result)?;
    let verdict = match u32::from_le_bytes(result) {
        LINK_ERR_OK => Verdict::Accepted,
        code => Verdict::Refused(code),
    };
    Ok((verdict, stream))
}

fn header(size: usize) -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&MAJOR_VERSION.to_le_bytes());
    header.extend_from_slice(&MINOR_VERSION.to_le_bytes());
    header.extend_from_slice(&(size as u32).to_le_bytes());
    header
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
