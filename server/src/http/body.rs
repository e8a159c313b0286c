//! Request bodies: read with a size limit, checked for type, parsed as JSON.

use super::reply::HttpError;
use bytes::{Buf, BufMut, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use warp::{Filter, Rejection};

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
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    if let Some(content_type) = content_type.as_deref()
        && !is_json(content_type)
    {
        return Err(HttpError::UnsupportedMediaType(content_type.to_owned()));
    }
    serde_json::from_slice(&bytes).map_err(|e| HttpError::MalformedJson(e.to_string()))
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
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
}
