//! End to end: the real `remote-viewer`, given a machine's connection file on its
//! standard input, shows the guest's screen over TLS when it trusts the authority the
//! server issued and has the ticket; it does not with another authority or a wrong
//! ticket. A capture of the display's port meanwhile holds TLS records only.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use thindesk_server::compute::qemu::QemuCompute;
use thindesk_server::compute::{Compute, Display, PowerOp};
use thindesk_tests::capture::{self, Capture};
use thindesk_tests::screen::{self, VirtualScreen};
use thindesk_tests::vm::{self, Cleanup};

/// The demo banner's background: VGA blue.
const BANNER_BLUE: [u8; 3] = [0, 0, 170];
/// Three 80-column text rows of blue are about 35,000 pixels; a dialog has none.
const BANNER_PIXELS: usize = 10_000;

/// A connection file as the client writes it: the TLS port only, every channel
/// secure, `ca` (the PEM on one line, its newlines as `\n`) and `host-subject`.
fn connection_file(display: &Display, ca: &str, ticket: &str) -> String {
    let tls = display.spice_tls.as_ref().expect("the display speaks TLS");
    connection_file_for(display, ca, &tls.host_subject, ticket)
}

fn connection_file_for(display: &Display, ca: &str, subject: &str, ticket: &str) -> String {
    format!(
        "[virt-viewer]\ntype=spice\nhost=127.0.0.1\ntls-port={}\nsecure-channels=all\nca={}\nhost-subject={}\n\
         password={ticket}\ntitle=thindesk test\ndelete-this-file=1\n",
        display.spice_port,
        ca.replace('\n', "\\n"),
        subject
    )
}

/// `remote-viewer -`, reading the connection file from standard input, so that the
/// ticket is never in an argument or a file. Its messages go to `log`.
pub(crate) fn open_viewer(screen: &VirtualScreen, file: &str, log: &std::path::Path) -> Child {
    let mut viewer = Command::new("remote-viewer")
        .arg("-")
        .env("DISPLAY", &screen.display)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("remote-viewer starts");
    let mut stdin = viewer.stdin.take().expect("stdin");
    stdin.write_all(file.as_bytes()).expect("connection file written");
    drop(stdin);
    viewer
}

pub(crate) fn shot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Waits until the viewer has drawn something (its error), then as long again as it
/// took to show the guest, and more: the screen must still show no guest.
pub(crate) fn shows_no_guest(screen: &VirtualScreen, mut viewer: Child, shot: &str) -> bool {
    let shot = shot_path(shot);
    vm::wait_until("the refused viewer to draw (its error)", Duration::from_secs(60), || {
        let shown = screen.screenshot(&shot);
        shown.count_near([0, 0, 0], 10) < shown.width * shown.height
    });
    std::thread::sleep(Duration::from_secs(5));
    let shown = screen.screenshot(&shot);
    let _ = viewer.kill();
    let _ = viewer.wait();
    shown.count_near(BANNER_BLUE, 30) < 100
}

#[test]
fn remote_viewer_shows_the_guest_over_tls_with_the_issued_authority_and_ticket_only() {
    let mut tools = vm::TOOLS.to_vec();
    tools.extend(screen::TOOLS);
    tools.extend(capture::TOOLS);
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
    let ca = display.spice_tls.as_ref().expect("TLS").ca.clone();
    let ticket = display.spice_ticket.expose().to_owned();
    let screen = VirtualScreen::start(1024, 768);
    // The viewers' messages, beside the screenshots.
    let log = |name: &str| shot_path(&format!("viewer-{name}.log"));

    // Everything on the display's port while the viewer opens the guest.
    let capture = match Capture::start(display.spice_port) {
        Ok(capture) => capture,
        Err(reason) => {
            vm::prerequisite("the remote-viewer end-to-end test", Some(format!("needs to capture on lo: {reason}")));
            return;
        }
    };
    let mut viewer = open_viewer(&screen, &connection_file(&display, &ca, &ticket), &log("shows-guest"));
    let argv = std::fs::read(format!("/proc/{}/cmdline", viewer.id())).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&argv).contains(&ticket), "no ticket in the viewer's argv");
    let ok_shot = shot_path("viewer-shows-guest.png");
    let mut blue = 0;
    vm::wait_until("remote-viewer to show the guest's banner", Duration::from_secs(60), || {
        blue = screen.screenshot(&ok_shot).count_near(BANNER_BLUE, 30);
        blue > BANNER_PIXELS
    });
    assert!(viewer.try_wait().expect("viewer status").is_none(), "the viewer stays open on the guest");
    let _ = viewer.kill();
    let _ = viewer.wait();
    // The viewer's connections close; then the capture ends.
    vm::wait_until("the viewer's connections to close", Duration::from_secs(10), || {
        !connections_open(display.spice_port)
    });
    std::thread::sleep(Duration::from_millis(500));
    let pcap = capture.stop();
    eprintln!("remote-viewer showed the guest over TLS ({blue} banner pixels): {}", ok_shot.display());
    only_tls_crossed(&pcap, display.spice_port, &ticket);

    let elsewhere = tempfile::tempdir().expect("dir");
    thindesk_server::tls::ensure(&elsewhere.path().join("tls"), &["127.0.0.1".into()]).expect("another authority");
    let other_ca = std::fs::read_to_string(elsewhere.path().join("tls/ca-cert.pem")).expect("other ca");
    let other_log = log("other-ca");
    let other = open_viewer(&screen, &connection_file(&display, &other_ca, &ticket), &other_log);
    assert!(shows_no_guest(&screen, other, "viewer-other-ca.png"), "another authority shows no guest");
    let said = std::fs::read_to_string(&other_log).unwrap_or_default();
    assert!(said.contains("Error in server certificate verification"), "the viewer refused the certificate: {said}");

    // The subject is checked, not only the authority.
    let subject_log = log("other-subject");
    let elsewhere_named = connection_file_for(&display, &ca, "CN=someone else,O=thindesk", &ticket);
    let other_subject = open_viewer(&screen, &elsewhere_named, &subject_log);
    assert!(shows_no_guest(&screen, other_subject, "viewer-other-subject.png"), "another subject shows no guest");
    let said = std::fs::read_to_string(&subject_log).unwrap_or_default();
    assert!(said.contains("subject 'CN=someone else,O=thindesk' verification failed"), "{said}");

    let wrong = open_viewer(&screen, &connection_file(&display, &ca, "not-the-ticket"), &log("wrong-ticket"));
    assert!(shows_no_guest(&screen, wrong, "viewer-wrong-ticket.png"), "a wrong ticket shows no guest");
}

/// Whether a connection to `port` on loopback is open or closing (`/proc/net/tcp`:
/// established, close-wait, last-ack, fin-wait-1, closing).
fn connections_open(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let suffix = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3
            && (fields[1].ends_with(&suffix) || fields[2].ends_with(&suffix))
            && ["01", "04", "08", "09", "0B"].contains(&fields[3])
    })
}

/// Every connection in the capture began with a TLS handshake (ClientHello, then
/// ServerHello) and carried TLS records only, both ways: no SPICE in the clear, no
/// ticket. (A channel the viewer opened as it was killed may end after its
/// ClientHello, unanswered: that is all it may have sent.)
fn only_tls_crossed(pcap: &[u8], port: u16, ticket: &str) {
    let connections = capture::connections(pcap, port).expect("the capture reads");
    let (mut application_bytes, mut handshakes) = (0, 0);
    for connection in &connections {
        let which = format!("connection from port {}", connection.client_port);
        assert!(connection.opened, "{which} was captured from its start");
        let mut sides = Vec::new();
        for (side, bytes, hello) in [("client", &connection.from_client, 1), ("server", &connection.from_server, 2)] {
            let (records, _) = capture::tls_records(bytes).unwrap_or_else(|e| panic!("{which}, {side}: {e}"));
            if let Some(first) = records.first() {
                assert_eq!((first.content_type, first.handshake_type), (22, Some(hello)), "{which}, {side}: {first:?}");
            }
            application_bytes += records.iter().filter(|r| r.content_type == 23).map(|r| r.length).sum::<usize>();
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains("REDQ") && !text.contains(ticket), "{which}, {side}: SPICE in the clear");
            sides.push(records);
        }
        let (client, server) = (&sides[0], &sides[1]);
        assert!(!client.is_empty() || server.is_empty(), "{which}: the server spoke first");
        if server.is_empty() {
            assert!(client.iter().all(|r| r.content_type == 22), "{which}: data sent without a handshake: {client:?}");
        } else {
            handshakes += 1;
        }
    }
    // The viewer opens the main channel, then display, inputs, cursor and more.
    assert!(handshakes >= 3, "the viewer's channels: {handshakes} TLS handshakes in {} connections", connections.len());
    // The guest's screen came through, encrypted.
    assert!(application_bytes > 10_000, "{application_bytes} bytes of application data");
    eprintln!(
        "{} connections ({handshakes} answered with a ServerHello), TLS records only, {application_bytes} bytes of \
         application data",
        connections.len()
    );
}
