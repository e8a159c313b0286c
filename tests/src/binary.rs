//! The real `thindesk-server` binary over a data directory of its own, on the QEMU
//! driver: its configuration, its administration commands, starting it with its log
//! kept in a file, killing it, and the QEMU processes it left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `cargo test --workspace` builds the server's binary beside the test executables
/// (with `-p thindesk-tests` alone, `cargo build -p thindesk-server` first).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let binary = exe.parent().and_then(Path::parent).map(|dir| dir.join("thindesk-server")).expect("target dir");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p thindesk-server`), which builds it",
        binary.display()
    );
    binary
}

/// A configuration file and a data directory for the server binary, with a port and
/// display ports of its own (see [`crate::ports`]).
pub struct ServerBinary {
    config: PathBuf,
    root: tempfile::TempDir,
    pub url: String,
    starts: usize,
}

impl Default for ServerBinary {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBinary {
    pub fn new() -> Self {
        Self::with_config("")
    }

    /// With `extra` at the end of the configuration file (`hypervisor = ...` and a
    /// table, say).
    pub fn with_config(extra: &str) -> Self {
        let root = tempfile::tempdir().expect("dir");
        // The server binary is told its port: one no other test of this process is
        // given, nor the kernel for a `127.0.0.1:0` listener meanwhile.
        let port = crate::ports::one();
        let (spice, rdp) = (crate::ports::block(8), crate::ports::block(8));
        let config = root.path().join("server.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\ndisplay_address = \"127.0.0.1\"\n\
                 public_address = \"127.0.0.1\"\nspice_ports = \"{}-{}\"\nrdp_ports = \"{}-{}\"\n\
                 shutdown_timeout = 20\n{extra}",
                root.path().join("data").display(),
                spice.start(),
                spice.end(),
                rdp.start(),
                rdp.end()
            ),
        )
        .expect("config");
        Self { config, root, url: format!("http://127.0.0.1:{port}"), starts: 0 }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The QEMU driver's machine directories are below this.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir().join("vms")
    }

    /// An administration command, with `stdin` as its standard input: what it printed.
    pub fn admin(&self, arguments: &[&str], stdin: &str) -> String {
        let mut command = Command::new(server_binary());
        command.arg("--config").arg(&self.config).args(arguments);
        String::from_utf8_lossy(&crate::run_with_stdin(command, stdin).stdout).into_owned()
    }

    /// An administration command that must fail: what it said on standard error.
    pub fn admin_refused(&self, arguments: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(server_binary())
            .arg("--config")
            .arg(&self.config)
            .args(arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin");
        let output = child.wait_with_output().expect("the command ran");
        assert!(!output.status.success(), "{arguments:?} was not refused: {}", String::from_utf8_lossy(&output.stdout));
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Starts `serve` and waits until it answers. Its log (stderr) goes to a file of
    /// this start's own.
    pub async fn serve(&mut self) -> Served {
        self.starts += 1;
        let log = self.root.path().join(format!("server-{}.log", self.starts));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(server_binary())
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("serve");
        for _ in 0..600 {
            if reqwest::get(format!("{}/api/v1.0/places", self.url)).await.is_ok() {
                return Served { child, log };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the server exited ({status}): {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not come up: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// The pid in a machine's pid file.
    pub fn machine_pid(&self, id: &str) -> u32 {
        let pid_file = self.state_dir().join(id).join("qemu.pid");
        std::fs::read_to_string(pid_file).expect("pid file").trim().parse().expect("pid")
    }

    /// The machine directories under the state directory.
    pub fn machine_dirs(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.state_dir()) else { return Vec::new() };
        let mut dirs: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        dirs.sort();
        dirs
    }

    /// Every live process (QEMU, `qemu-img`, anything) with a machine directory of
    /// this server in its arguments: its pid and the machine's id.
    pub fn machine_processes(&self) -> Vec<(u32, String)> {
        let prefix = format!("{}/", self.state_dir().display());
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else { return found };
        for entry in entries.filter_map(Result::ok) {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let id = cmdline.split(|byte| *byte == 0).find_map(|argument| {
                let argument = String::from_utf8_lossy(argument);
                let (_, rest) = argument.split_once(&prefix)?;
                let id = rest.split(['/', ',']).next()?;
                Some(id.to_owned())
            });
            if let Some(id) = id.filter(|_| crate::vm::process_alive(pid)) {
                found.push((pid, id));
            }
        }
        found.sort();
        found
    }
}

/// A v1.0 API call as user `kim` (password `kims-pw-1`, as the binary tests add
/// him): the whole JSend body.
pub async fn as_kim(
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut request =
        reqwest::Client::new().request(method, format!("{url}/api/v1.0{path}")).basic_auth("kim", Some("kims-pw-1"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("sent").json().await.expect("json")
}

/// A running `thindesk-server serve`.
pub struct Served {
    pub child: Child,
    /// Its standard error: the log.
    pub log: PathBuf,
}

impl Served {
    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`-KILL`, `-TERM`) and waits for the server to exit.
    pub fn kill(&mut self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let _ = self.child.wait();
    }
}
