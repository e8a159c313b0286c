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
    let _ = child.kill().await;
    demo.stop().await;
}
