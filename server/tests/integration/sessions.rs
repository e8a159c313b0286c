//! A password change or reset ends the user's console sessions, as it ends their
//! tokens: whoever knew the old password loses what it opened.

use super::cli::{basic, start, thindesk};
use super::faces::{ADMIN, console_session};
use reqwest::redirect::Policy;
use serde_json::json;

/// Where the console sends a request with this session: `None` when the page is
/// shown, the login page's address when the session is over.
async fn console_answer(http: &reqwest::Client, url: &str, session: &str) -> Option<String> {
    let page = http
        .get(format!("{url}/admin/users"))
        .header("Cookie", format!("td_session={session}"))
        .send()
        .await
        .expect("console");
    match page.status().as_u16() {
        200 => None,
        303 => page.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned),
        other => panic!("the console answered {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_reset_or_change_ends_the_users_console_sessions() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let server = start(&data).await;
    let url = server.url();
    assert!(thindesk(&data, &["user", "add", ADMIN.0, "--admin"], &format!("{}\n", ADMIN.1)).status.success());
    let http = reqwest::Client::builder().redirect(Policy::none()).build().expect("client");

    let (session, _) = console_session(&http, &url).await;
    assert_eq!(console_answer(&http, &url, &session).await, None, "the session works");
    assert!(thindesk(&data, &["user", "passwd", ADMIN.0], "a-new-password\n").status.success());
    let after_reset = console_answer(&http, &url, &session).await.expect("the session is over");
    assert!(after_reset.starts_with("/admin/login"), "{after_reset}");

    // Logged in again with the new password, the administrator changes it over v1.0.
    let new_login = ("boss", "a-new-password");
    let (session, _) = super::faces::console_session_as(&http, &url, new_login).await;
    assert_eq!(console_answer(&http, &url, &session).await, None);
    let changed = http
        .put(format!("{url}/api/v1.0/users/me/reset_password"))
        .header("Authorization", basic(new_login.0, new_login.1))
        .json(&json!({"password": "a-third-password"}))
        .send()
        .await
        .expect("change");
    assert_eq!(changed.status().as_u16(), 200);
    assert!(console_answer(&http, &url, &session).await.is_some(), "a change over the API ends it too");
    server.shutdown().await;
}
