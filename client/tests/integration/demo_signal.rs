//! `thindesk --demo` ended by a signal, as a Ctrl-C in its terminal ends it, leaves
//! no machine running and no files behind.

use crate::util;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use thindesk_tests::screen::VirtualScreen;
use thindesk_tests::vm;

#[test]
fn a_signal_to_the_demo_client_destroys_the_demo_machine() {
    if !util::vm_screen_tools_present("the demo client signal test", &[]) {
        return;
    }
    let _vm = util::one_vm_at_a_time_blocking();
    let screen = VirtualScreen::start(1024, 768);
    let mut client = Command::new(env!("CARGO_BIN_EXE_thindesk"))
        .arg("--demo")
        .env("DISPLAY", &screen.display)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("thindesk starts");
    // Kept open until the client has exited: a closed pipe would fail its next line.
    let mut stdout = BufReader::new(client.stdout.take().expect("stdout")).lines();
    let data_dir = stdout
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.split_once("(data in ")?.1;
            Some(PathBuf::from(rest.split_once(", removed on exit)")?.0))
        })
        .expect("the client says where the demo's data is");
    let pid_file = std::fs::read_dir(data_dir.join("vms"))
        .expect("the demo has machines")
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("qemu.pid"))
        .find(|path| path.is_file())
        .expect("the demo desktop runs");
    let pid: u32 = std::fs::read_to_string(pid_file).expect("pid").trim().parse().expect("pid");
    assert!(vm::process_alive(pid));

    let status = Command::new("kill").args(["-INT", &client.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = client.wait().expect("the client exits");
    assert_eq!(exit.code(), Some(130), "interrupted: {:?}", std::os::unix::process::ExitStatusExt::signal(&exit));
    drop(stdout);
    vm::wait_until("the demo's QEMU to exit", Duration::from_secs(30), || !vm::process_alive(pid));
    assert!(!data_dir.exists(), "the demo's files are removed");
}
