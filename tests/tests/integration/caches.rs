//! The caches of the authenticated path (issue 11) never outlive what they stand for:
//! a revoked token is refused on the very next request, and a desktop's listing never
//! shows a state older than its user's own last power action.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use thindesk_server::compute::double::TestCompute;
use thindesk_tests::{OTHER_STUDENT, STUDENT, TestServer, basic};

/// A request with the token, made until it has surely been answered from the cache.
async fn warm(server: &TestServer, token: &str) {
    for _ in 0..3 {
        server.get("/users/me/desktops", Some(token)).await.data();
    }
}

#[tokio::test]
async fn a_logged_out_token_is_refused_on_the_next_request() {
    let server = TestServer::start().await;
    let token = server.token(STUDENT).await;
    let other = server.token(STUDENT).await;
    warm(&server, &token).await;
    warm(&server, &other).await;
    server.call(reqwest::Method::DELETE, "/token", Some(&token), None).await.data();
    server.get("/users/me/desktops", Some(&token)).await.fail(401);
    server.get("/users/me/desktops", Some(&format!("Bearer {token}"))).await.fail(401);
    server.get("/users/me/desktops", Some(&other)).await.data();
}

#[tokio::test]
async fn a_password_change_refuses_the_users_other_tokens_on_the_next_request() {
    let server = TestServer::start().await;
    let changer = server.token(STUDENT).await;
    let elsewhere = server.token(STUDENT).await;
    let bystander = server.token(OTHER_STUDENT).await;
    for token in [&changer, &elsewhere, &bystander] {
        warm(&server, token).await;
    }
    server.post("/users/me/reset_password", Some(&changer), json!({"password": "a-new-password"})).await.data();
    server.get("/users/me/desktops", Some(&elsewhere)).await.fail(401);
    server.get("/users/me/desktops", Some(&changer)).await.data();
    server.get("/users/me/desktops", Some(&bystander)).await.data();
    server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.fail(401);
}

#[tokio::test]
async fn an_expired_token_is_refused_even_when_cached() {
    let server = TestServer::start_with(Duration::from_secs(1), Arc::new(TestCompute::new())).await;
    let token = server.token(STUDENT).await;
    warm(&server, &token).await;
    // Expiry is checked against the token's own time on every hit: whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    server.get("/users/me/desktops", Some(&token)).await.fail(401);
}

#[tokio::test]
async fn the_listing_never_shows_running_after_the_users_own_power_off() {
    // A long TTL: only invalidation can make the listing right.
    let server = TestServer::builder(Arc::new(TestCompute::new()))
        .configure(|config| config.desktop_status_ttl = Duration::from_secs(3600))
        .start()
        .await;
    let id = server.create_desktop(STUDENT.0, "lab").await;
    let token = server.token(STUDENT).await;
    let action = format!("/desktops/{id}/action");
    let listed = || async { server.get("/users/me/desktops", Some(&token)).await.data()["desktop_list"][0].clone() };
    for _ in 0..3 {
        server.post(&action, Some(&token), json!({"resume": null})).await.data();
        let running = listed().await;
        assert_eq!(running["status"], "ACTIVE");
        assert_eq!(listed().await, running, "a second listing, from the cache, agrees");
        server.post(&action, Some(&token), json!({"shutdown": null})).await.data();
        let off = listed().await;
        assert_eq!(off["status"], "SHUTOFF", "{off}");
        assert_eq!(off["connection_info"], json!([]), "no display of a machine that is off: {off}");
    }
    let before = listed().await["connection_info"][0]["password"].clone();
    server.post(&action, Some(&token), json!({"resume": null})).await.data();
    let ticket = listed().await["connection_info"][0]["password"].clone();
    assert_ne!(ticket, before);
    server.call(reqwest::Method::DELETE, "/token", Some(&token), None).await.data();
    let token = server.token(STUDENT).await;
    let after_logout = server.get("/users/me/desktops", Some(&token)).await.data()["desktop_list"][0].clone();
    assert_ne!(after_logout["connection_info"][0]["password"], ticket, "logout's new ticket is shown at once");
}
