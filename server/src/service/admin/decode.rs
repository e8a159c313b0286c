//! One decoder per administrative operation: from the fields any face gathered to a
//! typed [`Command`], with every field's problem reported at once. The rules that need
//! the database (does the place exist, is the name taken) stay in the services.

use super::input::Input;
use super::{Command, GiveDesktops, Recipients};
use crate::service::audit::{AuditFilter, MAX_AUDIT_LIMIT, parse_time};
use crate::service::catalogue::{Flavor, ImageSpec};
use crate::service::desktops::Class;
use crate::service::{FieldErrors, ServiceError};
use std::path::PathBuf;
use thindesk_shared::admin::Settings;
use thindesk_shared::{ConnectionType, DesktopAction, RegistrationMode, Secret, TerminalState};

/// Reads one operation's fields.
pub type Decoder = fn(&Input) -> Result<Command, ServiceError>;

fn done(errors: FieldErrors, command: Command) -> Result<Command, ServiceError> {
    errors.into_result(command)
}

/// An operation that names its target (`name`, `mac`, `id`) and nothing else.
fn target(input: &Input, field: &str, make: impl FnOnce(String) -> Command) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let value = input.text(field, &mut errors);
    done(errors, make(value))
}

pub fn list_users(_: &Input) -> Result<Command, ServiceError> {
    Ok(Command::ListUsers)
}

pub fn create_user(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = input.text("name", &mut errors).trim().to_owned();
    let password = Secret::new(input.text("password", &mut errors));
    let is_admin = input.flag("admin", &mut errors);
    done(errors, Command::CreateUser { name, password, is_admin })
}

/// The CSV text itself (`csv`), or an uploaded file's content (`file`).
pub fn import_users(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let file = input.optional_text("file", &mut errors).filter(|text| !text.trim().is_empty());
    let csv = match file {
        Some(text) => text,
        None => input.text("csv", &mut errors),
    };
    done(errors, Command::ImportUsers { csv })
}

pub fn reset_password(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = input.text("name", &mut errors);
    let password = Secret::new(input.text("password", &mut errors));
    done(errors, Command::ResetPassword { name, password })
}

pub fn set_admin(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = input.text("name", &mut errors);
    if !input.has("admin") {
        errors.add("admin", "is required");
    }
    let is_admin = input.flag("admin", &mut errors);
    done(errors, Command::SetAdmin { name, is_admin })
}

pub fn delete_user(input: &Input) -> Result<Command, ServiceError> {
    target(input, "name", |name| Command::DeleteUser { name })
}

pub fn list_places(_: &Input) -> Result<Command, ServiceError> {
    Ok(Command::ListPlaces)
}

pub fn add_place(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = input.text("name", &mut errors).trim().to_owned();
    let address = input.optional_text("address", &mut errors).unwrap_or_default().trim().to_owned();
    done(errors, Command::AddPlace { name, address })
}

pub fn delete_place(input: &Input) -> Result<Command, ServiceError> {
    target(input, "name", |name| Command::DeletePlace { name })
}

pub fn list_terminals(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let state = input.filter("state", &mut errors).and_then(|text| {
        let state = TerminalState::parse(&text.to_ascii_uppercase());
        if state.is_none() {
            errors.add("state", "must be approved, waiting or rejected");
        }
        state
    });
    done(errors, Command::ListTerminals { state })
}

pub fn pending_terminals(_: &Input) -> Result<Command, ServiceError> {
    Ok(Command::ListTerminals { state: Some(TerminalState::Waiting) })
}

pub fn approve_terminal(input: &Input) -> Result<Command, ServiceError> {
    target(input, "mac", |mac| Command::SetTerminalState { mac, state: TerminalState::Approved })
}

pub fn reject_terminal(input: &Input) -> Result<Command, ServiceError> {
    target(input, "mac", |mac| Command::SetTerminalState { mac, state: TerminalState::Rejected })
}

pub fn move_terminal(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let mac = input.text("mac", &mut errors);
    let place = input.text("place", &mut errors);
    let seat_number = input.seat("seat_number", &mut errors);
    done(errors, Command::MoveTerminal { mac, place, seat_number })
}

pub fn delete_terminal(input: &Input) -> Result<Command, ServiceError> {
    target(input, "mac", |mac| Command::DeleteTerminal { mac })
}

pub fn show_settings(_: &Input) -> Result<Command, ServiceError> {
    Ok(Command::ShowSettings)
}

pub fn change_settings(input: &Input) -> Result<Command, ServiceError> {
    let key = Settings::TERMINAL_REGISTRATION_MODE;
    let mut errors = FieldErrors::default();
    let text = input.text(key, &mut errors);
    let mode = RegistrationMode::parse(text.trim());
    if mode.is_none() && errors.is_empty() {
        errors.add(key, "must be auto, approval or closed");
    }
    done(errors, Command::SetRegistrationMode(mode.unwrap_or_default()))
}

pub fn list_images(_: &Input) -> Result<Command, ServiceError> {
    Ok(Command::ListImages)
}

pub fn add_image(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = input.text("name", &mut errors);
    let disk = input.text("disk", &mut errors);
    let connection = input.optional_text("connection", &mut errors).unwrap_or_else(|| "spice".into());
    let os_username = input.optional_text("os_username", &mut errors).unwrap_or_default();
    let os_password = input.optional_text("os_password", &mut errors).unwrap_or_default();
    let guest_agent = input.flag("guest_agent", &mut errors);
    let connection = ConnectionType::parse(&connection.trim().to_ascii_lowercase());
    if connection.is_none() {
        errors.add("connection", "must be spice or rdp");
    }
    let spec = ImageSpec {
        name,
        base_disk: PathBuf::from(disk.trim()),
        default_connection_type: connection.unwrap_or(ConnectionType::Spice),
        os_username: os_username.trim().to_owned(),
        os_password: Secret::new(os_password),
        guest_agent,
    };
    done(errors, Command::AddImage(spec))
}

pub fn delete_image(input: &Input) -> Result<Command, ServiceError> {
    target(input, "name", |name| Command::DeleteImage { name })
}

pub fn list_flavors(_: &Input) -> Result<Command, ServiceError> {
    Ok(Command::ListFlavors)
}

pub fn add_flavor(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = input.text("name", &mut errors);
    let vcpus = input.whole_number("vcpus", &mut errors);
    let ram_mib = input.whole_number("ram", &mut errors);
    let disk_gib = input.whole_number("disk", &mut errors);
    done(errors, Command::AddFlavor(Flavor { name, vcpus, ram_mib, disk_gib }))
}

pub fn delete_flavor(input: &Input) -> Result<Command, ServiceError> {
    target(input, "name", |name| Command::DeleteFlavor { name })
}

pub fn list_desktops(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let owner = input.filter("user", &mut errors);
    done(errors, Command::ListDesktops { owner })
}

/// `image`, `flavor`, optional `name`, and exactly one of `user` (a name), `users` (a
/// list) or `all_students` (true).
pub fn give_desktops(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let image = input.text("image", &mut errors);
    let flavor = input.text("flavor", &mut errors);
    let name = input.optional_text("name", &mut errors).unwrap_or_default();
    let recipients = match (input.has("user"), input.has("users"), input.has("all_students")) {
        (true, false, false) => Recipients::One(input.text("user", &mut errors).trim().to_owned()),
        (false, true, false) => Recipients::Class(Class::Users(input.names("users", &mut errors))),
        (false, false, true) if input.flag("all_students", &mut FieldErrors::default()) => {
            Recipients::Class(Class::AllStudents)
        }
        _ => {
            errors.add("user", "give exactly one of user (a name), users (a list) or all_students (true)");
            Recipients::Class(Class::Users(Vec::new()))
        }
    };
    done(errors, Command::GiveDesktops(GiveDesktops { image, flavor, name, recipients }))
}

pub fn delete_desktop(input: &Input) -> Result<Command, ServiceError> {
    target(input, "id", |id| Command::DeleteDesktop { id })
}

pub fn assign_desktop(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let id = input.text("id", &mut errors);
    let user = input.text("user", &mut errors).trim().to_owned();
    done(errors, Command::AssignDesktop { id, user })
}

/// The action in either form the v1.0 API takes (`{"action": "reboot"}` or
/// `{"reboot": null}`), beside the desktop's `id`.
pub fn act_on_desktop(input: &Input) -> Result<Command, ServiceError> {
    let mut errors = FieldErrors::default();
    let id = input.text("id", &mut errors);
    match DesktopAction::from_body(&input.without("id")) {
        Ok(action) => done(errors, Command::ActOnDesktop { id, action }),
        Err(message) => {
            errors.add("action", message);
            Err(ServiceError::Invalid(errors))
        }
    }
}

/// A new display ticket for desktop `id`, cutting whoever is connected.
pub fn new_ticket(input: &Input) -> Result<Command, ServiceError> {
    target(input, "id", |id| Command::NewTicket { id })
}

pub fn list_instances(_: &Input) -> Result<Command, ServiceError> {
    Ok(Command::ListInstances)
}

pub fn destroy_instance(input: &Input) -> Result<Command, ServiceError> {
    target(input, "id", |vm_id| Command::DestroyInstance { vm_id })
}

/// `actor`, `action`, `since`, `until` (a time such as `2026-11-24T10:00:00Z`, a date
/// or Unix seconds) and `limit` (1 to 1000); each may be absent or blank.
pub fn list_audit(input: &Input) -> Result<Command, ServiceError> {
    audit_filter(input).map(Command::ListAudit)
}

/// The audit log's filters alone, for pages that show the log beside other things.
pub fn audit_filter(input: &Input) -> Result<AuditFilter, ServiceError> {
    let mut errors = FieldErrors::default();
    let time = |field: &str, errors: &mut FieldErrors| {
        input.filter(field, errors).and_then(|text| {
            let parsed = parse_time(&text);
            if parsed.is_none() {
                errors.add(field, "must be a time such as 2026-11-24T10:00:00Z, a date or Unix seconds");
            }
            parsed
        })
    };
    let since = time("since", &mut errors);
    let until = time("until", &mut errors);
    let limit = input.filter("limit", &mut errors).and_then(|text| match text.parse::<i64>() {
        Ok(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => Some(n),
        _ => {
            errors.add("limit", format!("must be a number from 1 to {MAX_AUDIT_LIMIT}"));
            None
        }
    });
    let filter = AuditFilter {
        actor: input.filter("actor", &mut errors),
        action: input.filter("action", &mut errors),
        since,
        until,
        limit,
    };
    errors.into_result(filter)
}
