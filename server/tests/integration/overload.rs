//! Overload (CONTRACT.md, "Overload"; issue 11): a full password hashing pool answers
//! 503 with `Retry-After` and a JSend `error`, and the token cache never outlives a
//! revocation written by the command line from another process.

use crate::cli::{basic, ok, start};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use thindesk_server::app;
use thindesk_server::compute::NoCompute;
use thindesk_server::service::Actor;
use thindesk_server::{Config, RunningServer};

async fn get(url: &str, authorization: &str) -> (u16, Option<String>, Value) {
    let response =
        reqwest::Client::new().get(url).header("Authorization", authorization).send().await.expect("request");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry_after, response.json().await.expect("json"))
}

/// A data directory with one user, made with a normal pool before the tiny one.
fn seeded(data_dir: &std::path::Path) {
    let config = Config { data_dir: data_dir.to_owned(), ..Config::default() };
    let services = app::open(&config, Arc::new(NoCompute)).expect("open");
    services.accounts.create_user(&Actor::system(), "kim", "kims-password", false).expect("user");
}

/// A server over a data directory [`seeded`] with a normal pool, then started with
/// the pool settings `pool` gives. The directory lives as long as the returned guard.
async fn seeded_server(pool: impl FnOnce(Config) -> Config) -> (tempfile::TempDir, RunningServer) {
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().join("data");
    let seed_dir = data_dir.clone();
    tokio::task::spawn_blocking(move || seeded(&seed_dir)).await.expect("seed");
    let config = pool(Config { listen: "127.0.0.1:0".parse().expect("addr"), data_dir, ..Config::default() });
    (dir, RunningServer::start(config, Arc::new(NoCompute)).await.expect("server starts"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_hashing_pool_answers_503_with_retry_after_and_the_server_stays_up() {
    // One worker and no room to wait: every password check finds the pool full.
    let (_dir, server) = seeded_server(|config| Config { hash_workers: 1, hash_queue: 0, ..config }).await;
    let url = server.url();
    for _ in 0..3 {
        let (status, retry_after, body) = get(&format!("{url}/api/v1.0/token"), &basic("kim", "kims-password")).await;
        assert_eq!(status, 503, "{body}");
        assert!(retry_after.as_deref().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1), "{retry_after:?}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["code"], "overloaded", "{body}");
    }
    // Not charged as failures: the throttle would answer 429 by now otherwise.
    for _ in 0..5 {
        let (status, _, _) = get(&format!("{url}/api/v1.0/token"), &basic("kim", "wrong-password")).await;
        assert_eq!(status, 503);
    }
    let places = reqwest::get(format!("{url}/api/v1.0/places")).await.expect("places").status().as_u16();
    assert_eq!(places, 200, "the rest of the server is unaffected");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_past_deadline_check_answers_503_too() {
    // A deadline of zero: every job has waited too long by the time a worker takes it.
    let (_dir, server) = seeded_server(|config| Config { hash_queue_deadline: Duration::ZERO, ..config }).await;
    let (status, retry_after, body) =
        get(&format!("{}/api/v1.0/token", server.url()), &basic("kim", "kims-password")).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("error")), "{body}");
    assert!(retry_after.is_some());
    server.shutdown().await;
}

/// The command line is another process on the same database: the server's token
/// cache learns of its writes through SQLite's `data_version`.
#[tokio::test(flavor = "multi_thread")]
async fn revocations_by_the_command_line_are_seen_on_the_next_request() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path()).await;
    let url = server.url();
    ok(dir.path(), &["user", "add", "ana"], "ana-password\n");
    ok(dir.path(), &["user", "add", "ben"], "ben-password\n");
    let token_of = |user: &'static str, password: &'static str| {
        let url = url.clone();
        async move {
            let (status, _, body) = get(&format!("{url}/api/v1.0/token"), &basic(user, password)).await;
            assert_eq!(status, 200, "{body}");
            body["data"]["token"]["id"].as_str().expect("token").to_owned()
        }
    };
    let ana = token_of("ana", "ana-password").await;
    let ben = token_of("ben", "ben-password").await;
    let admin = format!("{url}/api/v1.0/users/me/is_administrator");
    for token in [&ana, &ben, &ana, &ben] {
        assert_eq!(get(&admin, token).await.2["data"], "false", "cached now");
    }

    ok(dir.path(), &["user", "admin", "ben", "true"], "");
    assert_eq!(get(&admin, &ben).await.2["data"], "true", "the new right shows at once");
    ok(dir.path(), &["user", "passwd", "ana"], "ana-new-password\n");
    assert_eq!(get(&admin, &ana).await.0, 401, "a password reset revokes ana's token at once");
    assert_eq!(get(&admin, &ben).await.0, 200);
    ok(dir.path(), &["user", "delete", "ben"], "");
    assert_eq!(get(&admin, &ben).await.0, 401, "a deleted user's token is refused at once");
    server.shutdown().await;
}
