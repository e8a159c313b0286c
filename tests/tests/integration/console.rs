//! The management console's HTTP side, without a browser: its cookies, CSRF
//! protection, security headers, escaping, who may log in, and that the v1.0 API
//! never honours a console cookie.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;
use thindesk_tests::{ADMIN, STUDENT, ServerCompute, TestServer, basic};

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or("").to_owned()))
}

/// The value of the first `name="NAME" value="..."` in an HTML page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

struct Login {
    response_cookies: Vec<String>,
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn log_in<C: ?Sized + ServerCompute>(
    server: &TestServer<C>,
    user: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Login {
    let http = client();
    let page = http.get(server.url("/admin/login")).send().await.expect("login page");
    let cookies = set_cookies(page.headers());
    let login_cookie = cookie_value(&cookies, "td_login").expect("login cookie");
    let token = hidden(&page.text().await.expect("html"), "login_token");
    let mut request = http
        .post(server.url("/admin/login"))
        .header("Cookie", format!("td_login={login_cookie}"))
        .form(&[("login_token", token.as_str()), ("user", user), ("password", password)]);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("login");
    let status = response.status();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response_cookies = set_cookies(response.headers());
    Login { response_cookies, status, location, body: response.text().await.unwrap_or_default() }
}

/// An administrator's session cookie and the CSRF token of its forms.
pub(crate) async fn admin_session<C: ?Sized + ServerCompute>(server: &TestServer<C>) -> (String, String) {
    let login = log_in(server, ADMIN.0, ADMIN.1, &[]).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let session = cookie_value(&login.response_cookies, "td_session").expect("session cookie");
    let page = client()
        .get(server.url("/admin/places"))
        .header("Cookie", format!("td_session={session}"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = hidden(&page.text().await.expect("html"), "csrf");
    (session, csrf)
}

#[tokio::test]
async fn the_session_cookie_is_random_httponly_strict_scoped_to_admin_and_stored_only_hashed() {
    let server = TestServer::start().await;
    let login = log_in(&server, ADMIN.0, ADMIN.1, &[]).await;
    assert_eq!((login.status, login.location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/")));
    let cookie = login.response_cookies.iter().find(|c| c.starts_with("td_session=")).expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure, or the browser would drop it");
    let id = cookie_value(&login.response_cookies, "td_session").expect("id");
    assert!(id.len() >= 22, "at least 128 random bits: {id}");
    let second =
        cookie_value(&log_in(&server, ADMIN.0, ADMIN.1, &[]).await.response_cookies, "td_session").expect("id");
    assert_ne!(id, second);
    let database = std::fs::read(server.data_dir().join("thindesk.sqlite3")).expect("db");
    let wal = std::fs::read(server.data_dir().join("thindesk.sqlite3-wal")).unwrap_or_default();
    for bytes in [database, wal] {
        assert!(!bytes.windows(id.len()).any(|w| w == id.as_bytes()), "the session id is stored in clear");
    }

    let behind_tls = log_in(&server, ADMIN.0, ADMIN.1, &[("X-Forwarded-Proto", "https")]).await;
    let cookie = behind_tls.response_cookies.iter().find(|c| c.starts_with("td_session=")).expect("cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn console_pages_carry_the_security_headers_and_need_a_session() {
    let server = TestServer::start().await;
    let http = client();
    for path in ["/admin/login", "/admin/", "/admin/users", "/admin/style.css"] {
        let response = http.get(server.url(path)).send().await.expect("get");
        let headers = response.headers();
        assert_eq!(
            headers
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.starts_with("default-src 'self'")),
            Some(true),
            "{path}"
        );
        assert_eq!(headers.get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"), "{path}");
        assert_eq!(headers.get("referrer-policy").and_then(|v| v.to_str().ok()), Some("no-referrer"), "{path}");
        assert_eq!(headers.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"), "{path}");
    }
    let anonymous = http.get(server.url("/admin/users")).send().await.expect("get");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers().get("location").and_then(|v| v.to_str().ok()), Some("/admin/login"));
    let forged = http.get(server.url("/admin/users")).header("Cookie", "td_session=made-up").send().await.expect("get");
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);
    let post = http.post(server.url("/admin/places/create")).form(&[("name", "c301")]).send().await.expect("post");
    assert_eq!(post.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.services().terminals.places().expect("places").len(), 2, "nothing was created");
    // No asset comes from elsewhere.
    let page = http.get(server.url("/admin/login")).send().await.expect("get").text().await.expect("html");
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"), "{page}");
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_changes_nothing() {
    let server = TestServer::start().await;
    let (session, csrf) = admin_session(&server).await;
    let (_, other_csrf) = admin_session(&server).await;
    let http = client();
    for token in ["", "not-the-token", other_csrf.as_str()] {
        let response = http
            .post(server.url("/admin/places/create"))
            .header("Cookie", format!("td_session={session}"))
            .form(&[("csrf", token), ("name", "c301")])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(server.services().terminals.places().expect("places").len(), 2, "csrf {token:?} was accepted");
    }
    let response = http
        .post(server.url("/admin/places/create"))
        .header("Cookie", format!("td_session={session}"))
        .form(&[("csrf", csrf.as_str()), ("name", "c301"), ("address", "Building C")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.headers().get("location").and_then(|v| v.to_str().ok()), Some("/admin/places"));
    assert_eq!(server.services().terminals.places().expect("places").len(), 3);
    let page = http
        .get(server.url("/admin/places"))
        .header("Cookie", format!("td_session={session}"))
        .send()
        .await
        .expect("get");
    let html = page.text().await.expect("html");
    assert!(html.contains("flash ok") && html.contains("Building C"), "the result is shown once: {html}");
}

#[tokio::test]
async fn the_v1_api_never_honours_a_console_cookie() {
    let server = TestServer::start().await;
    let (session, _) = admin_session(&server).await;
    let cookie = format!("td_session={session}");
    for path in ["/api/v1.0/users/me/desktops", "/api/v1.0/admin/users", "/api/v1.0/token"] {
        let response = client().get(server.url(path)).header("Cookie", &cookie).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{path} sets a cookie");
    }
    // And the API's own answers never set one.
    let reply = client()
        .get(server.url("/api/v1.0/users/me/desktops"))
        .header("Authorization", basic(ADMIN.0, ADMIN.1))
        .send()
        .await
        .expect("get");
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(reply.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn students_are_refused_wrong_passwords_are_throttled_and_logins_audited() {
    let server = TestServer::start().await;
    let student = log_in(&server, STUDENT.0, STUDENT.1, &[]).await;
    assert_eq!(student.status, StatusCode::FORBIDDEN);
    assert!(cookie_value(&student.response_cookies, "td_session").is_none(), "no session for a student");
    assert!(student.body.contains("Only administrators"), "{}", student.body);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(log_in(&server, ADMIN.0, "a-wrong-guess", &[]).await.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // A login without the login form's token is refused before any password check.
    let forged = client()
        .post(server.url("/admin/login"))
        .form(&[("user", ADMIN.0), ("password", ADMIN.1)])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The administrator is throttled now: read the log through the service.
    let services = server.services().clone();
    let entries = tokio::task::spawn_blocking(move || {
        services
            .audit
            .list(&thindesk_server::service::AuditFilter { limit: Some(100), ..Default::default() })
            .expect("audit")
    })
    .await
    .expect("joined");
    assert!(entries.iter().any(|e| e.action == "login.failed" && e.actor == ADMIN.0));
    assert!(entries.iter().any(|e| e.action == "login.throttled" && e.actor == ADMIN.0));
    assert!(entries.iter().any(|e| e.action == "login" && e.actor == STUDENT.0));
    assert!(!entries.iter().any(|e| e.action == "console.login"), "the student got no console session");
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let server = TestServer::start().await;
    let (session, csrf) = admin_session(&server).await;
    let cookie = format!("td_session={session}");
    let http = client();
    let out = http
        .post(server.url("/admin/logout"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(out.headers().get("location").and_then(|v| v.to_str().ok()), Some("/admin/login"));
    assert!(set_cookies(out.headers()).iter().any(|c| c.starts_with("td_session=;") && c.contains("Max-Age=0")));
    let after = http.get(server.url("/admin/")).header("Cookie", &cookie).send().await.expect("get");
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the old cookie no longer works");
}

#[tokio::test]
async fn every_user_provided_string_is_escaped() {
    let server = TestServer::start().await;
    let evil = "<script>alert(1)</script>";
    let admin = basic(ADMIN.0, ADMIN.1);
    server.post("/admin/places", Some(&admin), json!({"name": "evil", "address": evil})).await.data();
    server
        .post(
            "/terminals/registration",
            None,
            json!({"place": "evil", "seat_number": "\"><img src=x>", "mac_address": "08:00:20:0A:8C:6D"}),
        )
        .await
        .data();
    let (session, _) = admin_session(&server).await;
    for path in ["/admin/places", "/admin/terminals", "/admin/", "/admin/audit"] {
        let html = client()
            .get(server.url(path))
            .header("Cookie", format!("td_session={session}"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("html");
        assert!(!html.contains(evil) && !html.contains("<img src=x>"), "{path} is not escaped");
    }
    let places = client()
        .get(server.url("/admin/places"))
        .header("Cookie", format!("td_session={session}"))
        .send()
        .await
        .expect("get");
    assert!(places.text().await.expect("html").contains("&lt;script&gt;"));
}

#[tokio::test]
async fn the_language_follows_the_query_then_the_cookie_then_accept_language() {
    let server = TestServer::start().await;
    let http = client();
    let chinese = http
        .get(server.url("/admin/login"))
        .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .expect("get");
    assert!(chinese.text().await.expect("html").contains("管理员登录"));
    let english = http.get(server.url("/admin/login")).header("Accept-Language", "en-GB").send().await.expect("get");
    assert!(english.text().await.expect("html").contains("Administrator login"));
    let switched =
        http.get(server.url("/admin/login?lang=zh")).header("Accept-Language", "en").send().await.expect("get");
    let cookies = set_cookies(switched.headers());
    assert_eq!(cookie_value(&cookies, "td_lang").as_deref(), Some("zh"));
    assert!(switched.text().await.expect("html").contains("管理员登录"));
    let remembered = http
        .get(server.url("/admin/login"))
        .header("Cookie", "td_lang=zh")
        .header("Accept-Language", "en")
        .send()
        .await
        .expect("get");
    assert!(remembered.text().await.expect("html").contains("管理员登录"));
}

#[tokio::test]
async fn a_bad_csv_upload_shows_every_bad_line_and_imports_nothing() {
    let server = TestServer::start().await;
    let (session, csrf) = admin_session(&server).await;
    const BOUNDARY: &str = "----console-upload";
    let upload = |csv: &str| {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"class.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}\r\n--{BOUNDARY}--\r\n"
        )
    };
    let http = client();
    let post = |body: String| {
        http.post(server.url("/admin/users/import"))
            .header("Cookie", format!("td_session={session}"))
            .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body)
            .send()
    };
    let response =
        post(upload("name,password\nann,ann-password\nbob,short\nstudent,student-password\n")).await.expect("post");
    assert_eq!(response.headers().get("location").and_then(|v| v.to_str().ok()), Some("/admin/users"));
    let page = http
        .get(server.url("/admin/users"))
        .header("Cookie", format!("td_session={session}"))
        .send()
        .await
        .expect("get");
    let html = page.text().await.expect("html");
    assert!(html.contains("Nothing was imported"), "{html}");
    assert!(html.contains("line 3:") && html.contains("line 4:"), "{html}");
    assert!(!html.contains("short"), "the password is not repeated back");
    server.get("/users/me/is_administrator", Some(&basic("ann", "ann-password"))).await.fail(401);

    post(upload("name,password\nann,ann-password\n")).await.expect("post");
    assert_eq!(server.get("/users/me/is_administrator", Some(&basic("ann", "ann-password"))).await.data(), "false");
}

#[tokio::test]
async fn the_overview_shows_the_certificate_fingerprint_terminals_pin() {
    let server = TestServer::start().await;
    let (session, _) = admin_session(&server).await;
    let page = client()
        .get(server.url("/admin/"))
        .header("Cookie", format!("td_session={session}"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    let fingerprint = server.fingerprint();
    assert_eq!(fingerprint.len(), 95, "{fingerprint}");
    assert!(html.contains(&format!("<code class=\"fingerprint\">{fingerprint}</code>")), "{html}");
}
