//! Helpers for thindesk's end-to-end tests: a real server on `127.0.0.1:0` over a
//! temporary data directory, and a small HTTP client for it.

pub mod binary;
pub mod capture;
pub mod netns;
pub mod openstack;
pub mod ports;
pub mod screen;
pub mod spice;
pub mod vm;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use thindesk_server::compute::Compute;
use thindesk_server::compute::double::TestCompute;
use thindesk_server::service::Actor;
use thindesk_server::service::catalogue::ImageSpec;
use thindesk_server::service::desktops::DesktopSpec;
use thindesk_server::{Config, RunningServer, Services};
use thindesk_shared::{ConnectionType, Policy};

pub const ADMIN: (&str, &str) = ("teacher", "teacher-password");
pub const STUDENT: (&str, &str) = ("student", "student-password");
pub const OTHER_STUDENT: (&str, &str) = ("other", "other-password");

/// A running server over its own data directory, seeded with an administrator, two
/// students and two places. `C` is its compute driver: the test double
/// ([`TestServer::start`]) or any other ([`TestServer::builder`]), which the test
/// reaches as `compute`.
pub struct TestServer<C: ?Sized = TestCompute> {
    pub server: RunningServer,
    pub compute: Arc<C>,
    pub http: reqwest::Client,
    /// `compute`, as the server holds it.
    driver: Arc<dyn Compute>,
    data_dir: TempDir,
    config: Config,
}

/// A compute driver a [`TestServer`] can run on: any [`Compute`], or an
/// `Arc<dyn Compute>` as `compute::from_config` makes one.
pub trait ServerCompute: Compute {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn Compute>;
}

impl<C: Compute + 'static> ServerCompute for C {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn Compute> {
        self
    }
}

impl ServerCompute for dyn Compute {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn Compute> {
        self
    }
}

/// A [`TestServer`] about to start: its driver, data directory and configuration.
#[must_use = "a builder does nothing until `start`"]
pub struct Builder<C: ?Sized> {
    compute: Arc<C>,
    data_dir: TempDir,
    config: Config,
}

impl<C: ?Sized + ServerCompute> Builder<C> {
    /// How long the server's tokens live (2 h unless set).
    pub fn token_ttl(self, ttl: Duration) -> Self {
        self.configure(|config| config.token_ttl = ttl)
    }

    /// The address desktops are reached at (`192.0.2.10` unless set).
    pub fn public_address(self, address: &str) -> Self {
        self.configure(|config| config.public_address = Some(address.to_owned()))
    }

    /// The server's data directory, for a driver that keeps its state there too (the
    /// QEMU driver's `vms/`); a new temporary one unless set.
    pub fn data_dir(mut self, data_dir: TempDir) -> Self {
        self.config.data_dir = data_dir.path().to_owned();
        self.data_dir = data_dir;
        self
    }

    /// Any other change to the configuration (cloud API key, allow-list).
    pub fn configure(mut self, adjust: impl FnOnce(&mut Config)) -> Self {
        adjust(&mut self.config);
        self
    }

    /// Starts the server and seeds it.
    pub async fn start(self) -> TestServer<C> {
        let Self { compute, data_dir, config } = self;
        let driver = compute.clone().into_dyn();
        let server = launch(config.clone(), driver.clone()).await;
        let test_server = TestServer { server, compute, http: reqwest::Client::new(), driver, data_dir, config };
        let services = test_server.services().clone();
        tokio::task::spawn_blocking(move || {
            for ((name, password), admin) in [(ADMIN, true), (STUDENT, false), (OTHER_STUDENT, false)] {
                services.accounts.create_user(&Actor::system(), name, password, admin).expect("seed user");
            }
            services.terminals.add_place(&Actor::system(), "b101", "one floor").expect("seed place");
            services.terminals.add_place(&Actor::system(), "b201", "two floor").expect("seed place");
        })
        .await
        .expect("seeding");
        test_server
    }
}

async fn launch(config: Config, compute: Arc<dyn Compute>) -> RunningServer {
    RunningServer::start(config, compute).await.expect("server starts")
}

/// A [`TestServer`] stopped by [`TestServer::stop`]: nothing listens at its address.
pub struct Stopped<C: ?Sized = TestCompute> {
    compute: Arc<C>,
    http: reqwest::Client,
    driver: Arc<dyn Compute>,
    data_dir: TempDir,
    config: Config,
}

impl<C: ?Sized + ServerCompute> Stopped<C> {
    /// The same server again, on the same address and data directory.
    pub async fn start(self) -> TestServer<C> {
        let Self { compute, http, driver, data_dir, config } = self;
        let server = launch(config.clone(), driver.clone()).await;
        TestServer { server, compute, http, driver, data_dir, config }
    }
}

/// A reply as a test looks at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// `data` of a JSend success, failing the test otherwise.
    pub fn data(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "expected success, got {self:?}");
        assert_eq!(self.body["status"], "success", "{self:?}");
        &self.body["data"]
    }

    /// Asserts a JSend `fail` with this status, and returns its `data`.
    pub fn fail(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.body["status"], "fail", "{self:?}");
        &self.body["data"]
    }

    /// Asserts a JSend `error` with this status, and returns its `message`.
    pub fn error(&self, status: u16) -> &str {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.body["status"], "error", "{self:?}");
        self.body["message"].as_str().unwrap_or_default()
    }
}

impl TestServer {
    /// A server on the test double.
    pub async fn start() -> Self {
        Self::builder(Arc::new(TestCompute::new())).start().await
    }

    /// A server on `compute` whose tokens live `token_ttl`.
    pub async fn start_with(token_ttl: Duration, compute: Arc<TestCompute>) -> Self {
        Self::builder(compute).token_ttl(token_ttl).start().await
    }
}

impl<C: ?Sized + ServerCompute> TestServer<C> {
    /// A server on `compute`, listening on `127.0.0.1:0`, with tokens of 2 h and
    /// desktops reached at `192.0.2.10`, unless the builder says otherwise.
    pub fn builder(compute: Arc<C>) -> Builder<C> {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            data_dir: data_dir.path().to_owned(),
            public_address: Some("192.0.2.10".into()),
            token_ttl: Duration::from_secs(7200),
            ..Config::default()
        };
        Builder { compute, data_dir, config }
    }

    /// Stops the server and starts a new one on the same data directory (and a new
    /// port), as a host reboot would.
    pub async fn restart(self) -> Self {
        let Self { server, compute, http, driver, data_dir, config } = self;
        server.shutdown().await;
        let server = launch(config.clone(), driver.clone()).await;
        Self { server, compute, http, driver, data_dir, config }
    }

    /// Stops the server, keeping its data directory and its address, as an outage
    /// does; [`Stopped::start`] brings it back there.
    pub async fn stop(self) -> Stopped<C> {
        let Self { server, compute, http, driver, data_dir, mut config } = self;
        config.listen = server.address();
        server.shutdown().await;
        Stopped { compute, http, driver, data_dir, config }
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The SHA-256 of the server's certificate, `AB:CD:…`, as a terminal pins it.
    pub fn fingerprint(&self) -> String {
        certificate_fingerprint(self.data_dir())
    }

    pub fn services(&self) -> &Services {
        self.server.services()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// Sends a request to `/api/v1.0{path}`.
    pub async fn call(&self, method: Method, path: &str, authorization: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, self.url(&format!("/api/v1.0{path}")));
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, authorization: Option<&str>) -> Reply {
        self.call(Method::GET, path, authorization, None).await
    }

    pub async fn post(&self, path: &str, authorization: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, authorization, Some(body)).await
    }

    /// A fresh token for `user`.
    pub async fn token(&self, (user, password): (&str, &str)) -> String {
        let reply = self.get("/token", Some(&basic(user, password))).await;
        reply.data()["token"]["id"].as_str().expect("token id").to_owned()
    }

    /// Creates a desktop owned by `owner` and returns its id.
    pub async fn create_desktop(&self, owner: &str, name: &str) -> String {
        let services = self.services().clone();
        let spec = DesktopSpec {
            name: name.into(),
            owner: owner.into(),
            os_username: Some(format!("{owner}-os")),
            os_password: Some(format!("{owner}-os-password").into()),
            default_connection_type: Some(ConnectionType::Spice),
            policy: Policy { enable_usb: false, enable_clipboard: true, enable_audio: true },
            image: None,
            flavor: None,
        };
        tokio::task::spawn_blocking(move || services.desktops.create(&Actor::system(), &spec).expect("desktop"))
            .await
            .expect("creating a desktop")
    }

    /// Creates a desktop for `owner` from catalogue image `image` (see [`Self::add_image`])
    /// and the smallest flavor: it takes the image's login and connection type. Returns
    /// its id.
    pub async fn create_desktop_from_image(&self, owner: &str, name: &str, image: &str) -> String {
        let services = self.services().clone();
        let spec = DesktopSpec {
            name: name.into(),
            owner: owner.into(),
            os_username: None,
            os_password: None,
            default_connection_type: None,
            policy: Policy { enable_usb: false, enable_clipboard: true, enable_audio: true },
            image: Some(image.into()),
            flavor: Some("m1.tiny".into()),
        };
        tokio::task::spawn_blocking(move || services.desktops.create(&Actor::system(), &spec).expect("desktop"))
            .await
            .expect("creating a desktop")
    }

    /// Adds an image to the catalogue, over a small file standing in for its base disk.
    pub async fn add_image(&self, name: &str, connection: ConnectionType, os_username: &str, os_password: &str) {
        let disk = self.data_dir().join(format!("{name}.qcow2"));
        std::fs::write(&disk, b"QFI\xfb").expect("base disk written");
        let spec = ImageSpec {
            name: name.into(),
            base_disk: disk,
            default_connection_type: connection,
            os_username: os_username.into(),
            os_password: os_password.into(),
            guest_agent: false,
        };
        let services = self.services().clone();
        tokio::task::spawn_blocking(move || services.catalogue.add_image(&Actor::system(), &spec).expect("image"))
            .await
            .expect("adding an image");
    }

    /// `POST /cloud_api` with a URL-encoded form.
    pub async fn cloud(&self, form: &[(&str, &str)]) -> CloudAnswer {
        self.cloud_request(self.http.post(self.url("/cloud_api")).form(form)).await
    }

    /// `POST /cloud_api` with a `multipart/form-data` body, as a browser's form sends it.
    pub async fn cloud_multipart(&self, form: &[(&str, &str)]) -> CloudAnswer {
        const BOUNDARY: &str = "----thindesk-test-boundary";
        let mut body = String::new();
        for (name, value) in form {
            body.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!("--{BOUNDARY}--\r\n"));
        let request = self
            .http
            .post(self.url("/cloud_api"))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body);
        self.cloud_request(request).await
    }

    /// Sends a prepared request to `/cloud_api` and checks the envelope every answer
    /// must have: HTTP 200, JSON, `ret_code` and `description`.
    pub async fn cloud_request(&self, request: reqwest::RequestBuilder) -> CloudAnswer {
        let reply = reply(request.send().await.expect("request sent")).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
        let code = reply.body["ret_code"].as_u64().unwrap_or_else(|| panic!("no ret_code: {reply:?}"));
        let description = reply.body["description"].as_str().unwrap_or_else(|| panic!("no description: {reply:?}"));
        CloudAnswer { code, description: description.to_owned(), body: reply.body.clone() }
    }
}

/// A cloud API answer.
#[derive(Debug)]
pub struct CloudAnswer {
    pub code: u64,
    pub description: String,
    pub body: Value,
}

/// The form of a cloud API `launch_instance` call.
pub fn launch_form<'a>(image: &'a str, flavor: &'a str, internet: &'a str, name: &'a str) -> [(&'a str, &'a str); 5] {
    [("command", "launch_instance"), ("image", image), ("flavor", flavor), ("internet", internet), ("name", name)]
}

/// Creates `owner`'s desktop `name` from a catalogue image and flavor, with the
/// image's login and the default policy, and returns its id.
pub async fn desktop_from_image(services: &Services, owner: &str, name: &str, image: &str, flavor: &str) -> String {
    let spec = DesktopSpec::from_catalogue(name, owner, image, flavor);
    let services = services.clone();
    tokio::task::spawn_blocking(move || {
        services.desktops.create(&Actor::system(), &spec).expect("desktop from an image")
    })
    .await
    .expect("creating a desktop")
}

/// `GET /api/v1.0/users/me/desktops` on the server at `base_url` as `user`: the
/// whole JSend body.
pub async fn my_desktops(base_url: &str, user: &str, password: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base_url}/api/v1.0/users/me/desktops"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("a JSON body")
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"));
    Reply { status, headers, body }
}

/// `Basic base64(user:password)`, as RFC 7617 spells it.
/// Runs a command with `stdin` as its standard input and checks that it succeeds, as
/// the server binary's administration commands are run (they read passwords from
/// stdin, never from arguments).
pub fn run_with_stdin(mut command: std::process::Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin");
    let output = child.wait_with_output().expect("the command ran");
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Every way the contract allows to send a user name and password.
pub fn password_forms(user: &str, password: &str) -> Vec<String> {
    vec![basic(user, password), format!("Basic {user}:{password}"), format!("{user}:{password}")]
}

/// Every way the contract allows to send a token.
pub fn token_forms(token: &str) -> Vec<String> {
    let encode = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
    vec![
        format!("Bearer {token}"),
        token.to_owned(),
        format!("Basic {}", encode(format!("{token}:"))),
        format!("Basic {}", encode(format!("{token}:anything"))),
    ]
}

/// The SHA-256 of the certificate of the server on `data_dir`, `AB:CD:…`.
pub fn certificate_fingerprint(data_dir: &Path) -> String {
    let tls = thindesk_server::tls::directory(data_dir);
    thindesk_server::tls::show(&tls).expect("the server's certificate").fingerprint
}

#[cfg(test)]
mod tests {
    use super::*;
    use thindesk_server::compute::NoCompute;

    #[tokio::test]
    async fn a_server_runs_on_the_driver_it_is_given_even_as_dyn_compute() {
        let compute: Arc<dyn Compute> = Arc::new(NoCompute);
        let server = TestServer::builder(compute).start().await;
        assert_eq!(server.compute.name(), "none");
        assert_eq!(server.services().desktops.compute_name(), "none");
        let server = server.restart().await;
        assert_eq!(server.services().desktops.compute_name(), "none", "and again after a restart");
    }
}
