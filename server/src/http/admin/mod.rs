//! `/api/v1.0/admin/...`: the administrator's REST API, JSend like the rest of v1.0.
//! A thin face over [`crate::service::admin`]: [`routes`] names, for each path and
//! method, the operation's decoder; the handler authenticates an administrator,
//! gathers the fields (path, query or body), runs the command and replies with its
//! outcome as `data`.

pub(super) mod routes;

use super::body::RawBody;
use super::reply::{ApiError, HttpError, success};
use super::{AppState, Caller, blocking, handlers};
use crate::service::admin::Input;
use std::collections::HashMap;
use warp::http::Method;
use warp::reply::Response;

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
    let endpoint = routes::route(&segments).ok_or(HttpError::NoRoute)?;
    let Some(decoder) = endpoint.decoder(&method) else {
        return Err(HttpError::MethodNotAllowed { method, allowed: endpoint.allowed() }.into());
    };
    let admin = handlers::authenticate(&state, caller).await?;
    admin.require_admin()?;
    let input = if method == Method::GET || method == Method::DELETE {
        Input::from_text(query)
    } else {
        read_body(body?, endpoint.resource.takes_csv).await?
    };
    let input = match endpoint.target.clone() {
        Some((field, value)) => input.with(field, value),
        None => input,
    };
    let by = admin.actor();
    let outcome = blocking(move || state.services.admin().perform(&by, decoder, &input)).await?;
    Ok(success(outcome))
}

/// JSON, except that a CSV import also takes the text itself (`text/csv`,
/// `text/plain`) or a multipart upload (`curl -F file=@class.csv`).
async fn read_body(body: RawBody, takes_csv: bool) -> Result<Input, HttpError> {
    match body.essence().as_deref() {
        Some("multipart/form-data") if takes_csv => Ok(Input::from_text(body.form(true).await?)),
        Some("text/csv" | "text/plain") if takes_csv => Ok(Input::from_text([("csv", body.text()?)])),
        _ => Ok(Input::from_json(body.json()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(decode_segment("b%20101"), "b 101");
        assert_eq!(decode_segment("08:00:20:0A:8C:6D"), "08:00:20:0A:8C:6D");
        assert_eq!(decode_segment("100%"), "100%");
    }
}
