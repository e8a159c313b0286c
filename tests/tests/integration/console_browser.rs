//! The management console in a real browser: Debian's headless `chromium`, driven
//! through `chromedriver` (started here on a loopback port of its own) with the
//! `fantoccini` WebDriver client. An administrator logs in, approves a waiting
//! terminal, imports a class from a CSV file, gives it desktops and reads the audit log.
//!
//! Without chromium or chromedriver the test fails under CI and is skipped loudly
//! elsewhere. With `THINDESK_SCREENSHOTS=DIR` it saves a PNG of every page there
//! (`docs/screenshots/console/` holds the committed ones).

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thindesk_shared::ConnectionType;
use thindesk_tests::{ADMIN, TestServer, ports, vm::tools_present};

const MAC: &str = "08:00:20:0A:8C:6D";

/// chromedriver on a loopback port of its own, and a headless chromium session.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: Option<PathBuf>,
}

impl Browser {
    async fn start() -> Self {
        // chromedriver is told its port: one no other test of this process is given.
        let port = ports::one();
        // Its own process group: chromium runs under chromedriver, and stopping the
        // group stops them all, even when a failing test never closes the session.
        let driver = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Self { client: connect(port, &profile).await, driver, _profile: profile, shots: None };
        browser.shots = std::env::var_os("THINDESK_SCREENSHOTS").map(PathBuf::from);
        browser.client.set_window_size(1360, 1000).await.expect("window size");
        browser
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    async fn text(&self, css: &str) -> String {
        for _ in 0..50 {
            match self.client.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css(css)).await {
                Ok(element) => match element.text().await {
                    Ok(text) => return text,
                    // The page changed between finding the element and reading it
                    // (a click's page replacing the old one): look again.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                },
                Err(e) => {
                    let page = self.client.source().await.unwrap_or_default();
                    panic!("{css}: {e} on {} in\n{page}", self.path().await)
                }
            }
        }
        panic!("{css} went stale 50 times in a row")
    }

    async fn click(&self, css: &str) {
        let element = self.client.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css(css)).await;
        element.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.expect("click");
    }

    /// Waits until the element's text holds `needle` (a click's page may still be
    /// loading), and returns the text.
    async fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if text.contains(needle) {
                return text;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{css} never showed {needle:?}: {text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the browser shows `expected` (path and query), after a click.
    async fn wait_path(&self, expected: &str) {
        let started = Instant::now();
        loop {
            let path = self.path().await;
            if path == expected {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "still on {path}, expected {expected}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.ok();
        field.send_keys(text).await.expect("typed");
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Saves the page as `name.png` when screenshots are asked for.
    async fn shot(&self, name: &str) {
        if let Some(dir) = &self.shots {
            std::fs::create_dir_all(dir).expect("screenshot dir");
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
        }
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Stops the chromedriver this test started, and the chromium under it.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn connect(port: u16, profile: &tempfile::TempDir) -> Client {
    let mut capabilities = serde_json::Map::new();
    let args = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--lang=en-US".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args }));
    let started = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return client,
            Err(error) if started.elapsed() < Duration::from_secs(30) => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("chromedriver did not start a chromium session: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_approves_a_terminal_imports_a_class_gives_it_desktops_and_reads_the_audit_log() {
    if !tools_present("the console's browser test", &["chromium", "chromedriver"]) {
        return;
    }
    let server = TestServer::start().await;
    server.add_image("xubuntu-desktop", ConnectionType::Spice, "student", "os-password").await;
    let registered = server
        .post("/terminals/registration", None, json!({"place": "b101", "seat_number": "12", "mac_address": MAC}))
        .await;
    assert_eq!(registered.data()["terminal_state"], "WAITING");
    let base = server.url("");
    let browser = Browser::start().await;

    // Not logged in: the console sends the browser to its login form.
    browser.goto(&format!("{base}/admin/")).await;
    browser.wait_path("/admin/login").await;
    browser.shot("login").await;
    browser.type_into("input[name=user]", ADMIN.0).await;
    browser.type_into("input[name=password]", "not-the-password").await;
    browser.click("button[type=submit]").await;
    assert!(browser.text(".flash.error").await.contains("Wrong user name or password"));
    browser.type_into("input[name=user]", ADMIN.0).await;
    browser.type_into("input[name=password]", ADMIN.1).await;
    browser.click("button[type=submit]").await;
    browser.wait_path("/admin/").await;
    assert!(browser.text(".session").await.contains(ADMIN.0));
    let pending = browser.text(".stats").await;
    assert!(pending.contains("Terminals waiting for approval"), "{pending}");
    browser.shot("overview").await;

    // One click approves the waiting terminal, and the terminal hears it at once.
    browser.goto(&format!("{base}/admin/terminals?state=waiting")).await;
    browser.shot("terminals").await;
    browser.click(&format!("tr[data-mac='{MAC}'] button.primary")).await;
    browser.wait_path("/admin/terminals").await;
    assert!(browser.text(".flash.ok").await.contains(MAC));
    let state = server.get(&format!("/terminals/{MAC}"), None).await;
    assert_eq!(state.data()["state"], "APPROVED");

    // A class of three from a CSV file.
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("class-3b.csv");
    std::fs::write(
        &csv,
        "name,password,admin\nli.wei,li-wei-password\nzhang.min,zhang-min-password\nchen.jie,chen-jie-password,no\n",
    )
    .expect("csv");
    browser.goto(&format!("{base}/admin/users")).await;
    let upload = browser.client.find(Locator::Css("input[name=file]")).await.expect("file input");
    upload.send_keys(csv.to_str().expect("utf-8")).await.expect("file chosen");
    browser.click("form[action='/admin/users/import'] button[type=submit]").await;
    let flash = browser.text(".flash.ok").await;
    assert!(flash.contains("li.wei") && flash.contains("chen.jie"), "{flash}");
    assert_eq!(
        server
            .get("/users/me/is_administrator", Some(&thindesk_tests::basic("zhang.min", "zhang-min-password")))
            .await
            .data(),
        "false"
    );
    browser.shot("users").await;

    // The class gets a desktop each in one step.
    browser.goto(&format!("{base}/admin/desktops")).await;
    browser.click("input[name=class][value=users]").await;
    browser.type_into("textarea[name=users]", "li.wei\nzhang.min\nchen.jie").await;
    browser.type_into("input[name=name]", "Class 3B desktop").await;
    browser.click("form[action='/admin/desktops/create'] button[type=submit]").await;
    let flash = browser.text(".flash.ok").await;
    assert!(flash.contains('3'), "{flash}");
    let desktops = server.services().desktops.list_all(None).expect("list");
    let mut owners: Vec<&str> = desktops.iter().map(|d| d.owner.as_str()).collect();
    owners.sort_unstable();
    assert_eq!(owners, ["chen.jie", "li.wei", "zhang.min"]);
    assert!(desktops.iter().all(|d| d.name == "Class 3B desktop" && server.compute.spec(&d.id).is_some()));
    // Start one from the console.
    browser.click("tr[data-owner='li.wei'] form[action='/admin/desktops/action'] button").await;
    browser.wait_text("tr[data-owner='li.wei']", "ACTIVE").await;
    browser.shot("desktops").await;

    // The audit log tells who did all this.
    browser.goto(&format!("{base}/admin/audit?action=terminal")).await;
    let log = browser.text("table.audit").await;
    assert!(log.contains("terminal.approve") && log.contains(MAC) && log.contains(ADMIN.0), "{log}");
    assert!(log.contains("terminal.register"), "{log}");
    browser.goto(&format!("{base}/admin/audit")).await;
    let log = browser.text("table.audit").await;
    for action in ["console.login", "login.failed", "user.import", "desktop.create", "desktop.action"] {
        assert!(log.contains(action), "{action} missing from {log}");
    }
    assert!(!log.contains("li-wei-password") && !log.contains(ADMIN.1), "no password in the log");
    browser.shot("audit").await;

    // The other pages, and the console in Chinese.
    for page in ["places", "catalogue", "settings"] {
        browser.goto(&format!("{base}/admin/{page}")).await;
        assert!(browser.client.find(Locator::Css("nav.side a.active")).await.is_ok(), "{page}");
        browser.shot(page).await;
    }

    // An image that runs the guest agent, added on the catalogue page: its row says
    // each desktop has its own OS password; the image without one says they share.
    browser.goto(&format!("{base}/admin/catalogue")).await;
    let form = "form[action='/admin/images/create']";
    let disk = server.data_dir().join("xubuntu-desktop.qcow2");
    browser.type_into(&format!("{form} input[name=name]"), "win11-agent").await;
    browser.type_into(&format!("{form} input[name=disk]"), disk.to_str().expect("utf-8")).await;
    browser.type_into(&format!("{form} input[name=os_username]"), "student").await;
    browser.click(&format!("{form} input[name=guest_agent]")).await;
    browser.click(&format!("{form} button[type=submit]")).await;
    browser.wait_text("tr[data-image='win11-agent']", "own OS password per desktop").await;
    let without = browser.text("tr[data-image='xubuntu-desktop']").await;
    assert!(without.contains("desktops share its OS password"), "{without}");
    browser.shot("catalogue-guest-agent").await;

    browser.goto(&format!("{base}/admin/?lang=zh")).await;
    assert!(browser.text("nav.side").await.contains("终端"));
    browser.shot("overview-zh").await;
    browser.goto(&format!("{base}/admin/terminals")).await;
    assert!(browser.text("h1").await.contains("终端"), "the language sticks");
    browser.goto(&format!("{base}/admin/?lang=en")).await;

    // Logging out ends the session.
    browser.click("form[action='/admin/logout'] button").await;
    browser.wait_path("/admin/login").await;
    browser.goto(&format!("{base}/admin/users")).await;
    browser.wait_path("/admin/login").await;
    browser.close().await;
}
