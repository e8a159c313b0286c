//! The cloud API's rules (seed 000): who may call it, what each command needs, and how
//! an exam system's virtual machine is launched and freed without leaving anything
//! behind.

use super::audit::{Actor, Audit};
use super::{iso8601, random_token, unix_now};
use crate::compute::{Compute, ComputeError, Display, MachineSpec};
use crate::store::{InstanceRecord, NewInstance, Phase, Store, StoreError};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use thindesk_shared::DesktopStatus;
use thindesk_shared::cloud::{Command, FlavorInfo, ImageInfo, InstanceInfo, LaunchedInstance, parse_internet};

pub const MAX_NAME_CHARS: usize = 64;

/// Why a cloud API call was refused or failed. The HTTP layer turns each into a
/// `ret_code` and `description` in one place (`http::cloud`).
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("the caller is not allowed to use the cloud API")]
    PermissionDenied,
    #[error("no or unknown command")]
    InvalidCommand,
    #[error("missing arguments: {}", .0.join(", "))]
    ArgumentMissing(Vec<&'static str>),
    #[error("internet must be true or false")]
    InvalidInternet,
    #[error("the name must be 1 to {MAX_NAME_CHARS} printable characters")]
    InvalidName,
    #[error("there is no image named {0:?}")]
    InvalidImage(String),
    #[error("there is no flavor named {0:?}")]
    InvalidFlavor(String),
    #[error("there is no virtual machine with this id")]
    InvalidVmId,
    /// The hypervisor could not define or start the machine; nothing was kept.
    #[error("launching failed: {0}")]
    Launch(ComputeError),
    /// The hypervisor could not free the machine; the instance is kept so that a
    /// later `destroy_instance` can try again.
    #[error("destroying failed: {0}")]
    Destroy(ComputeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One call, as read from the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudRequest {
    Launch { image: String, flavor: String, internet: bool, name: String },
    Destroy { vm_id: String },
    Query { vm_id: String },
    ListInstances,
    ListImages,
    ListFlavors,
}

impl CloudRequest {
    /// Reads a call from the form's fields (the first value of each key). Every
    /// missing argument is named at once; an empty value counts as missing.
    pub fn parse(form: &HashMap<String, String>) -> Result<Self, CloudError> {
        let command = form.get("command").and_then(|c| Command::parse(c)).ok_or(CloudError::InvalidCommand)?;
        Ok(match command {
            Command::LaunchInstance => {
                let [image, flavor, internet, name] = required(form, ["image", "flavor", "internet", "name"])?;
                let internet = parse_internet(&internet).ok_or(CloudError::InvalidInternet)?;
                Self::Launch { image, flavor, internet, name }
            }
            Command::DestroyInstance => {
                let [vm_id] = required(form, ["vm_id"])?;
                Self::Destroy { vm_id }
            }
            Command::QueryInstance => {
                let [vm_id] = required(form, ["vm_id"])?;
                Self::Query { vm_id }
            }
            Command::ListInstances => Self::ListInstances,
            Command::ListImages => Self::ListImages,
            Command::ListFlavors => Self::ListFlavors,
        })
    }
}

fn required<const N: usize>(
    form: &HashMap<String, String>,
    keys: [&'static str; N],
) -> Result<[String; N], CloudError> {
    let missing: Vec<&'static str> =
        keys.iter().copied().filter(|key| form.get(*key).is_none_or(|value| value.is_empty())).collect();
    if !missing.is_empty() {
        return Err(CloudError::ArgumentMissing(missing));
    }
    Ok(keys.map(|key| form.get(key).cloned().unwrap_or_default()))
}

/// Who may call the cloud API: callers from an allowed address, presenting the key
/// when one is configured. Only the key's SHA-256 is kept, and it is compared in
/// constant time.
#[derive(Clone)]
pub struct CloudAccess {
    allow: Vec<IpNet>,
    key_digest: Option<Vec<u8>>,
}

impl std::fmt::Debug for CloudAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudAccess").field("allow", &self.allow).field("key", &self.key_digest.is_some()).finish()
    }
}

impl CloudAccess {
    pub fn new(allow: Vec<IpNet>, key: Option<&str>) -> Self {
        Self { allow, key_digest: key.map(digest) }
    }

    pub fn permits(&self, address: Option<IpAddr>, key: Option<&str>) -> bool {
        // `::ffff:127.0.0.1` (an IPv4 caller on a dual-stack socket) is 127.0.0.1.
        let Some(address) = address.map(|a| a.to_canonical()) else {
            return false;
        };
        if !self.allow.iter().any(|net| net.contains(&address)) {
            return false;
        }
        match &self.key_digest {
            None => true,
            Some(expected) => key.is_some_and(|given| bool::from(digest(given).ct_eq(expected))),
        }
    }
}

/// Hashing first makes the comparison take the same time whatever the key's length.
fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Exam machines take no USB devices and share no clipboard with the terminal, so
/// nothing is carried in or out of an exam but through the exam system.
pub const EXAM_POLICY: thindesk_shared::Policy =
    thindesk_shared::Policy { enable_usb: false, enable_clipboard: false, enable_audio: true };

pub struct Cloud {
    store: Arc<Store>,
    compute: Arc<dyn Compute>,
    /// What `vm_ip` says: with user-mode networking a guest is reached through this
    /// host's ports.
    public_address: String,
    access: CloudAccess,
    audit: Audit,
}

impl Cloud {
    pub fn new(store: Arc<Store>, compute: Arc<dyn Compute>, public_address: String, access: CloudAccess) -> Self {
        Self { audit: Audit::new(store.clone()), store, compute, public_address, access }
    }

    /// [`Cloud::launch_instance`], recorded in the audit log as done by `by`.
    pub fn launch(
        &self,
        by: &Actor,
        image: &str,
        flavor: &str,
        internet: bool,
        name: &str,
    ) -> Result<LaunchedInstance, CloudError> {
        self.launch_as(Some(by), image, flavor, internet, name)
    }

    /// [`Cloud::destroy_instance`], recorded in the audit log as done by `by`.
    pub fn destroy(&self, by: &Actor, vm_id: &str) -> Result<(), CloudError> {
        self.destroy_instance(vm_id)?;
        self.audit.record(by, "instance.destroy", vm_id, "");
        Ok(())
    }

    /// [`CloudError::PermissionDenied`] unless the caller's address is allowed and, when
    /// a key is configured, `key` is that key.
    pub fn authorize(&self, address: Option<IpAddr>, key: Option<&str>) -> Result<(), CloudError> {
        if self.access.permits(address, key) { Ok(()) } else { Err(CloudError::PermissionDenied) }
    }

    /// Defines and starts a machine from the catalogue, and answers once it runs. If
    /// the hypervisor refuses at any step, the machine and the record are removed
    /// again.
    ///
    /// The record is written `Pending` before anything is defined and made `Ready`
    /// only once the machine runs, right before the answer: a server killed in
    /// between leaves a pending record, which the next server undoes with its machine
    /// (`service::recovery`), so an id is either answered or never existed.
    pub fn launch_instance(
        &self,
        image: &str,
        flavor: &str,
        internet: bool,
        name: &str,
    ) -> Result<LaunchedInstance, CloudError> {
        self.launch_as(None, image, flavor, internet, name)
    }

    /// The launch, audited as done by `by` when given. The audit entry is written
    /// before the record turns `Ready`, so that as little as can be lies between that
    /// and the answer (a server killed there leaves a launch its caller never heard
    /// of; the audit log then also shows it undone or kept).
    fn launch_as(
        &self,
        by: Option<&Actor>,
        image: &str,
        flavor: &str,
        internet: bool,
        name: &str,
    ) -> Result<LaunchedInstance, CloudError> {
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(CloudError::InvalidName);
        }
        let image = self.store.image_by_name(image)?.ok_or_else(|| CloudError::InvalidImage(image.to_owned()))?;
        let flavor = self.store.flavor_by_name(flavor)?.ok_or_else(|| CloudError::InvalidFlavor(flavor.to_owned()))?;
        let id = random_token(12);
        let instance =
            NewInstance { id: &id, phase: Phase::Pending, name, image_id: image.id, flavor_id: flavor.id, internet };
        self.store.insert_instance(&instance, unix_now())?;
        // The exam system's image decides how its guests log in: no account is set.
        let machine = super::catalogue::machine_spec(&id, name, &image, &flavor, internet, EXAM_POLICY, None);
        let started = self.start(&machine).map_err(CloudError::Launch).and_then(|started| {
            if let Some(by) = by {
                let detail = format!("{name:?}, image {}, flavor {}, internet {internet}", image.name, flavor.name);
                self.audit.record(by, "instance.launch", &id, &detail);
            }
            self.settle(&id).map(|()| started)
        });
        match started {
            Ok((display, address)) => {
                tracing::info!(vm_id = %id, name, image = %image.name, flavor = %flavor.name, internet, "instance launched");
                Ok(LaunchedInstance {
                    vm_id: id,
                    vm_ip: address.unwrap_or_else(|| self.public_address.clone()),
                    spice_ip: Some(self.public_address.clone()),
                    spice_port: display.spice_port,
                    spice_password: display.spice_ticket.expose().to_owned(),
                    rdp_port: display.rdp_port,
                    spice_tls_port: display.spice_tls.is_some().then_some(display.spice_port),
                    spice_ca: display.spice_tls.as_ref().map(|tls| tls.ca.clone()),
                    spice_host_subject: display.spice_tls.map(|tls| tls.host_subject),
                })
            }
            Err(error) => {
                match self.compute.destroy(&id) {
                    Ok(()) | Err(ComputeError::NoSuchMachine(_)) => {}
                    Err(cleanup) => {
                        tracing::error!(vm_id = %id, error = %cleanup, "cannot free a machine that failed to start");
                    }
                }
                self.forget(&id);
                Err(error)
            }
        }
    }

    /// Marks a launched instance `Ready`: from here on it is listed and answered.
    fn settle(&self, id: &str) -> Result<(), CloudError> {
        if self.store.move_instance(id, Phase::Pending, Phase::Ready)? {
            Ok(())
        } else {
            Err(CloudError::Launch(ComputeError::Failed(format!("the record of instance {id} went missing"))))
        }
    }

    /// Starts the machine: its display, and its own address where the driver knows
    /// one (a cloud's fixed address; else `vm_ip` is this host's).
    fn start(&self, machine: &MachineSpec) -> Result<(Display, Option<String>), ComputeError> {
        let id = &machine.id;
        self.compute.define_and_start(machine)?;
        let view = self.compute.inspect(id)?;
        let display =
            view.display.ok_or_else(|| ComputeError::Failed(format!("machine {id} runs but shows no display")))?;
        Ok((display, view.address))
    }

    fn forget(&self, id: &str) {
        if let Err(error) = self.store.delete_instance(id) {
            tracing::error!(vm_id = %id, %error, "cannot remove the record of a machine that failed to launch");
        }
    }

    /// Stops the machine and frees what it held; unknown ids are
    /// [`CloudError::InvalidVmId`], so a second destroy is one too.
    ///
    /// The record turns `Removing` first (no longer listed, nor destroyable twice at
    /// once); a server killed before the record is gone leaves it so, and the next
    /// server finishes the job. If the hypervisor refuses, it is `Ready` again.
    pub fn destroy_instance(&self, vm_id: &str) -> Result<(), CloudError> {
        let record = self.store.instance(vm_id)?.ok_or(CloudError::InvalidVmId)?;
        if !self.store.move_instance(&record.id, Phase::Ready, Phase::Removing)? {
            return Err(CloudError::InvalidVmId);
        }
        match self.compute.destroy(&record.id) {
            // A machine the hypervisor does not know is already gone.
            Ok(()) | Err(ComputeError::NoSuchMachine(_)) => {}
            Err(error) => {
                if let Err(reopen) = self.store.move_instance(&record.id, Phase::Removing, Phase::Ready) {
                    tracing::error!(vm_id = %record.id, error = %reopen, "cannot keep an instance whose destroy failed; the next start destroys it");
                }
                return Err(CloudError::Destroy(error));
            }
        }
        if !self.store.delete_instance(&record.id)? {
            return Err(CloudError::InvalidVmId);
        }
        tracing::info!(vm_id = %record.id, name = %record.name, "instance destroyed");
        Ok(())
    }

    /// The instance's state and display as the hypervisor sees them now.
    pub fn query_instance(&self, vm_id: &str) -> Result<InstanceInfo, CloudError> {
        let record = self.store.instance(vm_id)?.ok_or(CloudError::InvalidVmId)?;
        Ok(self.info(record))
    }

    /// Every instance, oldest first.
    pub fn list_instances(&self) -> Result<Vec<InstanceInfo>, CloudError> {
        Ok(self.store.instances()?.into_iter().map(|record| self.info(record)).collect())
    }

    pub fn list_images(&self) -> Result<Vec<ImageInfo>, CloudError> {
        Ok(self
            .store
            .images()?
            .into_iter()
            .map(|i| ImageInfo { name: i.name, default_connection_type: i.default_connection_type })
            .collect())
    }

    pub fn list_flavors(&self) -> Result<Vec<FlavorInfo>, CloudError> {
        Ok(self
            .store
            .flavors()?
            .into_iter()
            .map(|f| FlavorInfo { name: f.name, vcpus: f.vcpus, ram: f.ram_mib, disk: f.disk_gib })
            .collect())
    }

    fn info(&self, record: InstanceRecord) -> InstanceInfo {
        let (status, display, address) = match self.compute.inspect(&record.id) {
            Ok(view) => (view.status, view.display, view.address),
            Err(error) => {
                tracing::warn!(vm_id = %record.id, %error, "cannot inspect instance");
                (DesktopStatus::Error, None, None)
            }
        };
        InstanceInfo {
            vm_id: record.id,
            name: record.name,
            image: record.image,
            flavor: record.flavor,
            internet: record.internet,
            status,
            vm_ip: address.unwrap_or_else(|| self.public_address.clone()),
            spice_ip: Some(self.public_address.clone()),
            spice_port: display.as_ref().map(|d| d.spice_port),
            rdp_port: display.as_ref().and_then(|d| d.rdp_port),
            spice_tls_port: display.as_ref().filter(|d| d.spice_tls.is_some()).map(|d| d.spice_port),
            spice_ca: display.as_ref().and_then(|d| d.spice_tls.as_ref()).map(|tls| tls.ca.clone()),
            spice_host_subject: display.as_ref().and_then(|d| d.spice_tls.as_ref()).map(|tls| tls.host_subject.clone()),
            spice_password: display.map(|d| d.spice_ticket.expose().to_owned()),
            created_at: iso8601(record.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::PowerOp;
    use crate::compute::double::TestCompute;
    use crate::compute::{GuestAccount, MachineSpec, MachineView};
    use crate::store::NewImage;
    use std::sync::Mutex;
    use thindesk_shared::{ConnectionType, Secret};

    /// The test double, told to refuse one define or one start with a given error, and
    /// remembering every id it was asked to define.
    #[derive(Default)]
    struct Scripted {
        inner: TestCompute,
        refuse_define: Mutex<Option<ComputeError>>,
        refuse_start: Mutex<Option<ComputeError>>,
        defined: Mutex<Vec<String>>,
    }

    impl Compute for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }

        fn define(&self, spec: &MachineSpec) -> Result<(), ComputeError> {
            self.defined.lock().expect("lock").push(spec.id.clone());
            match self.refuse_define.lock().expect("lock").take() {
                Some(error) => Err(error),
                None => self.inner.define(spec),
            }
        }

        fn destroy(&self, id: &str) -> Result<(), ComputeError> {
            self.inner.destroy(id)
        }

        fn power(&self, id: &str, op: PowerOp) -> Result<(), ComputeError> {
            match (op, self.refuse_start.lock().expect("lock").take()) {
                (PowerOp::Start, Some(error)) => Err(error),
                _ => self.inner.power(id, op),
            }
        }

        fn new_ticket(&self, _id: &str) -> Result<(), ComputeError> {
            Ok(())
        }

        fn inspect(&self, id: &str) -> Result<MachineView, ComputeError> {
            self.inner.inspect(id)
        }

        fn machines(&self) -> Result<Vec<String>, ComputeError> {
            self.inner.machines()
        }

        fn set_guest_account(&self, id: &str, account: &GuestAccount) -> Result<(), ComputeError> {
            self.inner.set_guest_account(id, account)
        }
    }

    fn cloud() -> (tempfile::TempDir, Arc<Store>, Arc<Scripted>, Cloud) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let disk = dir.path().join("xubuntu.qcow2");
        std::fs::write(&disk, b"QFI\xfb").expect("disk");
        let image = NewImage {
            name: "xubuntu-14.04-desktop-x86",
            base_disk: disk.to_str().expect("utf-8"),
            default_connection_type: ConnectionType::Spice,
            os_username: "student",
            os_password: &Secret::new("pw"),
            guest_agent: false,
        };
        store.insert_image(&image, 0).expect("image");
        let compute = Arc::new(Scripted::default());
        let access = CloudAccess::new(vec!["127.0.0.0/8".parse().expect("net")], None);
        let cloud = Cloud::new(store.clone(), compute.clone(), "192.0.2.10".into(), access);
        (dir, store, compute, cloud)
    }

    const IMAGE: &str = "xubuntu-14.04-desktop-x86";

    #[test]
    fn a_launch_defines_and_starts_the_machine_and_answers_with_its_display() {
        let (dir, store, compute, cloud) = cloud();
        let launched = cloud.launch_instance(IMAGE, "m1.small", false, "final_exam_141242022").expect("launch");
        assert!(launched.vm_id.len() >= 16, "at least 96 random bits: {}", launched.vm_id);
        assert_eq!(launched.vm_ip, "192.0.2.10");
        assert!(!launched.spice_password.is_empty());
        assert_eq!(launched.rdp_port, None);
        let machine = compute.inner.spec(&launched.vm_id).expect("defined");
        assert_eq!((machine.vcpus, machine.ram_mib, machine.disk_gib), (1, 2048, 20));
        assert!(!machine.internet, "internet=false reaches the driver");
        assert!(!machine.rdp);
        assert!(!machine.policy.enable_usb && !machine.policy.enable_clipboard, "exam machines are locked down");
        assert_eq!(machine.base_disk, dir.path().join("xubuntu.qcow2"));
        assert_eq!(machine.name, "final_exam_141242022");
        assert_eq!(compute.inner.operations(), [(launched.vm_id.clone(), PowerOp::Start)]);
        let info = cloud.query_instance(&launched.vm_id).expect("query");
        assert_eq!(info.status, DesktopStatus::Active);
        assert_eq!(info.spice_port, Some(launched.spice_port));
        assert_eq!(store.instances().expect("list").len(), 1);
        let again = cloud.launch_instance(IMAGE, "m1.small", false, "final_exam_141242022").expect("names repeat");
        assert_ne!(again.vm_id, launched.vm_id);
    }

    #[test]
    fn a_failed_start_leaves_no_record_and_no_machine() {
        let (_dir, store, compute, cloud) = cloud();
        *compute.refuse_start.lock().expect("lock") = Some(ComputeError::Failed("qemu exited".into()));
        let error = cloud.launch_instance(IMAGE, "m1.tiny", true, "exam").expect_err("start fails");
        assert!(matches!(error, CloudError::Launch(ComputeError::Failed(_))), "{error:?}");
        let id = compute.defined.lock().expect("lock")[0].clone();
        assert!(compute.inner.spec(&id).is_none(), "the defined machine is destroyed again");
        assert!(store.instances().expect("list").is_empty());
        assert!(matches!(cloud.destroy_instance(&id), Err(CloudError::InvalidVmId)));
    }

    #[test]
    fn no_capacity_is_a_launch_failure_that_keeps_its_reason_and_leaves_nothing() {
        let (_dir, store, compute, cloud) = cloud();
        *compute.refuse_define.lock().expect("lock") =
            Some(ComputeError::NoCapacity("not enough free memory on the host (1024 MiB free)".into()));
        match cloud.launch_instance(IMAGE, "m1.medium", false, "exam") {
            Err(CloudError::Launch(ComputeError::NoCapacity(reason))) => assert!(reason.contains("free memory")),
            other => panic!("expected NoCapacity, got {other:?}"),
        }
        assert!(store.instances().expect("list").is_empty());
        assert!(compute.inner.operations().is_empty(), "nothing was started");
    }

    #[test]
    fn unknown_names_are_refused_before_anything_is_defined() {
        let (_dir, store, compute, cloud) = cloud();
        assert!(matches!(cloud.launch_instance("nope", "m1.small", false, "x"), Err(CloudError::InvalidImage(_))));
        assert!(matches!(cloud.launch_instance(IMAGE, "m9.huge", false, "x"), Err(CloudError::InvalidFlavor(_))));
        assert!(matches!(
            cloud.launch_instance(IMAGE, "m1.small", false, &"n".repeat(65)),
            Err(CloudError::InvalidName)
        ));
        assert!(matches!(cloud.launch_instance(IMAGE, "m1.small", false, "a\nb"), Err(CloudError::InvalidName)));
        assert!(compute.defined.lock().expect("lock").is_empty());
        assert!(store.instances().expect("list").is_empty());
    }

    #[test]
    fn an_instance_not_yet_answered_or_being_destroyed_is_shown_to_no_one() {
        let (_dir, store, _compute, cloud) = cloud();
        let image = store.image_by_name(IMAGE).expect("q").expect("image");
        let flavor = store.flavor_by_name("m1.tiny").expect("q").expect("flavor");
        for (id, phase) in [("launching", Phase::Pending), ("destroying", Phase::Removing)] {
            let instance =
                NewInstance { id, phase, name: "exam", image_id: image.id, flavor_id: flavor.id, internet: false };
            store.insert_instance(&instance, 1).expect("instance");
            assert!(matches!(cloud.query_instance(id), Err(CloudError::InvalidVmId)));
            assert!(matches!(cloud.destroy_instance(id), Err(CloudError::InvalidVmId)));
        }
        assert!(cloud.list_instances().expect("list").is_empty());
        assert_eq!(store.instance_phases().expect("phases").len(), 2, "both left to the next start's recovery");
    }

    #[test]
    fn destroy_frees_the_machine_once_and_then_knows_no_such_id() {
        let (_dir, store, compute, cloud) = cloud();
        let launched = cloud.launch_instance(IMAGE, "m1.small", true, "teacher").expect("launch");
        cloud.destroy_instance(&launched.vm_id).expect("destroy");
        assert!(compute.inner.spec(&launched.vm_id).is_none());
        assert!(store.instances().expect("list").is_empty());
        assert!(matches!(cloud.destroy_instance(&launched.vm_id), Err(CloudError::InvalidVmId)));
        assert!(matches!(cloud.query_instance(&launched.vm_id), Err(CloudError::InvalidVmId)));
    }

    #[test]
    fn a_hypervisor_that_cannot_destroy_keeps_the_instance_for_another_try() {
        let (_dir, store, compute, cloud) = cloud();
        let launched = cloud.launch_instance(IMAGE, "m1.small", true, "teacher").expect("launch");
        compute.inner.set_failing(true);
        assert!(matches!(cloud.destroy_instance(&launched.vm_id), Err(CloudError::Destroy(_))));
        assert_eq!(store.instances().expect("list").len(), 1);
        compute.inner.set_failing(false);
        cloud.destroy_instance(&launched.vm_id).expect("second try");
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn forms_are_read_as_the_seed_defines_them() {
        let launch = form(&[
            ("command", "launch_instance"),
            ("image", "i"),
            ("flavor", "f"),
            ("internet", "false"),
            ("name", "n"),
        ]);
        assert_eq!(
            CloudRequest::parse(&launch).expect("valid"),
            CloudRequest::Launch { image: "i".into(), flavor: "f".into(), internet: false, name: "n".into() }
        );
        match CloudRequest::parse(&form(&[("command", "launch_instance"), ("image", "i"), ("flavor", "")])) {
            Err(CloudError::ArgumentMissing(missing)) => assert_eq!(missing, ["flavor", "internet", "name"]),
            other => panic!("{other:?}"),
        }
        let mut yes = launch.clone();
        yes.insert("internet".into(), "yes".into());
        assert!(matches!(CloudRequest::parse(&yes), Err(CloudError::InvalidInternet)));
        assert!(matches!(CloudRequest::parse(&form(&[])), Err(CloudError::InvalidCommand)));
        assert!(matches!(
            CloudRequest::parse(&form(&[("command", "reboot_instance")])),
            Err(CloudError::InvalidCommand)
        ));
        assert!(matches!(
            CloudRequest::parse(&form(&[("command", "destroy_instance")])),
            Err(CloudError::ArgumentMissing(missing)) if missing == ["vm_id"]
        ));
    }

    #[test]
    fn access_needs_an_allowed_address_and_the_key_when_one_is_set() {
        let loopback: Vec<IpNet> = vec!["127.0.0.0/8".parse().expect("net"), "::1/128".parse().expect("net")];
        let local = Some(IpAddr::from([127, 0, 0, 1]));
        let mapped = Some("::ffff:127.0.0.1".parse().expect("ip"));
        let outside = Some(IpAddr::from([192, 0, 2, 7]));
        let open = CloudAccess::new(loopback.clone(), None);
        assert!(open.permits(local, None));
        assert!(open.permits(mapped, None));
        assert!(open.permits(Some("::1".parse().expect("ip")), Some("anything")));
        assert!(!open.permits(outside, None));
        assert!(!open.permits(None, None));
        let keyed = CloudAccess::new(loopback, Some("correct-horse-battery"));
        assert!(keyed.permits(local, Some("correct-horse-battery")));
        assert!(!keyed.permits(local, Some("correct-horse-batter")));
        assert!(!keyed.permits(local, None));
        assert!(!keyed.permits(outside, Some("correct-horse-battery")));
        assert!(!format!("{keyed:?}").contains("horse"));
    }
}
