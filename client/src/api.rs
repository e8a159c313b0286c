//! The v1.0 terminal API (seed 002, as `shared/CONTRACT.md` decides it), as typed async
//! calls. Every reply is JSend with a real status; [`ApiError`] names each failure the
//! client shows differently.

use crate::pinning::{Pin, Untrusted};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use thindesk_shared::terminal::{RegistrationRequest, SEAT_TAKEN, TERMINAL_EXISTED, TERMINAL_NOT_EXIST};
use thindesk_shared::{DesktopAction, DesktopList, JSend, Place, PlaceList, RegistrationReply, Terminal, TokenGrant};

/// Field name → messages, as a 400 carries them in `data.errors`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// No answer at all: refused, timed out, DNS.
    #[error("{0}")]
    Unreachable(String),
    /// 401: no, wrong or expired credentials.
    #[error("wrong or expired credentials")]
    Unauthorized,
    /// 403: the account may not do this.
    #[error("not allowed")]
    Forbidden,
    /// 404 `"terminal not exist"`.
    #[error("terminal not registered")]
    TerminalNotFound,
    /// Any other 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409 `"terminal existed"`.
    #[error("terminal existed")]
    TerminalExisted,
    /// 409 `"place and seat number existed"`.
    #[error("place and seat number existed")]
    SeatTaken,
    /// Any other 409 (an action already under way on a desktop).
    #[error("busy: {0}")]
    Conflict(String),
    /// 400 with field errors.
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    /// 429: wait this many seconds.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// 5xx (`error`): the server's message, which never carries internals.
    #[error("{0}")]
    Server(String),
    /// A reply that is not what the contract says.
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// The server's certificate is not the pinned one: nothing was sent.
    #[error("the server's certificate is not the one this terminal trusts")]
    Untrusted(Untrusted),
}

/// Where the credentials of a call come from.
#[derive(Clone)]
pub enum Auth {
    None,
    Password { user: String, password: String },
    Token(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Password { user, .. } => write!(f, "Password({user}, ***)"),
            Self::Token(_) => f.write_str("Token(***)"),
        }
    }
}

impl Auth {
    fn header(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Password { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            Self::Token(token) => Some(format!("Bearer {token}")),
        }
    }
}

#[derive(Clone)]
pub struct ApiClient {
    base: String,
    /// `Err`: no client could be made (said on every call); never one that does not pin.
    http: Result<reqwest::Client, String>,
    pin: Pin,
}

/// How long a request may take in all: a student waits for no longer than this before
/// being told the server does not answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl ApiClient {
    /// `server` is `host:port`, with or without a scheme, a trailing `/` or `/api/v1.0`.
    /// The client speaks HTTPS only (on the port given; the server takes both there)
    /// and talks to the server whose certificate `pin` names.
    pub fn new(server: &str, pin: Pin) -> Self {
        let trimmed = server.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/api/v1.0").unwrap_or(trimmed);
        let host = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
        let http = pin.client_config().map_err(|e| e.to_string()).and_then(|tls| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .https_only(true)
                .connect_timeout(Duration::from_secs(5))
                .timeout(REQUEST_TIMEOUT)
                .build()
                .map_err(|e| describe(&e))
        });
        Self { base: format!("https://{host}/api/v1.0"), http, pin }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `https://host:port`, as the user knows the server.
    pub fn server(&self) -> &str {
        self.base.trim_end_matches("/api/v1.0")
    }

    /// The pin this client checks, shared with its clones.
    pub fn pin(&self) -> &Pin {
        &self.pin
    }

    /// A client for the same server and pin with connections of its own, for another
    /// runtime (pooled connections belong to the runtime that opened them).
    pub fn fresh(&self) -> Self {
        Self::new(self.server(), self.pin.clone())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> Result<T, ApiError> {
        let http = self.http.as_ref().map_err(|reason| ApiError::Unreachable(reason.clone()))?;
        let mut request = http.request(method, format!("{}{path}", self.base));
        if let Some(header) = auth.header() {
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| match self.pin.refused() {
            // Refused in the handshake: the request never left.
            Some(untrusted) if e.is_connect() => ApiError::Untrusted(untrusted),
            _ => ApiError::Unreachable(describe(&e)),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ApiError::Unreachable(describe(&e)))?;
        let reply: JSend<Value> =
            serde_json::from_str(&text).map_err(|_| ApiError::Protocol(format!("HTTP {status}: not a JSend reply")))?;
        match reply {
            JSend::Success { data } if status.is_success() => {
                serde_json::from_value(data).map_err(|e| ApiError::Protocol(e.to_string()))
            }
            JSend::Success { .. } => Err(ApiError::Protocol(format!("HTTP {status} with success"))),
            JSend::Fail { data } => Err(fail_error(status, data)),
            JSend::Error { message, .. } => Err(ApiError::Server(message)),
        }
    }

    /// `GET /terminals/<mac>`.
    pub async fn terminal(&self, mac: &str) -> Result<Terminal, ApiError> {
        self.call(Method::GET, &format!("/terminals/{mac}"), &Auth::None, None).await
    }

    /// `GET /places`.
    pub async fn places(&self) -> Result<Vec<Place>, ApiError> {
        let list: PlaceList = self.call(Method::GET, "/places", &Auth::None, None).await?;
        Ok(list.place_list)
    }

    /// `POST /terminals/registration`; with an administrator's credentials, `mode: "auth"`.
    pub async fn register(
        &self,
        place: &str,
        seat_number: &str,
        mac: &str,
        admin: Option<(&str, &str)>,
    ) -> Result<RegistrationReply, ApiError> {
        let request = RegistrationRequest {
            place: place.to_owned(),
            seat_number: seat_number.to_owned(),
            mac_address: mac.to_owned(),
            mode: admin.map(|_| "auth".to_owned()),
        };
        let auth = match admin {
            Some((user, password)) => Auth::Password { user: user.to_owned(), password: password.to_owned() },
            None => Auth::None,
        };
        let body = serde_json::to_value(&request).map_err(|e| ApiError::Protocol(e.to_string()))?;
        self.call(Method::POST, "/terminals/registration", &auth, Some(body)).await
    }

    /// `GET /token` with the user's password.
    pub async fn token(&self, user: &str, password: &str) -> Result<TokenGrant, ApiError> {
        let auth = Auth::Password { user: user.to_owned(), password: password.to_owned() };
        self.call(Method::GET, "/token", &auth, None).await
    }

    /// `GET /token` with the current token: a fresh token before this one expires.
    pub async fn renew(&self, token: &str) -> Result<TokenGrant, ApiError> {
        self.call(Method::GET, "/token", &Auth::Token(token.to_owned()), None).await
    }

    /// `DELETE /token`: logs out, revoking the token (the server then gives the user's
    /// running desktops new display tickets, which ends their viewers' sessions).
    pub async fn log_out(&self, token: &str) -> Result<(), ApiError> {
        let _: Value = self.call(Method::DELETE, "/token", &Auth::Token(token.to_owned()), None).await?;
        Ok(())
    }

    /// `GET /users/me/desktops`.
    pub async fn desktops(&self, token: &str) -> Result<DesktopList, ApiError> {
        self.call(Method::GET, "/users/me/desktops", &Auth::Token(token.to_owned()), None).await
    }

    /// `POST /desktops/<id>/action` with the seed's body, `{"reboot": null}`.
    pub async fn action(&self, token: &str, desktop_id: &str, action: DesktopAction) -> Result<(), ApiError> {
        let path = format!("/desktops/{desktop_id}/action");
        let _: Value = self.call(Method::POST, &path, &Auth::Token(token.to_owned()), Some(action.to_body())).await?;
        Ok(())
    }

    /// `PUT /users/me/reset_password`, proving the current password (Basic): the server
    /// refuses a change made with a token alone. It ends every token of the user.
    pub async fn change_password(&self, user: &str, current: &str, new: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "password": new });
        let auth = Auth::Password { user: user.to_owned(), password: current.to_owned() };
        let _: Value = self.call(Method::PUT, "/users/me/reset_password", &auth, Some(body)).await?;
        Ok(())
    }
}

fn fail_error(status: StatusCode, data: Value) -> ApiError {
    let text = |data: &Value| match data {
        Value::String(text) => text.clone(),
        Value::Object(fields) => fields.values().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    };
    match status.as_u16() {
        401 => ApiError::Unauthorized,
        403 => ApiError::Forbidden,
        404 if data == TERMINAL_NOT_EXIST => ApiError::TerminalNotFound,
        404 => ApiError::NotFound(text(&data)),
        409 if data == TERMINAL_EXISTED => ApiError::TerminalExisted,
        409 if data == SEAT_TAKEN => ApiError::SeatTaken,
        409 => ApiError::Conflict(text(&data)),
        429 => ApiError::Throttled(data.get("retry_after").and_then(Value::as_u64).unwrap_or(1).max(1)),
        400 => match data.get("errors").cloned().map(serde_json::from_value::<FieldErrors>) {
            Some(Ok(errors)) => ApiError::Invalid(errors),
            _ => ApiError::Invalid(FieldErrors::from([("request".to_owned(), vec![text(&data)])])),
        },
        _ => ApiError::Protocol(format!("HTTP {status}: {}", text(&data))),
    }
}

/// A short reason for a transport failure, without the URL (shown separately).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut source: Option<&dyn std::error::Error> = Some(error);
    let mut last = error.to_string();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_url_accepts_the_usual_spellings_and_is_always_https() {
        for spelling in ["http://h:5000", "https://h:5000/", "http://h:5000/api/v1.0", "h:5000"] {
            assert_eq!(ApiClient::new(spelling, Pin::new(None)).base(), "https://h:5000/api/v1.0", "{spelling}");
        }
    }

    #[test]
    fn statuses_map_to_errors() {
        assert_eq!(fail_error(StatusCode::NOT_FOUND, json!("terminal not exist")), ApiError::TerminalNotFound);
        assert_eq!(fail_error(StatusCode::CONFLICT, json!("terminal existed")), ApiError::TerminalExisted);
        assert_eq!(fail_error(StatusCode::CONFLICT, json!("place and seat number existed")), ApiError::SeatTaken);
        assert_eq!(fail_error(StatusCode::TOO_MANY_REQUESTS, json!({"retry_after": 7})), ApiError::Throttled(7));
        let invalid = fail_error(StatusCode::BAD_REQUEST, json!({"errors": {"place": ["is required"]}}));
        assert_eq!(invalid, ApiError::Invalid(FieldErrors::from([("place".into(), vec!["is required".into()])])));
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let auth = Auth::Password { user: "u".into(), password: "hunter2".into() };
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert!(!format!("{:?}", Auth::Token("tok".into())).contains("tok"));
    }
}
