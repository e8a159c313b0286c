//! The administrator's REST API (`/api/v1.0/admin/...`) over HTTP on a real server:
//! every endpoint does what it says, students get 403 and strangers 401 on each.

use reqwest::Method;
use serde_json::{Value, json};
use thindesk_server::compute::PowerOp;
use thindesk_shared::ConnectionType;
use thindesk_tests::{
    ADMIN, OTHER_STUDENT, Reply, STUDENT, TestServer, basic, launch_form, password_forms, token_forms,
};

fn admin_auth() -> String {
    basic(ADMIN.0, ADMIN.1)
}

async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
    server.call(method, &format!("/admin{path}"), Some(&admin_auth()), body).await
}

async fn csv(server: &TestServer, text: &str) -> Reply {
    let request = server
        .http
        .post(server.url("/api/v1.0/admin/users/import"))
        .header("Authorization", admin_auth())
        .header("Content-Type", "text/csv")
        .body(text.to_owned());
    thindesk_tests::reply(request.send().await.expect("sent")).await
}

const MAC: &str = "08:00:20:0A:8C:6D";

/// Every endpoint with a body that would work for an administrator.
fn every_endpoint() -> Vec<(Method, String, Option<Value>)> {
    let p = |m: Method, path: &str, body: Option<Value>| (m, path.to_owned(), body);
    vec![
        p(Method::GET, "/users", None),
        p(Method::POST, "/users", Some(json!({"name": "newbie", "password": "newbie-password"}))),
        p(Method::POST, "/users/import", Some(json!({"csv": "name,password\nkid1,kid1-password\n"}))),
        p(Method::PUT, &format!("/users/{}/password", STUDENT.0), Some(json!({"password": "hijacked-password"}))),
        p(Method::DELETE, &format!("/users/{}", OTHER_STUDENT.0), None),
        p(Method::GET, "/places", None),
        p(Method::POST, "/places", Some(json!({"name": "c301", "address": "x"}))),
        p(Method::DELETE, "/places/b201", None),
        p(Method::GET, "/terminals", None),
        p(Method::GET, "/terminals?state=waiting", None),
        p(Method::GET, "/terminals/pending", None),
        p(Method::POST, &format!("/terminals/{MAC}/approve"), None),
        p(Method::POST, &format!("/terminals/{MAC}/reject"), None),
        p(Method::POST, &format!("/terminals/{MAC}/move"), Some(json!({"place": "b201", "seat_number": "9"}))),
        p(Method::DELETE, &format!("/terminals/{MAC}"), None),
        p(Method::GET, "/settings", None),
        p(Method::PUT, "/settings", Some(json!({"terminal_registration_mode": "auto"}))),
        p(Method::GET, "/images", None),
        p(Method::POST, "/images", Some(json!({"name": "x", "disk": "/etc/hostname"}))),
        p(Method::DELETE, "/images/xubuntu", None),
        p(Method::GET, "/flavors", None),
        p(Method::POST, "/flavors", Some(json!({"name": "m1.x", "vcpus": 1, "ram": 128, "disk": 1}))),
        p(Method::DELETE, "/flavors/m1.tiny", None),
        p(Method::GET, "/desktops", None),
        p(Method::POST, "/desktops", Some(json!({"image": "xubuntu", "flavor": "m1.tiny", "all_students": true}))),
        p(Method::DELETE, "/desktops/DESKTOP", None),
        p(Method::POST, "/desktops/DESKTOP/assign", Some(json!({"user": OTHER_STUDENT.0}))),
        p(Method::POST, "/desktops/DESKTOP/action", Some(json!({"shutdown": null}))),
        p(Method::GET, "/instances", None),
        p(Method::DELETE, "/instances/VM", None),
        p(Method::GET, "/audit", None),
    ]
}

#[tokio::test]
async fn every_admin_endpoint_is_403_for_a_student_and_401_without_credentials_and_changes_nothing() {
    let server = TestServer::start().await;
    server.add_image("xubuntu", ConnectionType::Spice, "student", "os-password").await;
    let desktop = server.create_desktop(STUDENT.0, "lab").await;
    server
        .post("/terminals/registration", None, json!({"place": "b101", "seat_number": "1", "mac_address": MAC}))
        .await
        .data();
    let student_token = server.token(STUDENT).await;
    for (method, path, body) in every_endpoint() {
        let path = format!("/api/v1.0/admin{}", path.replace("DESKTOP", &desktop).replace("VM", "no-such-vm"));
        for student in [basic(STUDENT.0, STUDENT.1), student_token.clone()] {
            let reply = server.call(method.clone(), &path["/api/v1.0".len()..], Some(&student), body.clone()).await;
            assert!(reply.fail(403)["authorization"].is_string(), "{method} {path}: {reply:?}");
        }
        let reply = server.call(method.clone(), &path["/api/v1.0".len()..], None, body.clone()).await;
        reply.fail(401);
        assert!(reply.headers.contains_key("www-authenticate"), "{method} {path}");
        let wrong = server.call(method.clone(), &path["/api/v1.0".len()..], Some("Bearer nope"), body.clone()).await;
        wrong.fail(401);
    }
    // Nothing changed: the student's password, the users, the terminal, the desktop.
    server.get("/users/me/desktops", Some(&basic(STUDENT.0, STUDENT.1))).await.data();
    let users = admin(&server, Method::GET, "/users", None).await;
    assert_eq!(users.data()["user_list"].as_array().map(Vec::len), Some(3));
    assert_eq!(server.get(&format!("/terminals/{MAC}"), None).await.data()["state"], "WAITING");
    assert_eq!(server.services().desktops.list_all(None).expect("list").len(), 1);
    assert_eq!(server.services().terminals.registration_mode().expect("mode").as_str(), "approval");
    let log = admin(&server, Method::GET, "/audit?limit=1000", None).await;
    let changes: Vec<&Value> = log.data()["audit_list"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| {
            e["actor"] != "system"
                && !e["action"].as_str().is_some_and(|a| a.starts_with("login") || a.starts_with("token"))
        })
        .filter(|e| e["action"] != "terminal.register")
        .collect();
    assert!(changes.is_empty(), "refused calls changed something: {changes:?}");
}

#[tokio::test]
async fn the_admin_api_takes_every_credential_form_v1_takes() {
    let server = TestServer::start().await;
    let token = server.token(ADMIN).await;
    for authorization in password_forms(ADMIN.0, ADMIN.1).into_iter().chain(token_forms(&token)) {
        let reply = server.get("/admin/users", Some(&authorization)).await;
        assert!(reply.data()["user_list"].is_array(), "{authorization}");
    }
}

#[tokio::test]
async fn unknown_admin_paths_are_404_and_wrong_methods_405() {
    let server = TestServer::start().await;
    admin(&server, Method::GET, "/nothing", None).await.fail(404);
    let reply = admin(&server, Method::DELETE, "/users", None).await;
    reply.fail(405);
    assert_eq!(reply.headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET, POST"));
    admin(&server, Method::GET, "/terminals/pending/more", None).await.fail(404);
}

#[tokio::test]
async fn users_are_created_listed_reset_and_deleted() {
    let server = TestServer::start().await;
    let created =
        admin(&server, Method::POST, "/users", Some(json!({"name": "kim", "password": "kims-password"}))).await;
    assert_eq!(created.data(), &json!({"name": "kim", "is_admin": false}));
    let again = admin(&server, Method::POST, "/users", Some(json!({"name": "kim", "password": "kims-password"}))).await;
    again.fail(409);
    let bad = admin(&server, Method::POST, "/users", Some(json!({"name": "a b", "password": "short"}))).await;
    let errors = &bad.fail(400)["errors"];
    assert!(errors["name"][0].is_string() && errors["password"][0].is_string(), "{errors}");
    let teacher2 =
        admin(&server, Method::POST, "/users", Some(json!({"name": "t2", "password": "t2-password", "admin": true})))
            .await;
    assert_eq!(teacher2.data()["is_admin"], true);

    let list = admin(&server, Method::GET, "/users", None).await;
    let names: Vec<(&str, bool)> = list.data()["user_list"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| (u["name"].as_str().unwrap_or_default(), u["is_admin"].as_bool().unwrap_or_default()))
        .collect();
    assert_eq!(names, [("kim", false), ("other", false), ("student", false), ("t2", true), ("teacher", true)]);
    assert!(!list.body.to_string().contains("argon2"), "no hashes in the listing");

    let token = server.token(("kim", "kims-password")).await;
    admin(&server, Method::POST, "/users/kim/password", Some(json!({"password": "new-kims-password"}))).await.data();
    server.get("/users/me/desktops", Some(&token)).await.fail(401);
    server.get("/users/me/desktops", Some(&basic("kim", "kims-password"))).await.fail(401);
    server.get("/users/me/desktops", Some(&basic("kim", "new-kims-password"))).await.data();
    admin(&server, Method::PUT, "/users/nobody/password", Some(json!({"password": "whatever-long"}))).await.fail(404);

    admin(&server, Method::DELETE, "/users/kim", None).await.data();
    server.get("/users/me/desktops", Some(&basic("kim", "new-kims-password"))).await.fail(401);
    admin(&server, Method::DELETE, "/users/kim", None).await.fail(404);
    server.create_desktop(STUDENT.0, "lab").await;
    admin(&server, Method::DELETE, "/users/student", None).await.fail(409);
}

#[tokio::test]
async fn a_csv_class_is_imported_whole_or_not_at_all() {
    let server = TestServer::start().await;
    let bad = csv(&server, "name,password,admin\nann,ann-password\nbob,short\nann,ann-password2\ncat,cat-password,maybe\nstudent,student-password\n").await;
    let data = bad.fail(400);
    let lines: Vec<u64> = data["lines"].as_array().expect("lines").iter().filter_map(|l| l["line"].as_u64()).collect();
    assert_eq!(lines, [3, 4, 5, 6], "{data}");
    assert!(data["lines"][0]["error"].as_str().is_some_and(|e| e.contains("password")), "{data}");
    assert!(data["lines"][3]["error"].as_str().is_some_and(|e| e.contains("exists")), "{data}");
    server.get("/users/me/is_administrator", Some(&basic("ann", "ann-password"))).await.fail(401);

    let good = csv(
        &server,
        "name,password,admin\r\nann,ann-password\r\n\"bob\",\"bob,pass\"\"word\"\r\n\r\ncat,cat-password,yes\r\n",
    )
    .await;
    assert_eq!(good.data(), &json!({"created": ["ann", "bob", "cat"]}));
    assert_eq!(server.get("/users/me/is_administrator", Some(&basic("ann", "ann-password"))).await.data(), "false");
    assert_eq!(server.get("/users/me/is_administrator", Some(&basic("bob", "bob,pass\"word"))).await.data(), "false");
    assert_eq!(server.get("/users/me/is_administrator", Some(&basic("cat", "cat-password"))).await.data(), "true");

    let as_json =
        admin(&server, Method::POST, "/users/import", Some(json!({"csv": "name,password\ndan,dan-password\n"}))).await;
    assert_eq!(as_json.data(), &json!({"created": ["dan"]}));
    csv(&server, "name,password\n").await.fail(400);

    // A browser's or `curl -F file=@class.csv`'s upload works too.
    const BOUNDARY: &str = "----thindesk-upload";
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"class.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nname,password\nemma,emma-password\n\r\n--{BOUNDARY}--\r\n"
    );
    let request = server
        .http
        .post(server.url("/api/v1.0/admin/users/import"))
        .header("Authorization", admin_auth())
        .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body);
    let uploaded = thindesk_tests::reply(request.send().await.expect("sent")).await;
    assert_eq!(uploaded.data(), &json!({"created": ["emma"]}));
}

#[tokio::test]
async fn places_are_created_listed_and_deleted_unless_in_use() {
    let server = TestServer::start().await;
    let created =
        admin(&server, Method::POST, "/places", Some(json!({"name": " c301 ", "address": "Building C"}))).await;
    assert_eq!(created.data(), &json!({"name": "c301", "address": "Building C"}));
    admin(&server, Method::POST, "/places", Some(json!({"name": "c301"}))).await.fail(409);
    admin(&server, Method::POST, "/places", Some(json!({"address": "x"}))).await.fail(400);
    let list = admin(&server, Method::GET, "/places", None).await;
    assert_eq!(list.data()["place_list"][2], json!({"name": "c301", "address": "Building C"}));
    assert_eq!(server.get("/places", None).await.data()["place_list"].as_array().map(Vec::len), Some(3));
    server
        .post("/terminals/registration", None, json!({"place": "c301", "seat_number": "1", "mac_address": MAC}))
        .await
        .data();
    admin(&server, Method::DELETE, "/places/c301", None).await.fail(409);
    admin(&server, Method::DELETE, &format!("/terminals/{MAC}"), None).await.data();
    admin(&server, Method::DELETE, "/places/c301", None).await.data();
    admin(&server, Method::DELETE, "/places/c301", None).await.fail(404);
}

#[tokio::test]
async fn terminals_are_listed_approved_rejected_moved_and_deleted() {
    let server = TestServer::start().await;
    for (mac, seat) in [(MAC, "1"), ("08:00:20:0A:8C:6E", "2")] {
        let reply = server
            .post("/terminals/registration", None, json!({"place": "b101", "seat_number": seat, "mac_address": mac}))
            .await;
        assert_eq!(reply.data()["terminal_state"], "WAITING");
    }
    let pending = admin(&server, Method::GET, "/terminals/pending", None).await;
    assert_eq!(pending.data()["terminal_list"].as_array().map(Vec::len), Some(2));

    let approved = admin(&server, Method::POST, "/terminals/0800200a8c6d/approve", None).await;
    assert_eq!(approved.data()["state"], "APPROVED");
    assert_eq!(server.get(&format!("/terminals/{MAC}"), None).await.data()["state"], "APPROVED");
    admin(&server, Method::POST, "/terminals/08-00-20-0a-8c-6e/reject", None).await.data();
    assert_eq!(server.get("/terminals/08:00:20:0A:8C:6E", None).await.data()["state"], "REJECTED");
    let waiting = admin(&server, Method::GET, "/terminals?state=waiting", None).await;
    assert_eq!(waiting.data()["terminal_list"], json!([]));
    let approved_list = admin(&server, Method::GET, "/terminals?state=APPROVED", None).await;
    assert_eq!(approved_list.data()["terminal_list"][0]["mac_address"], MAC);
    admin(&server, Method::GET, "/terminals?state=lost", None).await.fail(400);
    assert_eq!(
        admin(&server, Method::GET, "/terminals", None).await.data()["terminal_list"].as_array().map(Vec::len),
        Some(2)
    );

    let moved = admin(
        &server,
        Method::POST,
        &format!("/terminals/{MAC}/move"),
        Some(json!({"place": "b201", "seat_number": 7})),
    )
    .await;
    assert_eq!((moved.data()["place"].as_str(), moved.data()["seat_number"].as_str()), (Some("b201"), Some("7")));
    let taken = admin(
        &server,
        Method::POST,
        "/terminals/08:00:20:0A:8C:6E/move",
        Some(json!({"place": "b201", "seat_number": "7"})),
    )
    .await;
    assert_eq!(taken.fail(409), &json!("place and seat number existed"));
    let nowhere = admin(
        &server,
        Method::POST,
        &format!("/terminals/{MAC}/move"),
        Some(json!({"place": "mars", "seat_number": "1"})),
    )
    .await;
    assert!(nowhere.fail(400)["errors"]["place"][0].is_string());

    admin(&server, Method::POST, "/terminals/08:00:20:0A:8C:99/approve", None).await.fail(404);
    admin(&server, Method::POST, "/terminals/nonsense/approve", None).await.fail(400);
    admin(&server, Method::DELETE, &format!("/terminals/{MAC}"), None).await.data();
    assert_eq!(server.get(&format!("/terminals/{MAC}"), None).await.fail(404), &json!("terminal not exist"));
}

#[tokio::test]
async fn the_registration_mode_is_read_and_set() {
    let server = TestServer::start().await;
    let settings = admin(&server, Method::GET, "/settings", None).await;
    assert_eq!(settings.data(), &json!({"terminal_registration_mode": "approval"}));
    let set = admin(&server, Method::PUT, "/settings", Some(json!({"terminal_registration_mode": "auto"}))).await;
    assert_eq!(set.data(), &json!({"terminal_registration_mode": "auto"}));
    let reply = server
        .post("/terminals/registration", None, json!({"place": "b101", "seat_number": "1", "mac_address": MAC}))
        .await;
    assert_eq!(reply.data()["terminal_state"], "APPROVED");
    admin(&server, Method::POST, "/settings", Some(json!({"terminal_registration_mode": "open"}))).await.fail(400);
    assert_eq!(admin(&server, Method::GET, "/settings", None).await.data()["terminal_registration_mode"], "auto");
}

#[tokio::test]
async fn images_and_flavors_are_listed_added_and_deleted() {
    let server = TestServer::start().await;
    let disk = server.data_dir().join("win.qcow2");
    std::fs::write(&disk, b"QFI\xfb").expect("disk");
    let image = json!({"name": "win10", "disk": disk, "connection": "rdp", "os_username": "Administrator",
                       "os_password": "image-os-password"});
    admin(&server, Method::POST, "/images", Some(image.clone())).await.data();
    admin(&server, Method::POST, "/images", Some(image)).await.fail(409);
    admin(&server, Method::POST, "/images", Some(json!({"name": "x", "disk": "relative.qcow2"}))).await.fail(400);
    let images = admin(&server, Method::GET, "/images", None).await;
    let listed = &images.data()["image_list"][0];
    assert_eq!((listed["name"].as_str(), listed["default_connection_type"].as_str()), (Some("win10"), Some("rdp")));
    assert!(!images.body.to_string().contains("image-os-password"), "no OS password in the listing");

    admin(&server, Method::POST, "/flavors", Some(json!({"name": "lab.big", "vcpus": 4, "ram": 8192, "disk": 60})))
        .await
        .data();
    admin(&server, Method::POST, "/flavors", Some(json!({"name": "zero", "vcpus": 0, "ram": 8192, "disk": 60})))
        .await
        .fail(400);
    let flavors = admin(&server, Method::GET, "/flavors", None).await;
    assert_eq!(flavors.data()["flavor_list"][3], json!({"name": "lab.big", "vcpus": 4, "ram": 8192, "disk": 60}));

    admin(&server, Method::POST, "/desktops", Some(json!({"image": "win10", "flavor": "lab.big", "user": STUDENT.0})))
        .await
        .data();
    admin(&server, Method::DELETE, "/images/win10", None).await.fail(409);
    admin(&server, Method::DELETE, "/flavors/lab.big", None).await.fail(409);
    admin(&server, Method::DELETE, "/flavors/m1.tiny", None).await.data();
    admin(&server, Method::DELETE, "/flavors/m1.tiny", None).await.fail(404);
    admin(&server, Method::DELETE, "/images/nope", None).await.fail(404);
}

#[tokio::test]
async fn desktops_are_given_to_one_user_a_list_or_every_student_then_assigned_powered_and_deleted() {
    let server = TestServer::start().await;
    server.add_image("xubuntu", ConnectionType::Spice, "student", "os-password").await;
    let one = admin(
        &server,
        Method::POST,
        "/desktops",
        Some(json!({"image": "xubuntu", "flavor": "m1.tiny", "user": STUDENT.0, "name": "Lab"})),
    )
    .await;
    let id = one.data()["id"].as_str().expect("id").to_owned();
    assert!(server.compute.spec(&id).is_some(), "the machine is defined");
    let listed = server.get("/users/me/desktops", Some(&basic(STUDENT.0, STUDENT.1))).await;
    assert_eq!(listed.data()["desktop_list"][0]["name"], "Lab");
    admin(&server, Method::POST, "/desktops", Some(json!({"image": "xubuntu", "flavor": "m1.tiny", "user": "nobody"})))
        .await
        .fail(404);
    admin(&server, Method::POST, "/desktops", Some(json!({"image": "nope", "flavor": "m1.tiny", "user": STUDENT.0})))
        .await
        .fail(400);
    admin(&server, Method::POST, "/desktops", Some(json!({"image": "xubuntu", "flavor": "m1.tiny"}))).await.fail(400);

    let class = admin(
        &server,
        Method::POST,
        "/desktops",
        Some(json!({"image": "xubuntu", "flavor": "m1.tiny", "users": [STUDENT.0, "ghost", OTHER_STUDENT.0]})),
    )
    .await;
    let data = class.data();
    assert_eq!(data["created"].as_array().map(Vec::len), Some(2), "{data}");
    assert_eq!(data["failed"][0]["user"], "ghost", "{data}");
    let everyone = admin(
        &server,
        Method::POST,
        "/desktops",
        Some(json!({"image": "xubuntu", "flavor": "m1.small", "all_students": true})),
    )
    .await;
    let owners: Vec<&str> =
        everyone.data()["created"].as_array().expect("created").iter().filter_map(|c| c["user"].as_str()).collect();
    assert_eq!(owners, [OTHER_STUDENT.0, STUDENT.0], "every non-administrator, no one else");

    let all = admin(&server, Method::GET, "/desktops", None).await;
    assert_eq!(all.data()["desktop_list"].as_array().map(Vec::len), Some(5));
    let mine = admin(&server, Method::GET, &format!("/desktops?user={}", STUDENT.0), None).await;
    assert_eq!(mine.data()["desktop_list"].as_array().map(Vec::len), Some(3));

    admin(&server, Method::POST, &format!("/desktops/{id}/assign"), Some(json!({"user": OTHER_STUDENT.0})))
        .await
        .data();
    let others = server.get("/users/me/desktops", Some(&basic(OTHER_STUDENT.0, OTHER_STUDENT.1))).await;
    assert!(others.data()["desktop_list"].as_array().expect("list").iter().any(|d| d["id"] == id.as_str()));
    admin(&server, Method::POST, &format!("/desktops/{id}/assign"), Some(json!({"user": "ghost"}))).await.fail(404);

    admin(&server, Method::POST, &format!("/desktops/{id}/action"), Some(json!({"resume": null}))).await.data();
    admin(&server, Method::POST, &format!("/desktops/{id}/action"), Some(json!({"action": "shutdown"}))).await.data();
    assert_eq!(server.compute.operations(), [(id.clone(), PowerOp::Start), (id.clone(), PowerOp::Shutdown)]);
    admin(&server, Method::POST, &format!("/desktops/{id}/action"), Some(json!({"fly": null}))).await.fail(400);

    admin(&server, Method::DELETE, &format!("/desktops/{id}"), None).await.data();
    assert!(server.compute.spec(&id).is_none(), "the machine is freed");
    admin(&server, Method::DELETE, &format!("/desktops/{id}"), None).await.fail(404);
}

#[tokio::test]
async fn cloud_instances_are_listed_without_tickets_and_destroyed() {
    let server = TestServer::start().await;
    server.add_image("xubuntu", ConnectionType::Spice, "student", "os-password").await;
    let launched = server.cloud(&launch_form("xubuntu", "m1.tiny", "false", "exam")).await;
    let vm_id = launched.body["vm_id"].as_str().expect("vm_id").to_owned();
    let ticket = launched.body["spice_password"].as_str().expect("ticket").to_owned();
    let list = admin(&server, Method::GET, "/instances", None).await;
    let instance = &list.data()["instance_list"][0];
    assert_eq!((instance["vm_id"].as_str(), instance["name"].as_str()), (Some(vm_id.as_str()), Some("exam")));
    assert_eq!(instance["status"], "ACTIVE");
    assert!(!list.body.to_string().contains(&ticket), "no SPICE ticket in the listing");
    admin(&server, Method::DELETE, &format!("/instances/{vm_id}"), None).await.data();
    assert!(server.compute.spec(&vm_id).is_none());
    admin(&server, Method::DELETE, &format!("/instances/{vm_id}"), None).await.fail(404);
    assert_eq!(admin(&server, Method::GET, "/instances", None).await.data()["instance_list"], json!([]));
}

#[tokio::test]
async fn the_audit_log_is_filtered_by_actor_action_time_and_limit() {
    let server = TestServer::start().await;
    for n in 0..3 {
        admin(&server, Method::POST, "/places", Some(json!({"name": format!("room{n}")}))).await.data();
    }
    server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.data();
    let all = admin(&server, Method::GET, "/audit", None).await;
    let entries = all.data()["audit_list"].as_array().expect("list").clone();
    assert!(entries.len() >= 5, "{entries:?}");
    let places = admin(&server, Method::GET, "/audit?action=place", None).await;
    let places = places.data()["audit_list"].as_array().expect("list").clone();
    let targets: Vec<&str> = places.iter().filter_map(|e| e["target"].as_str()).collect();
    assert_eq!(targets, ["room2", "room1", "room0", "b201", "b101"], "newest first");
    assert!(places.iter().all(|e| e["action"] == "place.create"));
    let by_teacher = admin(&server, Method::GET, &format!("/audit?actor={}&action=place.create", ADMIN.0), None).await;
    let by_teacher = by_teacher.data()["audit_list"].as_array().expect("list").clone();
    assert_eq!(by_teacher.len(), 3, "seeding was done by the system");
    assert!(by_teacher.iter().all(|e| e["address"] == "127.0.0.1"), "{by_teacher:?}");
    let one = admin(&server, Method::GET, "/audit?limit=1", None).await;
    assert_eq!(one.data()["audit_list"].as_array().map(Vec::len), Some(1));
    let future = admin(&server, Method::GET, "/audit?since=2999-01-01", None).await;
    assert_eq!(future.data()["audit_list"], json!([]));
    let past = admin(&server, Method::GET, "/audit?until=2000-01-01T00:00:00Z", None).await;
    assert_eq!(past.data()["audit_list"], json!([]));
    let now = admin(&server, Method::GET, "/audit?since=2000-01-01&until=2999-01-01&action=token", None).await;
    assert_eq!(now.data()["audit_list"][0]["actor"], STUDENT.0);
    admin(&server, Method::GET, "/audit?since=yesterday", None).await.fail(400);
    admin(&server, Method::GET, "/audit?limit=0", None).await.fail(400);
}
