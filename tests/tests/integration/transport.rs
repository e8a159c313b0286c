//! CONTRACT.md, "Encryption in transit", from another host on the LAN (a network
//! namespace): credentials in plain HTTP get 426 and the console moves to HTTPS;
//! over TLS, or from the host itself, the same requests reach the server's checks.

use serde_json::Value;
use std::process::Stdio;
use thindesk_server::config::PlainHttp;
use thindesk_tests::netns::{self, Namespace};
use thindesk_tests::{TestServer, vm};

const TEST: &str = "plain HTTP from the network";

/// What curl, run in `namespace`, got: the status and the body.
fn curl(namespace: &Namespace, arguments: &[&str]) -> (u16, String) {
    let output = namespace
        .command("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--write-out", "\n%{http_code}"])
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status.trim().parse().unwrap_or_else(|_| {
        panic!("curl {arguments:?} gave no status: {text} {}", String::from_utf8_lossy(&output.stderr))
    });
    (status, body.to_owned())
}

fn header_of(namespace: &Namespace, url: &str, extra: &[&str], name: &str) -> Option<String> {
    let mut arguments = vec!["--head", url];
    arguments.extend_from_slice(extra);
    let (_, head) = curl(namespace, &arguments);
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
}

async fn listening_everywhere(plain_http: PlainHttp) -> TestServer {
    TestServer::builder(std::sync::Arc::new(thindesk_server::compute::double::TestCompute::new()))
        .configure(|config| {
            config.listen = "0.0.0.0:0".parse().expect("address");
            config.plain_http = plain_http;
        })
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_plain_http_from_another_host_get_426_and_the_console_moves_to_https() {
    let problem = (!netns::is_root()).then(|| "makes a network namespace, which needs root".to_owned());
    if !vm::tools_present(TEST, &["ip", "curl"]) || !vm::prerequisite(TEST, problem) {
        return;
    }
    let laptop = Namespace::new("tdh", 253);
    let server = listening_everywhere(PlainHttp::Loopback).await;
    let port = server.server.address().port();
    let host = format!("{}:{port}", laptop.host_side);
    let plain = format!("http://{host}");
    let (student, password) = thindesk_tests::STUDENT;
    let basic = format!("{student}:{password}");

    let (status, body) = curl(&laptop, &["--user", &basic, &format!("{plain}/api/v1.0/token")]);
    assert_eq!(status, 426, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSend");
    assert_eq!(body["status"], "fail", "{body}");
    let said = body["data"]["transport"].as_str().expect("why");
    assert!(said.contains(&format!("https://{host}/api/v1.0/token")), "{said}");
    let bearer = ["--header", "Authorization: Bearer a-token"];
    assert_eq!(curl(&laptop, &[&bearer[..], &[&format!("{plain}/api/v1.0/users/me/desktops")]].concat()).0, 426);
    let cookie = ["--header", "Cookie: td_session=abc"];
    assert_eq!(curl(&laptop, &[&cookie[..], &[&format!("{plain}/api/v1.0/places")]].concat()).0, 426);
    let cloud_key = ["--header", "X-Api-Key: a-key", "--data", "command=query_instance&vm_id=x"];
    assert_eq!(curl(&laptop, &[&cloud_key[..], &[&format!("{plain}/cloud_api")]].concat()).0, 426);
    let form = ["--data", "user=a&password=b"];
    assert_eq!(curl(&laptop, &[&form[..], &[&format!("{plain}/admin/login")]].concat()).0, 426, "a console login form");

    // Nothing secret, nothing refused; the console's pages move to HTTPS.
    assert_eq!(curl(&laptop, &[&format!("{plain}/api/v1.0/places")]).0, 200);
    let (status, _) = curl(&laptop, &["--head", &format!("{plain}/admin/login")]);
    assert_eq!(status, 308);
    let location = header_of(&laptop, &format!("{plain}/admin/login"), &[], "location");
    assert_eq!(location.as_deref(), Some(format!("https://{host}/admin/login").as_str()));

    // Over TLS from the same host, trusting the server's authority: the server's own
    // answer (the password is right), and HSTS on the console.
    let ca = thindesk_server::tls::directory(server.data_dir()).join("ca-cert.pem");
    let ca = ca.to_str().expect("a path");
    let https = format!("https://{host}");
    let (status, body) = curl(&laptop, &["--cacert", ca, "--user", &basic, &format!("{https}/api/v1.0/token")]);
    assert_eq!(status, 200, "{body}");
    let hsts = header_of(&laptop, &format!("{https}/admin/login"), &["--cacert", ca], "strict-transport-security");
    assert!(hsts.is_some(), "HSTS over TLS");
    // From the host itself, plain HTTP keeps working for seed-era callers.
    let from_loopback = server.get("/token", Some(&thindesk_tests::basic(student, password))).await;
    assert_eq!(from_loopback.status.as_u16(), 200);
    drop(server.stop().await);

    // plain_http = "allow" is for a network where TLS is done in front of the server.
    let allowing = listening_everywhere(PlainHttp::Allow).await;
    let url = format!("http://{}:{}/api/v1.0/token", laptop.host_side, allowing.server.address().port());
    assert_eq!(curl(&laptop, &["--user", &basic, &url]).0, 200);
    drop(allowing.stop().await);
}
