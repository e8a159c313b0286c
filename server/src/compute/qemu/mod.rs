//! The local QEMU/KVM driver: one `qemu-system-x86_64` process per running machine,
//! a qcow2 overlay on the image's base disk, and QMP over a Unix socket for every
//! action. (Over 600 lines: a machine's whole life, its files, process, ports and
//! claims, is kept in one place so that each step can be checked against the others;
//! what stands alone is in `accel`, `shield`, `qmp` and `demo_image`. Splitting the
//! process handling from the claims is the next step when it grows.)
//!
//! Machines outlive the server: QEMU daemonizes into its own session, and everything
//! the driver needs to find a machine again lives in the machine's directory
//! (`<state_dir>/<id>/`):
//!
//! | file | what |
//! | --- | --- |
//! | `machine.json` | the spec it was defined with |
//! | `disk.qcow2` | the overlay |
//! | `run.json` (0600) | while it runs: pid, ports, SPICE ticket and certificate |
//! | `tls/` (0700) | while it runs: the certificate, key and authority its display uses |
//! | `qemu.pid`, `qmp.sock` | QEMU's own |
//! | `qga.sock` | the guest agent's channel, for images that run one |
//! | `serial.log` | the guest's serial console |
//!
//! The SPICE ticket never appears on a command line: QEMU starts with ticketing on
//! and no password (so every connection is refused) and gets the ticket over QMP.
//! The display speaks TLS only (`tls-port`, no plain `port`), with the server's own
//! certificate ([`crate::tls`]), copied into the machine's `tls/` at each start: the
//! authority and subject a viewer is told to check are read from the very files QEMU
//! loads, and a machine started before SPICE over TLS gets it at its next start.
//! Neither does a guest account's password: a machine defined with one gets a
//! guest-agent channel, and after each start a worker thread sets the password
//! through the agent once the guest has booted ([`guest_agent`]).
//!
//! Guests are on QEMU's user-mode network (IPv4 only), which opens the guest's
//! connections as sockets of its QEMU process. `internet=false` is `restrict=on`: the
//! guest reaches nothing at all. With internet it reaches outside networks, and never
//! this host: the kernel refuses the server's user (so its QEMU processes) every
//! connection to the host's own addresses (`assets/guest-net.nft`). Before each such
//! start the driver checks that this holds for itself ([`shield`]); where it does not,
//! the machine starts without internet and the log says why.

mod accel;
pub mod demo_image;
mod guest_agent;
mod orphans;
mod qmp;
pub mod shield;

use super::{Compute, ComputeError, Display, GuestAccount, MachineSpec, MachineView, PowerOp, SpiceTls};
use qmp::{Qmp, QmpError};
use serde::{Deserialize, Serialize};
use shield::Shield;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thindesk_shared::{DesktopStatus, Policy, Secret};

const SPEC_FILE: &str = "machine.json";
const RUN_FILE: &str = "run.json";
const DISK_FILE: &str = "disk.qcow2";
const PID_FILE: &str = "qemu.pid";
const QMP_SOCKET: &str = "qmp.sock";
const GUEST_AGENT_SOCKET: &str = "qga.sock";
const SERIAL_LOG: &str = "serial.log";
/// The machine's copy of the server's TLS identity, QEMU's `x509-dir`.
const TLS_DIR: &str = "tls";
/// `sun_path` is 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// How long QEMU may take to exit after `quit` before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// Which accelerator machines run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when `/dev/kvm` can be opened for writing, else TCG.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl Accel {
    fn resolve(self) -> Self {
        match self {
            Accel::Auto if kvm_usable() => Accel::Kvm,
            Accel::Auto => Accel::Tcg,
            other => other,
        }
    }
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    /// One directory per machine below this; created owner-only.
    pub state_dir: PathBuf,
    pub qemu_system: PathBuf,
    pub qemu_img: PathBuf,
    pub accel: Accel,
    /// The host address SPICE and forwarded RDP ports listen on.
    pub display_address: IpAddr,
    pub spice_ports: RangeInclusive<u16>,
    pub rdp_ports: RangeInclusive<u16>,
    /// How long a guest has to power off after the ACPI power button before it is
    /// stopped by force.
    pub shutdown_deadline: Duration,
    /// Memory the virtual machines may have in all, in MiB. `None`: the host's memory
    /// less `host_reserve_mib`.
    pub vm_memory_mib: Option<u64>,
    /// Memory kept for the host itself when `vm_memory_mib` is not set.
    pub host_reserve_mib: u64,
    /// A host TCP port the guest is told about (SMBIOS `version`), so the demo image
    /// can show whether it reaches the management server (no guest should); usually
    /// the server's port.
    pub guest_probe_port: Option<u16>,
    /// The server's TLS identity ([`crate::tls::directory`]): the certificate every
    /// display presents. Machines do not start without it.
    pub x509_dir: PathBuf,
}

impl QemuConfig {
    /// Defaults for a server whose data lives in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            state_dir: data_dir.join("vms"),
            qemu_system: "qemu-system-x86_64".into(),
            qemu_img: "qemu-img".into(),
            accel: Accel::Auto,
            display_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            spice_ports: 5900..=5999,
            rdp_ports: 33890..=33989,
            shutdown_deadline: Duration::from_secs(60),
            vm_memory_mib: None,
            host_reserve_mib: 1024,
            guest_probe_port: None,
            x509_dir: crate::tls::directory(data_dir),
        }
    }
}

/// What a machine was defined with, as kept in `machine.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSpec {
    name: String,
    base_disk: PathBuf,
    vcpus: u32,
    ram_mib: u32,
    disk_gib: u32,
    internet: bool,
    rdp: bool,
    /// Machines defined before policies were enforced get the permissive default.
    #[serde(default)]
    policy: Policy,
    /// Set in the guest through its agent at every start.
    #[serde(default)]
    guest_account: Option<GuestAccount>,
}

/// A running machine's particulars, as kept in `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    pid: u32,
    spice_port: u16,
    rdp_port: Option<u16>,
    spice_ticket: Secret,
    /// `None`: started without TLS, by a server from before it.
    #[serde(default)]
    spice_tls: Option<SpiceTls>,
}

/// Host resources a running (or starting) machine holds.
#[derive(Debug, Clone, Copy)]
struct Claim {
    ram_mib: u32,
    spice_port: u16,
    rdp_port: Option<u16>,
    /// False while the machine is starting: it has no live process to check yet, so
    /// only its own start (on failure) may give the claim back.
    running: bool,
}

pub struct QemuCompute {
    config: QemuConfig,
    /// `Kvm` or `Tcg`. With `Accel::Auto`, a host whose `/dev/kvm` opens but cannot
    /// run a CPU (nested setups without the features QEMU needs) moves to TCG at the
    /// first failed start, or when the first guest under KVM stops on a KVM error
    /// (`accel.rs`); either finding is remembered in the state directory.
    accel: Mutex<Accel>,
    /// With `Accel::Auto` and KVM chosen: whether KVM has been seen to run a guest.
    kvm_proven: std::sync::atomic::AtomicBool,
    vm_memory_mib: u64,
    claims: Mutex<HashMap<String, Claim>>,
    /// Serialises power operations per machine, so a start and a destroy of the same
    /// machine never interleave.
    machine_locks: Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
    /// What `qemu-img info` said of each base disk, with the disk's modification
    /// time then: a launch asks once per image, not once per machine.
    base_disks: Mutex<HashMap<PathBuf, (std::time::SystemTime, ImageInfo)>>,
    /// Machines with a worker setting their guest account (at most one each).
    guest_accounts: std::sync::Arc<guest_agent::Pending>,
}

impl QemuCompute {
    /// Prepares the state directory and re-attaches to the machines still running
    /// from an earlier server. Touches no machine's files: administration commands
    /// make a driver too, beside a running server.
    pub fn new(config: QemuConfig) -> Result<Self, ComputeError> {
        let state = config.state_dir.to_string_lossy();
        if state.contains(',') {
            return Err(ComputeError::Failed(format!(
                "the state directory {state} has a comma, which QEMU options cannot carry"
            )));
        }
        create_private_dir(&config.state_dir)?;
        let vm_memory_mib = match config.vm_memory_mib {
            Some(mib) => mib,
            None => host_memory_mib()?.saturating_sub(config.host_reserve_mib),
        };
        let found = (config.accel == Accel::Auto).then(|| accel::remembered(&config.state_dir)).flatten();
        let accel = found.unwrap_or_else(|| config.accel.resolve());
        if found == Some(Accel::Tcg) {
            tracing::info!("KVM did not run guests on this host before: using TCG");
        }
        let shield = shield::check();
        let driver = Self {
            kvm_proven: (found == Some(Accel::Kvm)).into(),
            config,
            accel: Mutex::new(accel),
            vm_memory_mib,
            claims: Mutex::new(HashMap::new()),
            machine_locks: Mutex::new(HashMap::new()),
            base_disks: Mutex::new(HashMap::new()),
            guest_accounts: Default::default(),
        };
        // A dead machine's run files are left as they are (nothing believes them: every
        // reader checks the process, and a start clears them): this runs in the CLI
        // beside a live server too, which may be starting a machine whose run state
        // is not written yet.
        let mut reattached = 0;
        for id in driver.machine_ids()? {
            let dir = driver.machine_dir(&id);
            if let (Some(run), Ok(spec)) = (driver.live_run_state(&dir), read_json::<StoredSpec>(&dir.join(SPEC_FILE)))
            {
                let claim =
                    Claim { ram_mib: spec.ram_mib, spice_port: run.spice_port, rdp_port: run.rdp_port, running: true };
                lock(&driver.claims).insert(id, claim);
                reattached += 1;
            }
        }
        tracing::info!(
            ?accel,
            state_dir = %driver.config.state_dir.display(),
            vm_memory_mib,
            reattached,
            "QEMU driver ready"
        );
        match shield {
            Shield::InForce => tracing::info!("guests with internet are kept off this host's addresses"),
            Shield::Missing(reason) => tracing::error!(
                %reason,
                "guests get no internet: the kernel does not keep this user off the host's own addresses \
                 (load assets/guest-net.nft as root: bash assets/install-packages.sh)"
            ),
        }
        Ok(driver)
    }

    /// The accelerator the next machine starts with.
    pub fn accel(&self) -> Accel {
        *lock(&self.accel)
    }

    /// The guest's serial console so far (the demo image reports on it).
    pub fn serial_log(&self, id: &str) -> Result<String, ComputeError> {
        let dir = self.existing_machine_dir(id)?;
        let bytes = std::fs::read(dir.join(SERIAL_LOG)).unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The ids of every defined machine.
    pub fn machine_ids(&self) -> Result<Vec<String>, ComputeError> {
        let entries =
            std::fs::read_dir(&self.config.state_dir).map_err(|e| io_failure("reading the state directory", e))?;
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join(SPEC_FILE).is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|id| valid_id(id))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The process id of a running machine, for tests and diagnostics.
    pub fn pid(&self, id: &str) -> Option<u32> {
        self.live_run_state(&self.machine_dir(id)).map(|run| run.pid)
    }

    fn machine_dir(&self, id: &str) -> PathBuf {
        self.config.state_dir.join(id)
    }

    fn existing_machine_dir(&self, id: &str) -> Result<PathBuf, ComputeError> {
        let dir = self.machine_dir(id);
        if !valid_id(id) || !dir.join(SPEC_FILE).is_file() {
            return Err(ComputeError::NoSuchMachine(id.to_owned()));
        }
        Ok(dir)
    }

    fn machine_lock(&self, id: &str) -> std::sync::Arc<Mutex<()>> {
        lock(&self.machine_locks).entry(id.to_owned()).or_default().clone()
    }

    /// The run state of a machine whose QEMU process is alive; `None` when it is not
    /// running (or its pid now belongs to some other process).
    fn live_run_state(&self, dir: &Path) -> Option<RunState> {
        let run: RunState = read_json(&dir.join(RUN_FILE)).ok()?;
        process_is_our_qemu(run.pid, &dir.join(QMP_SOCKET)).then_some(run)
    }

    fn qmp(&self, dir: &Path) -> Result<Qmp, ComputeError> {
        Qmp::connect(&dir.join(QMP_SOCKET)).map_err(qmp_failure)
    }

    /// Reserves memory and ports for a machine about to start. Machines that died
    /// since their claim was made give theirs back first.
    fn claim(&self, id: &str, spec: &StoredSpec) -> Result<Claim, ComputeError> {
        let mut claims = lock(&self.claims);
        claims.retain(|other, claim| {
            other == id || !claim.running || self.live_run_state(&self.machine_dir(other)).is_some()
        });
        claims.remove(id);
        let committed: u64 = claims.values().map(|c| u64::from(c.ram_mib)).sum();
        let free = self.vm_memory_mib.saturating_sub(committed);
        if u64::from(spec.ram_mib) > free {
            return Err(ComputeError::NoCapacity(format!(
                "it needs {} MiB of memory and only {free} MiB of the {} MiB for virtual machines are free",
                spec.ram_mib, self.vm_memory_mib
            )));
        }
        let taken: Vec<u16> = claims.values().flat_map(|c| [Some(c.spice_port), c.rdp_port]).flatten().collect();
        let address = self.config.display_address;
        let free_port = |range: &RangeInclusive<u16>, also_taken: Option<u16>| {
            range.clone().find(|port| {
                !taken.contains(port) && Some(*port) != also_taken && TcpListener::bind((address, *port)).is_ok()
            })
        };
        let spice_port = free_port(&self.config.spice_ports, None)
            .ok_or_else(|| ComputeError::NoCapacity("every SPICE port of the configured range is in use".into()))?;
        let rdp_port =
            if spec.rdp {
                Some(free_port(&self.config.rdp_ports, Some(spice_port)).ok_or_else(|| {
                    ComputeError::NoCapacity("every RDP port of the configured range is in use".into())
                })?)
            } else {
                None
            };
        let claim = Claim { ram_mib: spec.ram_mib, spice_port, rdp_port, running: false };
        claims.insert(id.to_owned(), claim);
        Ok(claim)
    }

    fn base_disk_info(&self, disk: &Path) -> Result<ImageInfo, ComputeError> {
        let modified = std::fs::metadata(disk)
            .and_then(|m| m.modified())
            .map_err(|e| ComputeError::BadImage(format!("{}: {e}", disk.display())))?;
        if let Some((seen, info)) = lock(&self.base_disks).get(disk) {
            if *seen == modified {
                return Ok(info.clone());
            }
        }
        let info = ImageInfo::read(&self.config.qemu_img, disk)?;
        lock(&self.base_disks).insert(disk.to_owned(), (modified, info.clone()));
        Ok(info)
    }

    fn release(&self, id: &str) {
        lock(&self.claims).remove(id);
    }

    fn start(&self, id: &str, dir: &Path) -> Result<(), ComputeError> {
        if self.live_run_state(dir).is_some() {
            return Ok(());
        }
        let spec: StoredSpec = read_json(&dir.join(SPEC_FILE))?;
        clear_run_state(dir);
        let claim = self.claim(id, &spec)?;
        let internet = spec.internet && self.internet_is_safe(id);
        let launch = || {
            let spice_tls = self.copy_tls(dir)?;
            let pid = self.spawn(id, dir, &spec, claim, internet)?;
            let run = RunState {
                pid,
                spice_port: claim.spice_port,
                rdp_port: claim.rdp_port,
                spice_ticket: Secret::new(crate::random::token(18)),
                spice_tls: Some(spice_tls),
            };
            write_private_json(&dir.join(RUN_FILE), &run)?;
            self.qmp(dir)?
                .execute(
                    "set_password",
                    Some(serde_json::json!({ "protocol": "spice", "password": run.spice_ticket.expose() })),
                )
                .map_err(qmp_failure)?;
            Ok(())
        };
        let mut outcome = launch();
        if outcome.is_ok() && self.kvm_on_trial() && self.guest_stops_under_kvm(dir) {
            tracing::warn!("KVM stopped the guest with an internal error; using TCG (slower) from now on");
            *lock(&self.accel) = Accel::Tcg;
            accel::remember(&self.config.state_dir, Accel::Tcg);
            self.force_stop(dir);
            clear_run_state(dir);
            wait_for_ports_free(self.config.display_address, [Some(claim.spice_port), claim.rdp_port]);
            outcome = launch();
        }
        if let Err(error) = outcome {
            self.force_stop(dir);
            clear_run_state(dir);
            self.release(id);
            return Err(error);
        }
        if let Some(claim) = lock(&self.claims).get_mut(id) {
            claim.running = true;
        }
        if spec.guest_account.is_some() {
            self.set_guest_account_soon(id, dir);
        }
        tracing::info!(
            machine = id,
            spice_port = claim.spice_port,
            rdp_port = ?claim.rdp_port,
            internet,
            "machine started"
        );
        Ok(())
    }

    /// Copies the server's certificate, key and authority into the machine's `tls/`,
    /// owner-only, for QEMU to load at its start; returns what a viewer must check of
    /// that certificate. A broken or missing identity stops the start: a display
    /// without TLS is never the fallback.
    fn copy_tls(&self, dir: &Path) -> Result<SpiceTls, ComputeError> {
        let copy = dir.join(TLS_DIR);
        create_private_dir(&copy)?;
        for file in [crate::tls::CA_CERT, crate::tls::SERVER_CERT, crate::tls::SERVER_KEY] {
            let source = self.config.x509_dir.join(file);
            let bytes = std::fs::read(&source).map_err(|e| {
                ComputeError::Failed(format!(
                    "SPICE needs the server's TLS files, and {} cannot be read ({e}); the server makes them at its \
                     first start",
                    source.display()
                ))
            })?;
            write_private(&copy.join(file), &bytes)?;
        }
        let identity = crate::tls::show(&copy)
            .map_err(|e| ComputeError::Failed(format!("the server's TLS certificate cannot serve SPICE: {e}")))?;
        let ca = std::fs::read_to_string(copy.join(crate::tls::CA_CERT))
            .map_err(|e| io_failure("reading the certificate authority", e))?;
        Ok(SpiceTls { ca, host_subject: identity.subject })
    }

    /// Has a worker set the machine's guest account once its agent answers; a worker
    /// already at it is told to read the account again.
    fn set_guest_account_soon(&self, id: &str, dir: &Path) {
        {
            let mut pending = lock(&self.guest_accounts);
            if let Some(changed) = pending.get_mut(id) {
                *changed = true;
                return;
            }
            pending.insert(id.to_owned(), true);
        }
        let pending = self.guest_accounts.clone();
        let (machine, dir) = (id.to_owned(), dir.to_owned());
        let worker = std::thread::Builder::new()
            .name(format!("guest-agent-{id}"))
            .spawn(move || guest_agent::keep_setting(&machine, &dir, &pending, guest_agent::AGENT_DEADLINE));
        if let Err(error) = worker {
            tracing::error!(machine = id, %error, "cannot start a thread to set the guest's OS password");
            lock(&self.guest_accounts).remove(id);
        }
    }

    /// True when a guest given internet would still be kept off this host (see
    /// [`shield`]); asked at every start, as the table can be gone since the last.
    fn internet_is_safe(&self, id: &str) -> bool {
        match shield::check() {
            Shield::InForce => true,
            Shield::Missing(reason) => {
                tracing::warn!(
                    machine = id,
                    %reason,
                    "starting without internet: the kernel does not keep this user off the host's own addresses \
                     (load assets/guest-net.nft as root: bash assets/install-packages.sh)"
                );
                false
            }
        }
    }

    /// Starts QEMU and waits until it has daemonized, by which time its QMP socket
    /// and SPICE port are listening. Returns the daemon's pid.
    fn spawn(
        &self,
        id: &str,
        dir: &Path,
        spec: &StoredSpec,
        claim: Claim,
        internet: bool,
    ) -> Result<u32, ComputeError> {
        let run = |accel| {
            Command::new(&self.config.qemu_system)
                .args(self.qemu_arguments(id, dir, spec, claim, accel, internet))
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| ComputeError::Failed(format!("cannot run {}: {e}", self.config.qemu_system.display())))
        };
        let accel = self.accel();
        let mut output = run(accel)?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let kvm_failed = stderr.to_ascii_lowercase().contains("kvm");
        if !output.status.success() && accel == Accel::Kvm && self.config.accel == Accel::Auto && kvm_failed {
            let error = stderr.trim().lines().last().unwrap_or_default();
            tracing::warn!(error, "KVM cannot run machines on this host; using TCG (slower) from now on");
            *lock(&self.accel) = Accel::Tcg;
            accel::remember(&self.config.state_dir, Accel::Tcg);
            clear_process_files(dir);
            // The aborted QEMU may hold its ports for a moment after its parent has
            // returned.
            wait_for_ports_free(self.config.display_address, [Some(claim.spice_port), claim.rdp_port]);
            output = run(Accel::Tcg)?;
        }
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(ComputeError::Failed(format!(
                "QEMU did not start ({}): {}",
                output.status,
                stderr.trim().lines().last().unwrap_or("no message")
            )));
        }
        let pid_text =
            std::fs::read_to_string(dir.join(PID_FILE)).map_err(|e| io_failure("reading QEMU's pid file", e))?;
        pid_text.trim().parse().map_err(|_| ComputeError::Failed(format!("QEMU wrote a bad pid file: {pid_text:?}")))
    }

    /// `internet`: whether the guest may reach outside networks (its spec asks for it
    /// and the host is shielded from guests).
    fn qemu_arguments(
        &self,
        id: &str,
        dir: &Path,
        spec: &StoredSpec,
        claim: Claim,
        accel: Accel,
        internet: bool,
    ) -> Vec<String> {
        let address = self.config.display_address;
        let mut network = user_network(internet);
        if let Some(rdp_port) = claim.rdp_port {
            network.push_str(&format!(",hostfwd=tcp:{address}:{rdp_port}-:3389"));
        }
        let mut smbios =
            format!("type=1,manufacturer=thindesk,product=thindesk-desktop,serial={}", option_safe(&spec.name));
        if let Some(port) = self.config.guest_probe_port {
            smbios.push_str(&format!(",version={port}"));
        }
        // Under TCG the default CPU model boots faster than `max`, which emulates
        // every feature QEMU knows.
        let (machine, cpu) = match accel {
            Accel::Kvm => ("q35,accel=kvm", "host"),
            _ => ("q35,accel=tcg", "qemu64"),
        };
        let path = |file: &str| dir.join(file).to_string_lossy().into_owned();
        // TLS only: without `port` QEMU opens no plain SPICE port.
        let mut spice =
            format!("tls-port={},addr={address},x509-dir={},seamless-migration=off", claim.spice_port, path(TLS_DIR));
        if !spec.policy.enable_clipboard {
            spice.push_str(",disable-copy-paste=on,disable-agent-file-xfer=on");
        }
        [
            "-name",
            &format!("guest=thindesk-{id},process=thindesk-{id}"),
            "-machine",
            machine,
            "-cpu",
            cpu,
            "-smp",
            &spec.vcpus.to_string(),
            "-m",
            &format!("{}M", spec.ram_mib),
            "-nodefaults",
            "-no-user-config",
            "-drive",
            &format!("file={},if=virtio,format=qcow2,cache=writeback", path(DISK_FILE)),
            "-netdev",
            &network,
            "-device",
            "virtio-net-pci,netdev=net0",
            "-smbios",
            &smbios,
            "-vga",
            "qxl",
            "-device",
            "qemu-xhci,id=xhci",
            "-device",
            "usb-tablet,bus=xhci.0",
            "-spice",
            &spice,
            "-serial",
            &format!("file:{}", path(SERIAL_LOG)),
            "-qmp",
            &format!("unix:{},server=on,wait=off", path(QMP_SOCKET)),
            "-display",
            "none",
            "-pidfile",
            &path(PID_FILE),
            "-daemonize",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(policy_devices(&spec.policy))
        .chain(spec.guest_account.as_ref().map_or_else(Vec::new, |_| guest_agent_devices(dir)))
        .collect()
    }

    /// Asks the guest to power off, then stops it by force if it has not within the
    /// deadline.
    fn shutdown(&self, dir: &Path) -> Result<(), ComputeError> {
        let Some(run) = self.live_run_state(dir) else { return Ok(()) };
        let running = self
            .qmp(dir)
            .and_then(|mut qmp| qmp.execute("query-status", None).map_err(qmp_failure))
            .is_ok_and(|status| status["status"] == "running");
        if running {
            match self.qmp(dir).and_then(|mut qmp| qmp.execute("system_powerdown", None).map_err(qmp_failure)) {
                Ok(_) if wait_for_exit(run.pid, dir, self.config.shutdown_deadline) => {
                    self.wait_for_ports(&run);
                    clear_run_state(dir);
                    return Ok(());
                }
                Ok(_) => tracing::warn!(dir = %dir.display(), "guest ignored the power button; stopping it by force"),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot press the power button; stopping by force")
                }
            }
        }
        self.force_stop(dir);
        clear_run_state(dir);
        Ok(())
    }

    /// `quit` over QMP, then SIGKILL if QEMU is still there after a grace period.
    fn force_stop(&self, dir: &Path) {
        let pid = std::fs::read_to_string(dir.join(PID_FILE)).ok().and_then(|text| text.trim().parse::<u32>().ok());
        let Some(pid) = pid.filter(|pid| process_is_our_qemu(*pid, &dir.join(QMP_SOCKET))) else { return };
        let run: Option<RunState> = read_json(&dir.join(RUN_FILE)).ok();
        let _ = self.qmp(dir).and_then(|mut qmp| qmp.execute("quit", None).map_err(qmp_failure));
        if !wait_for_exit(pid, dir, QUIT_GRACE) {
            tracing::warn!(pid, "QEMU did not quit; killing it");
            if let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(raw, rustix::process::Signal::KILL);
            }
            wait_for_exit(pid, dir, QUIT_GRACE);
        }
        if let Some(run) = run {
            self.wait_for_ports(&run);
        }
    }

    /// A QEMU whose main thread is gone can still hold its listening sockets while
    /// its other threads wind down; a stopped machine's ports are promised free.
    fn wait_for_ports(&self, run: &RunState) {
        wait_for_ports_free(self.config.display_address, [Some(run.spice_port), run.rdp_port]);
    }

    /// Whether the machine just started is the first under KVM chosen by `Auto`.
    fn kvm_on_trial(&self) -> bool {
        self.config.accel == Accel::Auto
            && *lock(&self.accel) == Accel::Kvm
            && !self.kvm_proven.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Watches a guest just started under KVM for up to [`accel::KVM_TRIAL`]: true when
    /// it stops on a KVM internal error. A guest that runs so long, or whose kernel
    /// writes to the serial port before, proves KVM on this host.
    fn guest_stops_under_kvm(&self, dir: &Path) -> bool {
        let deadline = Instant::now() + accel::KVM_TRIAL;
        while Instant::now() < deadline {
            let status = self.qmp(dir).and_then(|mut qmp| qmp.execute("query-status", None).map_err(qmp_failure));
            match status {
                Ok(status) if accel::stopped_by_kvm(&status) => return true,
                // The guest's kernel is writing to its serial port: it got past the
                // boot loader, where the KVM failures seen stop guests.
                Ok(_) if std::fs::metadata(dir.join(SERIAL_LOG)).is_ok_and(|m| m.len() > 0) => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(200)),
                // Gone or unreachable: not a KVM verdict; the caller's checks will see it.
                Err(_) => return false,
            }
        }
        self.kvm_proven.store(true, std::sync::atomic::Ordering::SeqCst);
        accel::remember(&self.config.state_dir, Accel::Kvm);
        false
    }

    fn status(&self, dir: &Path) -> Result<DesktopStatus, ComputeError> {
        let reply = self.qmp(dir)?.execute("query-status", None).map_err(qmp_failure)?;
        Ok(match reply["status"].as_str().unwrap_or_default() {
            "running" => DesktopStatus::Active,
            "paused" | "debug" | "watchdog" => DesktopStatus::Paused,
            "suspended" => DesktopStatus::Suspended,
            "shutdown" => DesktopStatus::Shutoff,
            "internal-error" | "io-error" | "guest-panicked" => DesktopStatus::Error,
            _ => DesktopStatus::Build,
        })
    }
}

impl Compute for QemuCompute {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn define(&self, spec: &MachineSpec) -> Result<(), ComputeError> {
        if !valid_id(&spec.id) {
            return Err(ComputeError::Failed(format!("{:?} is not a valid machine id", spec.id)));
        }
        let dir = self.machine_dir(&spec.id);
        if dir.join(QMP_SOCKET).as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ComputeError::Failed(format!(
                "the state directory {} is too long for a QMP socket path",
                self.config.state_dir.display()
            )));
        }
        let machine_lock = self.machine_lock(&spec.id);
        let _guard = lock(&machine_lock);
        if dir.exists() {
            return Err(ComputeError::AlreadyDefined(spec.id.clone()));
        }
        if spec.vcpus == 0 || spec.ram_mib == 0 {
            return Err(ComputeError::Failed("a machine needs at least one vCPU and some memory".into()));
        }
        let base = self.base_disk_info(&spec.base_disk)?;
        create_private_dir(&dir)?;
        let created = (|| {
            let size = (u64::from(spec.disk_gib) << 30).max(base.virtual_size);
            let output = Command::new(&self.config.qemu_img)
                .args(["create", "-q", "-f", "qcow2", "-F", &base.format, "-b"])
                .arg(&spec.base_disk)
                .arg(dir.join(DISK_FILE))
                .arg(size.to_string())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| ComputeError::Failed(format!("cannot run qemu-img: {e}")))?;
            if !output.status.success() {
                return Err(ComputeError::Failed(format!(
                    "qemu-img could not create the overlay: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            let stored = StoredSpec {
                name: spec.name.clone(),
                base_disk: spec.base_disk.clone(),
                vcpus: spec.vcpus,
                ram_mib: spec.ram_mib,
                disk_gib: spec.disk_gib,
                internet: spec.internet,
                rdp: spec.rdp,
                policy: spec.policy,
                guest_account: spec.guest_account.clone(),
            };
            write_private_json(&dir.join(SPEC_FILE), &stored)
        })();
        if created.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        created
    }

    fn destroy(&self, id: &str) -> Result<(), ComputeError> {
        let dir = self.existing_machine_dir(id)?;
        let machine_lock = self.machine_lock(id);
        let _guard = lock(&machine_lock);
        self.force_stop(&dir);
        self.release(id);
        std::fs::remove_dir_all(&dir).map_err(|e| io_failure("removing the machine's files", e))?;
        lock(&self.machine_locks).remove(id);
        tracing::info!(machine = id, "machine destroyed");
        Ok(())
    }

    fn power(&self, id: &str, op: PowerOp) -> Result<(), ComputeError> {
        let dir = self.existing_machine_dir(id)?;
        let machine_lock = self.machine_lock(id);
        let _guard = lock(&machine_lock);
        let running = || {
            self.live_run_state(&dir)
                .map(|_| ())
                .ok_or_else(|| ComputeError::Failed(format!("{op:?}: the machine is not running")))
        };
        let execute = |command: &str| -> Result<(), ComputeError> {
            running()?;
            self.qmp(&dir)?.execute(command, None).map_err(qmp_failure)?;
            Ok(())
        };
        match op {
            PowerOp::Start => self.start(id, &dir),
            PowerOp::Resume => match self.status(&dir) {
                Ok(DesktopStatus::Suspended) => execute("system_wakeup"),
                _ => execute("cont"),
            },
            PowerOp::Reboot | PowerOp::Reset => execute("system_reset"),
            PowerOp::Shutdown => {
                let outcome = self.shutdown(&dir);
                self.release(id);
                outcome
            }
            PowerOp::PowerOff => {
                self.force_stop(&dir);
                clear_run_state(&dir);
                self.release(id);
                Ok(())
            }
        }
    }

    fn new_ticket(&self, id: &str) -> Result<(), ComputeError> {
        let dir = self.existing_machine_dir(id)?;
        let machine_lock = self.machine_lock(id);
        let _guard = lock(&machine_lock);
        let Some(mut run) = self.live_run_state(&dir) else { return Ok(()) };
        run.spice_ticket = Secret::new(crate::random::token(18));
        // The new ticket is in force (and every session on the old one cut) before it
        // is written down: a failure between the two leaves no one able to use a
        // ticket the listing no longer shows.
        self.qmp(&dir)?
            .execute(
                "set_password",
                Some(serde_json::json!({
                    "protocol": "spice",
                    "password": run.spice_ticket.expose(),
                    "connected": "disconnect",
                })),
            )
            .map_err(qmp_failure)?;
        write_private_json(&dir.join(RUN_FILE), &run)
    }

    fn set_guest_account(&self, id: &str, account: &GuestAccount) -> Result<(), ComputeError> {
        let dir = self.existing_machine_dir(id)?;
        let machine_lock = self.machine_lock(id);
        let _guard = lock(&machine_lock);
        let mut spec: StoredSpec = read_json(&dir.join(SPEC_FILE))?;
        if spec.guest_account.is_none() {
            return Err(ComputeError::NoGuestAgent(id.to_owned()));
        }
        spec.guest_account = Some(account.clone());
        write_private_json(&dir.join(SPEC_FILE), &spec)?;
        if self.live_run_state(&dir).is_some() {
            self.set_guest_account_soon(id, &dir);
        }
        Ok(())
    }

    fn inspect(&self, id: &str) -> Result<MachineView, ComputeError> {
        let dir = self.existing_machine_dir(id)?;
        let Some(run) = self.live_run_state(&dir) else {
            self.release(id);
            return Ok(MachineView { status: DesktopStatus::Shutoff, display: None, address: None });
        };
        let status = self.status(&dir)?;
        let display = Display {
            spice_port: run.spice_port,
            spice_ticket: run.spice_ticket,
            rdp_port: run.rdp_port,
            spice_tls: run.spice_tls,
        };
        Ok(MachineView { status, display: Some(display), address: None })
    }

    fn machines(&self) -> Result<Vec<String>, ComputeError> {
        self.machine_ids()
    }

    fn reclaim_strays(&self) -> Result<usize, ComputeError> {
        orphans::reclaim(&self.config.state_dir, |id, pid| {
            let dir = self.machine_dir(id);
            dir.join(SPEC_FILE).is_file() && self.live_run_state(&dir).is_some_and(|run| run.pid == pid)
        })
    }
}

/// QEMU's user-mode network, IPv4 only. With `restrict=on` the guest reaches nothing,
/// neither the host nor beyond (its forwarded ports still take connections).
fn user_network(internet: bool) -> String {
    format!("user,id=net0,ipv6=off,restrict={}", if internet { "off" } else { "on" })
}

/// The devices a policy allows on top of the display: the SPICE agent's channel
/// (clipboard, and resizing the guest's screen to the viewer's window), a sound card
/// that plays through SPICE, and USB redirection ports on the machine's xHCI bus.
fn policy_devices(policy: &Policy) -> Vec<String> {
    let mut devices: Vec<&str> = vec![
        "-device",
        "virtio-serial-pci,id=virtio-serial0",
        "-chardev",
        "spicevmc,id=vdagent,name=vdagent",
        "-device",
        "virtserialport,chardev=vdagent,name=com.redhat.spice.0",
    ];
    if policy.enable_audio {
        devices.extend([
            "-audiodev",
            "spice,id=audio0",
            "-device",
            "ich9-intel-hda",
            "-device",
            "hda-duplex,audiodev=audio0",
        ]);
    }
    if policy.enable_usb {
        devices.extend([
            "-chardev",
            "spicevmc,id=usbredir1,name=usbredir",
            "-device",
            "usb-redir,chardev=usbredir1,bus=xhci.0",
            "-chardev",
            "spicevmc,id=usbredir2,name=usbredir",
            "-device",
            "usb-redir,chardev=usbredir2,bus=xhci.0",
        ]);
    }
    devices.into_iter().map(str::to_owned).collect()
}

/// The guest agent's channel: a virtio-serial port (on the bus `policy_devices`
/// always adds) that QEMU connects to `qga.sock`.
fn guest_agent_devices(dir: &Path) -> Vec<String> {
    let socket = dir.join(GUEST_AGENT_SOCKET);
    vec![
        "-chardev".into(),
        format!("socket,id=qga0,path={},server=on,wait=off", socket.to_string_lossy()),
        "-device".into(),
        "virtserialport,bus=virtio-serial0.0,chardev=qga0,name=org.qemu.guest_agent.0".into(),
    ]
}

/// What `qemu-img info` says of a base disk.
#[derive(Debug, Clone)]
struct ImageInfo {
    format: String,
    virtual_size: u64,
}

impl ImageInfo {
    fn read(qemu_img: &Path, disk: &Path) -> Result<Self, ComputeError> {
        if !disk.is_absolute() || !disk.is_file() {
            return Err(ComputeError::BadImage(format!("{} is not a file", disk.display())));
        }
        let output = Command::new(qemu_img)
            .args(["info", "--output=json", "-U"])
            .arg(disk)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ComputeError::Failed(format!("cannot run qemu-img: {e}")))?;
        if !output.status.success() {
            return Err(ComputeError::BadImage(format!(
                "{} is not a disk image qemu-img can read: {}",
                disk.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let info: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| ComputeError::Failed(format!("qemu-img info gave bad JSON: {e}")))?;
        let format = info["format"].as_str().unwrap_or_default().to_owned();
        // A raw file could be anything, a text file included; base disks are qcow2
        // (`qemu-img convert -O qcow2` makes one from anything else).
        if format != "qcow2" {
            return Err(ComputeError::BadImage(format!("{} is {format}, not a qcow2 disk image", disk.display())));
        }
        Ok(Self { format, virtual_size: info["virtual-size"].as_u64().unwrap_or(0) })
    }
}

/// Ids become directory names and QEMU option values.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A free-text value inside a QEMU option list, where a comma would start a new
/// option: printable ASCII without commas, at most 64 characters.
fn option_safe(text: &str) -> String {
    let cleaned: String =
        text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').filter(|c| *c != ',').take(64).collect();
    if cleaned.trim().is_empty() { "thindesk".to_owned() } else { cleaned }
}

/// True when `pid` is alive and is the QEMU serving `qmp_socket` (a pid alone could
/// have been reused by another process since).
fn process_is_our_qemu(pid: u32, qmp_socket: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let needle = qmp_socket.to_string_lossy();
    cmdline.split(|b| *b == 0).any(|argument| String::from_utf8_lossy(argument).contains(needle.as_ref()))
}

fn wait_for_exit(pid: u32, dir: &Path, deadline: Duration) -> bool {
    let start = Instant::now();
    let socket = dir.join(QMP_SOCKET);
    while process_is_our_qemu(pid, &socket) {
        if start.elapsed() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Waits (at most [`QUIT_GRACE`]) until every port can be bound on `address`.
fn wait_for_ports_free(address: IpAddr, ports: [Option<u16>; 2]) {
    let deadline = Instant::now() + QUIT_GRACE;
    let free = || ports.iter().flatten().all(|port| TcpListener::bind((address, *port)).is_ok());
    while !free() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes what a machine has only while it runs.
fn clear_run_state(dir: &Path) {
    clear_process_files(dir);
    let _ = std::fs::remove_dir_all(dir.join(TLS_DIR));
}

/// Removes what a QEMU process leaves, keeping the copy of the certificate for the
/// next attempt of the same start.
fn clear_process_files(dir: &Path) {
    for file in [RUN_FILE, PID_FILE, QMP_SOCKET, GUEST_AGENT_SOCKET] {
        let _ = std::fs::remove_file(dir.join(file));
    }
}

fn host_memory_mib() -> Result<u64, ComputeError> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|e| io_failure("reading /proc/meminfo", e))?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .ok_or_else(|| ComputeError::Failed("cannot find MemTotal in /proc/meminfo".into()))
}

fn create_private_dir(dir: &Path) -> Result<(), ComputeError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| io_failure("creating a machine directory", e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io_failure("restricting a machine directory", e))
}

/// Writes `value` as JSON readable only by the owner, atomically: a reader sees the
/// old file or the new one, never half of one.
fn write_private_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ComputeError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| ComputeError::Failed(e.to_string()))?;
    write_private(path, &text)
}

/// Writes `bytes` readable only by the owner, atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ComputeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| io_failure("writing machine state", e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io_failure("writing machine state", e))?;
    std::fs::rename(&partial, path).map_err(|e| io_failure("writing machine state", e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ComputeError> {
    let bytes = std::fs::read(path).map_err(|e| io_failure("reading machine state", e))?;
    serde_json::from_slice(&bytes).map_err(|e| ComputeError::Failed(format!("{} is damaged: {e}", path.display())))
}

fn io_failure(what: &str, error: std::io::Error) -> ComputeError {
    ComputeError::Failed(format!("{what}: {error}"))
}

fn qmp_failure(error: QmpError) -> ComputeError {
    ComputeError::Failed(error.to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_the_state_directory_are_refused() {
        assert!(valid_id("aZ09-_"));
        for bad in ["", "..", "a/b", "a,b", "a b", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn guests_without_internet_are_restricted_and_none_has_ipv6() {
        assert_eq!(user_network(false), "user,id=net0,ipv6=off,restrict=on");
        assert_eq!(user_network(true), "user,id=net0,ipv6=off,restrict=off");
    }

    /// A machine of 64 MiB, one CPU and no network, on a base disk that need not exist.
    fn small_spec(name: &str) -> StoredSpec {
        StoredSpec {
            name: name.into(),
            base_disk: "/images/base.qcow2".into(),
            vcpus: 1,
            ram_mib: 64,
            disk_gib: 1,
            internet: false,
            rdp: false,
            policy: Policy::default(),
            guest_account: None,
        }
    }

    #[test]
    fn a_driver_made_beside_a_machine_being_started_leaves_its_files() {
        // What the CLI does while a server starts a machine: QEMU's pid file and
        // socket exist, its run state does not yet.
        let dir = tempfile::tempdir().expect("dir");
        let config = QemuConfig { vm_memory_mib: Some(1024), ..QemuConfig::new(dir.path()) };
        let machine = config.state_dir.join("starting");
        create_private_dir(&machine).expect("dir");
        let spec = small_spec("starting");
        write_private_json(&machine.join(SPEC_FILE), &spec).expect("spec");
        for file in [PID_FILE, QMP_SOCKET] {
            std::fs::write(machine.join(file), b"").expect("file");
        }
        QemuCompute::new(config).expect("driver");
        assert!(machine.join(PID_FILE).exists() && machine.join(QMP_SOCKET).exists());
    }

    #[test]
    fn the_display_gets_a_tls_port_and_no_plain_one() {
        let dir = tempfile::tempdir().expect("dir");
        let config = QemuConfig { vm_memory_mib: Some(1024), ..QemuConfig::new(dir.path()) };
        let compute = QemuCompute::new(config).expect("driver");
        let spec = small_spec("lab");
        let claim = Claim { ram_mib: 64, spice_port: 5907, rdp_port: None, running: false };
        let machine = dir.path().join("vms/lab");
        let arguments = compute.qemu_arguments("lab", &machine, &spec, claim, Accel::Tcg, false);
        let spice = arguments.iter().skip_while(|a| *a != "-spice").nth(1).expect("-spice");
        let options: Vec<&str> = spice.split(',').collect();
        assert!(options.contains(&"tls-port=5907"), "{spice}");
        assert!(options.contains(&format!("x509-dir={}", machine.join("tls").display()).as_str()), "{spice}");
        assert!(!options.iter().any(|o| o.starts_with("port=")), "{spice}");
    }

    #[test]
    fn a_machine_started_before_spice_over_tls_shows_no_tls_until_its_next_start() {
        let old = r#"{"pid": 1, "spice_port": 5900, "rdp_port": null, "spice_ticket": "t"}"#;
        let run: RunState = serde_json::from_str(old).expect("a run.json from before");
        assert!(run.spice_tls.is_none());
    }

    #[test]
    fn names_cannot_inject_qemu_options() {
        assert_eq!(option_safe("exam,serial=evil"), "examserial=evil");
        assert_eq!(option_safe("  "), "thindesk");
        assert_eq!(option_safe("期末考试"), "thindesk");
        assert_eq!(option_safe(&"n".repeat(100)).len(), 64);
    }
}
