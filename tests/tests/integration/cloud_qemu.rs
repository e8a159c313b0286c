//! The cloud API and catalogue desktops on real QEMU machines booting the demo image:
//! what an exam system and a student get is a running guest, reachable with the
//! ticket it was handed, cut off when asked, and gone after destroy; and each
//! desktop's own OS password, set in the guest through its agent.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use thindesk_server::compute::qemu::{QemuCompute, QemuConfig};
use thindesk_server::service::Actor;
use thindesk_server::service::catalogue::{Flavor, ImageSpec};
use thindesk_shared::ConnectionType;
use thindesk_tests::spice::{self, Verdict};
use thindesk_tests::vm::{self, Cleanup};
use thindesk_tests::{TestServer, desktop_from_image, launch_form, my_desktops};

/// A server on a QEMU driver (`adjust` may change its settings) whose catalogue has
/// the demo image as `demo` (SPICE) and `demo-rdp` (RDP), and a flavor `m1.demo`
/// (1 vCPU, 256 MiB, 1 GiB).
async fn start_host(adjust: impl FnOnce(QemuConfig) -> QemuConfig) -> TestServer<QemuCompute> {
    let data = tempfile::tempdir().expect("dir");
    let compute = Arc::new(QemuCompute::new(adjust(vm::qemu_config(data.path()))).expect("driver"));
    let host = TestServer::builder(compute).data_dir(data).public_address("127.0.0.1").start().await;
    let services = host.services().clone();
    tokio::task::spawn_blocking(move || {
        let base_disk = vm::demo_image();
        for (name, connection) in [("demo", ConnectionType::Spice), ("demo-rdp", ConnectionType::Rdp)] {
            let image = ImageSpec {
                name: name.into(),
                base_disk: base_disk.clone(),
                default_connection_type: connection,
                os_username: "student".into(),
                os_password: "demo-os-password".into(),
                guest_agent: false,
            };
            services.catalogue.add_image(&Actor::system(), &image).expect("image");
        }
        let flavor = Flavor { name: "m1.demo".into(), vcpus: 1, ram_mib: 256, disk_gib: 1 };
        services.catalogue.add_flavor(&Actor::system(), &flavor).expect("flavor");
    })
    .await
    .expect("catalogue");
    host
}

/// Waits, off the async workers, for a line of the guest's serial console.
async fn serial(host: &TestServer<QemuCompute>, id: &str, needle: &str) -> String {
    let (compute, id, needle) = (host.compute.clone(), id.to_owned(), needle.to_owned());
    tokio::task::spawn_blocking(move || vm::wait_for_serial(&compute, &id, &needle)).await.expect("joined")
}

fn launch<'a>(image: &'a str, internet: &'a str, name: &'a str) -> [(&'a str, &'a str); 5] {
    launch_form(image, "m1.demo", internet, name)
}

fn port(body: &Value, key: &str) -> u16 {
    body[key].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or_else(|| panic!("no {key}: {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn launched_exam_machines_run_are_cut_off_when_asked_and_are_freed_by_destroy() {
    if !vm::tools_present("the cloud API QEMU test", vm::TOOLS) {
        return;
    }
    let probe_port = vm::host_probe();
    let host = start_host(|config| QemuConfig { guest_probe_port: Some(probe_port), ..config }).await;
    let _cleanup = Cleanup(&host.compute);

    let exam = host.cloud(&launch("demo", "false", "final_exam_141242022")).await.body;
    assert_eq!((exam["ret_code"].as_u64(), exam["description"].as_str()), (Some(0), Some("Success")), "{exam}");
    let exam_id = exam["vm_id"].as_str().expect("vm_id").to_owned();
    assert_eq!(exam["vm_ip"], "127.0.0.1");
    let spice_port = port(&exam, "spice_port");
    let ticket = exam["spice_password"].as_str().expect("ticket").to_owned();
    // TLS only: the answer names the TLS port (the only one) and the authority.
    assert_eq!(port(&exam, "spice_tls_port"), spice_port, "{exam}");
    let ca = exam["spice_ca"].as_str().expect("the display's authority").to_owned();
    assert!(exam["spice_host_subject"].as_str().is_some_and(|s| s.contains("CN=")), "{exam}");
    assert_eq!(
        spice::try_ticket(spice_port, &ca, &ticket).expect("link"),
        Verdict::Accepted,
        "the answer's ticket opens it"
    );
    assert_eq!(spice::try_ticket(spice_port, &ca, "not-the-ticket").expect("link"), Verdict::Refused(7));
    assert!(exam.get("rdp_port").is_none(), "a SPICE image forwards no RDP port: {exam}");

    let teacher = host.cloud(&launch("demo-rdp", "true", "teacher_installs")).await.body;
    assert_eq!(teacher["ret_code"], 0, "{teacher}");
    let teacher_id = teacher["vm_id"].as_str().expect("vm_id").to_owned();
    let rdp_port = port(&teacher, "rdp_port");

    // Neither machine reaches the host, the teacher's with internet included (see
    // guest_network.rs for what internet does reach).
    serial(&host, &teacher_id, "thindesk-demo name=teacher_installs server=unreachable").await;
    let attempts = |log: &str| log.matches("thindesk-demo name=final_exam_141242022 server=").count();
    let compute = host.compute.clone();
    let exam_log = {
        let id = exam_id.clone();
        tokio::task::spawn_blocking(move || {
            vm::wait_until("two probes of the exam machine", Duration::from_secs(120), || {
                attempts(&compute.serial_log(&id).unwrap_or_default()) >= 2
            });
            compute.serial_log(&id).expect("log")
        })
        .await
        .expect("joined")
    };
    assert_eq!(
        exam_log.matches("thindesk-demo name=final_exam_141242022 server=unreachable").count(),
        attempts(&exam_log),
        "{exam_log}"
    );
    let rdp_answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", rdp_port)).expect("rdp port");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        // Nothing to say: the guest's stand-in then closes after its greeting.
        stream.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
        answer
    })
    .await
    .expect("joined");
    assert_eq!(rdp_answer.trim(), "thindesk-demo teacher_installs", "rdp_port reaches the guest's RDP port");

    let query = host.cloud(&[("command", "query_instance"), ("vm_id", exam_id.as_str())]).await.body;
    assert_eq!((query["status"].as_str(), query["internet"].as_bool()), (Some("ACTIVE"), Some(false)), "{query}");

    let pid = host.compute.pid(&exam_id).expect("pid");
    let destroyed = host.cloud(&[("command", "destroy_instance"), ("vm_id", exam_id.as_str())]).await.body;
    assert_eq!(destroyed["ret_code"], 0, "{destroyed}");
    assert!(!vm::process_alive(pid), "QEMU is stopped");
    assert!(!vm::port_open(spice_port), "the SPICE port is free");
    assert_eq!(
        host.compute.machine_ids().expect("ids"),
        std::slice::from_ref(&teacher_id),
        "its overlay and state are gone"
    );
    let again = host.cloud(&[("command", "destroy_instance"), ("vm_id", exam_id.as_str())]).await.body;
    assert_eq!(again["ret_code"], 6, "{again}");
    let listed = host.cloud(&[("command", "list_instances")]).await.body;
    assert_eq!(listed["instances"].as_array().map(Vec::len), Some(1), "{listed}");
    host.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_without_room_answers_7_with_the_reason_and_keeps_nothing() {
    if !vm::tools_present("the cloud API capacity test", vm::TOOLS) {
        return;
    }
    let host = start_host(|config| QemuConfig { vm_memory_mib: Some(128), ..config }).await;
    let _cleanup = Cleanup(&host.compute);
    let answer = host.cloud(&launch("demo", "false", "too_big")).await.body;
    assert_eq!(answer["ret_code"], 7, "{answer}");
    let description = answer["description"].as_str().expect("description");
    assert!(description.starts_with("Virtual machine creation failed: "), "{description}");
    assert!(description.contains("256 MiB") && description.contains("128 MiB"), "says why: {description}");
    assert!(host.compute.machine_ids().expect("ids").is_empty(), "no machine is left defined");
    assert_eq!(host.cloud(&[("command", "list_instances")]).await.body["instances"], json!([]));
    host.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalogue_desktop_starts_on_request_shows_its_ticket_and_is_destroyed_with_it() {
    if !vm::tools_present("the catalogue desktop QEMU test", vm::TOOLS) {
        return;
    }
    let host = start_host(|config| config).await;
    let _cleanup = Cleanup(&host.compute);
    let services = host.services().clone();
    tokio::task::spawn_blocking(move || {
        services.accounts.create_user(&Actor::system(), "kim", "kims-password", false).expect("user")
    })
    .await
    .expect("joined");
    let id = desktop_from_image(host.services(), "kim", "Lab desktop", "demo", "m1.demo").await;
    assert_eq!(host.compute.machine_ids().expect("ids"), std::slice::from_ref(&id), "defined, not yet running");

    let http = reqwest::Client::new();
    let api = format!("{}/api/v1.0", host.server.url());
    let action = http
        .post(format!("{api}/desktops/{id}/action"))
        .basic_auth("kim", Some("kims-password"))
        .json(&json!({"resume": null}));
    assert_eq!(action.send().await.expect("sent").status(), 200);
    let listed = my_desktops(&host.server.url(), "kim", "kims-password").await;
    let desktop = &listed["data"]["desktop_list"][0];
    assert_eq!(desktop["status"], "ACTIVE", "{listed}");
    assert_eq!(
        (desktop["os_username"].as_str(), desktop["os_password"].as_str()),
        (Some("student"), Some("demo-os-password"))
    );
    let spice_entry = &desktop["connection_info"][0];
    let spice_port: u16 = spice_entry["port"].as_str().and_then(|p| p.parse().ok()).expect("port");
    let ticket = spice_entry["password"].as_str().expect("ticket");
    let ca = spice_entry["ca"].as_str().expect("the display's authority");
    assert_eq!(spice::try_ticket(spice_port, ca, ticket).expect("link"), Verdict::Accepted);
    serial(&host, &id, "thindesk-demo name=Lab desktop").await;

    let pid = host.compute.pid(&id).expect("pid");
    let services = host.services().clone();
    let deleted = id.clone();
    tokio::task::spawn_blocking(move || services.desktops.delete(&Actor::system(), &deleted).expect("delete"))
        .await
        .expect("joined");
    assert!(!vm::process_alive(pid), "deleting the desktop stops its machine");
    assert!(host.compute.machine_ids().expect("ids").is_empty(), "and frees its overlay");
    host.server.shutdown().await;
}

/// Sends `login USER PASSWORD` to the guest's remote-access stand-in behind the
/// forwarded RDP port (see assets/demo-image/remote-access) and returns its verdict.
async fn guest_login(rdp_port: u16, password: &str) -> String {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, Write};
        let stream = std::net::TcpStream::connect(("127.0.0.1", rdp_port)).expect("rdp port");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        let mut greeting = String::new();
        reader.read_line(&mut greeting).expect("greeting");
        (&stream).write_all(format!("login student {password}\n").as_bytes()).expect("login");
        let mut verdict = String::new();
        reader.read_line(&mut verdict).expect("verdict");
        verdict.trim().to_owned()
    })
    .await
    .expect("joined")
}

/// The owner's view of their first desktop: its id, OS password and RDP port.
async fn own_desktop(host: &TestServer<QemuCompute>, user: &str, password: &str) -> (String, String, u16) {
    let listed = my_desktops(&host.server.url(), user, password).await;
    let desktop = &listed["data"]["desktop_list"][0];
    let rdp = desktop["connection_info"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["type"] == "rdp").and_then(|e| e["port"].as_str()?.parse().ok()));
    (
        desktop["id"].as_str().expect("id").to_owned(),
        desktop["os_password"].as_str().expect("os_password").to_owned(),
        rdp.unwrap_or_else(|| panic!("no RDP port: {listed}")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_desktop_gets_its_own_os_password_in_the_guest_and_a_new_owner_a_new_one() {
    if !vm::tools_present("the guest agent OS password test", vm::TOOLS) {
        return;
    }
    let host = start_host(|config| config).await;
    let _cleanup = Cleanup(&host.compute);
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1.0", host.server.url());
    let admin = |request: reqwest::RequestBuilder| request.basic_auth("admin", Some("admin-password"));
    let services = host.services().clone();
    tokio::task::spawn_blocking(move || {
        let by = Actor::system();
        services.accounts.create_user(&by, "admin", "admin-password", true).expect("admin");
        services.accounts.create_user(&by, "ann", "anns-password", false).expect("user");
        services.accounts.create_user(&by, "bob", "bobs-password", false).expect("user");
    })
    .await
    .expect("joined");

    // The administrator says the image runs the guest agent (the demo image does).
    let image = json!({
        "name": "demo-agent", "disk": vm::demo_image(), "connection": "rdp",
        "os_username": "student", "os_password": "the-images-password", "guest_agent": true,
    });
    let added = admin(http.post(format!("{api}/admin/images")).json(&image)).send().await.expect("sent");
    assert_eq!(added.status(), 200, "{}", added.text().await.unwrap_or_default());
    let images: Value =
        admin(http.get(format!("{api}/admin/images"))).send().await.expect("sent").json().await.expect("json");
    let listed =
        images["data"]["image_list"].as_array().expect("list").iter().find(|i| i["name"] == "demo-agent").cloned();
    assert_eq!(listed.map(|i| i["guest_agent"].clone()), Some(json!(true)), "{images}");
    for user in ["ann", "bob"] {
        let give = json!({ "image": "demo-agent", "flavor": "m1.demo", "name": "Lab", "user": user });
        let given = admin(http.post(format!("{api}/admin/desktops")).json(&give)).send().await.expect("sent");
        assert_eq!(given.status(), 200, "{}", given.text().await.unwrap_or_default());
    }
    for (user, password) in [("ann", "anns-password"), ("bob", "bobs-password")] {
        let id = first_desktop_id(&host, user, password).await;
        let start = http.post(format!("{api}/desktops/{id}/action")).basic_auth(user, Some(password));
        assert_eq!(start.json(&json!({"resume": null})).send().await.expect("sent").status(), 200);
    }
    let (ann_id, ann_password, ann_rdp) = own_desktop(&host, "ann", "anns-password").await;
    let (bob_id, bob_password, bob_rdp) = own_desktop(&host, "bob", "bobs-password").await;
    assert_ne!(ann_password, bob_password, "no two desktops share an OS password");
    assert_ne!(ann_password, "the-images-password");

    // Each guest's agent sets its desktop's password once the guest has booted.
    serial(&host, &ann_id, "thindesk-demo chpasswd: password of student set").await;
    serial(&host, &bob_id, "thindesk-demo chpasswd: password of student set").await;
    assert_eq!(guest_login(ann_rdp, &ann_password).await, "login ok", "Ann logs in to her desktop");
    assert_eq!(guest_login(bob_rdp, &ann_password).await, "login refused", "Ann's password does not open Bob's");
    assert_eq!(guest_login(bob_rdp, &bob_password).await, "login ok");
    assert_eq!(guest_login(ann_rdp, "the-images-password").await, "login refused", "the image's is not in force");
    let log = host.compute.serial_log(&ann_id).expect("log");
    assert!(!log.contains(&ann_password), "the password is never shown on the guest's console");

    // Given to Bob, Ann's desktop changes its password: Ann's no longer logs in.
    let assign = json!({ "user": "bob" });
    let assigned = admin(http.post(format!("{api}/admin/desktops/{ann_id}/assign")).json(&assign)).send().await;
    assert_eq!(assigned.expect("sent").status(), 200);
    let compute = host.compute.clone();
    let id = ann_id.clone();
    tokio::task::spawn_blocking(move || {
        vm::wait_until("the second password on the former owner's desktop", Duration::from_secs(120), || {
            compute.serial_log(&id).unwrap_or_default().matches("password of student set").count() >= 2
        })
    })
    .await
    .expect("joined");
    let listed = my_desktops(&host.server.url(), "bob", "bobs-password").await;
    let now = listed["data"]["desktop_list"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["id"] == ann_id.as_str())
        .and_then(|d| d["os_password"].as_str())
        .expect("the new owner sees it")
        .to_owned();
    assert_ne!(now, ann_password);
    assert_eq!(guest_login(ann_rdp, &ann_password).await, "login refused", "the former owner is locked out");
    assert_eq!(guest_login(ann_rdp, &now).await, "login ok", "the new owner gets in");
    host.server.shutdown().await;
}

async fn first_desktop_id(host: &TestServer<QemuCompute>, user: &str, password: &str) -> String {
    let listed = my_desktops(&host.server.url(), user, password).await;
    listed["data"]["desktop_list"][0]["id"].as_str().unwrap_or_else(|| panic!("no desktop: {listed}")).to_owned()
}
