//! The demo installation that the quick start runs: a student can log in and finds
//! a running desktop whose display takes its ticket; stopping it leaves nothing.

use thindesk_server::demo::{DESKTOP, Demo};
use thindesk_tests::my_desktops;
use thindesk_tests::spice::{self, Verdict};
use thindesk_tests::{ports, vm};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_has_a_running_desktop_for_its_student_and_cleans_up_after_itself() {
    if !vm::tools_present("the demo test", vm::TOOLS) {
        return;
    }
    // A port of the test's own, not 0: for port 0 the demo picks a free port some
    // seconds before it binds it (its guests are told the port), and meanwhile the
    // kernel could give that port to another test's connection.
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], ports::one()));
    let demo = Demo::start(listen).await.expect("demo starts");
    let data_dir = demo.data_dir().to_owned();
    let (user, password) = demo.logins.student.clone();
    let listed = my_desktops(&demo.url(), &user, &password).await;
    let desktop = &listed["data"]["desktop_list"][0];
    assert_eq!(desktop["name"], DESKTOP, "{listed}");
    assert_eq!(desktop["status"], "ACTIVE", "{listed}");
    assert_eq!(desktop["id"], demo.desktop_id.as_str());
    let spice_entry = &desktop["connection_info"][0];
    assert_eq!(spice_entry["type"], "spice");
    assert_eq!(spice_entry["ip"], "127.0.0.1");
    let port: u16 = spice_entry["port"].as_str().and_then(|p| p.parse().ok()).expect("port");
    let ticket = spice_entry["password"].as_str().expect("ticket").to_owned();
    let ca = spice_entry["ca"].as_str().expect("the display's authority").to_owned();
    let verdict = tokio::task::spawn_blocking(move || spice::try_ticket(port, &ca, &ticket)).await.expect("joined");
    assert_eq!(verdict.expect("link"), Verdict::Accepted);
    let pid: u32 = std::fs::read_to_string(data_dir.join(format!("vms/{}/qemu.pid", demo.desktop_id)))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");

    demo.stop().await;
    assert!(!vm::process_alive(pid), "the demo's machine is destroyed");
    assert!(!data_dir.exists(), "the demo's files are removed");
}
