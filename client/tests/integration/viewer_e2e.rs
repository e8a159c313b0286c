//! End to end: the client's viewer plan and launch open the demo's real desktop VM
//! in the real `remote-viewer`, under Xvfb, and the screen shows the guest.

use crate::util;
use std::path::PathBuf;
use std::time::Duration;
use thindesk_client::viewer::{self, Launch, ViewerPrograms};
use thindesk_server::demo::Demo;
use thindesk_shared::Desktop;
use thindesk_tests::screen::VirtualScreen;
use thindesk_tests::vm;

/// The demo banner's background: VGA blue.
const BANNER_BLUE: [u8; 3] = [0, 0, 170];

#[tokio::test(flavor = "multi_thread")]
async fn connect_opens_the_demo_desktop_in_remote_viewer() {
    if !util::vm_screen_tools_present("the client's remote-viewer end-to-end test", &["remote-viewer"]) {
        return;
    }
    let _vm = util::one_vm_at_a_time().await;
    let demo = Demo::start("127.0.0.1:0".parse().expect("address")).await.expect("demo starts");
    let (user, password) = demo.logins.student.clone();
    let listed = thindesk_tests::my_desktops(&demo.url(), &user, &password).await;
    let desktop: Desktop = serde_json::from_value(listed["data"]["desktop_list"][0].clone()).expect("a desktop");
    let serial = demo.data_dir().join(format!("vms/{}/serial.log", desktop.id));
    tokio::task::spawn_blocking(move || {
        vm::wait_until("the demo guest's banner", Duration::from_secs(120), || {
            std::fs::read_to_string(&serial).is_ok_and(|log| log.contains("thindesk-demo banner"))
        })
    })
    .await
    .expect("joined");

    let screen = VirtualScreen::start(1024, 768);
    let plan = viewer::plan(&desktop, &ViewerPrograms::default(), false).expect("a SPICE plan");
    let ticket = desktop.connection_info[0].password.clone().expect("ticket");
    assert!(plan.stdin.contains(&ticket), "the ticket goes on stdin");
    // TLS only, trusting the server's authority: no plain port for the viewer.
    assert!(plan.stdin.contains("\ntls-port=") && plan.stdin.contains("\nsecure-channels=all\n"), "TLS");
    assert!(plan.stdin.contains("\nca=-----BEGIN CERTIFICATE-----\\n") && !plan.stdin.contains("\nport="), "TLS");
    // `env` puts the viewer on the test's own screen; the plan is otherwise unchanged.
    let on_screen = Launch {
        program: "env".into(),
        args: [format!("DISPLAY={}", screen.display), plan.program.clone()]
            .into_iter()
            .chain(plan.args.clone())
            .collect(),
        ..plan
    };
    let mut child = viewer::start(&on_screen).await.expect("remote-viewer starts");
    let pid = child.id().expect("pid");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("client-connect-remote-viewer.png");
    let found = tokio::task::spawn_blocking(move || {
        let mut blue = 0;
        vm::wait_until("remote-viewer to show the guest's banner", Duration::from_secs(60), || {
            blue = screen.screenshot(&shot).count_near(BANNER_BLUE, 30);
            blue > 10_000
        });
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        (blue, String::from_utf8_lossy(&argv).into_owned(), shot)
    })
    .await
    .expect("joined");
    let (blue, argv, shot) = found;
    assert!(argv.contains("remote-viewer") && !argv.contains(&ticket), "no ticket in the viewer's argv: {argv}");
    eprintln!("remote-viewer shows the demo desktop ({blue} banner pixels): {}", shot.display());
    let _ = child.child.kill().await;
    demo.stop().await;
}

/// The whole hand-over with real things: the app logs in to the demo, Connect opens
/// the desktop in the real `remote-viewer`, which shows the guest; Log out closes it,
/// and the ticket it used is refused by the desktop's SPICE server.
#[test]
fn log_out_closes_remote_viewer_and_its_ticket_no_longer_opens_the_desktop() {
    use crate::gui::{click, launch, log_in, setup, wait_for};
    use egui_kittest::kittest::Queryable;
    use thindesk_client::settings::Settings;
    use thindesk_tests::spice;

    if !util::vm_screen_tools_present("the client's hand-over end-to-end test", &["remote-viewer"]) {
        return;
    }
    let _vm = util::one_vm_at_a_time_blocking();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let demo = runtime.block_on(Demo::start("127.0.0.1:0".parse().expect("address"))).expect("demo starts");
    let (user, password) = demo.logins.student.clone();
    let listed = runtime.block_on(thindesk_tests::my_desktops(&demo.url(), &user, &password));
    let desktop: Desktop = serde_json::from_value(listed["data"]["desktop_list"][0].clone()).expect("a desktop");
    let spice = desktop.connection_info.iter().find(|c| c.password.is_some()).expect("a SPICE display").clone();
    let (port, ticket): (u16, String) =
        (spice.port.expect("port").parse().expect("a port"), spice.password.expect("ticket"));
    let ca = spice.ca.expect("the display's authority");
    let serial = demo.data_dir().join(format!("vms/{}/serial.log", desktop.id));
    let url = demo.url();
    let pin = thindesk_tests::certificate_fingerprint(demo.data_dir());
    // However the test ends, a failed assertion included, the demo's machine goes.
    let _demo = StopDemo { runtime: &runtime, demo: Some(demo) };
    vm::wait_until("the demo guest's banner", Duration::from_secs(120), || {
        std::fs::read_to_string(&serial).is_ok_and(|log| log.contains("thindesk-demo banner"))
    });

    // The real remote-viewer, on the test's own screen (the process's environment is
    // the other tests' too): a wrapper that sets DISPLAY and becomes remote-viewer.
    let screen = VirtualScreen::start(1024, 768);
    let dir = tempfile::tempdir().expect("dir");
    let wrapper = dir.path().join("remote-viewer");
    std::fs::write(&wrapper, format!("#!/bin/sh\nDISPLAY={} exec remote-viewer \"$@\"\n", screen.display))
        .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let mut settings =
        Settings { server_fingerprint: Some(pin.parse().expect("a fingerprint")), ..Settings::default() };
    settings.viewers.spice = wrapper.display().to_string();
    let mut h = launch(setup(&runtime, url, "02:00:00:00:00:E2", settings));
    // The demo registers terminals at once.
    wait_for(&mut h, "Register this terminal");
    h.get_by_label("Seat number").type_text("42");
    h.step();
    click(&mut h, "Register");
    wait_for(&mut h, "seat 42");
    log_in(&mut h, &user, &password);
    wait_for(&mut h, "Demo desktop");
    wait_for(&mut h, "Running");
    click(&mut h, "Connect");
    wait_for(&mut h, "is open in the viewer");
    let viewers = h.state().session().viewers();
    assert_eq!(viewers.len(), 1, "one viewer opened");
    let pid = viewers[0];
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("client-hand-over-remote-viewer.png");
    vm::wait_until("remote-viewer to show the guest", Duration::from_secs(60), || {
        h.step();
        screen.screenshot(&shot).count_near(BANNER_BLUE, 30) > 10_000
    });

    click(&mut h, "Log out");
    wait_for(&mut h, "User name");
    vm::wait_until("remote-viewer to be closed", Duration::from_secs(10), || {
        h.step();
        !vm::process_alive(pid)
    });
    // The logout goes to the server as the viewer is closed; the server then gives the
    // desktop a new ticket, within moments.
    vm::wait_until("the old ticket to be refused", Duration::from_secs(10), || {
        h.step();
        spice::try_ticket(port, &ca, &ticket).expect("a SPICE handshake") == spice::Verdict::Refused(7)
    });
}

/// Stops the demo when dropped: its machine destroyed and files removed, also when a
/// test fails (a demo only dropped removes its files and leaves its QEMU running).
struct StopDemo<'a> {
    runtime: &'a tokio::runtime::Runtime,
    demo: Option<Demo>,
}

impl Drop for StopDemo<'_> {
    fn drop(&mut self) {
        if let Some(demo) = self.demo.take() {
            self.runtime.block_on(demo.stop());
        }
    }
}
