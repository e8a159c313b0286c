//! Desktops as `GET /api/v1.0/users/me/desktops` lists them, and the actions on them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// OpenStack's words for a server's state, which the seed's clients already know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesktopStatus {
    Active,
    Shutoff,
    Suspended,
    Paused,
    Build,
    Reboot,
    Error,
}

impl DesktopStatus {
    pub const ALL: [DesktopStatus; 7] =
        [Self::Active, Self::Shutoff, Self::Suspended, Self::Paused, Self::Build, Self::Reboot, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Shutoff => "SHUTOFF",
            Self::Suspended => "SUSPENDED",
            Self::Paused => "PAUSED",
            Self::Build => "BUILD",
            Self::Reboot => "REBOOT",
            Self::Error => "ERROR",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for DesktopStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    Rdp,
    Spice,
}

impl ConnectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rdp => "rdp",
            Self::Spice => "spice",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "rdp" => Some(Self::Rdp),
            "spice" => Some(Self::Spice),
            _ => None,
        }
    }
}

/// What the viewer may pass through between the terminal and the desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    pub enable_usb: bool,
    pub enable_clipboard: bool,
    pub enable_audio: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self { enable_usb: true, enable_clipboard: true, enable_audio: true }
    }
}

/// One way to reach a desktop's display. `port` is a string, as the seed shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionInfo {
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// The SPICE ticket the viewer must present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// SPICE over TLS (added; the seed has no TLS): the display's TLS port, the same
    /// as `port`, which is kept for seed-era readers. A display that has it has no
    /// plain port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_port: Option<String>,
    /// The authority (PEM) that signed the display's certificate: the only one the
    /// viewer may trust for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// The display certificate's subject, as virt-viewer's `host-subject` takes it
    /// (`O=thindesk,CN=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_subject: Option<String>,
    /// Which SPICE channels must use TLS, as virt-viewer's `secure-channels`: `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_channels: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Desktop {
    pub id: String,
    pub name: String,
    pub status: DesktopStatus,
    pub os_username: String,
    pub os_password: String,
    pub default_connection_type: ConnectionType,
    pub policy: Policy,
    pub connection_info: Vec<ConnectionInfo>,
    /// The catalogue image the desktop was made from (what the student sees as its
    /// OS), where it has one. Not in the seed: clients that do not know it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Its size, from its flavor, where it has one. Not in the seed either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<DesktopSize>,
}

/// How big a desktop is: its flavor's name and what that gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DesktopSize {
    pub flavor: String,
    pub vcpus: u32,
    pub ram_mib: u32,
    pub disk_gib: u32,
}

/// `data` of the desktop list. Gateways are not supported (the seed says so too), so
/// `gateway_list` is always empty but always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DesktopList {
    pub desktop_list: Vec<Desktop>,
    pub gateway_list: Vec<Value>,
}

/// What `POST /api/v1.0/desktops/<id>/action` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DesktopAction {
    /// Starts a stopped desktop, wakes a suspended or paused one.
    Resume,
    /// Restarts a running desktop; starts a stopped one.
    Reboot,
    /// Asks the guest to power off, and forces it off if it does not in time.
    Shutdown,
    /// Starts a stopped desktop (an alias the seed does not have).
    Start,
    /// Hard reset, like the reset button.
    Reset,
}

impl DesktopAction {
    pub const ALL: [DesktopAction; 5] = [Self::Resume, Self::Reboot, Self::Shutdown, Self::Start, Self::Reset];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resume => "resume",
            Self::Reboot => "reboot",
            Self::Shutdown => "shutdown",
            Self::Start => "start",
            Self::Reset => "reset",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// The body a client sends, in the seed's form: `{"reboot": null}`.
    pub fn to_body(self) -> Value {
        let mut body = serde_json::Map::new();
        body.insert(self.as_str().to_owned(), Value::Null);
        Value::Object(body)
    }

    /// Reads an action body in either accepted form, `{"reboot": null}` or
    /// `{"action": "reboot"}`. Exactly one action per request.
    pub fn from_body(body: &Value) -> Result<Self, String> {
        let names = DesktopAction::ALL.map(DesktopAction::as_str).join(", ");
        let Value::Object(fields) = body else {
            return Err(format!("the body must be a JSON object naming one action: {names}"));
        };
        if fields.len() != 1 {
            return Err(format!("name exactly one action, one of: {names}"));
        }
        let (key, value) = fields.iter().next().ok_or_else(|| format!("name one action: {names}"))?;
        let name = match (key.as_str(), value) {
            ("action", Value::String(name)) => name.as_str(),
            ("action", _) => return Err(format!("\"action\" must be a string, one of: {names}")),
            (name, _) => name,
        };
        DesktopAction::parse(name).ok_or_else(|| format!("unknown action {name:?}; use one of: {names}"))
    }
}

/// The body of an action request, in both forms [`DesktopAction::from_body`] reads: the
/// seed's `{"reboot": null}` or `{"action": "reboot"}`, built from [`DesktopAction::ALL`].
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for DesktopAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let names = Self::ALL.map(Self::as_str);
        let closed = || Some(AdditionalProperties::FreeForm(false));
        let mut seed_form = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("The seed's form: the action's name as the only key, `{\"reboot\": null}`."))
            .min_properties(Some(1))
            .max_properties(Some(1))
            .additional_properties(closed());
        for name in names {
            seed_form = seed_form.property(name, ObjectBuilder::new().schema_type(Type::Null));
        }
        let named_form = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("The action named in `action`: `{\"action\": \"reboot\"}`."))
            .property("action", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)))
            .required("action")
            .additional_properties(closed());
        OneOfBuilder::new()
            .description(Some(
                "Exactly one action. `resume` starts a stopped desktop and wakes a suspended or paused one, \
                 `reboot` restarts it, `shutdown` powers it off; `start` and `reset` (hard) are added.",
            ))
            .item(seed_form)
            .item(named_form)
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for DesktopAction {}

impl fmt::Display for DesktopAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_body_forms_name_the_same_action() {
        for action in DesktopAction::ALL {
            assert_eq!(DesktopAction::from_body(&action.to_body()), Ok(action));
            assert_eq!(DesktopAction::from_body(&json!({"action": action.as_str()})), Ok(action));
        }
    }

    #[test]
    fn anything_but_exactly_one_known_action_is_refused() {
        for body in [
            json!({}),
            json!({"reboot": null, "shutdown": null}),
            json!({"explode": null}),
            json!({"action": "explode"}),
            json!({"action": 3}),
            json!(["reboot"]),
            json!("reboot"),
            json!(null),
        ] {
            assert!(DesktopAction::from_body(&body).is_err(), "{body} was accepted");
        }
    }

    #[test]
    fn desktop_serialises_with_the_seeds_keys() {
        let desktop = Desktop {
            id: "123456789".into(),
            name: "mydesktop".into(),
            status: DesktopStatus::Active,
            os_username: "u".into(),
            os_password: "p".into(),
            default_connection_type: ConnectionType::Rdp,
            policy: Policy::default(),
            connection_info: vec![ConnectionInfo {
                kind: ConnectionType::Spice,
                ip: "192.168.1.10".into(),
                port: Some("5678".into()),
                password: Some("ticket".into()),
                tls_port: Some("5678".into()),
                ca: Some("-----BEGIN CERTIFICATE-----\n...".into()),
                host_subject: Some("O=thindesk,CN=thindesk server s1".into()),
                secure_channels: Some("all".into()),
            }],
            image: None,
            size: None,
        };
        let value = serde_json::to_value(&desktop).expect("serialisable");
        assert_eq!(value["status"], "ACTIVE");
        assert_eq!(value["default_connection_type"], "rdp");
        assert_eq!(value["policy"]["enable_usb"], true);
        assert_eq!(value["connection_info"][0]["type"], "spice");
        assert_eq!(value["connection_info"][0]["port"], "5678");
        assert_eq!(value["connection_info"][0]["tls_port"], "5678");
        assert_eq!(value["connection_info"][0]["host_subject"], "O=thindesk,CN=thindesk server s1");
        assert_eq!(value["connection_info"][0]["secure_channels"], "all");
    }
}
