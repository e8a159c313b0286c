//! What the administrator's API (`/api/v1.0/admin/...`) answers: the `data` of each
//! successful reply. The management console and the command line read the same
//! structures, so the three faces of an administrative operation cannot drift apart.
//!
//! The answers carry no secret: no password, SPICE ticket or token. The request
//! bodies at the end are what the API documents; the server reads them field by
//! field (`service::admin::decode`), and a test checks both name the same fields.

use crate::{ConnectionType, DesktopStatus, Place, RegistrationMode, Secret, Terminal};
use serde::{Deserialize, Serialize};

/// `GET users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserList {
    pub user_list: Vec<User>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub name: String,
    pub is_admin: bool,
    /// ISO 8601 UTC.
    pub created_at: String,
}

/// `POST users`: who was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserCreated {
    pub name: String,
    pub is_admin: bool,
}

/// `POST users/import`: the names created, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsersImported {
    pub created: Vec<String>,
}

/// `GET places` (the same list the v1.0 API gives terminals).
pub type PlaceList = crate::PlaceList;

/// `POST places`: the place as stored (trimmed).
pub type PlaceCreated = Place;

/// `GET terminals`, `GET terminals/pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalList {
    pub terminal_list: Vec<Terminal>,
}

/// The server's settings, keyed as the API reads and writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settings {
    pub terminal_registration_mode: RegistrationMode,
}

impl Settings {
    /// The one spelling of the registration mode's setting, in every face and in the
    /// database.
    pub const TERMINAL_REGISTRATION_MODE: &'static str = "terminal_registration_mode";
}

/// `GET images`: never the OS password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = admin::ImageList))]
pub struct ImageList {
    pub image_list: Vec<Image>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    pub name: String,
    /// Absolute path of the base disk.
    pub disk: String,
    pub default_connection_type: ConnectionType,
    pub os_username: String,
    /// The image runs the QEMU guest agent, so each desktop made from it gets its
    /// own OS password, set in the guest at every start. `false`: its desktops share
    /// the image's OS password.
    #[serde(default)]
    pub guest_agent: bool,
    /// ISO 8601 UTC.
    pub created_at: String,
}

/// `POST images`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageAdded {
    pub name: String,
}

/// `GET flavors`, smallest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = admin::FlavorList))]
pub struct FlavorList {
    pub flavor_list: Vec<Flavor>,
}

/// A machine size; also the answer of `POST flavors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Flavor {
    pub name: String,
    pub vcpus: u32,
    /// MiB.
    pub ram: u32,
    /// GiB.
    pub disk: u32,
}

/// `GET desktops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = admin::DesktopList))]
pub struct DesktopList {
    pub desktop_list: Vec<DesktopSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DesktopSummary {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub status: DesktopStatus,
    pub image: Option<String>,
    pub flavor: Option<String>,
}

/// `POST desktops` for one `user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DesktopCreated {
    pub id: String,
    pub owner: String,
}

/// `POST desktops` for `users` or `all_students`: each user's desktop is made on its
/// own, so some may fail while the others are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DesktopsGiven {
    pub created: Vec<GivenDesktop>,
    pub failed: Vec<NotGiven>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GivenDesktop {
    pub user: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotGiven {
    pub user: String,
    /// Why, in words for the administrator; never an internal detail.
    pub error: String,
}

/// `GET instances`: for looking, not connecting, so no SPICE ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = admin::InstanceList))]
pub struct InstanceList {
    pub instance_list: Vec<Instance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instance {
    pub vm_id: String,
    pub name: String,
    pub image: String,
    pub flavor: String,
    pub internet: bool,
    pub status: DesktopStatus,
    pub spice_port: Option<u16>,
    pub rdp_port: Option<u16>,
    /// ISO 8601 UTC.
    pub created_at: String,
}

/// `GET audit`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditList {
    pub audit_list: Vec<AuditEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    /// ISO 8601 UTC.
    pub at: String,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

// ----- request bodies -----------------------------------------------------------

/// `POST users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUser {
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
    /// An administrator; `false` when left out.
    #[serde(default)]
    pub admin: bool,
}

/// `POST users/import` as JSON; `text/csv` and a multipart upload (`file`) work too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsersCsv {
    /// A header line, then `name,password[,admin]` per line. All or nothing.
    pub csv: String,
}

/// `PUT users/{name}/password`: every token and console session of the user ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordReset {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
}

/// `POST places`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPlace {
    pub name: String,
    #[serde(default)]
    pub address: String,
}

/// `PUT terminals/{mac}/move`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalMove {
    pub place: String,
    pub seat_number: String,
}

/// `POST images`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewImage {
    pub name: String,
    /// Absolute path of an existing base disk (qcow2) on the server's host.
    pub disk: String,
    /// `spice` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub os_password: Option<Secret>,
    /// The image runs the QEMU guest agent (`qemu-guest-agent` on the virtio-serial
    /// port `org.qemu.guest_agent.0`): each desktop then gets its own OS password.
    /// `false` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_agent: Option<bool>,
}

/// `POST desktops`: from a catalogue image and flavor, for exactly one of `user`,
/// `users` or `all_students`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GiveDesktops {
    pub image: String,
    pub flavor: String,
    /// Shown to the user; the image's name when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// One user: a refusal is the whole call's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A list of users: each one's desktop is made on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// `true`: every user who is not an administrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_students: Option<bool>,
}

/// `PUT desktops/{id}/assign`: the desktop's new owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DesktopAssignment {
    pub user: String,
}
