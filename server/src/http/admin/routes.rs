//! Which operation each path and method of the admin API names. A path that is not
//! here is a 404; a method the path does not take is a 405 that lists the ones it does.

use crate::service::admin::{Decoder, decode};
use warp::http::Method;

/// A path's operations by method, and the field its variable segment fills.
pub struct Endpoint {
    operations: &'static [(Method, Decoder)],
    pub target: Option<(&'static str, String)>,
    /// Also takes the CSV text itself or a multipart upload, besides JSON.
    pub takes_csv: bool,
}

impl Endpoint {
    pub fn decoder(&self, method: &Method) -> Option<Decoder> {
        self.operations.iter().find(|(m, _)| m == method).map(|(_, decoder)| *decoder)
    }

    pub fn allowed(&self) -> Vec<Method> {
        self.operations.iter().map(|(m, _)| m.clone()).collect()
    }
}

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;

static USERS: [(Method, Decoder); 2] = [(GET, decode::list_users), (POST, decode::create_user)];
static USERS_IMPORT: [(Method, Decoder); 1] = [(POST, decode::import_users)];
static USER: [(Method, Decoder); 1] = [(DELETE, decode::delete_user)];
static USER_PASSWORD: [(Method, Decoder); 2] = [(POST, decode::reset_password), (PUT, decode::reset_password)];
static PLACES: [(Method, Decoder); 2] = [(GET, decode::list_places), (POST, decode::add_place)];
static PLACE: [(Method, Decoder); 1] = [(DELETE, decode::delete_place)];
static TERMINALS: [(Method, Decoder); 1] = [(GET, decode::list_terminals)];
static TERMINALS_PENDING: [(Method, Decoder); 1] = [(GET, decode::pending_terminals)];
static TERMINAL: [(Method, Decoder); 1] = [(DELETE, decode::delete_terminal)];
static TERMINAL_APPROVE: [(Method, Decoder); 1] = [(POST, decode::approve_terminal)];
static TERMINAL_REJECT: [(Method, Decoder); 1] = [(POST, decode::reject_terminal)];
static TERMINAL_MOVE: [(Method, Decoder); 2] = [(POST, decode::move_terminal), (PUT, decode::move_terminal)];
static SETTINGS: [(Method, Decoder); 3] =
    [(GET, decode::show_settings), (POST, decode::change_settings), (PUT, decode::change_settings)];
static IMAGES: [(Method, Decoder); 2] = [(GET, decode::list_images), (POST, decode::add_image)];
static IMAGE: [(Method, Decoder); 1] = [(DELETE, decode::delete_image)];
static FLAVORS: [(Method, Decoder); 2] = [(GET, decode::list_flavors), (POST, decode::add_flavor)];
static FLAVOR: [(Method, Decoder); 1] = [(DELETE, decode::delete_flavor)];
static DESKTOPS: [(Method, Decoder); 2] = [(GET, decode::list_desktops), (POST, decode::give_desktops)];
static DESKTOP: [(Method, Decoder); 1] = [(DELETE, decode::delete_desktop)];
static DESKTOP_ASSIGN: [(Method, Decoder); 2] = [(POST, decode::assign_desktop), (PUT, decode::assign_desktop)];
static DESKTOP_ACTION: [(Method, Decoder); 1] = [(POST, decode::act_on_desktop)];
static INSTANCES: [(Method, Decoder); 1] = [(GET, decode::list_instances)];
static INSTANCE: [(Method, Decoder); 1] = [(DELETE, decode::destroy_instance)];
static AUDIT: [(Method, Decoder); 1] = [(GET, decode::list_audit)];

/// The endpoint a path (already split and percent-decoded) names.
pub fn route(segments: &[String]) -> Option<Endpoint> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let fixed = |operations: &'static [(Method, Decoder)]| Endpoint { operations, target: None, takes_csv: false };
    let on = |operations: &'static [(Method, Decoder)], field: &'static str, value: &str| Endpoint {
        operations,
        target: Some((field, value.to_owned())),
        takes_csv: false,
    };
    Some(match s.as_slice() {
        ["users"] => fixed(&USERS),
        ["users", "import"] => Endpoint { takes_csv: true, ..fixed(&USERS_IMPORT) },
        ["users", name] => on(&USER, "name", name),
        ["users", name, "password"] => on(&USER_PASSWORD, "name", name),
        ["places"] => fixed(&PLACES),
        ["places", name] => on(&PLACE, "name", name),
        ["terminals"] => fixed(&TERMINALS),
        ["terminals", "pending"] => fixed(&TERMINALS_PENDING),
        ["terminals", mac] => on(&TERMINAL, "mac", mac),
        ["terminals", mac, "approve"] => on(&TERMINAL_APPROVE, "mac", mac),
        ["terminals", mac, "reject"] => on(&TERMINAL_REJECT, "mac", mac),
        ["terminals", mac, "move"] => on(&TERMINAL_MOVE, "mac", mac),
        ["settings"] => fixed(&SETTINGS),
        ["images"] => fixed(&IMAGES),
        ["images", name] => on(&IMAGE, "name", name),
        ["flavors"] => fixed(&FLAVORS),
        ["flavors", name] => on(&FLAVOR, "name", name),
        ["desktops"] => fixed(&DESKTOPS),
        ["desktops", id] => on(&DESKTOP, "id", id),
        ["desktops", id, "assign"] => on(&DESKTOP_ASSIGN, "id", id),
        ["desktops", id, "action"] => on(&DESKTOP_ACTION, "id", id),
        ["instances"] => fixed(&INSTANCES),
        ["instances", id] => on(&INSTANCE, "id", id),
        ["audit"] => fixed(&AUDIT),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(path: &str) -> Option<Endpoint> {
        route(&path.split('/').map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn paths_name_their_operations_and_targets() {
        let import = route_of("users/import").expect("routed");
        assert!(import.target.is_none() && import.takes_csv, "import is not a user named 'import'");
        assert_eq!(import.allowed(), [Method::POST]);
        let password = route_of("users/kim/password").expect("routed");
        assert_eq!(password.target, Some(("name", "kim".to_owned())));
        assert_eq!(password.allowed(), [Method::POST, Method::PUT]);
        assert!(password.decoder(&Method::GET).is_none());
        assert!(route_of("nope").is_none());
    }
}
