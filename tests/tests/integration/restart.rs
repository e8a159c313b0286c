//! The real `thindesk-server` binary is killed while its machines run: the machines
//! carry on, and the next server finds them again and marks the ones that died
//! meanwhile SHUTOFF.

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use thindesk_server::store::Store;
use thindesk_shared::DesktopStatus;
use thindesk_tests::binary::{ServerBinary, as_kim};
use thindesk_tests::spice::{self, Verdict};
use thindesk_tests::{launch_form, vm};

async fn cloud(url: &str, form: &[(&str, &str)]) -> Value {
    let reply = reqwest::Client::new().post(format!("{url}/cloud_api")).form(form).send().await.expect("sent");
    reply.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn machines_survive_a_server_crash_and_the_next_server_finds_them() {
    if !vm::tools_present("the server restart test", vm::TOOLS) {
        return;
    }
    let image = tokio::task::spawn_blocking(vm::demo_image).await.expect("image");
    let mut setup = ServerBinary::new();
    setup.admin(&["image", "add", "demo", "--disk", &image.to_string_lossy(), "--os-username", "student"], "os-pw\n");
    setup.admin(&["flavor", "add", "m1.test", "--vcpus", "1", "--ram", "256", "--disk", "1"], "");
    setup.admin(&["user", "add", "kim"], "kims-pw-1\n");
    setup.admin(&["desktop", "create", "--user", "kim", "--image", "demo", "--flavor", "m1.test"], "");

    let mut server = setup.serve().await;
    let launched = cloud(&setup.url, &launch_form("demo", "m1.test", "false", "exam-1")).await;
    assert_eq!(launched["ret_code"], 0, "{launched}");
    let vm_id = launched["vm_id"].as_str().expect("vm_id").to_owned();
    let ticket = launched["spice_password"].as_str().expect("ticket").to_owned();
    let spice_port = launched["spice_port"].as_u64().expect("port") as u16;
    let ca = launched["spice_ca"].as_str().expect("the display's authority").to_owned();

    let listed = as_kim(&setup.url, reqwest::Method::GET, "/users/me/desktops", None).await;
    let desktop_id = listed["data"]["desktop_list"][0]["id"].as_str().expect("desktop").to_owned();
    let resumed = as_kim(
        &setup.url,
        reqwest::Method::POST,
        &format!("/desktops/{desktop_id}/action"),
        Some(json!({"resume": null})),
    )
    .await;
    assert_eq!(resumed["status"], "success", "{resumed}");
    let (exam_pid, desktop_pid) = (setup.machine_pid(&vm_id), setup.machine_pid(&desktop_id));

    // The server crashes. Its machines do not.
    server.kill("-KILL");
    assert!(vm::process_alive(exam_pid) && vm::process_alive(desktop_pid), "machines outlive the server");
    assert_eq!(spice::try_ticket(spice_port, &ca, &ticket).expect("link"), Verdict::Accepted);
    // While it is down, the desktop's machine dies too.
    assert!(Command::new("kill").args(["-KILL", &desktop_pid.to_string()]).status().expect("kill").success());
    vm::wait_until("the desktop's QEMU to exit", Duration::from_secs(30), || !vm::process_alive(desktop_pid));

    let mut server = setup.serve().await;
    // Before anyone asks, the store already says what happened.
    let store = Store::open(&setup.data_dir()).expect("store");
    assert_eq!(store.desktop(&desktop_id).expect("read").expect("desktop").status, DesktopStatus::Shutoff);

    let queried = cloud(&setup.url, &[("command", "query_instance"), ("vm_id", &vm_id)]).await;
    assert_eq!(queried["ret_code"], 0, "{queried}");
    assert_eq!(queried["status"], "ACTIVE", "{queried}");
    assert_eq!(queried["spice_password"], ticket.as_str(), "same machine, same ticket");
    assert_eq!(spice::try_ticket(spice_port, &ca, &ticket).expect("link"), Verdict::Accepted);
    let listed = as_kim(&setup.url, reqwest::Method::GET, "/users/me/desktops", None).await;
    assert_eq!(listed["data"]["desktop_list"][0]["status"], "SHUTOFF", "{listed}");

    // The re-attached machine is still fully managed: destroy frees it.
    let destroyed = cloud(&setup.url, &[("command", "destroy_instance"), ("vm_id", &vm_id)]).await;
    assert_eq!(destroyed["ret_code"], 0, "{destroyed}");
    assert!(!vm::process_alive(exam_pid));
    server.kill("-TERM");
}
