//! An in-memory hypervisor for tests of the rules above the driver. It follows the
//! state machine a real one would and records every operation, so tests can assert
//! what the service asked for. Never used by the shipped server.

use super::{Compute, ComputeError, Display, MachineView, PowerOp};
use std::collections::HashMap;
use std::sync::Mutex;
use thindesk_shared::DesktopStatus;

#[derive(Debug, Default)]
pub struct TestCompute {
    machines: Mutex<HashMap<String, DesktopStatus>>,
    log: Mutex<Vec<(String, PowerOp)>>,
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

    /// Puts a machine into `status` as if something outside thindesk had done it (a
    /// guest suspending itself, an operator pausing it).
    pub fn force_status(&self, desktop_id: &str, status: DesktopStatus) {
        if let Ok(mut machines) = self.machines.lock() {
            machines.insert(desktop_id.to_owned(), status);
        }
    }

    fn display_for(desktop_id: &str) -> Display {
        let offset = desktop_id.bytes().fold(0u16, |acc, b| acc.wrapping_mul(31).wrapping_add(u16::from(b))) % 1000;
        Display { spice_port: 5900 + offset, spice_ticket: format!("ticket-{desktop_id}"), rdp_port: None }
    }
}

impl Compute for TestCompute {
    fn name(&self) -> &'static str {
        "test-double"
    }

    fn power(&self, desktop_id: &str, op: PowerOp) -> Result<(), ComputeError> {
        if self.failing.lock().map(|f| *f).unwrap_or(false) {
            return Err(ComputeError::Failed("the test double was told to fail".into()));
        }
        let mut machines = self.machines.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        let current = machines.get(desktop_id).copied().unwrap_or(DesktopStatus::Shutoff);
        let next = match (op, current) {
            (PowerOp::Start, DesktopStatus::Shutoff) => DesktopStatus::Active,
            (PowerOp::Resume, DesktopStatus::Paused | DesktopStatus::Suspended) => DesktopStatus::Active,
            (PowerOp::Reboot | PowerOp::Reset, DesktopStatus::Active) => DesktopStatus::Active,
            (PowerOp::Shutdown, DesktopStatus::Active | DesktopStatus::Paused | DesktopStatus::Suspended) => {
                DesktopStatus::Shutoff
            }
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

    fn inspect(&self, desktop_id: &str) -> Result<MachineView, ComputeError> {
        let machines = self.machines.lock().map_err(|_| ComputeError::Failed("poisoned".into()))?;
        let status = machines.get(desktop_id).copied().unwrap_or(DesktopStatus::Shutoff);
        let display = (status != DesktopStatus::Shutoff).then(|| Self::display_for(desktop_id));
        Ok(MachineView { status, display })
    }
}
