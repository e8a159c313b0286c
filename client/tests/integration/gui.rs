//! The real app against a real in-process server (`thindesk_tests::TestServer`, with
//! the compute test double): every screen, driven through the accessibility tree as a
//! user would, asserting what the user sees.

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, Instant};
use thindesk_client::api::ApiClient;
use thindesk_client::i18n::Lang;
use thindesk_client::pinning::{Fingerprint, Pin};
use thindesk_client::settings::{Memory, Settings};
use thindesk_client::{App, Setup};
use thindesk_server::compute::double::TestCompute;
use thindesk_server::service::Actor;
use thindesk_server::service::terminals::Registration;
use thindesk_shared::{RegistrationMode, TerminalState};
use thindesk_tests::{ADMIN, STUDENT, TestServer, basic};

pub(crate) struct Env {
    pub(crate) server: TestServer,
    pub(crate) runtime: tokio::runtime::Runtime,
}

impl Env {
    /// The defaults, with the server's certificate pinned as a deployed terminal has it.
    pub(crate) fn settings(&self) -> Settings {
        Settings { server_fingerprint: Some(self.pin()), boot_wait_secs: 0, ..Settings::default() }
    }

    pub(crate) fn pin(&self) -> Fingerprint {
        self.server.fingerprint().parse().expect("a fingerprint")
    }
}

pub(crate) fn env() -> Env {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server = runtime.block_on(TestServer::start());
    Env { server, runtime }
}

/// The default settings, except that a started desktop is shown as running at once
/// (its guest is the test double's, with nothing to boot).
fn app<'a>(env: &Env, server_url: String, mac: &str, settings: Settings) -> Harness<'a, App> {
    app_with_memory(env, server_url, mac, settings, Memory::in_memory())
}

pub(crate) fn app_with_memory<'a>(
    env: &Env,
    server_url: String,
    mac: &str,
    settings: Settings,
    memory: Memory,
) -> Harness<'a, App> {
    launch(Setup { memory, ..setup(&env.runtime, server_url, mac, settings) })
}

/// What a test's app starts with unless it says otherwise: English, nothing saved,
/// the keyring in memory.
pub(crate) fn setup(runtime: &tokio::runtime::Runtime, server: String, mac: &str, settings: Settings) -> Setup {
    Setup {
        server,
        mac: mac.into(),
        settings,
        settings_path: None,
        memory: Memory::in_memory(),
        runtime: runtime.handle().clone(),
        lang: Lang::En,
        demo_hint: None,
        started: Instant::now(),
    }
}

/// The app in a window of the size the screenshots have.
pub(crate) fn launch<'a>(setup: Setup) -> Harness<'a, App> {
    Harness::builder().with_size([960.0, 720.0]).build_eframe(move |cc| App::new(cc, setup))
}

fn harness<'a>(env: &Env, mac: &str) -> Harness<'a, App> {
    app(env, env.server.server.url(), mac, env.settings())
}

/// Steps until a node whose label contains `text` is shown (background answers arrive
/// between steps), or fails the test after ten seconds.
pub(crate) fn wait_for(h: &mut Harness<'_, App>, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        h.step();
        if h.query_by_label_contains(text).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{text:?} never appeared");
}

/// Replaces the text of the field labelled `label`.
pub(crate) fn type_into(h: &mut Harness<'_, App>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::A]);
    h.get_by_label(label).type_text(text);
    h.step();
}

/// Clicks a button and lets the frame after it settle (dialogs close a frame later).
pub(crate) fn click(h: &mut Harness<'_, App>, label: &str) {
    h.get_by_role_and_label(Role::Button, label).click();
    h.step();
    h.step();
}

pub(crate) fn register_approved(env: &Env, mac: &str, seat: &str) {
    let terminals = &env.server.services().terminals;
    terminals.set_registration_mode(&Actor::system(), RegistrationMode::Auto).expect("mode");
    let registration = Registration {
        place: "b101".into(),
        seat_number: seat.into(),
        mac: mac.parse().expect("mac"),
        by_administrator: false,
    };
    terminals.register(&registration, None, None).expect("registered");
}

pub(crate) fn log_in(h: &mut Harness<'_, App>, user: &str, password: &str) {
    type_into(h, "User name", user);
    type_into(h, "Password", password);
    click(h, "Log in");
}

#[test]
fn register_wait_approve_login_act_change_password_log_out() {
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:01";
    let mut h = harness(&env, mac);

    // Unknown terminal: the registration form, with the server's places.
    wait_for(&mut h, "Register this terminal");
    wait_for(&mut h, "b201 (two floor)");
    // No seat: the server's field error appears beside the field.
    click(&mut h, "Register");
    wait_for(&mut h, "is required");
    type_into(&mut h, "Seat number", "07");
    click(&mut h, "Register");

    // Approval mode: the terminal waits, and moves on by itself once approved.
    wait_for(&mut h, "Waiting for approval");
    assert!(h.query_by_label_contains("b101, seat 07").is_some());
    env.server.services().terminals.set_state(&Actor::system(), mac, TerminalState::Approved).expect("approve");
    wait_for(&mut h, "Classroom b101 · seat 07");

    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Your desktops");
    wait_for(&mut h, "Lab PC");
    assert!(h.query_by_label("Signed in as student").is_some());
    assert!(h.query_by_label("Off").is_some());

    // Start: progress, then done, and the list shows the new state.
    click(&mut h, "Start");
    wait_for(&mut h, "done");
    wait_for(&mut h, "Running");
    assert!(!env.server.compute.operations().is_empty());

    // Shutting down asks first; cancelling does nothing.
    click(&mut h, "Shut down");
    wait_for(&mut h, "Unsaved work in it will be lost");
    click(&mut h, "Cancel");
    assert!(h.query_by_label_contains("Unsaved work").is_none());
    click(&mut h, "Shut down");
    wait_for(&mut h, "Unsaved work in it will be lost");
    h.get_all_by_role_and_label(Role::Button, "Shut down").last().expect("confirm button").click();
    h.step();
    wait_for(&mut h, "Shut down: done");
    wait_for(&mut h, "Off");

    // Change the password: the current one is asked for and checked; then the new one
    // works, the old one no longer does, and the student stays signed in.
    click(&mut h, "Change password");
    type_into(&mut h, "Current password", "not-my-password");
    type_into(&mut h, "New password", "a-new-password-1");
    type_into(&mut h, "Repeat new password", "a-new-password-1");
    click(&mut h, "Save");
    wait_for(&mut h, "The current password is wrong.");
    type_into(&mut h, "Current password", STUDENT.1);
    type_into(&mut h, "Repeat new password", "a-different-one");
    click(&mut h, "Save");
    wait_for(&mut h, "The two passwords differ.");
    type_into(&mut h, "Repeat new password", "a-new-password-1");
    click(&mut h, "Save");
    wait_for(&mut h, "Password changed.");
    let (old, new) = env.runtime.block_on(async {
        (
            env.server.get("/token", Some(&basic(STUDENT.0, STUDENT.1))).await.status,
            env.server.get("/token", Some(&basic(STUDENT.0, "a-new-password-1"))).await.status,
        )
    });
    assert_eq!((old.as_u16(), new.as_u16()), (401, 200));
    // Still signed in on a token that works: the list refreshes, no "session expired".
    let token = h.state().session().token().expect("signed in");
    let listed = env.runtime.block_on(env.server.get("/users/me/desktops", Some(&format!("Bearer {token}"))));
    assert_eq!(listed.status.as_u16(), 200);
    for _ in 0..20 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(h.query_by_label("Your desktops").is_some());

    // Log out: back to the login screen, the user name kept.
    click(&mut h, "Log out");
    wait_for(&mut h, "Classroom b101 · seat 07");
    assert_eq!(h.get_by_label("User name").value().as_deref(), Some("student"));
    assert!(h.query_by_label("Your desktops").is_none());
}

#[test]
fn administrator_registers_in_auth_mode_and_errors_are_explained() {
    let env = env();
    let mut h = harness(&env, "02:00:00:00:00:02");
    wait_for(&mut h, "Register this terminal");
    type_into(&mut h, "Seat number", "01");
    h.get_by_label("Register as administrator (approved at once)").click();
    h.step();
    // A student is no administrator: 403, said plainly.
    type_into(&mut h, "Administrator name", STUDENT.0);
    type_into(&mut h, "Administrator password", STUDENT.1);
    click(&mut h, "Register");
    wait_for(&mut h, "That account is not an administrator.");

    // A seat another terminal holds: the 409 text.
    register_approved(&env, "02:00:00:00:00:99", "02");
    let mut h = harness(&env, "02:00:00:00:00:03");
    wait_for(&mut h, "Register this terminal");
    type_into(&mut h, "Seat number", "02");
    click(&mut h, "Register");
    wait_for(&mut h, "That seat in that classroom is already taken by another terminal.");

    // The administrator's credentials register it at once (mode "auth").
    env.server.services().terminals.set_registration_mode(&Actor::system(), RegistrationMode::Closed).expect("mode");
    let mut h = harness(&env, "02:00:00:00:00:04");
    wait_for(&mut h, "Register this terminal");
    type_into(&mut h, "Seat number", "03");
    h.get_by_label("Register as administrator (approved at once)").click();
    h.step();
    type_into(&mut h, "Administrator name", ADMIN.0);
    type_into(&mut h, "Administrator password", ADMIN.1);
    click(&mut h, "Register");
    wait_for(&mut h, "Classroom b101 · seat 03");
    let terminal = env.server.services().terminals.lookup("02:00:00:00:00:04").expect("registered");
    assert_eq!((terminal.state, terminal.register_mode.as_str()), (TerminalState::Approved, "auth"));
}

#[test]
fn rejected_terminal_says_what_to_do() {
    let env = env();
    env.server.services().terminals.set_registration_mode(&Actor::system(), RegistrationMode::Closed).expect("mode");
    let mut h = harness(&env, "02:00:00:00:00:05");
    wait_for(&mut h, "Register this terminal");
    type_into(&mut h, "Seat number", "05");
    click(&mut h, "Register");
    wait_for(&mut h, "Registration rejected");
    assert!(h.query_by_label_contains("Ask the administrator").is_some());
}

#[test]
fn wrong_password_and_throttling_are_explained() {
    let env = env();
    let mac = "02:00:00:00:00:06";
    register_approved(&env, mac, "06");
    let mut h = harness(&env, mac);
    wait_for(&mut h, "Classroom b101 · seat 06");
    log_in(&mut h, STUDENT.0, "not-the-password");
    wait_for(&mut h, "Wrong user name or password.");
    // Messages already shown follow a language switch.
    click(&mut h, "简体中文");
    wait_for(&mut h, "用户名或密码错误。");
    click(&mut h, "English");
    wait_for(&mut h, "Wrong user name or password.");

    // Enough failures for the server to throttle the account for a few seconds.
    env.runtime.block_on(async {
        for _ in 0..30 {
            let reply = env.server.get("/token", Some(&basic(STUDENT.0, "still-wrong"))).await;
            if reply.status.as_u16() == 429 {
                let wait = reply.body["data"]["retry_after"].as_u64().unwrap_or(1);
                if wait >= 4 {
                    return;
                }
                // Failures count only once the wait is over; each one doubles it.
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
        }
        panic!("the server never throttled");
    });
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Too many failed attempts. Try again in");
    assert!(h.query_by_label("Your desktops").is_none());
}

#[test]
fn unreachable_server_shows_a_banner_that_retries() {
    let env = env();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut h = app(&env, format!("http://127.0.0.1:{port}"), "02:00:00:00:00:07", env.settings());
    wait_for(&mut h, "Cannot reach the server at https://127.0.0.1:");
    assert!(h.query_by_label_contains("Retrying in").is_some());
    assert!(h.query_by_role_and_label(Role::Button, "Retry").is_some());
}

#[test]
fn language_switches_on_every_screen() {
    let env = env();
    let mut h = harness(&env, "02:00:00:00:00:08");
    wait_for(&mut h, "Register this terminal");
    click(&mut h, "简体中文");
    wait_for(&mut h, "注册此终端");
    assert!(h.query_by_role_and_label(Role::Button, "注册").is_some());
    click(&mut h, "English");
    wait_for(&mut h, "Register this terminal");
    assert_eq!(h.state().lang(), Lang::En);
}

#[test]
fn kiosk_refuses_to_close() {
    let env = env();
    let settings = Settings { kiosk: true, ..env.settings() };
    let mut h = app(&env, env.server.server.url(), "02:00:00:00:00:09", settings);
    wait_for(&mut h, "Register this terminal");
    assert!(h.query_by_role_and_label(Role::Button, "Settings").is_none());
    h.input_mut().viewports.entry(egui::ViewportId::ROOT).or_default().events.push(egui::ViewportEvent::Close);
    h.step();
    let commands = &h.output().viewport_output[&egui::ViewportId::ROOT].commands;
    assert!(commands.contains(&egui::ViewportCommand::CancelClose), "{commands:?}");
    // Without a window manager to make it fullscreen, it covers the monitor itself.
    h.input_mut().viewports.entry(egui::ViewportId::ROOT).or_default().monitor_size = Some(egui::vec2(1280.0, 800.0));
    h.step();
    let commands = &h.output().viewport_output[&egui::ViewportId::ROOT].commands;
    assert!(commands.contains(&egui::ViewportCommand::InnerSize(egui::vec2(1280.0, 800.0))), "{commands:?}");
}

/// A stand-in viewer that records its arguments and standard input beside itself.
fn recording_viewer(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("viewer");
    std::fs::write(&path, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\ncat > \"$0.stdin\"\nsleep 1\n")
        .expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn connect_hands_the_ticket_to_the_viewer_on_stdin_and_comes_back() {
    let env = env();
    let id = env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:0A";
    register_approved(&env, mac, "10");
    let dir = tempfile::tempdir().expect("dir");
    let viewer = recording_viewer(dir.path());
    let mut settings = env.settings();
    settings.viewers.spice = viewer.display().to_string();
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 10");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");

    click(&mut h, "Connect");
    wait_for(&mut h, "Lab PC is open in the viewer.");
    wait_for(&mut h, "The session with Lab PC ended.");

    let ticket = format!("ticket-{id}");
    let args = std::fs::read_to_string(dir.path().join("viewer.args")).expect("args recorded");
    let stdin = std::fs::read_to_string(dir.path().join("viewer.stdin")).expect("stdin recorded");
    assert_eq!(args, "-\n");
    assert!(stdin.starts_with("[virt-viewer]\ntype=spice\n"), "{stdin}");
    assert!(stdin.contains(&format!("password={ticket}\n")), "{stdin}");
    assert!(stdin.contains("host=192.0.2.10\n") && stdin.contains("delete-this-file=1\n"), "{stdin}");
    // The test desktop's policy has USB off.
    assert!(stdin.contains("enable-usbredir=0\n"), "{stdin}");
    assert!(!args.contains(&ticket));
}

/// A stand-in viewer that stays open (as a real one does) until it is ended, and
/// writes its process id beside itself.
fn lasting_viewer(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("viewer");
    std::fs::write(&path, "#!/bin/sh\ncat > \"$0.stdin\"\necho $$ > \"$0.pid\"\nexec sleep 60\n").expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn process_alive(pid: u32) -> bool {
    thindesk_tests::vm::process_alive(pid)
}

#[test]
fn log_out_closes_the_viewer_and_revokes_the_token() {
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:1A";
    register_approved(&env, mac, "20");
    let dir = tempfile::tempdir().expect("dir");
    let mut settings = env.settings();
    settings.viewers.spice = lasting_viewer(dir.path()).display().to_string();
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 20");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    click(&mut h, "Connect");
    wait_for(&mut h, "Lab PC is open in the viewer.");
    let pid_file = dir.path().join("viewer.pid");
    thindesk_tests::vm::wait_until("the viewer to start", Duration::from_secs(10), || pid_file.is_file());
    let pid: u32 = std::fs::read_to_string(&pid_file).expect("pid").trim().parse().expect("pid");
    assert!(process_alive(pid));
    let token = h.state().session().token().expect("signed in");
    let desktops = format!("{}/api/v1.0/users/me/desktops", env.server.server.url());
    let status = |token: &str| {
        env.runtime.block_on(async {
            let reply = reqwest::Client::new().get(&desktops).bearer_auth(token).send().await.expect("request");
            reply.status().as_u16()
        })
    };
    assert_eq!(status(&token), 200);

    click(&mut h, "Log out");
    wait_for(&mut h, "User name");
    thindesk_tests::vm::wait_until("the viewer to be closed", Duration::from_secs(5), || !process_alive(pid));
    thindesk_tests::vm::wait_until("the token to be revoked", Duration::from_secs(5), || status(&token) == 401);
    assert_eq!(h.state().session().token(), None);
    // The next student sees the login form, not the last one's desktops.
    assert!(h.query_by_label_contains("Lab PC").is_none());
}

#[test]
fn missing_viewer_is_a_message_not_a_crash() {
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:0B";
    register_approved(&env, mac, "11");
    let mut settings = env.settings();
    settings.viewers.spice = "/nonexistent/remote-viewer".into();
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 11");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    click(&mut h, "Connect");
    wait_for(&mut h, "The viewer program /nonexistent/remote-viewer is not installed");
    assert!(h.query_by_role_and_label(Role::Button, "Connect").is_some());
}

#[test]
fn kiosk_returns_to_login_after_a_session_and_when_idle() {
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:0C";
    register_approved(&env, mac, "12");
    let dir = tempfile::tempdir().expect("dir");
    let mut settings = Settings { kiosk: true, idle_logout_secs: 2, ..env.settings() };
    settings.viewers.spice = recording_viewer(dir.path()).display().to_string();
    let memory = Memory::in_memory();
    let mut h = app_with_memory(&env, env.server.server.url(), mac, settings, memory.clone());
    wait_for(&mut h, "Classroom b101 · seat 12");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    assert!(h.query_by_role_and_label(Role::Button, "Save connection file…").is_none());
    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    click(&mut h, "Connect");
    wait_for(&mut h, "Lab PC is open in the viewer.");
    // The viewer closes: back to the login screen, nobody's name left in it, nor the
    // name of their desktop.
    wait_for(&mut h, "User name");
    assert!(h.query_by_label("Your desktops").is_none());
    assert!(h.query_by_label_contains("Lab PC").is_none());
    assert_eq!(h.get_by_label("User name").value().as_deref(), Some(""));
    let args = std::fs::read_to_string(dir.path().join("viewer.args")).expect("args recorded");
    assert_eq!(args, "--kiosk\n--kiosk-quit=on-disconnect\n-\n");

    // Left alone on the desktop list, the kiosk logs out by itself.
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Your desktops");
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.query_by_label("Your desktops").is_some() {
        assert!(Instant::now() < deadline, "never logged out");
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(h.query_by_label_contains("Classroom b101 · seat 12").is_some());
    // A kiosk remembers nobody.
    assert_eq!(memory.get(thindesk_client::settings::LAST_USER), Ok(None));
}

#[test]
fn the_last_user_name_is_remembered_or_the_client_says_it_cannot() {
    let env = env();
    let mac = "02:00:00:00:00:0D";
    register_approved(&env, mac, "13");
    let memory = Memory::in_memory();
    let mut h = app_with_memory(&env, env.server.server.url(), mac, env.settings(), memory.clone());
    wait_for(&mut h, "Classroom b101 · seat 13");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Your desktops");
    drop(h);
    // The next start offers the same name; without remember_token, no token was kept.
    let mut h = app_with_memory(&env, env.server.server.url(), mac, env.settings(), memory.clone());
    wait_for(&mut h, "Classroom b101 · seat 13");
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.get_by_label("User name").value().as_deref() != Some("student") {
        assert!(Instant::now() < deadline, "user name not filled in");
        h.step();
    }
    assert_eq!(memory.get(thindesk_client::settings::TOKEN), Ok(None));
    assert!(h.query_by_label_contains("will not be remembered").is_none());

    let none = Memory::Unavailable("no Secret Service".into());
    let mut h = app_with_memory(&env, env.server.server.url(), mac, env.settings(), none);
    wait_for(&mut h, "No keyring service here: the user name will not be remembered.");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Your desktops");
}

#[test]
fn the_token_is_renewed_before_it_expires() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server =
        runtime.block_on(TestServer::start_with(Duration::from_secs(4), std::sync::Arc::new(TestCompute::new())));
    let env = Env { server, runtime };
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:0E";
    register_approved(&env, mac, "14");
    let mut h = harness(&env, mac);
    wait_for(&mut h, "Classroom b101 · seat 14");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    // Three lifetimes later the list still refreshes: each token was renewed in time.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        h.step();
        assert!(h.query_by_label_contains("session has ended").is_none(), "logged out: the token expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    click(&mut h, "Refresh");
    wait_for(&mut h, "Lab PC");
    assert!(h.query_by_label("Your desktops").is_some());
}

#[test]
fn the_chosen_language_is_saved_in_the_settings_file() {
    let env = env();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("client.toml");
    let setup = setup(&env.runtime, env.server.server.url(), "02:00:00:00:00:0F", env.settings());
    let mut h = launch(Setup { settings_path: Some(path.clone()), ..setup });
    wait_for(&mut h, "Register this terminal");
    click(&mut h, "简体中文");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(saved) = Settings::load(&path)
            && saved.language == Some(Lang::Zh)
        {
            break;
        }
        assert!(Instant::now() < deadline, "language not saved");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Presses and releases the primary button at `pos`, as a mouse does.
fn click_at(h: &mut Harness<'_, App>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.drag_at(pos);
    h.drop_at(pos);
}

/// Logs `STUDENT` in on a new approved terminal, the desktop "Lab PC" shown.
fn signed_in<'a>(env: &Env, mac: &str, seat: &str) -> Harness<'a, App> {
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    register_approved(env, mac, seat);
    let mut h = harness(env, mac);
    wait_for(&mut h, &format!("Classroom b101 · seat {seat}"));
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    h
}

#[test]
fn a_double_click_on_start_starts_once_and_reboots_nothing() {
    use thindesk_server::compute::PowerOp;
    let env = env();
    let mut h = signed_in(&env, "02:00:00:00:00:21", "21");
    wait_for(&mut h, "Off");
    let start = h.get_by_role_and_label(Role::Button, "Start").rect();
    let reboot = h.get_by_role_and_label(Role::Button, "Reboot").rect();
    // The two clicks of a double-click at the same place; the server is fast enough
    // to have answered the first before the second comes.
    click_at(&mut h, start.center());
    h.step();
    wait_for(&mut h, "Start: done");
    click_at(&mut h, start.center());
    h.step();
    wait_for(&mut h, "Running");
    // Then the list shows the new state, and nothing moved under the pointer.
    for _ in 0..10 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.get_by_role_and_label(Role::Button, "Start").rect(), start);
    assert_eq!(h.get_by_role_and_label(Role::Button, "Reboot").rect(), reboot);
    let operations: Vec<PowerOp> = env.server.compute.operations().into_iter().map(|(_, op)| op).collect();
    assert_eq!(operations.iter().filter(|op| !matches!(op, PowerOp::Start)).count(), 0, "{operations:?}");
    assert_eq!(operations.len(), 1, "started once: {operations:?}");
    assert!(h.query_by_label_contains("Restart Lab PC?").is_none(), "no confirmation opened either");
}

#[test]
fn reboot_and_shut_down_ask_first_and_escape_or_enter_answer() {
    use thindesk_server::compute::PowerOp;
    let env = env();
    let mut h = signed_in(&env, "02:00:00:00:00:22", "22");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    wait_for(&mut h, "Start: done");
    let before = env.server.compute.operations().len();

    // Reboot asks; Escape is Cancel.
    click(&mut h, "Reboot");
    wait_for(&mut h, "Restart Lab PC? Unsaved work in it will be lost.");
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(h.query_by_label_contains("Restart Lab PC?").is_none(), "Escape closed the question");
    assert_eq!(env.server.compute.operations().len(), before, "and did nothing");

    // Shut down asks too; Escape closes it.
    click(&mut h, "Shut down");
    wait_for(&mut h, "Unsaved work in it will be lost");
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(h.query_by_label_contains("Unsaved work").is_none());

    // The keyboard starts on the question's first button: Enter says yes.
    click(&mut h, "Reboot");
    wait_for(&mut h, "Restart Lab PC?");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Reboot: done");
    let operations = env.server.compute.operations();
    assert!(matches!(operations.last(), Some((_, PowerOp::Reboot))), "{operations:?}");
}

#[test]
fn the_keyboard_starts_in_the_first_field_tabs_in_order_and_enter_submits() {
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:23";
    register_approved(&env, mac, "23");
    let mut h = harness(&env, mac);
    wait_for(&mut h, "Classroom b101 · seat 23");
    h.step();
    assert!(h.get_by_label("User name").is_focused(), "the name field has the keyboard");
    h.get_by_label("User name").type_text(STUDENT.0);
    h.step();
    // Tab goes to the password, then to Log in.
    h.key_press(egui::Key::Tab);
    h.step();
    assert!(h.get_by_label("Password").is_focused());
    h.get_by_label("Password").type_text("not-the-password");
    h.step();
    h.key_press(egui::Key::Tab);
    h.step();
    assert!(h.get_by_role_and_label(Role::Button, "Log in").is_focused());
    // Enter on the button logs in; a wrong password puts the keyboard back on it.
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Wrong user name or password.");
    h.step();
    assert!(h.get_by_label("Password").is_focused(), "back on the password after a wrong one");
    h.get_by_label("Password").type_text(STUDENT.1);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Your desktops");

    // The password dialog: the keyboard in its first field, Enter saves, Escape closes.
    click(&mut h, "Change password");
    h.step();
    assert!(h.get_by_label("Current password").is_focused());
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(h.query_by_label("Current password").is_none(), "Escape closed the dialog");
    click(&mut h, "Change password");
    h.step();
    h.get_by_label("Current password").type_text(STUDENT.1);
    h.key_press(egui::Key::Tab);
    h.step();
    h.get_by_label("New password").type_text("a-new-password-2");
    h.key_press(egui::Key::Tab);
    h.step();
    h.get_by_label("Repeat new password").type_text("a-new-password-2");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Password changed.");
}

#[test]
fn enter_registers_a_terminal_from_the_seat_field() {
    let env = env();
    let mut h = harness(&env, "02:00:00:00:00:24");
    wait_for(&mut h, "b201 (two floor)");
    h.step();
    assert!(h.get_by_label("Seat number").is_focused(), "the seat field has the keyboard");
    h.get_by_label("Seat number").type_text("24");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Waiting for approval");
}

#[test]
fn leaving_closes_the_viewers_and_revokes_the_token_before_it_returns() {
    use thindesk_client::leaving::Session;
    let env = env();
    let token = env.runtime.block_on(env.server.token(STUDENT));
    let bearer = format!("Bearer {token}");
    let status = || env.runtime.block_on(env.server.get("/users/me/desktops", Some(&bearer))).status.as_u16();
    assert_eq!(status(), 200);
    let mut viewer = std::process::Command::new("sleep").arg("60").spawn().expect("a stand-in viewer");
    let session = Session::default();
    session.signed_in(&ApiClient::new(&env.server.server.url(), Pin::new(Some(env.pin()))), &token);
    assert!(session.viewer_opened(session.generation(), viewer.id()));
    // As the way out runs it: on a thread of no runtime, synchronously.
    session.hand_over().run_blocking();
    assert_eq!(status(), 401, "the token is revoked when the hand-over returns");
    let ended = viewer.wait().expect("the viewer ends");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&ended), Some(15), "SIGTERM");
}

/// The seconds the unreachable banner counts down from, or `None` while it is trying.
fn banner_seconds(h: &Harness<'_, App>) -> Option<Option<u64>> {
    let node = h.query_by_label_contains("Cannot reach the server at")?;
    // A label's text is its accessible value.
    let label = egui_kittest::kittest::NodeT::accesskit_node(&node).value().unwrap_or_default();
    if label.contains("Trying again") {
        return Some(None);
    }
    let secs = label.rsplit_once("Retrying in ")?.1.split_once(" s")?.0.parse().ok()?;
    Some(Some(secs))
}

#[test]
fn the_retry_countdown_counts_down_to_each_try_and_only_the_try_restarts_it() {
    let env = env();
    let mac = "02:00:00:00:00:25";
    let mut h = signed_in(&env, mac, "25");
    wait_for(&mut h, "Your desktops");
    // The server goes away while the desktop list (refreshed every 5 s) is shown.
    let Env { server, runtime } = env;
    runtime.block_on(server.server.shutdown());
    wait_for(&mut h, "Cannot reach the server at");
    let start = Instant::now();
    let mut seen: Vec<Option<u64>> = Vec::new();
    while start.elapsed() < Duration::from_secs(18) {
        h.step();
        if let Some(shown) = banner_seconds(&h)
            && seen.last() != Some(&shown)
        {
            seen.push(shown);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    // 1, 2, 4, 8 s between tries: each countdown runs down to 1, then the client
    // tries ("Trying again…" while it does) and the next, longer one begins. The list's
    // refresh failing every 5 s meanwhile restarts nothing.
    let numbers: Vec<u64> = seen.iter().flatten().copied().collect();
    assert!(numbers.iter().all(|&n| (1..=30).contains(&n)), "{seen:?}");
    for pair in seen.windows(2) {
        if let [Some(before), Some(after)] = pair {
            assert!(after < before, "a countdown went up without a try between: {seen:?}");
        }
    }
    // Every countdown that was followed by a try ran down to 1 first.
    for (i, shown) in seen.iter().enumerate().skip(1) {
        if shown.is_none() {
            assert_eq!(seen[i - 1], Some(1), "a try came before its countdown ended: {seen:?}");
        }
    }
    assert!(numbers.contains(&8) && numbers.contains(&4), "the pauses grow: {seen:?}");
    let from_eight: Vec<u64> = numbers.iter().copied().skip_while(|&n| n != 8).take(8).collect();
    assert_eq!(from_eight, [8, 7, 6, 5, 4, 3, 2, 1], "every second shown once, in order: {seen:?}");
}

#[test]
fn connect_looks_the_desktop_up_afresh_and_a_viewer_that_cannot_connect_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let env = env();
    let id = env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:26";
    register_approved(&env, mac, "26");
    // A viewer that cannot connect: it reads its file, says nothing, ends with an error.
    let dir = tempfile::tempdir().expect("dir");
    let viewer = dir.path().join("viewer");
    std::fs::write(&viewer, "#!/bin/sh\ncat > \"$0.stdin\"\nexit 1\n").expect("script");
    std::fs::set_permissions(&viewer, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut settings = env.settings();
    settings.viewers.spice = viewer.display().to_string();
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 26");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");

    // Shut down elsewhere while the list still says Running: Connect asks first.
    let shut = env.runtime.block_on(env.server.post(
        &format!("/desktops/{id}/action"),
        Some(&basic(STUDENT.0, STUDENT.1)),
        serde_json::json!({"shutdown": null}),
    ));
    shut.data();
    click(&mut h, "Connect");
    wait_for(&mut h, "Lab PC is not running any more: start it first.");
    assert!(!dir.path().join("viewer.stdin").exists(), "no viewer was started for a stopped desktop");

    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    click(&mut h, "Connect");
    wait_for(&mut h, "Lab PC could not be opened: the viewer could not connect to it.");
    assert!(dir.path().join("viewer.stdin").exists(), "the viewer was started");
    assert!(h.query_by_label_contains("is open in the viewer").is_none());
}

/// An RDP desktop whose viewer refuses its changed certificate: the student is told so,
/// in their language, and to ask the teacher. (The viewer here says what xfreerdp 2
/// says and exits as it does; `rdp_pin` runs the real one.)
#[test]
fn a_changed_rdp_certificate_is_explained_in_the_students_words() {
    use std::os::unix::fs::PermissionsExt;
    use thindesk_shared::ConnectionType;
    let env = env();
    env.runtime.block_on(env.server.add_image("win", ConnectionType::Rdp, "Administrator", "image-password"));
    let id = env.runtime.block_on(env.server.create_desktop_from_image(STUDENT.0, "Lab PC", "win"));
    let mac = "02:00:00:00:00:27";
    register_approved(&env, mac, "27");
    let dir = tempfile::tempdir().expect("dir");
    let viewer = dir.path().join("xfreerdp");
    std::fs::write(
        &viewer,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\nenv > \"$0.env\"\ncat > \"$0.stdin\"\n\
         echo '[ERROR][com.freerdp.crypto] - @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @' >&2\n\
         exit 143\n",
    )
    .expect("script");
    std::fs::set_permissions(&viewer, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut settings = env.settings();
    settings.viewers.rdp = viewer.display().to_string();
    settings.viewers.rdp_records = Some(dir.path().join("rdp"));
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 27");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    click(&mut h, "Connect");
    wait_for(&mut h, "Lab PC was not opened: it did not show the same security certificate");
    assert!(h.query_by_label_contains("ask your teacher").is_some());
    assert!(h.query_by_label_contains("is open in the viewer").is_none());
    click(&mut h, "简体中文");
    wait_for(&mut h, "没有打开 Lab PC：它出示的安全证书与这台电脑上次连接时不同");
    assert!(h.query_by_label_contains("请找老师帮忙").is_some());

    let args = std::fs::read_to_string(dir.path().join("xfreerdp.args")).expect("args recorded");
    assert!(args.lines().any(|arg| arg == "/cert:tofu,deny"), "{args}");
    assert!(!args.contains("ignore") && !args.contains("image-password"), "{args}");
    let records = dir.path().join("rdp").join(&id);
    let env_seen = std::fs::read_to_string(dir.path().join("xfreerdp.env")).expect("env recorded");
    assert!(env_seen.lines().any(|line| line == format!("XDG_CONFIG_HOME={}", records.display())), "{env_seen}");
    assert!(records.is_dir(), "the desktop's own record directory");
}

/// Whether `text` has a Latin letter (an English word left in the Chinese UI).
fn has_latin(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_alphabetic())
}

#[test]
fn the_servers_refusals_are_said_in_the_clients_words_in_chinese() {
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:27";
    let mut h = harness(&env, mac);
    wait_for(&mut h, "Register this terminal");
    click(&mut h, "简体中文");
    wait_for(&mut h, "注册此终端");
    // No seat: the server's field error (seat_number: "is required"), in Chinese.
    click(&mut h, "注册");
    wait_for(&mut h, "请填写座位号。");
    let said = h.get_by_label_contains("请填写座位号").value().unwrap_or_default();
    assert!(!has_latin(&said), "{said}");
    type_into(&mut h, "座位号", "27");
    click(&mut h, "注册");
    // The waiting screen (its title; the registration form's intro also speaks of approval).
    wait_for(&mut h, "等待审批");
    env.server.services().terminals.set_state(&Actor::system(), mac, TerminalState::Approved).expect("approve");
    wait_for(&mut h, "用户名");
    type_into(&mut h, "用户名", STUDENT.0);
    type_into(&mut h, "密码", STUDENT.1);
    click(&mut h, "登录");
    wait_for(&mut h, "Lab PC");
    // A new password the server finds too short: its rule, in Chinese.
    click(&mut h, "修改密码");
    type_into(&mut h, "当前密码", STUDENT.1);
    type_into(&mut h, "新密码", "short");
    type_into(&mut h, "再次输入新密码", "short");
    click(&mut h, "保存");
    wait_for(&mut h, "新密码太短");
    let said = h.get_by_label_contains("新密码太短").value().unwrap_or_default();
    assert!(!has_latin(&said), "{said}");
}

#[test]
fn the_demo_hint_follows_a_password_change_and_the_language() {
    use thindesk_client::screens::login::{DemoHint, DemoLogin};
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:28";
    register_approved(&env, mac, "28");
    let login = |(user, password): (&str, &str)| DemoLogin { user: user.into(), password: Some(password.into()) };
    let hint = Some(DemoHint { student: login(STUDENT), admin: login(ADMIN) });
    let mut h = launch(Setup { demo_hint: hint, ..setup(&env.runtime, env.server.server.url(), mac, env.settings()) });
    wait_for(&mut h, &format!("Demo: {} / {}", STUDENT.0, STUDENT.1));
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    click(&mut h, "Change password");
    type_into(&mut h, "Current password", STUDENT.1);
    type_into(&mut h, "New password", "a-new-password-3");
    type_into(&mut h, "Repeat new password", "a-new-password-3");
    click(&mut h, "Save");
    wait_for(&mut h, "Password changed.");
    click(&mut h, "Log out");
    wait_for(&mut h, &format!("Demo: {} / (the password you chose)", STUDENT.0));
    assert!(h.query_by_label_contains(STUDENT.1).is_none(), "the old password is shown nowhere");
    click(&mut h, "简体中文");
    wait_for(&mut h, "演示：");
    let hint = h.get_by_label_contains("演示：").value().unwrap_or_default();
    assert!(hint.contains("（你设置的密码）") && hint.contains("管理员："), "{hint}");
}

/// Steps (with short pauses) until `done` holds, or fails after ten seconds.
fn step_until(h: &mut Harness<'_, App>, what: &str, mut done: impl FnMut(&Harness<'_, App>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn button_focused(h: &Harness<'_, App>, label: &str) -> bool {
    h.query_by_role_and_label(Role::Button, label).is_some_and(|b| b.is_focused())
}

#[test]
fn the_desktop_list_has_the_keyboard_and_the_top_bar_tabs_left_to_right() {
    let env = env();
    let mut h = signed_in(&env, "02:00:00:00:00:31", "31");
    wait_for(&mut h, "Off");
    // The first desktop's main action has the keyboard: Start (Connect needs it running).
    step_until(&mut h, "Start to have the keyboard", |h| button_focused(h, "Start"));
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Start: done");
    wait_for(&mut h, "Running");
    // The top bar, left to right in the order Tab takes it.
    let order = ["Change password", "Log out", "Settings", "简体中文"];
    let xs: Vec<f32> = order.iter().map(|label| h.get_by_role_and_label(Role::Button, label).rect().left()).collect();
    assert!(xs.windows(2).all(|pair| pair[0] < pair[1]), "{order:?} at {xs:?}");
    h.get_by_role_and_label(Role::Button, order[0]).focus();
    h.step();
    for label in &order[1..] {
        h.key_press(egui::Key::Tab);
        h.step();
        assert!(button_focused(&h, label), "Tab went to {label}");
    }
}

#[test]
fn the_unreachable_banner_moves_nothing_on_the_page() {
    let env = env();
    let mut h = signed_in(&env, "02:00:00:00:00:32", "32");
    wait_for(&mut h, "Off");
    for _ in 0..5 {
        h.step();
    }
    let labels = ["Start", "Reboot", "Shut down", "Refresh"];
    let before: Vec<egui::Rect> = labels.iter().map(|l| h.get_by_role_and_label(Role::Button, l).rect()).collect();
    let Env { server, runtime } = env;
    runtime.block_on(server.server.shutdown());
    wait_for(&mut h, "Cannot reach the server at");
    h.step();
    let after: Vec<egui::Rect> = labels.iter().map(|l| h.get_by_role_and_label(Role::Button, l).rect()).collect();
    assert_eq!(before, after, "the banner moved the page");
}

#[test]
fn waiting_and_rejected_screens_put_the_keyboard_on_check_again() {
    let env = env();
    // Waiting: its one button has the keyboard.
    let mut h = harness(&env, "02:00:00:00:00:33");
    wait_for(&mut h, "Register this terminal");
    type_into(&mut h, "Seat number", "33");
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Waiting for approval");
    step_until(&mut h, "Check again to have the keyboard", |h| button_focused(h, "Check again"));

    // Rejected (which polls nothing): Enter checks again, and finds it approved.
    let mac = "02:00:00:00:00:34";
    env.server.services().terminals.set_registration_mode(&Actor::system(), RegistrationMode::Closed).expect("mode");
    let mut h = harness(&env, mac);
    wait_for(&mut h, "Register this terminal");
    type_into(&mut h, "Seat number", "34");
    click(&mut h, "Register");
    wait_for(&mut h, "Registration rejected");
    step_until(&mut h, "Check again to have the keyboard", |h| button_focused(h, "Check again"));
    env.server.services().terminals.set_state(&Actor::system(), mac, TerminalState::Approved).expect("approve");
    h.key_press(egui::Key::Enter);
    h.step();
    wait_for(&mut h, "Classroom b101 · seat 34");
}

#[test]
fn escape_closes_the_settings_and_the_connection_file_warning() {
    let env = env();
    let mut h = signed_in(&env, "02:00:00:00:00:35", "35");
    click(&mut h, "Settings");
    wait_for(&mut h, "SPICE viewer program");
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(h.query_by_label("SPICE viewer program").is_none(), "Escape closed the settings");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    wait_for(&mut h, "Start: done");
    step_until(&mut h, "the list to settle", |h| {
        h.query_by_role_and_label(Role::Button, "Save connection file…")
            .is_some_and(|b| !egui_kittest::kittest::NodeT::accesskit_node(&b).is_disabled())
    });
    click(&mut h, "Save connection file…");
    wait_for(&mut h, "Keep it private");
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(h.query_by_label_contains("Keep it private").is_none(), "Escape closed the warning");
}

#[test]
fn a_started_desktop_shows_starting_until_its_guest_has_had_time_to_boot() {
    let env = env();
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:36";
    register_approved(&env, mac, "36");
    let settings = Settings { boot_wait_secs: 2, ..env.settings() };
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 36");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Off");
    // Before the click: the click's own frames may already take the action's answer.
    let started = Instant::now();
    click(&mut h, "Start");
    wait_for(&mut h, "Starting…");
    assert!(h.query_by_label("Running").is_none(), "not running while it boots");
    wait_for(&mut h, "Start: done");
    // The server says it runs at once (the test double); the guest gets its 2 s.
    step_until(&mut h, "the desktop to be shown running", |h| h.query_by_label("Running").is_some());
    assert!(started.elapsed() >= Duration::from_secs(2), "shown running after {:?}", started.elapsed());
    assert!(h.query_by_label("Starting…").is_none());
}

#[test]
fn a_wait_shows_its_busy_sign_only_after_300_ms() {
    let env = env();
    // A server that takes connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", hung.local_addr().expect("addr"));
    // Before the harness: building it may already run the first frame, and the lookup.
    let start = Instant::now();
    let mut h = app(&env, url, "02:00:00:00:00:37", env.settings());
    h.step();
    wait_for(&mut h, "Contacting the server…");
    if start.elapsed() < Duration::from_millis(250) {
        assert!(h.query_all_by_role(Role::ProgressIndicator).next().is_none(), "no spinner before 300 ms");
    }
    std::thread::sleep(Duration::from_millis(350));
    h.step();
    assert!(h.query_all_by_role(Role::ProgressIndicator).next().is_some(), "a spinner after 300 ms");
    drop(hung);
}

/// A stand-in viewer that records each start (`viewer.starts`, one line each, its
/// standard input in `viewer.stdin.N`) and stays open until a file `viewer.drop`
/// appears; then it says it lost the connection and ends with an error, as
/// remote-viewer does when the network or the server goes.
fn dropping_viewer(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("viewer");
    std::fs::write(
        &path,
        "#!/bin/sh\necho start >> \"$0.starts\"\nn=$(wc -l < \"$0.starts\")\ncat > \"$0.stdin.$n\"\n\
         while [ ! -e \"$0.drop\" ]; do sleep 0.05; done\nrm -f \"$0.drop\"\n\
         echo 'Connection lost' >&2\nexit 1\n",
    )
    .expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn starts(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("viewer.starts")).map_or(0, |text| text.lines().count())
}

#[test]
fn reconnect_after_the_server_comes_back() {
    let env = env();
    let id = env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Lab PC"));
    let mac = "02:00:00:00:00:38";
    register_approved(&env, mac, "38");
    let dir = tempfile::tempdir().expect("dir");
    let mut settings = env.settings();
    settings.viewers.spice = dropping_viewer(dir.path()).display().to_string();
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 38");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Off");
    click(&mut h, "Start");
    wait_for(&mut h, "Running");
    click(&mut h, "Connect");
    wait_for(&mut h, "Lab PC is open in the viewer.");
    step_until(&mut h, "the viewer to start", |_| starts(dir.path()) == 1);

    // The server goes (the viewer's connection with it), and stays away a while.
    let Env { server, runtime } = env;
    let stopped = runtime.block_on(server.stop());
    std::fs::write(dir.path().join("viewer.drop"), "").expect("drop");
    wait_for(&mut h, "The connection to Lab PC was lost.");
    let away = Instant::now() + Duration::from_secs(4);
    while Instant::now() < away {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(starts(dir.path()), 1, "no viewer while the server is away");

    // Back on the same address and data: the same desktop opens again, by itself.
    let server = runtime.block_on(stopped.start());
    step_until(&mut h, "the viewer to start again", |_| starts(dir.path()) == 2);
    wait_for(&mut h, "Lab PC is open in the viewer.");
    // The stand-in records its start before its standard input has all arrived.
    let stdin = dir.path().join("viewer.stdin.2");
    let ticket = format!("password=ticket-{id}\n");
    step_until(&mut h, "the ticket on the viewer's stdin", |_| {
        std::fs::read_to_string(&stdin).is_ok_and(|text| text.contains(&ticket))
    });

    // A viewer the student closes (a clean exit) is not reopened.
    click(&mut h, "Log out");
    wait_for(&mut h, "User name");
    for _ in 0..20 {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(starts(dir.path()), 2);
    drop(server);
}

#[test]
fn the_login_shows_the_school_and_a_tile_shows_the_desktops_os_and_size() {
    use thindesk_server::service::catalogue::Flavor;
    let env = env();
    env.runtime.block_on(env.server.add_image("Debian 12", thindesk_shared::ConnectionType::Spice, "student", "os-pw"));
    let services = env.server.services().clone();
    let flavor = Flavor { name: "medium".into(), vcpus: 2, ram_mib: 4096, disk_gib: 20 };
    services.catalogue.add_flavor(&Actor::system(), &flavor).expect("flavor");
    env.runtime.block_on(thindesk_tests::desktop_from_image(&services, STUDENT.0, "Lab PC", "Debian 12", "medium"));
    let mac = "02:00:00:00:00:39";
    register_approved(&env, mac, "39");
    let settings = Settings { school_name: Some("Riverside Middle School".into()), ..env.settings() };
    let mut h = app(&env, env.server.server.url(), mac, settings);
    wait_for(&mut h, "Classroom b101 · seat 39");
    assert!(h.query_all_by_label("Riverside Middle School").count() >= 1, "the school's name");
    log_in(&mut h, STUDENT.0, STUDENT.1);
    wait_for(&mut h, "Lab PC");
    wait_for(&mut h, "Debian 12 · 2 CPU · 4 GB memory · 20 GB disk");
    // One Connect a tile, wider than the power actions set apart below it.
    let connect = h.get_by_role_and_label(Role::Button, "Connect").rect();
    let start = h.get_by_role_and_label(Role::Button, "Start").rect();
    assert!(connect.width() > 2.0 * start.width() && connect.bottom() < start.top(), "{connect:?} {start:?}");
    click(&mut h, "简体中文");
    wait_for(&mut h, "Debian 12 · 2 核处理器 · 4 GB 内存 · 20 GB 硬盘");
}

/// When the app's next frame is due, as its window's event loop learns it: each request
/// for a repaint (now, or after a delay) that makes the next frame come sooner.
fn frames_asked_for(h: &Harness<'_, App>) -> std::sync::Arc<std::sync::Mutex<Option<Instant>>> {
    let due = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let seen = due.clone();
    h.ctx.set_request_repaint_callback(move |info| {
        let at = Instant::now() + info.delay;
        let mut due = seen.lock().expect("not poisoned");
        *due = Some(due.map_or(at, |due| due.min(at)));
    });
    due
}

/// Runs the app as an event loop would for `time`: a frame only once one is due, none
/// otherwise. Returns how many frames ran; stops early once `done` holds after a frame.
fn run_as_event_loop(
    h: &mut Harness<'_, App>,
    due: &std::sync::Mutex<Option<Instant>>,
    time: Duration,
    mut done: impl FnMut(&Harness<'_, App>) -> bool,
) -> usize {
    let end = Instant::now() + time;
    let mut frames = 0;
    while Instant::now() < end {
        let now = Instant::now();
        let run = {
            let mut due = due.lock().expect("not poisoned");
            let run = due.is_some_and(|at| at <= now);
            if run {
                *due = None;
            }
            run
        };
        if run {
            h.step();
            frames += 1;
            if done(h) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    frames
}

#[test]
fn an_unchanged_list_costs_no_frame_and_a_changed_one_is_shown() {
    use thindesk_client::screens::desktops::DESKTOP_REFRESH;
    let env = env();
    let mut h = signed_in(&env, "02:00:00:00:00:26", "26");
    let due = frames_asked_for(&h);
    // The frames still asked for (the list just shown) run out.
    *due.lock().expect("not poisoned") = Some(Instant::now());
    run_as_event_loop(&mut h, &due, Duration::from_secs(2), |_| false);
    // Two refreshes and a half, the list the same each time: not one frame.
    let frames = run_as_event_loop(&mut h, &due, DESKTOP_REFRESH * 5 / 2, |_| false);
    assert_eq!(frames, 0, "frames while nothing changed");
    // A new desktop: the next refresh wakes the UI, and it is shown.
    env.runtime.block_on(env.server.create_desktop(STUDENT.0, "Second PC"));
    let shown = |h: &Harness<'_, App>| h.query_by_label_contains("Second PC").is_some();
    let frames = run_as_event_loop(&mut h, &due, DESKTOP_REFRESH * 2, shown);
    assert!(shown(&h), "the changed list was not shown");
    assert!((1..=3).contains(&frames), "{frames} frames for the change");
}

#[test]
fn an_unchanged_wait_for_approval_costs_no_frame_and_the_approval_is_shown() {
    use thindesk_client::app::WAITING_POLL;
    let env = env();
    let mac = "02:00:00:00:00:27";
    register_approved(&env, mac, "27");
    let terminals = &env.server.services().terminals;
    terminals.set_state(&Actor::system(), mac, TerminalState::Waiting).expect("waiting");
    let mut h = harness(&env, mac);
    wait_for(&mut h, "Waiting for approval");
    let due = frames_asked_for(&h);
    *due.lock().expect("not poisoned") = Some(Instant::now());
    run_as_event_loop(&mut h, &due, Duration::from_secs(1), |_| false);
    // Three polls and more, the terminal still waiting: not one frame.
    let frames = run_as_event_loop(&mut h, &due, WAITING_POLL * 7 / 2, |_| false);
    assert_eq!(frames, 0, "frames while nothing changed");
    terminals.set_state(&Actor::system(), mac, TerminalState::Approved).expect("approved");
    let shown = |h: &Harness<'_, App>| h.query_by_label_contains("Classroom b101 · seat 27").is_some();
    let frames = run_as_event_loop(&mut h, &due, WAITING_POLL * 2, shown);
    assert!(shown(&h), "the approval was not shown");
    assert!((1..=3).contains(&frames), "{frames} frames for the approval");
}
