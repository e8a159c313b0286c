//! The QEMU driver with real virtual machines booting the demo image.

use std::time::Duration;
use thindesk_server::compute::qemu::{QemuCompute, QemuConfig};
use thindesk_server::compute::{Compute, ComputeError, PowerOp};
use thindesk_shared::{DesktopStatus, Policy};
use thindesk_tests::spice::{self, Verdict};
use thindesk_tests::vm::{self, Cleanup};

fn driver(state: &tempfile::TempDir) -> QemuCompute {
    QemuCompute::new(vm::qemu_config(state.path())).expect("driver")
}

#[test]
fn a_machine_boots_the_demo_image_and_goes_through_its_power_cycle() {
    if !vm::tools_present("the QEMU power-cycle test", vm::TOOLS) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let compute = driver(&state);
    let _cleanup = Cleanup(&compute);
    compute.define(&vm::demo_spec("cycle", "Exam seat 7", true)).expect("define");
    assert_eq!(compute.inspect("cycle").expect("inspect").status, DesktopStatus::Shutoff);
    assert!(compute.inspect("cycle").expect("inspect").display.is_none());

    compute.power("cycle", PowerOp::Start).expect("start");
    let view = compute.inspect("cycle").expect("inspect");
    assert_eq!(view.status, DesktopStatus::Active);
    let display = view.display.expect("a running machine has a display");
    assert!(vm::port_open(display.spice_port), "SPICE listens on {}", display.spice_port);
    let tls = display.spice_tls.clone().expect("the display speaks TLS");
    let ca = tls.ca.as_str();
    assert!(display.spice_ticket.expose().len() >= 20, "the ticket is long enough to resist guessing");
    assert_eq!(
        spice::try_ticket(display.spice_port, ca, display.spice_ticket.expose()).expect("link"),
        Verdict::Accepted
    );
    assert_eq!(spice::try_ticket(display.spice_port, ca, "not-the-ticket").expect("link"), Verdict::Refused(7));
    assert_eq!(spice::try_ticket(display.spice_port, ca, "").expect("link"), Verdict::Refused(7));
    the_display_speaks_tls_only(&state, &compute, "cycle", display.spice_port, &tls);
    vm::wait_for_serial(&compute, "cycle", "thindesk-demo name=Exam seat 7");

    // The ticket is on no command line: not QEMU's, not anyone's.
    let pid = compute.pid("cycle").expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(!String::from_utf8_lossy(&cmdline).contains(display.spice_ticket.expose()));

    // A reset reboots the guest: it prints its boot line again.
    let boots = |log: &str| log.matches("thindesk-demo boot").count();
    let before = boots(&compute.serial_log("cycle").expect("log"));
    compute.power("cycle", PowerOp::Reboot).expect("reboot");
    vm::wait_until("the guest to boot again", Duration::from_secs(120), || {
        boots(&compute.serial_log("cycle").unwrap_or_default()) > before
    });
    assert_eq!(compute.inspect("cycle").expect("inspect").status, DesktopStatus::Active);

    // Shutdown presses the power button; the demo guest powers off by itself.
    compute.power("cycle", PowerOp::Shutdown).expect("shutdown");
    assert!(!vm::process_alive(pid), "QEMU exited");
    let log = compute.serial_log("cycle").expect("log");
    assert!(log.contains("thindesk-demo: ACPI power button, powering off"), "a graceful shutdown: {log}");
    assert!(!vm::port_open(display.spice_port), "the SPICE port is free again");
    assert!(!state.path().join("vms/cycle/tls").exists(), "the key's copy goes with the run");
    let view = compute.inspect("cycle").expect("inspect");
    assert_eq!(view.status, DesktopStatus::Shutoff);
    assert!(view.display.is_none());

    // Started again, it gets a fresh ticket.
    compute.power("cycle", PowerOp::Start).expect("start again");
    let again = compute.inspect("cycle").expect("inspect").display.expect("display");
    assert_ne!(again.spice_ticket, display.spice_ticket);
    assert_eq!(
        spice::try_ticket(again.spice_port, ca, display.spice_ticket.expose()).expect("link"),
        Verdict::Refused(7)
    );
    assert_eq!(spice::try_ticket(again.spice_port, ca, again.spice_ticket.expose()).expect("link"), Verdict::Accepted);
    let pid = compute.pid("cycle").expect("pid");

    // A new ticket cuts the session open on the old one, and only the new one works.
    let session = spice::open_session(again.spice_port, ca, again.spice_ticket.expose()).expect("a session");
    compute.new_ticket("cycle").expect("new ticket");
    assert!(spice::cut_within(session, Duration::from_secs(10)), "the open session is cut");
    let renewed = compute.inspect("cycle").expect("inspect").display.expect("display");
    assert_eq!(renewed.spice_port, again.spice_port, "same display, new ticket");
    assert_ne!(renewed.spice_ticket, again.spice_ticket);
    assert_eq!(
        spice::try_ticket(again.spice_port, ca, again.spice_ticket.expose()).expect("link"),
        Verdict::Refused(7)
    );
    assert_eq!(
        spice::try_ticket(again.spice_port, ca, renewed.spice_ticket.expose()).expect("link"),
        Verdict::Accepted
    );

    // Power off is at once, whatever the guest does, and frees the display.
    let again_port = again.spice_port;
    compute.power("cycle", PowerOp::PowerOff).expect("power off");
    assert!(!vm::process_alive(pid), "power off ends QEMU");
    assert!(!vm::port_open(again_port), "the SPICE port is free again");
    assert_eq!(compute.inspect("cycle").expect("inspect").status, DesktopStatus::Shutoff);
    compute.power("cycle", PowerOp::Start).expect("start after power off");
    let pid = compute.pid("cycle").expect("pid");

    compute.destroy("cycle").expect("destroy");
    assert!(!vm::process_alive(pid), "destroy stops the machine");
    assert!(!vm::port_open(again.spice_port));
    assert!(!state.path().join("vms/cycle").exists(), "overlay and state are gone");
    assert!(matches!(compute.inspect("cycle"), Err(ComputeError::NoSuchMachine(_))));
    assert!(matches!(compute.destroy("cycle"), Err(ComputeError::NoSuchMachine(_))));
}

/// A running machine's display: TLS with the server's certificate (the subject and
/// authority the display is said to have), no plain SPICE, nothing signed by another
/// authority, and its copy of the key owner-only.
fn the_display_speaks_tls_only(
    state: &tempfile::TempDir,
    compute: &QemuCompute,
    id: &str,
    port: u16,
    tls: &thindesk_server::compute::SpiceTls,
) {
    let server = thindesk_server::tls::show(&state.path().join("tls")).expect("the server's identity");
    assert_eq!(tls.host_subject, server.subject);
    let issued = std::fs::read_to_string(state.path().join("tls/ca-cert.pem")).expect("ca");
    assert_eq!(tls.ca, issued, "the authority the server issued");

    let answer = spice::plain_link_answer(port).expect("connects");
    assert!(!answer.starts_with(b"REDQ"), "a link in the clear gets no SPICE answer: {answer:?}");
    eprintln!("a SPICE link in the clear was answered with {} bytes: {answer:02x?}", answer.len());
    let elsewhere = tempfile::tempdir().expect("dir");
    let other = thindesk_server::tls::ensure(&elsewhere.path().join("tls"), &["127.0.0.1".into()]).expect("other");
    assert_ne!(other.ca_fingerprint, server.ca_fingerprint);
    let other_ca = std::fs::read_to_string(elsewhere.path().join("tls/ca-cert.pem")).expect("other ca");
    let refused = spice::try_ticket(port, &other_ca, "anything").expect_err("another authority's trust fails");
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidData, "{refused}");

    let pid = compute.pid(id).expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let arguments: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let spice_option = arguments.iter().skip_while(|a| *a != "-spice").nth(1).expect("-spice");
    let options: Vec<&str> = spice_option.split(',').collect();
    assert!(options.contains(&format!("tls-port={port}").as_str()), "{spice_option}");
    assert!(!options.iter().any(|o| o.starts_with("port=")), "no plain port: {spice_option}");
    use std::os::unix::fs::PermissionsExt;
    let copy = state.path().join(format!("vms/{id}/tls"));
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&copy), 0o700);
    assert_eq!(mode(&copy.join("server-key.pem")), 0o600, "the key is the owner's alone");
    assert!(!copy.join("ca-key.pem").exists(), "the authority's key stays with the server");
}

#[test]
fn machines_started_at_once_each_get_ports_of_their_own() {
    if !vm::tools_present("the concurrent start test", vm::TOOLS) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let compute = std::sync::Arc::new(driver(&state));
    let _cleanup = Cleanup(&compute);
    let ids: Vec<String> = (0..6).map(|i| format!("crowd{i}")).collect();
    for id in &ids {
        compute.define(&vm::demo_spec(id, id, false)).expect("define");
    }
    let starts: Vec<_> = ids
        .iter()
        .map(|id| {
            let (compute, id) = (compute.clone(), id.clone());
            std::thread::spawn(move || compute.power(&id, PowerOp::Start))
        })
        .collect();
    for start in starts {
        start.join().expect("thread").expect("every start succeeds");
    }
    let mut ports: Vec<u16> =
        ids.iter().map(|id| compute.inspect(id).expect("inspect").display.expect("display").spice_port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), ids.len(), "no two machines share a SPICE port");
}

#[test]
fn a_paused_machine_resumes() {
    if !vm::tools_present("the QEMU resume test", vm::TOOLS) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let compute = driver(&state);
    let _cleanup = Cleanup(&compute);
    compute.define(&vm::demo_spec("pause", "pause", true)).expect("define");
    compute.power("pause", PowerOp::Start).expect("start");
    // Pausing is an operator's act (or a host under pressure), not a user action: do
    // it the way an operator would, over QMP.
    qmp_command(&state.path().join("vms/pause/qmp.sock"), "stop");
    assert_eq!(compute.inspect("pause").expect("inspect").status, DesktopStatus::Paused);
    compute.power("pause", PowerOp::Resume).expect("resume");
    assert_eq!(compute.inspect("pause").expect("inspect").status, DesktopStatus::Active);
}

#[test]
fn without_internet_the_guest_cannot_reach_the_host() {
    if !vm::tools_present("the network isolation test", vm::TOOLS) {
        return;
    }
    let port = vm::host_probe();
    let state = tempfile::tempdir().expect("dir");
    let compute =
        QemuCompute::new(QemuConfig { guest_probe_port: Some(port), ..vm::qemu_config(state.path()) }).expect("driver");
    let _cleanup = Cleanup(&compute);
    compute.define(&vm::demo_spec("open", "open", true)).expect("define");
    let mut closed = vm::demo_spec("closed", "closed", false);
    closed.rdp = true;
    compute.define(&closed).expect("define");
    compute.power("open", PowerOp::Start).expect("start");
    compute.power("closed", PowerOp::Start).expect("start");

    // No guest reaches the host, with internet or without (this driver's user is not
    // kept off the host's addresses, so "open" gets no internet at all; what a guest
    // with internet does reach is in guest_network.rs). The forwarded RDP port below
    // shows that the cut-off guest's network works.
    vm::wait_for_serial(&compute, "open", "thindesk-demo name=open server=unreachable");
    let attempts = |log: &str| log.matches("thindesk-demo name=closed server=").count();
    vm::wait_until("two connection attempts of the cut-off guest", Duration::from_secs(120), || {
        attempts(&compute.serial_log("closed").unwrap_or_default()) >= 2
    });
    let log = compute.serial_log("closed").expect("log");
    assert_eq!(log.matches("thindesk-demo name=closed server=unreachable").count(), attempts(&log), "{log}");

    // Cut off from the network, the guest still takes its remote-display connections.
    let rdp_port = compute.inspect("closed").expect("inspect").display.and_then(|d| d.rdp_port).expect("rdp port");
    let mut answer = String::new();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", rdp_port)).expect("rdp port");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.shutdown(std::net::Shutdown::Write).expect("shutdown");
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
    assert_eq!(answer.trim(), "thindesk-demo closed");
}

#[test]
fn machines_outlive_the_driver_and_are_found_again() {
    if !vm::tools_present("the re-attach test", vm::TOOLS) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let config = vm::qemu_config(state.path());
    let (pid, display) = {
        let first = QemuCompute::new(config.clone()).expect("driver");
        first.define(&vm::demo_spec("lasting", "lasting", true)).expect("define");
        first.define(&vm::demo_spec("stopped", "stopped", true)).expect("define");
        first.power("lasting", PowerOp::Start).expect("start");
        let display = first.inspect("lasting").expect("inspect").display.expect("display");
        (first.pid("lasting").expect("pid"), display)
        // `first` is dropped here, as when the server stops or crashes.
    };
    assert!(vm::process_alive(pid), "the machine outlived its driver");

    let second = QemuCompute::new(config).expect("driver");
    let _cleanup = Cleanup(&second);
    assert_eq!(second.pid("lasting"), Some(pid));
    let view = second.inspect("lasting").expect("inspect");
    assert_eq!(view.status, DesktopStatus::Active);
    assert_eq!(view.display.as_ref(), Some(&display), "same ports and ticket after re-attaching");
    assert_eq!(second.inspect("stopped").expect("inspect").status, DesktopStatus::Shutoff);

    // The re-attached machine still holds its port: a new one gets another.
    second.power("stopped", PowerOp::Start).expect("start");
    let other = second.inspect("stopped").expect("inspect").display.expect("display");
    assert_ne!(other.spice_port, display.spice_port);
}

#[test]
fn a_machine_the_host_has_no_memory_for_is_refused_before_it_starts() {
    if !vm::tools_present("the memory admission test", vm::TOOLS) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let compute =
        QemuCompute::new(QemuConfig { vm_memory_mib: Some(400), ..vm::qemu_config(state.path()) }).expect("driver");
    let _cleanup = Cleanup(&compute);
    compute.define(&vm::demo_spec("first", "first", true)).expect("define");
    compute.define(&vm::demo_spec("second", "second", true)).expect("define");
    compute.power("first", PowerOp::Start).expect("the first fits");
    match compute.power("second", PowerOp::Start) {
        Err(ComputeError::NoCapacity(reason)) => assert!(reason.contains("256 MiB"), "{reason}"),
        other => panic!("expected NoCapacity, got {other:?}"),
    }
    assert_eq!(compute.inspect("second").expect("inspect").status, DesktopStatus::Shutoff);
    // Memory comes back when a machine stops.
    compute.power("first", PowerOp::Shutdown).expect("shutdown");
    compute.power("second", PowerOp::Start).expect("now it fits");
}

#[test]
fn bad_images_and_duplicate_ids_are_refused() {
    if !vm::tools_present("the define test", &["qemu-img"]) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let compute = driver(&state);
    let mut spec = vm::demo_spec("dup", "dup", true);
    compute.define(&spec).expect("define");
    assert!(matches!(compute.define(&spec), Err(ComputeError::AlreadyDefined(_))));
    spec.id = "missing".into();
    spec.base_disk = state.path().join("no-such.qcow2");
    assert!(matches!(compute.define(&spec), Err(ComputeError::BadImage(_))));
    let text = state.path().join("notes.txt");
    std::fs::write(&text, "not a disk").expect("write");
    spec.base_disk = text;
    assert!(matches!(compute.define(&spec), Err(ComputeError::BadImage(_))), "a raw text file is not an image");
    assert!(!state.path().join("vms/missing").exists(), "a refused define leaves nothing");
    spec.id = "../escape".into();
    assert!(compute.define(&spec).is_err());
    compute.destroy("dup").expect("destroy");
}

/// Runs one QMP command on a machine's socket, as an operator would, and returns
/// the reply's line.
fn qmp_command(socket: &std::path::Path, command: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket).expect("qmp");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    let request = if command.starts_with('{') { command.to_owned() } else { format!("{{\"execute\":\"{command}\"}}") };
    for request in ["{\"execute\":\"qmp_capabilities\"}", &request] {
        writeln!(writer, "{request}").expect("send");
        loop {
            line.clear();
            reader.read_line(&mut line).expect("reply");
            if line.contains("\"return\"") {
                break;
            }
            assert!(!line.contains("\"error\""), "{line}");
        }
    }
    line
}

#[test]
fn the_hypervisor_enforces_the_desktops_policy() {
    if !vm::tools_present("the policy test", vm::TOOLS) {
        return;
    }
    let state = tempfile::tempdir().expect("dir");
    let compute = driver(&state);
    let _cleanup = Cleanup(&compute);
    let open = vm::demo_spec("open", "open", true);
    let mut locked = vm::demo_spec("locked", "locked", true);
    locked.policy = Policy { enable_usb: false, enable_clipboard: false, enable_audio: false };
    for spec in [&open, &locked] {
        compute.define(spec).expect("define");
        compute.power(&spec.id, PowerOp::Start).expect("start");
    }
    let ask = |id: &str, command: &str| qmp_command(&state.path().join(format!("vms/{id}/qmp.sock")), command);
    let usb = r#"{"execute":"human-monitor-command","arguments":{"command-line":"info usb"}}"#;
    assert_eq!(ask("open", usb).matches("USB Redirection Device").count(), 2, "two USB redirection ports");
    assert_eq!(ask("locked", usb).matches("USB Redirection Device").count(), 0, "no USB redirection");
    assert!(ask("open", "query-audiodevs").contains("\"spice\""), "sound goes to the viewer");
    assert!(!ask("locked", "query-audiodevs").contains("\"spice\""), "no sound device for the viewer");
    let cmdline = |id: &str| {
        let pid = compute.pid(id).expect("pid");
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline")).into_owned()
    };
    assert!(cmdline("locked").contains("disable-copy-paste=on"), "no clipboard through SPICE");
    assert!(!cmdline("open").contains("disable-copy-paste"));
}
