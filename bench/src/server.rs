//! The real `thindesk-server` binary as a child process: its configuration file, its
//! start and stop, and its memory from `/proc/<pid>/status`.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    pid: i32,
    pub address: SocketAddr,
}

/// Memory and threads of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident now, MiB.
    pub rss: f64,
    /// The peak resident size since the process started (`VmHWM`), MiB.
    pub hwm: f64,
    pub threads: u64,
}

pub fn memory_of(pid: i32) -> Memory {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return Memory::default() };
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Memory { rss: field("VmRSS:") as f64 / 1024.0, hwm: field("VmHWM:") as f64 / 1024.0, threads: field("Threads:") }
}

/// A free port from the kernel (the harness runs alone; the window is short).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Writes `config.toml` in `work_dir` for a server on `data_dir` and `port`, with
/// `extra` TOML lines after the harness's own.
pub fn write_config(work_dir: &Path, data_dir: &Path, port: u16, extra: &str) -> Result<PathBuf> {
    let path = work_dir.join(format!("server-{port}.toml"));
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\npublic_address = \"127.0.0.1\"\n\
         hypervisor = \"qemu\"\ndisplay_address = \"127.0.0.1\"\nspice_ports = \"47100-47199\"\n\
         rdp_ports = \"47200-47299\"\nshutdown_timeout = 5\nmax_connections = 8192\n{extra}",
        data_dir.display()
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

impl Server {
    /// Starts `binary serve` with `config`, its log in `log`, and waits until it answers.
    /// With `time_report`, under `/usr/bin/time -v -o time_report`, whose maximum
    /// resident size checks this harness's reading of `VmHWM`.
    pub async fn start(
        binary: &Path,
        config: &Path,
        log: &Path,
        port: u16,
        time_report: Option<&Path>,
    ) -> Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let mut command = match time_report {
            Some(report) => {
                let mut command = Command::new("/usr/bin/time");
                command.arg("-v").arg("-o").arg(report).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let child = command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("THINDESK_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut pid = child.id().context("the server has no pid")? as i32;
        if time_report.is_some() {
            // The server is `time`'s only child.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
                if let Some(child) = children.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    pid = child;
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "/usr/bin/time started no server");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = Self { child, pid, address };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(mut connection) = crate::http::connect(address, address.ip()).await {
                if connection.get("/api/v1.0/places", None).await.is_ok_and(|a| a.status == 200) {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                bail!("the server did not answer within 120 s; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn memory(&self) -> Memory {
        memory_of(self.pid)
    }

    /// SIGTERM, then SIGKILL if it has not ended within 30 s (under `time`, `time`
    /// ends when the server has, after writing its report).
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// Runs the binary's administration command `args` on `data_dir` with `stdin`.
pub async fn admin(binary: &Path, data_dir: &Path, args: &[&str], stdin: &str) -> Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("THINDESK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Raises this process's open-file limit to its hard limit (children inherit it).
/// Returns (before, after).
pub fn raise_fd_limit() -> (Option<u64>, Option<u64>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit { current: before.maximum, maximum: before.maximum };
    let _ = setrlimit(Resource::Nofile, raised);
    (before.current, getrlimit(Resource::Nofile).current)
}
