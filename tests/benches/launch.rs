//! `launch_instance` latency through the real cloud API, beside a bare QEMU start of
//! the same disk on the same machine.
//!
//!     cargo bench -p thindesk-tests --bench launch [-- ROUNDS] [--openstack]
//!
//! With `--openstack`, the same launches on the OpenStack driver against the test
//! cloud (`tests/openstack/up.sh`) follow in the same run: ROUNDS one at a time and
//! one round of 5 at once (the project's default quota is 10 servers), beside the
//! local driver's one-at-a-time figures.
//!
//! For each of "one launch at a time" and "20 at once" it prints p50 and p95 of the
//! time from sending the request to the answer (the VM is then running and its
//! display takes its ticket), and the same for the bare start: `qemu-img create` of
//! the overlay and `qemu-system-x86_64 -daemonize` until it returns (QMP and SPICE
//! listening). Every machine is destroyed after its round.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thindesk_server::service::Actor;
use thindesk_server::service::catalogue::ImageSpec;
use thindesk_server::{Config, RunningServer};
use thindesk_shared::ConnectionType;
use thindesk_tests::vm;

const AT_ONCE: usize = 20;

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    if !vm::tools_present("the launch benchmark", vm::TOOLS) {
        std::process::exit(1);
    }
    let image = vm::demo_image();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    let bare_dir = tempfile::tempdir().expect("dir");
    let accel = bare_accel(bare_dir.path(), &image);
    let bare_one: Vec<Duration> = (0..rounds * 2).map(|i| bare_start(bare_dir.path(), &image, i, accel)).collect();
    let bare_many: Vec<Duration> = (0..rounds)
        .flat_map(|round| {
            let handles: Vec<_> = (0..AT_ONCE)
                .map(|i| {
                    let (dir, image) = (bare_dir.path().to_owned(), image.clone());
                    std::thread::spawn(move || bare_start(&dir, &image, 1000 + round * AT_ONCE + i, accel))
                })
                .collect();
            let times: Vec<Duration> = handles.into_iter().map(|h| h.join().expect("bare start")).collect();
            stop_bare(bare_dir.path());
            times
        })
        .collect();

    let (one, many) = runtime.block_on(async {
        let data = tempfile::tempdir().expect("dir");
        let config = Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            data_dir: data.path().to_owned(),
            display_address: "127.0.0.1".parse().expect("address"),
            spice_ports: 47000..=47099,
            rdp_ports: 47100..=47199,
            ..Config::default()
        };
        let compute = thindesk_server::app::compute_for(&config).expect("driver");
        let server = RunningServer::start(config, compute).await.expect("server");
        let services = server.services().clone();
        tokio::task::spawn_blocking(move || {
            services.catalogue.add_image(
                &Actor::system(),
                &ImageSpec {
                    name: "thindesk-demo".into(),
                    base_disk: image,
                    default_connection_type: ConnectionType::Spice,
                    os_username: "student".into(),
                    os_password: "demo".into(),
                    guest_agent: false,
                },
            )
        })
        .await
        .expect("join")
        .expect("image");
        let url = format!("{}/cloud_api", server.url());
        let http = reqwest::Client::new();
        let mut one = Vec::new();
        for i in 0..rounds * 2 {
            let (took, vm_id) = launch(&http, &url, &format!("bench-{i}")).await;
            one.push(took);
            destroy(&http, &url, &vm_id).await;
        }
        let mut many = Vec::new();
        for round in 0..rounds {
            many.extend(
                launch_round(&http, &url, "thindesk-demo", "m1.tiny", AT_ONCE, &format!("bench-{round}")).await,
            );
        }
        server.shutdown().await;
        (one, many)
    });

    println!("| launches | samples | bare QEMU p50 | p95 | launch_instance p50 | p95 | ratio p50 | ratio p95 |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (label, bare, launch) in [("one at a time", bare_one, one.clone()), ("20 at once", bare_many, many)] {
        let (b50, b95, l50, l95) = (pct(&bare, 50), pct(&bare, 95), pct(&launch, 50), pct(&launch, 95));
        println!(
            "| {label} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            launch.len(),
            ms(b50),
            ms(b95),
            ms(l50),
            ms(l95),
            l50.as_secs_f64() / b50.as_secs_f64(),
            l95.as_secs_f64() / b95.as_secs_f64()
        );
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\naccelerator: {accel}; {cpus} CPUs; {rounds} rounds");

    if std::env::args().any(|argument| argument == "--openstack") {
        let Some(cloud) = thindesk_tests::openstack::TestCloud::find("the launch benchmark on OpenStack") else {
            std::process::exit(1);
        };
        let (cloud_one, cloud_many) = runtime.block_on(openstack_launches(cloud, rounds));
        println!("\n| driver | launches | samples | p50 | p95 | p50 / local p50 |");
        println!("| --- | --- | --- | --- | --- | --- |");
        let local = pct(&one, 50);
        for (label, driver, times) in [
            ("one at a time", "local QEMU", &one),
            ("one at a time", "OpenStack", &cloud_one),
            ("5 at once", "OpenStack", &cloud_many),
        ] {
            let (p50, p95) = (pct(times, 50), pct(times, 95));
            println!(
                "| {driver} | {label} | {} | {} | {} | {:.1} |",
                times.len(),
                ms(p50),
                ms(p95),
                p50.as_secs_f64() / local.as_secs_f64()
            );
        }
    }
}

/// `launch_instance` on the OpenStack driver: `rounds` one at a time, then 5 at once.
async fn openstack_launches(
    cloud: thindesk_tests::openstack::TestCloud,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    const CLOUD_AT_ONCE: usize = 5;
    let data = tempfile::tempdir().expect("dir");
    let mark = format!("bench-{}", std::process::id());
    let driver = cloud.driver_async(&mark, data.path()).await;
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    let server = RunningServer::start(config, driver).await.expect("server");
    let url = format!("{}/cloud_api", server.url());
    let http = reqwest::Client::new();
    let (image, flavor) = (thindesk_tests::openstack::DEMO_IMAGE, thindesk_tests::openstack::TINY_FLAVOR);
    let mut one = Vec::new();
    for i in 0..rounds {
        let (took, vm_id) = launch_of(&http, &url, image, flavor, &format!("bench-{i}")).await;
        one.push(took);
        destroy(&http, &url, &vm_id).await;
    }
    let many = launch_round(&http, &url, image, flavor, CLOUD_AT_ONCE, "bench-many").await;
    server.shutdown().await;
    (one, many)
}

/// `count` launches at once, each timed, then destroyed.
async fn launch_round(
    http: &reqwest::Client,
    url: &str,
    image: &'static str,
    flavor: &'static str,
    count: usize,
    prefix: &str,
) -> Vec<Duration> {
    let launches: Vec<_> = (0..count)
        .map(|i| {
            let (http, url, name) = (http.clone(), url.to_owned(), format!("{prefix}-{i}"));
            tokio::spawn(async move { launch_of(&http, &url, image, flavor, &name).await })
        })
        .collect();
    let (mut times, mut ids) = (Vec::new(), Vec::new());
    for handle in launches {
        let (took, vm_id) = handle.await.expect("launch task");
        times.push(took);
        ids.push(vm_id);
    }
    for vm_id in ids {
        destroy(http, url, &vm_id).await;
    }
    times
}

async fn launch(http: &reqwest::Client, url: &str, name: &str) -> (Duration, String) {
    launch_of(http, url, "thindesk-demo", "m1.tiny", name).await
}

async fn launch_of(http: &reqwest::Client, url: &str, image: &str, flavor: &str, name: &str) -> (Duration, String) {
    let form =
        [("command", "launch_instance"), ("image", image), ("flavor", flavor), ("internet", "false"), ("name", name)];
    let start = Instant::now();
    let reply: serde_json::Value = http.post(url).form(&form).send().await.expect("sent").json().await.expect("JSON");
    let took = start.elapsed();
    assert_eq!(reply["ret_code"], 0, "launch failed: {reply}");
    (took, reply["vm_id"].as_str().expect("vm_id").to_owned())
}

async fn destroy(http: &reqwest::Client, url: &str, vm_id: &str) {
    let reply: serde_json::Value = http
        .post(url)
        .form(&[("command", "destroy_instance"), ("vm_id", vm_id)])
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(reply["ret_code"], 0, "destroy failed: {reply}");
}

/// The accelerator the driver ends up with: KVM if QEMU can start a CPU on it.
fn bare_accel(dir: &Path, image: &Path) -> &'static str {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return "tcg";
    }
    let overlay = dir.join("bare-999.qcow2");
    create_overlay(image, &overlay);
    let kvm_works = start_qemu(dir, &overlay, 999, "kvm").success();
    stop_bare(dir);
    if kvm_works { "kvm" } else { "tcg" }
}

/// The same work a launch does below the API: an overlay, then QEMU with the same
/// kind of options, until the daemonizing parent returns.
fn bare_start(dir: &Path, image: &Path, i: usize, accel: &str) -> Duration {
    let overlay = dir.join(format!("bare-{i}.qcow2"));
    let start = Instant::now();
    create_overlay(image, &overlay);
    let status = start_qemu(dir, &overlay, i, accel);
    let took = start.elapsed();
    assert!(status.success(), "bare QEMU started");
    if i < 999 {
        stop_bare(dir);
    }
    took
}

fn create_overlay(image: &Path, overlay: &Path) {
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(image)
        .arg(overlay)
        .stdout(Stdio::null())
        .status()
        .expect("qemu-img");
    assert!(status.success(), "qemu-img created the overlay");
}

/// `qemu-system-x86_64 -daemonize` with the driver's kind of options.
fn start_qemu(dir: &Path, overlay: &Path, i: usize, accel: &str) -> std::process::ExitStatus {
    Command::new("qemu-system-x86_64")
        .args(["-machine", &format!("q35,accel={accel}"), "-m", "512M", "-nodefaults", "-display", "none"])
        .args(["-cpu", if accel == "kvm" { "host" } else { "qemu64" }])
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=qcow2", overlay.display()))
        .args(["-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0", "-vga", "qxl"])
        .args(["-spice", &format!("port={},addr=127.0.0.1", 48000 + i % 1000)])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", dir.join(format!("bare-{i}.sock")).display()))
        .arg("-pidfile")
        .arg(dir.join(format!("bare-{i}.pid")))
        .arg("-daemonize")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("qemu")
}

fn stop_bare(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("dir").filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pid") {
            if let Ok(pid) = std::fs::read_to_string(&path) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
            let _ = std::fs::remove_file(&path);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for entry in std::fs::read_dir(dir).expect("dir").filter_map(Result::ok) {
        let _ = std::fs::remove_file(entry.path());
    }
}

fn pct(samples: &[Duration], percentile: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) * percentile) / 100]
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}
