//! The three faces of administration (the admin API, the console's forms and the
//! command line) read the same input the same way: for each operation the three have
//! in common, the same wrong input gets the same field error in each, and changes
//! nothing.

use super::cli::{basic, start, thindesk};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use std::path::Path;

pub(super) const ADMIN: (&str, &str) = ("boss", "boss-password");

/// One operation given one wrong input through each face.
struct Case {
    field: &'static str,
    /// What the field's message says (quotes left out: the console escapes them).
    message: &'static str,
    api: (&'static str, &'static str, Value),
    console: (&'static str, &'static [(&'static str, &'static str)]),
    cli: (&'static [&'static str], &'static str),
}

/// 65 characters: one more than a place's name may have.
const LONG_NAME: &str = "b101-b101-b101-b101-b101-b101-b101-b101-b101-b101-b101-b101-b101-";

/// A base disk path that is absolute but names no file.
const MISSING_DISK: &str = "/var/lib/thindesk/images/win.qcow2";

fn cases() -> Vec<Case> {
    vec![
        Case {
            field: "password",
            message: "must be at least 8 characters long",
            api: ("POST", "users", json!({"name": "kim", "password": "short"})),
            console: ("users/create", &[("name", "kim"), ("password", "short")]),
            cli: (&["user", "add", "kim"], "short\n"),
        },
        Case {
            field: "name",
            message: "may not contain ':', spaces or control characters",
            api: ("POST", "users", json!({"name": "k:im", "password": "long-enough"})),
            console: ("users/create", &[("name", "k:im"), ("password", "long-enough")]),
            cli: (&["user", "add", "k:im"], "long-enough\n"),
        },
        Case {
            field: "password",
            message: "must be at least 8 characters long",
            api: ("PUT", "users/student/password", json!({"password": "short"})),
            console: ("users/password", &[("name", "student"), ("password", "short")]),
            cli: (&["user", "passwd", "student"], "short\n"),
        },
        Case {
            field: "vcpus",
            message: "must be a whole number",
            api: ("POST", "flavors", json!({"name": "lab", "vcpus": "two", "ram": 1024, "disk": 10})),
            console: ("flavors/create", &[("name", "lab"), ("vcpus", "two"), ("ram", "1024"), ("disk", "10")]),
            cli: (&["flavor", "add", "lab", "--vcpus", "two", "--ram", "1024", "--disk", "10"], ""),
        },
        Case {
            field: "ram",
            message: "must be at least 64 MiB",
            api: ("POST", "flavors", json!({"name": "lab", "vcpus": 1, "ram": 32, "disk": 10})),
            console: ("flavors/create", &[("name", "lab"), ("vcpus", "1"), ("ram", "32"), ("disk", "10")]),
            cli: (&["flavor", "add", "lab", "--vcpus", "1", "--ram", "32", "--disk", "10"], ""),
        },
        Case {
            field: "connection",
            message: "must be spice or rdp",
            api: ("POST", "images", json!({"name": "win", "disk": MISSING_DISK, "connection": "vnc"})),
            console: ("images/create", &[("name", "win"), ("disk", MISSING_DISK), ("connection", "vnc")]),
            cli: (&["image", "add", "win", "--disk", MISSING_DISK, "--connection", "vnc"], "os-password\n"),
        },
        Case {
            field: "disk",
            message: "must be an absolute path",
            api: ("POST", "images", json!({"name": "win", "disk": "win.qcow2"})),
            console: ("images/create", &[("name", "win"), ("disk", "win.qcow2"), ("connection", "spice")]),
            cli: (&["image", "add", "win", "--disk", "win.qcow2"], "os-password\n"),
        },
        Case {
            field: "terminal_registration_mode",
            message: "must be auto, approval or closed",
            api: ("PUT", "settings", json!({"terminal_registration_mode": "sometimes"})),
            console: ("settings", &[("terminal_registration_mode", "sometimes")]),
            cli: (&["setting", "set", "terminal_registration_mode", "sometimes"], ""),
        },
        Case {
            field: "mac_address",
            message: "is not a MAC address",
            api: ("POST", "terminals/zz-top/approve", json!({})),
            console: ("terminals/approve", &[("mac", "zz-top")]),
            cli: (&["terminal", "approve", "zz-top"], ""),
        },
        Case {
            field: "mac_address",
            message: "is not a MAC address",
            api: ("POST", "terminals/zz-top/reject", json!({})),
            console: ("terminals/reject", &[("mac", "zz-top")]),
            cli: (&["terminal", "reject", "zz-top"], ""),
        },
        Case {
            field: "mac_address",
            message: "is not a MAC address",
            api: ("DELETE", "terminals/zz-top", json!({})),
            console: ("terminals/delete", &[("mac", "zz-top")]),
            cli: (&["terminal", "delete", "zz-top"], ""),
        },
        Case {
            field: "name",
            message: "must be 1 to 64 printable characters",
            api: ("POST", "places", json!({"name": LONG_NAME, "address": "floor 1"})),
            console: ("places/create", &[("name", LONG_NAME), ("address", "floor 1")]),
            cli: (&["place", "add", LONG_NAME, "--address", "floor 1"], ""),
        },
        Case {
            field: "image",
            message: "there is no image named",
            api: ("POST", "desktops", json!({"user": "student", "image": "nope", "flavor": "m1.small"})),
            console: (
                "desktops/create",
                &[("class", "users"), ("users", "student"), ("image", "nope"), ("flavor", "m1.small")],
            ),
            cli: (&["desktop", "create", "--user", "student", "--image", "nope", "--flavor", "m1.small"], ""),
        },
    ]
}

/// What the server's data says, to check that a refusal changed nothing.
fn snapshot(data: &Path) -> String {
    ["user", "flavor", "image", "setting", "terminal", "desktop", "place"]
        .iter()
        .map(|kind| String::from_utf8_lossy(&thindesk(data, &[kind, "list"], "").stdout).into_owned())
        .collect()
}

/// The administrator's console session cookie and its CSRF token, from the real login
/// form.
pub(super) async fn console_session(http: &reqwest::Client, url: &str) -> (String, String) {
    console_session_as(http, url, ADMIN).await
}

pub(super) async fn console_session_as(
    http: &reqwest::Client,
    url: &str,
    (user, password): (&str, &str),
) -> (String, String) {
    let page = http.get(format!("{url}/admin/login")).send().await.expect("login page");
    let login_cookie = cookie(&page, "td_login");
    let token = hidden(&page.text().await.expect("html"), "login_token");
    let response = http
        .post(format!("{url}/admin/login"))
        .header("Cookie", format!("td_login={login_cookie}"))
        .form(&[("login_token", token.as_str()), ("user", user), ("password", password)])
        .send()
        .await
        .expect("login");
    let session = cookie(&response, "td_session");
    let page = http
        .get(format!("{url}/admin/settings"))
        .header("Cookie", format!("td_session={session}"))
        .send()
        .await
        .expect("page");
    (session.clone(), hidden(&page.text().await.expect("html"), "csrf"))
}

fn cookie(response: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&prefix).map(|rest| rest.split(';').next().unwrap_or("").to_owned()))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in the page")) + marker.len();
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_wrong_input_gets_the_same_field_error_through_the_api_the_console_and_the_cli() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let server = start(&data).await;
    let url = server.url();
    assert!(thindesk(&data, &["user", "add", ADMIN.0, "--admin"], "boss-password\n").status.success());
    assert!(thindesk(&data, &["user", "add", "student"], "student-password\n").status.success());
    let http = reqwest::Client::builder().redirect(Policy::none()).build().expect("client");
    let (session, csrf) = console_session(&http, &url).await;
    let before = snapshot(&data);

    for case in cases() {
        let what = format!("{} {:?}", case.field, case.message);

        let (method, path, body) = &case.api;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let reply = http
            .request(method, format!("{url}/api/v1.0/admin/{path}"))
            .header("Authorization", basic(ADMIN.0, ADMIN.1))
            .json(body)
            .send()
            .await
            .expect("api");
        assert_eq!(reply.status().as_u16(), 400, "api, {what}");
        let reply: Value = reply.json().await.expect("json");
        let messages = reply["data"]["errors"][case.field].to_string();
        assert!(messages.contains(case.message), "api, {what}: {reply}");

        let (path, fields) = case.console;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        let posted = http
            .post(format!("{url}/admin/{path}"))
            .header("Cookie", format!("td_session={session}"))
            .form(&form)
            .send()
            .await
            .expect("console");
        assert_eq!(posted.status().as_u16(), 303, "console, {what}");
        let back = posted.headers().get("location").and_then(|l| l.to_str().ok()).expect("redirect").to_owned();
        let page = http
            .get(format!("{url}{back}"))
            .header("Cookie", format!("td_session={session}"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
            .replace("&#39;", "'")
            .replace("&quot;", "\"");
        let flash = page.split("flash error").nth(1).unwrap_or_default();
        let flash = flash.split("</div>").next().unwrap_or_default();
        assert!(flash.contains(case.field) && flash.contains(case.message), "console, {what}: {flash:?}");

        let (args, stdin) = case.cli;
        let output = thindesk(&data, args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "cli, {what}");
        assert!(
            stderr.contains(&format!("{}: ", case.field)) && stderr.contains(case.message),
            "cli, {what}: {stderr}"
        );
    }
    assert_eq!(snapshot(&data), before, "no refused input changed anything");
    server.shutdown().await;
}
