//! The catalogue: images (base disks and how to log in to them) and flavors (machine
//! sizes) that desktops and cloud instances are made from.
//!
//! On a driver whose platform keeps its own catalogue (OpenStack's Glance images and
//! Nova flavors), the catalogue follows the platform's ([`Catalogue::follow_platform`])
//! and administrators change it there, not here.

use super::audit::{Actor, Audit};
use super::{FieldErrors, ServiceError, unix_now};
use crate::compute::{Compute, GuestAccount, MachineSpec, PlatformCatalogue};
use crate::store::{Conflict, FlavorRecord, ImageRecord, NewFlavor, NewImage, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thindesk_shared::{ConnectionType, Policy, Secret};

pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_VCPUS: u32 = 64;
pub const MIN_RAM_MIB: u32 = 64;
pub const MIN_DISK_GIB: u32 = 1;

/// What an administrator says when adding an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub name: String,
    /// Absolute path of the base disk (qcow2); desktops get overlays on it.
    pub base_disk: PathBuf,
    pub default_connection_type: ConnectionType,
    /// The account on the guest that desktops made from this image log in with.
    pub os_username: String,
    pub os_password: Secret,
    /// The image runs the QEMU guest agent; see [`crate::store::ImageRecord`].
    pub guest_agent: bool,
}

/// An image as the listing shows it; never its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub base_disk: PathBuf,
    pub default_connection_type: ConnectionType,
    pub os_username: String,
    pub guest_agent: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    pub name: String,
    pub vcpus: u32,
    pub ram_mib: u32,
    pub disk_gib: u32,
}

pub struct Catalogue {
    store: Arc<Store>,
    compute: Arc<dyn Compute>,
    audit: Audit,
}

/// What [`Catalogue::follow_platform`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Followed {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Gone from the platform but still used by desktops or instances: kept until
    /// those are deleted (starting them fails with the platform's words meanwhile).
    pub kept_in_use: Vec<String>,
}

impl Catalogue {
    pub fn new(store: Arc<Store>, compute: Arc<dyn Compute>) -> Self {
        Self { audit: Audit::new(store.clone()), store, compute }
    }

    /// Whether this catalogue follows a platform's own (and refuses changes here).
    pub fn follows_platform(&self) -> bool {
        self.compute.has_platform_catalogue()
    }

    /// Refuses a change to a catalogue that follows the platform's.
    fn check_own_catalogue(&self) -> Result<(), ServiceError> {
        if !self.compute.has_platform_catalogue() {
            return Ok(());
        }
        let platform = self.compute.location().unwrap_or_else(|| "the platform".to_owned());
        Err(ServiceError::Conflict(format!(
            "this server's images and flavors are those of {platform}: change them there (Glance, Nova); \
             they are followed here within a minute"
        )))
    }

    /// Brings the catalogue in step with the platform's own, for a driver that has
    /// one: what the platform added is added, what it no longer has is removed
    /// unless desktops or instances use it. `None`: this driver has no catalogue of
    /// its own, and nothing was done.
    pub fn follow_platform(&self) -> Result<Option<Followed>, ServiceError> {
        let Some(platform) = self.compute.platform_catalogue()? else {
            return Ok(None);
        };
        let followed = self.follow(&platform)?;
        if followed != Followed::default() {
            tracing::info!(?followed, "the catalogue follows the platform's");
        }
        Ok(Some(followed))
    }

    fn follow(&self, platform: &PlatformCatalogue) -> Result<Followed, ServiceError> {
        let by = Actor::system();
        let mut followed = Followed::default();
        let images = self.store.images()?;
        for image in &platform.images {
            if images.iter().any(|known| known.name == image.name) || !validate_name(&image.name).is_empty() {
                continue;
            }
            let new = NewImage {
                name: &image.name,
                base_disk: &image.location,
                default_connection_type: if image.rdp { ConnectionType::Rdp } else { ConnectionType::Spice },
                os_username: &image.os_username,
                // The platform does not say an image's password; with a guest agent
                // each desktop gets its own anyway.
                os_password: &Secret::default(),
                guest_agent: image.guest_agent,
            };
            match self.store.insert_image(&new, unix_now()) {
                // A name the platform has twice is added once; launching from it
                // says it is ambiguous (the driver checks at each launch).
                Ok(_) | Err(StoreError::Conflict(Conflict::ImageExists)) => {}
                Err(other) => return Err(other.into()),
            }
            self.audit.record(&by, "image.follow", &image.name, &image.location);
            followed.added.push(format!("image {}", image.name));
        }
        for known in images.iter().filter(|known| !platform.images.iter().any(|image| image.name == known.name)) {
            match self.store.delete_image(&known.name) {
                Ok(_) => {
                    self.audit.record(&by, "image.unfollow", &known.name, "gone from the platform");
                    followed.removed.push(format!("image {}", known.name));
                }
                Err(StoreError::InUse(_)) => followed.kept_in_use.push(format!("image {}", known.name)),
                Err(other) => return Err(other.into()),
            }
        }
        let flavors = self.store.flavors()?;
        for flavor in &platform.flavors {
            let valid = validate_name(&flavor.name).is_empty() && flavor.vcpus >= 1 && flavor.ram_mib >= 1;
            if !valid || flavors.iter().any(|known| known.name == flavor.name) {
                continue;
            }
            let new = NewFlavor {
                name: &flavor.name,
                vcpus: flavor.vcpus,
                ram_mib: flavor.ram_mib,
                disk_gib: flavor.disk_gib,
            };
            match self.store.insert_flavor(&new) {
                Ok(_) | Err(StoreError::Conflict(Conflict::FlavorExists)) => {}
                Err(other) => return Err(other.into()),
            }
            let detail = format!("{} vCPU, {} MiB, {} GiB", flavor.vcpus, flavor.ram_mib, flavor.disk_gib);
            self.audit.record(&by, "flavor.follow", &flavor.name, &detail);
            followed.added.push(format!("flavor {}", flavor.name));
        }
        for known in flavors.iter().filter(|known| !platform.flavors.iter().any(|flavor| flavor.name == known.name)) {
            match self.store.delete_flavor(&known.name) {
                Ok(_) => {
                    self.audit.record(&by, "flavor.unfollow", &known.name, "gone from the platform");
                    followed.removed.push(format!("flavor {}", known.name));
                }
                Err(StoreError::InUse(_)) => followed.kept_in_use.push(format!("flavor {}", known.name)),
                Err(other) => return Err(other.into()),
            }
        }
        Ok(followed)
    }

    /// Adds an image after checking that its base disk is an existing regular file.
    pub fn add_image(&self, by: &Actor, spec: &ImageSpec) -> Result<(), ServiceError> {
        self.check_own_catalogue()?;
        let name = spec.name.trim();
        let mut errors = validate_name(name);
        let base_disk = match check_base_disk(&spec.base_disk) {
            Ok(path) => Some(path),
            Err(message) => {
                errors.add("disk", message);
                None
            }
        };
        if spec.os_username.chars().any(char::is_control) || spec.os_username.chars().count() > MAX_NAME_CHARS {
            errors.add("os_username", format!("must be at most {MAX_NAME_CHARS} printable characters"));
        }
        let base_disk = match base_disk {
            Some(path) if errors.is_empty() => path,
            _ => return Err(ServiceError::Invalid(errors)),
        };
        let image = NewImage {
            name,
            base_disk: &base_disk,
            default_connection_type: spec.default_connection_type,
            os_username: &spec.os_username,
            os_password: &spec.os_password,
            guest_agent: spec.guest_agent,
        };
        match self.store.insert_image(&image, unix_now()) {
            Ok(_) => {
                self.audit.record(by, "image.add", name, &base_disk);
                Ok(())
            }
            Err(StoreError::Conflict(Conflict::ImageExists)) => {
                Err(ServiceError::Conflict(format!("an image named {name:?} exists")))
            }
            Err(other) => Err(other.into()),
        }
    }

    pub fn images(&self) -> Result<Vec<Image>, ServiceError> {
        Ok(self
            .store
            .images()?
            .into_iter()
            .map(|i| Image {
                name: i.name,
                base_disk: i.base_disk,
                default_connection_type: i.default_connection_type,
                os_username: i.os_username,
                guest_agent: i.guest_agent,
                created_at: i.created_at,
            })
            .collect())
    }

    /// Refused while a desktop or instance uses the image.
    pub fn delete_image(&self, by: &Actor, name: &str) -> Result<(), ServiceError> {
        self.check_own_catalogue()?;
        match self.store.delete_image(name) {
            Ok(true) => {
                self.audit.record(by, "image.delete", name, "");
                Ok(())
            }
            Ok(false) => Err(ServiceError::NotFound(format!("image {name:?}"))),
            Err(StoreError::InUse(_)) => Err(in_use("image")),
            Err(other) => Err(other.into()),
        }
    }

    pub fn add_flavor(&self, by: &Actor, flavor: &Flavor) -> Result<(), ServiceError> {
        self.check_own_catalogue()?;
        let name = flavor.name.trim();
        let mut errors = validate_name(name);
        if !(1..=MAX_VCPUS).contains(&flavor.vcpus) {
            errors.add("vcpus", format!("must be 1 to {MAX_VCPUS}"));
        }
        if flavor.ram_mib < MIN_RAM_MIB {
            errors.add("ram", format!("must be at least {MIN_RAM_MIB} MiB"));
        }
        if flavor.disk_gib < MIN_DISK_GIB {
            errors.add("disk", format!("must be at least {MIN_DISK_GIB} GiB"));
        }
        errors.into_result(())?;
        let new = NewFlavor { name, vcpus: flavor.vcpus, ram_mib: flavor.ram_mib, disk_gib: flavor.disk_gib };
        match self.store.insert_flavor(&new) {
            Ok(_) => {
                let detail = format!("{} vCPU, {} MiB, {} GiB", flavor.vcpus, flavor.ram_mib, flavor.disk_gib);
                self.audit.record(by, "flavor.add", name, &detail);
                Ok(())
            }
            Err(StoreError::Conflict(Conflict::FlavorExists)) => {
                Err(ServiceError::Conflict(format!("a flavor named {name:?} exists")))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Smallest first.
    pub fn flavors(&self) -> Result<Vec<Flavor>, ServiceError> {
        Ok(self.store.flavors()?.into_iter().map(flavor_summary).collect())
    }

    /// Refused while a desktop or instance is of this flavor.
    pub fn delete_flavor(&self, by: &Actor, name: &str) -> Result<(), ServiceError> {
        self.check_own_catalogue()?;
        match self.store.delete_flavor(name) {
            Ok(true) => {
                self.audit.record(by, "flavor.delete", name, "");
                Ok(())
            }
            Ok(false) => Err(ServiceError::NotFound(format!("flavor {name:?}"))),
            Err(StoreError::InUse(_)) => Err(in_use("flavor")),
            Err(other) => Err(other.into()),
        }
    }
}

/// Why an image or flavor cannot be deleted yet.
fn in_use(kind: &str) -> ServiceError {
    ServiceError::Conflict(format!("desktops or instances use this {kind}; delete those first"))
}

fn flavor_summary(record: FlavorRecord) -> Flavor {
    Flavor { name: record.name, vcpus: record.vcpus, ram_mib: record.ram_mib, disk_gib: record.disk_gib }
}

/// Image and flavor names: 1 to 64 printable characters. They are looked up exactly,
/// so leading or trailing spaces are trimmed before this check.
fn validate_name(name: &str) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        errors.add("name", format!("must be 1 to {MAX_NAME_CHARS} printable characters"));
    }
    errors
}

/// The base disk must be an absolute path, in UTF-8 (it is stored as text), to an
/// existing regular file. Whether it is a usable qcow2 is for the driver to say.
fn check_base_disk(path: &Path) -> Result<String, String> {
    if !path.is_absolute() {
        return Err(format!("must be an absolute path, not {}", path.display()));
    }
    let text = path.to_str().ok_or_else(|| format!("{} is not valid UTF-8", path.display()))?;
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(text.to_owned()),
        Ok(_) => Err(format!("{text} is not a regular file")),
        Err(e) => Err(format!("cannot use {text}: {e}")),
    }
}

/// The machine a desktop or cloud instance `id` gets from `image` and `flavor`.
/// `guest_account` is set in the guest at each start, for images that run the guest
/// agent (it is ignored for the others).
pub(crate) fn machine_spec(
    id: &str,
    name: &str,
    image: &ImageRecord,
    flavor: &FlavorRecord,
    internet: bool,
    policy: Policy,
    guest_account: Option<GuestAccount>,
) -> MachineSpec {
    MachineSpec {
        id: id.to_owned(),
        name: name.to_owned(),
        rdp: image.default_connection_type == ConnectionType::Rdp,
        base_disk: image.base_disk.clone(),
        image: image.name.clone(),
        flavor: flavor.name.clone(),
        vcpus: flavor.vcpus,
        ram_mib: flavor.ram_mib,
        disk_gib: flavor.disk_gib,
        internet,
        policy,
        guest_account: guest_account.filter(|_| image.guest_agent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> (tempfile::TempDir, Catalogue) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        (dir, Catalogue::new(store, Arc::new(crate::compute::NoCompute)))
    }

    fn image(name: &str, disk: PathBuf) -> ImageSpec {
        ImageSpec {
            name: name.into(),
            base_disk: disk,
            default_connection_type: ConnectionType::Spice,
            os_username: "student".into(),
            os_password: "os-secret".into(),
            guest_agent: false,
        }
    }

    #[test]
    fn an_image_needs_an_existing_regular_file_at_an_absolute_path() {
        let (dir, catalogue) = catalogue();
        let disk = dir.path().join("base.qcow2");
        std::fs::write(&disk, b"QFI\xfb").expect("disk");
        for bad in [PathBuf::from("base.qcow2"), dir.path().join("missing.qcow2"), dir.path().to_owned()] {
            match catalogue.add_image(&Actor::system(), &image("xubuntu", bad.clone())) {
                Err(ServiceError::Invalid(errors)) => assert!(errors.0.contains_key("disk"), "{bad:?}"),
                other => panic!("{bad:?} accepted: {other:?}"),
            }
        }
        assert!(catalogue.images().expect("list").is_empty());
        catalogue.add_image(&Actor::system(), &image(" xubuntu ", disk.clone())).expect("added");
        let listed = catalogue.images().expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].name.as_str(), listed[0].base_disk.as_path()), ("xubuntu", disk.as_path()));
        assert!(matches!(
            catalogue.add_image(&Actor::system(), &image("xubuntu", disk)),
            Err(ServiceError::Conflict(_))
        ));
    }

    #[test]
    fn names_and_sizes_are_checked() {
        let (_dir, catalogue) = catalogue();
        let bad = Flavor { name: "x".repeat(65), vcpus: 0, ram_mib: 63, disk_gib: 0 };
        match catalogue.add_flavor(&Actor::system(), &bad) {
            Err(ServiceError::Invalid(errors)) => {
                let fields: Vec<&str> = errors.0.keys().map(String::as_str).collect();
                assert_eq!(fields, ["disk", "name", "ram", "vcpus"]);
            }
            other => panic!("accepted: {other:?}"),
        }
        let too_many = Flavor { name: "huge".into(), vcpus: 65, ram_mib: 64, disk_gib: 1 };
        assert!(matches!(catalogue.add_flavor(&Actor::system(), &too_many), Err(ServiceError::Invalid(_))));
        let smallest = Flavor { name: "m1.nano".into(), vcpus: 1, ram_mib: 64, disk_gib: 1 };
        catalogue.add_flavor(&Actor::system(), &smallest).expect("smallest allowed");
        assert_eq!(catalogue.flavors().expect("list")[0], smallest);
        assert!(matches!(catalogue.add_flavor(&Actor::system(), &smallest), Err(ServiceError::Conflict(_))));
        catalogue.delete_flavor(&Actor::system(), "m1.nano").expect("deleted");
        assert!(matches!(catalogue.delete_flavor(&Actor::system(), "m1.nano"), Err(ServiceError::NotFound(_))));
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let spec = image("xubuntu", PathBuf::from("/x.qcow2"));
        assert!(!format!("{spec:?}").contains("os-secret"));
    }
}
