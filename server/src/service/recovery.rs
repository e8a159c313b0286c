//! What a server does as it starts, before it serves: it brings the records and the
//! hypervisor's machines back into agreement, whatever a crash (`kill -9`, power
//! loss) interrupted: a launch, a desktop's creation, a destroy or a delete.
//!
//! The records' phases are the journal (`store::Phase`): a record is `Pending` from
//! before its machine is defined until right before its caller is answered, and
//! `Removing` from before its machine is destroyed until the record goes. The rules,
//! in order:
//!
//! 1. The driver stops every process and removes every half-made machine directory
//!    it cannot account for ([`Compute::reclaim_strays`]), so every running machine
//!    is one it knows and counts against the memory limit.
//! 2. A `Pending` record's caller never got an answer: its machine is destroyed and
//!    the record removed, so its id never existed. A `Removing` record's destroy is
//!    finished the same way.
//! 3. An instance whose machine is gone is removed: an exam system cannot use it,
//!    and `destroy_instance` would only have to say it is gone.
//! 4. A desktop (from an image) whose machine is gone gets its machine defined again
//!    from the image: an administrator made it for a student and was told so, and a
//!    fresh machine is what creating it gave (its disk is lost either way). Where
//!    that fails the desktop reads `ERROR` until an administrator deletes it.
//! 5. A machine no record names is destroyed.

use super::ServiceError;
use super::audit::{Actor, Audit};
use crate::compute::{Compute, ComputeError, GuestAccount};
use crate::store::{Phase, Store};
use std::collections::HashSet;
use std::sync::Arc;
use thindesk_shared::DesktopStatus;

/// What a recovery found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Processes and half-made machine directories nobody knew of (step 1).
    pub strays: usize,
    /// Launches and creations undone, destroys and deletes finished (step 2).
    pub unfinished: usize,
    /// Instances removed because their machine was gone (step 3).
    pub vanished_instances: usize,
    /// Desktops whose machine was defined again (step 4).
    pub redefined_desktops: usize,
    /// Machines destroyed because no record named them (step 5).
    pub unowned_machines: usize,
}

pub struct Recovery {
    store: Arc<Store>,
    compute: Arc<dyn Compute>,
    audit: Audit,
}

/// Which table a record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Instance,
    Desktop,
}

impl Recovery {
    pub fn new(store: Arc<Store>, compute: Arc<dyn Compute>) -> Self {
        Self { audit: Audit::new(store.clone()), store, compute }
    }

    /// Applies the rules above. Only while nothing else launches, creates or
    /// destroys machines: a server calls it once, before it listens.
    pub fn run(&self) -> Result<Recovered, ServiceError> {
        let mut recovered = Recovered::default();
        match self.compute.reclaim_strays() {
            Ok(strays) => recovered.strays = strays,
            Err(error) => tracing::error!(%error, "cannot look for stray machine processes"),
        }

        for (kind, id, phase) in self.records()? {
            if phase != Phase::Ready && self.undo(kind, &id, phase)? {
                recovered.unfinished += 1;
            }
        }

        let machines: HashSet<String> = match self.compute.machines() {
            Ok(machines) => machines.into_iter().collect(),
            // No hypervisor: there are no machines to compare the records with.
            Err(ComputeError::NotConfigured) => return Ok(recovered),
            Err(error) => return Err(error.into()),
        };
        for record in self.store.instances()? {
            if !machines.contains(&record.id) {
                tracing::warn!(vm_id = %record.id, name = %record.name, "removing an instance whose machine is gone");
                self.store.delete_instance(&record.id)?;
                recovered.vanished_instances += 1;
            }
        }
        for record in self.store.all_desktops()? {
            if record.image.is_some() && !machines.contains(&record.id) && self.define_again(&record)? {
                recovered.redefined_desktops += 1;
            }
        }

        let named: HashSet<String> = self.records()?.into_iter().map(|(_, id, _)| id).collect();
        for id in machines.iter().filter(|id| !named.contains(*id)) {
            match self.compute.destroy(id) {
                Ok(()) | Err(ComputeError::NoSuchMachine(_)) => {
                    tracing::warn!(machine = %id, "destroyed a machine no record names");
                    recovered.unowned_machines += 1;
                }
                Err(error) => tracing::error!(machine = %id, %error, "cannot destroy a machine no record names"),
            }
        }
        Ok(recovered)
    }

    /// Every instance and desktop record, whatever its phase.
    fn records(&self) -> Result<Vec<(Kind, String, Phase)>, ServiceError> {
        let instances = self.store.instance_phases()?.into_iter().map(|(id, phase)| (Kind::Instance, id, phase));
        let desktops = self.store.desktop_phases()?.into_iter().map(|(id, phase)| (Kind::Desktop, id, phase));
        Ok(instances.chain(desktops).collect())
    }

    /// Destroys the machine of a record left `Pending` or `Removing`, then removes the
    /// record. True when both are gone; a machine the hypervisor cannot destroy now
    /// keeps its record (still unlisted) for the next start.
    fn undo(&self, kind: Kind, id: &str, phase: Phase) -> Result<bool, ServiceError> {
        match self.compute.destroy(id) {
            Ok(()) | Err(ComputeError::NoSuchMachine(_) | ComputeError::NotConfigured) => {}
            Err(error) => {
                tracing::error!(?kind, id, ?phase, %error, "cannot destroy the machine of an interrupted launch or destroy");
                return Ok(false);
            }
        }
        match kind {
            Kind::Instance => self.store.delete_instance(id)?,
            Kind::Desktop => self.store.delete_desktop(id)?,
        };
        let action = match (kind, phase) {
            (Kind::Instance, Phase::Pending) => "instance.launch.undone",
            (Kind::Desktop, Phase::Pending) => "desktop.create.undone",
            (Kind::Instance, _) => "instance.destroy.finished",
            (Kind::Desktop, _) => "desktop.delete.finished",
        };
        tracing::warn!(?kind, id, action, "the server was killed during this; its next start finished it");
        self.audit.record(&Actor::system(), action, id, "the server was killed during it");
        Ok(true)
    }

    /// Defines a desktop's vanished machine again from its image and flavor; where
    /// that cannot be done, marks the desktop `ERROR`. True when it was defined.
    fn define_again(&self, record: &crate::store::DesktopRecord) -> Result<bool, ServiceError> {
        let image = match &record.image {
            Some(name) => self.store.image_by_name(name)?,
            None => None,
        };
        let flavor = match &record.flavor {
            Some(name) => self.store.flavor_by_name(name)?,
            None => None,
        };
        let defined = match (image, flavor) {
            (Some(image), Some(flavor)) => {
                // As creating it did: the desktop's own OS account, where the image's
                // guest agent can set it.
                let account =
                    GuestAccount { username: record.os_username.clone(), password: record.os_password.clone() };
                let machine = super::catalogue::machine_spec(
                    &record.id,
                    &record.name,
                    &image,
                    &flavor,
                    true,
                    record.policy,
                    Some(account),
                );
                self.compute.define(&machine).map_err(|error| error.to_string())
            }
            _ => Err("its image or flavor is gone".to_owned()),
        };
        match defined {
            Ok(()) => {
                tracing::warn!(desktop = %record.id, owner = %record.owner_name, "the desktop's machine was gone; defined it again from its image");
                let detail = format!("{:?} of {}: its machine was gone", record.name, record.owner_name);
                self.audit.record(&Actor::system(), "desktop.redefine", &record.id, &detail);
                if record.status != DesktopStatus::Shutoff {
                    self.store.set_desktop_status(&record.id, DesktopStatus::Shutoff)?;
                }
                Ok(true)
            }
            Err(error) => {
                tracing::error!(desktop = %record.id, %error, "the desktop's machine is gone and cannot be defined again");
                self.store.set_desktop_status(&record.id, DesktopStatus::Error)?;
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::double::TestCompute;
    use crate::compute::{MachineSpec, NoCompute};
    use crate::store::{NewDesktop, NewImage, NewInstance};
    use thindesk_shared::{ConnectionType, Policy, Secret};

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        compute: Arc<TestCompute>,
        image_id: i64,
        flavor_id: i64,
        owner_id: i64,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let disk = dir.path().join("base.qcow2");
        std::fs::write(&disk, b"QFI\xfb").expect("disk");
        let image = NewImage {
            name: "exam-image",
            base_disk: disk.to_str().expect("utf-8"),
            default_connection_type: ConnectionType::Spice,
            os_username: "student",
            os_password: &Secret::new("pw"),
            guest_agent: true,
        };
        let image_id = store.insert_image(&image, 0).expect("image");
        let flavor_id = store.flavor_by_name("m1.tiny").expect("q").expect("seeded").id;
        let owner_id = store.insert_user("kim", "hash", false, 0).expect("user");
        Fixture { _dir: dir, store, compute: Arc::new(TestCompute::new()), image_id, flavor_id, owner_id }
    }

    impl Fixture {
        fn instance(&self, id: &str, phase: Phase, machine: bool) {
            let instance = NewInstance {
                id,
                phase,
                name: "exam",
                image_id: self.image_id,
                flavor_id: self.flavor_id,
                internet: false,
            };
            self.store.insert_instance(&instance, 1).expect("instance");
            if machine {
                self.machine(id);
            }
        }

        fn desktop(&self, id: &str, phase: Phase, from_image: bool, machine: bool) {
            let desktop = NewDesktop {
                id,
                name: "lab",
                owner_id: self.owner_id,
                status: DesktopStatus::Active,
                os_username: "student",
                os_password: &Secret::new("pw"),
                default_connection_type: ConnectionType::Spice,
                policy: Policy::default(),
                image_id: from_image.then_some(self.image_id),
                flavor_id: from_image.then_some(self.flavor_id),
                phase,
            };
            self.store.insert_desktop(&desktop, 1).expect("desktop");
            if machine {
                self.machine(id);
            }
        }

        fn machine(&self, id: &str) {
            let spec = MachineSpec {
                id: id.into(),
                name: "m".into(),
                base_disk: "/base.qcow2".into(),
                image: "base".into(),
                flavor: "small".into(),
                vcpus: 1,
                ram_mib: 512,
                disk_gib: 1,
                internet: false,
                rdp: false,
                policy: Policy::default(),
                guest_account: None,
            };
            self.compute.define(&spec).expect("define");
        }

        fn recover(&self) -> Recovered {
            Recovery::new(self.store.clone(), self.compute.clone()).run().expect("recovery")
        }

        fn phases(&self) -> Vec<(String, Phase)> {
            let mut all = self.store.instance_phases().expect("instances");
            all.extend(self.store.desktop_phases().expect("desktops"));
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        }
    }

    #[test]
    fn interrupted_launches_are_undone_and_interrupted_destroys_finished() {
        let f = fixture();
        f.instance("launch-before-define", Phase::Pending, false);
        f.instance("launch-after-define", Phase::Pending, true);
        f.instance("destroy-before-machine", Phase::Removing, true);
        f.instance("destroy-after-machine", Phase::Removing, false);
        f.desktop("create-after-define", Phase::Pending, true, true);
        f.desktop("delete-before-machine", Phase::Removing, true, true);
        f.instance("answered", Phase::Ready, true);
        let recovered = f.recover();
        assert_eq!(recovered, Recovered { unfinished: 6, ..Recovered::default() });
        assert_eq!(f.phases(), [("answered".to_owned(), Phase::Ready)]);
        assert_eq!(f.compute.machines().expect("machines"), ["answered"]);
        let query = crate::store::AuditQuery { actor: None, action: None, since: None, until: None, limit: 100 };
        let mut audited: Vec<(String, String)> =
            f.store.audit(&query).expect("audit").into_iter().map(|entry| (entry.action, entry.target)).collect();
        audited.sort();
        assert_eq!(
            audited,
            [
                ("desktop.create.undone".to_owned(), "create-after-define".to_owned()),
                ("desktop.delete.finished".to_owned(), "delete-before-machine".to_owned()),
                ("instance.destroy.finished".to_owned(), "destroy-after-machine".to_owned()),
                ("instance.destroy.finished".to_owned(), "destroy-before-machine".to_owned()),
                ("instance.launch.undone".to_owned(), "launch-after-define".to_owned()),
                ("instance.launch.undone".to_owned(), "launch-before-define".to_owned()),
            ],
            "the audit log says what the server finished or undid"
        );
        assert_eq!(f.recover(), Recovered::default(), "a second start finds nothing to do");
    }

    #[test]
    fn an_instance_without_its_machine_goes_and_a_machine_without_a_record_is_destroyed() {
        let f = fixture();
        f.instance("vanished", Phase::Ready, false);
        f.instance("running", Phase::Ready, true);
        f.machine("unowned");
        let recovered = f.recover();
        assert_eq!(recovered.vanished_instances, 1);
        assert_eq!(recovered.unowned_machines, 1);
        assert_eq!(f.store.instances().expect("list").iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["running"]);
        assert_eq!(f.compute.machines().expect("machines"), ["running"]);
    }

    #[test]
    fn a_desktop_whose_machine_vanished_gets_it_again_from_its_image() {
        let f = fixture();
        f.desktop("vanished", Phase::Ready, true, false);
        f.desktop("no-image", Phase::Ready, false, false);
        f.desktop("fine", Phase::Ready, true, true);
        let recovered = f.recover();
        assert_eq!(recovered, Recovered { redefined_desktops: 1, ..Recovered::default() });
        assert_eq!(f.compute.machines().expect("machines"), ["fine", "vanished"]);
        let spec = f.compute.spec("vanished").expect("defined");
        assert_eq!((spec.ram_mib, spec.internet), (512, true), "as creating it would have");
        let account = spec.guest_account.expect("the desktop's own OS account, for the guest agent");
        assert_eq!((account.username.as_str(), account.password.expose()), ("student", "pw"));
        let desktop = f.store.desktop("vanished").expect("q").expect("kept");
        assert_eq!(desktop.status, DesktopStatus::Shutoff, "a fresh machine is off");
        assert!(f.store.desktop("no-image").expect("q").is_some(), "a desktop without an image has no machine here");
    }

    #[test]
    fn a_desktop_whose_machine_cannot_be_defined_again_reads_error() {
        let f = fixture();
        f.desktop("vanished", Phase::Ready, true, false);
        let failing = Arc::new(Refusing(TestCompute::new()));
        let recovered = Recovery::new(f.store.clone(), failing).run().expect("recovery");
        assert_eq!(recovered.redefined_desktops, 0);
        assert_eq!(f.store.desktop("vanished").expect("q").expect("kept").status, DesktopStatus::Error);
    }

    /// The test double, refusing every define.
    struct Refusing(TestCompute);

    impl Compute for Refusing {
        fn name(&self) -> &'static str {
            "refusing"
        }
        fn define(&self, _spec: &MachineSpec) -> Result<(), ComputeError> {
            Err(ComputeError::BadImage("the base disk is gone".into()))
        }
        fn destroy(&self, id: &str) -> Result<(), ComputeError> {
            self.0.destroy(id)
        }
        fn power(&self, id: &str, op: crate::compute::PowerOp) -> Result<(), ComputeError> {
            self.0.power(id, op)
        }
        fn inspect(&self, id: &str) -> Result<crate::compute::MachineView, ComputeError> {
            self.0.inspect(id)
        }
        fn new_ticket(&self, id: &str) -> Result<(), ComputeError> {
            self.0.new_ticket(id)
        }
        fn machines(&self) -> Result<Vec<String>, ComputeError> {
            self.0.machines()
        }
        fn set_guest_account(&self, id: &str, account: &GuestAccount) -> Result<(), ComputeError> {
            self.0.set_guest_account(id, account)
        }
    }

    #[test]
    fn without_a_hypervisor_only_the_journal_is_settled() {
        let f = fixture();
        f.instance("pending", Phase::Pending, false);
        f.instance("answered", Phase::Ready, false);
        f.desktop("desk", Phase::Ready, true, false);
        let recovered = Recovery::new(f.store.clone(), Arc::new(NoCompute)).run().expect("recovery");
        assert_eq!(recovered, Recovered { unfinished: 1, ..Recovered::default() });
        assert_eq!(f.phases(), [("answered".to_owned(), Phase::Ready), ("desk".to_owned(), Phase::Ready)]);
    }

    #[test]
    fn a_machine_the_hypervisor_cannot_destroy_keeps_its_unlisted_record_for_the_next_start() {
        let f = fixture();
        f.instance("stuck", Phase::Removing, true);
        let stubborn = Arc::new(Stubborn(TestCompute::new()));
        stubborn.0.define(&f.compute.spec("stuck").expect("spec")).expect("define");
        let recovered = Recovery::new(f.store.clone(), stubborn.clone()).run().expect("recovery");
        assert_eq!(recovered.unfinished, 0);
        assert_eq!(f.phases(), [("stuck".to_owned(), Phase::Removing)]);
        assert!(f.store.instance("stuck").expect("q").is_none(), "not listed");
        assert_eq!(stubborn.0.machines().expect("machines"), ["stuck"], "not destroyed as unowned either");
    }

    /// The test double, refusing every destroy.
    struct Stubborn(TestCompute);

    impl Compute for Stubborn {
        fn name(&self) -> &'static str {
            "stubborn"
        }
        fn define(&self, spec: &MachineSpec) -> Result<(), ComputeError> {
            self.0.define(spec)
        }
        fn destroy(&self, _id: &str) -> Result<(), ComputeError> {
            Err(ComputeError::Failed("the disk is busy".into()))
        }
        fn power(&self, id: &str, op: crate::compute::PowerOp) -> Result<(), ComputeError> {
            self.0.power(id, op)
        }
        fn inspect(&self, id: &str) -> Result<crate::compute::MachineView, ComputeError> {
            self.0.inspect(id)
        }
        fn new_ticket(&self, id: &str) -> Result<(), ComputeError> {
            self.0.new_ticket(id)
        }
        fn machines(&self) -> Result<Vec<String>, ComputeError> {
            self.0.machines()
        }
        fn set_guest_account(&self, id: &str, account: &GuestAccount) -> Result<(), ComputeError> {
            self.0.set_guest_account(id, account)
        }
    }
}
