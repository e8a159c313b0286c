//! A small HTTP/1.1 client: one keep-alive connection per terminal, from the
//! terminal's own loopback address, so that the server sees 500 machines rather than
//! one (its login throttle counts per address, as it should for a real classroom).

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;

/// The loopback address of terminal `index`: 127.1.0.1, 127.1.0.2, ... (Linux routes
/// all of 127.0.0.0/8 to loopback; each address has its own ephemeral ports).
pub fn terminal_address(index: usize) -> IpAddr {
    let block = index / 250;
    IpAddr::V4(Ipv4Addr::new(127, 1 + (block / 250) as u8, (block % 250) as u8, (index % 250 + 1) as u8))
}

pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

/// A response's status and body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How a connection speaks to the server: plain HTTP, or HTTPS trusting the server's
/// own authority (the server takes both on one port).
#[derive(Clone)]
pub enum Transport {
    Plain,
    Tls(Arc<rustls::ClientConfig>),
}

impl Transport {
    /// HTTPS, trusting the authority in `ca_file` (the server's `DATA_DIR/tls/ca-cert.pem`).
    pub fn trusting(ca_file: &Path) -> Result<Self> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca_file).with_context(|| format!("{}", ca_file.display()))? {
            roots.add(certificate?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::Tls(Arc::new(config)))
    }
}

pub async fn connect(server: SocketAddr, from: IpAddr) -> Result<Connection> {
    connect_with(server, from, &Transport::Plain).await
}

pub async fn connect_with(server: SocketAddr, from: IpAddr, transport: &Transport) -> Result<Connection> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0)).with_context(|| format!("binding {from}"))?;
    let stream = socket.connect(server).await.with_context(|| format!("connecting to {server} from {from}"))?;
    stream.set_nodelay(true)?;
    let sender = match transport {
        Transport::Plain => handshake(stream).await?,
        Transport::Tls(config) => {
            let name = rustls::pki_types::ServerName::from(server.ip());
            let stream = tokio_rustls::TlsConnector::from(config.clone()).connect(name, stream).await?;
            handshake(stream).await?
        }
    };
    Ok(Connection { sender, host: server.to_string() })
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

impl Connection {
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<(&str, Bytes)>,
    ) -> Result<Answer> {
        self.sender.ready().await?;
        let mut request = Request::builder().method(method).uri(path).header("host", &self.host);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header("content-type", content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.sender.send_request(request.body(body)?).await?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body, retry_after })
    }

    pub async fn get(&mut self, path: &str, authorization: Option<&str>) -> Result<Answer> {
        self.send(Method::GET, path, authorization, None).await
    }

    pub async fn post_json(
        &mut self,
        path: &str,
        authorization: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<Answer> {
        self.send(Method::POST, path, authorization, Some(("application/json", Bytes::from(body.to_string())))).await
    }
}

/// Percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latencies {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
        Self { count: samples.len(), p50: at(0.50), p99: at(0.99), max: at(1.0) }
    }
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Milliseconds with one decimal, for tables.
pub fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

/// Waits until `deadline`, for pacing.
pub async fn until(deadline: Instant) {
    tokio::time::sleep_until(deadline.into()).await;
}
