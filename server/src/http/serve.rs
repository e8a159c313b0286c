//! Accepting connections, HTTPS and plain HTTP on the same port (a TLS handshake is
//! recognised by its first byte, 0x16), with the limits warp's own loop does not set:
//! a client must
//! send its request headers within the header read timeout (which also ends idle
//! kept-alive connections), and at most `max_connections` are open at once, the last
//! `LOOPBACK_RESERVE` of them kept for loopback callers. Past the cap a connection
//! gets a JSend 503 with `Retry-After` and is closed. A client's protocol errors
//! (a malformed request, a timeout) are the client's, so they are logged at debug,
//! and hyper's own answer to a request it cannot parse gets a JSend body
//! ([`super::malformed`]).

use crate::config::LOOPBACK_RESERVE;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// The peer of the connection a request came on, for `http::caller` and the console.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Whether a request came over TLS; set on every request, beside [`Peer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tls,
    Plain,
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// What a connection over the cap is told before it is closed.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 96\r\n\r\n{\"status\":\"error\",\"message\":\"the server has too many open connections; try again\",\"code\":\"busy\"}";

/// Serves every route on `listener`, over TLS with `tls` or in plain HTTP as each
/// client begins, until `stopped` resolves; then lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: super::AppState,
    limits: Limits,
    tls: Arc<rustls::ServerConfig>,
    stopped: impl Future<Output = ()>,
) {
    let routes = super::routes(state);
    let tls = tokio_rustls::TlsAcceptor::from(tls);
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stopped = std::pin::pin!(stopped);
    let trimming = tokio::spawn(async {
        let mut every = tokio::time::interval(crate::memory::INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let _ = tokio::task::spawn_blocking(crate::memory::give_back).await;
        }
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        // Answers go out as soon as they are written: without this, the reply that follows
        // a TLS handshake's last flight waits for the client's delayed ACK (40 ms a new
        // HTTPS connection, measured by `thindesk-load tls`).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let cap = if peer.ip().to_canonical().is_loopback() {
            limits.max_connections
        } else {
            limits.max_connections.saturating_sub(LOOPBACK_RESERVE)
        };
        if open.fetch_add(1, Ordering::SeqCst) >= cap {
            open.fetch_sub(1, Ordering::SeqCst);
            tokio::spawn(refuse(stream));
            continue;
        }
        let service = warp::service(routes.clone());
        let (tls, watcher, open) = (tls.clone(), graceful.watcher(), open.clone());
        let timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            // What the client sends first decides; it has the header read timeout to
            // send it, and to finish a TLS handshake.
            let mut first = [0u8; 1];
            let begun = tokio::time::timeout(timeout, stream.peek(&mut first)).await;
            let opened: Result<(Box<dyn Connection>, Transport), String> = match begun {
                Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => match tokio::time::timeout(timeout, tls.accept(stream)).await
                {
                    Ok(Ok(stream)) => Ok((Box::new(stream), Transport::Tls)),
                    Ok(Err(error)) => Err(format!("TLS handshake failed: {error}")),
                    Err(_) => Err("TLS handshake timed out".to_owned()),
                },
                Ok(Ok(1)) => Ok((Box::new(stream), Transport::Plain)),
                Ok(_) => Err("closed before sending anything".to_owned()),
                Err(_) => Err("sent nothing".to_owned()),
            };
            let served = match opened {
                Ok((stream, transport)) => {
                    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                        request.extensions_mut().insert(Peer(peer));
                        request.extensions_mut().insert(transport);
                        let mut service = service.clone();
                        async move { tower_service::Service::call(&mut service, request).await }
                    });
                    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeout);
                    let stream = super::malformed::JsendForMalformed::new(stream);
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await.map_err(|error| error.to_string())
                }
                Err(error) => Err(error),
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    trimming.abort();
    graceful.shutdown().await;
}

/// A client's connection, in TLS or not.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for S {}

async fn refuse(mut stream: tokio::net::TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(OVERLOADED).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_jsend_answer() {
        let text = std::str::from_utf8(OVERLOADED).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize =
            head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|n| n.parse().ok()).expect("length");
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["status"], "error");
    }
}
