//! The v1.0 terminal API, called over HTTP on a real server, endpoint by endpoint.

use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use thindesk_server::compute::double::TestCompute;
use thindesk_server::compute::{NoCompute, PowerOp};
use thindesk_server::service::{Actor, iso8601};
use thindesk_shared::{DesktopStatus, RegistrationMode};
use thindesk_tests::{ADMIN, OTHER_STUDENT, STUDENT, TestServer, basic, password_forms, token_forms};

fn is_iso8601_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'Z'
        && text.bytes().enumerate().all(|(i, b)| [4, 7, 10, 13, 16, 19].contains(&i) || b.is_ascii_digit())
}

// ----- GET/POST /token ---------------------------------------------------------

#[tokio::test]
async fn token_is_issued_for_every_credential_form_and_method() {
    let server = TestServer::start().await;
    for authorization in password_forms(STUDENT.0, STUDENT.1) {
        for method in [Method::GET, Method::POST] {
            let reply = server.call(method.clone(), "/token", Some(&authorization), None).await;
            let data = reply.data();
            let token = &data["token"];
            assert!(token["id"].as_str().is_some_and(|id| id.len() >= 22), "{authorization}: {data}");
            assert!(is_iso8601_utc(token["issued_at"].as_str().unwrap_or_default()), "{data}");
            assert!(is_iso8601_utc(token["expires"].as_str().unwrap_or_default()), "{data}");
            assert_eq!(data["expires_in"], 7200);
        }
    }
}

#[tokio::test]
async fn tokens_are_unique_and_valid_in_every_form_on_every_authenticated_endpoint() {
    // Seed-era: a token alone may change the password (see the next test for the default).
    let server = TestServer::start().await;
    let desktop = server.create_desktop(STUDENT.0, "lab").await;
    let first = server.token(STUDENT).await;
    let second = server.token(STUDENT).await;
    assert_ne!(first, second);
    for authorization in token_forms(&first) {
        let auth = Some(authorization.as_str());
        server.get("/token", auth).await.data();
        assert_eq!(server.get("/users/me/is_administrator", auth).await.data(), "false");
        server.get("/users/me/desktops", auth).await.data();
        assert_eq!(
            server.post(&format!("/desktops/{desktop}/action"), auth, json!({"resume": null})).await.data(),
            &Value::Null
        );
        let reset =
            server.call(Method::PUT, "/users/me/reset_password", auth, Some(json!({"password": STUDENT.1}))).await;
        assert_eq!(reset.data(), &Value::Null, "{authorization}");
    }
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_on_every_authenticated_endpoint() {
    let server = TestServer::start().await;
    let endpoints: [(Method, &str, Option<Value>); 5] = [
        (Method::GET, "/token", None),
        (Method::GET, "/users/me/reset_password", Some(json!({"password": "whatever-long"}))),
        (Method::GET, "/users/me/desktops", None),
        (Method::GET, "/users/me/is_administrator", None),
        (Method::POST, "/desktops/anything/action", Some(json!({"reboot": null}))),
    ];
    // Spread over accounts so that the throttle (5 free failures per account, 20 per
    // address) does not step in: this test is about 401, the throttle has its own.
    let accounts = [STUDENT.0, OTHER_STUDENT.0, ADMIN.0, STUDENT.0, OTHER_STUDENT.0];
    for (n, (method, path, body)) in endpoints.into_iter().enumerate() {
        let user = accounts[n];
        let wrong = [
            None,
            Some(basic(user, "wrong-password")),
            Some(format!("{user}:wrong")),
            Some(basic(&format!("nobody{n}"), STUDENT.1)),
            Some("Bearer not-a-token".to_owned()),
            Some("not-a-token".to_owned()),
            Some("Digest username=x".to_owned()),
        ];
        for authorization in &wrong {
            let reply = server.call(method.clone(), path, authorization.as_deref(), body.clone()).await;
            let data = reply.fail(401);
            assert!(data["authorization"].is_string(), "{path} {authorization:?}: {data}");
            assert!(reply.headers.contains_key("www-authenticate"));
        }
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_and_says_so() {
    // Times are whole seconds, so a token of 3 s lives 2 to 3 s: long enough for the
    // password check below on a busy machine (a token of 1 s may live 0 s).
    let server = TestServer::start_with(Duration::from_secs(3), Arc::new(TestCompute::new())).await;
    let token = server.token(STUDENT).await;
    let grant = server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await;
    assert_eq!(grant.data()["expires_in"], 3);
    assert_eq!(server.get("/users/me/is_administrator", Some(&token)).await.data(), "false");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let reply = server.get("/users/me/is_administrator", Some(&token)).await;
    assert!(reply.fail(401)["authorization"].as_str().unwrap_or_default().contains("expired"), "{reply:?}");
    server.get("/users/me/is_administrator", Some(&basic(STUDENT.0, STUDENT.1))).await.data();
}

/// The time `seconds` from now, written as the server writes times.
fn iso8601_in(seconds: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    iso8601(i64::try_from(now.as_secs()).expect("in range") + seconds)
}

#[tokio::test]
async fn a_token_renews_itself_before_it_expires() {
    // The seed's client renews its token before it expires by asking `/token` with
    // it. Tokens live 3 s here; times are whole seconds, and a token stops working at
    // the start of its `expires` second.
    let server = TestServer::start_with(Duration::from_secs(3), Arc::new(TestCompute::new())).await;
    let first = server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.data()["token"].clone();
    let old = first["id"].as_str().expect("id").to_owned();
    let old_expires = first["expires"].as_str().expect("expires").to_owned();
    // Wait until it has at most 2 s left, so that its successor is issued in a later second.
    while iso8601_in(2) < old_expires {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let renewal = server.get("/token", Some(&format!("Bearer {old}"))).await;
    let data = renewal.data();
    assert_eq!(data["expires_in"], 3, "a whole new lifetime, not what was left of the old one: {data}");
    let new = data["token"]["id"].as_str().expect("id").to_owned();
    assert_ne!(new, old);
    let new_expires = data["token"]["expires"].as_str().expect("expires");
    assert!(new_expires > old_expires.as_str(), "the new token expires later: {new_expires} vs {old_expires}");
    // Renewing revokes nothing: the old token works until its own expiry.
    server.get("/users/me/desktops", Some(&old)).await.data();

    while iso8601_in(0) < old_expires {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expired = server.get("/users/me/desktops", Some(&old)).await;
    assert!(expired.fail(401)["authorization"].as_str().unwrap_or_default().contains("expired"), "{expired:?}");
    server.get("/users/me/desktops", Some(&new)).await.data();
}

// ----- throttling --------------------------------------------------------------

#[tokio::test]
async fn password_guessing_is_throttled_per_account_but_the_user_gets_back_in() {
    let server = TestServer::start().await;
    let wrong = basic(STUDENT.0, "guess");
    // Five tries; the fifth's failure already starts the wait.
    for _ in 0..5 {
        server.get("/token", Some(&wrong)).await.fail(401);
    }
    let throttled = server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await;
    let data = throttled.fail(429);
    let wait = data["retry_after"].as_u64().expect("retry_after");
    assert!((1..=60).contains(&wait), "{data}");
    assert_eq!(throttled.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some(wait.to_string().as_str()));
    // Another account from the same address is not held up by this one.
    server.get("/token", Some(&basic(ADMIN.0, ADMIN.1))).await.data();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.data();
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_gets_five_tries_and_one_audit_row() {
    let server = TestServer::start().await;
    let wrong = basic(STUDENT.0, "guess");
    let guesses: Vec<_> = (0..100)
        .map(|_| {
            let (http, url, wrong) = (server.http.clone(), server.url("/api/v1.0/token"), wrong.clone());
            tokio::spawn(async move { http.get(url).header("Authorization", wrong).send().await.map(|r| r.status()) })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.expect("task").expect("answered").as_u16());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, throttled), (5, 95), "each guess is charged as it is admitted");
    let audit = server.get("/admin/audit?action=login.throttled", Some(&basic(ADMIN.0, ADMIN.1))).await;
    let rows = audit.data()["audit_list"].as_array().map_or(0, Vec::len);
    assert!((1..=2).contains(&rows), "one row per account, address and minute, not 95: {rows}");
}

#[tokio::test]
async fn guessing_many_accounts_from_one_address_is_throttled() {
    let server = TestServer::start().await;
    for n in 0..20 {
        server.get("/token", Some(&basic(&format!("user{n}"), "guess"))).await.fail(401);
    }
    let reply = server.get("/token", Some(&basic(ADMIN.0, ADMIN.1))).await;
    assert!(reply.fail(429)["retry_after"].as_u64().is_some_and(|w| w >= 1));
}

// ----- /users/me/reset_password ------------------------------------------------

#[tokio::test]
async fn changing_the_password_revokes_every_other_token() {
    let server = TestServer::start().await;
    let kept = server.token(STUDENT).await;
    let revoked = server.token(STUDENT).await;
    let admins = server.token(ADMIN).await;
    for method in [Method::GET, Method::POST, Method::PUT] {
        let reply = server
            .call(method, "/users/me/reset_password", Some(&kept), Some(json!({"password": "a-new-password"})))
            .await;
        assert_eq!(reply.data(), &Value::Null);
    }
    server.get("/users/me/desktops", Some(&kept)).await.data();
    server.get("/users/me/desktops", Some(&revoked)).await.fail(401);
    server.get("/users/me/desktops", Some(&admins)).await.data();
    server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.fail(401);
    server.get("/token", Some(&basic(STUDENT.0, "a-new-password"))).await.data();

    // Changed with the password itself, no token survives.
    let reply = server
        .call(
            Method::POST,
            "/users/me/reset_password",
            Some(&format!("{}:a-new-password", STUDENT.0)),
            Some(json!({"password": "third-password"})),
        )
        .await;
    assert_eq!(reply.data(), &Value::Null);
    server.get("/users/me/desktops", Some(&kept)).await.fail(401);
}

#[tokio::test]
async fn a_token_alone_cannot_change_the_password_the_current_one_can() {
    // Where the school turns off what the contract allows by default.
    let server = TestServer::builder(Arc::new(TestCompute::new()))
        .configure(|config| config.password_change_by_token = false)
        .start()
        .await;
    let token = server.token(STUDENT).await;
    for authorization in token_forms(&token) {
        for method in [Method::GET, Method::POST, Method::PUT] {
            let reply = server
                .call(
                    method,
                    "/users/me/reset_password",
                    Some(&authorization),
                    Some(json!({"password": "a-new-password"})),
                )
                .await;
            let why = reply.fail(400)["authorization"].as_str().unwrap_or_default().to_owned();
            assert!(why.contains("current"), "{authorization}: {why}");
        }
    }
    // Nothing changed: the old password and the token still work.
    server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.data();
    server.get("/users/me/desktops", Some(&token)).await.data();

    // The current password, as Basic credentials, changes it and ends every token.
    let reply = server
        .call(
            Method::PUT,
            "/users/me/reset_password",
            Some(&basic(STUDENT.0, STUDENT.1)),
            Some(json!({"password": "a-new-password"})),
        )
        .await;
    assert_eq!(reply.data(), &Value::Null);
    server.get("/users/me/desktops", Some(&token)).await.fail(401);
    server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.fail(401);
    server.get("/token", Some(&basic(STUDENT.0, "a-new-password"))).await.data();
    // A wrong current password is a 401, as anywhere.
    let reply = server
        .call(
            Method::PUT,
            "/users/me/reset_password",
            Some(&basic(STUDENT.0, "not-it-at-all")),
            Some(json!({"password": "a-third-password"})),
        )
        .await;
    reply.fail(401);
}

#[tokio::test]
async fn a_bad_new_password_is_refused_and_the_old_one_still_works() {
    let server = TestServer::start().await;
    let auth = basic(STUDENT.0, STUDENT.1);
    for body in [json!({"password": "short"}), json!({"password": 12345678}), json!({}), json!({"pass": "long-enough"})]
    {
        let reply = server.post("/users/me/reset_password", Some(&auth), body.clone()).await;
        assert!(reply.fail(400)["password"].is_string(), "{body}: {reply:?}");
    }
    let no_body = server.call(Method::POST, "/users/me/reset_password", Some(&auth), None).await;
    assert!(no_body.fail(400)["password"].is_string());
    server.get("/token", Some(&auth)).await.data();
}

// ----- /users/me/is_administrator ----------------------------------------------

#[tokio::test]
async fn is_administrator_answers_with_the_seeds_strings() {
    let server = TestServer::start().await;
    assert_eq!(server.get("/users/me/is_administrator", Some(&basic(ADMIN.0, ADMIN.1))).await.data(), &json!("true"));
    assert_eq!(
        server.get("/users/me/is_administrator", Some(&basic(STUDENT.0, STUDENT.1))).await.data(),
        &json!("false")
    );
}

// ----- /users/me/desktops and /desktops/<id>/action -----------------------------

#[tokio::test]
async fn a_user_lists_only_their_own_desktops_with_the_seeds_fields() {
    let server = TestServer::start().await;
    let mine = server.create_desktop(STUDENT.0, "Programming lab").await;
    server.create_desktop(OTHER_STUDENT.0, "Someone else's").await;
    let reply = server.get("/users/me/desktops", Some(&basic(STUDENT.0, STUDENT.1))).await;
    let data = reply.data();
    assert_eq!(data["gateway_list"], json!([]));
    let list = data["desktop_list"].as_array().expect("list");
    assert_eq!(list.len(), 1);
    let desktop = &list[0];
    assert_eq!(desktop["id"], json!(mine));
    assert_eq!(desktop["name"], "Programming lab");
    assert_eq!(desktop["status"], "SHUTOFF");
    assert_eq!(desktop["os_username"], "student-os");
    assert_eq!(desktop["os_password"], "student-os-password");
    assert_eq!(desktop["default_connection_type"], "spice");
    assert_eq!(desktop["policy"], json!({"enable_usb": false, "enable_clipboard": true, "enable_audio": true}));
    assert_eq!(desktop["connection_info"], json!([]), "a stopped desktop has no display");
    let admin_list = server.get("/users/me/desktops", Some(&basic(ADMIN.0, ADMIN.1))).await;
    assert_eq!(admin_list.data()["desktop_list"], json!([]));
}

#[tokio::test]
async fn power_actions_drive_the_hypervisor_and_the_listed_status() {
    // What changes outside thindesk (`force_status` below) shows within the status
    // cache's TTL; none here, so the test need not wait for it.
    let server = TestServer::builder(Arc::new(TestCompute::new()))
        .configure(|config| config.desktop_status_ttl = Duration::ZERO)
        .start()
        .await;
    let id = server.create_desktop(STUDENT.0, "lab").await;
    let token = server.token(STUDENT).await;
    let action = format!("/desktops/{id}/action");
    let status = || async {
        let reply = server.get("/users/me/desktops", Some(&token)).await;
        reply.data()["desktop_list"][0].clone()
    };

    server.post(&action, Some(&token), json!({"resume": null})).await.data();
    let desktop = status().await;
    assert_eq!(desktop["status"], "ACTIVE");
    let spice = &desktop["connection_info"][0];
    assert_eq!(spice["type"], "spice");
    assert_eq!(spice["ip"], "192.0.2.10");
    assert!(spice["port"].as_str().is_some_and(|p| p.parse::<u16>().is_ok()), "port is a string: {spice}");
    assert!(spice["password"].as_str().is_some_and(|p| !p.is_empty()), "a SPICE display has a ticket: {spice}");

    server.post(&action, Some(&token), json!({"action": "reboot"})).await.data();
    assert_eq!(status().await["status"], "ACTIVE");
    server.post(&action, Some(&token), json!({"shutdown": null})).await.data();
    assert_eq!(status().await["status"], "SHUTOFF");
    server.post(&action, Some(&token), json!({"shutdown": null})).await.data();
    server.post(&action, Some(&token), json!({"reboot": null})).await.data();
    assert_eq!(status().await["status"], "ACTIVE", "rebooting a stopped desktop starts it");
    server.compute.force_status(&id, DesktopStatus::Paused);
    assert_eq!(status().await["status"], "PAUSED");
    server.post(&action, Some(&token), json!({"resume": null})).await.data();
    server.post(&action, Some(&token), json!({"action": "reset"})).await.data();

    let ops: Vec<PowerOp> = server.compute.operations().into_iter().map(|(_, op)| op).collect();
    assert_eq!(
        ops,
        [PowerOp::Start, PowerOp::Reboot, PowerOp::Shutdown, PowerOp::Start, PowerOp::Resume, PowerOp::Reset]
    );
}

#[tokio::test]
async fn someone_elses_desktop_is_404_but_an_administrator_may_act_on_it() {
    let server = TestServer::start().await;
    let id = server.create_desktop(STUDENT.0, "lab").await;
    let action = format!("/desktops/{id}/action");
    let reply = server.post(&action, Some(&basic(OTHER_STUDENT.0, OTHER_STUDENT.1)), json!({"resume": null})).await;
    let unknown = server
        .post(
            "/desktops/no-such-desktop/action",
            Some(&basic(OTHER_STUDENT.0, OTHER_STUDENT.1)),
            json!({"resume": null}),
        )
        .await;
    assert_eq!(reply.fail(404), unknown.fail(404), "another's desktop looks exactly like a missing one");
    assert!(server.compute.operations().is_empty());
    server.post(&action, Some(&basic(ADMIN.0, ADMIN.1)), json!({"resume": null})).await.data();
    assert_eq!(server.compute.operations().len(), 1);
}

#[tokio::test]
async fn malformed_action_bodies_are_400() {
    let server = TestServer::start().await;
    let id = server.create_desktop(STUDENT.0, "lab").await;
    let auth = basic(STUDENT.0, STUDENT.1);
    for body in [
        json!({}),
        json!({"reboot": null, "shutdown": null}),
        json!({"explode": null}),
        json!({"action": "explode"}),
        json!(["reboot"]),
    ] {
        let reply = server.post(&format!("/desktops/{id}/action"), Some(&auth), body.clone()).await;
        assert!(reply.fail(400)["action"].is_string(), "{body}");
    }
    let empty = server.call(Method::POST, &format!("/desktops/{id}/action"), Some(&auth), None).await;
    empty.fail(400);
    assert!(server.compute.operations().is_empty());
}

#[tokio::test]
async fn a_failing_hypervisor_is_a_503_error_and_the_status_is_unchanged() {
    let server = TestServer::start().await;
    let id = server.create_desktop(STUDENT.0, "lab").await;
    let auth = basic(STUDENT.0, STUDENT.1);
    server.compute.set_failing(true);
    let reply = server.post(&format!("/desktops/{id}/action"), Some(&auth), json!({"resume": null})).await;
    let message = reply.error(503);
    assert!(!message.contains("test double"), "internals stay in the log: {message}");
    assert_eq!(reply.body["code"], "compute_failed");
    let listed = server.get("/users/me/desktops", Some(&auth)).await;
    assert_eq!(listed.data()["desktop_list"][0]["status"], "SHUTOFF");
}

// ----- /places -------------------------------------------------------------------

#[tokio::test]
async fn places_are_listed_without_credentials() {
    let server = TestServer::start().await;
    let reply = server.get("/places", None).await;
    assert_eq!(
        reply.data(),
        &json!({"place_list": [{"name": "b101", "address": "one floor"}, {"name": "b201", "address": "two floor"}]})
    );
}

// ----- /terminals ------------------------------------------------------------------

fn registration(mac: &str, place: &str, seat: &str) -> Value {
    json!({"place": place, "seat_number": seat, "mac_address": mac})
}

#[tokio::test]
async fn an_unknown_terminal_is_the_seeds_404_and_a_bad_mac_is_400() {
    let server = TestServer::start().await;
    let reply = server.get("/terminals/08:00:20:0A:8C:6D", None).await;
    assert_eq!(reply.fail(404), &json!("terminal not exist"));
    for bad in ["08:00:20:0A:8C", "hello", "08:00:20:0A:8C:6G"] {
        let reply = server.get(&format!("/terminals/{bad}"), None).await;
        assert!(reply.fail(400)["mac_address"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn registration_follows_the_servers_mode() {
    let server = TestServer::start().await;
    let terminals = server.services().terminals.clone();
    let cases = [
        (RegistrationMode::Approval, "0800200A8C01", "01", "WAITING"),
        (RegistrationMode::Auto, "08-00-20-0a-8c-02", "02", "APPROVED"),
        (RegistrationMode::Closed, "08:00:20:0a:8c:03", "03", "REJECTED"),
    ];
    for (mode, mac, seat, expected) in cases {
        terminals.set_registration_mode(&Actor::system(), mode).expect("mode");
        let reply = server.post("/terminals/registration", None, registration(mac, "b101", seat)).await;
        assert_eq!(reply.data(), &json!({"terminal_state": expected}), "{mode}");
        let lookup = server.get(&format!("/terminals/{mac}"), None).await;
        let data = lookup.data();
        assert_eq!(data["state"], expected);
        assert_eq!(data["place"], "b101");
        assert_eq!(data["seat_number"], seat);
        assert_eq!(data["register_mode"], mode.as_str());
        let normalised = data["mac_address"].as_str().expect("mac");
        assert_eq!(normalised.len(), 17);
        assert_eq!(normalised, normalised.to_uppercase());
        assert!(normalised.starts_with("08:00:20:0A:8C:0"));
    }
}

#[tokio::test]
async fn duplicate_registrations_are_409_with_the_seeds_words_and_change_nothing() {
    let server = TestServer::start().await;
    server.post("/terminals/registration", None, registration("08:00:20:0A:8C:6D", "b101", "01")).await.data();
    let again = server.post("/terminals/registration", None, registration("0800200a8c6d", "b201", "05")).await;
    assert_eq!(again.fail(409), &json!("terminal existed"));
    let seat = server.post("/terminals/registration", None, registration("08:00:20:0A:8C:6E", "b101", "01")).await;
    assert_eq!(seat.fail(409), &json!("place and seat number existed"));
    assert_eq!(server.get("/terminals/08:00:20:0A:8C:6D", None).await.data()["place"], "b101");
    server.get("/terminals/08:00:20:0A:8C:6E", None).await.fail(404);
}

#[tokio::test]
async fn registration_field_errors_are_400_and_listed_per_field() {
    let server = TestServer::start().await;
    let reply = server
        .post("/terminals/registration", None, json!({"place": "nowhere", "seat_number": "", "mac_address": "bad"}))
        .await;
    let data = reply.fail(400);
    assert!(data["errors"]["seat_number"][0].is_string(), "{data}");
    assert!(data["errors"]["mac_address"][0].is_string(), "{data}");
    assert!(data["mac_address"].is_string(), "{data}");
    let unknown_place =
        server.post("/terminals/registration", None, registration("08:00:20:0A:8C:6D", "nowhere", "01")).await;
    assert!(unknown_place.fail(400)["errors"]["place"][0].is_string());
    let bad_mode = server
        .post(
            "/terminals/registration",
            None,
            json!({"place": "b101", "seat_number": "1", "mac_address": "0800200a8c6d", "mode": "root"}),
        )
        .await;
    assert!(bad_mode.fail(400)["errors"]["mode"][0].is_string());
    assert!(server.services().terminals.terminals(None).expect("list").is_empty());
}

#[tokio::test]
async fn auth_mode_registers_approved_only_for_an_administrator() {
    let server = TestServer::start().await;
    server.services().terminals.set_registration_mode(&Actor::system(), RegistrationMode::Closed).expect("mode");
    let mut body = registration("08:00:20:0A:8C:6D", "b101", "07");
    body["mode"] = json!("auth");
    server.post("/terminals/registration", None, body.clone()).await.fail(401);
    server.post("/terminals/registration", Some(&basic(ADMIN.0, "wrong")), body.clone()).await.fail(401);
    let student = server.post("/terminals/registration", Some(&basic(STUDENT.0, STUDENT.1)), body.clone()).await;
    assert!(student.fail(403)["authorization"].is_string());
    server.get("/terminals/08:00:20:0A:8C:6D", None).await.fail(404);
    for (n, authorization) in password_forms(ADMIN.0, ADMIN.1).into_iter().enumerate() {
        let mut body = registration(&format!("08:00:20:0A:8C:7{n}"), "b101", &format!("1{n}"));
        body["mode"] = json!("auth");
        let reply = server.post("/terminals/registration", Some(&authorization), body).await;
        assert_eq!(reply.data(), &json!({"terminal_state": "APPROVED"}), "{authorization}");
    }
    let token = server.token(ADMIN).await;
    let reply = server.post("/terminals/registration", Some(&format!("Bearer {token}")), body).await;
    assert_eq!(reply.data(), &json!({"terminal_state": "APPROVED"}));
    let lookup = server.get("/terminals/08:00:20:0A:8C:6D", None).await;
    assert_eq!(lookup.data()["register_mode"], "auth");
}

// ----- the HTTP envelope -----------------------------------------------------------

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_jsend() {
    let server = TestServer::start().await;
    let unknown = server.get("/no/such/thing", None).await;
    assert!(unknown.fail(404)["path"].is_string());
    let root = thindesk_tests::reply(server.http.get(server.url("/")).send().await.expect("sent")).await;
    root.fail(404);
    let wrong_method = server.call(Method::PUT, "/token", None, None).await;
    wrong_method.fail(405);
    assert_eq!(wrong_method.headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET, POST, DELETE"));
    server.call(Method::POST, "/places", None, None).await.fail(405);
    server.get("/terminals/registration", None).await.fail(405);
    server.call(Method::PUT, "/terminals/08:00:20:0A:8C:6D", None, None).await.fail(405);
    for reply in [unknown, wrong_method] {
        assert_eq!(reply.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    }
}

/// `/terminals/registration` is also the shape of `/terminals/<mac>`; a wrong method on
/// it must still name the methods registration takes.
#[tokio::test]
async fn a_wrong_method_on_registration_is_405_allowing_post() {
    let server = TestServer::start().await;
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        let reply = server.call(method.clone(), "/terminals/registration", None, None).await;
        reply.fail(405);
        assert_eq!(reply.headers.get("allow").and_then(|v| v.to_str().ok()), Some("POST"), "{method}");
    }
}

#[tokio::test]
async fn bad_bodies_are_400_413_and_415() {
    let server = TestServer::start().await;
    let url = server.url("/api/v1.0/terminals/registration");
    let send = |body: Vec<u8>, content_type: &'static str| {
        let request = server.http.post(&url).header("content-type", content_type).body(body);
        async move { thindesk_tests::reply(request.send().await.expect("sent")).await }
    };
    let malformed = send(b"{\"place\": ".to_vec(), "application/json").await;
    assert!(malformed.fail(400)["body"].is_string());
    let form = send(b"place=b101&seat_number=1".to_vec(), "application/x-www-form-urlencoded").await;
    assert!(form.fail(415)["body"].is_string());
    let mut huge = b"{\"place\": \"".to_vec();
    huge.resize(1024 * 1024 + 16, b'a');
    huge.extend_from_slice(b"\"}");
    let too_large = send(huge, "application/json").await;
    assert!(too_large.fail(413)["body"].is_string());
    assert!(server.services().terminals.terminals(None).expect("list").is_empty());
}

// ----- restart -------------------------------------------------------------------

#[tokio::test]
async fn a_restart_keeps_users_tokens_terminals_desktops_and_settings() {
    // Seed-era, so the token survives its own password change (and the setting a restart).
    let server = TestServer::start().await;
    let id = server.create_desktop(STUDENT.0, "lab").await;
    let token = server.token(STUDENT).await;
    server.services().terminals.set_registration_mode(&Actor::system(), RegistrationMode::Auto).expect("mode");
    server.post("/terminals/registration", None, registration("08:00:20:0A:8C:6D", "b201", "09")).await.data();
    server.post("/users/me/reset_password", Some(&token), json!({"password": "changed-password"})).await.data();

    let server = server.restart().await;
    assert_eq!(server.get("/terminals/08:00:20:0A:8C:6D", None).await.data()["state"], "APPROVED");
    let listed = server.get("/users/me/desktops", Some(&token)).await;
    assert_eq!(listed.data()["desktop_list"][0]["id"], json!(id));
    server.get("/token", Some(&basic(STUDENT.0, "changed-password"))).await.data();
    assert_eq!(server.services().terminals.registration_mode().expect("mode"), RegistrationMode::Auto);
    assert_eq!(server.get("/places", None).await.data()["place_list"].as_array().map(Vec::len), Some(2));
}

// ----- a server without a hypervisor ------------------------------------------------

#[tokio::test]
async fn without_a_hypervisor_desktops_list_but_power_actions_are_503() {
    let server = TestServer::builder(Arc::new(NoCompute)).start().await;
    let id = server.create_desktop(STUDENT.0, "d").await;
    let auth = basic(STUDENT.0, STUDENT.1);
    let list = server.get("/users/me/desktops", Some(&auth)).await;
    assert_eq!(list.data()["desktop_list"][0]["status"], "SHUTOFF");
    let action = server.post(&format!("/desktops/{id}/action"), Some(&auth), json!({"resume": null})).await;
    assert!(action.error(503).contains("hypervisor"));
    server.server.shutdown().await;
}
