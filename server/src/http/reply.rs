//! The one place where errors become HTTP statuses and JSend bodies.

use crate::service::{FieldErrors, ServiceError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use thindesk_shared::JSend;
use thindesk_shared::terminal::{SEAT_TAKEN, TERMINAL_EXISTED, TERMINAL_NOT_EXIST};
use utoipa::ToSchema;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Rejection, Reply};

/// Problems with the request itself, found before any service is called.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("this endpoint does not accept {method}")]
    MethodNotAllowed { method: Method, allowed: Vec<Method> },
    #[error("the body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("the body must be JSON (application/json), not {0}")]
    UnsupportedMediaType(String),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body could not be read: {0}")]
    UnreadableBody(String),
    #[error("the body must be a form (application/x-www-form-urlencoded or multipart/form-data), not {0}")]
    UnsupportedFormType(String),
    #[error("the form could not be read: {0}")]
    MalformedForm(String),
    #[error("no such endpoint")]
    NoRoute,
    /// Credentials in plain HTTP from the network (CONTRACT.md, "Encryption in
    /// transit").
    #[error("credentials are only taken over HTTPS here: use {https}")]
    HttpsRequired { https: String },
    /// The console, asked for in plain HTTP from the network.
    #[error("the console is served over HTTPS: {location}")]
    MovedToHttps { location: String },
}

/// Anything a handler or filter refuses a request with.
#[derive(Debug)]
pub enum ApiError {
    Http(HttpError),
    Service(ServiceError),
}

impl warp::reject::Reject for ApiError {}

impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        Self::Http(error)
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self::Service(error)
    }
}

pub fn reject(error: impl Into<ApiError>) -> Rejection {
    warp::reject::custom(error.into())
}

// ----- the `data` of each kind of fail ---------------------------------------------
// Each names the part of the request at fault. The OpenAPI document (`http::openapi`)
// takes its schemas from these types.

/// The body cannot be used: unreadable, too large, of the wrong type, not JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct BodyFail {
    pub body: String,
}

/// The credentials are missing or wrong (401), or not an administrator's (403).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationFail {
    pub authorization: String,
}

/// Too many failed logins (429); `Retry-After` says the same.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThrottledFail {
    pub authorization: String,
    /// Seconds to wait before the next try.
    pub retry_after: u64,
}

/// The endpoint does not take this method (405); `Allow` lists those it takes.
/// Credentials sent in plain HTTP from the network (426): where to send them instead.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransportFail {
    pub transport: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MethodFail {
    pub method: String,
}

/// No endpoint has this path (404).
#[derive(Debug, Serialize, ToSchema)]
pub struct PathFail {
    pub path: String,
}

/// A header cannot be read (400), such as an `Authorization` that is not visible ASCII.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeaderFail {
    pub header: String,
}

/// Any other request warp could not take (400).
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestFail {
    pub request: String,
}

/// The desktop is not the caller's or does not exist (404), or is busy (409).
#[derive(Debug, Serialize, ToSchema)]
pub struct DesktopFail {
    pub desktop: String,
}

/// No such thing (404) or a conflict (409), in the administrator's API.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageFail {
    pub message: String,
}

/// Field errors (400) in both shapes the contract uses: `{"errors": {"place": ["..."]}}`
/// for forms, and the first message of each field at the top level
/// (`{"mac_address": "..."}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldFail {
    /// The first message of each field, under the field's name.
    #[serde(flatten)]
    pub first: BTreeMap<String, String>,
    /// Every message of each field.
    pub errors: BTreeMap<String, Vec<String>>,
}

/// An uploaded CSV file's bad lines (400); nothing was imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct CsvFail {
    pub csv: String,
    pub lines: Vec<LineFail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineFail {
    pub line: usize,
    pub error: String,
}

/// `{"status":"success","data":...}` with 200.
pub fn success<T: Serialize>(data: T) -> Response {
    jsend_response(StatusCode::OK, &JSend::<T, ()>::Success { data })
}

fn jsend_response<T: Serialize, F: Serialize>(status: StatusCode, body: &JSend<T, F>) -> Response {
    let mut response = warp::reply::json(body).into_response();
    *response.status_mut() = status;
    response
}

fn fail<F: Serialize>(status: StatusCode, data: F) -> Response {
    jsend_response::<(), F>(status, &JSend::Fail { data })
}

fn error(status: StatusCode, message: &str, code: &str) -> Response {
    jsend_response::<(), ()>(
        status,
        &JSend::Error { message: message.to_owned(), code: Some(code.to_owned()), data: None },
    )
}

fn field_errors(errors: &FieldErrors) -> FieldFail {
    let first =
        errors.0.iter().filter_map(|(field, messages)| Some((field.clone(), messages.first()?.clone()))).collect();
    FieldFail { first, errors: errors.0.clone() }
}

fn unauthorized(message: String) -> Response {
    let mut response = fail(StatusCode::UNAUTHORIZED, AuthorizationFail { authorization: message });
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"thindesk\""));
    response
}

fn service_response(e: &ServiceError) -> Response {
    use ServiceError as E;
    match e {
        E::NoCredentials => unauthorized(
            "credentials are required: send Authorization with user:password or a token from /api/v1.0/token".into(),
        ),
        E::BadCredentials | E::TokenExpired => unauthorized(e.to_string()),
        E::Throttled { retry_after } => {
            let mut response = fail(
                StatusCode::TOO_MANY_REQUESTS,
                ThrottledFail { authorization: e.to_string(), retry_after: *retry_after },
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        E::NotAdministrator => fail(StatusCode::FORBIDDEN, AuthorizationFail { authorization: e.to_string() }),
        E::Invalid(errors) => fail(StatusCode::BAD_REQUEST, field_errors(errors)),
        E::BadLines(lines) => {
            let lines = lines.iter().map(|l| LineFail { line: l.line, error: l.message.clone() }).collect();
            fail(StatusCode::BAD_REQUEST, CsvFail { csv: e.to_string(), lines })
        }
        E::TerminalNotFound => fail(StatusCode::NOT_FOUND, TERMINAL_NOT_EXIST),
        E::TerminalExists => fail(StatusCode::CONFLICT, TERMINAL_EXISTED),
        E::SeatTaken => fail(StatusCode::CONFLICT, SEAT_TAKEN),
        E::DesktopNotFound => fail(StatusCode::NOT_FOUND, DesktopFail { desktop: e.to_string() }),
        E::DesktopBusy => fail(StatusCode::CONFLICT, DesktopFail { desktop: e.to_string() }),
        E::NotFound(_) => fail(StatusCode::NOT_FOUND, MessageFail { message: e.to_string() }),
        E::Conflict(_) => fail(StatusCode::CONFLICT, MessageFail { message: e.to_string() }),
        E::NoHypervisor => {
            error(StatusCode::SERVICE_UNAVAILABLE, "no hypervisor is attached to this server", "compute_unavailable")
        }
        E::Compute(detail) => {
            tracing::error!(error = %detail, "hypervisor failure");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the hypervisor could not do this; the server's log has the details",
                "compute_failed",
            )
        }
        E::Overloaded { retry_after } => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), "overloaded");
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        E::Store(_) | E::Internal(_) => {
            tracing::error!(error = %e, "internal error");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error; the server's log has the details",
                "internal",
            )
        }
    }
}

fn http_response(e: &HttpError) -> Response {
    match e {
        HttpError::MethodNotAllowed { allowed, .. } => {
            let mut response = fail(StatusCode::METHOD_NOT_ALLOWED, MethodFail { method: e.to_string() });
            let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        HttpError::NoRoute => fail(StatusCode::NOT_FOUND, PathFail { path: e.to_string() }),
        HttpError::PayloadTooLarge => fail(StatusCode::PAYLOAD_TOO_LARGE, BodyFail { body: e.to_string() }),
        HttpError::UnsupportedMediaType(_) | HttpError::UnsupportedFormType(_) => {
            fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, BodyFail { body: e.to_string() })
        }
        HttpError::MalformedJson(_) | HttpError::UnreadableBody(_) | HttpError::MalformedForm(_) => {
            fail(StatusCode::BAD_REQUEST, BodyFail { body: e.to_string() })
        }
        HttpError::HttpsRequired { .. } => {
            let mut response = fail(StatusCode::UPGRADE_REQUIRED, TransportFail { transport: e.to_string() });
            response.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("TLS/1.2, HTTP/1.1"));
            response
        }
        HttpError::MovedToHttps { location } => {
            let mut response = fail(StatusCode::PERMANENT_REDIRECT, TransportFail { transport: e.to_string() });
            if let Ok(value) = HeaderValue::from_str(location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
    }
}

impl ApiError {
    pub fn to_response(&self) -> Response {
        match self {
            ApiError::Http(e) => http_response(e),
            ApiError::Service(e) => service_response(e),
        }
    }
}

/// A handler's outcome as the reply to send.
pub fn finish(outcome: Result<Response, ApiError>) -> Response {
    outcome.unwrap_or_else(|e| e.to_response())
}

/// Turns every rejection, ours or warp's, into a JSend reply. Nothing internal (no
/// stack trace, no SQL, no path) reaches the client; 5xx details go to the log.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(api_error) = rejection.find::<ApiError>() {
        return Ok(api_error.to_response());
    }
    if rejection.is_not_found() {
        return Ok(fail(StatusCode::NOT_FOUND, PathFail { path: HttpError::NoRoute.to_string() }));
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(fail(StatusCode::METHOD_NOT_ALLOWED, MethodFail { method: "method not allowed here".into() }));
    }
    if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        return Ok(fail(StatusCode::BAD_REQUEST, HeaderFail { header: e.to_string() }));
    }
    if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        return Ok(fail(StatusCode::PAYLOAD_TOO_LARGE, BodyFail { body: e.to_string() }));
    }
    tracing::warn!(?rejection, "unhandled rejection");
    Ok(fail(StatusCode::BAD_REQUEST, RequestFail { request: "the request could not be understood".into() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_errors_carry_both_shapes() {
        let mut errors = FieldErrors::default();
        errors.add("place", "is required");
        errors.add("place", "second");
        errors.add("mac_address", "bad");
        let value = serde_json::to_value(field_errors(&errors)).expect("serialisable");
        assert_eq!(value["place"], "is required");
        assert_eq!(value["mac_address"], "bad");
        assert_eq!(value["errors"]["place"], json!(["is required", "second"]));
    }
}
