//! The audit log: what the v1.0 API, the administrator's API, the cloud API and the
//! command line's services do is recorded with who, what, when and from where, and
//! no secret ever lands in it.

use reqwest::Method;
use serde_json::{Value, json};
use thindesk_server::service::accounts::UNKNOWN_USER;
use thindesk_server::service::{Actor, AuditFilter};
use thindesk_shared::ConnectionType;
use thindesk_tests::{ADMIN, STUDENT, TestServer, basic, launch_form};

const NEW_PASSWORD: &str = "students-new-password";
const WRONG_PASSWORD: &str = "wrong-password-guess";
const RESET_PASSWORD: &str = "reset-by-the-teacher";
const CSV_PASSWORD: &str = "imported-kid-password";
const OS_PASSWORD: &str = "image-os-password";
const MAC: &str = "08:00:20:0A:8C:6D";

async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    server.call(method, &format!("/admin{path}"), Some(&basic(ADMIN.0, ADMIN.1)), body).await.data().clone()
}

#[tokio::test]
async fn every_audited_action_leaves_its_entry_and_no_secret_is_written() {
    // Seed-era: the token changes the password and stays valid for what follows.
    let server = TestServer::start().await;
    server.add_image("xubuntu", ConnectionType::Spice, "student", OS_PASSWORD).await;

    // A student logs in, gets a token, fails once, changes the password, powers a desktop.
    let token = server.token(STUDENT).await;
    server.get("/token", Some(&basic(STUDENT.0, WRONG_PASSWORD))).await.fail(401);
    server
        .call(Method::PUT, "/users/me/reset_password", Some(&token), Some(json!({"password": NEW_PASSWORD})))
        .await
        .data();
    let created = admin(
        &server,
        Method::POST,
        "/desktops",
        Some(json!({"image": "xubuntu", "flavor": "m1.tiny", "user": STUDENT.0})),
    )
    .await;
    let desktop = created["id"].as_str().expect("id").to_owned();
    server.post(&format!("/desktops/{desktop}/action"), Some(&token), json!({"resume": null})).await.data();
    let listed = server.get("/users/me/desktops", Some(&token)).await;
    let ticket =
        listed.data()["desktop_list"][0]["connection_info"][0]["password"].as_str().expect("ticket").to_owned();

    // A terminal registers; the teacher approves it, then rejects it.
    server
        .post("/terminals/registration", None, json!({"place": "b101", "seat_number": "3", "mac_address": MAC}))
        .await
        .data();
    admin(&server, Method::POST, &format!("/terminals/{MAC}/approve"), None).await;
    admin(&server, Method::POST, &format!("/terminals/{MAC}/reject"), None).await;

    // The teacher resets a password, imports a class, deletes the desktop.
    admin(&server, Method::PUT, &format!("/users/{}/password", STUDENT.0), Some(json!({"password": RESET_PASSWORD})))
        .await;
    admin(&server, Method::POST, "/users/import", Some(json!({"csv": format!("name,password\nkid,{CSV_PASSWORD}\n")})))
        .await;
    admin(&server, Method::DELETE, &format!("/desktops/{desktop}"), None).await;

    // The exam system launches and destroys a machine.
    let launched = server.cloud(&launch_form("xubuntu", "m1.tiny", "false", "exam")).await;
    let vm_id = launched.body["vm_id"].as_str().expect("vm_id").to_owned();
    let vm_ticket = launched.body["spice_password"].as_str().expect("ticket").to_owned();
    server.cloud(&[("command", "destroy_instance"), ("vm_id", vm_id.as_str())]).await;

    // The command line's services are audited too, under the operating-system user.
    let services = server.services().clone();
    tokio::task::spawn_blocking(move || services.terminals.add_place(&Actor::cli(), "c301", "").expect("place"))
        .await
        .expect("joined");

    let entries = {
        let services = server.services().clone();
        let filter = AuditFilter { limit: Some(1000), ..AuditFilter::default() };
        tokio::task::spawn_blocking(move || services.audit.list(&filter).expect("list")).await.expect("joined")
    };
    let has = |actor: &str, action: &str, target: &str| {
        entries.iter().any(|e| {
            (actor.is_empty() || e.actor == actor || (actor == "cli:*" && e.actor.starts_with("cli:")))
                && e.action == action
                && e.target == target
        })
    };
    let expected = [
        (STUDENT.0, "login", STUDENT.0),
        (STUDENT.0, "token.issue", STUDENT.0),
        (STUDENT.0, "login.failed", STUDENT.0),
        (STUDENT.0, "password.change", STUDENT.0),
        (STUDENT.0, "desktop.action", desktop.as_str()),
        (ADMIN.0, "login", ADMIN.0),
        (ADMIN.0, "desktop.create", desktop.as_str()),
        (ADMIN.0, "desktop.delete", desktop.as_str()),
        ("terminal", "terminal.register", MAC),
        (ADMIN.0, "terminal.approve", MAC),
        (ADMIN.0, "terminal.reject", MAC),
        (ADMIN.0, "password.reset", STUDENT.0),
        (ADMIN.0, "user.create", "kid"),
        ("cloud-api", "instance.launch", vm_id.as_str()),
        ("cloud-api", "instance.destroy", vm_id.as_str()),
        ("cli:*", "place.create", "c301"),
    ];
    for (actor, action, target) in expected {
        assert!(has(actor, action, target), "no {action} of {target} by {actor} in {entries:#?}");
    }
    let http_entries: Vec<_> = entries.iter().filter(|e| !e.actor.starts_with("cli:") && e.actor != "system").collect();
    assert!(http_entries.iter().all(|e| e.address == "127.0.0.1"), "every request's address: {http_entries:#?}");
    assert!(entries.windows(2).all(|w| w[0].at >= w[1].at), "newest first");

    // No secret anywhere: not in the entries, not in the admin API's listing.
    let secrets = [STUDENT.1, ADMIN.1, NEW_PASSWORD, WRONG_PASSWORD, RESET_PASSWORD, CSV_PASSWORD, OS_PASSWORD];
    let secrets: Vec<&str> = secrets.into_iter().chain([token.as_str(), ticket.as_str(), vm_ticket.as_str()]).collect();
    let listing = admin(&server, Method::GET, "/audit?limit=1000", None).await.to_string();
    for entry in &entries {
        let text = format!(
            "{} {} {} {} {} {}",
            entry.actor, entry.address, entry.action, entry.target, entry.detail, entry.at
        );
        for secret in &secrets {
            assert!(!text.contains(secret), "a secret in the audit log: {entry:?}");
        }
    }
    for secret in &secrets {
        assert!(!listing.contains(secret), "a secret in the audit listing");
    }
    // And none in the database file itself, where the audit table lives.
    let database = std::fs::read(server.data_dir().join("thindesk.sqlite3")).expect("database");
    let wal = std::fs::read(server.data_dir().join("thindesk.sqlite3-wal")).unwrap_or_default();
    for secret in [WRONG_PASSWORD, NEW_PASSWORD, RESET_PASSWORD, CSV_PASSWORD, token.as_str()] {
        let found = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found(&database) && !found(&wal), "{secret:?} is stored somewhere in the database");
    }
}

#[tokio::test]
async fn throttled_logins_are_recorded_without_the_guesses() {
    let server = TestServer::start().await;
    let mut guesses = Vec::new();
    for n in 0..7 {
        let guess = format!("guess-number-{n}");
        server.get("/token", Some(&basic(STUDENT.0, &guess))).await;
        guesses.push(guess);
    }
    let log = admin(&server, Method::GET, &format!("/audit?actor={}&action=login", STUDENT.0), None).await;
    let actions: Vec<&str> =
        log["audit_list"].as_array().expect("list").iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"login.failed") && actions.contains(&"login.throttled"), "{actions:?}");
    for guess in &guesses {
        assert!(!log.to_string().contains(guess.as_str()));
    }
}

#[tokio::test]
async fn a_password_typed_as_a_user_name_is_not_kept() {
    let server = TestServer::start().await;
    let typed = "my-secret-password-typed-in-the-wrong-field";
    server.get("/token", Some(&basic(typed, "whatever"))).await;
    let log = admin(&server, Method::GET, "/audit?action=login", None).await;
    assert!(!log.to_string().contains(typed), "{log}");
    let entries = log["audit_list"].as_array().expect("list");
    assert!(
        entries.iter().any(|e| e["action"] == "login.failed" && e["actor"] == UNKNOWN_USER),
        "the failed attempt is still recorded: {log}"
    );
}
