//! `thindesk --demo` leaves no machine running and no files behind however it ends:
//! a signal (SIGINT as a Ctrl-C sends it, SIGTERM, SIGHUP as a closed terminal sends
//! it), its window closed, or its display gone (the X server killed alone, or together
//! with a SIGTERM). Each ends the process within a few seconds, with the demo's QEMU
//! gone and its data directory removed before the process ends.

use crate::util;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use thindesk_tests::screen::VirtualScreen;
use thindesk_tests::vm;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// How long the client may take to end once told to.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// A running `thindesk --demo` on a screen of its own, its window shown.
struct RunningDemo {
    screen: VirtualScreen,
    client: Child,
    /// Kept open until the client has exited: a closed pipe would fail its next line.
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    stderr: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
    data_dir: PathBuf,
    qemu: u32,
}

impl RunningDemo {
    fn start() -> Self {
        let screen = VirtualScreen::start(1024, 768);
        // THINDESK_TEST_CLIENT: another build of the client (a frozen copy for a long
        // loop of runs while the source changes).
        let program = std::env::var_os("THINDESK_TEST_CLIENT").unwrap_or_else(|| env!("CARGO_BIN_EXE_thindesk").into());
        let mut client = Command::new(program)
            .arg("--demo")
            .env("DISPLAY", &screen.display)
            .env("THINDESK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("thindesk starts");
        // Read all along, so the client never blocks on a full pipe.
        let (lines, stderr) = std::sync::mpsc::channel();
        let mut pipe = BufReader::new(client.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            let mut line = Vec::new();
            while matches!(std::io::BufRead::read_until(&mut pipe, b'\n', &mut line), Ok(n) if n > 0) {
                let _ = lines.send(String::from_utf8_lossy(&line).into_owned());
                line.clear();
            }
            let mut rest = Vec::new();
            let _ = pipe.read_to_end(&mut rest);
        });
        let mut stdout = BufReader::new(client.stdout.take().expect("stdout")).lines();
        let data_dir = stdout
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let rest = line.split_once("(data in ")?.1;
                Some(PathBuf::from(rest.split_once(", removed on exit)")?.0))
            })
            .unwrap_or_else(|| {
                let said: String = stderr.try_iter().collect();
                panic!("the client never said where the demo's data is; its log:\n{said}")
            });
        let pid_file = std::fs::read_dir(data_dir.join("vms"))
            .expect("the demo has machines")
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("qemu.pid"))
            .find(|path| path.is_file())
            .expect("the demo desktop runs");
        let qemu: u32 = std::fs::read_to_string(pid_file).expect("pid").trim().parse().expect("pid");
        assert!(vm::process_alive(qemu));
        let mut demo = Self { screen, client, _stdout: stdout, stderr, log: Vec::new(), data_dir, qemu };
        demo.wait_for_log("first frame", Duration::from_secs(60));
        demo
    }

    fn wait_for_log(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log.iter().any(|line| line.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => panic!("no {needle:?} in the client's log within {limit:?}:\n{}", self.log.concat()),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.client.id().to_string()]).status();
        assert!(status.expect("kill").success());
    }

    /// The client ends within [`EXIT_LIMIT`], leaving neither the machine nor its files.
    fn ends_clean(mut self, how: &str) -> ExitStatus {
        let told = Instant::now();
        let status = loop {
            if let Some(status) = self.client.try_wait().expect("wait") {
                break status;
            }
            if told.elapsed() > EXIT_LIMIT {
                // SIGTERM first: a test that fails leaves no machine behind either.
                self.signal("TERM");
                std::thread::sleep(EXIT_LIMIT);
                let _ = self.client.kill();
                while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(1)) {
                    self.log.push(line);
                }
                panic!("{how}: the client did not end within {EXIT_LIMIT:?}:\n{}", self.log.concat());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Everything is gone when the process has ended, not some time after.
        assert!(!vm::process_alive(self.qemu), "{how}: the demo's QEMU is gone when the client has ended");
        assert!(!self.data_dir.exists(), "{how}: the demo's files are removed when the client has ended");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        let log = self.log.concat();
        assert!(log.contains("stopping the demo"), "{how}: the demo was stopped:\n{log}");
        assert!(!log.contains("panicked"), "{how}: no panic:\n{log}");
        status
    }
}

fn tools_present(test: &str) -> bool {
    util::vm_screen_tools_present(test, &[])
}

fn code(status: ExitStatus) -> Option<i32> {
    status.code()
}

#[test]
fn a_signal_to_the_demo_client_destroys_the_demo_machine() {
    if !tools_present("the demo client SIGINT test") {
        return;
    }
    let _vm = util::one_vm_at_a_time_blocking();
    let demo = RunningDemo::start();
    demo.signal("INT");
    assert_eq!(code(demo.ends_clean("SIGINT")), Some(130), "interrupted");
}

#[test]
fn sighup_ends_the_demo_client_cleanly() {
    if !tools_present("the demo client SIGHUP test") {
        return;
    }
    let _vm = util::one_vm_at_a_time_blocking();
    let demo = RunningDemo::start();
    demo.signal("HUP");
    assert_eq!(code(demo.ends_clean("SIGHUP")), Some(129), "hung up");
}

#[test]
fn the_display_going_away_ends_the_demo_client_cleanly() {
    if !tools_present("the demo client display test") {
        return;
    }
    let _vm = util::one_vm_at_a_time_blocking();
    let mut demo = RunningDemo::start();
    demo.screen.kill();
    let status = demo.ends_clean("the X server killed");
    assert_eq!(code(status), Some(1), "the display went away");
}

#[test]
fn the_display_going_away_with_sigterm_ends_the_demo_client_cleanly() {
    if !tools_present("the demo client display and SIGTERM test") {
        return;
    }
    let _vm = util::one_vm_at_a_time_blocking();
    let mut demo = RunningDemo::start();
    // Both at once: the signal on its way while the X server dies.
    let mut kill = Command::new("kill").args(["-TERM", &demo.client.id().to_string()]).spawn().expect("kill");
    demo.screen.kill();
    assert!(kill.wait().expect("kill").success());
    let status = demo.ends_clean("the X server killed with SIGTERM");
    // Whichever the supervisor hears of first names the end: the signal (143), or the
    // window's own end for its display (1); both are clean ends.
    assert!(matches!(code(status), Some(143 | 1)), "terminated or the display went away: {status:?}");
}

#[test]
fn closing_the_demo_window_ends_the_demo_client_cleanly() {
    if !tools_present("the demo client window test") {
        return;
    }
    let _vm = util::one_vm_at_a_time_blocking();
    let demo = RunningDemo::start();
    close_window(&demo.screen.display, "thindesk");
    assert_eq!(code(demo.ends_clean("the window closed")), Some(0), "closed");
}

/// Asks the top-level window called `title` to close, as a window manager does: a
/// `WM_DELETE_WINDOW` message.
fn close_window(display: &str, title: &str) {
    let (connection, screen) = x11rb::connect(Some(display)).expect("the test connects to the display");
    let root = connection.setup().roots[screen].root;
    let atom =
        |name: &str| connection.intern_atom(false, name.as_bytes()).expect("intern").reply().expect("an atom").atom;
    let (protocols, delete, net_name, utf8) =
        (atom("WM_PROTOCOLS"), atom("WM_DELETE_WINDOW"), atom("_NET_WM_NAME"), atom("UTF8_STRING"));
    let mut window = None;
    vm::wait_until("the client's window", Duration::from_secs(30), || {
        let children = connection.query_tree(root).expect("tree").reply().expect("tree").children;
        window = children.into_iter().find(|&child| {
            let name = connection
                .get_property(false, child, net_name, utf8, 0, 256)
                .ok()
                .and_then(|cookie| cookie.reply().ok())
                .map(|reply| reply.value)
                .unwrap_or_default();
            name == title.as_bytes()
        });
        window.is_some()
    });
    let window = window.expect("the window");
    let event = xproto::ClientMessageEvent::new(32, window, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
    connection.send_event(false, window, xproto::EventMask::NO_EVENT, event).expect("send");
    // A round trip: the message is handled before the connection closes.
    connection.get_input_focus().expect("round trip").reply().expect("round trip");
}
