//! The administrator's API in the document, written from the same table that routes
//! its requests (`http::admin::routes`): every path, method, path variable, query
//! parameter, body and answer comes from there, so the document and the server cannot
//! disagree on which operations exist or what they read.

use super::{any_of, fail, json, named, null, success, words};
use crate::http::admin::routes::{Fields, RESOURCES, Verb, schema_of};
use crate::http::reply::{BodyFail, CsvFail, DesktopFail, FieldFail, HeaderFail, MessageFail};
use thindesk_shared::terminal::{SEAT_TAKEN, TERMINAL_EXISTED, TERMINAL_NOT_EXIST};
use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required};

/// The statuses every administrative operation may answer besides 200, by the
/// reusable responses of the document.
const REFUSALS: [(&str, &str); 9] = [
    ("400", "AdminBadRequest"),
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("404", "AdminNotFound"),
    ("409", "AdminConflict"),
    ("413", "PayloadTooLarge"),
    ("415", "UnsupportedMediaType"),
    ("429", "Throttled"),
    ("500", "InternalError"),
];

pub struct AdminApi;

impl Modify for AdminApi {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for register in [schema_of::<FieldFail>, schema_of::<CsvFail>, schema_of::<MessageFail>] {
            register(components);
        }
        let reusable = [
            (
                "AdminBadRequest",
                json(
                    "The request cannot be used: a header, the body, fields (`errors`, and the first message \
                     of each field under its name), or the lines of a CSV import (nothing was imported).",
                    fail(any_of([
                        named::<HeaderFail>(),
                        named::<BodyFail>(),
                        named::<FieldFail>(),
                        named::<CsvFail>(),
                    ])),
                ),
            ),
            (
                "AdminNotFound",
                json(
                    "What the path or a field names does not exist.",
                    fail(any_of([named::<MessageFail>(), named::<DesktopFail>(), words(&[TERMINAL_NOT_EXIST])])),
                ),
            ),
            (
                "AdminConflict",
                json(
                    "It exists already, is still in use, or is busy.",
                    fail(any_of([
                        named::<MessageFail>(),
                        named::<DesktopFail>(),
                        words(&[TERMINAL_EXISTED, SEAT_TAKEN]),
                    ])),
                ),
            ),
        ];
        for (name, response) in reusable {
            components.responses.insert(name.to_owned(), RefOr::T(response.build()));
        }
        for resource in &RESOURCES {
            let path = format!("/api/v1.0/admin/{}", resource.path);
            let variable = resource.path.split('/').find_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
            for operation in resource.operations {
                let verb = match operation.method {
                    Verb::Get => HttpMethod::Get,
                    Verb::Post => HttpMethod::Post,
                    Verb::Put => HttpMethod::Put,
                    Verb::Delete => HttpMethod::Delete,
                };
                let answer = operation.answer.map_or_else(null, |schema_of| schema_of(components));
                let mut builder = OperationBuilder::new()
                    .tag("admin")
                    .summary(Some(operation.summary))
                    .operation_id(Some(operation_id(operation.method, resource.path)))
                    .securities(Some(
                        ["basic", "bearer", "authorization"].map(|s| SecurityRequirement::new(s, [""; 0])),
                    ))
                    .response("200", json("Done; `data` is the answer.", success(answer)).build());
                for (status, response) in REFUSALS {
                    builder = builder.response(status, Ref::from_response_name(response));
                }
                builder = builder.response("503", Ref::from_response_name("HypervisorUnavailable"));
                if let Some(variable) = variable {
                    builder = builder.parameter(
                        ParameterBuilder::new()
                            .name(variable)
                            .parameter_in(ParameterIn::Path)
                            .required(Required::True)
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)))),
                    );
                }
                match &operation.fields {
                    Fields::None => {}
                    Fields::Query(parameters) => {
                        for (name, description) in *parameters {
                            builder = builder.parameter(
                                ParameterBuilder::new()
                                    .name(*name)
                                    .parameter_in(ParameterIn::Query)
                                    .required(Required::False)
                                    .description(Some(*description))
                                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                            );
                        }
                    }
                    Fields::Body(schema_of) => {
                        let body = RequestBodyBuilder::new()
                            .required(Some(Required::True))
                            .content("application/json", Content::new(Some(schema_of(components))));
                        builder = builder.request_body(Some(body.build()));
                    }
                }
                openapi.paths.add_path_operation(&path, vec![verb], builder.build());
            }
        }
    }
}

/// `admin_put_users_name_password` for `PUT users/{name}/password`.
fn operation_id(verb: Verb, path: &str) -> String {
    let words: Vec<&str> =
        path.split('/').map(|s| s.trim_start_matches('{').trim_end_matches('}')).filter(|s| !s.is_empty()).collect();
    format!("admin_{}_{}", format!("{verb:?}").to_ascii_lowercase(), words.join("_"))
}
