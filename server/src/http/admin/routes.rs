//! Every path and method of the admin API, in one table that both routes requests and
//! writes the API's part of the OpenAPI document: each operation names its decoder,
//! what its body or query holds and what it answers. A path that is not here is a
//! 404; a method the path does not take is a 405 that lists the ones it does.

use crate::service::admin::{Decoder, decode};
use thindesk_shared::admin as wire;
use thindesk_shared::{DesktopAction, PlaceList, Terminal};
use utoipa::ToSchema;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{Components, RefOr};
use warp::http::Method;

/// A schema for the document, registered (with what it refers to) in `components`.
pub type SchemaOf = fn(&mut Components) -> RefOr<Schema>;

/// `T`'s schema by reference, after registering `T` and every schema it refers to.
pub fn schema_of<T: ToSchema>(components: &mut Components) -> RefOr<Schema> {
    let mut schemas = Vec::new();
    T::schemas(&mut schemas);
    schemas.push((T::name().into_owned(), T::schema()));
    for (name, schema) in schemas {
        let registered = components.schemas.entry(name).or_insert_with(|| schema.clone());
        // Two types of one name would silently share one schema.
        debug_assert!(*registered == schema, "two schemas are named {}", T::name());
    }
    utoipa::openapi::Ref::from_schema_name(T::name()).into()
}

/// What an operation reads besides the path's variable.
pub enum Fields {
    None,
    /// A JSON body of this type.
    Body(SchemaOf),
    /// Query parameters, by name, with what each means.
    Query(&'static [(&'static str, &'static str)]),
}

/// The methods the admin API uses. (`Method` cannot be built in a static table.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }
}

pub struct Operation {
    pub method: Verb,
    pub decoder: Decoder,
    pub summary: &'static str,
    pub fields: Fields,
    /// The `data` of a success; `None` for `null`.
    pub answer: Option<SchemaOf>,
}

pub struct Resource {
    /// Below `/api/v1.0/admin/`; one `{variable}` segment at most, which fills the
    /// operation's field of the same name.
    pub path: &'static str,
    pub operations: &'static [Operation],
    /// Also takes the CSV text itself (`text/csv`) or a multipart upload, besides JSON.
    pub takes_csv: bool,
}

/// What a request's path named.
pub struct Endpoint {
    pub resource: &'static Resource,
    /// The path variable's field and value.
    pub target: Option<(&'static str, String)>,
}

impl Endpoint {
    pub fn decoder(&self, method: &Method) -> Option<Decoder> {
        self.resource.operations.iter().find(|o| o.method.method() == *method).map(|o| o.decoder)
    }

    pub fn allowed(&self) -> Vec<Method> {
        self.resource.operations.iter().map(|o| o.method.method()).collect()
    }
}

/// The endpoint a path (already split and percent-decoded) names. Fixed segments
/// come first in the table, so `users/import` is no user named "import".
pub fn route(segments: &[String]) -> Option<Endpoint> {
    RESOURCES.iter().find_map(|resource| {
        let template: Vec<&str> = resource.path.split('/').collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut target = None;
        for (pattern, segment) in template.iter().zip(segments) {
            match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(field) => target = Some((field, segment.clone())),
                None if pattern == segment => {}
                None => return None,
            }
        }
        Some(Endpoint { resource, target })
    })
}

const GET: Verb = Verb::Get;
const POST: Verb = Verb::Post;
const PUT: Verb = Verb::Put;
const DELETE: Verb = Verb::Delete;

const fn op(
    method: Verb,
    decoder: Decoder,
    summary: &'static str,
    fields: Fields,
    answer: Option<SchemaOf>,
) -> Operation {
    Operation { method, decoder, summary, fields, answer }
}

const fn resource(path: &'static str, operations: &'static [Operation]) -> Resource {
    Resource { path, operations, takes_csv: false }
}

const NO_FIELDS: Fields = Fields::None;

pub static RESOURCES: [Resource; 25] = [
    resource(
        "users",
        &[
            op(GET, decode::list_users, "Every user", NO_FIELDS, Some(schema_of::<wire::UserList>)),
            op(
                POST,
                decode::create_user,
                "Create a user",
                Fields::Body(schema_of::<wire::NewUser>),
                Some(schema_of::<wire::UserCreated>),
            ),
        ],
    ),
    Resource {
        path: "users/import",
        operations: &[op(
            POST,
            decode::import_users,
            "Create a class of users from CSV, all or nothing",
            Fields::Body(schema_of::<wire::UsersCsv>),
            Some(schema_of::<wire::UsersImported>),
        )],
        takes_csv: true,
    },
    resource("users/{name}", &[op(DELETE, decode::delete_user, "Delete a user who owns no desktop", NO_FIELDS, None)]),
    resource(
        "users/{name}/password",
        &[
            op(
                POST,
                decode::reset_password,
                "Set a user's password",
                Fields::Body(schema_of::<wire::PasswordReset>),
                None,
            ),
            op(
                PUT,
                decode::reset_password,
                "Set a user's password",
                Fields::Body(schema_of::<wire::PasswordReset>),
                None,
            ),
        ],
    ),
    resource(
        "places",
        &[
            op(GET, decode::list_places, "Every place", NO_FIELDS, Some(schema_of::<PlaceList>)),
            op(
                POST,
                decode::add_place,
                "Add a place",
                Fields::Body(schema_of::<wire::NewPlace>),
                Some(schema_of::<thindesk_shared::Place>),
            ),
        ],
    ),
    resource("places/{name}", &[op(DELETE, decode::delete_place, "Delete a place with no terminals", NO_FIELDS, None)]),
    resource(
        "terminals",
        &[op(
            GET,
            decode::list_terminals,
            "Terminals",
            Fields::Query(&[("state", "Only those `approved`, `waiting` or `rejected`.")]),
            Some(schema_of::<wire::TerminalList>),
        )],
    ),
    resource(
        "terminals/pending",
        &[op(
            GET,
            decode::pending_terminals,
            "Terminals waiting for approval",
            NO_FIELDS,
            Some(schema_of::<wire::TerminalList>),
        )],
    ),
    resource(
        "terminals/{mac}",
        &[op(DELETE, decode::delete_terminal, "Delete a terminal, so that it may register again", NO_FIELDS, None)],
    ),
    resource(
        "terminals/{mac}/approve",
        &[op(POST, decode::approve_terminal, "Approve a terminal", NO_FIELDS, Some(schema_of::<Terminal>))],
    ),
    resource(
        "terminals/{mac}/reject",
        &[op(POST, decode::reject_terminal, "Reject a terminal", NO_FIELDS, Some(schema_of::<Terminal>))],
    ),
    resource(
        "terminals/{mac}/move",
        &[
            op(
                POST,
                decode::move_terminal,
                "Move a terminal to another place or seat",
                Fields::Body(schema_of::<wire::TerminalMove>),
                Some(schema_of::<Terminal>),
            ),
            op(
                PUT,
                decode::move_terminal,
                "Move a terminal to another place or seat",
                Fields::Body(schema_of::<wire::TerminalMove>),
                Some(schema_of::<Terminal>),
            ),
        ],
    ),
    resource(
        "settings",
        &[
            op(GET, decode::show_settings, "The server's settings", NO_FIELDS, Some(schema_of::<wire::Settings>)),
            op(
                POST,
                decode::change_settings,
                "Change the server's settings",
                Fields::Body(schema_of::<wire::Settings>),
                Some(schema_of::<wire::Settings>),
            ),
            op(
                PUT,
                decode::change_settings,
                "Change the server's settings",
                Fields::Body(schema_of::<wire::Settings>),
                Some(schema_of::<wire::Settings>),
            ),
        ],
    ),
    resource(
        "images",
        &[
            op(GET, decode::list_images, "The catalogue's images", NO_FIELDS, Some(schema_of::<wire::ImageList>)),
            op(
                POST,
                decode::add_image,
                "Add an image (a base disk on the server's host)",
                Fields::Body(schema_of::<wire::NewImage>),
                Some(schema_of::<wire::ImageAdded>),
            ),
        ],
    ),
    resource(
        "images/{name}",
        &[op(DELETE, decode::delete_image, "Delete an image no desktop or instance uses", NO_FIELDS, None)],
    ),
    resource(
        "flavors",
        &[
            op(GET, decode::list_flavors, "The catalogue's flavors", NO_FIELDS, Some(schema_of::<wire::FlavorList>)),
            op(
                POST,
                decode::add_flavor,
                "Add a flavor (a machine size)",
                Fields::Body(schema_of::<wire::Flavor>),
                Some(schema_of::<wire::Flavor>),
            ),
        ],
    ),
    resource(
        "flavors/{name}",
        &[op(DELETE, decode::delete_flavor, "Delete a flavor no desktop or instance uses", NO_FIELDS, None)],
    ),
    resource(
        "desktops",
        &[
            op(
                GET,
                decode::list_desktops,
                "Desktops",
                Fields::Query(&[("user", "Only this user's.")]),
                Some(schema_of::<wire::DesktopList>),
            ),
            op(
                POST,
                decode::give_desktops,
                "Give a user, or each of a class, a desktop from the catalogue",
                Fields::Body(schema_of::<wire::GiveDesktops>),
                Some(schema_of::<wire::DesktopsGiven>),
            ),
        ],
    ),
    resource(
        "desktops/{id}",
        &[op(DELETE, decode::delete_desktop, "Delete a desktop and free its machine", NO_FIELDS, None)],
    ),
    resource(
        "desktops/{id}/assign",
        &[
            op(
                POST,
                decode::assign_desktop,
                "Give a desktop to another user",
                Fields::Body(schema_of::<wire::DesktopAssignment>),
                None,
            ),
            op(
                PUT,
                decode::assign_desktop,
                "Give a desktop to another user",
                Fields::Body(schema_of::<wire::DesktopAssignment>),
                None,
            ),
        ],
    ),
    resource(
        "desktops/{id}/action",
        &[op(
            POST,
            decode::act_on_desktop,
            "A power action on anyone's desktop",
            Fields::Body(schema_of::<DesktopAction>),
            None,
        )],
    ),
    resource(
        "desktops/{id}/ticket",
        &[op(
            POST,
            decode::new_ticket,
            "A new display ticket for a desktop; whoever is connected is cut off",
            NO_FIELDS,
            None,
        )],
    ),
    resource(
        "instances",
        &[op(
            GET,
            decode::list_instances,
            "The cloud API's instances, without their tickets",
            NO_FIELDS,
            Some(schema_of::<wire::InstanceList>),
        )],
    ),
    resource(
        "instances/{id}",
        &[op(DELETE, decode::destroy_instance, "Destroy a cloud API instance", NO_FIELDS, None)],
    ),
    resource(
        "audit",
        &[op(
            GET,
            decode::list_audit,
            "The audit log, newest first",
            Fields::Query(&[
                ("actor", "Only what this user (or `terminal`, `cloud-api`, `cli:USER`) did."),
                ("action", "Only this action (`terminal.approve`) or kind of action (`terminal`)."),
                ("since", "From this time on: `2026-11-24T08:00:00Z`, a date or Unix seconds."),
                ("until", "Up to this time."),
                ("limit", "At most this many entries, 1 to 1000 (100 when left out)."),
            ]),
            Some(schema_of::<wire::AuditList>),
        )],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::admin::Input;
    use std::collections::BTreeSet;

    fn route_of(path: &str) -> Option<Endpoint> {
        route(&path.split('/').map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn paths_name_their_operations_and_targets() {
        let import = route_of("users/import").expect("routed");
        assert!(import.target.is_none() && import.resource.takes_csv, "import is not a user named 'import'");
        assert_eq!(import.allowed(), [Method::POST]);
        let password = route_of("users/kim/password").expect("routed");
        assert_eq!(password.target, Some(("name", "kim".to_owned())));
        assert_eq!(password.allowed(), [Method::POST, Method::PUT]);
        assert!(password.decoder(&Method::GET).is_none());
        assert!(route_of("terminals/pending").expect("routed").target.is_none());
        assert!(route_of("nope").is_none());
        assert!(route_of("users/kim/password/extra").is_none());
    }

    /// The fields a decoder reads, found by decoding an empty input.
    fn fields_read(decoder: Decoder) -> BTreeSet<String> {
        let input = Input::default();
        let _ = decoder(&input);
        input.fields_read()
    }

    /// The documented fields of an operation: its body's properties or its query's
    /// parameters, and the path's variable.
    fn fields_documented(resource: &Resource, operation: &Operation) -> Option<BTreeSet<String>> {
        let mut fields: BTreeSet<String> = resource
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        match &operation.fields {
            Fields::None => {}
            Fields::Query(parameters) => fields.extend(parameters.iter().map(|(name, _)| (*name).to_owned())),
            Fields::Body(schema_of) => {
                let mut components = Components::new();
                let RefOr::Ref(reference) = schema_of(&mut components) else { panic!("a body is a named schema") };
                let name = reference.ref_location.rsplit('/').next().unwrap_or_default().to_owned();
                match components.schemas.get(&name) {
                    Some(RefOr::T(Schema::Object(body))) => fields.extend(body.properties.keys().cloned()),
                    // The action body is `DesktopAction`'s own rule, the v1.0 API's too.
                    _ if name == DesktopAction::name() => return None,
                    _ => panic!("{name} is not an object"),
                }
            }
        }
        Some(fields)
    }

    #[test]
    fn the_document_names_exactly_the_fields_each_decoder_reads() {
        for resource in &RESOURCES {
            for operation in resource.operations {
                let Some(documented) = fields_documented(resource, operation) else { continue };
                let mut read = fields_read(operation.decoder);
                if resource.takes_csv {
                    read.remove("file"); // the multipart upload's field, not the JSON body's
                }
                assert_eq!(read, documented, "{:?} {}", operation.method, resource.path);
            }
        }
    }
}
