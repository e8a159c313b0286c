//! Compute drivers: what runs a desktop's virtual machine. Services speak to them only
//! through the [`Compute`] trait, so the rules never know whether QEMU, OpenStack or a
//! test double is underneath.
//!
//! Drivers are synchronous, like the store: they are called from blocking threads.

#[cfg(any(test, feature = "test-double"))]
pub mod double;

use thindesk_shared::DesktopStatus;

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
}

/// How a terminal reaches a running machine's display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    pub spice_port: u16,
    /// Per-machine SPICE ticket; never empty.
    pub spice_ticket: String,
    /// Host port forwarded to the guest's RDP port, for images that speak RDP.
    pub rdp_port: Option<u16>,
}

/// What the driver knows of one machine right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineView {
    pub status: DesktopStatus,
    pub display: Option<Display>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("no compute driver is configured on this server")]
    NotConfigured,
    #[error("the hypervisor has no machine {0}")]
    NoSuchMachine(String),
    #[error("the hypervisor failed: {0}")]
    Failed(String),
}

pub trait Compute: Send + Sync {
    /// A short name for logs and the status page: `qemu`, `none`, `test-double`.
    fn name(&self) -> &'static str;

    /// Performs `op` on the machine of desktop `desktop_id`.
    fn power(&self, desktop_id: &str, op: PowerOp) -> Result<(), ComputeError>;

    /// The machine's state and display as the hypervisor sees them.
    fn inspect(&self, desktop_id: &str) -> Result<MachineView, ComputeError>;
}

/// A server that has no hypervisor attached: it keeps and lists desktops, and answers
/// power actions with a 503 that says why.
#[derive(Debug, Default)]
pub struct NoCompute;

impl Compute for NoCompute {
    fn name(&self) -> &'static str {
        "none"
    }

    fn power(&self, _desktop_id: &str, _op: PowerOp) -> Result<(), ComputeError> {
        Err(ComputeError::NotConfigured)
    }

    fn inspect(&self, _desktop_id: &str) -> Result<MachineView, ComputeError> {
        Err(ComputeError::NotConfigured)
    }
}
