//! The SPICE bridge: the display of OpenStack machines, served by this server.
//!
//! Nova gives SPICE only through nova-spicehtml5proxy's websocket, opened with a
//! console token, with no SPICE password (QEMU's ticketing is off). A viewer cannot
//! speak that, and the contract wants more than Nova can give: a ticket thindesk
//! replaces when it likes, open sessions cut when it does (Nova can neither revoke a
//! console token nor cut a proxy session for the project's user), and TLS with the
//! server's own authority. So each running machine gets a port of this server's
//! (`OpenStackConfig::spice_ports`), TLS only with the server's certificate, where the
//! bridge plays the SPICE server's side of the link phase (`spice_link`):
//!
//! 1. TLS handshake; the viewer's link message.
//! 2. A websocket to the proxy with the machine's console token, the link message
//!    forwarded; QEMU's reply comes back with QEMU's RSA key.
//! 3. The viewer gets that reply with the bridge's own key instead, so its ticket is
//!    encrypted for the bridge; the bridge decrypts it and compares it with the
//!    machine's ticket in constant time. A wrong ticket is answered
//!    `SPICE_LINK_ERR_PERMISSION_DENIED` and QEMU hears nothing more.
//! 4. QEMU gets an empty ticket encrypted with its key (it checks none); from then
//!    on bytes are pumped both ways unchanged.
//!
//! Replacing the ticket (or closing the bridge) cuts every connection of the machine:
//! each watches the ticket's channel. The price: display traffic crosses this host.
//!
//! The driver is synchronous, called from blocking threads, and may be built where
//! there is no tokio runtime (tests, the command line), so the bridge has a small
//! runtime of its own: two workers for the connections, two blocking threads for
//! Nova's console API.

use super::spice_link as link;
use crate::compute::{ComputeError, Display, SpiceTls};
use futures_util::{SinkExt, StreamExt};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::rand_core::OsRng;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use thindesk_shared::Secret;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A websocket message from the proxy larger than this is a broken proxy:
/// websockify relays what it reads from QEMU in reads of at most 64 KiB.
const MAX_WS_MESSAGE: usize = 1 << 20;
/// What one read from the viewer sends on as one websocket message.
const PUMP_CHUNK: usize = 64 * 1024;

/// How the bridge listens and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSettings {
    pub address: IpAddr,
    pub ports: RangeInclusive<u16>,
    /// Open connections per machine; a viewer opens one per SPICE channel (main,
    /// display, inputs, cursor, sound, USB...).
    pub max_connections: usize,
    /// From the TCP connection to the end of the link phase, Nova and the proxy
    /// included: a viewer that sends nothing is closed after it.
    pub link_deadline: Duration,
    /// A console token is asked of Nova again when older than this (Nova's tokens live
    /// `[consoleauth] token_ttl`, 600 s by default, and may be used until then).
    pub token_reuse: Duration,
    /// The server's TLS identity (`DATA_DIR/tls`): the same certificate and authority
    /// as HTTPS.
    pub tls_dir: PathBuf,
}

/// Asks Nova for a new `spice-html5` console URL of one server. Blocking.
pub type ConsoleSource = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Every machine's bridge.
pub struct Bridges {
    runtime: Option<tokio::runtime::Runtime>,
    settings: BridgeSettings,
    tls: Mutex<Option<Arc<rustls::ServerConfig>>>,
    open: Mutex<HashMap<String, Bridge>>,
}

/// One machine's: its port, its ticket (the channel every connection watches), and
/// the task that accepts.
struct Bridge {
    port: u16,
    ticket: watch::Sender<Secret>,
    spice_tls: SpiceTls,
    listener: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Bridge {
    fn display(&self) -> Display {
        Display {
            spice_port: self.port,
            spice_ticket: self.ticket.borrow().clone(),
            rdp_port: None,
            spice_tls: Some(self.spice_tls.clone()),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // The ticket's sender goes with the bridge, which ends every connection.
        self.listener.abort();
    }
}

/// What the connections of one machine share.
struct Shared {
    machine: String,
    settings: BridgeSettings,
    ticket: watch::Receiver<Secret>,
    /// The bridge's own key, made for this bridge: viewers encrypt tickets with it.
    key: RsaPrivateKey,
    key_der: Vec<u8>,
    console: ConsoleSource,
    /// The console's websocket URL last given by Nova and when.
    cached: Mutex<Option<(String, Instant)>>,
    /// Held while Nova is asked, so that a viewer's channels opening together ask once.
    asking: tokio::sync::Mutex<()>,
    slots: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
enum BridgeError {
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("viewer: {0}")]
    Viewer(std::io::Error),
    #[error("viewer's link: {0}")]
    Link(#[from] link::LinkError),
    #[error("the console proxy: {0}")]
    Proxy(String),
    #[error("the ticket was refused")]
    Refused,
    #[error("the link phase took longer than {0:?}")]
    Deadline(Duration),
}

fn fresh_ticket() -> Secret {
    // 24 characters: well under SPICE's 60, and 144 bits.
    Secret::new(crate::random::token(18))
}

impl Bridges {
    pub fn new(settings: BridgeSettings) -> Result<Self, ComputeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .thread_name("spice-bridge")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| ComputeError::Failed(format!("the SPICE bridge's runtime cannot start: {e}")))?;
        Ok(Bridges { runtime: Some(runtime), settings, tls: Mutex::new(None), open: Mutex::new(HashMap::new()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bridge>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The display of machine `id`'s bridge, if it has one.
    pub fn display(&self, id: &str) -> Option<Display> {
        self.lock().get(id).map(Bridge::display)
    }

    /// The machine's bridge, opened with a fresh ticket if it has none.
    pub fn open(&self, id: &str, console: ConsoleSource) -> Result<Display, ComputeError> {
        if let Some(display) = self.display(id) {
            return Ok(display);
        }
        let runtime = self.runtime.as_ref().ok_or_else(|| ComputeError::Failed("the bridge is shut down".into()))?;
        let tls = self.tls_config()?;
        let identity = crate::tls::show(&self.settings.tls_dir)
            .map_err(|e| ComputeError::Failed(format!("the server's TLS certificate cannot serve SPICE: {e}")))?;
        let ca = std::fs::read_to_string(self.settings.tls_dir.join(crate::tls::CA_CERT))
            .map_err(|e| ComputeError::Failed(format!("reading the server's certificate authority: {e}")))?;
        let spice_tls = SpiceTls { ca, host_subject: identity.subject };
        // RSA-1024 because SPICE says so (162-byte key, 128-byte ticket); a key per
        // bridge, so a machine's next start also changes it.
        let key = RsaPrivateKey::new(&mut OsRng, 1024)
            .map_err(|e| ComputeError::Failed(format!("making the bridge's RSA key: {e}")))?;
        let key_der = RsaPublicKey::from(&key)
            .to_public_key_der()
            .map_err(|e| ComputeError::Failed(format!("encoding the bridge's RSA key: {e}")))?
            .as_bytes()
            .to_vec();

        let mut open = self.lock();
        if let Some(bridge) = open.get(id) {
            return Ok(bridge.display());
        }
        let taken: Vec<u16> = open.values().map(|bridge| bridge.port).collect();
        let listener = self.bind(&taken)?;
        let port = listener.local_addr().map_err(|e| ComputeError::Failed(e.to_string()))?.port();
        let (ticket, receiver) = watch::channel(fresh_ticket());
        let shared = Arc::new(Shared {
            machine: id.to_owned(),
            settings: self.settings.clone(),
            ticket: receiver,
            key,
            key_der,
            console,
            cached: Mutex::new(None),
            asking: tokio::sync::Mutex::new(()),
            slots: Arc::new(Semaphore::new(self.settings.max_connections)),
        });
        let listener = runtime.spawn(accept(listener, tls, shared.clone()));
        tracing::info!(machine = id, port, "SPICE bridge open");
        let bridge = Bridge { port, ticket, spice_tls, listener, shared };
        let display = bridge.display();
        open.insert(id.to_owned(), bridge);
        Ok(display)
    }

    /// Gets machine `id` a console token now, in the calling thread, asking Nova again
    /// until `within` has passed: a viewer connecting then need not wait for Nova.
    /// Nova's console call goes to nova-compute, which sometimes does not answer right
    /// after a start (the call then hangs until the console session's timeout), and a
    /// viewer gives up long before Nova does. `false` if no token could be had.
    pub fn prefetch(&self, id: &str, within: Duration) -> bool {
        let shared = self.lock().get(id).map(|bridge| bridge.shared.clone());
        shared.is_some_and(|shared| prefetch(&shared, within))
    }

    /// [`Bridges::prefetch`] in the background.
    pub fn prefetch_soon(&self, id: &str, within: Duration) {
        let Some(runtime) = self.runtime.as_ref() else { return };
        if let Some(shared) = self.lock().get(id).map(|bridge| bridge.shared.clone()) {
            runtime.spawn_blocking(move || prefetch(&shared, within));
        }
    }

    /// Replaces machine `id`'s ticket, which cuts every connection of its bridge.
    /// `false` when it has no bridge.
    pub fn new_ticket(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(bridge) => {
                bridge.ticket.send_replace(fresh_ticket());
                tracing::info!(machine = id, "SPICE bridge: new ticket, connections cut");
                true
            }
            None => false,
        }
    }

    /// Closes machine `id`'s bridge: its port and every connection.
    pub fn close(&self, id: &str) {
        if let Some(bridge) = self.lock().remove(id) {
            tracing::info!(machine = id, port = bridge.port, "SPICE bridge closed");
        }
    }

    /// The server's TLS settings for SPICE, made once: they reload the certificate
    /// when its files change, like HTTPS's.
    fn tls_config(&self) -> Result<Arc<rustls::ServerConfig>, ComputeError> {
        let mut tls = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = tls.as_ref() {
            return Ok(config.clone());
        }
        let https = crate::tls::server_config(&self.settings.tls_dir)
            .map_err(|e| ComputeError::Failed(format!("the server's TLS certificate cannot serve SPICE: {e}")))?;
        let mut config = (*https).clone();
        // HTTPS offers http/1.1; a SPICE viewer offers no ALPN, and must not be told
        // it speaks HTTP.
        config.alpn_protocols.clear();
        let config = Arc::new(config);
        *tls = Some(config.clone());
        Ok(config)
    }

    /// The first port of the range that no bridge holds and that binds.
    fn bind(&self, taken: &[u16]) -> Result<std::net::TcpListener, ComputeError> {
        for port in self.settings.ports.clone() {
            if taken.contains(&port) {
                continue;
            }
            // Nova's own QEMU, another program: whatever holds the port is skipped.
            if let Ok(listener) = std::net::TcpListener::bind(SocketAddr::new(self.settings.address, port)) {
                listener.set_nonblocking(true).map_err(|e| ComputeError::Failed(e.to_string()))?;
                return Ok(listener);
            }
        }
        Err(ComputeError::NoCapacity(format!(
            "every SPICE bridge port of {}..={} on {} is in use ({} by bridges); widen spice_ports",
            self.settings.ports.start(),
            self.settings.ports.end(),
            self.settings.address,
            taken.len()
        )))
    }
}

fn prefetch(shared: &Shared, within: Duration) -> bool {
    let started = Instant::now();
    loop {
        match (shared.console)().and_then(|page| websocket_url(&page)) {
            Ok(url) => {
                *shared.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((url, Instant::now()));
                return true;
            }
            Err(error) if started.elapsed() < within && shared.ticket.has_changed().is_ok() => {
                tracing::info!(machine = %shared.machine, %error, "no console token from Nova yet; asking again");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(error) => {
                tracing::warn!(machine = %shared.machine, %error, "no console token from Nova; viewers' connections will ask");
                return false;
            }
        }
    }
}

impl Drop for Bridges {
    fn drop(&mut self) {
        self.lock().clear();
        // Without waiting: the driver may be dropped inside another runtime, where
        // blocking is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept(listener: std::net::TcpListener, tls: Arc<rustls::ServerConfig>, shared: Arc<Shared>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(machine = %shared.machine, %error, "the SPICE bridge cannot listen");
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(machine = %shared.machine, %error, "SPICE bridge accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = shared.slots.clone().try_acquire_owned() else {
            tracing::warn!(machine = %shared.machine, %peer, limit = shared.settings.max_connections,
                "SPICE bridge: too many connections; this one is closed");
            continue;
        };
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut cut = shared.ticket.clone();
            cut.mark_unchanged();
            tokio::select! {
                // A new ticket, or the bridge closed (the sender gone).
                _ = cut.changed() => tracing::debug!(machine = %shared.machine, %peer, "SPICE connection cut"),
                outcome = connection(tcp, acceptor, &shared) => match outcome {
                    Ok(()) => tracing::debug!(machine = %shared.machine, %peer, "SPICE connection ended"),
                    Err(error) => tracing::info!(machine = %shared.machine, %peer, %error, "SPICE connection refused or failed"),
                },
            }
        });
    }
}

type ProxySocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn connection(tcp: TcpStream, acceptor: tokio_rustls::TlsAcceptor, shared: &Shared) -> Result<(), BridgeError> {
    let _ = tcp.set_nodelay(true);
    let deadline = shared.settings.link_deadline;
    let (viewer, proxy, early) = tokio::time::timeout(deadline, async {
        let mut viewer = acceptor.accept(tcp).await.map_err(BridgeError::Tls)?;
        let linked = link_phase(&mut viewer, shared).await?;
        Ok::<_, BridgeError>((viewer, linked.0, linked.1))
    })
    .await
    .map_err(|_| BridgeError::Deadline(deadline))??;
    pump(viewer, proxy, early).await
}

/// The link phase against viewer and proxy; on success the websocket to QEMU and
/// whatever QEMU sent beyond its reply.
async fn link_phase<S>(viewer: &mut S, shared: &Shared) -> Result<(ProxySocket, Vec<u8>), BridgeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut header = [0u8; link::HEADER_LEN];
    viewer.read_exact(&mut header).await.map_err(BridgeError::Viewer)?;
    let size = match link::body_size(&header) {
        Ok(size) => size,
        Err(error) => return Err(refuse(viewer, error).await),
    };
    let mut body = vec![0u8; size];
    viewer.read_exact(&mut body).await.map_err(BridgeError::Viewer)?;
    let mess = match link::parse_mess(&body) {
        Ok(mess) => mess,
        Err(error) => return Err(refuse(viewer, error).await),
    };
    let mut message = header.to_vec();
    message.extend_from_slice(&body);
    tracing::debug!(machine = %shared.machine, channel = mess.channel_type, id = mess.channel_id, "SPICE link from a viewer");

    let (mut proxy, reply_header, reply_body) = match linked_proxy(shared, &message).await {
        Ok(linked) => linked,
        Err(error) => {
            let _ = viewer.write_all(&link::refusal(link::LINK_ERR_ERROR)).await;
            return Err(error);
        }
    };
    let reply = link::parse_reply(&reply_body.bytes)?;
    if reply.error != link::LINK_ERR_OK {
        // QEMU refused the channel (a bad connection id, say): the viewer hears why.
        let _ = viewer.write_all(&reply_header).await;
        let _ = viewer.write_all(&reply_body.bytes).await;
        return Err(BridgeError::Proxy(format!("QEMU refused the link with error {}", reply.error)));
    }
    let rewritten = link::rewrite_reply(&reply_body.bytes, &shared.key_der)?;
    let mut answer = reply_header.to_vec();
    answer.extend_from_slice(&rewritten);
    viewer.write_all(&answer).await.map_err(BridgeError::Viewer)?;
    viewer.flush().await.map_err(BridgeError::Viewer)?;

    let selects = mess.selects_auth() && reply.offers_auth_selection();
    if selects {
        let mut mechanism = [0u8; 4];
        viewer.read_exact(&mut mechanism).await.map_err(BridgeError::Viewer)?;
        if u32::from_le_bytes(mechanism) != link::AUTH_SPICE {
            // SASL was not offered; anything else is what spice-server refuses too.
            let _ = viewer.write_all(&link::LINK_ERR_INVALID_DATA.to_le_bytes()).await;
            return Err(BridgeError::Link(link::LinkError::Malformed("an auth mechanism other than SPICE's")));
        }
    }
    let mut encrypted = [0u8; link::ENCRYPTED_TICKET_BYTES];
    viewer.read_exact(&mut encrypted).await.map_err(BridgeError::Viewer)?;
    if !ticket_matches(shared, &encrypted) {
        let _ = viewer.write_all(&link::LINK_ERR_PERMISSION_DENIED.to_le_bytes()).await;
        let _ = viewer.flush().await;
        return Err(BridgeError::Refused);
    }

    // QEMU checks no ticket, but reads one, encrypted with its key.
    let qemu_key = RsaPublicKey::from_public_key_der(&reply.pub_key)
        .map_err(|e| BridgeError::Proxy(format!("QEMU's key is not RSA: {e}")))?;
    let empty = qemu_key
        .encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), b"\0")
        .map_err(|e| BridgeError::Proxy(format!("encrypting for QEMU: {e}")))?;
    let mut to_qemu = Vec::with_capacity(4 + empty.len());
    if selects {
        to_qemu.extend_from_slice(&link::AUTH_SPICE.to_le_bytes());
    }
    to_qemu.extend_from_slice(&empty);
    proxy.send(Message::binary(to_qemu)).await.map_err(|e| BridgeError::Proxy(e.to_string()))?;
    Ok((proxy, reply_body.rest))
}

/// Decrypts the viewer's ticket with the bridge's key and compares it with the
/// machine's in constant time.
///
/// RUSTSEC-2023-0071 (Marvin: the `rsa` crate's decryption is not constant time, so
/// many timed decryptions of chosen ciphertexts can recover a plaintext) matters
/// little here: the ciphertext only ever crosses inside TLS, so an attacker has none
/// to attack; each bridge's key lives only as long as the machine runs; and the
/// connections that could serve as an oracle are bounded per machine and each takes
/// a TLS handshake and a websocket to Nova's proxy, whose noise dwarfs the leak.
fn ticket_matches(shared: &Shared, encrypted: &[u8]) -> bool {
    let Ok(plain) = shared.key.decrypt(Oaep::new::<sha1::Sha1>(), encrypted) else { return false };
    let offered = link::ticket_of(&plain);
    let ticket = shared.ticket.borrow().clone();
    offered.ct_eq(ticket.expose().as_bytes()).into()
}

async fn refuse<S: AsyncWrite + Unpin>(viewer: &mut S, error: link::LinkError) -> BridgeError {
    let _ = viewer.write_all(&link::refusal(error.code())).await;
    let _ = viewer.flush().await;
    BridgeError::Link(error)
}

/// The proxy's answer to a link message: its header, its body, and what followed.
struct Received {
    bytes: Vec<u8>,
    rest: Vec<u8>,
}

/// A websocket to QEMU that has carried `message` and QEMU's whole reply. A cached
/// console token that no longer works (expired, or Nova moved the console at a hard
/// reboot) earns one retry with a fresh one.
async fn linked_proxy(
    shared: &Shared,
    message: &[u8],
) -> Result<(ProxySocket, [u8; link::HEADER_LEN], Received), BridgeError> {
    let mut fresh = false;
    loop {
        let url = console_url(shared, fresh).await?;
        match link_through(&url, message).await {
            Ok(linked) => return Ok(linked),
            Err(error) if !fresh => {
                tracing::info!(machine = %shared.machine, %error, "the cached console token did not work; asking Nova for another");
                fresh = true;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn link_through(
    url: &str,
    message: &[u8],
) -> Result<(ProxySocket, [u8; link::HEADER_LEN], Received), BridgeError> {
    let mut proxy = open_websocket(url).await?;
    tracing::debug!(url = redacted(url), "websocket to the console proxy open");
    proxy.send(Message::binary(message.to_vec())).await.map_err(|e| BridgeError::Proxy(e.to_string()))?;
    let mut got = Vec::new();
    let header = read_from(&mut proxy, &mut got, link::HEADER_LEN).await?;
    let header: [u8; link::HEADER_LEN] =
        header.try_into().map_err(|_| BridgeError::Proxy("a short link header".into()))?;
    let size = link::body_size(&header).map_err(|e| BridgeError::Proxy(format!("QEMU's link reply: {e}")))?;
    let body = read_from(&mut proxy, &mut got, size).await?;
    Ok((proxy, header, Received { bytes: body, rest: got }))
}

/// The first `n` bytes of what the websocket carries, `buffer` holding what came
/// beyond them.
async fn read_from(proxy: &mut ProxySocket, buffer: &mut Vec<u8>, n: usize) -> Result<Vec<u8>, BridgeError> {
    while buffer.len() < n {
        match proxy.next().await {
            Some(Ok(Message::Binary(data))) => buffer.extend_from_slice(&data),
            Some(Ok(Message::Close(_))) | None => {
                return Err(BridgeError::Proxy("the proxy closed the websocket (a stale token?)".into()));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(BridgeError::Proxy(error.to_string())),
        }
    }
    let rest = buffer.split_off(n);
    Ok(std::mem::replace(buffer, rest))
}

async fn open_websocket(url: &str) -> Result<ProxySocket, BridgeError> {
    let mut request = url.into_client_request().map_err(|e| BridgeError::Proxy(e.to_string()))?;
    // websockify speaks raw bytes under the subprotocol `binary`.
    request.headers_mut().insert("Sec-WebSocket-Protocol", http_value("binary"));
    let config = WebSocketConfig::default().max_message_size(Some(MAX_WS_MESSAGE)).max_frame_size(Some(MAX_WS_MESSAGE));
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| BridgeError::Proxy(format!("opening {}: {e}", redacted(url))))?;
    Ok(socket)
}

fn http_value(value: &'static str) -> tokio_tungstenite::tungstenite::http::HeaderValue {
    tokio_tungstenite::tungstenite::http::HeaderValue::from_static(value)
}

/// The URL without its token, for messages.
fn redacted(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// The websocket URL of the machine's console: the cached one while young enough,
/// else a new one from Nova.
async fn console_url(shared: &Shared, fresh: bool) -> Result<String, BridgeError> {
    let young = |since: Instant| since.elapsed() < shared.settings.token_reuse;
    let cached = || shared.cached.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if !fresh {
        if let Some((url, _)) = cached().filter(|(_, since)| young(*since)) {
            return Ok(url);
        }
    }
    let asked_at = Instant::now();
    let _asking = shared.asking.lock().await;
    // Another connection may have asked meanwhile: its token is as good as a new one.
    if let Some((url, _)) = cached().filter(|(_, since)| young(*since) && (!fresh || *since >= asked_at)) {
        return Ok(url);
    }
    tracing::debug!(machine = %shared.machine, "asking Nova for a console token");
    let console = shared.console.clone();
    let page = tokio::task::spawn_blocking(move || console())
        .await
        .map_err(|e| BridgeError::Proxy(format!("asking Nova for a console: {e}")))?
        .map_err(|e| BridgeError::Proxy(format!("asking Nova for a console: {e}")))?;
    let url = websocket_url(&page).map_err(BridgeError::Proxy)?;
    *shared.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((url.clone(), Instant::now()));
    Ok(url)
}

/// nova-spicehtml5proxy's websocket for the page URL Nova gives
/// (`http://HOST:PORT/spice_auto.html?token=T` → `ws://HOST:PORT/?token=T`):
/// websockify serves the page and the websocket on the same port, the token in the
/// query. A proxy behind `https` is `wss`, which this websocket client (built
/// without TLS) refuses, saying so: not needed on the clouds tested so far.
pub fn websocket_url(page: &str) -> Result<String, String> {
    let (scheme, rest) = if let Some(rest) = page.strip_prefix("http://") {
        ("ws", rest)
    } else if let Some(rest) = page.strip_prefix("https://") {
        ("wss", rest)
    } else {
        return Err(format!("the console URL {} is not http(s)", redacted(page)));
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let token = path
        .split_once('?')
        .and_then(|(_, query)| query.split('&').find_map(|pair| pair.strip_prefix("token=")))
        .filter(|token| !token.is_empty())
        .ok_or_else(|| format!("the console URL {} has no token", redacted(page)))?;
    if authority.is_empty() {
        return Err("the console URL has no host".into());
    }
    Ok(format!("{scheme}://{authority}/?token={token}"))
}

/// Bytes both ways until either side closes.
async fn pump<S>(viewer: S, proxy: ProxySocket, early: Vec<u8>) -> Result<(), BridgeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut viewer_read, mut viewer_write) = tokio::io::split(viewer);
    let (mut proxy_write, mut proxy_read) = proxy.split();
    let to_viewer = async {
        if !early.is_empty() {
            viewer_write.write_all(&early).await.map_err(BridgeError::Viewer)?;
            viewer_write.flush().await.map_err(BridgeError::Viewer)?;
        }
        while let Some(message) = proxy_read.next().await {
            match message.map_err(|e| BridgeError::Proxy(e.to_string()))? {
                Message::Binary(data) => {
                    viewer_write.write_all(&data).await.map_err(BridgeError::Viewer)?;
                    viewer_write.flush().await.map_err(BridgeError::Viewer)?;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = viewer_write.shutdown().await;
        Ok::<_, BridgeError>(())
    };
    let to_proxy = async {
        let mut buffer = vec![0u8; PUMP_CHUNK];
        loop {
            let n = viewer_read.read(&mut buffer).await.map_err(BridgeError::Viewer)?;
            if n == 0 {
                break;
            }
            proxy_write
                .send(Message::binary(buffer[..n].to_vec()))
                .await
                .map_err(|e| BridgeError::Proxy(e.to_string()))?;
        }
        let _ = proxy_write.close().await;
        Ok::<_, BridgeError>(())
    };
    // Either side closing ends the connection: SPICE has no half-open state.
    tokio::select! {
        outcome = to_viewer => outcome,
        outcome = to_proxy => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_is_the_console_pages_host_with_its_token() {
        assert_eq!(
            websocket_url("http://127.0.0.1:6082/spice_auto.html?token=abc-123").as_deref(),
            Ok("ws://127.0.0.1:6082/?token=abc-123")
        );
        assert_eq!(
            websocket_url("https://console.example:443/spice_auto.html?lang=en&token=t").as_deref(),
            Ok("wss://console.example:443/?token=t")
        );
        assert!(websocket_url("http://127.0.0.1:6082/spice_auto.html").is_err());
        assert!(websocket_url("http://127.0.0.1:6082/spice_auto.html?token=").is_err());
        assert!(websocket_url("ftp://x/?token=t").is_err());
        let error = websocket_url("gopher://host/?token=secret").expect_err("refused");
        assert!(!error.contains("secret"), "no token in messages: {error}");
    }
}
