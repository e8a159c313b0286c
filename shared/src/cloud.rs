//! Return codes of the cloud API (`POST /cloud_api`, seed 000).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetCode {
    Success,
    InvalidCommand,
    ArgumentMissing,
    InvalidImage,
    InvalidFlavor,
    InvalidInternet,
    InvalidVmId,
    VmCreationFailure,
    InvalidCloudConfig,
    PermissionDenied,
}

impl RetCode {
    pub const ALL: [RetCode; 10] = [
        Self::Success,
        Self::InvalidCommand,
        Self::ArgumentMissing,
        Self::InvalidImage,
        Self::InvalidFlavor,
        Self::InvalidInternet,
        Self::InvalidVmId,
        Self::VmCreationFailure,
        Self::InvalidCloudConfig,
        Self::PermissionDenied,
    ];

    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::InvalidCommand => 1,
            Self::ArgumentMissing => 2,
            Self::InvalidImage => 3,
            Self::InvalidFlavor => 4,
            Self::InvalidInternet => 5,
            Self::InvalidVmId => 6,
            Self::VmCreationFailure => 7,
            Self::InvalidCloudConfig => 8,
            Self::PermissionDenied => 9,
        }
    }

    /// The name in the seed's `ret_code.py`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "RET_SUCCESS",
            Self::InvalidCommand => "ERR_INVAL_CMD",
            Self::ArgumentMissing => "ERR_ARG_MISSED",
            Self::InvalidImage => "ERR_INVAL_IMAGE",
            Self::InvalidFlavor => "ERR_INVAL_FLAVOR",
            Self::InvalidInternet => "ERR_INVAL_INTERNET",
            Self::InvalidVmId => "ERR_INVAL_VM_ID",
            Self::VmCreationFailure => "ERR_VM_CREATION_FAILURE",
            Self::InvalidCloudConfig => "ERR_INVAL_CLOUD_CONFIG",
            Self::PermissionDenied => "ERR_PERMISSION_DENIED",
        }
    }

    /// The standard `description` for this code.
    pub fn description(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::InvalidCommand => "Invalid command",
            Self::ArgumentMissing => "Argument missing",
            Self::InvalidImage => "Invalid image name",
            Self::InvalidFlavor => "Invalid flavor name",
            Self::InvalidInternet => "Invalid internet access setting",
            Self::InvalidVmId => "Invalid virtual machine id",
            Self::VmCreationFailure => "Virtual machine creation failed",
            Self::InvalidCloudConfig => "Invalid cloud configuration",
            Self::PermissionDenied => "Permission denied",
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The fixed part of every cloud API answer; calls add their own keys beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudReply {
    #[cfg_attr(feature = "openapi", schema(schema_with = ret_code_schema))]
    pub ret_code: u8,
    pub description: String,
}

/// `ret_code`: one of [`RetCode::ALL`].
#[cfg(feature = "openapi")]
fn ret_code_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let codes: Vec<String> = RetCode::ALL.iter().map(|c| format!("{} {}", c.code(), c.name())).collect();
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!("The return code: {}.", codes.join(", "))))
        .enum_values(Some(RetCode::ALL.map(RetCode::code)))
        .build()
}

impl CloudReply {
    /// `code` with its standard description.
    pub fn standard(code: RetCode) -> Self {
        Self { ret_code: code.code(), description: code.description().to_owned() }
    }

    /// `code` with the standard description followed by `detail`:
    /// `Virtual machine creation failed: not enough free memory on the host`.
    pub fn detailed(code: RetCode, detail: &str) -> Self {
        Self { ret_code: code.code(), description: format!("{}: {detail}", code.description()) }
    }
}

/// The value of the form key `command`. The seed defines the first two; the others
/// are thindesk's additions for exam systems that want to look before they leap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    LaunchInstance,
    DestroyInstance,
    QueryInstance,
    ListInstances,
    ListImages,
    ListFlavors,
}

impl Command {
    pub const ALL: [Command; 6] = [
        Self::LaunchInstance,
        Self::DestroyInstance,
        Self::QueryInstance,
        Self::ListInstances,
        Self::ListImages,
        Self::ListFlavors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LaunchInstance => "launch_instance",
            Self::DestroyInstance => "destroy_instance",
            Self::QueryInstance => "query_instance",
            Self::ListInstances => "list_instances",
            Self::ListImages => "list_images",
            Self::ListFlavors => "list_flavors",
        }
    }

    /// Exactly the names above; the seed's clients spell them in lower case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seed's `internet` argument: exactly `true` or `false`, anything else is
/// [`RetCode::InvalidInternet`].
pub fn parse_internet(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// What `launch_instance` adds to a success: the seed's `vm_id` and `vm_ip`, and what a
/// viewer needs besides. With user-mode networking the guest is reached through host
/// ports, so `vm_ip` is the server's public address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaunchedInstance {
    pub vm_id: String,
    /// The machine's own address where the platform gives it one (a cloud's fixed
    /// address), else this host's.
    pub vm_ip: String,
    /// Where `spice_port` and `rdp_port` are (added to the seed's answer): this
    /// host, which differs from `vm_ip` on a cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_ip: Option<String>,
    pub spice_port: u16,
    /// The SPICE ticket.
    pub spice_password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdp_port: Option<u16>,
    /// SPICE over TLS (added to the seed's answer): the display's TLS port, the same as
    /// `spice_port` (there is no plain port), the authority to trust (PEM) and the
    /// certificate's subject for virt-viewer's `host-subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_tls_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_host_subject: Option<String>,
}

/// One instance as `query_instance` and `list_instances` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceInfo {
    pub vm_id: String,
    pub name: String,
    pub image: String,
    pub flavor: String,
    pub internet: bool,
    /// OpenStack's words, as for desktops: `ACTIVE`, `SHUTOFF`, `ERROR`, ...
    pub status: crate::DesktopStatus,
    pub vm_ip: String,
    /// Where the display ports are, as in [`LaunchedInstance::spice_ip`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdp_port: Option<u16>,
    /// SPICE over TLS (added to the seed's answer): the display's TLS port, the same as
    /// `spice_port` (there is no plain port), the authority to trust (PEM) and the
    /// certificate's subject for virt-viewer's `host-subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_tls_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_host_subject: Option<String>,
    /// ISO 8601 UTC.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
}

/// One image of the catalogue, as `list_images` shows it (never its password or path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInfo {
    pub name: String,
    pub default_connection_type: crate::ConnectionType,
}

/// One flavor, with OpenStack's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlavorInfo {
    pub name: String,
    pub vcpus: u32,
    pub ram: u32,
    pub disk: u32,
}

/// What `list_instances` adds to a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceList {
    pub instances: Vec<InstanceInfo>,
}

/// What `list_images` adds to a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageList {
    pub images: Vec<ImageInfo>,
}

/// What `list_flavors` adds to a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlavorList {
    pub flavors: Vec<FlavorInfo>,
}

/// The form an exam system posts to `/cloud_api` (URL-encoded or multipart). Every
/// value is text; which keys a call needs depends on `command`, and a missing or empty
/// one is answered with [`RetCode::ArgumentMissing`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudForm {
    /// The call; see [`Command`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = command_schema))]
    pub command: Option<String>,
    /// `launch_instance`: the catalogue's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub image: Option<String>,
    /// `launch_instance`: the catalogue's flavor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub flavor: Option<String>,
    /// `launch_instance`: whether the machine reaches outside networks, exactly `true`
    /// or `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub internet: Option<String>,
    /// `launch_instance`: the machine's name, 1 to 64 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Option<String>,
    /// `destroy_instance`, `query_instance`: the `vm_id` that `launch_instance` gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub vm_id: Option<String>,
    /// The cloud API key, when the server has one (the `X-Api-Key` header works too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub api_key: Option<String>,
}

/// `command`: one of [`Command::ALL`].
#[cfg(feature = "openapi")]
fn command_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("The call: `launch_instance` and `destroy_instance` (the seed's), or one of the others."))
        .enum_values(Some(Command::ALL.map(Command::as_str)))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_seeds_numbers_and_round_trip() {
        for (expected, code) in RetCode::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(code.code()), expected);
            assert_eq!(RetCode::from_code(code.code()), Some(code));
        }
        assert_eq!(RetCode::from_code(10), None);
    }

    #[test]
    fn descriptions_are_the_contracts_words() {
        let reply = CloudReply::standard(RetCode::InvalidInternet);
        assert_eq!((reply.ret_code, reply.description.as_str()), (5, "Invalid internet access setting"));
        let detailed = CloudReply::detailed(RetCode::VmCreationFailure, "no room");
        assert_eq!(detailed.description, "Virtual machine creation failed: no room");
    }

    #[test]
    fn commands_and_internet_are_parsed_exactly() {
        for command in Command::ALL {
            assert_eq!(Command::parse(command.as_str()), Some(command));
        }
        assert_eq!(Command::parse("Launch_Instance"), None);
        assert_eq!(parse_internet("true"), Some(true));
        assert_eq!(parse_internet("false"), Some(false));
        for bad in ["True", "1", "yes", "", " true"] {
            assert_eq!(parse_internet(bad), None, "{bad:?}");
        }
    }
}
