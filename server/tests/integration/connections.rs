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

/// Sends `request` on a new connection and reads until the server closes it.
fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    // A server that answers before the whole request is in may reset the rest.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status and JSend body of the last answer in `answers`.
fn last_answer(answers: &str) -> (u16, serde_json::Value) {
    let start = answers.rfind("HTTP/1.1 ").expect("an answer");
    let (head, body) = answers[start..].split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {answers:?}"));
    let status = head["HTTP/1.1 ".len()..][..3].parse().expect("status");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: not JSON: {answers:?}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_are_not_http_get_their_status_with_a_jsend_body() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(&dir.path().join("data"), Duration::from_secs(5), 4096).await;
    let address = server.address();
    let many_headers =
        [&b"GET /api/v1.0/places HTTP/1.1\r\n"[..], &b"X-Filler: 0123456789\r\n".repeat(20_000), b"\r\n"].concat();
    let long_uri = [&b"GET /"[..], &b"a".repeat(70_000), b" HTTP/1.1\r\n\r\n"].concat();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "a header line without a colon",
            b"GET /api/v1.0/places HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
            400,
        ),
        ("a control byte in a header", b"GET /api/v1.0/places HTTP/1.1\r\nX-Bad: \x01\r\n\r\n".to_vec(), 400),
        ("a control byte in the method", b"G\x01T / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("an unknown HTTP version", b"GET /api/v1.0/places HTTP/9.9\r\n\r\n".to_vec(), 400),
        ("a URI over the limit", long_uri, 414),
        ("headers over the limit", many_headers, 431),
    ];
    for (what, request, expected) in cases {
        let answers = tokio::task::spawn_blocking(move || exchange(address, &request)).await.expect("joined");
        let (status, body) = last_answer(&answers);
        assert_eq!(status, expected, "{what}: {answers:?}");
        assert_eq!(body["status"], "fail", "{what}: {body}");
        assert!(body["data"]["request"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    }

    // On a kept-alive connection, a good request is answered as always and the
    // garbage after it gets the JSend answer.
    let answers = tokio::task::spawn_blocking(move || {
        exchange(address, b"GET /api/v1.0/places HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    })
    .await
    .expect("joined");
    assert!(answers.starts_with("HTTP/1.1 200 OK\r\n") && answers.contains("\"place_list\""), "{answers:?}");
    assert_eq!(last_answer(&answers).0, 400, "{answers:?}");
    assert_eq!(places_status(&server.url()).await, 200, "the server serves on");
}
