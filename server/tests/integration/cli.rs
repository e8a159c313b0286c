//! The `thindesk-server` binary: administration commands against a data directory
//! that a running server is using at the same time, and `serve` itself.

use base64::Engine;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use thindesk_server::compute::NoCompute;
use thindesk_server::{Config, RunningServer};

const BINARY: &str = env!("CARGO_BIN_EXE_thindesk-server");
/// Given to `serve` in `THINDESK_CLOUD_API_KEY`.
const CLOUD_KEY: &str = "cloud-api-key-from-the-environment";

/// Runs the binary on `data_dir` with `stdin` as its standard input.
pub(crate) fn thindesk(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BINARY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("THINDESK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    if let Some(mut input) = child.stdin.take() {
        // A command refused for its arguments may exit before reading its input.
        if let Err(error) = input.write_all(stdin.as_bytes()) {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "stdin not written: {error}");
        }
    }
    child.wait_with_output().expect("binary ends")
}

/// Runs a command that must succeed, and returns what it printed.
pub(crate) fn ok(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    let output = thindesk(data_dir, args, stdin);
    assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail, and returns its error message.
pub(crate) fn refused(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    let output = thindesk(data_dir, args, stdin);
    assert!(!output.status.success(), "{args:?} should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) async fn start(data_dir: &Path) -> RunningServer {
    let config =
        Config { listen: "127.0.0.1:0".parse().expect("addr"), data_dir: data_dir.to_owned(), ..Config::default() };
    RunningServer::start(config, Arc::new(NoCompute)).await.expect("server starts")
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

async fn get(url: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(url).json(&body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_administrator_comes_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path()).await;
    let url = server.url();
    let (status, _) = get(&format!("{url}/api/v1.0/token"), Some(&basic("boss", "boss-password"))).await;
    assert_eq!(status, 401, "no account exists until one is made");
    let printed = ok(dir.path(), &["user", "add", "boss", "--admin"], "boss-password\n");
    assert!(printed.contains("administrator boss"), "{printed}");
    let (status, body) =
        get(&format!("{url}/api/v1.0/users/me/is_administrator"), Some(&basic("boss", "boss-password"))).await;
    assert_eq!((status, &body["data"]), (200, &json!("true")));
    let listed = ok(dir.path(), &["user", "list"], "");
    assert!(listed.lines().any(|l| l.starts_with("boss") && l.contains("yes")), "{listed}");
    assert!(!listed.contains("argon2"), "hashes are never shown");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terminals_are_approved_rejected_and_deleted_while_the_server_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path()).await;
    let url = server.url();
    ok(dir.path(), &["place", "add", "b101", "--address", "one floor"], "");
    assert!(ok(dir.path(), &["place", "list"], "").contains("one floor"));
    assert!(ok(dir.path(), &["setting", "list"], "").contains("terminal_registration_mode = approval"));
    let registration = json!({"place": "b101", "seat_number": "01", "mac_address": "08:00:20:0a:8c:6d"});
    let (status, body) = post(&format!("{url}/api/v1.0/terminals/registration"), registration).await;
    assert_eq!((status, &body["data"]["terminal_state"]), (200, &json!("WAITING")));

    let waiting = ok(dir.path(), &["terminal", "list", "--state", "waiting"], "");
    assert!(waiting.contains("08:00:20:0A:8C:6D"), "{waiting}");
    let lookup = format!("{url}/api/v1.0/terminals/08:00:20:0A:8C:6D");
    ok(dir.path(), &["terminal", "approve", "08-00-20-0A-8C-6D"], "");
    assert_eq!(get(&lookup, None).await.1["data"]["state"], "APPROVED");
    assert!(ok(dir.path(), &["terminal", "list", "--state", "waiting"], "").lines().count() == 1, "only the header");
    ok(dir.path(), &["terminal", "reject", "0800200a8c6d"], "");
    assert_eq!(get(&lookup, None).await.1["data"]["state"], "REJECTED");
    ok(dir.path(), &["terminal", "delete", "08:00:20:0A:8C:6D"], "");
    assert_eq!(get(&lookup, None).await.0, 404);

    ok(dir.path(), &["setting", "set", "terminal_registration_mode", "auto"], "");
    let again = json!({"place": "b101", "seat_number": "01", "mac_address": "08:00:20:0a:8c:6d"});
    let (_, body) = post(&format!("{url}/api/v1.0/terminals/registration"), again).await;
    assert_eq!(body["data"]["terminal_state"], "APPROVED");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_set_from_the_command_line_revokes_the_users_tokens() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path()).await;
    let url = server.url();
    ok(dir.path(), &["user", "add", "kim"], "first-password\n");
    let (_, body) = get(&format!("{url}/api/v1.0/token"), Some(&basic("kim", "first-password"))).await;
    let token = body["data"]["token"]["id"].as_str().expect("token").to_owned();
    let desktops = format!("{url}/api/v1.0/users/me/desktops");
    assert_eq!(get(&desktops, Some(&token)).await.0, 200);
    ok(dir.path(), &["user", "passwd", "kim"], "second-password\r\n");
    assert_eq!(get(&desktops, Some(&token)).await.0, 401);
    assert_eq!(get(&desktops, Some(&basic("kim", "second-password"))).await.0, 200);
    ok(dir.path(), &["user", "admin", "kim", "true"], "");
    let admin = format!("{url}/api/v1.0/users/me/is_administrator");
    assert_eq!(get(&admin, Some(&basic("kim", "second-password"))).await.1["data"], "true");
    ok(dir.path(), &["user", "delete", "kim"], "");
    assert_eq!(get(&desktops, Some(&basic("kim", "second-password"))).await.0, 401);
    server.shutdown().await;
}

#[test]
fn mistakes_are_explained_and_change_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    assert!(refused(data, &["user", "add", "amy"], "short\n").contains("at least 8"));
    assert!(refused(data, &["user", "add", "a:b"], "long-enough\n").contains("name"));
    assert!(refused(data, &["user", "add", "amy"], "").contains("no password"));
    ok(data, &["user", "add", "amy"], "long-enough\n");
    assert!(refused(data, &["user", "add", "amy"], "long-enough\n").contains("exists"));
    assert!(refused(data, &["user", "passwd", "nobody"], "long-enough\n").contains("not found"));
    assert!(refused(data, &["terminal", "approve", "08:00:20:0A:8C:6D"], "").contains("terminal not exist"));
    assert!(refused(data, &["terminal", "approve", "not-a-mac"], "").contains("not a MAC address"));
    assert!(
        refused(data, &["setting", "set", "terminal_registration_mode", "sometimes"], "")
            .contains("auto, approval or closed")
    );
    assert!(refused(data, &["setting", "set", "colour", "blue"], "").contains("unknown setting"));
    assert!(refused(data, &["place", "delete", "nowhere"], "").contains("not found"));
    assert_eq!(ok(data, &["user", "list"], "").lines().count(), 2, "header and amy");
}

#[test]
fn a_bad_configuration_file_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:5000\"\ntoken_tll = 60\n").expect("write");
    let output = Command::new(BINARY)
        .args(["--config", file.to_str().expect("utf-8 path"), "user", "list"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("token_tll"));
}

/// `serve` as an operator runs it: configured by environment, logging to stderr,
/// stopped by SIGTERM. Its log must not hold any password or token.
#[tokio::test(flavor = "multi_thread")]
async fn serve_logs_requests_without_secrets_and_stops_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("dir");
    ok(dir.path(), &["user", "add", "lee"], "lee-secret-password\n");
    let mut child = tokio::process::Command::new(BINARY)
        .args(["serve"])
        .env("THINDESK_DATA_DIR", dir.path())
        .env("THINDESK_LISTEN", "127.0.0.1:0")
        .env("THINDESK_LOG", "debug")
        .env("THINDESK_CLOUD_API_KEY", CLOUD_KEY)
        .env_remove("THINDESK_CONFIG")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let mut log = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let address = loop {
        let line = log.next_line().await.expect("log readable").expect("server logs its address before exiting");
        seen.push(line.clone());
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    let url = format!("http://{address}/api/v1.0");
    let (status, body) = get(&format!("{url}/token"), Some("lee:lee-secret-password")).await;
    assert_eq!(status, 200);
    let token = body["data"]["token"]["id"].as_str().expect("token").to_owned();
    assert_eq!(get(&format!("{url}/users/me/desktops"), Some(&token)).await.0, 200);
    assert_eq!(get(&format!("{url}/token"), Some("lee:wrong-guess-password")).await.0, 401);
    let cloud = |key: &'static str| {
        let request = reqwest::Client::new()
            .post(format!("http://{address}/cloud_api"))
            .header("X-Api-Key", key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("command=list_flavors");
        async move { request.send().await.expect("request").json::<Value>().await.expect("json")["ret_code"].clone() }
    };
    assert_eq!(cloud("not-the-cloud-api-key").await, 9, "the key from the environment is required");
    assert_eq!(cloud(CLOUD_KEY).await, 0);

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(killed.success());
    while let Some(line) = log.next_line().await.expect("log readable") {
        seen.push(line);
    }
    let status = child.wait().await.expect("exits");
    assert!(status.success(), "a SIGTERM is a clean stop: {status:?}");
    let log = seen.join("\n");
    assert!(log.contains("/api/v1.0/users/me/desktops"), "requests are logged: {log}");
    for secret in ["lee-secret-password", "wrong-guess-password", token.as_str(), CLOUD_KEY, "not-the-cloud-api-key"] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

/// Images and flavors added while the server runs are in the cloud API's catalogue at
/// once; the guest's password comes from stdin, never from an argument.
#[tokio::test(flavor = "multi_thread")]
async fn images_and_flavors_are_managed_from_the_command_line_while_the_server_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let server = start(&data).await;
    let disk = dir.path().join("xubuntu.qcow2");
    std::fs::write(&disk, b"QFI\xfb").expect("disk");
    let disk = disk.to_str().expect("utf-8 path");

    let added = ok(&data, &["image", "add", "xubuntu", "--disk", disk, "--os-username", "student"], "os-secret-pw\n");
    assert!(added.contains("added image xubuntu"), "{added}");
    let refused_argv = refused(&data, &["image", "add", "win", "--disk", disk, "--os-password", "in-argv"], "");
    assert!(refused_argv.contains("--os-password"), "there is no way to pass it as an argument: {refused_argv}");
    let listed = ok(&data, &["image", "list"], "");
    let row = listed.lines().find(|l| l.starts_with("xubuntu")).expect("listed");
    assert!(row.contains("spice") && row.contains("student") && row.contains(disk), "{row}");
    assert!(!listed.contains("os-secret-pw"), "the OS password is never shown");
    let stored = thindesk_server::store::Store::open(&data).expect("store").image_by_name("xubuntu").expect("query");
    assert_eq!(stored.as_ref().map(|image| image.os_password.expose()), Some("os-secret-pw"), "read from stdin");

    assert!(refused(&data, &["image", "add", "xubuntu", "--disk", disk], "pw\n").contains("exists"));
    assert!(refused(&data, &["image", "add", "rel", "--disk", "xubuntu.qcow2"], "pw\n").contains("absolute"));
    assert!(refused(&data, &["image", "add", "gone", "--disk", "/no/such/disk.qcow2"], "pw\n").contains("disk"));
    assert!(refused(&data, &["image", "add", "x", "--disk", disk, "--connection", "vnc"], "").contains("spice or rdp"));

    ok(&data, &["flavor", "add", "m1.lab", "--vcpus", "2", "--ram", "1024", "--disk", "10"], "");
    let flavors = ok(&data, &["flavor", "list"], "");
    let names: Vec<&str> = flavors.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["m1.tiny", "m1.small", "m1.lab", "m1.medium"], "fewest vCPUs, then least memory, first");
    let bad = refused(&data, &["flavor", "add", "m1.bad", "--vcpus", "0", "--ram", "32", "--disk", "0"], "");
    assert!(bad.contains("vcpus") && bad.contains("ram") && bad.contains("disk"), "{bad}");

    let cloud = |command: &'static str| {
        let url = format!("{}/cloud_api", server.url());
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("command={command}"))
                .send()
                .await
                .expect("request");
            response.json::<Value>().await.expect("json")
        }
    };
    assert_eq!(cloud("list_images").await["images"], json!([{"name": "xubuntu", "default_connection_type": "spice"}]));
    assert!(cloud("list_flavors").await["flavors"].as_array().is_some_and(|f| f.iter().any(|f| f["name"] == "m1.lab")));

    ok(&data, &["flavor", "delete", "m1.lab"], "");
    assert!(refused(&data, &["flavor", "delete", "m1.lab"], "").contains("not found"));
    ok(&data, &["image", "delete", "xubuntu"], "");
    assert_eq!(cloud("list_images").await["images"], json!([]));
    assert_eq!(ok(&data, &["instance", "list"], "").lines().count(), 1, "header only");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn desktops_are_listed_and_deleted_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path()).await;
    ok(dir.path(), &["user", "add", "kim"], "kims-password\n");
    let services = server.services().clone();
    let id = tokio::task::spawn_blocking(move || {
        services
            .desktops
            .create(
                &thindesk_server::service::Actor::system(),
                &thindesk_server::service::desktops::DesktopSpec {
                    name: "lab".into(),
                    owner: "kim".into(),
                    os_username: Some("kim".into()),
                    os_password: Some("pw".into()),
                    default_connection_type: None,
                    policy: thindesk_shared::Policy::default(),
                    image: None,
                    flavor: None,
                },
            )
            .expect("desktop")
    })
    .await
    .expect("joined");
    let listed = ok(dir.path(), &["desktop", "list"], "");
    assert!(listed.lines().any(|l| l.starts_with(&id) && l.contains("kim") && l.contains("SHUTOFF")), "{listed}");
    assert!(ok(dir.path(), &["desktop", "list", "--user", "kim"], "").contains(&id));
    assert!(refused(dir.path(), &["desktop", "list", "--user", "nobody"], "").contains("not found"));
    let unknown = refused(
        dir.path(),
        &["desktop", "create", "--user", "kim", "--image", "nope", "--flavor", "m1.small", "--name", "x"],
        "",
    );
    assert!(unknown.contains("no image named"), "{unknown}");

    let desktops = format!("{}/api/v1.0/users/me/desktops", server.url());
    let auth = basic("kim", "kims-password");
    assert_eq!(get(&desktops, Some(&auth)).await.1["data"]["desktop_list"][0]["id"], json!(id));
    ok(dir.path(), &["desktop", "delete", &id], "");
    assert_eq!(get(&desktops, Some(&auth)).await.1["data"]["desktop_list"], json!([]));
    assert!(refused(dir.path(), &["desktop", "delete", &id], "").contains("no such desktop"));
    ok(dir.path(), &["user", "delete", "kim"], "");
    server.shutdown().await;
}
