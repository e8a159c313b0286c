//! Places (classrooms) and the terminals that sit in them.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Place {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceList {
    pub place_list: Vec<Place>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum TerminalState {
    Approved,
    Waiting,
    Rejected,
}

impl TerminalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::Waiting => "WAITING",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Approved, Self::Waiting, Self::Rejected].into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for TerminalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server setting `terminal_registration_mode`: what a registration without
/// `mode: "auth"` leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Every terminal is approved at once.
    Auto,
    /// Terminals wait for an administrator.
    #[default]
    Approval,
    /// Registration is closed: new terminals are rejected.
    Closed,
}

impl RegistrationMode {
    pub const ALL: [RegistrationMode; 3] = [Self::Auto, Self::Approval, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Approval => "approval",
            Self::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// The state a terminal registered under this mode starts in.
    pub fn initial_state(self) -> TerminalState {
        match self {
            Self::Auto => TerminalState::Approved,
            Self::Approval => TerminalState::Waiting,
            Self::Closed => TerminalState::Rejected,
        }
    }
}

impl fmt::Display for RegistrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `data` of `GET /api/v1.0/terminals/<mac>`.
///
/// `register_mode` tells how the terminal was registered: `auth` when an administrator
/// registered it from the terminal, otherwise the server's registration mode at the time
/// (`auto`, `approval` or `closed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Terminal {
    pub place: String,
    pub seat_number: String,
    pub mac_address: String,
    pub state: TerminalState,
    pub register_mode: String,
}

/// `data` of a successful `POST /api/v1.0/terminals/registration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationReply {
    pub terminal_state: TerminalState,
}

/// The body of `POST /api/v1.0/terminals/registration`. A missing field reads as
/// empty, so the server can name every missing field at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationRequest {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub place: String,
    /// Text ("01" and "1" are different seats), but a client that sends a JSON number
    /// plainly means that number.
    #[serde(default, deserialize_with = "text_or_number")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub seat_number: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub mac_address: String,
    /// `"auth"`: an administrator registers the terminal directly, with their
    /// credentials on the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(u64),
    }
    Ok(match Option::<TextOrNumber>::deserialize(deserializer)? {
        Some(TextOrNumber::Text(text)) => text,
        Some(TextOrNumber::Number(n)) => n.to_string(),
        None => String::new(),
    })
}

/// `data` of a 409 from registration, exactly as the seed spells them.
pub const TERMINAL_EXISTED: &str = "terminal existed";
pub const SEAT_TAKEN: &str = "place and seat number existed";
/// `data` of a 404 from the terminal lookup.
pub const TERMINAL_NOT_EXIST: &str = "terminal not exist";
