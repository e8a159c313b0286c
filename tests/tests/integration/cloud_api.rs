//! The cloud API (seed 000, `POST /cloud_api`) over HTTP on a real server: every
//! return code, both form encodings, and who may call it.

use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use thindesk_server::compute::double::TestCompute;
use thindesk_server::compute::{NoCompute, PowerOp};
use thindesk_server::config::{ApiKey, parse_network};
use thindesk_server::service::Actor;
use thindesk_shared::{ConnectionType, Policy};
use thindesk_tests::{CloudAnswer, STUDENT, TestServer, basic, desktop_from_image, launch_form};

const IMAGE: &str = "xubuntu-14.04-desktop-x86";
const KEY: &str = "exam-system-secret-key";

async fn with_image() -> TestServer {
    let server = TestServer::start().await;
    server.add_image(IMAGE, ConnectionType::Spice, "student", "os-password").await;
    server
}

fn launch(internet: &'static str) -> [(&'static str, &'static str); 5] {
    launch_form(IMAGE, "m1.small", internet, "final_exam_141242022")
}

fn assert_code(answer: &CloudAnswer, code: u64, description: &str) {
    assert_eq!((answer.code, answer.description.as_str()), (code, description), "{answer:?}");
}

fn instance_count(server: &TestServer) -> usize {
    server.services().cloud.list_instances().expect("list").len()
}

#[tokio::test]
async fn launch_answers_with_the_seeds_keys_and_a_running_machine_then_destroy_frees_it() {
    let server = with_image().await;
    let launched = server.cloud(&launch("false")).await;
    assert_code(&launched, 0, "Success");
    let body = &launched.body;
    let vm_id = body["vm_id"].as_str().expect("vm_id").to_owned();
    assert!(vm_id.len() >= 16, "{vm_id}");
    assert_eq!(body["vm_ip"], "192.0.2.10", "the server's public address");
    assert!(body["spice_port"].as_u64().is_some_and(|p| p > 0), "{body}");
    assert!(body["spice_password"].as_str().is_some_and(|p| !p.is_empty()), "{body}");
    let machine = server.compute.spec(&vm_id).expect("defined on the hypervisor");
    assert!(!machine.internet, "internet=false reaches the driver");
    assert_eq!((machine.vcpus, machine.ram_mib, machine.disk_gib), (1, 2048, 20));
    assert_eq!(server.compute.operations(), [(vm_id.clone(), PowerOp::Start)], "it runs when the answer comes");

    let query = server.cloud(&[("command", "query_instance"), ("vm_id", vm_id.as_str())]).await;
    assert_code(&query, 0, "Success");
    assert_eq!(query.body["status"], "ACTIVE");
    assert_eq!(query.body["name"], "final_exam_141242022");
    assert_eq!(query.body["internet"], false);

    let destroyed = server.cloud(&[("command", "destroy_instance"), ("vm_id", vm_id.as_str())]).await;
    assert_code(&destroyed, 0, "Success");
    assert!(server.compute.spec(&vm_id).is_none(), "the machine is gone");
    let again = server.cloud(&[("command", "destroy_instance"), ("vm_id", vm_id.as_str())]).await;
    assert_code(&again, 6, "Invalid virtual machine id");
    assert_eq!(instance_count(&server), 0);
}

#[tokio::test]
async fn multipart_forms_work_like_urlencoded_ones() {
    let server = with_image().await;
    let launched = server.cloud_multipart(&launch("true")).await;
    assert_code(&launched, 0, "Success");
    let vm_id = launched.body["vm_id"].as_str().expect("vm_id").to_owned();
    assert!(server.compute.spec(&vm_id).expect("defined").internet);
    let destroyed = server.cloud_multipart(&[("command", "destroy_instance"), ("vm_id", vm_id.as_str())]).await;
    assert_code(&destroyed, 0, "Success");
    let missing = server.cloud_multipart(&[("command", "destroy_instance")]).await;
    assert_code(&missing, 2, "Argument missing");
}

#[tokio::test]
async fn every_refusal_has_its_code_and_the_contracts_words_and_changes_nothing() {
    let server = with_image().await;
    assert_code(&server.cloud(&[]).await, 1, "Invalid command");
    assert_code(&server.cloud(&[("command", "reboot_instance")]).await, 1, "Invalid command");
    assert_code(&server.cloud(&[("image", IMAGE)]).await, 1, "Invalid command");

    let missing = server.cloud(&[("command", "launch_instance"), ("image", IMAGE), ("name", "")]).await;
    assert_code(&missing, 2, "Argument missing");
    assert_eq!(missing.body["missing"], json!(["flavor", "internet", "name"]));
    assert_code(&server.cloud(&[("command", "destroy_instance")]).await, 2, "Argument missing");

    let mut unknown_image = launch("false");
    unknown_image[1] = ("image", "windows-xp");
    assert_code(&server.cloud(&unknown_image).await, 3, "Invalid image name");
    let mut unknown_flavor = launch("false");
    unknown_flavor[2] = ("flavor", "m1.gigantic");
    assert_code(&server.cloud(&unknown_flavor).await, 4, "Invalid flavor name");
    for internet in ["yes", "True", "1", "FALSE"] {
        let mut bad = launch("false");
        bad[3] = ("internet", internet);
        assert_code(&server.cloud(&bad).await, 5, "Invalid internet access setting");
    }
    let unknown_vm = server.cloud(&[("command", "destroy_instance"), ("vm_id", "no-such-vm")]).await;
    assert_code(&unknown_vm, 6, "Invalid virtual machine id");
    let unknown_query = server.cloud(&[("command", "query_instance"), ("vm_id", "no-such-vm")]).await;
    assert_code(&unknown_query, 6, "Invalid virtual machine id");

    assert_eq!(instance_count(&server), 0);
    assert!(server.compute.operations().is_empty());
}

#[tokio::test]
async fn other_methods_and_unreadable_bodies_still_answer_in_the_cloud_apis_shape() {
    let server = with_image().await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let request = server.http.request(method.clone(), server.url("/cloud_api"));
        let answer = server.cloud_request(request).await;
        assert_code(&answer, 1, "Invalid command");
        assert!(answer.body["detail"].as_str().is_some_and(|d| d.contains("POST")), "{method}: {answer:?}");
    }
    let json_body = server.http.post(server.url("/cloud_api")).json(&json!({"command": "list_images"}));
    assert_code(&server.cloud_request(json_body).await, 1, "Invalid command");
    let huge = "a".repeat(1024 * 1024 + 1);
    let too_large =
        server.http.post(server.url("/cloud_api")).form(&[("command", "list_images"), ("pad", huge.as_str())]);
    let answer = server.cloud_request(too_large).await;
    assert_code(&answer, 1, "Invalid command");
    assert!(answer.body["detail"].as_str().is_some_and(|d| d.contains("1 MiB")), "{answer:?}");
}

#[tokio::test]
async fn a_failing_hypervisor_is_7_and_leaves_no_instance_behind() {
    let server = with_image().await;
    server.compute.set_failing(true);
    let answer = server.cloud(&launch("false")).await;
    assert_eq!(answer.code, 7, "{answer:?}");
    assert!(answer.description.starts_with("Virtual machine creation failed"), "{answer:?}");
    assert!(!answer.description.contains("test double"), "internals stay in the log: {answer:?}");
    server.compute.set_failing(false);
    assert_eq!(instance_count(&server), 0);
    let listed = server.cloud(&[("command", "list_instances")]).await;
    assert_eq!(listed.body["instances"], json!([]));
}

#[tokio::test]
async fn a_server_without_a_hypervisor_answers_8_with_what_is_wrong() {
    let server = TestServer::builder(Arc::new(NoCompute)).start().await;
    server.add_image(IMAGE, ConnectionType::Spice, "student", "pw").await;
    let answer = server.cloud(&launch("false")).await;
    assert_eq!(answer.code, 8, "{answer:?}");
    assert!(answer.description.contains("no compute driver"), "{answer:?}");
    assert!(server.services().cloud.list_instances().expect("list").is_empty());
    server.server.shutdown().await;
}

#[tokio::test]
async fn with_a_key_configured_it_is_needed_in_the_field_or_the_header() {
    let server = TestServer::builder(Arc::new(TestCompute::new()))
        .configure(|config| config.cloud_api_key = Some(ApiKey::new(KEY)))
        .start()
        .await;
    server.add_image(IMAGE, ConnectionType::Spice, "student", "pw").await;
    let list = [("command", "list_flavors")];
    assert_code(&server.cloud(&list).await, 9, "Permission denied");
    assert_code(
        &server.cloud(&[("command", "list_flavors"), ("api_key", "wrong-key-of-some-length")]).await,
        9,
        "Permission denied",
    );
    let wrong_header =
        server.http.post(server.url("/cloud_api")).header("X-Api-Key", "exam-system-secret-ke").form(&list);
    assert_code(&server.cloud_request(wrong_header).await, 9, "Permission denied");
    let denied_launch = server.cloud(&launch("false")).await;
    assert_code(&denied_launch, 9, "Permission denied");
    assert_eq!(instance_count(&server), 0);

    let by_field = server.cloud(&[("command", "list_flavors"), ("api_key", KEY)]).await;
    assert_code(&by_field, 0, "Success");
    let names: Vec<&str> =
        by_field.body["flavors"].as_array().expect("flavors").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, ["m1.tiny", "m1.small", "m1.medium"]);
    let by_header =
        server.http.post(server.url("/cloud_api")).header("X-Api-Key", KEY).form(&[("command", "list_images")]);
    let images = server.cloud_request(by_header).await;
    assert_code(&images, 0, "Success");
    assert_eq!(images.body["images"], json!([{"name": IMAGE, "default_connection_type": "spice"}]));
    let mut keyed_launch = launch("false").to_vec();
    keyed_launch.push(("api_key", KEY));
    assert_code(&server.cloud_multipart(&keyed_launch).await, 0, "Success");
    assert_eq!(instance_count(&server), 1);
}

#[tokio::test]
async fn a_caller_outside_the_allow_list_is_refused_even_with_the_key() {
    let server = TestServer::builder(Arc::new(TestCompute::new()))
        .configure(|config| {
            config.cloud_api_allow =
                vec![parse_network("10.0.0.0/8").expect("net"), parse_network("192.0.2.7").expect("ip")];
            config.cloud_api_key = Some(ApiKey::new(KEY));
        })
        .start()
        .await;
    server.add_image(IMAGE, ConnectionType::Spice, "student", "pw").await;
    let mut keyed_launch = launch("false").to_vec();
    keyed_launch.push(("api_key", KEY));
    assert_code(&server.cloud(&keyed_launch).await, 9, "Permission denied");
    assert_code(&server.cloud(&[("command", "list_images"), ("api_key", KEY)]).await, 9, "Permission denied");
    let get = server.http.get(server.url("/cloud_api"));
    assert_code(&server.cloud_request(get).await, 9, "Permission denied");
    assert_eq!(instance_count(&server), 0);
    assert!(server.compute.operations().is_empty());
}

#[tokio::test]
async fn a_desktop_made_from_an_image_and_a_flavor_reaches_its_user_with_the_images_login() {
    let server = TestServer::start().await;
    server.add_image("win10", ConnectionType::Rdp, "Administrator", "image-os-password").await;
    let id = desktop_from_image(server.services(), STUDENT.0, "Windows lab", "win10", "m1.medium").await;
    let machine = server.compute.spec(&id).expect("the desktop's machine is defined");
    assert!(machine.rdp && machine.internet);
    assert_eq!(machine.policy, Policy::default(), "the desktop's policy reaches its machine");
    assert_eq!((machine.vcpus, machine.ram_mib), (2, 4096));

    let auth = basic(STUDENT.0, STUDENT.1);
    let listed = server.get("/users/me/desktops", Some(&auth)).await;
    let desktop = &listed.data()["desktop_list"][0];
    assert_eq!(desktop["id"], json!(id));
    assert_eq!(desktop["name"], "Windows lab");
    assert_eq!(desktop["os_username"], "Administrator");
    assert_eq!(desktop["os_password"], "image-os-password");
    assert_eq!(desktop["default_connection_type"], "rdp");

    let services = server.services().clone();
    let deleted = id.clone();
    tokio::task::spawn_blocking(move || services.desktops.delete(&Actor::system(), &deleted).expect("delete"))
        .await
        .expect("joined");
    assert!(server.compute.spec(&id).is_none(), "deleting the desktop destroys its machine");
    assert_eq!(server.get("/users/me/desktops", Some(&auth)).await.data()["desktop_list"], json!([]));
}

#[tokio::test]
async fn the_cloud_api_cannot_touch_a_desktops_machine() {
    let server = TestServer::start().await;
    server.add_image("win10", ConnectionType::Rdp, "Administrator", "pw").await;
    let desktop = desktop_from_image(server.services(), STUDENT.0, "lab", "win10", "m1.tiny").await;
    for command in ["destroy_instance", "query_instance"] {
        let answer = server.cloud(&[("command", command), ("vm_id", desktop.as_str())]).await;
        assert_code(&answer, 6, "Invalid virtual machine id");
    }
    assert!(server.compute.spec(&desktop).is_some(), "the desktop's machine is untouched");
    assert_eq!(server.cloud(&[("command", "list_instances")]).await.body["instances"], json!([]));
}
