//! JSend for requests hyper cannot parse. Hyper answers those itself, before any
//! route sees them (a bad header byte: 400; a URI over its limit: 414; headers over
//! its buffer: 431), with an empty body and no hook to change it. So the connection's
//! writer is wrapped: a response head that is exactly such an answer, a 4xx with
//! `connection: close` and `content-length: 0` written on its own, is replaced by
//! the same status with a JSend `fail` body. Every response the routes make has a
//! body, so nothing else matches.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose writes are watched for hyper's own error answers.
pub struct JsendForMalformed<S> {
    inner: S,
    /// The JSend answer being written in place of hyper's, how much of it is out,
    /// and how many bytes of hyper's it stands for.
    replacing: Option<Replacement>,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl<S> JsendForMalformed<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, replacing: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsendForMalformed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> JsendForMalformed<S> {
    /// Writes the replacement until it is all out; then reports hyper's bytes as
    /// written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some(replacement) = self.replacing.as_mut() {
            if replacement.written == replacement.bytes.len() {
                let stands_for = replacement.stands_for;
                self.replacing = None;
                return Poll::Ready(Ok(stands_for));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &replacement.bytes[replacement.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            replacement.written += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsendForMalformed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            match jsend_for(buf) {
                Some(bytes) => self.replacing = Some(Replacement { bytes, written: 0, stands_for: buf.len() }),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.poll_replacement(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Hyper's own answer is a head alone, in one slice.
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (non_empty.next(), non_empty.next())
            && (self.replacing.is_some() || jsend_for(only).is_some())
        {
            return self.poll_write(cx, only);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.replacing.is_some() {
            ready!(self.poll_replacement(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.replacing.is_some() {
            ready!(self.poll_replacement(cx))?;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The most hyper's own answer takes: a status line and two or three headers.
const MAX_OWN_ANSWER: usize = 256;

/// The JSend answer for `written` if it is one of hyper's own error answers. Every
/// write of every response passes here, so anything else is turned away by its
/// length and first bytes before the text is looked at.
fn jsend_for(written: &[u8]) -> Option<Vec<u8>> {
    if written.len() > MAX_OWN_ANSWER || !written.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let text = std::str::from_utf8(written).ok()?;
    let head = text.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.strip_prefix("HTTP/1.1 ")?;
    let code = status.get(..3)?;
    let headers: Vec<&str> = lines.collect();
    let own_answer = code.starts_with('4')
        && !head.contains("\r\n\r\n")
        && headers.iter().any(|h| h.eq_ignore_ascii_case("connection: close"))
        && headers.iter().any(|h| h.eq_ignore_ascii_case("content-length: 0"))
        && !headers.iter().any(|h| h.to_ascii_lowercase().starts_with("content-type:"));
    if !own_answer {
        return None;
    }
    let why = match code {
        "414" => "the request's URI is too long",
        "431" => "the request's header fields are too large",
        _ => "the request is not valid HTTP (a malformed request line or header)",
    };
    let body = serde_json::json!({ "status": "fail", "data": { "request": why } }).to_string();
    let mut answer = format!("{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len());
    for header in headers.iter().filter(|h| !h.to_ascii_lowercase().starts_with("content-length:")) {
        answer.push_str(header);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const HYPERS: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 21:58:58 GMT\r\n\r\n";

    #[test]
    fn hypers_empty_answers_become_jsend_with_their_status() {
        let answer = String::from_utf8(jsend_for(HYPERS).expect("replaced")).expect("text");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Tue, 01 Dec 2026 21:58:58 GMT") && head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["status"], "fail");
        assert!(json["data"]["request"].as_str().is_some_and(|m| m.contains("not valid HTTP")), "{json}");
    }

    #[test]
    fn answers_with_a_body_or_a_success_pass_unchanged() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n";
        let ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let with_body = b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n{}";
        for written in [&ours[..], &ok[..], &with_body[..], b"{\"status\":\"success\"}"] {
            assert!(jsend_for(written).is_none(), "{}", String::from_utf8_lossy(written));
        }
    }

    #[tokio::test]
    async fn the_writer_reports_hypers_bytes_written_and_sends_the_jsend() {
        let (client, mut server) = tokio::io::duplex(16);
        let mut wrapped = JsendForMalformed::new(client);
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server, &mut received).await.expect("read");
            received
        });
        let written = std::future::poll_fn(|cx| Pin::new(&mut wrapped).poll_write(cx, HYPERS)).await.expect("write");
        assert_eq!(written, HYPERS.len());
        wrapped.write_all(b"after").await.expect("write");
        wrapped.shutdown().await.expect("shutdown");
        drop(wrapped);
        let received = String::from_utf8(reader.await.expect("joined")).expect("text");
        assert!(received.ends_with("}after"), "{received}");
        assert!(received.contains("\"status\":\"fail\""), "{received}");
    }
}
