//! Connections that never finish their headers are closed, and past the cap a new
//! connection gets a clear 503 instead of a hang, while normal clients keep being
//! served (CONTRACT.md, "Overload").

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thindesk_server::compute::NoCompute;
use thindesk_server::config::LOOPBACK_RESERVE;
use thindesk_server::{Config, RunningServer};

async fn start(data: &std::path::Path, header_read_timeout: Duration, max_connections: usize) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: data.to_owned(),
        header_read_timeout,
        max_connections,
        ..Config::default()
    };
    RunningServer::start(config, Arc::new(NoCompute)).await.expect("server starts")
}

/// A connection that has sent half a request and stops there.
fn half_open(address: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.write_all(b"GET /api/v1.0/places HTTP/1.1\r\nHost: thindesk\r\nX-Slow: ").expect("send");
    stream
}

/// Whether the server closes the connection within `within` (what it sends first, if
/// anything, is read and dropped).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 1024];
    while Instant::now() < deadline {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

async fn places_status(url: &str) -> u16 {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    client.get(format!("{url}/api/v1.0/places")).send().await.map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn half_open_connections_are_closed_while_normal_clients_are_served() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(&dir.path().join("data"), Duration::from_secs(1), 4096).await;
    let address = server.address();
    let mut flood: Vec<TcpStream> =
        tokio::task::spawn_blocking(move || (0..200).map(|_| half_open(address)).collect()).await.expect("flood");
    assert_eq!(places_status(&server.url()).await, 200, "a normal client is served during the flood");
    let all_closed = tokio::task::spawn_blocking(move || {
        flood.iter_mut().all(|stream| closed_within(stream, Duration::from_secs(10)))
    })
    .await
    .expect("waiting");
    assert!(all_closed, "every half-open connection is closed after the header read timeout");

    // A kept-alive connection that goes quiet after its answer is closed too.
    let idle_closed = tokio::task::spawn_blocking(move || {
        let mut idle = TcpStream::connect(address).expect("connect");
        idle.write_all(b"GET /api/v1.0/places HTTP/1.1\r\nHost: thindesk\r\n\r\n").expect("send");
        let mut first = [0u8; 12];
        idle.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        idle.read_exact(&mut first).expect("an answer");
        assert_eq!(&first, b"HTTP/1.1 200");
        closed_within(&mut idle, Duration::from_secs(10))
    })
    .await
    .expect("idle");
    assert!(idle_closed, "an idle kept-alive connection is closed");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_a_new_connection_gets_a_503_and_the_server_recovers() {
    let dir = tempfile::tempdir().expect("dir");
    let cap = LOOPBACK_RESERVE + 8;
    let server = start(&dir.path().join("data"), Duration::from_secs(60), cap).await;
    let address = server.address();
    let (held, answer) = tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..cap).map(|_| half_open(address)).collect();
        // The server counts a connection once it has accepted it.
        std::thread::sleep(Duration::from_millis(500));
        let mut extra = TcpStream::connect(address).expect("connect");
        let _ = extra.write_all(b"GET /api/v1.0/places HTTP/1.1\r\nHost: thindesk\r\n\r\n");
        let _ = extra.set_read_timeout(Some(Duration::from_secs(10)));
        let mut answer = String::new();
        let _ = extra.read_to_string(&mut answer);
        (held, answer)
    })
    .await
    .expect("connections");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("Retry-After: ") && answer.contains("\"status\":\"error\""), "{answer:?}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while places_status(&server.url()).await != 200 {
        assert!(Instant::now() < deadline, "the server takes connections again once they close");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}
