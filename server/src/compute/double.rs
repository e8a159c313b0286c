//! An in-memory hypervisor for tests of the rules above the driver. It follows the
//! state machine a real one would and records every operation, so tests can assert
//! what the service asked for. Never used by the shipped server.

use super::{Compute, ComputeError, Display, GuestAccount, MachineSpec, MachineView, PowerOp, SpiceTls};
use std::collections::HashMap;
use std::sync::Mutex;
use thindesk_shared::{DesktopStatus, Secret};

/// What the double's displays say their authority is (no display listens).
pub const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nVGVzdENvbXB1dGU=\n-----END CERTIFICATE-----\n";

#[derive(Debug, Default)]
pub struct TestCompute {
    machines: Mutex<HashMap<String, DesktopStatus>>,
    /// Machines defined through [`Compute::define`], by id.
    defined: Mutex<HashMap<String, MachineSpec>>,
    log: Mutex<Vec<(String, PowerOp)>>,
    /// Which ticket each machine is on (1 until a new one is asked for).
    tickets: Mutex<HashMap<String, u32>>,
    failing: Mutex<bool>,
}

impl TestCompute {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every operation performed so far, in order.
    pub fn operations(&self) -> Vec<(String, PowerOp)> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Makes every later operation fail, as a broken hypervisor would.
    pub fn set_failing(&self, failing: bool) {
        if let Ok(mut flag) = self.failing.lock() {
            *flag = failing;
        }
    }

    /// The spec a machine was defined with, if it is defined.
    pub fn spec(&self, id: &str) -> Option<MachineSpec> {
        self.defined.lock().ok().and_then(|defined| defined.get(id).cloned())
    }

    /// Puts a machine into `status` as if something outside thindesk had done it (a
    /// guest suspending itself, an operator pausing it).
    pub fn force_status(&self, desktop_id: &str, status: DesktopStatus) {
        if let Ok(mut machines) = self.machines.lock() {
            machines.insert(desktop_id.to_owned(), status);
        }
    }

    fn check_failing(&self) -> Result<(), ComputeError> {
        if self.failing.lock().map(|f| *f).unwrap_or(false) {
            return Err(ComputeError::Failed("the test double was told to fail".into()));
        }
        Ok(())
    }

    /// `ticket-ID`, then `ticket-ID-2`, ... after each new ticket.
    fn display_for(&self, desktop_id: &str) -> Display {
        let offset = desktop_id.bytes().fold(0u16, |acc, b| acc.wrapping_mul(31).wrapping_add(u16::from(b))) % 1000;
        let generation = self.tickets.lock().map(|t| t.get(desktop_id).copied().unwrap_or(1)).unwrap_or(1);
        let ticket =
            if generation == 1 { format!("ticket-{desktop_id}") } else { format!("ticket-{desktop_id}-{generation}") };
        // Machines of RDP images have an RDP port too, as the QEMU driver gives them.
        let rdp = self.spec(desktop_id).is_some_and(|spec| spec.rdp);
        Display {
            spice_port: 5900 + offset,
            spice_ticket: Secret::new(ticket),
            rdp_port: rdp.then_some(3389 + offset),
            spice_tls: Some(SpiceTls { ca: TEST_CA.into(), host_subject: "O=thindesk,CN=test double".into() }),
        }
    }
}

impl Compute for TestCompute {
    fn name(&self) -> &'static str {
        "test-double"
    }

    fn define(&self, spec: &MachineSpec) -> Result<(), ComputeError> {
        self.check_failing()?;
        let mut defined = self.defined.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        if defined.contains_key(&spec.id) {
            return Err(ComputeError::AlreadyDefined(spec.id.clone()));
        }
        defined.insert(spec.id.clone(), spec.clone());
        Ok(())
    }

    fn destroy(&self, id: &str) -> Result<(), ComputeError> {
        self.check_failing()?;
        let mut defined = self.defined.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        if defined.remove(id).is_none() {
            return Err(ComputeError::NoSuchMachine(id.to_owned()));
        }
        if let Ok(mut machines) = self.machines.lock() {
            machines.remove(id);
        }
        Ok(())
    }

    fn power(&self, desktop_id: &str, op: PowerOp) -> Result<(), ComputeError> {
        self.check_failing()?;
        let mut machines = self.machines.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        let current = machines.get(desktop_id).copied().unwrap_or(DesktopStatus::Shutoff);
        let next = match (op, current) {
            (PowerOp::Start, DesktopStatus::Shutoff) => DesktopStatus::Active,
            (PowerOp::Resume, DesktopStatus::Paused | DesktopStatus::Suspended) => DesktopStatus::Active,
            (PowerOp::Reboot | PowerOp::Reset, DesktopStatus::Active) => DesktopStatus::Active,
            (PowerOp::Shutdown, DesktopStatus::Active | DesktopStatus::Paused | DesktopStatus::Suspended) => {
                DesktopStatus::Shutoff
            }
            (PowerOp::PowerOff, _) => DesktopStatus::Shutoff,
            (op, state) => {
                return Err(ComputeError::Failed(format!("{op:?} is not possible in state {state}")));
            }
        };
        machines.insert(desktop_id.to_owned(), next);
        drop(machines);
        if let Ok(mut log) = self.log.lock() {
            log.push((desktop_id.to_owned(), op));
        }
        Ok(())
    }

    fn new_ticket(&self, desktop_id: &str) -> Result<(), ComputeError> {
        self.check_failing()?;
        let running = self
            .machines
            .lock()
            .map(|m| m.get(desktop_id).is_some_and(|s| *s != DesktopStatus::Shutoff))
            .unwrap_or(false);
        if running && let Ok(mut tickets) = self.tickets.lock() {
            *tickets.entry(desktop_id.to_owned()).or_insert(1) += 1;
        }
        Ok(())
    }

    fn inspect(&self, desktop_id: &str) -> Result<MachineView, ComputeError> {
        let machines = self.machines.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        let status = machines.get(desktop_id).copied().unwrap_or(DesktopStatus::Shutoff);
        let display = (status != DesktopStatus::Shutoff).then(|| self.display_for(desktop_id));
        Ok(MachineView { status, display, address: None })
    }

    fn machines(&self) -> Result<Vec<String>, ComputeError> {
        self.check_failing()?;
        let defined = self.defined.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        let mut ids: Vec<String> = defined.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    fn set_guest_account(&self, desktop_id: &str, account: &GuestAccount) -> Result<(), ComputeError> {
        self.check_failing()?;
        let mut defined = self.defined.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        let spec = defined.get_mut(desktop_id).ok_or_else(|| ComputeError::NoSuchMachine(desktop_id.to_owned()))?;
        match &mut spec.guest_account {
            Some(current) => {
                *current = account.clone();
                Ok(())
            }
            None => Err(ComputeError::NoGuestAgent(desktop_id.to_owned())),
        }
    }
}
