//! thindesk on a real OpenStack (the single-node cloud of `tests/openstack/up.sh`):
//! a student's desktop through the v1.0 API, the exam system's cloud API, the
//! catalogue that follows Glance and Nova, the console, and a server killed and
//! started again. Without the cloud these fail under CI and are skipped elsewhere,
//! loudly (`thindesk_tests::openstack`).

use crate::console::{admin_session, client};
use serde_json::{Value, json};
use std::sync::Arc;
use thindesk_server::compute::Compute;
use thindesk_server::compute::openstack::{OpenStackCompute, api};
use thindesk_server::{Config, RunningServer};
use thindesk_tests::binary::{ServerBinary, as_kim};
use thindesk_tests::openstack::{DEMO_IMAGE, INTERNET_CIDR, TINY_FLAVOR, TestCloud};
use thindesk_tests::{TestServer, launch_form};

/// The network of machines without internet (up.sh's `thindesk-isolated`).
const ISOLATED_CIDR: &str = "10.91.0.";

async fn the_desktop(url: &str) -> Value {
    let listed = as_kim(url, reqwest::Method::GET, "/users/me/desktops", None).await;
    assert_eq!(listed["status"], "success", "{listed}");
    let list = listed["data"]["desktop_list"].as_array().expect("list").clone();
    assert_eq!(list.len(), 1, "{listed}");
    list[0].clone()
}

async fn act(url: &str, id: &str, action: &str) {
    let reply =
        as_kim(url, reqwest::Method::POST, &format!("/desktops/{id}/action"), Some(json!({action: null}))).await;
    assert_eq!(reply, json!({"status": "success", "data": null}), "{action}");
}

/// The Nova server of machine `id`, as the driver finds it: `(server id, status)`.
async fn nova(driver: &Arc<OpenStackCompute>, id: &str) -> Option<(String, String)> {
    let (driver, id) = (driver.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || driver.server_of(&id).ok().map(|server| (server.id, server.status)))
        .await
        .expect("joined")
}

/// Whether the demo guest has said, on its serial console since its last boot, that
/// its guest agent set the desktop's password. Read from the file nova-compute keeps
/// the console in on this single-node cloud (libvirt starts it anew at every boot,
/// soft reboots included): Nova Zed's `os-getConsoleOutput` sometimes stops answering
/// for a while (tests/openstack/README).
fn guest_says_password_set(server_id: &str) -> bool {
    let log = std::fs::read(format!("/var/lib/nova/instances/{server_id}/console.log")).unwrap_or_default();
    String::from_utf8_lossy(&log).contains("thindesk-demo chpasswd: password of student set")
}

/// How many times Nova has set the server's password (its `changePassword` actions
/// that did not fail).
async fn passwords_set(driver: &Arc<OpenStackCompute>, server_id: &str) -> usize {
    let (driver, server_id) = (driver.clone(), server_id.to_owned());
    let actions = tokio::task::spawn_blocking(move || api::instance_actions(driver.session(), &server_id))
        .await
        .expect("joined")
        .expect("instance actions");
    actions.iter().filter(|action| action.action == "changePassword" && action.message.is_none()).count()
}

/// Waits until Nova has set the password `times` times in all, and the guest says it
/// has since its last boot.
async fn until_password_set(driver: &Arc<OpenStackCompute>, server_id: &str, times: usize) {
    let started = std::time::Instant::now();
    while passwords_set(driver, server_id).await < times || !guest_says_password_set(server_id) {
        assert!(started.elapsed() < std::time::Duration::from_secs(300), "the guest agent never set the password");
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// A server in this process on the test cloud, with an installation mark of its own:
/// the mark, the driver and the server.
pub(crate) async fn cloud_server(
    cloud: &TestCloud,
    prefix: &str,
) -> (String, Arc<OpenStackCompute>, TestServer<OpenStackCompute>) {
    let mark = format!("{prefix}-{}-{}", std::process::id(), thindesk_tests::ports::one());
    let data_dir = tempfile::tempdir().expect("dir");
    let driver = cloud.driver_async(&mark, data_dir.path()).await;
    let server = TestServer::builder(driver.clone()).public_address("127.0.0.1").data_dir(data_dir).start().await;
    (mark, driver, server)
}

pub(crate) async fn machines(driver: &Arc<OpenStackCompute>) -> Vec<String> {
    let driver = driver.clone();
    tokio::task::spawn_blocking(move || driver.machines().expect("machines")).await.expect("joined")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desktop_lives_on_openstack_through_the_v1_api_and_a_killed_server_loses_nothing() {
    let Some(cloud) = TestCloud::find_async("the OpenStack desktop life test").await else { return };
    let mut setup = ServerBinary::with_config(&format!("hypervisor = \"openstack\"\n{}", cloud.config_table()));
    // The catalogue is the cloud's: the command line reads it, and refuses a local one.
    let images = setup.admin(&["image", "list"], "");
    assert!(images.contains(DEMO_IMAGE), "{images}");
    assert!(setup.admin(&["flavor", "list"], "").contains(TINY_FLAVOR));
    let refused = setup.admin_refused(&["flavor", "add", "local", "--vcpus", "1", "--ram", "256", "--disk", "1"], "");
    assert!(refused.contains("Glance, Nova"), "{refused}");
    setup.admin(&["user", "add", "kim"], "kims-pw-1\n");
    setup.admin(&["desktop", "create", "--user", "kim", "--image", DEMO_IMAGE, "--flavor", TINY_FLAVOR], "");
    let installation = std::fs::read_to_string(setup.data_dir().join("installation")).expect("installation mark");
    let driver = cloud.driver_async(installation.trim(), &setup.data_dir()).await;

    let mut server = setup.serve().await;
    let desktop = the_desktop(&setup.url).await;
    let id = desktop["id"].as_str().expect("id").to_owned();
    assert_eq!(desktop["status"], "SHUTOFF", "{desktop}");
    assert_eq!(machines(&driver).await, vec![id.clone()], "one Nova server, of this installation");
    let (server_id, status) = nova(&driver, &id).await.expect("a Nova server");
    assert_eq!(status, "SHUTOFF");

    act(&setup.url, &id, "resume").await;
    assert_eq!(the_desktop(&setup.url).await["status"], "ACTIVE");
    // The image runs the guest agent (hw_qemu_guest_agent): the desktop's own
    // password is set in the guest through Nova at every start.
    assert!(images.contains("per desktop"), "{images}");
    until_password_set(&driver, &server_id, 1).await;
    act(&setup.url, &id, "reboot").await;
    let rebooted = the_desktop(&setup.url).await;
    assert_eq!(rebooted["status"], "ACTIVE", "{rebooted}");
    until_password_set(&driver, &server_id, 2).await;

    // Killed while the desktop runs: the state lives in Nova, and the next server
    // finds the same server, running, and destroys nothing.
    server.kill("-KILL");
    let mut server = setup.serve().await;
    let after = the_desktop(&setup.url).await;
    assert_eq!((after["id"].as_str(), after["status"].as_str()), (Some(id.as_str()), Some("ACTIVE")), "{after}");
    assert_eq!(nova(&driver, &id).await, Some((server_id.clone(), "ACTIVE".to_owned())), "the same Nova server");
    // The new server knows the account again (from its store) and sets it at the
    // next start; a reboot here shows it.
    act(&setup.url, &id, "reboot").await;
    until_password_set(&driver, &server_id, 3).await;
    let log = server.log_text();
    assert!(log.contains("strays: 0") && log.contains("unowned_machines: 0"), "{log}");

    act(&setup.url, &id, "shutdown").await;
    assert_eq!(the_desktop(&setup.url).await["status"], "SHUTOFF");
    assert_eq!(nova(&driver, &id).await, Some((server_id, "SHUTOFF".to_owned())));

    setup.admin(&["desktop", "delete", &id], "");
    assert!(nova(&driver, &id).await.is_none(), "deleting the desktop deleted its server");
    assert!(machines(&driver).await.is_empty());
    server.kill("-TERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exam_machine_on_openstack_answers_with_its_fixed_address_and_the_console_says_where_it_lives() {
    let Some(cloud) = TestCloud::find_async("the OpenStack cloud API test").await else { return };
    let (_, driver, server) = cloud_server(&cloud, "test").await;

    // The catalogue came from Glance and Nova at start.
    let images = server.cloud(&[("command", "list_images")]).await;
    assert!(images.body.to_string().contains(DEMO_IMAGE), "{:?}", images.body);
    let unknown = server.cloud(&launch_form("no-such-image", TINY_FLAVOR, "false", "exam")).await;
    assert_eq!(unknown.code, 3, "{:?}", unknown.body);

    let launched = server.cloud(&launch_form(DEMO_IMAGE, TINY_FLAVOR, "false", "exam-1")).await;
    assert_eq!(launched.code, 0, "{:?}", launched.body);
    let vm_id = launched.body["vm_id"].as_str().expect("vm_id").to_owned();
    let vm_ip = launched.body["vm_ip"].as_str().expect("vm_ip").to_owned();
    assert!(vm_ip.starts_with(ISOLATED_CIDR), "the fixed address on the isolated network: {vm_ip}");
    assert_eq!(launched.body["spice_ip"], "127.0.0.1", "the display is reached through this host");
    assert_eq!(nova(&driver, &vm_id).await.map(|(_, status)| status).as_deref(), Some("ACTIVE"));

    let queried = server.cloud(&[("command", "query_instance"), ("vm_id", &vm_id)]).await;
    assert_eq!((queried.code, queried.body["vm_ip"].as_str()), (0, Some(vm_ip.as_str())), "{:?}", queried.body);

    // The console's desktops page names the cloud and project the machine is in,
    // and its catalogue page offers no local images.
    let (session, _) = admin_session(&server).await;
    let page = |path: &'static str| {
        let request = client().get(server.url(path)).header("Cookie", format!("td_session={session}"));
        async move { request.send().await.expect("page").text().await.expect("html") }
    };
    let desktops = page("/admin/desktops").await;
    assert!(desktops.contains("exam-1"), "{desktops}");
    assert!(desktops.contains("OpenStack cloud &quot;thindesk&quot;, project &quot;thindesk&quot;"), "{desktops}");
    let catalogue = page("/admin/catalogue").await;
    assert!(catalogue.contains("Glance, Nova") && !catalogue.contains("/admin/images/create"), "{catalogue}");

    let destroyed = server.cloud(&[("command", "destroy_instance"), ("vm_id", &vm_id)]).await;
    assert_eq!(destroyed.code, 0, "{:?}", destroyed.body);
    assert!(nova(&driver, &vm_id).await.is_none(), "destroy waits until Nova has deleted the server");
    let again = server.cloud(&[("command", "query_instance"), ("vm_id", &vm_id)]).await;
    assert_eq!(again.code, 6);

    // With internet, the machine is on the routed network.
    let open = server.cloud(&launch_form(DEMO_IMAGE, TINY_FLAVOR, "true", "exam-2")).await;
    assert_eq!(open.code, 0, "{:?}", open.body);
    assert!(open.body["vm_ip"].as_str().is_some_and(|ip| ip.starts_with(INTERNET_CIDR)), "{:?}", open.body);
    let vm_id = open.body["vm_id"].as_str().expect("vm_id").to_owned();
    assert_eq!(server.cloud(&[("command", "destroy_instance"), ("vm_id", &vm_id)]).await.code, 0);
    assert!(machines(&driver).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_of_nova_answers_7_and_what_is_wrong_with_the_configuration_8() {
    let Some(cloud) = TestCloud::find_async("the OpenStack error test").await else { return };
    let (mark, driver, server) = cloud_server(&cloud, "test").await;

    // A flavor no host of the cloud can hold (up.sh makes it): Nova's scheduler
    // fails the server, and the fault is the caller's answer.
    let fault = server.cloud(&launch_form(DEMO_IMAGE, "thindesk.toolarge", "false", "exam-big")).await;
    assert_eq!(fault.code, 7, "{:?}", fault.body);
    assert!(fault.description.contains("No valid host"), "{}", fault.description);
    assert!(machines(&driver).await.is_empty(), "the failed server is deleted");

    // A network the configuration names that the cloud does not have.
    let data_dir = tempfile::tempdir().expect("dir");
    let misnamed = cloud
        .driver_with(&mark, data_dir.path(), |config| config.isolated_network = "no-such-network".to_owned())
        .await;
    let server = TestServer::builder(misnamed).public_address("127.0.0.1").data_dir(data_dir).start().await;
    let wrong = server.cloud(&launch_form(DEMO_IMAGE, TINY_FLAVOR, "false", "exam")).await;
    assert_eq!(wrong.code, 8, "{:?}", wrong.body);
    assert!(wrong.description.contains("no network named \"no-such-network\""), "{}", wrong.description);

    // Credentials Keystone refuses: the server does not start, and says why.
    let text = std::fs::read_to_string(&cloud.clouds_file).expect("clouds file");
    let password = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("password:"))
        .map(|value| value.trim().trim_matches(['"', '\'']).to_owned())
        .expect("a password in the clouds file");
    let dir = tempfile::tempdir().expect("dir");
    let wrong_file = dir.path().join("clouds.yaml");
    std::fs::write(&wrong_file, text.replace(&password, "not-the-password")).expect("write");
    std::fs::set_permissions(&wrong_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("0600");
    let refused = TestCloud { clouds_file: wrong_file, cloud: cloud.cloud.clone() }
        .driver_async(&mark, &dir.path().join("data"))
        .await;
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let Err(error) = RunningServer::start(config, refused).await else { panic!("started with refused credentials") };
    let said = error.to_string();
    assert!(said.contains("Keystone refused"), "{said}");
    assert!(!said.contains("not-the-password"), "no secret in the words: {said}");
}
