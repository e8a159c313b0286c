//! Request bodies: read with a size limit, checked for type, parsed as JSON or as a
//! form.

use super::reply::HttpError;
use crate::service::{FieldErrors, ServiceError};
use bytes::{Buf, BufMut, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use warp::http::HeaderMap;
use warp::{Filter, Rejection};

/// A form's fields, each with its first value (as Flask's `request.form[key]` reads it).
pub type Form = HashMap<String, String>;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// An oversized body is read and thrown away up to here, so that the client (which
/// is still sending) reads the 413 instead of a reset connection.
const DRAIN_LIMIT: usize = 16 * MAX_BODY_BYTES;

/// The body as JSON; `Value::Null` when the request has no body. A missing
/// `Content-Type` is taken to mean JSON (old clients omit it); any other type is 415.
///
/// A bad body is handed to the handler as an error rather than rejected, so that warp
/// does not go on to try other routes with a request that already matched this one.
/// Reads a JSON body into its wire type. A value of the wrong type is an error of its
/// field (`{"place": 7}`: `place`). A body that is no object (or none) has no fields,
/// so each required one is reported missing by name.
pub fn decode<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ServiceError> {
    let body = if body.is_object() { body } else { Value::Object(serde_json::Map::new()) };
    serde_path_to_error::deserialize(body).map_err(|error| {
        let field = error.path().to_string();
        let field = if field == "." { "body" } else { field.as_str() };
        ServiceError::Invalid(FieldErrors::single(field, error.inner().to_string()))
    })
}

pub fn json() -> impl Filter<Extract = (Result<Value, HttpError>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(warp::body::stream())
        .then(|content_type: Option<String>, stream| async move { parse(content_type, stream).await })
}

async fn parse<B: Buf>(
    content_type: Option<String>,
    stream: impl Stream<Item = Result<B, warp::Error>>,
) -> Result<Value, HttpError> {
    let bytes = read_limited(stream).await?;
    json_from(content_type, &bytes)
}

fn json_from(content_type: Option<String>, bytes: &[u8]) -> Result<Value, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    if let Some(content_type) = content_type.as_deref()
        && !is_json(content_type)
    {
        return Err(HttpError::UnsupportedMediaType(content_type.to_owned()));
    }
    serde_json::from_slice(bytes).map_err(|e| HttpError::MalformedJson(e.to_string()))
}

/// A body read (at most 1 MiB) but not yet parsed, for endpoints that take more than
/// one kind: JSON or CSV text, a form with a file.
#[derive(Debug, Clone, Default)]
pub struct RawBody {
    pub content_type: Option<String>,
    pub bytes: bytes::Bytes,
}

pub fn raw() -> impl Filter<Extract = (Result<RawBody, HttpError>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type").and(warp::body::stream()).then(
        |content_type: Option<String>, stream| async move {
            let bytes = read_limited(stream).await?;
            Ok(RawBody { content_type, bytes: bytes.freeze() })
        },
    )
}

impl RawBody {
    /// The body as JSON, by the rules of [`json`].
    pub fn json(&self) -> Result<Value, HttpError> {
        json_from(self.content_type.clone(), &self.bytes)
    }

    /// `type/subtype` of the body, in lower case.
    pub fn essence(&self) -> Option<String> {
        self.content_type.as_deref().map(essence)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String, HttpError> {
        String::from_utf8(self.bytes.to_vec()).map_err(|_| HttpError::UnreadableBody("it is not UTF-8 text".into()))
    }

    /// The body as a form; with `keep_files`, a file part's content is the field's
    /// value (as text).
    pub async fn form(&self, keep_files: bool) -> Result<Form, HttpError> {
        if self.bytes.is_empty() {
            return Ok(Form::new());
        }
        let content_type = self.content_type.clone().unwrap_or_else(|| "application/x-www-form-urlencoded".to_owned());
        match essence(&content_type).as_str() {
            "application/x-www-form-urlencoded" => {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&self.bytes).map_err(|e| HttpError::MalformedForm(e.to_string()))?;
                Ok(first_values(pairs))
            }
            "multipart/form-data" => multipart(&content_type, self.bytes.clone(), keep_files).await,
            _ => Err(HttpError::UnsupportedFormType(content_type)),
        }
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `type/subtype` of a `Content-Type`, in lower case, without parameters.
fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// The body as a form: `application/x-www-form-urlencoded` or `multipart/form-data`,
/// at most 1 MiB either way. An empty body is an empty form, whatever its type; a body
/// without `Content-Type` is read as URL-encoded (what `curl -d` sends).
pub fn form() -> impl Filter<Extract = (Result<Form, HttpError>,), Error = Rejection> + Clone {
    warp::header::headers_cloned().and(warp::body::stream()).then(|headers: HeaderMap, stream| async move {
        let content_type = match headers.get(warp::http::header::CONTENT_TYPE).map(|v| v.to_str()) {
            Some(Ok(value)) => Some(value.to_owned()),
            Some(Err(_)) => return Err(HttpError::UnsupportedFormType("an unreadable Content-Type".into())),
            None => None,
        };
        parse_form(content_type, stream).await
    })
}

async fn parse_form<B: Buf>(
    content_type: Option<String>,
    stream: impl Stream<Item = Result<B, warp::Error>>,
) -> Result<Form, HttpError> {
    let bytes = read_limited(stream).await?;
    if bytes.is_empty() {
        return Ok(Form::new());
    }
    let content_type = content_type.unwrap_or_else(|| "application/x-www-form-urlencoded".to_owned());
    match essence(&content_type).as_str() {
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).map_err(|e| HttpError::MalformedForm(e.to_string()))?;
            Ok(first_values(pairs))
        }
        "multipart/form-data" => multipart(&content_type, bytes.freeze(), false).await,
        _ => Err(HttpError::UnsupportedFormType(content_type)),
    }
}

/// The text fields of a multipart form; file parts are skipped unless `keep_files`.
async fn multipart(content_type: &str, body: bytes::Bytes, keep_files: bool) -> Result<Form, HttpError> {
    let malformed = |e: multer::Error| HttpError::MalformedForm(e.to_string());
    let boundary = multer::parse_boundary(content_type).map_err(malformed)?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(malformed)? {
        let name = field.name().map(str::to_owned);
        let is_file = field.file_name().is_some();
        let value = field.text().await.map_err(malformed)?;
        if let Some(name) = name
            && (keep_files || !is_file)
        {
            pairs.push((name, value));
        }
    }
    Ok(first_values(pairs))
}

fn first_values(pairs: Vec<(String, String)>) -> Form {
    let mut form = Form::new();
    for (key, value) in pairs {
        form.entry(key).or_insert(value);
    }
    form
}

async fn read_limited<B: Buf>(stream: impl Stream<Item = Result<B, warp::Error>>) -> Result<BytesMut, HttpError> {
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| HttpError::UnreadableBody(e.to_string()))?;
        seen = seen.saturating_add(chunk.remaining());
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            body.put(chunk);
        }
    }
    if seen > MAX_BODY_BYTES { Err(HttpError::PayloadTooLarge) } else { Ok(body) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }

    fn body(bytes: &'static [u8]) -> impl Stream<Item = Result<bytes::Bytes, warp::Error>> {
        futures_util::stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) })
    }

    #[tokio::test]
    async fn forms_are_read_urlencoded_and_multipart_keeping_first_values() {
        let urlencoded = parse_form(
            Some("application/x-www-form-urlencoded; charset=utf-8".into()),
            body(b"command=launch_instance&name=final+exam%21&name=second"),
        )
        .await
        .expect("form");
        assert_eq!(urlencoded.get("command").map(String::as_str), Some("launch_instance"));
        assert_eq!(urlencoded.get("name").map(String::as_str), Some("final exam!"));

        let multipart_body = b"--XyZ\r\nContent-Disposition: form-data; name=\"command\"\r\n\r\ndestroy_instance\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n\r\nignored\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"vm_id\"\r\n\r\nabc-123\r\n--XyZ--\r\n";
        let multipart = parse_form(Some("multipart/form-data; boundary=XyZ".into()), body(multipart_body))
            .await
            .expect("multipart");
        assert_eq!(multipart.get("vm_id").map(String::as_str), Some("abc-123"));
        assert_eq!(multipart.get("command").map(String::as_str), Some("destroy_instance"));
        assert!(!multipart.contains_key("upload"));

        assert!(parse_form(None, body(b"")).await.expect("empty").is_empty());
        assert!(matches!(
            parse_form(Some("application/json".into()), body(b"{}")).await,
            Err(HttpError::UnsupportedFormType(_))
        ));
        assert!(matches!(
            parse_form(Some("multipart/form-data".into()), body(b"x")).await,
            Err(HttpError::MalformedForm(_))
        ));
    }
}
