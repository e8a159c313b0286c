//! The console's form actions: each form posts to one administrative operation. The
//! form's fields are decoded by that operation's decoder (the same one the admin API
//! and the CLI use), and [`said`] words the outcome for the page the browser goes
//! back to.

use super::{Flash, Lang, Text};
use crate::http::AppState;
use crate::service::admin::{Command, Decoder, Input, Outcome, decode};
use crate::service::{Principal, ServiceError};
use std::collections::HashMap;
use thindesk_shared::{DesktopAction, TerminalState};

type Form = HashMap<String, String>;

/// A service error as the administrator reads it: field problems by field, bad CSV
/// lines one by one, and never an internal detail.
pub(super) fn message(lang: Lang, error: &ServiceError) -> Flash {
    match error {
        ServiceError::BadLines(lines) => Flash {
            ok: false,
            text: lang.t(Text::NothingImported).to_owned(),
            lines: lines.iter().map(|l| format!("{} {}: {}", lang.t(Text::Line), l.line, l.message)).collect(),
        },
        other => Flash::error(other.for_administrator()),
    }
}

/// The operation each form posts to.
fn form_decoder(path: &[&str]) -> Option<Decoder> {
    Some(match path {
        ["terminals", "approve"] => decode::approve_terminal,
        ["terminals", "reject"] => decode::reject_terminal,
        ["terminals", "delete"] => decode::delete_terminal,
        ["terminals", "move"] => decode::move_terminal,
        ["users", "create"] => decode::create_user,
        ["users", "import"] => decode::import_users,
        ["users", "password"] => decode::reset_password,
        ["users", "delete"] => decode::delete_user,
        ["places", "create"] => decode::add_place,
        ["places", "delete"] => decode::delete_place,
        ["desktops", "create"] => decode::give_desktops,
        ["desktops", "action"] => decode::act_on_desktop,
        ["desktops", "assign"] => decode::assign_desktop,
        ["desktops", "delete"] => decode::delete_desktop,
        ["desktops", "ticket"] => decode::new_ticket,
        ["instances", "destroy"] => decode::destroy_instance,
        ["images", "create"] => decode::add_image,
        ["images", "delete"] => decode::delete_image,
        ["flavors", "create"] => decode::add_flavor,
        ["flavors", "delete"] => decode::delete_flavor,
        ["settings"] => decode::change_settings,
        _ => return None,
    })
}

/// A form's fields as the operation reads them. Only the class chooser differs from
/// the API's fields: a radio button and a text box of names instead of
/// `all_students` or a list.
fn form_input(form: &Form) -> Input {
    let mut form = form.clone();
    // The console's own field, checked before any action: not the operation's input.
    form.remove("csrf");
    let class = form.remove("class");
    let users = form.remove("users");
    let input = Input::from_text(form);
    match class.as_deref() {
        Some("users") => {
            let names = users.unwrap_or_default();
            let names: Vec<&str> = names.split([',', '\n', '\r', ' ']).filter(|n| !n.is_empty()).collect();
            input.with("users", names)
        }
        Some(_) => input.with("all_students", true),
        None => input,
    }
}

/// Performs a form's action; answers where to go next and what to say there.
pub fn act(state: &AppState, admin: &Principal, lang: Lang, segments: &[String], form: &Form) -> (String, Flash) {
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let back = super::back(segments).to_owned();
    let Some(decoder) = form_decoder(&path) else { return (back, Flash::error(lang.t(Text::NotFoundPage))) };
    let outcome = decoder(&form_input(form)).and_then(|command| {
        let outcome = state.services.admin().run(&admin.actor(), command.clone())?;
        Ok(said(lang, &command, outcome))
    });
    (back, outcome.unwrap_or_else(|error| message(lang, &error)))
}

/// What the console tells the administrator after a change.
fn said(lang: Lang, command: &Command, outcome: Outcome) -> Flash {
    match (command, outcome) {
        (Command::SetTerminalState { mac, state: TerminalState::Approved }, _) => {
            Flash::ok(format!("{} {mac}", lang.t(Text::Approved)))
        }
        (Command::SetTerminalState { mac, .. }, _) => Flash::ok(format!("{} {mac}", lang.t(Text::Rejected))),
        (Command::CreateUser { name, .. }, _) => Flash::ok(format!("{} {name}", lang.t(Text::CreatedN))),
        (_, Outcome::UsersImported(imported)) => Flash::ok(format!(
            "{} {} ({})",
            lang.t(Text::Imported),
            imported.created.len(),
            imported.created.join(", ")
        )),
        (Command::ActOnDesktop { id, action }, _) => Flash::ok(format!("{}: {id}", lang.t(action_key(*action)))),
        (_, Outcome::DesktopsGiven(given)) => {
            let created: Vec<&str> = given.created.iter().map(|c| c.user.as_str()).collect();
            let failed: Vec<String> =
                given.failed.iter().map(|f| format!("{} {}: {}", lang.t(Text::FailedFor), f.user, f.error)).collect();
            let text = format!("{} {} ({})", lang.t(Text::CreatedN), created.len(), created.join(", "));
            Flash { ok: failed.is_empty(), text, lines: failed }
        }
        (_, Outcome::DesktopCreated(created)) => Flash::ok(format!("{} 1 ({})", lang.t(Text::CreatedN), created.owner)),
        (Command::SetRegistrationMode(_), _) => Flash::ok(lang.t(Text::Saved)),
        (Command::NewTicket { id }, _) => Flash::ok(format!("{}: {id}", lang.t(Text::NewTicket))),
        _ => Flash::ok(lang.t(Text::Done)),
    }
}

fn action_key(action: DesktopAction) -> Text {
    match action {
        DesktopAction::Resume | DesktopAction::Start => Text::Start,
        DesktopAction::Reboot | DesktopAction::Reset => Text::Reboot,
        DesktopAction::Shutdown => Text::Shutdown,
    }
}
