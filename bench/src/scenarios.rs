//! The scenarios, the seeding they share, and their reports (a Markdown table line
//! per result on stdout, and one JSON object per scenario in `results.jsonl`).

use crate::http::{Connection, Latencies, Transport, basic, connect, connect_with, ms, terminal_address};
use crate::server::{Server, admin, free_port, memory_of, write_config};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub struct Harness {
    pub server: PathBuf,
    pub work_dir: PathBuf,
    /// This program, which serves the hello-world in a process of its own.
    pub hello: PathBuf,
    pub quick: bool,
    /// Run the login storm's server under `/usr/bin/time -v`.
    pub time_v: bool,
}

const ADMIN: (&str, &str) = ("loadadmin", "loadadmin-password");
/// Students of the shared seed: `stu0001`... with password `password-stu0001`.
const CLASS: usize = 2000;
const SEATS_PER_ROOM: usize = 50;
/// Bumped when the seed's shape changes, so an old one is not reused.
const SEED_VERSION: u32 = 1;

fn student(index: usize) -> (String, String) {
    let name = format!("stu{:04}", index + 1);
    let password = format!("password-{name}");
    (name, password)
}

fn mac(index: usize) -> String {
    format!("02:00:00:00:{:02X}:{:02X}", index / 256, index % 256)
}

/// Every student a desktop of the demo image (admin API, one call).
async fn give_every_student_a_desktop(connection: &mut Connection) -> Result<()> {
    let given = connection
        .post_json(
            "/api/v1.0/admin/desktops",
            Some(&admin_auth()),
            &json!({"image": "demo", "flavor": "bench", "all_students": true}),
        )
        .await?;
    anyhow::ensure!(given.status == 200, "giving desktops: {}", String::from_utf8_lossy(&given.body));
    Ok(())
}

fn admin_auth() -> String {
    basic(ADMIN.0, ADMIN.1)
}

fn cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

/// One Argon2id hash with the server's parameters (the crate's defaults), in this
/// process, the median of five.
fn one_hash() -> Duration {
    use argon2::{Algorithm, Argon2, Params, Version};
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT);
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let mut out = [0u8; 32];
            let started = Instant::now();
            let _ = argon2.hash_password_into(b"correct horse battery", b"somesaltsomesalt", &mut out);
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[2]
}

/// Samples a process's resident size until stopped; returns the largest seen.
fn sample_peak(pid: i32) -> (Arc<AtomicBool>, tokio::task::JoinHandle<(f64, u64)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let (mut peak, mut threads) = (0f64, 0u64);
        while !flag.load(Ordering::Relaxed) {
            let memory = memory_of(pid);
            peak = peak.max(memory.rss);
            threads = threads.max(memory.threads);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (peak, threads)
    });
    (stop, task)
}

fn record(work_dir: &Path, result: &Value) {
    use std::io::Write;
    // The machine may be shared: its load when the scenario ended goes with the result.
    let mut result = result.clone();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    result["loadavg_1_5_15"] = json!(load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let result = &result;
    println!("{}", serde_json::to_string_pretty(result).unwrap_or_default());
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(work_dir.join("results.jsonl")) {
        let _ = writeln!(file, "{result}");
    }
}

fn now_utc() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    thindesk_server::service::iso8601(seconds as i64)
}

/// Logs `users` in (their indexes), `parallel` at a time, each from its terminal's
/// address; returns the tokens in the same order.
async fn tokens_for(address: SocketAddr, users: &[usize], parallel: usize) -> Result<Vec<String>> {
    let permits = Arc::new(Semaphore::new(parallel));
    let mut tasks = Vec::new();
    for &index in users {
        let permits = permits.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let (name, password) = student(index);
            for _ in 0..20 {
                let mut connection = connect(address, terminal_address(index)).await?;
                let answer = connection.get("/api/v1.0/token", Some(&basic(&name, &password))).await?;
                if answer.status == 200 {
                    let token = answer.json()["data"]["token"]["id"].as_str().map(str::to_owned);
                    return token.context("no token in the answer");
                }
                if answer.status != 503 {
                    bail!("login of {name}: {} {}", answer.status, String::from_utf8_lossy(&answer.body));
                }
                let wait = answer.retry_after.as_deref().and_then(|s| s.parse().ok()).unwrap_or(1u64);
                tokio::time::sleep(Duration::from_secs(wait.min(10))).await;
            }
            bail!("login of {name}: the server stayed busy")
        }));
    }
    let mut tokens = Vec::with_capacity(tasks.len());
    for task in tasks {
        tokens.push(task.await??);
    }
    Ok(tokens)
}

/// Sends requests back to back on `connections` connections for `warmup + duration`;
/// counts answers (by status) and latencies after the warm-up.
#[allow(clippy::too_many_arguments)]
async fn closed_loop(
    address: SocketAddr,
    transport: &Transport,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    path: Arc<str>,
    authorizations: Arc<Vec<String>>,
) -> Result<(usize, BTreeMap<String, usize>, Latencies)> {
    let mut opened = Vec::with_capacity(connections);
    for index in 0..connections {
        opened.push(connect_with(address, terminal_address(index), transport).await?);
    }
    let start = Instant::now();
    let (counting, end) = (start + warmup, start + warmup + duration);
    let mut tasks = Vec::new();
    for (index, mut connection) in opened.into_iter().enumerate() {
        let path = path.clone();
        let authorizations = authorizations.clone();
        let transport = transport.clone();
        tasks.push(tokio::spawn(async move {
            let authorization = authorizations.get(index % authorizations.len().max(1)).cloned();
            let (mut ok, mut outcomes, mut latencies) = (0usize, BTreeMap::<String, usize>::new(), Vec::new());
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = connection.get(&path, authorization.as_deref()).await;
                let done = Instant::now();
                if sent < counting {
                    continue;
                }
                match outcome {
                    Ok(answer) if answer.status == 200 => {
                        ok += 1;
                        latencies.push(done - sent);
                    }
                    Ok(answer) => *outcomes.entry(answer.status.to_string()).or_default() += 1,
                    Err(_) => {
                        *outcomes.entry("transport".into()).or_default() += 1;
                        match connect_with(address, terminal_address(index), &transport).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                }
            }
            (ok, outcomes, latencies)
        }));
    }
    let (mut ok, mut outcomes, mut latencies) = (0, BTreeMap::new(), Vec::new());
    for task in tasks {
        let (n, o, l) = task.await?;
        ok += n;
        for (k, v) in o {
            *outcomes.entry(k).or_default() += v;
        }
        latencies.extend(l);
    }
    Ok((ok, outcomes, Latencies::of(latencies)))
}

/// `count` requests for the place list, each on a connection of its own (opened,
/// used once, closed), eight at a time from eight terminals' addresses: the errors,
/// each request's time from connecting to the answer, and the time all took.
async fn new_connection_each(
    address: SocketAddr,
    transport: &Transport,
    count: usize,
) -> (usize, Vec<Duration>, Duration) {
    const PARALLEL: usize = 8;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..PARALLEL {
        let transport = transport.clone();
        let share = count / PARALLEL + usize::from(worker < count % PARALLEL);
        tasks.push(tokio::spawn(async move {
            let (mut errors, mut latencies) = (0, Vec::with_capacity(share));
            for _ in 0..share {
                let began = Instant::now();
                let answer = async {
                    let mut connection = connect_with(address, terminal_address(worker), &transport).await?;
                    connection.get("/api/v1.0/places", None).await
                }
                .await;
                match answer {
                    Ok(answer) if answer.status == 200 => latencies.push(began.elapsed()),
                    _ => errors += 1,
                }
            }
            (errors, latencies)
        }));
    }
    let (mut errors, mut latencies) = (0, Vec::new());
    for task in tasks {
        if let Ok((e, l)) = task.await {
            errors += e;
            latencies.extend(l);
        } else {
            errors += 1;
        }
    }
    (errors, latencies, start.elapsed())
}

fn merge(into: &mut BTreeMap<String, usize>, from: BTreeMap<String, usize>) {
    for (kind, count) in from {
        *into.entry(kind).or_default() += count;
    }
}

impl Harness {
    fn log(&self, name: &str) -> PathBuf {
        self.work_dir.join(format!("{name}.log"))
    }

    async fn start(&self, name: &str, data_dir: &Path, extra: &str) -> Result<Server> {
        let port = free_port()?;
        let config = write_config(&self.work_dir, data_dir, port, extra)?;
        Server::start(&self.server, &config, &self.log(name), port, None).await
    }

    /// The shared seed: an administrator, 2,000 students in 40 rooms of 50 seats, a
    /// desktop each (the demo image, a small flavor; defined, not running) and a
    /// registered terminal per seat. Made once; later runs reuse it.
    async fn seed(&self) -> Result<PathBuf> {
        let data_dir = self.work_dir.join(format!("seed-v{SEED_VERSION}"));
        let done = self.work_dir.join(format!("seed-v{SEED_VERSION}.done"));
        if done.is_file() {
            return Ok(data_dir);
        }
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)?;
        }
        let started = Instant::now();
        println!("seeding {CLASS} students, terminals and desktops in {} (once) ...", data_dir.display());
        self.catalogue(&data_dir).await?;
        for room in 0..CLASS.div_ceil(SEATS_PER_ROOM) {
            let name = format!("room-{:02}", room + 1);
            admin(&self.server, &data_dir, &["place", "add", &name, "--address", "load harness"], "").await?;
        }
        admin(&self.server, &data_dir, &["setting", "set", "terminal_registration_mode", "auto"], "").await?;
        let server = self.start("seed", &data_dir, "").await?;
        let result = async {
            let mut connection = connect(server.address, server.address.ip()).await?;
            self.import(&mut connection, CLASS).await?;
            give_every_student_a_desktop(&mut connection).await?;
            for index in 0..CLASS {
                let registration = json!({
                    "place": format!("room-{:02}", index / SEATS_PER_ROOM + 1),
                    "seat_number": format!("{:02}", index % SEATS_PER_ROOM + 1),
                    "mac_address": mac(index),
                });
                let answer = connection.post_json("/api/v1.0/terminals/registration", None, &registration).await?;
                anyhow::ensure!(answer.status == 200, "registering: {}", String::from_utf8_lossy(&answer.body));
            }
            Ok(())
        }
        .await;
        server.stop().await?;
        result?;
        std::fs::write(&done, "")?;
        println!("seeded in {:.0} s", started.elapsed().as_secs_f64());
        Ok(data_dir)
    }

    /// The administrator, the demo image and a small flavor, through the command line.
    async fn catalogue(&self, data_dir: &Path) -> Result<()> {
        admin(&self.server, data_dir, &["user", "add", ADMIN.0, "--admin"], &format!("{}\n", ADMIN.1)).await?;
        let cache = thindesk_server::compute::qemu::demo_image::default_cache_dir();
        let image =
            tokio::task::spawn_blocking(move || thindesk_server::compute::qemu::demo_image::ensure(&cache)).await??;
        let disk = image.to_str().context("image path")?;
        admin(
            &self.server,
            data_dir,
            &["image", "add", "demo", "--disk", disk, "--os-username", "demo"],
            "demo-os-pw\n",
        )
        .await?;
        admin(&self.server, data_dir, &["flavor", "add", "bench", "--vcpus", "1", "--ram", "256", "--disk", "1"], "")
            .await?;
        Ok(())
    }

    /// Students 0..count through the admin API's CSV import.
    async fn import(&self, connection: &mut Connection, count: usize) -> Result<()> {
        let mut csv = String::from("name,password\n");
        for index in 0..count {
            let (name, password) = student(index);
            csv.push_str(&format!("{name},{password}\n"));
        }
        let answer = connection
            .send(
                Method::POST,
                "/api/v1.0/admin/users/import",
                Some(&admin_auth()),
                Some(("text/csv", Bytes::from(csv))),
            )
            .await?;
        anyhow::ensure!(answer.status == 200, "importing users: {}", String::from_utf8_lossy(&answer.body));
        Ok(())
    }

    /// 500 terminals ask for a token at the same instant.
    pub async fn login_storm(&self, terminals: usize, settle_secs: u64) -> Result<()> {
        let data_dir = self.seed().await?;
        let hash = one_hash();
        let port = free_port()?;
        let config = write_config(&self.work_dir, &data_dir, port, "")?;
        let time_report = self.work_dir.join("login-storm.time");
        let _ = std::fs::remove_file(&time_report);
        let timed = self.time_v.then_some(time_report.as_path());
        let server = Server::start(&self.server, &config, &self.log("login-storm"), port, timed).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = server.memory();
        let mut connections = Vec::with_capacity(terminals);
        for index in 0..terminals {
            connections.push(connect(server.address, terminal_address(index)).await?);
        }
        let (stop, sampler) = sample_peak(server.pid());
        let start = Instant::now() + Duration::from_millis(200);
        let mut tasks = Vec::new();
        for (index, mut connection) in connections.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let (name, password) = student(index);
                crate::http::until(start).await;
                let answer = connection.get("/api/v1.0/token", Some(&basic(&name, &password))).await;
                let took = start.elapsed();
                (answer.map(|a| a.status).unwrap_or(0), took)
            }));
        }
        let mut latencies = Vec::new();
        let mut outcomes: BTreeMap<u16, usize> = BTreeMap::new();
        for task in tasks {
            let (status, took) = task.await?;
            *outcomes.entry(status).or_default() += 1;
            latencies.push(took);
        }
        stop.store(true, Ordering::Relaxed);
        let (peak_rss, peak_threads) = sampler.await?;
        let during = server.memory();
        let latencies = Latencies::of(latencies);
        // The machine may be shared: one hash is timed before and after the storm, and
        // the ideal is from their mean.
        let hash_after = one_hash();
        let hash = (hash + hash_after) / 2;
        let ideal = hash.mul_f64(terminals as f64 / cores() as f64);
        println!("login storm done; waiting {settle_secs} s to read the memory again ...");
        tokio::time::sleep(Duration::from_secs(settle_secs)).await;
        let after = server.memory();
        server.stop().await?;
        // `/usr/bin/time -v`'s own reading of the server's peak, in KiB.
        let time_max_rss = std::fs::read_to_string(&time_report).ok().and_then(|report| {
            report
                .lines()
                .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): ")?.parse::<f64>().ok())
        });
        let errors: usize = outcomes.iter().filter(|(s, _)| **s != 200).map(|(_, n)| n).sum();
        let result = json!({
            "scenario": "login-storm", "at": now_utc(), "terminals": terminals, "cores": cores(),
            "one_hash_ms": ms(hash), "one_hash_after_ms": ms(hash_after), "ideal_s": format!("{:.2}", ideal.as_secs_f64()),
            "last_token_s": format!("{:.2}", latencies.max.as_secs_f64()),
            "ratio_to_ideal": format!("{:.2}", latencies.max.as_secs_f64() / ideal.as_secs_f64()),
            "p50_ms": ms(latencies.p50), "p99_ms": ms(latencies.p99),
            "statuses": outcomes.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "errors": errors,
            "rss_before_mib": format!("{:.1}", before.rss), "rss_peak_mib": format!("{:.1}", peak_rss),
            "vm_hwm_mib": format!("{:.1}", during.hwm), "threads_peak": peak_threads,
            "rss_after_mib": format!("{:.1}", after.rss), "settle_s": settle_secs,
            "rss_after_vs_before": format!("{:.2}", after.rss / before.rss.max(0.1)),
            "time_v_max_rss_mib": time_max_rss.map(|kib| format!("{:.1}", kib / 1024.0)),
        });
        record(&self.work_dir, &result);
        Ok(())
    }

    /// 2,000 terminals poll `/terminals/<mac>` and their desktops every `interval`.
    pub async fn poll(&self, terminals: usize, duration: Duration, interval: Duration) -> Result<()> {
        let data_dir = self.seed().await?;
        let server = self.start("poll", &data_dir, "").await?;
        let address = server.address;
        let users: Vec<usize> = (0..terminals).map(|i| i % CLASS).collect();
        let started = Instant::now();
        let tokens = Arc::new(tokens_for(address, &users, 64).await?);
        let logins = started.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = server.memory();
        let (stop, sampler) = sample_peak(server.pid());
        let start = Instant::now() + Duration::from_millis(100);
        let end = start + duration;
        let mut tasks = Vec::new();
        for index in 0..terminals {
            let tokens = tokens.clone();
            tasks.push(tokio::spawn(async move {
                let offset = interval.mul_f64(index as f64 / terminals as f64);
                let mut next = start + offset;
                let token = tokens.get(index).cloned().unwrap_or_default();
                let lookup = format!("/api/v1.0/terminals/{}", mac(index));
                let (mut latencies, mut outcomes) = (Vec::new(), BTreeMap::<String, usize>::new());
                let mut connection = None;
                while next < end {
                    crate::http::until(next).await;
                    next += interval;
                    if connection.is_none() {
                        match connect(address, terminal_address(index)).await {
                            Ok(c) => connection = Some(c),
                            Err(_) => {
                                *outcomes.entry("connect".into()).or_default() += 1;
                                continue;
                            }
                        }
                    }
                    let Some(c) = connection.as_mut() else { continue };
                    for (path, auth) in [(lookup.as_str(), None), ("/api/v1.0/users/me/desktops", Some(token.as_str()))]
                    {
                        let sent = Instant::now();
                        match c.get(path, auth).await {
                            Ok(answer) if answer.status == 200 => latencies.push(sent.elapsed()),
                            Ok(answer) => *outcomes.entry(answer.status.to_string()).or_default() += 1,
                            Err(_) => {
                                *outcomes.entry("transport".into()).or_default() += 1;
                                connection = None;
                                break;
                            }
                        }
                    }
                }
                (latencies, outcomes)
            }));
        }
        let (mut latencies, mut outcomes) = (Vec::new(), BTreeMap::<String, usize>::new());
        for task in tasks {
            let (l, o) = task.await?;
            latencies.extend(l);
            for (k, v) in o {
                *outcomes.entry(k).or_default() += v;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let (peak_rss, peak_threads) = sampler.await?;
        let end_memory = server.memory();
        server.stop().await?;
        let ok = latencies.len();
        let latencies = Latencies::of(latencies);
        let errors: usize = outcomes.values().sum();
        let result = json!({
            "scenario": "poll", "at": now_utc(), "terminals": terminals, "duration_s": duration.as_secs(),
            "interval_s": interval.as_secs(), "logins_s": format!("{:.1}", logins.as_secs_f64()),
            "requests_ok": ok, "requests_per_s": format!("{:.0}", ok as f64 / duration.as_secs_f64()),
            "errors": errors, "error_kinds": outcomes,
            "p50_ms": ms(latencies.p50), "p99_ms": ms(latencies.p99), "max_ms": ms(latencies.max),
            "rss_start_mib": format!("{:.1}", before.rss), "rss_end_mib": format!("{:.1}", end_memory.rss),
            "rss_peak_mib": format!("{:.1}", peak_rss), "threads_peak": peak_threads,
        });
        record(&self.work_dir, &result);
        Ok(())
    }

    /// The token-authenticated desktops list beside a warp hello-world. Both run for
    /// the whole scenario and are loaded in turns (rounds of about 6 s each), so that a
    /// change in the machine's other load touches both alike.
    pub async fn throughput(&self, connections: usize, duration: Duration) -> Result<()> {
        let data_dir = self.seed().await?;
        let warmup = Duration::from_secs(1);
        let rounds = (duration.as_secs() / 6).max(2) as u32;
        let slice = duration / rounds;
        let server = self.start("throughput", &data_dir, "").await?;
        let users: Vec<usize> = (0..connections).map(|i| i % CLASS).collect();
        let tokens: Arc<Vec<String>> = Arc::new(
            tokens_for(server.address, &users, 64).await?.into_iter().map(|t| format!("Bearer {t}")).collect(),
        );
        let port = free_port()?;
        let mut hello = tokio::process::Command::new(&self.hello)
            .args(["hello", "--listen", &format!("127.0.0.1:{port}")])
            .kill_on_drop(true)
            .spawn()?;
        let hello_address: SocketAddr = ([127, 0, 0, 1], port).into();
        let ready = Instant::now() + Duration::from_secs(10);
        while !async {
            Ok::<_, anyhow::Error>(
                connect(hello_address, hello_address.ip()).await?.get("/hello", None).await?.status == 200,
            )
        }
        .await
        .unwrap_or(false)
        {
            anyhow::ensure!(Instant::now() < ready, "the hello-world did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let hello_pid = hello.id().unwrap_or(0) as i32;
        let (stop_server, server_sampler) = sample_peak(server.pid());
        let (stop_hello, hello_sampler) = sample_peak(hello_pid);
        let path: Arc<str> = Arc::from("/api/v1.0/users/me/desktops");
        let (mut desktops, mut desktop_errors, mut desktop_latencies) = (0, BTreeMap::new(), Vec::new());
        let (mut hellos, mut hello_errors, mut hello_latencies) = (0, BTreeMap::new(), Vec::new());
        for _ in 0..rounds {
            let (n, errors, latency) = closed_loop(
                server.address,
                &Transport::Plain,
                connections,
                warmup,
                slice,
                path.clone(),
                tokens.clone(),
            )
            .await?;
            desktops += n;
            merge(&mut desktop_errors, errors);
            desktop_latencies.push(latency);
            let (n, errors, latency) = closed_loop(
                hello_address,
                &Transport::Plain,
                connections,
                warmup,
                slice,
                Arc::from("/hello"),
                Arc::new(Vec::new()),
            )
            .await?;
            hellos += n;
            merge(&mut hello_errors, errors);
            hello_latencies.push(latency);
        }
        stop_server.store(true, Ordering::Relaxed);
        stop_hello.store(true, Ordering::Relaxed);
        let (server_peak, _) = server_sampler.await?;
        let (hello_peak, _) = hello_sampler.await?;
        hello.kill().await?;
        server.stop().await?;
        let worst = |all: &[Latencies]| all.iter().map(|l| l.p99).max().unwrap_or_default();
        let median = |all: &[Latencies]| {
            let mut p50: Vec<Duration> = all.iter().map(|l| l.p50).collect();
            p50.sort_unstable();
            p50.get(p50.len() / 2).copied().unwrap_or_default()
        };
        let seconds = (slice * rounds).as_secs_f64();
        let (desktops_rate, hello_rate) = (desktops as f64 / seconds, hellos as f64 / seconds);
        let result = json!({
            "scenario": "throughput", "at": now_utc(), "connections": connections,
            "duration_s": duration.as_secs(), "rounds": rounds,
            "desktops_per_s": format!("{desktops_rate:.0}"), "desktops_errors": desktop_errors,
            "desktops_p50_ms": ms(median(&desktop_latencies)), "desktops_p99_ms_worst_round": ms(worst(&desktop_latencies)),
            "server_rss_peak_mib": format!("{server_peak:.1}"),
            "hello_per_s": format!("{hello_rate:.0}"), "hello_errors": hello_errors,
            "hello_p50_ms": ms(median(&hello_latencies)), "hello_p99_ms_worst_round": ms(worst(&hello_latencies)),
            "hello_rss_peak_mib": format!("{hello_peak:.1}"),
            "ratio": format!("{:.2}", desktops_rate / hello_rate.max(1.0)),
        });
        record(&self.work_dir, &result);
        Ok(())
    }

    /// HTTPS beside plain HTTP, on one server in one run, rounds taking turns: the
    /// desktops list on kept-alive connections (what a terminal's refresh costs), and
    /// a new connection for each request for the place list (no credentials: what a
    /// TLS handshake costs the server and the caller).
    pub async fn tls(&self, connections: usize, duration: Duration, handshakes: usize) -> Result<()> {
        let data_dir = self.seed().await?;
        let warmup = Duration::from_secs(1);
        let rounds = (duration.as_secs() / 6).max(2) as u32;
        let slice = duration / rounds;
        let server = self.start("tls", &data_dir, "").await?;
        let https = Transport::trusting(&data_dir.join("tls/ca-cert.pem"))?;
        let users: Vec<usize> = (0..connections).map(|i| i % CLASS).collect();
        let tokens: Arc<Vec<String>> = Arc::new(
            tokens_for(server.address, &users, 64).await?.into_iter().map(|t| format!("Bearer {t}")).collect(),
        );
        let path: Arc<str> = Arc::from("/api/v1.0/users/me/desktops");
        let mut kept = [(0usize, BTreeMap::new(), Vec::new()), (0usize, BTreeMap::new(), Vec::new())];
        let mut fresh = [(0usize, Vec::new(), Duration::ZERO), (0usize, Vec::new(), Duration::ZERO)];
        for _ in 0..rounds {
            for (i, transport) in [Transport::Plain, https.clone()].iter().enumerate() {
                let (n, errors, latency) =
                    closed_loop(server.address, transport, connections, warmup, slice, path.clone(), tokens.clone())
                        .await?;
                kept[i].0 += n;
                merge(&mut kept[i].1, errors);
                kept[i].2.push(latency);
            }
            for (i, transport) in [Transport::Plain, https.clone()].iter().enumerate() {
                let (errors, latencies, took) =
                    new_connection_each(server.address, transport, handshakes / rounds as usize).await;
                fresh[i].0 += errors;
                fresh[i].1.extend(latencies);
                fresh[i].2 += took;
            }
        }
        server.stop().await?;
        let seconds = (slice * rounds).as_secs_f64();
        let median = |all: &[Latencies]| {
            let mut p50: Vec<Duration> = all.iter().map(|l| l.p50).collect();
            p50.sort_unstable();
            p50.get(p50.len() / 2).copied().unwrap_or_default()
        };
        let (plain_rate, tls_rate) = (kept[0].0 as f64 / seconds, kept[1].0 as f64 / seconds);
        let [plain_fresh, tls_fresh] = fresh.map(|(errors, latencies, took)| {
            let count = latencies.len();
            (errors, Latencies::of(latencies), count as f64 / took.as_secs_f64().max(1e-9))
        });
        let result = json!({
            "scenario": "tls", "at": now_utc(), "connections": connections, "rounds": rounds,
            "kept_alive_plain_per_s": format!("{plain_rate:.0}"), "kept_alive_plain_errors": kept[0].1,
            "kept_alive_plain_p50_ms": ms(median(&kept[0].2)),
            "kept_alive_tls_per_s": format!("{tls_rate:.0}"), "kept_alive_tls_errors": kept[1].1,
            "kept_alive_tls_p50_ms": ms(median(&kept[1].2)),
            "kept_alive_ratio_tls_to_plain": format!("{:.2}", tls_rate / plain_rate.max(1.0)),
            "new_connection_plain_p50_ms": ms(plain_fresh.1.p50), "new_connection_plain_p99_ms": ms(plain_fresh.1.p99),
            "new_connection_plain_per_s": format!("{:.0}", plain_fresh.2), "new_connection_plain_errors": plain_fresh.0,
            "new_connection_tls_p50_ms": ms(tls_fresh.1.p50), "new_connection_tls_p99_ms": ms(tls_fresh.1.p99),
            "new_connection_tls_per_s": format!("{:.0}", tls_fresh.2), "new_connection_tls_errors": tls_fresh.0,
            "new_connection_ratio_tls_to_plain_p50": format!(
                "{:.2}",
                tls_fresh.1.p50.as_secs_f64() / plain_fresh.1.p50.as_secs_f64().max(1e-9)
            ),
        });
        record(&self.work_dir, &result);
        Ok(())
    }

    /// 40 students press Connect at once on real VMs (the demo image, TCG where KVM
    /// cannot run): time until each one's SPICE port accepts a connection. Then the
    /// desktops list with the machines running, with the status cache and without.
    pub async fn connect(&self, students: usize) -> Result<()> {
        let data_dir = self.work_dir.join("connect-data");
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)?;
        }
        self.catalogue(&data_dir).await?;
        let memory_budget = format!("vm_memory_mib = {}\n", 256 * students + 1024);
        let server = self.start("connect", &data_dir, &memory_budget).await?;
        let mut admin_connection = connect(server.address, server.address.ip()).await?;
        // One more student, whose desktop starts first: with `accel = auto` the first
        // guest a fresh installation starts under KVM is watched for up to 30 s
        // (`compute/qemu/accel.rs`), once per host. A school's server has long done
        // that; the 40 are measured after it.
        self.import(&mut admin_connection, students + 1).await?;
        give_every_student_a_desktop(&mut admin_connection).await?;
        let users: Vec<usize> = (0..=students).collect();
        let mut tokens: Vec<String> =
            tokens_for(server.address, &users, 64).await?.into_iter().map(|t| format!("Bearer {t}")).collect();
        let first = tokens.split_off(students);
        let warm_up = async {
            let warmed = self.press_connect(&server, &first).await?;
            anyhow::ensure!(warmed["ready"] == 1, "the first machine did not start: {warmed}");
            let mut connection = connect(server.address, server.address.ip()).await?;
            let listed = connection.get("/api/v1.0/users/me/desktops", Some(&first[0])).await?.json();
            let id = listed["data"]["desktop_list"][0]["id"].as_str().context("no desktop")?.to_owned();
            let path = format!("/api/v1.0/desktops/{id}/action");
            connection.post_json(&path, Some(&first[0]), &json!({"shutdown": null})).await?;
            Ok(warmed["accel_finding"].clone())
        };
        let outcome = match warm_up.await {
            Ok(finding) => self.press_connect(&server, &tokens).await.map(|mut result| {
                result["accel_finding"] = finding;
                result
            }),
            Err(error) => Err(error),
        };
        let listing = match &outcome {
            Ok(_) => self.list_with_and_without_cache(server, &data_dir, &memory_budget, &tokens).await,
            Err(_) => Ok((server, Value::Null)),
        };
        // Whatever happened, no machine outlives the run.
        let server = match listing {
            Ok((server, listing)) => {
                if let Ok(mut result) = outcome {
                    result["listing_with_running_vms"] = listing;
                    record(&self.work_dir, &result);
                }
                server
            }
            Err(error) => {
                eprintln!("listing with running machines failed: {error:#}");
                self.start("connect-cleanup", &data_dir, &memory_budget).await?
            }
        };
        let mut connection = connect(server.address, server.address.ip()).await?;
        let list = connection.get("/api/v1.0/admin/desktops", Some(&admin_auth())).await?.json();
        for desktop in list["data"]["desktop_list"].as_array().cloned().unwrap_or_default() {
            if let Some(id) = desktop["id"].as_str() {
                let path = format!("/api/v1.0/admin/desktops/{id}");
                let _ = connection.send(Method::DELETE, &path, Some(&admin_auth()), None).await;
            }
        }
        server.stop().await
    }

    async fn press_connect(&self, server: &Server, tokens: &[String]) -> Result<Value> {
        let address = server.address;
        let (stop, sampler) = sample_peak(server.pid());
        let before = server.memory();
        let start = Instant::now() + Duration::from_millis(200);
        let mut tasks = Vec::new();
        for (index, token) in tokens.iter().cloned().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut connection = connect(address, crate::http::terminal_address(index)).await?;
                let listed = connection.get("/api/v1.0/users/me/desktops", Some(&token)).await?.json();
                let id = listed["data"]["desktop_list"][0]["id"].as_str().context("no desktop")?.to_owned();
                crate::http::until(start).await;
                let action = connection
                    .post_json(&format!("/api/v1.0/desktops/{id}/action"), Some(&token), &json!({"resume": null}))
                    .await?;
                let acted = start.elapsed();
                anyhow::ensure!(
                    action.status == 200,
                    "resume: {} {}",
                    action.status,
                    String::from_utf8_lossy(&action.body)
                );
                let deadline = start + Duration::from_secs(600);
                loop {
                    let desktop = connection.get("/api/v1.0/users/me/desktops", Some(&token)).await?.json();
                    let desktop = &desktop["data"]["desktop_list"][0];
                    let port = desktop["connection_info"]
                        .as_array()
                        .and_then(|c| c.iter().find(|i| i["type"] == "spice"))
                        .and_then(|i| i["port"].as_str())
                        .and_then(|p| p.parse::<u16>().ok());
                    if let (Some(port), "ACTIVE") = (port, desktop["status"].as_str().unwrap_or_default()) {
                        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                            return Ok::<_, anyhow::Error>((acted, start.elapsed()));
                        }
                    }
                    anyhow::ensure!(Instant::now() < deadline, "not connectable within 600 s");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }));
        }
        let (mut actions, mut ready, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for task in tasks {
            match task.await? {
                Ok((acted, connectable)) => {
                    actions.push(acted);
                    ready.push(connectable);
                }
                Err(error) => errors.push(format!("{error:#}")),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let (peak, _) = sampler.await?;
        let (actions, ready) = (Latencies::of(actions), Latencies::of(ready));
        let accel = std::fs::read_to_string(self.work_dir.join("connect-data/vms/accel.json")).unwrap_or_default();
        Ok(json!({
            "scenario": "connect", "at": now_utc(), "students": tokens.len(),
            "ready": ready.count, "errors": errors.len(), "first_errors": errors.iter().take(3).collect::<Vec<_>>(),
            "last_connectable_s": format!("{:.1}", ready.max.as_secs_f64()),
            "connectable_p50_s": format!("{:.1}", ready.p50.as_secs_f64()),
            "connectable_p99_s": format!("{:.1}", ready.p99.as_secs_f64()),
            "action_p50_ms": ms(actions.p50), "action_p99_ms": ms(actions.p99), "action_max_ms": ms(actions.max),
            "server_rss_before_mib": format!("{:.1}", before.rss), "server_rss_peak_mib": format!("{peak:.1}"),
            "accel_finding": accel.trim(),
        }))
    }

    /// The 40 students' desktops list, back to back for 10 s, with the machines
    /// running: with the status cache (default TTL), then with a server restarted with
    /// the cache off (a QMP conversation per machine per listing).
    async fn list_with_and_without_cache(
        &self,
        server: Server,
        data_dir: &Path,
        memory_budget: &str,
        tokens: &[String],
    ) -> Result<(Server, Value)> {
        let tokens = Arc::new(tokens.to_vec());
        let path: Arc<str> = Arc::from("/api/v1.0/users/me/desktops");
        let (warmup, duration) = (Duration::from_secs(1), Duration::from_secs(10));
        let (cached, cached_errors, cached_latency) = closed_loop(
            server.address,
            &Transport::Plain,
            tokens.len(),
            warmup,
            duration,
            path.clone(),
            tokens.clone(),
        )
        .await?;
        server.stop().await?;
        let uncached_config = format!("{memory_budget}desktop_status_ttl_ms = 0\n");
        let server = self.start("connect-uncached", data_dir, &uncached_config).await?;
        let (uncached, uncached_errors, uncached_latency) =
            closed_loop(server.address, &Transport::Plain, tokens.len(), warmup, duration, path, tokens.clone())
                .await?;
        let seconds = duration.as_secs_f64();
        let value = json!({
            "connections": tokens.len(),
            "cached_per_s": format!("{:.0}", cached as f64 / seconds), "cached_errors": cached_errors,
            "cached_p99_ms": ms(cached_latency.p99),
            "uncached_per_s": format!("{:.0}", uncached as f64 / seconds), "uncached_errors": uncached_errors,
            "uncached_p99_ms": ms(uncached_latency.p99),
            "ratio": format!("{:.1}", cached as f64 / (uncached as f64).max(1.0)),
        });
        Ok((server, value))
    }
}
