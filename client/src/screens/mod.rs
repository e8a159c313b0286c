//! One module a screen: its form or view state, how it is drawn, how it takes the
//! answers to its own background work, and its dialogs.
//!
//! A screen starts its own work through [`Bg`](crate::bg::Bg) and changes only its own
//! state. What reaches beyond it (which screen comes next, whether the server is
//! reachable, what the keyring keeps) it hands to the app as a [`Command`]; screens
//! know neither the app nor each other.

pub mod desktops;
pub mod login;
pub mod register;
pub mod terminal_state;
pub mod trust;

use crate::api::ApiError;
use crate::i18n::{Said, T};
use thindesk_shared::TokenGrant;

/// What a screen asks of the app, run after drawing or after a message.
pub enum Command {
    /// The user asks whether this terminal is approved now; one question at a time.
    CheckAgain,
    /// A password or a kept token was accepted: on to the user's desktops.
    LoggedIn {
        user: String,
        grant: TokenGrant,
    },
    /// Keep the user name and the token (where allowed) for the next start.
    Remember {
        user: String,
        token: String,
    },
    /// Back to the login screen, saying why.
    LogOut(Option<Said>),
    /// The server answered.
    Reached,
    Unreachable(String),
    /// A server fault (5xx) that is not the user's to fix.
    ServerTrouble(Said),
    /// The person at the terminal compared the server's fingerprint: pin it.
    Trust(crate::pinning::Fingerprint),
}

/// What the user is told about a failure no screen explains better: always the
/// client's own words, in the user's language. What the server said in English goes
/// to the log.
pub fn describe(error: &ApiError) -> Said {
    match error {
        ApiError::Unauthorized => T::WrongPassword.into(),
        ApiError::Throttled(secs) => Said::with(T::Throttled, &[&secs.to_string()]),
        ApiError::Server(message) => {
            tracing::warn!(%message, "server error");
            T::ServerTrouble.into()
        }
        ApiError::Invalid(errors) => {
            let said: Vec<Said> = errors
                .iter()
                .flat_map(|(field, messages)| messages.iter().map(move |message| field_error(field, message)))
                .collect();
            // One line: the first field error says enough; all are logged.
            said.into_iter().next().unwrap_or_else(|| T::FieldRefused.into())
        }
        ApiError::Unreachable(reason) => unreachable_reason(reason),
        ApiError::Forbidden => T::Forbidden.into(),
        ApiError::NotFound(_) => T::NotFoundHere.into(),
        ApiError::TerminalNotFound => T::NotFoundHere.into(),
        ApiError::TerminalExisted => T::TerminalExisted.into(),
        ApiError::SeatTaken => T::SeatTaken.into(),
        ApiError::Conflict(_) => T::ActionBusy.into(),
        ApiError::Untrusted(_) => T::ChangedTitle.into(),
        ApiError::Protocol(detail) => {
            tracing::warn!(%detail, "unexpected reply");
            T::ProtocolTrouble.into()
        }
    }
}

/// A field error of the server (its field code and English message) in the client's
/// words. The codes and messages are the server's v1.0 ones (`FieldErrors`).
pub fn field_error(field: &str, message: &str) -> Said {
    let number = message.split(|c: char| !c.is_ascii_digit()).find(|part| !part.is_empty()).unwrap_or_default();
    let said: Said = match (field, message) {
        ("password", m) if m.starts_with("must be at least") => Said::with(T::PasswordTooShort, &[number]),
        ("password", m) if m.starts_with("must be at most") => T::PasswordTooLong.into(),
        ("password", _) => Said::Text(T::FieldRequired, vec![T::NewPassword.into()]),
        ("seat_number", "is required") => Said::Text(T::FieldRequired, vec![T::SeatNumber.into()]),
        ("seat_number", _) => Said::with(T::SeatInvalid, &[number]),
        ("place", _) => T::PlaceInvalid.into(),
        ("authorization", _) => T::CurrentPasswordNeeded.into(),
        ("mac_address", _) => T::MacRefused.into(),
        _ => T::FieldRefused.into(),
    };
    tracing::info!(field, message, "the server refused a field");
    said
}

/// Why the server cannot be reached, from the HTTP library's English, in few words.
pub fn unreachable_reason(reason: &str) -> Said {
    let reason = reason.to_ascii_lowercase();
    if reason.contains("refused") {
        T::ReasonRefused.into()
    } else if reason.contains("timed out") || reason.contains("timeout") {
        T::ReasonTimeout.into()
    } else if reason.contains("dns") || reason.contains("resolve") || reason.contains("lookup") {
        T::ReasonName.into()
    } else {
        T::ReasonOther.into()
    }
}
