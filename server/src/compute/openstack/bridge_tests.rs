//! The bridge against a stand-in for nova-spicehtml5proxy and QEMU: a websocket
//! server on loopback that speaks the SPICE server's side of the link phase with a
//! key of its own and records what reaches it. The viewer is a TLS client trusting
//! only the server's authority.

use super::bridge::{BridgeSettings, Bridges, ConsoleSource};
use super::spice_link as link;
use crate::compute::ComputeError;
use futures_util::{SinkExt, StreamExt};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::rand_core::OsRng;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// What the stand-in saw: per websocket, every byte after the link message, and
/// the ticket it decrypted.
#[derive(Default)]
struct Seen {
    websockets: AtomicUsize,
    /// Websockets opened with a token the stand-in does not take.
    stale: AtomicUsize,
    after_link: Mutex<Vec<Vec<u8>>>,
    tickets: Mutex<Vec<Vec<u8>>>,
}

/// Bytes QEMU's stand-in sends a linked viewer at once (for the throughput figure).
const STREAM_BYTES: usize = 32 << 20;

struct Proxy {
    port: u16,
    seen: Arc<Seen>,
}

async fn proxy(stream_after_link: usize) -> Proxy {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let seen = Arc::new(Seen::default());
    let key = RsaPrivateKey::new(&mut OsRng, 1024).expect("key");
    let der = RsaPublicKey::from(&key).to_public_key_der().expect("der").as_bytes().to_vec();
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (seen, key, der) = (shared.clone(), key.clone(), der.clone());
            tokio::spawn(async move { qemu(tcp, seen, key, der, stream_after_link).await });
        }
    });
    Proxy { port, seen }
}

// tungstenite's handshake callback returns its error response by value, as it is.
#[allow(clippy::result_large_err)]
async fn qemu(tcp: TcpStream, seen: Arc<Seen>, key: RsaPrivateKey, der: Vec<u8>, stream: usize) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let stale = std::sync::atomic::AtomicBool::new(false);
    let callback = |request: &Request, mut response: Response| {
        // nova-spicehtml5proxy upgrades first and then closes on a token it does not
        // know (expired, or made before a restart of the guest).
        stale.store(!request.uri().query().is_some_and(|q| q.contains("token=t0k")), Ordering::SeqCst);
        response.headers_mut().insert("Sec-WebSocket-Protocol", "binary".parse().expect("value"));
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { return };
    if stale.load(Ordering::SeqCst) {
        seen.stale.fetch_add(1, Ordering::SeqCst);
        let _ = ws.close(None).await;
        return;
    }
    seen.websockets.fetch_add(1, Ordering::SeqCst);
    let index = {
        let mut after = seen.after_link.lock().expect("lock");
        after.push(Vec::new());
        after.len() - 1
    };
    let mut buffer = Vec::new();
    let mut linked = false;
    while let Some(Ok(message)) = ws.next().await {
        let Message::Binary(data) = message else { continue };
        if !linked {
            buffer.extend_from_slice(&data);
            if buffer.len() < link::HEADER_LEN {
                continue;
            }
            let header: [u8; link::HEADER_LEN] = buffer[..link::HEADER_LEN].try_into().expect("16 bytes");
            let size = link::body_size(&header).expect("a link message");
            if buffer.len() < link::HEADER_LEN + size {
                continue;
            }
            linked = true;
            let rest = buffer.split_off(link::HEADER_LEN + size);
            seen.after_link.lock().expect("lock")[index].extend_from_slice(&rest);
            let mut body = vec![0u8; 4];
            body.extend_from_slice(&der);
            body.extend_from_slice(&1u32.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes());
            body.extend_from_slice(&(4 + 162 + 12u32).to_le_bytes());
            // Auth selection, SPICE, SASL, mini header.
            body.extend_from_slice(&0x0fu32.to_le_bytes());
            let mut reply = link::header(body.len()).to_vec();
            reply.extend_from_slice(&body);
            if ws.send(Message::binary(reply)).await.is_err() {
                return;
            }
            continue;
        }
        let total = {
            let mut after = seen.after_link.lock().expect("lock");
            after[index].extend_from_slice(&data);
            after[index].clone()
        };
        if total.len() == 4 + 128 {
            let plain = key.decrypt(Oaep::new::<sha1::Sha1>(), &total[4..]).expect("a ticket for QEMU's key");
            seen.tickets.lock().expect("lock").push(plain);
            let _ = ws.send(Message::binary(link::LINK_ERR_OK.to_le_bytes().to_vec())).await;
            let chunk = vec![0x5au8; 64 * 1024];
            let mut sent = 0;
            while sent < stream {
                if ws.send(Message::binary(chunk.clone())).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        } else if total.len() > 4 + 128 {
            // Linked: echo what the viewer sends.
            let _ = ws.send(Message::binary(data)).await;
        }
    }
}

struct Setup {
    bridges: Bridges,
    ca: String,
    asked: Arc<AtomicUsize>,
    proxy: Proxy,
    _dir: tempfile::TempDir,
}

async fn setup(adjust: impl FnOnce(&mut BridgeSettings), stream: usize) -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let tls_dir = crate::tls::directory(dir.path());
    crate::tls::ensure(&tls_dir, &["127.0.0.1".to_owned()]).expect("identity");
    let ca = std::fs::read_to_string(tls_dir.join(crate::tls::CA_CERT)).expect("ca");
    let mut settings = BridgeSettings {
        address: Ipv4Addr::LOCALHOST.into(),
        ports: free_ports(),
        max_connections: 8,
        link_deadline: Duration::from_secs(5),
        token_reuse: Duration::from_secs(300),
        tls_dir,
    };
    adjust(&mut settings);
    let proxy = proxy(stream).await;
    Setup {
        bridges: Bridges::new(settings).expect("bridges"),
        ca,
        asked: Arc::new(AtomicUsize::new(0)),
        proxy,
        _dir: dir,
    }
}

/// A range of ports that were free a moment ago, for tests running side by side.
fn free_ports() -> std::ops::RangeInclusive<u16> {
    loop {
        let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let start = probe.local_addr().expect("address").port();
        drop(probe);
        if start < 65_000 && (start..start + 4).all(|p| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok()) {
            return start..=start + 3;
        }
    }
}

impl Setup {
    fn console(&self) -> ConsoleSource {
        let (port, asked) = (self.proxy.port, self.asked.clone());
        Arc::new(move || {
            asked.fetch_add(1, Ordering::SeqCst);
            Ok(format!("http://127.0.0.1:{port}/spice_auto.html?token=t0k"))
        })
    }
}

type Viewer = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(port: u16, ca: &str) -> Viewer {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.expect("connect");
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS")
}

/// The link phase as spice-gtk plays it (auth selection offered); the link result.
async fn link_with(viewer: &mut Viewer, ticket: &str) -> u32 {
    let mut message = link::header(26).to_vec();
    message.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
    for word in [1u32, 1, 18, 0x0b, 0] {
        message.extend_from_slice(&word.to_le_bytes());
    }
    viewer.write_all(&message).await.expect("link sent");
    let mut header = [0u8; link::HEADER_LEN];
    viewer.read_exact(&mut header).await.expect("reply header");
    let mut body = vec![0u8; link::body_size(&header).expect("a SPICE reply")];
    viewer.read_exact(&mut body).await.expect("reply");
    let reply = link::parse_reply(&body).expect("parsed");
    assert_eq!(reply.error, link::LINK_ERR_OK);
    assert_eq!(reply.common_caps & 0b100, 0, "SASL is not offered to the viewer");
    let key = RsaPublicKey::from_public_key_der(&reply.pub_key).expect("an RSA key");
    let mut plain = ticket.as_bytes().to_vec();
    plain.push(0);
    let encrypted = key.encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), &plain).expect("encrypted");
    viewer.write_all(&link::AUTH_SPICE.to_le_bytes()).await.expect("mechanism");
    viewer.write_all(&encrypted).await.expect("ticket");
    let mut result = [0u8; 4];
    viewer.read_exact(&mut result).await.expect("link result");
    u32::from_le_bytes(result)
}

/// Whether the bridge closes `viewer` within `within`.
async fn closed_within(viewer: &mut Viewer, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match viewer.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn the_right_ticket_links_through_and_a_wrong_one_never_reaches_qemu() {
    let setup = setup(|_| {}, 0).await;
    let display = setup.bridges.open("m", setup.console()).expect("open");
    let ticket = display.spice_ticket.expose().to_owned();
    assert_eq!(ticket.len(), 24);
    let tls = display.spice_tls.clone().expect("TLS");
    assert_eq!(tls.ca, setup.ca);
    assert!(tls.host_subject.contains("O=thindesk"), "{}", tls.host_subject);
    assert_eq!(setup.bridges.display("m"), Some(display.clone()));

    let mut viewer = connect(display.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut viewer, &ticket).await, link::LINK_ERR_OK);
    viewer.write_all(b"hello qemu").await.expect("sent");
    let mut echo = [0u8; 10];
    viewer.read_exact(&mut echo).await.expect("echoed");
    assert_eq!(&echo, b"hello qemu");
    assert_eq!(setup.proxy.seen.tickets.lock().expect("lock").as_slice(), [b"\0".to_vec()], "QEMU's empty ticket");

    let mut wrong = connect(display.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut wrong, "guess").await, link::LINK_ERR_PERMISSION_DENIED);
    assert!(closed_within(&mut wrong, Duration::from_secs(5)).await, "closed after the refusal");
    let after = setup.proxy.seen.after_link.lock().expect("lock").clone();
    assert_eq!(after.len(), 2);
    assert!(after[1].is_empty(), "QEMU heard nothing beyond the link message: {} bytes", after[1].len());
    assert_eq!(setup.asked.load(Ordering::SeqCst), 1, "one console token for both");
}

#[tokio::test]
async fn a_new_ticket_cuts_open_sessions_and_the_old_ticket_is_refused() {
    let setup = setup(|_| {}, 0).await;
    let old = setup.bridges.open("m", setup.console()).expect("open");
    let mut viewer = connect(old.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut viewer, old.spice_ticket.expose()).await, link::LINK_ERR_OK);
    assert!(setup.bridges.new_ticket("m"));
    assert!(closed_within(&mut viewer, Duration::from_secs(5)).await, "the open session is cut");
    let new = setup.bridges.display("m").expect("display");
    assert_eq!(new.spice_port, old.spice_port);
    assert_ne!(new.spice_ticket, old.spice_ticket);
    let mut again = connect(old.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut again, old.spice_ticket.expose()).await, link::LINK_ERR_PERMISSION_DENIED);
    let mut fresh = connect(old.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut fresh, new.spice_ticket.expose()).await, link::LINK_ERR_OK);

    setup.bridges.close("m");
    assert!(closed_within(&mut fresh, Duration::from_secs(5)).await, "closing the bridge cuts it");
    assert!(!setup.bridges.new_ticket("m"));
    let started = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, old.spice_port)).await.is_ok() {
        assert!(started.elapsed() < Duration::from_secs(5), "the port closes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn plain_silent_and_surplus_connections_get_nothing() {
    let setup = setup(
        |settings| {
            settings.link_deadline = Duration::from_millis(800);
            settings.max_connections = 2;
        },
        0,
    )
    .await;
    let display = setup.bridges.open("m", setup.console()).expect("open");
    let port = display.spice_port;

    // SPICE in the clear: the TLS handshake fails, no REDQ comes back.
    let mut plain = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.expect("connect");
    let mut message = link::header(18).to_vec();
    message.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 18, 0, 0, 0]);
    plain.write_all(&message).await.expect("sent");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!answer.windows(4).any(|w| w == link::MAGIC), "no SPICE in the clear: {answer:?}");

    // A viewer that says nothing after TLS is closed at the deadline.
    let started = Instant::now();
    let mut silent = connect(port, &setup.ca).await;
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(700), "not before the deadline");

    // Two open at most: a third is closed at once.
    let (mut first, mut second) = (connect(port, &setup.ca).await, connect(port, &setup.ca).await);
    assert_eq!(link_with(&mut first, display.spice_ticket.expose()).await, link::LINK_ERR_OK);
    assert_eq!(link_with(&mut second, display.spice_ticket.expose()).await, link::LINK_ERR_OK);
    let third = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.expect("connect");
    let mut third = third;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the third connection is closed: {read:?}");
    assert_eq!(setup.proxy.seen.websockets.load(Ordering::SeqCst), 2, "only the linked ones reached the proxy");
}

#[tokio::test]
async fn a_refused_console_token_is_replaced_and_an_old_one_is_not_reused() {
    let setup = setup(|settings| settings.token_reuse = Duration::from_millis(300), 0).await;
    let (port, asked) = (setup.proxy.port, setup.asked.clone());
    let console: ConsoleSource = Arc::new(move || {
        // The first token Nova gives is one the proxy no longer takes.
        let token = if asked.fetch_add(1, Ordering::SeqCst) == 0 { "expired" } else { "t0k" };
        Ok(format!("http://127.0.0.1:{port}/spice_auto.html?token={token}"))
    });
    let display = setup.bridges.open("m", console).expect("open");
    let mut viewer = connect(display.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut viewer, display.spice_ticket.expose()).await, link::LINK_ERR_OK);
    assert_eq!(setup.proxy.seen.stale.load(Ordering::SeqCst), 1, "the stale token was tried once");
    assert_eq!(setup.asked.load(Ordering::SeqCst), 2, "then Nova was asked for another");
    let mut again = connect(display.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut again, display.spice_ticket.expose()).await, link::LINK_ERR_OK);
    assert_eq!(setup.asked.load(Ordering::SeqCst), 2, "a young token is reused");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut later = connect(display.spice_port, &setup.ca).await;
    assert_eq!(link_with(&mut later, display.spice_ticket.expose()).await, link::LINK_ERR_OK);
    assert_eq!(setup.asked.load(Ordering::SeqCst), 3, "an old token is not");
    assert!(setup.bridges.prefetch("m", Duration::ZERO), "a prefetch stores a token");
    assert_eq!(setup.asked.load(Ordering::SeqCst), 4);
    assert!(!setup.bridges.prefetch("no such machine", Duration::ZERO));
}

#[tokio::test]
async fn a_full_port_range_is_refused_and_saying_so() {
    let setup = setup(|settings| settings.ports = *settings.ports.start()..=*settings.ports.start() + 1, 0).await;
    setup.bridges.open("a", setup.console()).expect("a");
    setup.bridges.open("b", setup.console()).expect("b");
    match setup.bridges.open("c", setup.console()) {
        Err(ComputeError::NoCapacity(message)) => assert!(message.contains("spice_ports"), "{message}"),
        other => panic!("a third machine in a range of two: {other:?}"),
    }
    setup.bridges.close("a");
    setup.bridges.open("c", setup.console()).expect("a closed bridge's port is free again");
}

/// The bridge's cost in throughput: what QEMU's stand-in streams, read by a viewer
/// through the bridge (TLS, websocket decoding) and straight from the websocket.
#[tokio::test]
async fn throughput_through_the_bridge_and_straight_from_the_proxy() {
    let setup = setup(|_| {}, STREAM_BYTES).await;
    let display = setup.bridges.open("m", setup.console()).expect("open");
    let mut viewer = connect(display.spice_port, &setup.ca).await;
    let started = Instant::now();
    assert_eq!(link_with(&mut viewer, display.spice_ticket.expose()).await, link::LINK_ERR_OK);
    let mut buffer = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < STREAM_BYTES {
        let n = viewer.read(&mut buffer).await.expect("read");
        assert!(n > 0, "the stream ended early at {got}");
        got += n;
    }
    let bridged = started.elapsed();

    let url = format!("ws://127.0.0.1:{}/?token=t0k", setup.proxy.port);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "binary".parse().expect("value"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
    let started = Instant::now();
    let mut message = link::header(26).to_vec();
    message.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
    for word in [1u32, 1, 18, 0x0b, 0] {
        message.extend_from_slice(&word.to_le_bytes());
    }
    ws.send(Message::binary(message)).await.expect("link");
    let Some(Ok(Message::Binary(reply))) = ws.next().await else { panic!("a reply") };
    let reply = link::parse_reply(&reply[link::HEADER_LEN..]).expect("reply");
    let key = RsaPublicKey::from_public_key_der(&reply.pub_key).expect("key");
    let mut answer = link::AUTH_SPICE.to_le_bytes().to_vec();
    answer.extend(key.encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), b"\0").expect("ticket"));
    ws.send(Message::binary(answer)).await.expect("ticket sent");
    let mut got = 0;
    while got < STREAM_BYTES + 4 {
        let Some(Ok(Message::Binary(data))) = ws.next().await else { panic!("the stream ended early at {got}") };
        got += data.len();
    }
    let direct = started.elapsed();
    let rate = |took: Duration| STREAM_BYTES as f64 / (1 << 20) as f64 / took.as_secs_f64();
    eprintln!(
        "SPICE bridge throughput (loopback, {} MiB, this build): {:.0} MiB/s through the bridge, {:.0} MiB/s \
         straight from the websocket",
        STREAM_BYTES >> 20,
        rate(bridged),
        rate(direct)
    );
}
