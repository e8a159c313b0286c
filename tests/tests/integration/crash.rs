//! The real `thindesk-server` binary killed (`kill -9`) at random points of
//! `launch_instance` and `destroy_instance`, and of an administrator's creating and
//! deleting a desktop (admin API), then started again on the same data directory.
//! Whatever the kill interrupted, the next server runs no QEMU and keeps no machine
//! it does not list, lists nothing without its machine, and knows exactly the ids its
//! clients were answered with: an id never answered is neither listed nor accepted by
//! `query_instance`, `destroy_instance` or a delete; an answered one keeps working
//! until it is destroyed; a destroy or delete that was answered is final.
//!
//! Each run draws its kill points from a seed it prints; `THINDESK_CRASH_SEED=N`
//! draws the same ones again.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use thindesk_server::store::Store;
use thindesk_tests::binary::{Served, ServerBinary};
use thindesk_tests::{launch_form, vm};

const IMAGE: &str = "demo";
const FLAVOR: &str = "m1.test";
const ADMIN: (&str, &str) = ("admin", "admins-password");
const STUDENT: &str = "kim";

/// Where the server is killed.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// This long after the request is sent.
    After(Duration),
    /// As soon as its log shows this message (polled every 2 ms).
    AtLog(&'static str),
}

#[derive(Debug, Clone, Copy)]
enum Round {
    /// A launch, killed at the point.
    Launch(Point),
    /// A launch answered, then its destroy killed at the point.
    Destroy(Point),
    /// An administrator's desktop from the catalogue, its creation killed at the point.
    CreateDesktop(Point),
    /// A desktop created, then its deletion killed at the point.
    DeleteDesktop(Point),
}

/// xorshift64*: kill points that differ from run to run, and can be drawn again.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::env::var("THINDESK_CRASH_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |t| t.as_nanos() as u64)
        });
        eprintln!("crash test: THINDESK_CRASH_SEED={seed}");
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A duration in `0..max`.
    fn below(&mut self, max: Duration) -> Duration {
        let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(self.next() % millis)
    }
}

fn cloud_request(url: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(format!("{url}/cloud_api")).form(form)
}

/// A request to the admin API (`/api/v1.0/admin{path}`) as the administrator.
fn admin_request(url: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new()
        .request(method, format!("{url}/api/v1.0/admin{path}"))
        .basic_auth(ADMIN.0, Some(ADMIN.1));
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<Value, reqwest::Error> {
    request.send().await?.json().await
}

fn create_desktop(url: &str) -> reqwest::RequestBuilder {
    let body = json!({"image": IMAGE, "flavor": FLAVOR, "user": STUDENT, "name": "lab"});
    admin_request(url, reqwest::Method::POST, "/desktops", Some(body))
}

/// The ids after `vm_id=`, `machine=` and `desktop=` in a server's log.
fn ids_in_log(log: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for key in ["vm_id=", "machine=", "desktop="] {
        for (at, _) in log.match_indices(key) {
            let id: String = log[at + key.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !id.is_empty() {
                ids.insert(id);
            }
        }
    }
    ids
}

/// The server binary through its crashes, and what its client knows.
struct Crash {
    binary: ServerBinary,
    server: Served,
    /// The instance ids the client was answered with and has not seen destroyed.
    answered: BTreeSet<String>,
    /// The same for the administrator's desktops.
    desktops: BTreeSet<String>,
    /// Every id any server of this test mentioned or left a trace of.
    seen: BTreeSet<String>,
}

impl Drop for Crash {
    /// A failing test leaves neither the server nor a machine running.
    fn drop(&mut self) {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        for (pid, _) in self.binary.machine_processes() {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

impl Crash {
    async fn call(&self, form: &[(&str, &str)]) -> Value {
        send(cloud_request(&self.binary.url, form)).await.expect("an answer")
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> Value {
        send(admin_request(&self.binary.url, method, path, None)).await.expect("an answer")
    }

    /// A desktop created without a kill: its id.
    async fn create_desktop(&mut self) -> String {
        let answer = send(create_desktop(&self.binary.url)).await.expect("an answer");
        assert_eq!(answer["status"], "success", "{answer}");
        let id = answer["data"]["id"].as_str().expect("id").to_owned();
        self.desktops.insert(id.clone());
        self.seen.insert(id.clone());
        id
    }

    /// A desktop deleted without a kill.
    async fn delete_desktop(&mut self, id: &str) {
        let answer = self.admin(reqwest::Method::DELETE, &format!("/desktops/{id}")).await;
        assert_eq!(answer["status"], "success", "deleting {id}: {answer}");
        self.desktops.remove(id);
    }

    async fn listed_desktops(&self) -> BTreeSet<String> {
        let listed = self.admin(reqwest::Method::GET, "/desktops").await;
        listed["data"]["desktop_list"]
            .as_array()
            .unwrap_or_else(|| panic!("desktops: {listed}"))
            .iter()
            .map(|desktop| desktop["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// A launch the server is not killed in: its id.
    async fn launch(&mut self, name: &str) -> String {
        let answer = self.call(&launch_form(IMAGE, FLAVOR, "false", name)).await;
        assert_eq!(answer["ret_code"], 0, "{answer}");
        let id = answer["vm_id"].as_str().expect("vm_id").to_owned();
        self.answered.insert(id.clone());
        self.seen.insert(id.clone());
        id
    }

    /// A destroy the server is not killed in.
    async fn destroy(&mut self, id: &str) {
        let answer = self.call(&[("command", "destroy_instance"), ("vm_id", id)]).await;
        assert_eq!(answer["ret_code"], 0, "destroying {id}: {answer}");
        self.answered.remove(id);
    }

    /// Sends `request`, kills the server at `point` and starts it again. The answer,
    /// if one arrived, and the killed server's log.
    async fn interrupt(&mut self, request: reqwest::RequestBuilder, point: Point) -> (Option<Value>, String) {
        let log_start = self.server.log_text().len();
        let request = tokio::spawn(send(request));
        match point {
            Point::After(delay) => tokio::time::sleep(delay).await,
            Point::AtLog(message) => {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !request.is_finished() && !self.server.log_text()[log_start..].contains(message) {
                    assert!(Instant::now() < deadline, "the server never logged {message:?}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        self.server.kill("-KILL");
        let answer = request.await.expect("joined").ok();
        let log = self.server.log_text();
        // What the killed server left: machine directories, records in any phase,
        // and the ids in its log.
        self.seen.extend(self.binary.machine_dirs());
        let store = Store::open(&self.binary.data_dir()).expect("the store opens");
        self.seen.extend(store.instance_phases().expect("records").into_iter().map(|(id, _)| id));
        self.seen.extend(store.desktop_phases().expect("records").into_iter().map(|(id, _)| id));
        drop(store);
        self.seen.extend(ids_in_log(&log));
        self.server = self.binary.serve().await;
        (answer, log)
    }

    /// What must hold after every restart.
    async fn check(&mut self, killed_log: &str) {
        let listed = self.call(&[("command", "list_instances")]).await;
        let listed: BTreeSet<String> = listed["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .map(|instance| instance["vm_id"].as_str().expect("vm_id").to_owned())
            .collect();
        // The one window no server can close: the record was made ready and the answer
        // was on its way when the kill came. The instance is then listed (an exam
        // system finds it by its name) though its answer never arrived; it is allowed
        // only where the killed server had logged the launch as done, its last step.
        for id in listed.difference(&self.answered.clone()) {
            let launched = killed_log.lines().any(|line| line.contains("instance launched") && line.contains(id));
            assert!(launched, "{id} is listed, yet its launch was never answered nor finished:\n{killed_log}");
            eprintln!("crash test: {id} was launched and its answer lost with the server; it is listed");
            self.answered.insert(id.clone());
        }
        assert_eq!(listed, self.answered, "the server lists exactly the instances its client was answered with");

        for id in &listed {
            let machine = self.binary.state_dir().join(id).join("machine.json");
            assert!(machine.is_file(), "listed instance {id} has no machine");
            let query = self.call(&[("command", "query_instance"), ("vm_id", id)]).await;
            assert_eq!((query["ret_code"].as_u64(), query["status"].as_str()), (Some(0), Some("ACTIVE")), "{query}");
        }

        let desktops = self.listed_desktops().await;
        for id in desktops.difference(&self.desktops.clone()) {
            let created = killed_log.lines().any(|line| line.contains("desktop created") && line.contains(id));
            assert!(created, "desktop {id} is listed, yet its creation was never answered nor finished:\n{killed_log}");
            eprintln!("crash test: desktop {id} was created and its answer lost with the server; it is listed");
            self.desktops.insert(id.clone());
        }
        assert_eq!(desktops, self.desktops, "the server lists exactly the desktops it answered it had made");
        for id in &desktops {
            let machine = self.binary.state_dir().join(id).join("machine.json");
            assert!(machine.is_file(), "listed desktop {id} has no machine");
        }

        let known: BTreeSet<&String> = listed.iter().chain(&desktops).collect();
        for (pid, id) in self.binary.machine_processes() {
            assert!(known.contains(&id), "QEMU process {pid} of machine {id} runs, and nothing listed is its");
        }
        for id in self.binary.machine_dirs() {
            assert!(known.contains(&id), "machine directory {id} is left, and nothing listed is its");
        }
        for id in self.seen.iter().filter(|id| !known.contains(id)) {
            let query = self.call(&[("command", "query_instance"), ("vm_id", id)]).await;
            assert_eq!(query["ret_code"], 6, "{id}, never answered or destroyed, is unknown: {query}");
            let destroy = self.call(&[("command", "destroy_instance"), ("vm_id", id)]).await;
            assert_eq!(destroy["ret_code"], 6, "{id}, never answered or destroyed, cannot be destroyed: {destroy}");
            let delete = self.admin(reqwest::Method::DELETE, &format!("/desktops/{id}")).await;
            assert_eq!(delete["status"], "fail", "{id}, never answered or deleted, cannot be deleted: {delete}");
        }
    }

    /// What the server just started found and did, from its log.
    fn recovered(&self) -> String {
        let log = self.server.log_text();
        log.lines().find(|line| line.contains("recovered=")).map(str::to_owned).unwrap_or_default()
    }

    async fn round(&mut self, number: usize, round: Round) {
        match round {
            Round::Launch(point) => {
                let name = format!("crash-{number}");
                let request = cloud_request(&self.binary.url, &launch_form(IMAGE, FLAVOR, "false", &name));
                let (answer, log) = self.interrupt(request, point).await;
                match answer.as_ref().filter(|answer| answer["ret_code"] == 0) {
                    Some(answer) => {
                        let id = answer["vm_id"].as_str().expect("vm_id").to_owned();
                        eprintln!("crash test: round {number}: launch answered before the kill: {id}");
                        self.answered.insert(id);
                    }
                    None => eprintln!("crash test: round {number}: no launch answered ({answer:?})"),
                }
                self.check(&log).await;
            }
            Round::Destroy(point) => {
                let id = self.launch(&format!("crash-{number}")).await;
                let form = [("command", "destroy_instance"), ("vm_id", id.as_str())];
                let (answer, log) = self.interrupt(cloud_request(&self.binary.url, &form), point).await;
                let answered = answer.as_ref().is_some_and(|answer| answer["ret_code"] == 0);
                let listed = self.call(&[("command", "query_instance"), ("vm_id", &id)]).await["ret_code"] == 0;
                assert!(!(answered && listed), "a destroy was answered and {id} is still there");
                if !listed {
                    self.answered.remove(&id);
                }
                eprintln!("crash test: round {number}: destroy answered {answered}, instance left {listed}");
                self.check(&log).await;
            }
            Round::CreateDesktop(point) => {
                let (answer, log) = self.interrupt(create_desktop(&self.binary.url), point).await;
                match answer.as_ref().filter(|answer| answer["status"] == "success") {
                    Some(answer) => {
                        let id = answer["data"]["id"].as_str().expect("id").to_owned();
                        eprintln!("crash test: round {number}: desktop created before the kill: {id}");
                        self.desktops.insert(id);
                    }
                    None => eprintln!("crash test: round {number}: no desktop answered ({answer:?})"),
                }
                self.check(&log).await;
            }
            Round::DeleteDesktop(point) => {
                let id = self.create_desktop().await;
                let request =
                    admin_request(&self.binary.url, reqwest::Method::DELETE, &format!("/desktops/{id}"), None);
                let (answer, log) = self.interrupt(request, point).await;
                let answered = answer.as_ref().is_some_and(|answer| answer["status"] == "success");
                let listed = self.listed_desktops().await.contains(&id);
                assert!(!(answered && listed), "a delete was answered and desktop {id} is still there");
                if !listed {
                    self.desktops.remove(&id);
                }
                eprintln!("crash test: round {number}: delete answered {answered}, desktop left {listed}");
                self.check(&log).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_killed_anywhere_in_a_launch_destroy_create_or_delete_leaves_nothing_it_does_not_list() {
    if !vm::tools_present("the crash test", vm::TOOLS) {
        return;
    }
    let image = tokio::task::spawn_blocking(vm::demo_image).await.expect("image");
    let mut binary = ServerBinary::new();
    binary.admin(&["image", "add", IMAGE, "--disk", &image.to_string_lossy(), "--os-username", "student"], "pw\n");
    binary.admin(&["flavor", "add", FLAVOR, "--vcpus", "1", "--ram", "256", "--disk", "1"], "");
    binary.admin(&["user", "add", ADMIN.0, "--admin"], &format!("{}\n", ADMIN.1));
    binary.admin(&["user", "add", STUDENT], "kims-password\n");
    let server = binary.serve().await;
    let mut crash =
        Crash { binary, server, answered: BTreeSet::new(), desktops: BTreeSet::new(), seen: BTreeSet::new() };

    // One instance lives through every crash and must keep working. (The first
    // launch also finds out whether KVM works here.)
    let survivor = crash.launch("survivor").await;
    // How long a launch and a destroy take here, to draw kill points within them.
    let started = Instant::now();
    let measured = crash.launch("measure").await;
    let launch_time = started.elapsed();
    let started = Instant::now();
    crash.destroy(&measured).await;
    let destroy_time = started.elapsed();
    let started = Instant::now();
    let measured = crash.create_desktop().await;
    let create_time = started.elapsed();
    let started = Instant::now();
    crash.delete_desktop(&measured).await;
    let delete_time = started.elapsed();
    eprintln!(
        "crash test: a launch takes {launch_time:?}, a destroy {destroy_time:?}; \
         creating a desktop {create_time:?}, deleting it {delete_time:?}"
    );

    let mut random = Random::new();
    // Launches killed early (defining the disk), anywhere, or a little after the
    // usual answer; at the moment QEMU is known to run; destroys the same way.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        rounds.push(Round::Launch(Point::After(random.below(launch_time / 4))));
    }
    for _ in 0..5 {
        rounds.push(Round::Launch(Point::After(random.below(launch_time * 5 / 4))));
    }
    rounds.push(Round::Launch(Point::AtLog("machine started")));
    rounds.push(Round::Launch(Point::AtLog("machine started")));
    for _ in 0..4 {
        rounds.push(Round::Destroy(Point::After(random.below(destroy_time * 5 / 4))));
    }
    rounds.push(Round::Destroy(Point::AtLog("machine destroyed")));
    for _ in 0..3 {
        rounds.push(Round::CreateDesktop(Point::After(random.below(create_time * 5 / 4))));
    }
    for _ in 0..2 {
        rounds.push(Round::DeleteDesktop(Point::After(random.below(delete_time * 5 / 4))));
    }
    for (number, round) in rounds.into_iter().enumerate() {
        eprintln!("crash test: round {number}: {round:?}");
        crash.round(number, round).await;
        eprintln!("crash test: round {number}: {}", crash.recovered());
        // Keep the host's memory for the next round: only the survivor stays.
        for id in crash.answered.clone().into_iter().filter(|id| *id != survivor) {
            crash.destroy(&id).await;
        }
        for id in crash.desktops.clone() {
            crash.delete_desktop(&id).await;
        }
    }

    assert!(crash.answered.contains(&survivor), "the survivor lived through every crash");
    let pid = crash.binary.machine_pid(&survivor);
    crash.destroy(&survivor).await;
    assert!(!vm::process_alive(pid), "and is destroyed like any other");
    crash.server.kill("-TERM");
    assert_eq!(crash.binary.machine_processes(), [], "no machine is left running");
    assert_eq!(crash.binary.machine_dirs(), Vec::<String>::new(), "nor any machine's files");
}
