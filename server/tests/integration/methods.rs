//! Every method on every route gets an answer a client can read: JSend (or, on
//! `/cloud_api`, the cloud API's own JSON), never an empty body, and never a 2xx to
//! CONNECT, which would turn the connection into a tunnel. (The console's HTML
//! answers to the methods it takes, GET and POST, are its own.)

use super::cli::start;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const PATHS: [&str; 12] = [
    "/api/v1.0/token",
    "/api/v1.0/users/me/desktops",
    "/api/v1.0/users/me/reset_password",
    "/api/v1.0/places",
    "/api/v1.0/terminals/registration",
    "/api/v1.0/terminals/08:00:20:0A:8C:6D",
    "/api/v1.0/desktops/some-id/action",
    "/api/v1.0/admin/users",
    "/admin/",
    "/admin/login",
    "/cloud_api",
    "/no/such/path",
];

const METHODS: [&str; 8] = ["CONNECT", "OPTIONS", "TRACE", "PATCH", "PUT", "DELETE", "PROPFIND", "POST"];

/// Sends one request as raw bytes (a client library would treat CONNECT as a proxy
/// request) and returns the status and the body.
fn exchange(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: thindesk\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_method_on_every_route_gets_a_readable_answer_and_connect_never_a_tunnel() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(&dir.path().join("data")).await;
    let address = server.address();
    let answers = tokio::task::spawn_blocking(move || {
        let mut answers = Vec::new();
        for path in PATHS {
            for method in METHODS {
                if path.starts_with("/admin/") && method == "POST" {
                    continue;
                }
                let (status, body) = exchange(address, method, path);
                answers.push((method, path, status, body));
            }
        }
        answers
    })
    .await
    .expect("requests");
    for (method, path, status, body) in answers {
        let what = format!("{method} {path}: {status} {body:?}");
        assert!(status >= 200, "{what}");
        if method == "CONNECT" {
            assert!(!(200..300).contains(&status), "a 2xx to CONNECT opens a tunnel: {what}");
        }
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {what}"));
        if path == "/cloud_api" && method != "CONNECT" {
            assert!(json["ret_code"].is_number(), "{what}");
        } else {
            assert!(matches!(json["status"].as_str(), Some("fail" | "error")), "{what}");
        }
    }
    server.shutdown().await;
}
