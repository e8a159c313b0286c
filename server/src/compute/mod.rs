//! Compute drivers: what runs a desktop's virtual machine. Services speak to them only
//! through the [`Compute`] trait, so the rules never know whether QEMU, OpenStack or a
//! test double is underneath.
//!
//! Drivers are synchronous, like the store: they are called from blocking threads.

#[cfg(any(test, feature = "test-double"))]
pub mod double;
pub mod openstack;
pub mod qemu;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use thindesk_shared::{DesktopStatus, Policy, Secret};

/// A power operation, as the driver performs it. The service decides which one a
/// user's action needs from the desktop's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerOp {
    /// Boot a machine that is off.
    Start,
    /// Continue a machine that is paused or suspended.
    Resume,
    /// Restart a running machine.
    Reboot,
    /// Ask the guest to power off; force it off if it has not within the driver's
    /// deadline.
    Shutdown,
    /// Hard reset.
    Reset,
    /// Off at once, like pulling the plug: for a guest that cannot answer (stopped on
    /// an error) or a machine in a state nothing else gets it out of.
    PowerOff,
}

/// How a terminal reaches a running machine's display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    /// With [`Display::spice_tls`], SPICE's TLS port (and there is no other).
    pub spice_port: u16,
    /// Per-machine SPICE ticket; never empty.
    pub spice_ticket: Secret,
    /// Host port forwarded to the guest's RDP port, for images that speak RDP.
    pub rdp_port: Option<u16>,
    /// What a viewer must check of the display's certificate: `None` for a display
    /// without TLS (a machine started by a server from before SPICE over TLS, until
    /// its next start; the test double).
    pub spice_tls: Option<SpiceTls>,
}

/// The certificate a machine's SPICE display presents, as a viewer checks it: the
/// authority that signed it and its subject, both as they were when the machine
/// started (a certificate imported later reaches the display at its next start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceTls {
    /// The authority's certificate, PEM.
    pub ca: String,
    /// The display certificate's subject, as virt-viewer's `host-subject` takes it.
    pub host_subject: String,
}

/// What the driver knows of one machine right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineView {
    pub status: DesktopStatus,
    pub display: Option<Display>,
    /// The guest's own address on its network, where the driver knows one (a cloud's
    /// fixed address). `None`: the guest is reached through the host's address.
    pub address: Option<String>,
}

/// The images and flavors a driver's own platform keeps, for a server whose catalogue
/// is the cloud's (Glance and Nova) rather than the administrator's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformCatalogue {
    pub images: Vec<PlatformImage>,
    pub flavors: Vec<PlatformFlavor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    pub name: String,
    /// Where the platform keeps it (`glance:ID`), shown where a local image shows its
    /// base disk.
    pub location: String,
    /// The image's login, from its properties (`os_admin_user`, the account Nova sets
    /// passwords of).
    pub os_username: String,
    /// The guest runs the QEMU guest agent (`hw_qemu_guest_agent=yes`), so each
    /// desktop's password can be set in it.
    pub guest_agent: bool,
    pub rdp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFlavor {
    pub name: String,
    pub vcpus: u32,
    pub ram_mib: u32,
    pub disk_gib: u32,
}

/// An account inside the guest whose password the driver sets, through the QEMU
/// guest agent, each time the machine starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestAccount {
    pub username: String,
    pub password: Secret,
}

/// Everything a driver needs to define a machine. The machine's id is the desktop's or
/// cloud instance's id; the driver keeps its own state under that id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSpec {
    pub id: String,
    /// Shown to the guest (the demo image prints it) and in logs; not unique.
    pub name: String,
    /// The image's base disk; the machine gets a copy-on-write overlay on it.
    pub base_disk: PathBuf,
    /// The catalogue's name of the image, for a driver whose catalogue is the cloud's
    /// own (OpenStack finds its Glance image by it; QEMU uses `base_disk`).
    pub image: String,
    /// The catalogue's name of the flavor, likewise (a Nova flavor); QEMU uses the
    /// sizes below.
    pub flavor: String,
    pub vcpus: u32,
    pub ram_mib: u32,
    /// The overlay's virtual size; never smaller than the base disk.
    pub disk_gib: u32,
    /// `false` cuts the machine off from the host and every outside network.
    pub internet: bool,
    /// Forward a host port to the guest's RDP port (3389), for Windows images.
    pub rdp: bool,
    /// What the display may carry between terminal and guest. Enforced by the
    /// hypervisor, not only by the viewer: a student who edits a connection file
    /// gets no channel the policy does not allow.
    pub policy: Policy,
    /// For images that run the QEMU guest agent: the account whose password is set
    /// in the guest at every start (each desktop has its own). `None`: no agent
    /// channel; the guest keeps the image's passwords.
    pub guest_account: Option<GuestAccount>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("no compute driver is configured on this server")]
    NotConfigured,
    #[error("the hypervisor has no machine {0}")]
    NoSuchMachine(String),
    #[error("a machine {0} is already defined")]
    AlreadyDefined(String),
    #[error("the image's disk cannot be used: {0}")]
    BadImage(String),
    /// The host cannot take this machine (memory, ports); nothing was started.
    #[error("the host has no room for this machine: {0}")]
    NoCapacity(String),
    #[error("the machine {0} has no guest agent")]
    NoGuestAgent(String),
    /// The platform underneath (a cloud) refused or failed the machine and said why
    /// in words fit for the caller (Nova's fault message), nothing secret in them.
    #[error("the platform failed the machine: {0}")]
    PlatformFault(String),
    /// The platform cannot be used as configured: its credentials, its address, a
    /// network or group the configuration names. What is wrong, without secrets.
    #[error("the platform's configuration is wrong: {0}")]
    PlatformConfig(String),
    #[error("the hypervisor failed: {0}")]
    Failed(String),
}

pub trait Compute: Send + Sync {
    /// A short name for logs and the status page: `qemu`, `none`, `test-double`.
    fn name(&self) -> &'static str;

    /// Defines a machine (its disk overlay and settings) without starting it.
    fn define(&self, spec: &MachineSpec) -> Result<(), ComputeError>;

    /// Defines a machine and starts it: what a cloud API launch needs. A driver whose
    /// platform boots what it creates (Nova) does it in one step rather than boot,
    /// stop and boot again. On failure, what was defined may be left for the caller
    /// to destroy.
    fn define_and_start(&self, spec: &MachineSpec) -> Result<(), ComputeError> {
        self.define(spec)?;
        self.power(&spec.id, PowerOp::Start)
    }

    /// Stops the machine if it runs and frees everything it held: process, disk
    /// overlay, ports. Unknown machines are [`ComputeError::NoSuchMachine`].
    fn destroy(&self, id: &str) -> Result<(), ComputeError>;

    /// Performs `op` on the machine of desktop `desktop_id`.
    fn power(&self, desktop_id: &str, op: PowerOp) -> Result<(), ComputeError>;

    /// The machine's state and display as the hypervisor sees them.
    fn inspect(&self, desktop_id: &str) -> Result<MachineView, ComputeError>;

    /// Replaces a running machine's display ticket and cuts every open display
    /// session, so that only whoever learns the new one gets in. A machine that is
    /// not running gets a fresh ticket at its next start anyway.
    fn new_ticket(&self, desktop_id: &str) -> Result<(), ComputeError>;

    /// The ids of every machine defined, running or not.
    fn machines(&self) -> Result<Vec<String>, ComputeError>;

    /// Stops every process and removes every file of the driver's that belongs to no
    /// machine it knows: what a crash left between starting a process and writing it
    /// down, or half-way through defining or destroying a machine. Afterwards every
    /// running machine counts against the host's limits and is in [`Compute::machines`].
    /// Only while nothing else defines or starts machines on the same state: at server
    /// start, before serving. Returns how many strays were found.
    fn reclaim_strays(&self) -> Result<usize, ComputeError> {
        Ok(0)
    }

    /// Replaces the guest account whose password the machine gets at each start. A
    /// running machine gets it now too, as soon as its guest agent answers (the call
    /// does not wait for that). [`ComputeError::NoGuestAgent`] for a machine defined
    /// without an account.
    fn set_guest_account(&self, desktop_id: &str, account: &GuestAccount) -> Result<(), ComputeError>;

    /// The images and flavors of the platform underneath, when it keeps its own
    /// (a cloud): the server's catalogue then follows it. `None` (the default): the
    /// administrator's catalogue is the only one (QEMU runs whatever disk it is given).
    fn platform_catalogue(&self) -> Result<Option<PlatformCatalogue>, ComputeError> {
        Ok(None)
    }

    /// Whether the driver keeps guest accounts in memory only (a cloud driver keeps
    /// no secret on this host): a starting server then hands each machine's account
    /// over again with [`Compute::set_guest_account`].
    fn guest_accounts_in_memory(&self) -> bool {
        false
    }

    /// Whether [`Compute::platform_catalogue`] answers with one (without asking).
    fn has_platform_catalogue(&self) -> bool {
        false
    }

    /// Where this driver keeps its machines, for the console (`OpenStack cloud X,
    /// project Y`); `None` for this host.
    fn location(&self) -> Option<String> {
        None
    }
}

/// A server that has no hypervisor attached: it keeps and lists desktops, and answers
/// power actions with a 503 that says why.
#[derive(Debug, Default)]
pub struct NoCompute;

impl Compute for NoCompute {
    fn name(&self) -> &'static str {
        "none"
    }

    fn define(&self, _spec: &MachineSpec) -> Result<(), ComputeError> {
        Err(ComputeError::NotConfigured)
    }

    fn destroy(&self, _id: &str) -> Result<(), ComputeError> {
        Err(ComputeError::NotConfigured)
    }

    fn power(&self, _desktop_id: &str, _op: PowerOp) -> Result<(), ComputeError> {
        Err(ComputeError::NotConfigured)
    }

    fn new_ticket(&self, _desktop_id: &str) -> Result<(), ComputeError> {
        Err(ComputeError::NotConfigured)
    }

    fn inspect(&self, _desktop_id: &str) -> Result<MachineView, ComputeError> {
        Err(ComputeError::NotConfigured)
    }

    fn machines(&self) -> Result<Vec<String>, ComputeError> {
        Err(ComputeError::NotConfigured)
    }

    fn set_guest_account(&self, _desktop_id: &str, _account: &GuestAccount) -> Result<(), ComputeError> {
        Err(ComputeError::NotConfigured)
    }
}
