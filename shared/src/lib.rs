//! Wire types of thindesk: what the terminal client and the management server say to
//! each other (seed 002, the v1.0 API) and what the cloud API answers (seed 000).
//!
//! This crate does no I/O and knows neither warp nor egui: it is data, serde and the
//! few pure rules both sides must agree on (MAC spelling, action bodies).
//!
//! With the feature `openapi` (the server turns it on) the wire types also derive
//! `utoipa::ToSchema`, so that the server's OpenAPI document describes these very types.

pub mod admin;
pub mod cloud;
pub mod desktop;
pub mod jsend;
pub mod mac;
pub mod secret;
pub mod terminal;
pub mod token;
pub mod user;

pub use desktop::{
    ConnectionInfo, ConnectionType, Desktop, DesktopAction, DesktopList, DesktopSize, DesktopStatus, Policy,
};
pub use jsend::JSend;
pub use mac::{MacAddress, MacError};
pub use secret::Secret;
pub use terminal::{Place, PlaceList, RegistrationMode, RegistrationReply, Terminal, TerminalState};
pub use token::{PasswordChange, Token, TokenGrant};
pub use user::IsAdministrator;
