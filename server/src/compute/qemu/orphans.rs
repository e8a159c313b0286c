//! Strays: what a server killed at the wrong moment leaves of a machine that the
//! driver can no longer find through the machine's files.
//!
//! - A QEMU process nobody wrote down: the server died after QEMU was spawned and
//!   before `run.json` was written (the next driver then clears the half-written
//!   run state, and the process is invisible to the memory limit), or after its
//!   machine's directory went. It is found by its command line: the QMP socket
//!   `-qmp unix:<state_dir>/<id>/qmp.sock,...` names this driver's state directory.
//! - A machine directory without `machine.json`: the server died while `define`
//!   was creating the overlay, or while `destroy` was removing the files.
//!
//! [`reclaim`] stops the first (SIGTERM, then SIGKILL) and removes the second.
//! Only a server starting up calls it: an administration command running beside a
//! server must not, as the server may be starting a machine at that moment.

use super::{
    DISK_FILE, GUEST_AGENT_SOCKET, PID_FILE, QMP_SOCKET, QUIT_GRACE, RUN_FILE, SERIAL_LOG, SPEC_FILE, valid_id,
};
use crate::compute::ComputeError;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every file a machine directory may hold, the half-written ones included.
const MACHINE_FILES: &[&str] = &[
    SPEC_FILE,
    "machine.partial",
    DISK_FILE,
    RUN_FILE,
    "run.partial",
    PID_FILE,
    QMP_SOCKET,
    GUEST_AGENT_SOCKET,
    SERIAL_LOG,
];

/// A QEMU started under the state directory: its pid and its machine's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QemuProcess {
    pub pid: u32,
    pub id: String,
}

/// Stops every QEMU process of `state_dir` that `known(id, pid)` does not claim, and
/// removes every machine directory left without its `machine.json`. Returns how many
/// processes and directories it found.
pub(super) fn reclaim(state_dir: &Path, known: impl Fn(&str, u32) -> bool) -> Result<usize, ComputeError> {
    let mut found = 0;
    // A QEMU caught while daemonizing may fork once more before it dies: look again
    // until nothing is left (a few rounds at most).
    for _ in 0..5 {
        let strays: Vec<QemuProcess> =
            qemu_processes(state_dir)?.into_iter().filter(|process| !known(&process.id, process.pid)).collect();
        if strays.is_empty() {
            break;
        }
        for stray in &strays {
            tracing::warn!(
                machine = %stray.id,
                pid = stray.pid,
                "stopping a QEMU process no machine record knows (left by a server that was killed)"
            );
        }
        found += strays.len();
        stop(&strays.iter().map(|stray| stray.pid).collect::<Vec<_>>());
    }
    found += remove_half_made(state_dir)?;
    Ok(found)
}

/// The QEMU processes, of this user, whose QMP socket is in a machine directory
/// under `state_dir`.
pub(super) fn qemu_processes(state_dir: &Path) -> Result<Vec<QemuProcess>, ComputeError> {
    use std::os::unix::fs::MetadataExt;
    let prefix = format!("unix:{}/", state_dir.display());
    let uid = rustix::process::getuid().as_raw();
    let entries = std::fs::read_dir("/proc").map_err(|e| ComputeError::Failed(format!("reading /proc: {e}")))?;
    let mut processes = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        // Processes come and go while the table is read: a vanished one is skipped.
        if !entry.metadata().is_ok_and(|meta| meta.uid() == uid) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if let Some(id) = machine_of(&cmdline, &prefix) {
            processes.push(QemuProcess { pid, id });
        }
    }
    processes.sort_by_key(|process| process.pid);
    Ok(processes)
}

/// The machine id in a NUL-separated command line with `-qmp <prefix><id>/qmp.sock...`.
fn machine_of(cmdline: &[u8], prefix: &str) -> Option<String> {
    let arguments: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
    arguments.windows(2).find_map(|pair| {
        if pair[0] != b"-qmp" {
            return None;
        }
        let value = std::str::from_utf8(pair[1]).ok()?;
        let (id, rest) = value.strip_prefix(prefix)?.split_once('/')?;
        let socket_file = rest.split(',').next()?;
        (valid_id(id) && socket_file == QMP_SOCKET).then(|| id.to_owned())
    })
}

/// SIGTERM (QEMU exits cleanly on it), then SIGKILL for any still there after
/// [`QUIT_GRACE`]; waits until they are gone.
fn stop(pids: &[u32]) {
    use rustix::process::{Pid, Signal, kill_process};
    let signal = |pid: u32, signal: Signal| {
        if let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(raw, signal);
        }
    };
    for pid in pids {
        signal(*pid, Signal::TERM);
    }
    if !wait_until_gone(pids, QUIT_GRACE) {
        for pid in pids.iter().filter(|pid| alive(**pid)) {
            tracing::warn!(pid, "a stray QEMU ignored SIGTERM; killing it");
            signal(*pid, Signal::KILL);
        }
        wait_until_gone(pids, QUIT_GRACE);
    }
}

fn wait_until_gone(pids: &[u32], limit: Duration) -> bool {
    let start = Instant::now();
    while pids.iter().any(|pid| alive(*pid)) {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

/// Removes the machine directories without `machine.json` that hold nothing but a
/// machine's own files (anything else there is left alone, and logged).
fn remove_half_made(state_dir: &Path) -> Result<usize, ComputeError> {
    let entries =
        std::fs::read_dir(state_dir).map_err(|e| ComputeError::Failed(format!("reading the state directory: {e}")))?;
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let dir = entry.path();
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !valid_id(&id) || !entry.file_type().is_ok_and(|kind| kind.is_dir()) || dir.join(SPEC_FILE).exists() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&dir) else { continue };
        let names: Vec<String> =
            files.filter_map(Result::ok).map(|file| file.file_name().to_string_lossy().into_owned()).collect();
        if let Some(unknown) = names.iter().find(|name| !MACHINE_FILES.contains(&name.as_str())) {
            tracing::warn!(dir = %dir.display(), file = %unknown, "leaving a machine directory without machine.json: it holds a file that is not a machine's");
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::warn!(machine = %id, "removed the files of a machine half defined or half destroyed");
                removed += 1;
            }
            Err(error) => tracing::error!(dir = %dir.display(), %error, "cannot remove a half-made machine directory"),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmdline(arguments: &[&str]) -> Vec<u8> {
        arguments.iter().flat_map(|argument| argument.bytes().chain([0])).collect()
    }

    #[test]
    fn a_qemu_is_known_by_its_qmp_socket_under_the_state_directory() {
        let prefix = "unix:/var/lib/thindesk/vms/";
        let ours = cmdline(&[
            "qemu-system-x86_64",
            "-name",
            "guest=thindesk-abc,process=thindesk-abc",
            "-qmp",
            "unix:/var/lib/thindesk/vms/abc_D-9/qmp.sock,server=on,wait=off",
        ]);
        assert_eq!(machine_of(&ours, prefix).as_deref(), Some("abc_D-9"));
        let elsewhere = cmdline(&["qemu-system-x86_64", "-qmp", "unix:/tmp/vms/abc/qmp.sock,server=on"]);
        assert_eq!(machine_of(&elsewhere, prefix), None, "another server's machine");
        let deeper = cmdline(&["qemu", "-qmp", "unix:/var/lib/thindesk/vms/a/b/qmp.sock"]);
        assert_eq!(machine_of(&deeper, prefix), None);
        let mentions = cmdline(&["tail", "-f", "/var/lib/thindesk/vms/abc/serial.log"]);
        assert_eq!(machine_of(&mentions, prefix), None, "a process that only names the directory");
        let escaping = cmdline(&["qemu", "-qmp", "unix:/var/lib/thindesk/vms/../qmp.sock"]);
        assert_eq!(machine_of(&escaping, prefix), None);
    }

    #[test]
    fn half_made_machine_directories_go_and_everything_else_stays() {
        let state = tempfile::tempdir().expect("dir");
        let make = |id: &str, files: &[&str]| {
            let dir = state.path().join(id);
            std::fs::create_dir(&dir).expect("dir");
            for file in files {
                std::fs::write(dir.join(file), b"x").expect("file");
            }
        };
        make("defined", &[SPEC_FILE, DISK_FILE]);
        make("half-defined", &[DISK_FILE]);
        make("half-destroyed", &[SERIAL_LOG, "run.partial"]);
        make("foreign", &[DISK_FILE, "notes.txt"]);
        make("not.an.id", &[DISK_FILE]);
        std::fs::write(state.path().join("accel.json"), b"{}").expect("file");
        assert_eq!(remove_half_made(state.path()).expect("swept"), 2);
        let mut left: Vec<String> = std::fs::read_dir(state.path())
            .expect("read")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["accel.json", "defined", "foreign", "not.an.id"]);
    }

    #[test]
    fn a_stray_qemu_is_stopped_and_a_known_one_is_left_running() {
        // Stand-ins for QEMU: perl (Debian's perl-base is essential) sleeping, with
        // the arguments QEMU would have; it forks nothing that could be caught
        // half-way through exec.
        let state = tempfile::tempdir().expect("dir");
        let spawn_sleep = |id: &str| {
            let socket = format!("unix:{}/{id}/qmp.sock,server=on,wait=off", state.path().display());
            std::process::Command::new("perl").args(["-e", "sleep 20", "--", "-qmp", &socket]).spawn().expect("spawn")
        };
        let mut stray = spawn_sleep("stray");
        let mut known = spawn_sleep("known");
        let known_pid = known.id();
        // A process just forked shows its parent's command line until it has exec'd.
        let start = Instant::now();
        while qemu_processes(state.path()).expect("scan").len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(10), "{:?}", qemu_processes(state.path()));
            std::thread::sleep(Duration::from_millis(10));
        }
        let reclaimed = reclaim(state.path(), |id, pid| id == "known" && pid == known_pid).expect("reclaim");
        assert_eq!(reclaimed, 1);
        assert!(stray.wait().is_ok(), "the stray was stopped");
        assert!(alive(known_pid), "the known machine runs on");
        let _ = known.kill();
        let _ = known.wait();
    }
}
