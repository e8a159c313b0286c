//! `/api/v1.0/admin/...`: the administrator's REST API, JSend like the rest of v1.0.
//! One router ([`route`]) names every resource and the methods it takes; each handler
//! parses, authorizes (an administrator's credentials in `Authorization`, in any
//! form v1.0 accepts), calls a service and replies.

use super::body::RawBody;
use super::reply::{ApiError, HttpError, success};
use super::{AppState, Caller, blocking, handlers};
use crate::service::audit::AuditRecord;
use crate::service::audit::{AuditFilter, parse_time};
use crate::service::catalogue::{Flavor, ImageSpec};
use crate::service::desktops::{Class, DesktopSpec};
use crate::service::{CloudError, FieldErrors, Principal, ServiceError, iso8601};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use thindesk_shared::{ConnectionType, DesktopAction, RegistrationMode, TerminalState};
use warp::http::Method;
use warp::reply::Response;

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Users,
    UsersImport,
    User(String),
    UserPassword(String),
    Places,
    Place(String),
    Terminals,
    TerminalsPending,
    Terminal(String),
    TerminalState(String, TerminalState),
    TerminalMove(String),
    Settings,
    Images,
    Image(String),
    Flavors,
    Flavor(String),
    Desktops,
    Desktop(String),
    DesktopAssign(String),
    DesktopAction(String),
    Instances,
    Instance(String),
    Audit,
}

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;
static LIST_CREATE: [Method; 2] = [GET, POST];
static ONLY_GET: [Method; 1] = [GET];
static ONLY_POST: [Method; 1] = [POST];
static ONLY_DELETE: [Method; 1] = [DELETE];
static SET: [Method; 2] = [POST, PUT];
static READ_SET: [Method; 3] = [GET, POST, PUT];

/// The resource a path names and the methods it accepts; `None` for unknown paths.
fn route(segments: &[String]) -> Option<(Route, &'static [Method])> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let own = |x: &str| x.to_owned();
    Some(match s.as_slice() {
        ["users"] => (Route::Users, &LIST_CREATE),
        ["users", "import"] => (Route::UsersImport, &ONLY_POST),
        ["users", name] => (Route::User(own(name)), &ONLY_DELETE),
        ["users", name, "password"] => (Route::UserPassword(own(name)), &SET),
        ["places"] => (Route::Places, &LIST_CREATE),
        ["places", name] => (Route::Place(own(name)), &ONLY_DELETE),
        ["terminals"] => (Route::Terminals, &ONLY_GET),
        ["terminals", "pending"] => (Route::TerminalsPending, &ONLY_GET),
        ["terminals", mac] => (Route::Terminal(own(mac)), &ONLY_DELETE),
        ["terminals", mac, "approve"] => (Route::TerminalState(own(mac), TerminalState::Approved), &ONLY_POST),
        ["terminals", mac, "reject"] => (Route::TerminalState(own(mac), TerminalState::Rejected), &ONLY_POST),
        ["terminals", mac, "move"] => (Route::TerminalMove(own(mac)), &SET),
        ["settings"] => (Route::Settings, &READ_SET),
        ["images"] => (Route::Images, &LIST_CREATE),
        ["images", name] => (Route::Image(own(name)), &ONLY_DELETE),
        ["flavors"] => (Route::Flavors, &LIST_CREATE),
        ["flavors", name] => (Route::Flavor(own(name)), &ONLY_DELETE),
        ["desktops"] => (Route::Desktops, &LIST_CREATE),
        ["desktops", id] => (Route::Desktop(own(id)), &ONLY_DELETE),
        ["desktops", id, "assign"] => (Route::DesktopAssign(own(id)), &SET),
        ["desktops", id, "action"] => (Route::DesktopAction(own(id)), &ONLY_POST),
        ["instances"] => (Route::Instances, &ONLY_GET),
        ["instances", id] => (Route::Instance(own(id)), &ONLY_DELETE),
        ["audit"] => (Route::Audit, &ONLY_GET),
        _ => return None,
    })
}

/// Percent-decodes one path segment (`b%20101` is `b 101`).
pub(super) fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn dispatch(
    tail: warp::path::Tail,
    method: Method,
    query: HashMap<String, String>,
    caller: Caller,
    body: Result<RawBody, HttpError>,
    state: AppState,
) -> Result<Response, ApiError> {
    let segments: Vec<String> = tail.as_str().split('/').filter(|s| !s.is_empty()).map(decode_segment).collect();
    let (route, allowed) = route(&segments).ok_or(HttpError::NoRoute)?;
    if !allowed.contains(&method) {
        return Err(HttpError::MethodNotAllowed { method, allowed }.into());
    }
    let admin = handlers::authenticate(&state, caller).await?;
    admin.require_admin()?;
    let body = body?;
    let body = if method == GET || method == DELETE {
        Value::Null
    } else if route == Route::UsersImport && body.essence().as_deref() == Some("multipart/form-data") {
        // `curl -F file=@class.csv`: the file's content (or a `csv` field) is the CSV.
        let form = body.form(true).await?;
        json!({ "csv": form.get("file").or_else(|| form.get("csv")).cloned().unwrap_or_default() })
    } else {
        json_unless_csv(&route, &body)?
    };
    let data = blocking(move || handle(&state, &admin, route, method, &query, body)).await?;
    Ok(success(data))
}

/// CSV imports take `text/csv` (or `text/plain`) as it is; everything else is JSON.
fn json_unless_csv(route: &Route, body: &RawBody) -> Result<Value, HttpError> {
    let is_text = matches!(body.essence().as_deref(), Some("text/csv" | "text/plain"));
    if *route == Route::UsersImport && is_text { Ok(json!({ "csv": body.text()? })) } else { body.json() }
}

fn handle(
    state: &AppState,
    admin: &Principal,
    route: Route,
    method: Method,
    query: &HashMap<String, String>,
    body: Value,
) -> Result<Value, ServiceError> {
    let by = admin.actor();
    let (accounts, terminals, desktops, catalogue) =
        (&state.accounts, &state.terminals, &state.desktops, &state.catalogue);
    Ok(match (route, method) {
        (Route::Users, m) if m == GET => {
            let users: Vec<Value> = accounts
                .users()?
                .into_iter()
                .map(|u| json!({ "name": u.name, "is_admin": u.is_admin, "created_at": iso8601(u.created_at) }))
                .collect();
            json!({ "user_list": users })
        }
        (Route::Users, _) => {
            let mut errors = FieldErrors::default();
            let name = text(&body, "name", &mut errors);
            let password = text(&body, "password", &mut errors);
            let is_admin = flag(&body, "admin", &mut errors);
            errors.into_result(())?;
            accounts.create_user(&by, &name, &password, is_admin)?;
            json!({ "name": name, "is_admin": is_admin })
        }
        (Route::UsersImport, _) => {
            let mut errors = FieldErrors::default();
            let csv = text(&body, "csv", &mut errors);
            errors.into_result(())?;
            let created = accounts.import_csv(&by, &csv)?;
            json!({ "created": created })
        }
        (Route::User(name), _) => {
            accounts.delete_user(&by, &name)?;
            Value::Null
        }
        (Route::UserPassword(name), _) => {
            let mut errors = FieldErrors::default();
            let password = text(&body, "password", &mut errors);
            errors.into_result(())?;
            accounts.reset_password(&by, &name, &password)?;
            Value::Null
        }
        (Route::Places, m) if m == GET => json!({ "place_list": terminals.places()? }),
        (Route::Places, _) => {
            let mut errors = FieldErrors::default();
            let name = text(&body, "name", &mut errors);
            let address = optional_text(&body, "address", &mut errors).unwrap_or_default();
            errors.into_result(())?;
            terminals.add_place(&by, &name, &address)?;
            json!({ "name": name.trim(), "address": address.trim() })
        }
        (Route::Place(name), _) => {
            terminals.delete_place(&by, &name)?;
            Value::Null
        }
        (Route::Terminals, _) => {
            let state = match query.get("state").map(|s| s.trim()).filter(|s| !s.is_empty()) {
                None => None,
                Some(text) => Some(
                    TerminalState::parse(&text.to_ascii_uppercase())
                        .ok_or_else(|| invalid("state", "must be approved, waiting or rejected"))?,
                ),
            };
            json!({ "terminal_list": terminals.terminals(state)? })
        }
        (Route::TerminalsPending, _) => json!({ "terminal_list": terminals.terminals(Some(TerminalState::Waiting))? }),
        (Route::Terminal(mac), _) => {
            terminals.delete(&by, &mac)?;
            Value::Null
        }
        (Route::TerminalState(mac, new_state), _) => {
            terminals.set_state(&by, &mac, new_state)?;
            json!(terminals.lookup(&mac)?)
        }
        (Route::TerminalMove(mac), _) => {
            let mut errors = FieldErrors::default();
            let place = text(&body, "place", &mut errors);
            let seat = seat(&body, &mut errors);
            errors.into_result(())?;
            terminals.move_to(&by, &mac, &place, &seat)?;
            json!(terminals.lookup(&mac)?)
        }
        (Route::Settings, m) if m == GET => settings(state)?,
        (Route::Settings, _) => {
            let mut errors = FieldErrors::default();
            let mode = text(&body, "terminal_registration_mode", &mut errors);
            errors.into_result(())?;
            let mode = RegistrationMode::parse(mode.trim())
                .ok_or_else(|| invalid("terminal_registration_mode", "must be auto, approval or closed"))?;
            terminals.set_registration_mode(&by, mode)?;
            settings(state)?
        }
        (Route::Images, m) if m == GET => {
            let images: Vec<Value> = catalogue
                .images()?
                .into_iter()
                .map(|i| {
                    json!({
                        "name": i.name,
                        "disk": i.base_disk,
                        "default_connection_type": i.default_connection_type,
                        "os_username": i.os_username,
                        "created_at": iso8601(i.created_at),
                    })
                })
                .collect();
            json!({ "image_list": images })
        }
        (Route::Images, _) => {
            let mut errors = FieldErrors::default();
            let name = text(&body, "name", &mut errors);
            let disk = text(&body, "disk", &mut errors);
            let connection = optional_text(&body, "connection", &mut errors).unwrap_or_else(|| "spice".into());
            let os_username = optional_text(&body, "os_username", &mut errors).unwrap_or_default();
            let os_password = optional_text(&body, "os_password", &mut errors).unwrap_or_default();
            let connection = ConnectionType::parse(&connection.to_ascii_lowercase());
            if connection.is_none() {
                errors.add("connection", "must be spice or rdp");
            }
            errors.into_result(())?;
            let spec = ImageSpec {
                name: name.clone(),
                base_disk: PathBuf::from(disk),
                default_connection_type: connection.unwrap_or(ConnectionType::Spice),
                os_username,
                os_password,
            };
            catalogue.add_image(&by, &spec)?;
            json!({ "name": name.trim() })
        }
        (Route::Image(name), _) => {
            catalogue.delete_image(&by, &name)?;
            Value::Null
        }
        (Route::Flavors, m) if m == GET => {
            let flavors: Vec<Value> = catalogue
                .flavors()?
                .into_iter()
                .map(|f| json!({ "name": f.name, "vcpus": f.vcpus, "ram": f.ram_mib, "disk": f.disk_gib }))
                .collect();
            json!({ "flavor_list": flavors })
        }
        (Route::Flavors, _) => {
            let mut errors = FieldErrors::default();
            let name = text(&body, "name", &mut errors);
            let vcpus = number(&body, "vcpus", &mut errors);
            let ram = number(&body, "ram", &mut errors);
            let disk = number(&body, "disk", &mut errors);
            errors.into_result(())?;
            catalogue.add_flavor(&by, &Flavor { name: name.clone(), vcpus, ram_mib: ram, disk_gib: disk })?;
            json!({ "name": name.trim(), "vcpus": vcpus, "ram": ram, "disk": disk })
        }
        (Route::Flavor(name), _) => {
            catalogue.delete_flavor(&by, &name)?;
            Value::Null
        }
        (Route::Desktops, m) if m == GET => {
            let owner = query.get("user").map(|u| u.trim()).filter(|u| !u.is_empty());
            let list: Vec<Value> = desktops
                .list_all(owner)?
                .into_iter()
                .map(|d| {
                    json!({
                        "id": d.id, "name": d.name, "owner": d.owner, "status": d.status,
                        "image": d.image, "flavor": d.flavor,
                    })
                })
                .collect();
            json!({ "desktop_list": list })
        }
        (Route::Desktops, _) => create_desktops(state, &by, &body)?,
        (Route::Desktop(id), _) => {
            desktops.delete(&by, &id)?;
            Value::Null
        }
        (Route::DesktopAssign(id), _) => {
            let mut errors = FieldErrors::default();
            let user = text(&body, "user", &mut errors);
            errors.into_result(())?;
            desktops.assign(&by, &id, user.trim())?;
            Value::Null
        }
        (Route::DesktopAction(id), _) => {
            let action = DesktopAction::from_body(&body).map_err(|message| invalid("action", message))?;
            desktops.act(admin, &id, action)?;
            Value::Null
        }
        (Route::Instances, _) => {
            let list: Vec<Value> = state
                .cloud
                .list_instances()
                .map_err(cloud_error)?
                .into_iter()
                .map(|i| {
                    // The listing is for looking, not connecting: no SPICE ticket.
                    json!({
                        "vm_id": i.vm_id, "name": i.name, "image": i.image, "flavor": i.flavor,
                        "internet": i.internet, "status": i.status, "spice_port": i.spice_port,
                        "rdp_port": i.rdp_port, "created_at": i.created_at,
                    })
                })
                .collect();
            json!({ "instance_list": list })
        }
        (Route::Instance(id), _) => {
            state.cloud.destroy(&by, &id).map_err(cloud_error)?;
            Value::Null
        }
        (Route::Audit, _) => {
            let filter = audit_filter(query)?;
            let entries: Vec<Value> = state.audit.list(&filter)?.into_iter().map(audit_json).collect();
            json!({ "audit_list": entries })
        }
    })
}

fn settings(state: &AppState) -> Result<Value, ServiceError> {
    Ok(json!({ "terminal_registration_mode": state.terminals.registration_mode()? }))
}

/// `{"image","flavor","name"?}` and one of `user`, `users` (a list) or `all_students`
/// (true): one call gives each of them a desktop.
fn create_desktops(state: &AppState, by: &crate::service::Actor, body: &Value) -> Result<Value, ServiceError> {
    let mut errors = FieldErrors::default();
    let image = text(body, "image", &mut errors);
    let flavor = text(body, "flavor", &mut errors);
    let name = optional_text(body, "name", &mut errors).unwrap_or_default();
    let class = match (body.get("user"), body.get("users"), body.get("all_students")) {
        (Some(Value::String(user)), None, None) => Some(Class::Users(vec![user.clone()])),
        (None, Some(Value::Array(users)), None) => {
            let names: Option<Vec<String>> = users.iter().map(|u| u.as_str().map(str::to_owned)).collect();
            if names.is_none() {
                errors.add("users", "must be a list of user names");
            }
            names.map(Class::Users)
        }
        (None, None, Some(Value::Bool(true))) => Some(Class::AllStudents),
        _ => {
            errors.add("user", "give exactly one of user (a name), users (a list) or all_students (true)");
            None
        }
    };
    errors.into_result(())?;
    let Some(class) = class else { return Err(invalid("user", "is required")) };
    if let Class::Users(users) = &class
        && users.len() == 1
        && body.get("user").is_some()
    {
        // One user: refusals are the call's own status, as for any single create.
        let name = if name.trim().is_empty() { &image } else { &name };
        let spec = DesktopSpec::from_catalogue(name, &users[0], &image, &flavor);
        let id = state.desktops.create(by, &spec)?;
        return Ok(json!({ "id": id, "owner": spec.owner }));
    }
    let outcomes = state.desktops.create_for_class(by, &class, &image, &flavor, &name)?;
    let mut created = Vec::new();
    let mut failed = Vec::new();
    for outcome in outcomes {
        match outcome.result {
            Ok(id) => created.push(json!({ "user": outcome.user, "id": id })),
            Err(error) => failed.push(json!({ "user": outcome.user, "error": describe(&error) })),
        }
    }
    Ok(json!({ "created": created, "failed": failed }))
}

/// A per-user failure inside a successful class call, without internals.
pub(super) fn describe(error: &ServiceError) -> String {
    match error {
        ServiceError::Invalid(fields) => fields
            .0
            .iter()
            .map(|(field, messages)| format!("{field} {}", messages.join("; ")))
            .collect::<Vec<_>>()
            .join("; "),
        ServiceError::Compute(crate::compute::ComputeError::NoCapacity(reason)) => reason.clone(),
        ServiceError::Compute(_) | ServiceError::Store(_) | ServiceError::Internal(_) => {
            tracing::error!(error = %error, "creating a class desktop failed");
            "the server failed; its log has the details".into()
        }
        other => other.to_string(),
    }
}

pub(super) fn cloud_error(error: CloudError) -> ServiceError {
    match error {
        CloudError::InvalidVmId => ServiceError::NotFound("instance".into()),
        CloudError::Destroy(compute) | CloudError::Launch(compute) => ServiceError::Compute(compute),
        CloudError::Store(store) => ServiceError::Store(store),
        other => ServiceError::Internal(other.to_string()),
    }
}

pub(super) fn audit_filter(query: &HashMap<String, String>) -> Result<AuditFilter, ServiceError> {
    let mut errors = FieldErrors::default();
    let mut time = |key: &str| match query.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => {
            let parsed = parse_time(text);
            if parsed.is_none() {
                errors.add(key, "must be a time such as 2026-11-24T10:00:00Z, a date or Unix seconds");
            }
            parsed
        }
    };
    let since = time("since");
    let until = time("until");
    let limit = match query.get("limit").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=crate::service::audit::MAX_AUDIT_LIMIT).contains(&n) => Some(n),
            _ => {
                errors.add("limit", "must be a number from 1 to 1000");
                None
            }
        },
    };
    errors.into_result(AuditFilter {
        actor: query.get("actor").cloned(),
        action: query.get("action").cloned(),
        since,
        until,
        limit,
    })
}

fn audit_json(entry: AuditRecord) -> Value {
    json!({
        "id": entry.id,
        "at": iso8601(entry.at),
        "actor": entry.actor,
        "address": entry.address,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
    })
}

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(FieldErrors::single(field, message))
}

fn text(body: &Value, field: &str, errors: &mut FieldErrors) -> String {
    match body.get(field) {
        Some(Value::String(value)) => value.clone(),
        None | Some(Value::Null) => {
            errors.add(field, "is required");
            String::new()
        }
        Some(_) => {
            errors.add(field, "must be a string");
            String::new()
        }
    }
}

fn optional_text(body: &Value, field: &str, errors: &mut FieldErrors) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(_) => Some(text(body, field, errors)),
    }
}

fn flag(body: &Value, field: &str, errors: &mut FieldErrors) -> bool {
    match body.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(value)) => *value,
        Some(_) => {
            errors.add(field, "must be true or false");
            false
        }
    }
}

fn number(body: &Value, field: &str, errors: &mut FieldErrors) -> u32 {
    match body.get(field) {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)) => {
            n.as_u64().unwrap_or_default() as u32
        }
        Some(Value::String(text)) if text.trim().parse::<u32>().is_ok() => text.trim().parse().unwrap_or_default(),
        None | Some(Value::Null) => {
            errors.add(field, "is required");
            0
        }
        Some(_) => {
            errors.add(field, "must be a whole number");
            0
        }
    }
}

fn seat(body: &Value, errors: &mut FieldErrors) -> String {
    match body.get("seat_number") {
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => text(body, "seat_number", errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_and_routed() {
        assert_eq!(decode_segment("b%20101"), "b 101");
        assert_eq!(decode_segment("08:00:20:0A:8C:6D"), "08:00:20:0A:8C:6D");
        assert_eq!(decode_segment("100%"), "100%");
        let segments = |p: &str| p.split('/').map(decode_segment).collect::<Vec<_>>();
        assert_eq!(route(&segments("users/import")).map(|r| r.0), Some(Route::UsersImport));
        assert_eq!(route(&segments("users/kim/password")).map(|r| r.0), Some(Route::UserPassword("kim".into())));
        assert_eq!(route(&segments("nope")), None);
    }
}
