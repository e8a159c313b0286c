//! Just enough of the SPICE link handshake to ask a server whether it accepts a
//! ticket, without a display: TLS trusting only the authority the server handed out
//! (displays speak TLS only), the client's link message, the server's RSA key, the
//! ticket encrypted with RSA-OAEP (SHA-1), and the server's verdict. This is what
//! `remote-viewer` does before it shows anything. [`plain_link_answer`] tries the
//! same link in the clear, which a display must not answer.

use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
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

/// A linked main channel over TLS.
pub type Session = StreamOwned<ClientConnection, TcpStream>;

/// Connects to `127.0.0.1:port` over TLS trusting only `ca` (PEM), links the main
/// channel and presents `ticket`. A certificate `ca` did not sign is an error of kind
/// `InvalidData`.
pub fn try_ticket(port: u16, ca: &str, ticket: &str) -> std::io::Result<Verdict> {
    try_ticket_at(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), ca, ticket)
}

/// [`try_ticket`] on any address; the certificate must name it.
pub fn try_ticket_at(address: SocketAddr, ca: &str, ticket: &str) -> std::io::Result<Verdict> {
    link(address, ca, ticket).map(|(verdict, _)| verdict)
}

/// A display session on the main channel, linked with `ticket`: the server keeps it
/// open until the session is cut.
pub fn open_session(port: u16, ca: &str, ticket: &str) -> std::io::Result<Session> {
    match link(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), ca, ticket)? {
        (Verdict::Accepted, stream) => Ok(stream),
        (Verdict::Refused(code), _) => Err(invalid(&format!("the ticket was refused ({code})"))),
    }
}

/// Whether the server closes `session` within `within` (what it sends meanwhile is
/// read and dropped).
pub fn cut_within(mut session: Session, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    let mut buffer = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        let _ = session.sock.set_read_timeout(Some(Duration::from_millis(200)));
        match session.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Sends the link message in the clear, as a viewer told no TLS would, and returns
/// whatever the port answers before it closes the connection (or 10 s pass). A
/// display that speaks TLS only never answers with `REDQ`; one that resets the
/// connection under the message has answered nothing.
pub fn plain_link_answer(port: u16) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut link = header(LINK_MESSAGE.len());
    link.extend_from_slice(&LINK_MESSAGE);
    match stream.write_all(&link) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) => {
            return Ok(Vec::new());
        }
        written => written?,
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            // A reset is a refusal too.
            Err(_) => break,
        }
    }
    Ok(answer)
}

/// SpiceLinkMess for the main channel without capabilities: the server then expects
/// a plain SPICE ticket, the oldest and simplest form of authentication.
const LINK_MESSAGE: [u8; 18] = [
    0,
    0,
    0,
    0, // connection id: a new session
    CHANNEL_MAIN,
    0, // channel id
    0,
    0,
    0,
    0, // common caps
    0,
    0,
    0,
    0, // channel caps
    18,
    0,
    0,
    0, // caps offset: just after this message
];

/// TLS settings that trust `ca` (PEM) alone.
fn tls_config(ca: &str) -> std::io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        let cert = cert.map_err(|e| invalid(&format!("the CA is not PEM: {e}")))?;
        roots.add(cert).map_err(|e| invalid(&format!("the CA cannot be trusted: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn link(address: SocketAddr, ca: &str, ticket: &str) -> std::io::Result<(Verdict, Session)> {
    let tcp = TcpStream::connect(address)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::IpAddress(address.ip().into());
    let connection = ClientConnection::new(tls_config(ca)?, name).map_err(|e| invalid(&e.to_string()))?;
    let mut stream = StreamOwned::new(connection, tcp);

    stream.write_all(&header(LINK_MESSAGE.len()))?;
    stream.write_all(&LINK_MESSAGE)?;
    stream.flush()?;

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
    stream.flush()?;

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
