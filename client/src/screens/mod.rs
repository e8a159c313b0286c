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
}

/// What the user is told about a failure no screen explains better.
pub fn describe(error: &ApiError) -> Said {
    match error {
        ApiError::Unauthorized => T::WrongPassword.into(),
        ApiError::Throttled(secs) => Said::with(T::Throttled, &[&secs.to_string()]),
        ApiError::Server(message) => Said::with(T::ServerTrouble, &[message]),
        ApiError::Invalid(errors) => Said::Raw(
            errors
                .iter()
                .map(|(field, messages)| format!("{field}: {}", messages.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Said::Raw(other.to_string()),
    }
}
