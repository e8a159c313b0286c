//! Desktops: who owns which, what a power action means in each state, and how a
//! terminal reaches the display.

use super::{FieldErrors, Principal, ServiceError, random_token, unix_now};
use crate::compute::{Compute, ComputeError, MachineView, PowerOp};
use crate::store::{DesktopRecord, NewDesktop, Store};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use thindesk_shared::{ConnectionInfo, ConnectionType, Desktop, DesktopAction, DesktopStatus, Policy};

/// What an administrator decides when creating a desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopSpec {
    pub name: String,
    pub owner: String,
    pub os_username: String,
    pub os_password: String,
    pub default_connection_type: ConnectionType,
    pub policy: Policy,
}

pub struct Desktops {
    store: Arc<Store>,
    compute: Arc<dyn Compute>,
    /// The address terminals use to reach this host's desktops.
    public_address: String,
    /// Desktops with an action under way. A second action on the same desktop is
    /// refused rather than queued: a student who clicks twice should not reboot twice.
    busy: Mutex<HashSet<String>>,
}

/// Marks a desktop busy for as long as it lives.
struct BusyGuard<'a> {
    busy: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.id);
    }
}

impl Desktops {
    pub fn new(store: Arc<Store>, compute: Arc<dyn Compute>, public_address: String) -> Self {
        Self { store, compute, public_address, busy: Mutex::new(HashSet::new()) }
    }

    pub fn compute_name(&self) -> &'static str {
        self.compute.name()
    }

    pub fn create(&self, spec: &DesktopSpec) -> Result<String, ServiceError> {
        let mut errors = FieldErrors::default();
        if spec.name.trim().is_empty() || spec.name.chars().count() > 64 {
            errors.add("name", "must be 1 to 64 characters long");
        }
        if spec.os_username.is_empty() {
            errors.add("os_username", "is required");
        }
        errors.into_result(())?;
        let owner = self
            .store
            .user_by_name(&spec.owner)?
            .ok_or_else(|| ServiceError::NotFound(format!("user {:?}", spec.owner)))?;
        let id = random_token(12);
        self.store.insert_desktop(
            &NewDesktop {
                id: &id,
                name: spec.name.trim(),
                owner_id: owner.id,
                status: DesktopStatus::Shutoff,
                os_username: &spec.os_username,
                os_password: &spec.os_password,
                default_connection_type: spec.default_connection_type,
                policy: spec.policy,
            },
            unix_now(),
        )?;
        Ok(id)
    }

    /// The caller's own desktops, with their state as the hypervisor sees it now.
    pub fn list_for(&self, principal: &Principal) -> Result<Vec<Desktop>, ServiceError> {
        self.store
            .desktops_of(principal.user_id)?
            .into_iter()
            .map(|record| {
                let view = self.observe(&record)?;
                Ok(self.to_wire(record, view))
            })
            .collect()
    }

    /// Performs a user's action. A desktop that is neither the caller's nor visible to
    /// an administrator does not exist as far as the caller can tell.
    pub fn act(&self, principal: &Principal, desktop_id: &str, action: DesktopAction) -> Result<(), ServiceError> {
        let record = self.store.desktop(desktop_id)?.ok_or(ServiceError::DesktopNotFound)?;
        if record.owner_id != principal.user_id && !principal.is_admin {
            return Err(ServiceError::DesktopNotFound);
        }
        let _guard = self.claim(&record.id)?;
        let current = self.observe(&record)?.map_or(record.status, |view| view.status);
        let (ops, outcome) = plan(action, current);
        for op in ops {
            self.compute.power(&record.id, *op)?;
        }
        if outcome != record.status {
            self.store.set_desktop_status(&record.id, outcome)?;
        }
        tracing::info!(desktop = %record.id, user = %principal.name, %action, from = %current, to = %outcome, "desktop action");
        Ok(())
    }

    fn claim(&self, id: &str) -> Result<BusyGuard<'_>, ServiceError> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if !busy.insert(id.to_owned()) {
            return Err(ServiceError::DesktopBusy);
        }
        Ok(BusyGuard { busy: &self.busy, id: id.to_owned() })
    }

    /// Asks the hypervisor about a desktop and keeps the stored status in step. A
    /// server without a hypervisor, or a machine it does not know, leaves the stored
    /// status as it is.
    fn observe(&self, record: &DesktopRecord) -> Result<Option<MachineView>, ServiceError> {
        match self.compute.inspect(&record.id) {
            Ok(view) => {
                if view.status != record.status {
                    self.store.set_desktop_status(&record.id, view.status)?;
                }
                Ok(Some(view))
            }
            Err(ComputeError::NotConfigured | ComputeError::NoSuchMachine(_)) => Ok(None),
            Err(error) => {
                tracing::warn!(desktop = %record.id, %error, "cannot inspect desktop; showing its last known status");
                Ok(None)
            }
        }
    }

    fn to_wire(&self, record: DesktopRecord, view: Option<MachineView>) -> Desktop {
        let status = view.as_ref().map_or(record.status, |v| v.status);
        let mut connection_info = Vec::new();
        if let Some(display) = view.and_then(|v| v.display) {
            if let Some(rdp_port) = display.rdp_port {
                connection_info.push(ConnectionInfo {
                    kind: ConnectionType::Rdp,
                    ip: self.public_address.clone(),
                    port: Some(rdp_port.to_string()),
                    password: None,
                });
            }
            connection_info.push(ConnectionInfo {
                kind: ConnectionType::Spice,
                ip: self.public_address.clone(),
                port: Some(display.spice_port.to_string()),
                password: Some(display.spice_ticket),
            });
        }
        Desktop {
            id: record.id,
            name: record.name,
            status,
            os_username: record.os_username,
            os_password: record.os_password,
            default_connection_type: record.default_connection_type,
            policy: record.policy,
            connection_info,
        }
    }
}

/// The driver operations an action needs from a given state, and the state after them.
fn plan(action: DesktopAction, current: DesktopStatus) -> (&'static [PowerOp], DesktopStatus) {
    use DesktopAction as A;
    use DesktopStatus as S;
    use PowerOp as P;
    let ops: &'static [PowerOp] = match (action, current) {
        (A::Shutdown, S::Shutoff) => &[],
        (A::Shutdown, _) => &[P::Shutdown],
        (A::Resume | A::Start, S::Active) => &[],
        (A::Resume | A::Start, S::Paused | S::Suspended) => &[P::Resume],
        (A::Reboot, S::Active | S::Reboot) => &[P::Reboot],
        (A::Reset, S::Active | S::Reboot) => &[P::Reset],
        (A::Reboot, S::Paused | S::Suspended) => &[P::Resume, P::Reboot],
        (A::Reset, S::Paused | S::Suspended) => &[P::Resume, P::Reset],
        (A::Resume | A::Start | A::Reboot | A::Reset, S::Shutoff | S::Error | S::Build) => &[P::Start],
        (A::Resume | A::Start, S::Reboot) => &[],
    };
    let outcome = if action == A::Shutdown { S::Shutoff } else { S::Active };
    (ops, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::double::TestCompute;

    #[test]
    fn every_action_from_every_state_ends_where_the_user_expects() {
        for action in DesktopAction::ALL {
            for state in DesktopStatus::ALL {
                let (_, outcome) = plan(action, state);
                let expected =
                    if action == DesktopAction::Shutdown { DesktopStatus::Shutoff } else { DesktopStatus::Active };
                assert_eq!(outcome, expected, "{action} from {state}");
            }
        }
        assert_eq!(plan(DesktopAction::Reboot, DesktopStatus::Shutoff).0, &[PowerOp::Start]);
        assert_eq!(plan(DesktopAction::Shutdown, DesktopStatus::Shutoff).0, &[] as &[PowerOp]);
    }

    fn setup() -> (tempfile::TempDir, Arc<TestCompute>, Desktops, Principal, Principal) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let owner = store.insert_user("owner", "h", false, 0).expect("user");
        let other = store.insert_user("other", "h", false, 0).expect("user");
        let compute = Arc::new(TestCompute::new());
        let desktops = Desktops::new(store, compute.clone(), "10.0.0.1".into());
        let principal =
            |id, name: &str| Principal { user_id: id, name: name.into(), is_admin: false, token_hash: None };
        (dir, compute, desktops, principal(owner, "owner"), principal(other, "other"))
    }

    fn spec() -> DesktopSpec {
        DesktopSpec {
            name: "lab".into(),
            owner: "owner".into(),
            os_username: "student".into(),
            os_password: "pw".into(),
            default_connection_type: ConnectionType::Spice,
            policy: Policy::default(),
        }
    }

    #[test]
    fn a_started_desktop_lists_its_spice_endpoint_with_a_ticket() {
        let (_dir, _compute, desktops, owner, _) = setup();
        let id = desktops.create(&spec()).expect("create");
        assert!(desktops.list_for(&owner).expect("list")[0].connection_info.is_empty());
        desktops.act(&owner, &id, DesktopAction::Resume).expect("resume");
        let listed = desktops.list_for(&owner).expect("list");
        assert_eq!(listed[0].status, DesktopStatus::Active);
        let spice = &listed[0].connection_info[0];
        assert_eq!(spice.kind, ConnectionType::Spice);
        assert_eq!(spice.ip, "10.0.0.1");
        assert!(spice.password.as_deref().is_some_and(|p| !p.is_empty()));
    }

    #[test]
    fn someone_elses_desktop_does_not_exist() {
        let (_dir, compute, desktops, _, other) = setup();
        let id = desktops.create(&spec()).expect("create");
        assert!(matches!(desktops.act(&other, &id, DesktopAction::Resume), Err(ServiceError::DesktopNotFound)));
        assert!(desktops.list_for(&other).expect("list").is_empty());
        assert!(compute.operations().is_empty());
    }
}
