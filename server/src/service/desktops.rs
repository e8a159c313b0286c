//! Desktops: who owns which, what a power action means in each state, and how a
//! terminal reaches the display. (Over 600 lines because its tests write out every
//! action in every state by hand.)

use super::audit::{Actor, Audit};
use super::status::{Forgetting, StatusCache};
use super::{FieldErrors, Principal, ServiceError, random_token, unix_now};
use crate::compute::{Compute, ComputeError, GuestAccount, MachineView, PowerOp};
use crate::store::{DesktopRecord, NewDesktop, Phase, Store};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thindesk_shared::admin::DesktopSummary;
use thindesk_shared::{
    ConnectionInfo, ConnectionType, Desktop, DesktopAction, DesktopSize, DesktopStatus, Policy, Secret,
};

/// What an administrator decides when creating a desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopSpec {
    pub name: String,
    pub owner: String,
    /// `None`: the image's.
    pub os_username: Option<String>,
    /// `None`: the image's.
    pub os_password: Option<Secret>,
    /// `None`: the image's, or SPICE for a desktop without an image.
    pub default_connection_type: Option<ConnectionType>,
    pub policy: Policy,
    /// Catalogue image and flavor, by name; both or neither. With them, the desktop's
    /// machine is defined on the hypervisor as the desktop is created.
    pub image: Option<String>,
    pub flavor: Option<String>,
}

impl DesktopSpec {
    /// `owner`'s desktop `name` from a catalogue image and flavor, with the image's
    /// login and connection type and the default policy.
    pub fn from_catalogue(name: &str, owner: &str, image: &str, flavor: &str) -> Self {
        Self {
            name: name.to_owned(),
            owner: owner.to_owned(),
            os_username: None,
            os_password: None,
            default_connection_type: None,
            policy: Policy::default(),
            image: Some(image.to_owned()),
            flavor: Some(flavor.to_owned()),
        }
    }
}

/// Who gets a desktop when a class is given one each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// These users, by name.
    Users(Vec<String>),
    /// Every user who is not an administrator.
    AllStudents,
}

/// One user's outcome when a class is given desktops.
#[derive(Debug)]
pub struct ClassOutcome {
    pub user: String,
    pub result: Result<String, ServiceError>,
}

pub struct Desktops {
    store: Arc<Store>,
    audit: Audit,
    compute: Arc<dyn Compute>,
    /// The address terminals use to reach this host's desktops.
    public_address: String,
    /// Desktops with an action under way. A second action on the same desktop is
    /// refused rather than queued: a student who clicks twice should not reboot twice.
    busy: Mutex<HashSet<String>>,
    /// The machines' last views, for listings (`status.rs`).
    status: StatusCache,
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
    /// `status_ttl`: how long listings may use a machine's last view (zero: never).
    pub fn new(store: Arc<Store>, compute: Arc<dyn Compute>, public_address: String, status_ttl: Duration) -> Self {
        Self {
            audit: Audit::new(store.clone()),
            store,
            compute,
            public_address,
            busy: Mutex::new(HashSet::new()),
            status: StatusCache::new(status_ttl),
        }
    }

    pub fn compute_name(&self) -> &'static str {
        self.compute.name()
    }

    /// Where the machines live, when not on this host (the console shows it).
    pub fn location(&self) -> Option<String> {
        self.compute.location()
    }

    /// Creates a desktop. With an image and a flavor, its machine is defined on the
    /// hypervisor too (id = the desktop's id, internet allowed, RDP forwarded for RDP
    /// images), and the OS account and connection type default to the image's; if the
    /// hypervisor refuses, the desktop is not kept. Such a desktop is recorded
    /// `Pending` before its machine is defined and `Ready` after, so a server killed
    /// in between leaves nothing the next server does not undo (`service::recovery`).
    pub fn create(&self, by: &Actor, spec: &DesktopSpec) -> Result<String, ServiceError> {
        let mut errors = FieldErrors::default();
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            errors.add("name", "must be 1 to 64 characters long");
        }
        let (image, flavor) = match (&spec.image, &spec.flavor) {
            (None, None) => (None, None),
            (Some(image_name), Some(flavor_name)) => {
                let image = self.store.image_by_name(image_name)?;
                if image.is_none() {
                    errors.add("image", format!("there is no image named {image_name:?}"));
                }
                let flavor = self.store.flavor_by_name(flavor_name)?;
                if flavor.is_none() {
                    errors.add("flavor", format!("there is no flavor named {flavor_name:?}"));
                }
                (image, flavor)
            }
            (Some(_), None) => {
                errors.add("flavor", "is required with an image");
                (None, None)
            }
            (None, Some(_)) => {
                errors.add("image", "is required with a flavor");
                (None, None)
            }
        };
        let os_username = spec.os_username.clone().or_else(|| image.as_ref().map(|i| i.os_username.clone()));
        let os_username = os_username.unwrap_or_default();
        if os_username.is_empty() {
            errors.add("os_username", if image.is_some() { "is required: the image has none" } else { "is required" });
        }
        // An image with a guest agent gets each desktop its own password; without
        // one, the guest only knows the image's.
        let os_password = spec
            .os_password
            .clone()
            .or_else(|| image.as_ref().map(|i| if i.guest_agent { new_os_password() } else { i.os_password.clone() }));
        let default_connection_type = spec
            .default_connection_type
            .or(image.as_ref().map(|i| i.default_connection_type))
            .unwrap_or(ConnectionType::Spice);
        errors.into_result(())?;
        let owner = self
            .store
            .user_by_name(&spec.owner)?
            .ok_or_else(|| ServiceError::NotFound(format!("user {:?}", spec.owner)))?;
        let id = random_token(12);
        self.store.insert_desktop(
            &NewDesktop {
                id: &id,
                name,
                owner_id: owner.id,
                status: DesktopStatus::Shutoff,
                os_username: &os_username,
                os_password: os_password.as_ref().unwrap_or(&Secret::default()),
                default_connection_type,
                policy: spec.policy,
                image_id: image.as_ref().map(|i| i.id),
                flavor_id: flavor.as_ref().map(|f| f.id),
                phase: if image.is_some() { Phase::Pending } else { Phase::Ready },
            },
            unix_now(),
        )?;
        if let (Some(image), Some(flavor)) = (image, flavor) {
            let account = os_password.map(|password| GuestAccount { username: os_username.clone(), password });
            let machine = super::catalogue::machine_spec(&id, name, &image, &flavor, true, spec.policy, account);
            if let Err(error) = self.compute.define(&machine) {
                if let Err(cleanup) = self.store.delete_desktop(&id) {
                    tracing::error!(desktop = %id, error = %cleanup, "cannot remove a desktop whose machine was refused");
                }
                return Err(error.into());
            }
        }
        // Audited before the record turns `Ready`, so as little as can be lies between
        // that and the answer.
        let detail = format!(
            "{name:?} for {}, image {}, flavor {}",
            owner.name,
            spec.image.as_deref().unwrap_or("-"),
            spec.flavor.as_deref().unwrap_or("-")
        );
        self.audit.record(by, "desktop.create", &id, &detail);
        if spec.image.is_some() && !self.store.move_desktop(&id, Phase::Pending, Phase::Ready)? {
            return Err(ServiceError::Internal(format!("the record of desktop {id} went missing")));
        }
        tracing::info!(desktop = %id, owner = %owner.name, image = ?spec.image, flavor = ?spec.flavor, "desktop created");
        Ok(id)
    }

    /// Gives each user of a class a desktop from `image` and `flavor`, named `name`.
    /// Each user's desktop is made on its own: one user's failure (no such user, no
    /// room on the host) does not undo the others'. Checks that concern everyone (the
    /// image, the flavor, the name, an empty class) refuse the whole call first.
    pub fn create_for_class(
        &self,
        by: &Actor,
        class: &Class,
        image: &str,
        flavor: &str,
        name: &str,
    ) -> Result<Vec<ClassOutcome>, ServiceError> {
        let mut errors = FieldErrors::default();
        if self.store.image_by_name(image)?.is_none() {
            errors.add("image", format!("there is no image named {image:?}"));
        }
        if self.store.flavor_by_name(flavor)?.is_none() {
            errors.add("flavor", format!("there is no flavor named {flavor:?}"));
        }
        let name = if name.trim().is_empty() { image } else { name.trim() };
        if name.chars().count() > 64 {
            errors.add("name", "must be 1 to 64 characters long");
        }
        let users: Vec<String> = match class {
            Class::Users(users) => {
                let mut unique: Vec<String> = Vec::new();
                for user in users.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
                    if !unique.iter().any(|seen| seen == user) {
                        unique.push(user.to_owned());
                    }
                }
                unique
            }
            Class::AllStudents => self.store.users()?.into_iter().filter(|u| !u.is_admin).map(|u| u.name).collect(),
        };
        if users.is_empty() {
            errors.add("users", "no user to give a desktop to");
        }
        errors.into_result(())?;
        let outcomes = users
            .into_iter()
            .map(|user| {
                let spec = DesktopSpec::from_catalogue(name, &user, image, flavor);
                ClassOutcome { result: self.create(by, &spec), user }
            })
            .collect();
        Ok(outcomes)
    }

    /// Gives a desktop to another user. The machine stays as it is.
    /// The former owner's display sessions are cut and their ticket no longer works;
    /// where the image has a guest agent, the OS password changes too (in the guest
    /// as soon as its agent answers), so the former owner cannot log in over RDP
    /// either. Both change in the machine before the owner changes in the store: a
    /// failure leaves the former owner's secrets useless, never still in force.
    pub fn assign(&self, by: &Actor, desktop_id: &str, new_owner: &str) -> Result<(), ServiceError> {
        let record = self.store.desktop(desktop_id)?.ok_or(ServiceError::DesktopNotFound)?;
        let owner =
            self.store.user_by_name(new_owner)?.ok_or_else(|| ServiceError::NotFound(format!("user {new_owner:?}")))?;
        self.replace_ticket(&record)?;
        let os_password = record.guest_agent.then(new_os_password);
        if let Some(password) = &os_password {
            let account = GuestAccount { username: record.os_username.clone(), password: password.clone() };
            match self.compute.set_guest_account(&record.id, &account) {
                Ok(()) | Err(ComputeError::NoSuchMachine(_) | ComputeError::NotConfigured) => {}
                Err(error) => return Err(error.into()),
            }
        }
        if !self.store.set_desktop_owner(&record.id, owner.id, os_password.as_ref())? {
            return Err(ServiceError::DesktopNotFound);
        }
        self.audit.record(by, "desktop.assign", &record.id, &format!("from {} to {}", record.owner_name, owner.name));
        Ok(())
    }

    /// A new display ticket for a desktop, at an administrator's request: whoever is
    /// connected is cut off, and only the ticket the listing now shows works.
    pub fn new_ticket(&self, by: &Actor, desktop_id: &str) -> Result<(), ServiceError> {
        let record = self.store.desktop(desktop_id)?.ok_or(ServiceError::DesktopNotFound)?;
        self.replace_ticket(&record)?;
        self.audit.record(by, "desktop.ticket", &record.id, "display sessions cut");
        Ok(())
    }

    /// Ends the display sessions on a user's desktops when they log out of a
    /// terminal: each running desktop gets a new ticket. A desktop that cannot be
    /// reached now is logged and skipped; its ticket changes at its next start anyway.
    pub fn end_sessions_of(&self, principal: &Principal) -> Result<(), ServiceError> {
        for record in self.store.desktops_of(principal.user_id)? {
            if let Err(error) = self.replace_ticket(&record) {
                tracing::warn!(desktop = %record.id, %error, "cannot replace the ticket of a desktop at logout");
            }
        }
        Ok(())
    }

    /// A new ticket where there is a machine to give one; nothing for a desktop the
    /// hypervisor does not know (or on a server without one).
    fn replace_ticket(&self, record: &DesktopRecord) -> Result<(), ServiceError> {
        let _forget = Forgetting::new(&self.status, &record.id);
        match self.compute.new_ticket(&record.id) {
            Ok(()) | Err(ComputeError::NoSuchMachine(_) | ComputeError::NotConfigured) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a desktop and frees its machine (process, disk overlay, ports). A
    /// machine the hypervisor does not know is already gone. The record turns
    /// `Removing` before the machine is destroyed (a server killed meanwhile leaves
    /// the rest to the next one), and `Ready` again if the hypervisor refuses.
    pub fn delete(&self, by: &Actor, desktop_id: &str) -> Result<(), ServiceError> {
        let record = self.store.desktop(desktop_id)?.ok_or(ServiceError::DesktopNotFound)?;
        let _guard = self.claim(&record.id)?;
        let _forget = Forgetting::new(&self.status, &record.id);
        if !self.store.move_desktop(&record.id, Phase::Ready, Phase::Removing)? {
            return Err(ServiceError::DesktopNotFound);
        }
        let destroyed = match self.compute.destroy(&record.id) {
            Ok(()) | Err(ComputeError::NoSuchMachine(_)) => Ok(()),
            // A desktop from before the catalogue may never have had a machine here.
            Err(ComputeError::NotConfigured) if record.image.is_none() => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = destroyed {
            if let Err(reopen) = self.store.move_desktop(&record.id, Phase::Removing, Phase::Ready) {
                tracing::error!(desktop = %record.id, error = %reopen, "cannot keep a desktop whose machine was not destroyed; the next start deletes it");
            }
            return Err(error.into());
        }
        if !self.store.delete_desktop(&record.id)? {
            return Err(ServiceError::DesktopNotFound);
        }
        tracing::info!(desktop = %record.id, owner = %record.owner_name, "desktop deleted");
        self.audit.record(by, "desktop.delete", &record.id, &format!("{:?} of {}", record.name, record.owner_name));
        Ok(())
    }

    /// Brings every stored status in line with the hypervisor. Run at start, so that
    /// desktops whose machines died while the server was down read `SHUTOFF` before
    /// anyone asks.
    pub fn reconcile(&self) -> Result<usize, ServiceError> {
        if self.compute.guest_accounts_in_memory() {
            self.hand_over_guest_accounts()?;
        }
        Ok(self.list_all(None)?.len())
    }

    /// Gives a driver that keeps guest accounts in memory each desktop's account
    /// again, as a starting server must.
    fn hand_over_guest_accounts(&self) -> Result<(), ServiceError> {
        for record in self.store.all_desktops()?.into_iter().filter(|record| record.guest_agent) {
            let account = GuestAccount { username: record.os_username.clone(), password: record.os_password.clone() };
            match self.compute.set_guest_account(&record.id, &account) {
                Ok(()) | Err(ComputeError::NoSuchMachine(_)) => {}
                Err(error) => tracing::warn!(desktop = %record.id, %error, "cannot hand the desktop's OS account over"),
            }
        }
        Ok(())
    }

    /// Every desktop, or those of `owner`, for the administrator.
    pub fn list_all(&self, owner: Option<&str>) -> Result<Vec<DesktopSummary>, ServiceError> {
        let records = match owner {
            Some(name) => {
                let user =
                    self.store.user_by_name(name)?.ok_or_else(|| ServiceError::NotFound(format!("user {name:?}")))?;
                self.store.desktops_of(user.id)?
            }
            None => self.store.all_desktops()?,
        };
        let data_version = self.store.data_version()?;
        records
            .into_iter()
            .map(|record| {
                let status = self.observe_cached(&record, data_version)?.map_or(record.status, |view| view.status);
                Ok(DesktopSummary {
                    id: record.id,
                    name: record.name,
                    owner: record.owner_name,
                    status,
                    image: record.image,
                    flavor: record.flavor,
                })
            })
            .collect()
    }

    /// The caller's own desktops, with their state as the hypervisor sees it now.
    /// A view younger than the status TTL is taken from the cache (`status.rs`); the
    /// caller's own power actions are never hidden by it.
    pub fn list_for(&self, principal: &Principal) -> Result<Vec<Desktop>, ServiceError> {
        let records = self.store.desktops_of(principal.user_id)?;
        let data_version = self.store.data_version()?;
        records
            .into_iter()
            .map(|record| {
                let view = self.observe_cached(&record, data_version)?;
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
        self.perform(&principal.actor(), record, action)
    }

    /// Performs an action on anyone's desktop, for an administrator.
    pub fn act_as_administrator(
        &self,
        by: &Actor,
        desktop_id: &str,
        action: DesktopAction,
    ) -> Result<(), ServiceError> {
        let record = self.store.desktop(desktop_id)?.ok_or(ServiceError::DesktopNotFound)?;
        self.perform(by, record, action)
    }

    fn perform(&self, by: &Actor, record: DesktopRecord, action: DesktopAction) -> Result<(), ServiceError> {
        let _guard = self.claim(&record.id)?;
        // Listings read nothing from before or during this action (`status.rs`), and
        // the plan starts from the hypervisor's state now, never a cached one.
        let _forget = Forgetting::new(&self.status, &record.id);
        let current = self.observe(&record)?.map_or(record.status, |view| view.status);
        let (ops, outcome) = plan(action, current);
        for op in ops {
            self.compute.power(&record.id, *op)?;
        }
        if outcome != record.status {
            self.store.set_desktop_status(&record.id, outcome)?;
        }
        tracing::info!(desktop = %record.id, user = %by.name, %action, from = %current, to = %outcome, "desktop action");
        self.audit.record(by, "desktop.action", &record.id, &format!("{action}: {current} to {outcome}"));
        Ok(())
    }

    fn claim(&self, id: &str) -> Result<BusyGuard<'_>, ServiceError> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if !busy.insert(id.to_owned()) {
            return Err(ServiceError::DesktopBusy);
        }
        Ok(BusyGuard { busy: &self.busy, id: id.to_owned() })
    }

    /// [`Desktops::observe`] through the status cache: the view kept if it is fresh,
    /// else the hypervisor's, kept for the next listing.
    fn observe_cached(&self, record: &DesktopRecord, data_version: i64) -> Result<Option<MachineView>, ServiceError> {
        match self.status.get(&record.id, data_version) {
            Ok(view) => Ok(Some(view)),
            Err(ticket) => {
                let read_at = Instant::now();
                let view = self.observe(record)?;
                if let Some(view) = &view {
                    self.status.keep(&record.id, view, ticket, read_at);
                }
                Ok(view)
            }
        }
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
                    tls_port: None,
                    ca: None,
                    host_subject: None,
                    secure_channels: None,
                });
            }
            let port = display.spice_port.to_string();
            let tls = display.spice_tls;
            connection_info.push(ConnectionInfo {
                kind: ConnectionType::Spice,
                ip: self.public_address.clone(),
                tls_port: tls.is_some().then(|| port.clone()),
                port: Some(port),
                password: Some(display.spice_ticket.expose().to_owned()),
                secure_channels: tls.is_some().then(|| "all".to_owned()),
                ca: tls.as_ref().map(|tls| tls.ca.clone()),
                host_subject: tls.map(|tls| tls.host_subject),
            });
        }
        // The flavor's size, for the student's tile; a flavor gone from the catalogue
        // (or a store that cannot say) shows none.
        let size = record.flavor.as_deref().and_then(|name| match self.store.flavor_by_name(name) {
            Ok(flavor) => {
                flavor.map(|f| DesktopSize { flavor: f.name, vcpus: f.vcpus, ram_mib: f.ram_mib, disk_gib: f.disk_gib })
            }
            Err(error) => {
                tracing::warn!(%error, flavor = name, "cannot read a desktop's flavor");
                None
            }
        });
        Desktop {
            id: record.id,
            name: record.name,
            image: record.image,
            size,
            status,
            os_username: record.os_username,
            os_password: record.os_password.expose().to_owned(),
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
        // A guest stopped on an error, or stuck on its way, cannot press its power button.
        (A::Shutdown, S::Error | S::Build) => &[P::PowerOff],
        (A::Shutdown, _) => &[P::Shutdown],
        (A::Resume | A::Start, S::Active) => &[],
        (A::Resume | A::Start, S::Paused | S::Suspended) => &[P::Resume],
        (A::Reboot, S::Active | S::Reboot) => &[P::Reboot],
        (A::Reset, S::Active | S::Reboot) => &[P::Reset],
        (A::Reboot, S::Paused | S::Suspended) => &[P::Resume, P::Reboot],
        (A::Reset, S::Paused | S::Suspended) => &[P::Resume, P::Reset],
        (A::Resume | A::Start | A::Reboot | A::Reset, S::Shutoff) => &[P::Start],
        // The machine's process may still be there with its guest stopped: a fresh one.
        (A::Resume | A::Start | A::Reboot | A::Reset, S::Error | S::Build) => &[P::PowerOff, P::Start],
        (A::Resume | A::Start, S::Reboot) => &[],
    };
    let outcome = if action == A::Shutdown { S::Shutoff } else { S::Active };
    (ops, outcome)
}

/// A desktop's own OS password: 16 characters a student can type (URL-safe base64
/// of 12 random bytes).
fn new_os_password() -> Secret {
    Secret::new(random_token(12))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::double::TestCompute;

    /// Every action in every state, written out by hand: the driver operations in
    /// their order, and the status stored after them. `resume` (and `start`, its
    /// alias) starts a stopped desktop and wakes a suspended or paused one
    /// (CONTRACT.md); `reboot` and `reset` start a stopped desktop and wake a sleeping
    /// one before restarting it; `shutdown` of a stopped desktop does nothing. In ERROR
    /// and BUILD the machine's process may still be there with a guest that cannot
    /// answer: it is powered off at once, and started afresh unless the action is
    /// `shutdown`.
    #[test]
    fn every_action_in_every_state_plans_exactly_these_operations() {
        use DesktopAction as A;
        use DesktopStatus as S;
        use PowerOp as P;
        let table: [(A, S, &[P], S); 35] = [
            (A::Resume, S::Active, &[], S::Active),
            (A::Resume, S::Shutoff, &[P::Start], S::Active),
            (A::Resume, S::Suspended, &[P::Resume], S::Active),
            (A::Resume, S::Paused, &[P::Resume], S::Active),
            (A::Resume, S::Build, &[P::PowerOff, P::Start], S::Active),
            (A::Resume, S::Reboot, &[], S::Active),
            (A::Resume, S::Error, &[P::PowerOff, P::Start], S::Active),
            (A::Start, S::Active, &[], S::Active),
            (A::Start, S::Shutoff, &[P::Start], S::Active),
            (A::Start, S::Suspended, &[P::Resume], S::Active),
            (A::Start, S::Paused, &[P::Resume], S::Active),
            (A::Start, S::Build, &[P::PowerOff, P::Start], S::Active),
            (A::Start, S::Reboot, &[], S::Active),
            (A::Start, S::Error, &[P::PowerOff, P::Start], S::Active),
            (A::Reboot, S::Active, &[P::Reboot], S::Active),
            (A::Reboot, S::Shutoff, &[P::Start], S::Active),
            (A::Reboot, S::Suspended, &[P::Resume, P::Reboot], S::Active),
            (A::Reboot, S::Paused, &[P::Resume, P::Reboot], S::Active),
            (A::Reboot, S::Build, &[P::PowerOff, P::Start], S::Active),
            (A::Reboot, S::Reboot, &[P::Reboot], S::Active),
            (A::Reboot, S::Error, &[P::PowerOff, P::Start], S::Active),
            (A::Reset, S::Active, &[P::Reset], S::Active),
            (A::Reset, S::Shutoff, &[P::Start], S::Active),
            (A::Reset, S::Suspended, &[P::Resume, P::Reset], S::Active),
            (A::Reset, S::Paused, &[P::Resume, P::Reset], S::Active),
            (A::Reset, S::Build, &[P::PowerOff, P::Start], S::Active),
            (A::Reset, S::Reboot, &[P::Reset], S::Active),
            (A::Reset, S::Error, &[P::PowerOff, P::Start], S::Active),
            (A::Shutdown, S::Active, &[P::Shutdown], S::Shutoff),
            (A::Shutdown, S::Shutoff, &[], S::Shutoff),
            (A::Shutdown, S::Suspended, &[P::Shutdown], S::Shutoff),
            (A::Shutdown, S::Paused, &[P::Shutdown], S::Shutoff),
            (A::Shutdown, S::Build, &[P::PowerOff], S::Shutoff),
            (A::Shutdown, S::Reboot, &[P::Shutdown], S::Shutoff),
            (A::Shutdown, S::Error, &[P::PowerOff], S::Shutoff),
        ];
        let pairs: HashSet<(A, S)> = table.iter().map(|(action, state, _, _)| (*action, *state)).collect();
        assert_eq!(pairs.len(), A::ALL.len() * S::ALL.len(), "the table has every action in every state once");
        for (action, state, operations, after) in table {
            assert_eq!(plan(action, state), (operations, after), "{action} in {state}");
        }
    }

    fn setup() -> (tempfile::TempDir, Arc<TestCompute>, Desktops, Principal, Principal) {
        let (dir, _store, compute, desktops, owner, other) = setup_with_store();
        (dir, compute, desktops, owner, other)
    }

    fn setup_with_store() -> (tempfile::TempDir, Arc<Store>, Arc<TestCompute>, Desktops, Principal, Principal) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let owner = store.insert_user("owner", "h", false, 0).expect("user");
        let other = store.insert_user("other", "h", false, 0).expect("user");
        let compute = Arc::new(TestCompute::new());
        let desktops =
            Desktops::new(store.clone(), compute.clone(), "10.0.0.1".into(), super::super::status::DEFAULT_STATUS_TTL);
        let principal = |id, name: &str| Principal {
            user_id: id,
            name: name.into(),
            is_admin: false,
            token_hash: None,
            address: None,
        };
        (dir, store, compute, desktops, principal(owner, "owner"), principal(other, "other"))
    }

    /// Adds an RDP image `win` with a base disk in `dir`.
    fn add_image(dir: &std::path::Path, store: &Store) {
        add_image_with_agent(dir, store, false);
    }

    fn add_image_with_agent(dir: &std::path::Path, store: &Store, guest_agent: bool) {
        let disk = dir.join("win.qcow2");
        std::fs::write(&disk, b"QFI\xfb").expect("disk");
        let image = crate::store::NewImage {
            name: "win",
            base_disk: disk.to_str().expect("utf-8"),
            default_connection_type: ConnectionType::Rdp,
            os_username: "Administrator",
            os_password: &Secret::new("image-password"),
            guest_agent,
        };
        store.insert_image(&image, 0).expect("image");
    }

    #[test]
    fn desktops_of_an_image_with_a_guest_agent_each_get_their_own_os_password_set_through_it() {
        let (dir, store, compute, desktops, owner, other) = setup_with_store();
        add_image_with_agent(dir.path(), &store, true);
        let first = desktops.create(&Actor::system(), &from_image()).expect("create");
        let second = desktops.create(&Actor::system(), &from_image()).expect("create");
        let listed = desktops.list_for(&owner).expect("list");
        let password_of = |id: &str| listed.iter().find(|d| d.id == id).expect("listed").os_password.clone();
        let (first_password, second_password) = (password_of(&first), password_of(&second));
        assert_ne!(first_password, second_password, "no two desktops share an OS password");
        assert_ne!(first_password, "image-password");
        assert!(first_password.len() >= 16, "{first_password}");
        let account = compute.spec(&first).and_then(|m| m.guest_account).expect("the machine sets an account");
        assert_eq!((account.username.as_str(), account.password.expose()), ("Administrator", first_password.as_str()));

        // A new owner gets a new password, in the machine as in the listing; the
        // former owner's no longer works.
        desktops.assign(&Actor::system(), &first, "other").expect("assign");
        let now = desktops.list_for(&other).expect("list")[0].os_password.clone();
        assert_ne!(now, first_password);
        let account = compute.spec(&first).and_then(|m| m.guest_account).expect("account");
        assert_eq!(account.password.expose(), now);
    }

    #[test]
    fn desktops_of_an_image_without_an_agent_share_its_password_and_set_none() {
        let (dir, store, compute, desktops, owner, _) = setup_with_store();
        add_image(dir.path(), &store);
        let id = desktops.create(&Actor::system(), &from_image()).expect("create");
        assert_eq!(desktops.list_for(&owner).expect("list")[0].os_password, "image-password");
        assert!(compute.spec(&id).expect("defined").guest_account.is_none());
        desktops.assign(&Actor::system(), &id, "other").expect("assign");
        assert!(compute.spec(&id).expect("defined").guest_account.is_none());
    }

    fn from_image() -> DesktopSpec {
        DesktopSpec {
            os_username: None,
            os_password: None,
            default_connection_type: None,
            image: Some("win".into()),
            flavor: Some("m1.medium".into()),
            ..spec()
        }
    }

    #[test]
    fn a_desktop_from_an_image_defines_its_machine_and_takes_the_images_login() {
        let (dir, store, compute, desktops, owner, _) = setup_with_store();
        add_image(dir.path(), &store);
        let id = desktops.create(&Actor::system(), &from_image()).expect("create");
        let machine = compute.spec(&id).expect("the machine is defined");
        assert_eq!((machine.vcpus, machine.ram_mib, machine.disk_gib), (2, 4096, 40));
        assert!(machine.rdp && machine.internet);
        assert_eq!(machine.base_disk, dir.path().join("win.qcow2"));
        let listed = &desktops.list_for(&owner).expect("list")[0];
        assert_eq!((listed.os_username.as_str(), listed.os_password.as_str()), ("Administrator", "image-password"));
        assert_eq!(listed.default_connection_type, ConnectionType::Rdp);
        let summary = &desktops.list_all(Some("owner")).expect("list")[0];
        assert_eq!((summary.image.as_deref(), summary.flavor.as_deref()), (Some("win"), Some("m1.medium")));

        desktops.delete(&Actor::system(), &id).expect("delete");
        assert!(compute.spec(&id).is_none(), "the machine is destroyed with the desktop");
        assert!(desktops.list_for(&owner).expect("list").is_empty());
        assert!(matches!(desktops.delete(&Actor::system(), &id), Err(ServiceError::DesktopNotFound)));
    }

    #[test]
    fn a_refused_machine_leaves_no_desktop_and_unknown_names_are_field_errors() {
        let (dir, store, compute, desktops, owner, _) = setup_with_store();
        add_image(dir.path(), &store);
        compute.set_failing(true);
        assert!(matches!(desktops.create(&Actor::system(), &from_image()), Err(ServiceError::Compute(_))));
        compute.set_failing(false);
        assert!(desktops.list_for(&owner).expect("list").is_empty());
        let unknown = DesktopSpec { image: Some("nope".into()), flavor: Some("m9.huge".into()), ..from_image() };
        match desktops.create(&Actor::system(), &unknown) {
            Err(ServiceError::Invalid(errors)) => {
                assert!(
                    errors.0.contains_key("image")
                        && errors.0.contains_key("flavor")
                        && errors.0.contains_key("os_username")
                );
            }
            other => panic!("accepted: {other:?}"),
        }
        let half = DesktopSpec { flavor: None, ..from_image() };
        assert!(matches!(desktops.create(&Actor::system(), &half), Err(ServiceError::Invalid(_))));
        assert!(desktops.list_all(None).expect("list").is_empty());
    }

    #[test]
    fn a_delete_the_hypervisor_refuses_keeps_the_desktop_for_another_try() {
        let (dir, store, compute, desktops, owner, _) = setup_with_store();
        add_image(dir.path(), &store);
        let id = desktops.create(&Actor::system(), &from_image()).expect("create");
        compute.set_failing(true);
        assert!(matches!(desktops.delete(&Actor::system(), &id), Err(ServiceError::Compute(_))));
        compute.set_failing(false);
        assert_eq!(desktops.list_for(&owner).expect("list").len(), 1, "still listed, and ready");
        desktops.delete(&Actor::system(), &id).expect("second try");
        assert!(store.desktop_phases().expect("phases").is_empty());
    }

    #[test]
    fn a_desktop_without_a_machine_is_deleted_all_the_same() {
        let (_dir, _compute, desktops, owner, _) = setup();
        let id = desktops.create(&Actor::system(), &spec()).expect("create");
        desktops.delete(&Actor::system(), &id).expect("NoSuchMachine is not an obstacle");
        assert!(desktops.list_for(&owner).expect("list").is_empty());
    }

    fn spec() -> DesktopSpec {
        DesktopSpec {
            name: "lab".into(),
            owner: "owner".into(),
            os_username: Some("student".into()),
            os_password: Some("pw".into()),
            default_connection_type: Some(ConnectionType::Spice),
            policy: Policy::default(),
            image: None,
            flavor: None,
        }
    }

    #[test]
    fn a_started_desktop_lists_its_spice_endpoint_with_a_ticket() {
        let (_dir, _compute, desktops, owner, _) = setup();
        let id = desktops.create(&Actor::system(), &spec()).expect("create");
        assert!(desktops.list_for(&owner).expect("list")[0].connection_info.is_empty());
        desktops.act(&owner, &id, DesktopAction::Resume).expect("resume");
        let listed = desktops.list_for(&owner).expect("list");
        assert_eq!(listed[0].status, DesktopStatus::Active);
        let spice = &listed[0].connection_info[0];
        assert_eq!(spice.kind, ConnectionType::Spice);
        assert_eq!(spice.ip, "10.0.0.1");
        assert!(spice.password.as_deref().is_some_and(|p| !p.is_empty()));
        // TLS only: the port is the TLS port, with what the viewer must check.
        assert_eq!(spice.tls_port, spice.port);
        assert_eq!(spice.ca.as_deref(), Some(crate::compute::double::TEST_CA));
        assert_eq!(spice.host_subject.as_deref(), Some("O=thindesk,CN=test double"));
        assert_eq!(spice.secure_channels.as_deref(), Some("all"));
    }

    #[test]
    fn someone_elses_desktop_does_not_exist() {
        let (_dir, compute, desktops, _, other) = setup();
        let id = desktops.create(&Actor::system(), &spec()).expect("create");
        assert!(matches!(desktops.act(&other, &id, DesktopAction::Resume), Err(ServiceError::DesktopNotFound)));
        assert!(desktops.list_for(&other).expect("list").is_empty());
        assert!(compute.operations().is_empty());
    }
}
