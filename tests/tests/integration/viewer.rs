//! End to end: the real `remote-viewer`, given a machine's connection file on its
//! standard input, shows the guest's screen; with a wrong ticket it does not.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use thindesk_server::compute::qemu::QemuCompute;
use thindesk_server::compute::{Compute, Display, PowerOp};
use thindesk_tests::screen::{self, VirtualScreen};
use thindesk_tests::vm::{self, Cleanup};

/// The demo banner's background: VGA blue.
const BANNER_BLUE: [u8; 3] = [0, 0, 170];
/// Three 80-column text rows of blue are about 35,000 pixels; a dialog has none.
const BANNER_PIXELS: usize = 10_000;

fn connection_file(display: &Display, ticket: &str) -> String {
    format!(
        "[virt-viewer]\ntype=spice\nhost=127.0.0.1\nport={}\npassword={ticket}\ntitle=thindesk test\n\
         delete-this-file=1\n",
        display.spice_port
    )
}

/// `remote-viewer -`, reading the connection file from standard input, so that the
/// ticket is never in an argument or a file.
fn open_viewer(screen: &VirtualScreen, file: &str) -> Child {
    let mut viewer = Command::new("remote-viewer")
        .arg("-")
        .env("DISPLAY", &screen.display)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("remote-viewer starts");
    let mut stdin = viewer.stdin.take().expect("stdin");
    stdin.write_all(file.as_bytes()).expect("connection file written");
    drop(stdin);
    viewer
}

fn shot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn remote_viewer_shows_the_guest_with_its_ticket_and_not_without() {
    let mut tools = vm::TOOLS.to_vec();
    tools.extend(screen::TOOLS);
    tools.push("remote-viewer");
    if !vm::tools_present("the remote-viewer end-to-end test", &tools) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let compute = QemuCompute::new(vm::qemu_config(state.path())).expect("driver");
    let _cleanup = Cleanup(&compute);
    compute.define(&vm::demo_spec("viewed", "Viewer check", true)).expect("define");
    compute.power("viewed", PowerOp::Start).expect("start");
    vm::wait_for_serial(&compute, "viewed", "thindesk-demo banner");
    let display = compute.inspect("viewed").expect("inspect").display.expect("display");
    let screen = VirtualScreen::start(1024, 768);

    let mut viewer = open_viewer(&screen, &connection_file(&display, display.spice_ticket.expose()));
    let argv = std::fs::read(format!("/proc/{}/cmdline", viewer.id())).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&argv).contains(display.spice_ticket.expose()), "no ticket in the viewer's argv");
    let ok_shot = shot_path("viewer-shows-guest.png");
    let mut blue = 0;
    vm::wait_until("remote-viewer to show the guest's banner", Duration::from_secs(60), || {
        blue = screen.screenshot(&ok_shot).count_near(BANNER_BLUE, 30);
        blue > BANNER_PIXELS
    });
    assert!(viewer.try_wait().expect("viewer status").is_none(), "the viewer stays open on the guest");
    let _ = viewer.kill();
    let _ = viewer.wait();
    eprintln!("remote-viewer showed the guest ({blue} banner pixels): {}", ok_shot.display());

    let mut refused = open_viewer(&screen, &connection_file(&display, "not-the-ticket"));
    let refused_shot = shot_path("viewer-wrong-ticket.png");
    vm::wait_until("the refused viewer to draw (its error)", Duration::from_secs(60), || {
        let shown = screen.screenshot(&refused_shot);
        shown.count_near([0, 0, 0], 10) < shown.width * shown.height
    });
    // Then give it the time it took to show the guest, and more: it must still show none.
    std::thread::sleep(Duration::from_secs(5));
    let shown = screen.screenshot(&refused_shot);
    let _ = refused.kill();
    let _ = refused.wait();
    assert!(shown.count_near(BANNER_BLUE, 30) < 100, "a wrong ticket shows no guest: {}", refused_shot.display());
}
