//! The OpenAPI 3.1 document of the server, served at `GET /api/v1.0/openapi.json`.
//! (Over 600 lines: each v1.0 operation's statuses are one `#[utoipa::path]` item of
//! its own, which reads best side by side.)
//!
//! **The document is generated from the types the server serialises**, never written
//! by hand: success data are `thindesk_shared`'s wire types (its `openapi` feature
//! derives their schemas), fail data are the types `http::reply` writes, the cloud
//! API's answers are `CloudReply` beside each variant of `http::cloud::Extra`, and each
//! JSend envelope is cut out of the schema that `JSend` derives. What is written here
//! is which statuses each operation gives: one `#[utoipa::path]` item per operation,
//! whose responses are the reusable ones below (`Unauthorized`, `BadRequest`, ...).
//!
//! The administrator's API is written by `admin.rs` from the table that routes it.
//! To document another v1.0 route, add a `#[utoipa::path]` item, name it in
//! `paths(...)` of [`Document`], register its body types in `components(schemas(...))`
//! and any new reusable response in `components(responses(...))`.

mod admin;

use super::cloud::Extra;
use super::reply::{
    ApiError, AuthorizationFail, BodyFail, DesktopFail, FieldFail, HeaderFail, MethodFail, ThrottledFail,
};
use crate::service::ServiceError;
use crate::service::accounts::MIN_PASSWORD_CHARS;
use admin::AdminApi;
use std::sync::LazyLock;
use thindesk_shared::JSend;
use thindesk_shared::admin::{NewUser, PasswordReset};
use thindesk_shared::cloud::{
    CloudForm, CloudReply, FlavorInfo, FlavorList, ImageInfo, ImageList, InstanceInfo, InstanceList, LaunchedInstance,
};
use thindesk_shared::terminal::{RegistrationRequest, SEAT_TAKEN, TERMINAL_EXISTED, TERMINAL_NOT_EXIST};
use thindesk_shared::{
    DesktopAction, DesktopList, IsAdministrator, PasswordChange, PlaceList, RegistrationReply, Terminal, TokenGrant,
};
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, Object, ObjectBuilder, Ref, Schema, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};
use warp::http::{HeaderValue, header};

/// The whole document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "thindesk",
        description = "The thin-terminal API v1.0 (seed 002) and the cloud API (seed 000) of a thindesk \
                       management server. Every v1.0 answer is JSend (`success`, `fail` or `error`) with \
                       a real HTTP status; the cloud API always answers HTTP 200 with a `ret_code`."
    ),
    paths(
        // The terminal API, v1.0 (seed 002).
        operations::get_token,
        operations::post_token,
        operations::delete_token,
        operations::get_reset_password,
        operations::post_reset_password,
        operations::put_reset_password,
        operations::my_desktops,
        operations::is_administrator,
        operations::desktop_action,
        operations::places,
        operations::register_terminal,
        operations::terminal,
        operations::openapi_document,
        // The cloud API (seed 000).
        operations::cloud_api,
    ),
    components(
        schemas(
            TokenGrant,
            PasswordChange,
            DesktopList,
            IsAdministrator,
            DesktopAction,
            PlaceList,
            Terminal,
            RegistrationRequest,
            RegistrationReply,
            BodyFail,
            AuthorizationFail,
            ThrottledFail,
            MethodFail,
            HeaderFail,
            DesktopFail,
            FieldFail,
            CloudForm,
            CloudReply,
            LaunchedInstance,
            InstanceInfo,
            InstanceList,
            ImageInfo,
            ImageList,
            FlavorInfo,
            FlavorList,
        ),
        responses(
            TokenGranted,
            Done,
            DesktopsListed,
            AdministratorAnswer,
            PlacesListed,
            TerminalFound,
            TerminalRegistered,
            ThisDocument,
            CloudAnswer,
            BadHeader,
            BadRequest,
            BadMacAddress,
            Unauthorized,
            Forbidden,
            DesktopNotFound,
            TerminalNotFound,
            RegistrationIsPostOnly,
            DesktopBusy,
            TerminalConflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            Throttled,
            InternalError,
            HypervisorUnavailable,
        ),
    ),
    modifiers(&SecuritySchemes, &AdminApi, &Rules),
    tags(
        (name = "tokens", description = "Tokens for the other calls, from a user name and password."),
        (name = "users", description = "The caller's own account and desktops."),
        (name = "desktops", description = "Power actions on a desktop."),
        (name = "terminals", description = "Places (classrooms), and terminals registering in them."),
        (name = "document", description = "This document."),
        (name = "cloud", description = "The cloud API an exam system calls to launch and destroy machines."),
        (name = "admin", description = "The administrator's API: what the management console and the command line do."),
    )
)]
pub struct Document;

/// `GET /api/v1.0/openapi.json`: the document, written once.
pub(super) fn serve() -> Result<warp::reply::Response, ApiError> {
    static JSON: LazyLock<Result<String, String>> =
        LazyLock::new(|| Document::openapi().to_json().map_err(|e| e.to_string()));
    match &*JSON {
        Ok(json) => {
            let mut response = warp::reply::Response::new(json.clone().into());
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        Err(error) => Err(ServiceError::Internal(format!("the OpenAPI document could not be written: {error}")).into()),
    }
}

// ----- the credential forms -------------------------------------------------------

/// The forms of `Authorization` that `http::credentials` reads, as security schemes:
/// an operation that needs a user takes any of `basic`, `bearer` and `authorization`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let basic = HttpBuilder::new().scheme(HttpAuthScheme::Basic).description(Some(
            "RFC 7617: `Basic base64(user:password)`. A token works as the user name with any or no \
             password (`Basic base64(TOKEN:)`), as Flask-HTTPAuth clients send it.",
        ));
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("`Bearer TOKEN` (or `Token TOKEN`), with a token from `/api/v1.0/token`."));
        let authorization = ApiKeyValue::with_description(
            "Authorization",
            "The seed's forms without a standard scheme: `user:password`, `TOKEN` alone, or \
             `Basic user:password` not base64-encoded.",
        );
        let cloud_api_key = ApiKeyValue::with_description(
            "X-Api-Key",
            "The cloud API key, when the server has one (the form's `api_key` works too). Callers must \
             also come from an allowed address (loopback by default); others get `ret_code` 9.",
        );
        components.add_security_scheme("basic", SecurityScheme::Http(basic.build()));
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer.build()));
        components.add_security_scheme("authorization", SecurityScheme::ApiKey(ApiKey::Header(authorization)));
        components.add_security_scheme("cloud_api_key", SecurityScheme::ApiKey(ApiKey::Header(cloud_api_key)));
    }
}

/// Rules the server checks that the wire types cannot know.
struct Rules;

impl Modify for Rules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for body in [PasswordChange::name(), NewUser::name(), PasswordReset::name()] {
            if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(body.as_ref())
                && let Some(RefOr::T(Schema::Object(password))) = body.properties.get_mut("password")
            {
                password.min_length = Some(MIN_PASSWORD_CHARS);
            }
        }
    }
}

// ----- schemas put together from derived ones ---------------------------------------

/// A component schema, by reference: `Document` registers `T` under `components`.
fn named<T: ToSchema>() -> RefOr<Schema> {
    Ref::from_schema_name(T::name()).into()
}

/// JSON `null`.
fn null() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Null).into()
}

/// Exactly these strings.
fn words(words: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(words.iter().copied())).into()
}

fn any_of(items: impl IntoIterator<Item = RefOr<Schema>>) -> RefOr<Schema> {
    items.into_iter().fold(AnyOfBuilder::new(), AnyOfBuilder::item).into()
}

/// The JSend envelope of one class, `success`, `fail` or `error`: that variant of the
/// schema `JSend` derives, with `data` of the schema given. Should `JSend`'s schema ever
/// not have that variant, the whole envelope stands (true, if less precise; the tests
/// insist on the variant).
fn envelope(status: &str, data: Option<RefOr<Schema>>) -> RefOr<Schema> {
    let whole = JSend::<(), ()>::schema();
    let RefOr::T(Schema::OneOf(variants)) = &whole else {
        return whole;
    };
    let variant = variants.items.iter().find_map(|item| match item {
        RefOr::T(Schema::Object(object)) if tag(object) == Some(status) => Some(object.clone()),
        _ => None,
    });
    let Some(mut variant) = variant else {
        return whole;
    };
    if let Some(data) = data {
        variant.properties.insert("data".into(), data);
    }
    Schema::Object(variant).into()
}

/// The value of an internally tagged variant's `status`.
fn tag(object: &Object) -> Option<&str> {
    match object.properties.get("status")? {
        RefOr::T(Schema::Object(status)) => status.enum_values.as_ref()?.first()?.as_str(),
        _ => None,
    }
}

fn success(data: RefOr<Schema>) -> RefOr<Schema> {
    envelope("success", Some(data))
}

fn fail(data: RefOr<Schema>) -> RefOr<Schema> {
    envelope("fail", Some(data))
}

fn error() -> RefOr<Schema> {
    envelope("error", None)
}

/// A cloud API answer: `ret_code` and `description` alone (`destroy_instance`, most
/// failures), or beside them the keys of one variant of [`Extra`].
fn cloud_answer() -> RefOr<Schema> {
    let mut alone = match CloudReply::schema() {
        RefOr::T(Schema::Object(reply)) => reply,
        _ => ObjectBuilder::new().build(),
    };
    alone.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    let variants = match Extra::schema() {
        RefOr::T(Schema::OneOf(variants)) => variants.items,
        other => vec![other],
    };
    let with_extra =
        variants.into_iter().map(|extra| AllOfBuilder::new().item(named::<CloudReply>()).item(extra).into());
    any_of(std::iter::once(Schema::Object(alone).into()).chain(with_extra))
}

// ----- reusable responses ---------------------------------------------------------

fn json(description: &str, schema: RefOr<Schema>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content("application/json", Content::new(Some(schema)))
}

fn string_header(description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
    header.description = Some(description.to_owned());
    header
}

fn integer_header(description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)));
    header.description = Some(description.to_owned());
    header
}

/// One reusable response (`#/components/responses/NAME`) per item.
macro_rules! responses {
    ($($(#[$doc:meta])* $name:ident => $response:expr;)*) => {$(
        $(#[$doc])*
        struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), RefOr::T($response.build()))
            }
        }
    )*};
}

responses! {
    TokenGranted => json("A new token, and how many seconds it lasts.", success(named::<TokenGrant>()));
    Done => json("Done; `data` is `null`.", success(null()));
    DesktopsListed => json(
        "The caller's desktops. Gateways are not supported, so `gateway_list` is empty.",
        success(named::<DesktopList>()),
    );
    AdministratorAnswer => json(
        "Whether the caller is an administrator: the string \"true\" or \"false\", as the seed shows.",
        success(named::<IsAdministrator>()),
    );
    PlacesListed => json("Every place.", success(named::<PlaceList>()));
    TerminalFound => json("The terminal.", success(named::<Terminal>()));
    TerminalRegistered => json(
        "Registered; the state follows the server's registration mode, or is APPROVED for `mode: \"auth\"`.",
        success(named::<RegistrationReply>()),
    );
    ThisDocument => json("This document.", ObjectBuilder::new().schema_type(Type::Object).into());
    CloudAnswer => json(
        "Always HTTP 200. `ret_code` 0 is success; the others say what failed, `description` in words.",
        cloud_answer(),
    );
    BadHeader => json("A header cannot be read (`Authorization` must be visible ASCII).", fail(named::<HeaderFail>()));
    BadRequest => json(
        "The request cannot be used: a header (`header`), the body (`body`), or fields (`errors`, and the \
         first message of each field under its name).",
        fail(any_of([named::<HeaderFail>(), named::<BodyFail>(), named::<FieldFail>()])),
    );
    BadMacAddress => json("Not a MAC address (`mac_address`).", fail(named::<FieldFail>()));
    Unauthorized => json("No, wrong or expired credentials.", fail(named::<AuthorizationFail>()))
        .header("WWW-Authenticate", string_header("`Bearer realm=\"thindesk\"`."));
    Forbidden => json("Only an administrator may do this.", fail(named::<AuthorizationFail>()));
    DesktopNotFound => json(
        "No such desktop, or not the caller's: both answer alike.",
        fail(named::<DesktopFail>()),
    );
    TerminalNotFound => json("No terminal has this MAC address, in the seed's words.", fail(words(&[TERMINAL_NOT_EXIST])));
    RegistrationIsPostOnly => json(
        "`/terminals/registration` takes POST only.",
        fail(named::<MethodFail>()),
    )
    .header("Allow", string_header("The methods the path takes."));
    DesktopBusy => json("Another action on this desktop is still running.", fail(named::<DesktopFail>()));
    TerminalConflict => json(
        "The MAC address, or the place and seat, is registered already, in the seed's words.",
        fail(words(&[TERMINAL_EXISTED, SEAT_TAKEN])),
    );
    PayloadTooLarge => json("The body is larger than 1 MiB.", fail(named::<BodyFail>()));
    UnsupportedMediaType => json("The body is not JSON (`application/json`).", fail(named::<BodyFail>()));
    Throttled => json("Too many failed logins for this account or address.", fail(named::<ThrottledFail>()))
        .header("Retry-After", integer_header("Seconds to wait."));
    InternalError => json(
        "The server failed (`code` `internal`); the details are in its log, never in the answer.",
        error(),
    );
    HypervisorUnavailable => json(
        "The server cannot do this now: no hypervisor is attached (`code` `compute_unavailable`), it \
         failed (`compute_failed`), or too many passwords are being checked at once (`overloaded`, with \
         `Retry-After`; contract \"Overload\").",
        error(),
    )
    .header("Retry-After", integer_header("Seconds to wait, when `code` is `overloaded`."));
}

/// One `#[utoipa::path]` item per operation. The functions are never called: each only
/// carries its operation's description, and the handlers of `http` serve it.
#[allow(dead_code, reason = "the functions only carry their #[utoipa::path]")]
mod operations {
    use super::*;

    // ----- the terminal API, v1.0 (seed 002) --------------------------------------

    #[utoipa::path(
        get,
        path = "/api/v1.0/token",
        tag = "tokens",
        summary = "A new token",
        description = "Issues a token for the credentials in `Authorization` (every form works; tokens too). \
                       Tokens expire after the server's `token_ttl` and are revoked when the password changes.",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        responses(
            (status = 200, response = TokenGranted),
            (status = 400, response = BadHeader),
            (status = 401, response = Unauthorized),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn get_token() {}

    #[utoipa::path(
        post,
        path = "/api/v1.0/token",
        tag = "tokens",
        summary = "A new token (as GET)",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        responses(
            (status = 200, response = TokenGranted),
            (status = 400, response = BadHeader),
            (status = 401, response = Unauthorized),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn post_token() {}

    #[utoipa::path(
        delete,
        path = "/api/v1.0/token",
        tag = "tokens",
        summary = "Log out",
        description = "Revokes the token in `Authorization` and cuts the caller's display sessions: each \
                       of their running desktops gets a new SPICE ticket. Only a token can be logged out.",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        responses(
            (status = 200, response = Done),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn delete_token() {}

    #[utoipa::path(
        get,
        path = "/api/v1.0/users/me/reset_password",
        tag = "users",
        summary = "Change the caller's password",
        description = "Sets the caller's password and revokes every other token of theirs (not the one \
                       used, if any). GET, POST and PUT all do it, as the seed allows. Any credential form \
                       works, a token included, unless the server's `password_change_by_token` is off: \
                       then the caller proves the current password with Basic credentials and a token \
                       alone is refused (400, field `authorization`).",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        request_body(content = PasswordChange, content_type = "application/json"),
        responses(
            (status = 200, response = Done),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 413, response = PayloadTooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn get_reset_password() {}

    #[utoipa::path(
        post,
        path = "/api/v1.0/users/me/reset_password",
        tag = "users",
        summary = "Change the caller's password (as GET)",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        request_body(content = PasswordChange, content_type = "application/json"),
        responses(
            (status = 200, response = Done),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 413, response = PayloadTooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn post_reset_password() {}

    #[utoipa::path(
        put,
        path = "/api/v1.0/users/me/reset_password",
        tag = "users",
        summary = "Change the caller's password (as GET)",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        request_body(content = PasswordChange, content_type = "application/json"),
        responses(
            (status = 200, response = Done),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 413, response = PayloadTooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn put_reset_password() {}

    #[utoipa::path(
        get,
        path = "/api/v1.0/users/me/desktops",
        tag = "users",
        summary = "The caller's desktops",
        description = "Each desktop with its status and how to reach its display; a SPICE entry carries \
                       the ticket the viewer needs.",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        responses(
            (status = 200, response = DesktopsListed),
            (status = 400, response = BadHeader),
            (status = 401, response = Unauthorized),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn my_desktops() {}

    #[utoipa::path(
        get,
        path = "/api/v1.0/users/me/is_administrator",
        tag = "users",
        summary = "Whether the caller is an administrator",
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        responses(
            (status = 200, response = AdministratorAnswer),
            (status = 400, response = BadHeader),
            (status = 401, response = Unauthorized),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn is_administrator() {}

    #[utoipa::path(
        post,
        path = "/api/v1.0/desktops/{id}/action",
        tag = "desktops",
        summary = "A power action on a desktop",
        description = "The caller's own desktop, or any desktop for an administrator. Answers once the \
                       hypervisor has done it.",
        params(("id" = String, Path, description = "The desktop's `id`, as the desktop list gives it.")),
        security(("basic" = []), ("bearer" = []), ("authorization" = [])),
        request_body(content = DesktopAction, content_type = "application/json"),
        responses(
            (status = 200, response = Done),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 404, response = DesktopNotFound),
            (status = 409, response = DesktopBusy),
            (status = 413, response = PayloadTooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
            (status = 503, response = HypervisorUnavailable),
        )
    )]
    fn desktop_action() {}

    #[utoipa::path(
        get,
        path = "/api/v1.0/places",
        tag = "terminals",
        summary = "Every place (classroom)",
        responses(
            (status = 200, response = PlacesListed),
            (status = 500, response = InternalError),
        )
    )]
    fn places() {}

    #[utoipa::path(
        post,
        path = "/api/v1.0/terminals/registration",
        tag = "terminals",
        summary = "Register a terminal",
        description = "Without `mode`, anyone may register, and the server's registration mode decides the \
                       state. With `mode: \"auth\"` an administrator's credentials must come along; the \
                       terminal is then APPROVED.",
        security((), ("basic" = []), ("bearer" = []), ("authorization" = [])),
        request_body(content = RegistrationRequest, content_type = "application/json"),
        responses(
            (status = 200, response = TerminalRegistered),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 409, response = TerminalConflict),
            (status = 413, response = PayloadTooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 429, response = Throttled),
            (status = 500, response = InternalError),
        )
    )]
    fn register_terminal() {}

    #[utoipa::path(
        get,
        path = "/api/v1.0/terminals/{mac}",
        tag = "terminals",
        summary = "A terminal, by its MAC address",
        params((
            "mac" = String,
            Path,
            description = "In any usual spelling: `08:00:20:0a:8c:6d`, `08-00-20-0A-8C-6D`, `0800200a8c6d`."
        )),
        responses(
            (status = 200, response = TerminalFound),
            (status = 400, response = BadMacAddress),
            (status = 404, response = TerminalNotFound),
            (status = 405, response = RegistrationIsPostOnly),
            (status = 500, response = InternalError),
        )
    )]
    fn terminal() {}

    #[utoipa::path(
        get,
        path = "/api/v1.0/openapi.json",
        tag = "document",
        summary = "This document",
        responses((status = 200, response = ThisDocument), (status = 500, response = InternalError))
    )]
    fn openapi_document() {}

    // ----- the cloud API (seed 000) -----------------------------------------------

    #[utoipa::path(
        post,
        path = "/cloud_api",
        tag = "cloud",
        summary = "One call of the cloud API, named by `command`",
        description = "Only callers the administrator allows (an address allow-list, loopback by default, and \
                       the key when one is configured) get further than `ret_code` 9. `launch_instance` \
                       answers once the machine runs.",
        security((), ("cloud_api_key" = [])),
        request_body(content(
            (CloudForm = "application/x-www-form-urlencoded"),
            (CloudForm = "multipart/form-data"),
        )),
        responses((status = 200, response = CloudAnswer))
    )]
    fn cloud_api() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{CloudError, CloudRequest};
    use std::collections::HashMap;
    use thindesk_shared::cloud::Command;

    #[test]
    fn the_cloud_form_names_every_argument_the_parser_asks_for() {
        let RefOr::T(Schema::Object(form)) = CloudForm::schema() else {
            panic!("the cloud form is an object");
        };
        let mut asked = 0;
        for command in Command::ALL {
            let only_command = HashMap::from([("command".to_owned(), command.as_str().to_owned())]);
            if let Err(CloudError::ArgumentMissing(keys)) = CloudRequest::parse(&only_command) {
                for key in keys {
                    asked += 1;
                    assert!(form.properties.contains_key(key), "{command} needs {key}, which the form lacks");
                }
            }
        }
        assert!(asked >= 6, "the parser asked for only {asked} arguments");
        for key in ["command", "api_key"] {
            assert!(form.properties.contains_key(key), "{key}");
        }
    }

    #[test]
    fn each_envelope_is_its_own_variant_of_jsend() {
        for (status, schema) in [("success", success(null())), ("fail", fail(null())), ("error", error())] {
            let RefOr::T(Schema::Object(object)) = schema else {
                panic!("{status}: not one variant");
            };
            assert_eq!(tag(&object), Some(status));
        }
    }

    #[test]
    fn the_password_rule_is_in_the_document() {
        let document = serde_json::to_value(Document::openapi()).expect("serialisable");
        let password = &document["components"]["schemas"]["PasswordChange"]["properties"]["password"];
        assert_eq!(password["minLength"], MIN_PASSWORD_CHARS, "{password}");
    }
}
