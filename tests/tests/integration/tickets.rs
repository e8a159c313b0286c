//! Display tickets follow people (CONTRACT.md, "SPICE tickets" and "Logout"): a
//! desktop's ticket changes when the desktop gets another owner, when its owner logs
//! out, and when an administrator asks; logging out revokes the token it names. (The
//! QEMU driver's side, the cut session and the refused old ticket, is in qemu.rs.)

use reqwest::Method;
use serde_json::json;
use thindesk_tests::{ADMIN, OTHER_STUDENT, STUDENT, TestServer, basic};

/// The SPICE ticket the owner's listing shows for their first desktop.
async fn ticket(server: &TestServer, authorization: &str) -> String {
    let reply = server.get("/users/me/desktops", Some(authorization)).await;
    let ticket = &reply.data()["desktop_list"][0]["connection_info"][0]["password"];
    ticket.as_str().expect("a running desktop shows its ticket").to_owned()
}

async fn running_desktop(server: &TestServer, owner: (&str, &str)) -> String {
    let id = server.create_desktop(owner.0, "lab").await;
    let action = format!("/desktops/{id}/action");
    server.post(&action, Some(&basic(owner.0, owner.1)), json!({"resume": null})).await.data();
    id
}

#[tokio::test]
async fn logging_out_revokes_the_token_and_cuts_the_owners_display_sessions() {
    let server = TestServer::start().await;
    running_desktop(&server, STUDENT).await;
    let token = server.token(STUDENT).await;
    let before = ticket(&server, &token).await;

    let with_password = server.call(Method::DELETE, "/token", Some(&basic(STUDENT.0, STUDENT.1)), None).await;
    assert!(with_password.fail(400)["authorization"].is_string(), "only a token can be logged out");
    assert_eq!(ticket(&server, &token).await, before, "a refused logout changes nothing");

    server.call(Method::DELETE, "/token", Some(&token), None).await.data();
    server.get("/users/me/desktops", Some(&token)).await.fail(401);
    server.call(Method::DELETE, "/token", Some(&token), None).await.fail(401);
    let after = ticket(&server, &basic(STUDENT.0, STUDENT.1)).await;
    assert_ne!(after, before, "the ticket the next person at the terminal could see is void");
}

#[tokio::test]
async fn a_desktop_given_to_someone_else_no_longer_opens_with_the_former_owners_ticket() {
    let server = TestServer::start().await;
    let id = running_desktop(&server, STUDENT).await;
    let former = ticket(&server, &basic(STUDENT.0, STUDENT.1)).await;
    let admin = basic(ADMIN.0, ADMIN.1);
    server.post(&format!("/admin/desktops/{id}/assign"), Some(&admin), json!({"user": OTHER_STUDENT.0})).await.data();
    let new_owners = ticket(&server, &basic(OTHER_STUDENT.0, OTHER_STUDENT.1)).await;
    assert_ne!(new_owners, former);
}

#[tokio::test]
async fn an_administrator_asks_for_a_new_ticket() {
    let server = TestServer::start().await;
    let id = running_desktop(&server, STUDENT).await;
    let student = basic(STUDENT.0, STUDENT.1);
    let before = ticket(&server, &student).await;
    let path = format!("/admin/desktops/{id}/ticket");

    server.post(&path, Some(&student), json!({})).await.fail(403);
    assert_eq!(ticket(&server, &student).await, before, "a student cannot do it");
    server.post("/admin/desktops/no-such-desktop/ticket", Some(&basic(ADMIN.0, ADMIN.1)), json!({})).await.fail(404);

    assert!(server.post(&path, Some(&basic(ADMIN.0, ADMIN.1)), json!({})).await.data().is_null());
    assert_ne!(ticket(&server, &student).await, before);
    let audit = server.get("/admin/audit?action=desktop.ticket", Some(&basic(ADMIN.0, ADMIN.1))).await;
    assert_eq!(audit.data()["audit_list"][0]["target"], id.as_str());
}
