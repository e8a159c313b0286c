//! The management console at `/admin/`: server-rendered HTML (maud escapes every
//! value), one stylesheet compiled into the binary, no JavaScript. Its own login
//! form opens a session (random id in an `HttpOnly`, `SameSite=Strict` cookie scoped
//! to `/admin`, only its hash stored); every POST carries the session's CSRF token,
//! compared in constant time. Console cookies exist only under `/admin`; the v1.0
//! API never reads them. Every change goes through the same services as the API.

mod actions;
mod i18n;
mod pages;

use super::body::{Form, RawBody};
use super::reply::{ApiError, HttpError};
use super::{AppState, blocking};
use crate::service::{Credentials, Principal, ServiceError, random_token};
pub use i18n::{Lang, Text};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use warp::Reply as _;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

pub const SESSION_COOKIE: &str = "td_session";
pub const LANG_COOKIE: &str = "td_lang";
/// Double-submit token of the login form, which has no session yet.
pub const LOGIN_COOKIE: &str = "td_login";

const STYLE: &str = include_str!("style.css");

/// The console's own state: flash messages waiting for the next page, per session.
#[derive(Default)]
pub struct ConsoleState {
    flashes: Mutex<HashMap<String, Vec<Flash>>>,
    pub secure_cookies: bool,
}

impl ConsoleState {
    pub fn new(secure_cookies: bool) -> Self {
        Self { flashes: Mutex::default(), secure_cookies }
    }

    fn push(&self, session: &str, flash: Flash) {
        let mut flashes = self.flashes.lock().unwrap_or_else(|p| p.into_inner());
        // A session that never reads its messages must not grow memory forever.
        if flashes.len() > 10_000 {
            flashes.clear();
        }
        flashes.entry(session.to_owned()).or_default().push(flash);
    }

    fn take(&self, session: &str) -> Vec<Flash> {
        self.flashes.lock().unwrap_or_else(|p| p.into_inner()).remove(session).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
    /// Further lines (a CSV import's bad lines).
    pub lines: Vec<String>,
}

impl Flash {
    fn ok(text: impl Into<String>) -> Self {
        Self { ok: true, text: text.into(), lines: Vec::new() }
    }

    fn error(text: impl Into<String>) -> Self {
        Self { ok: false, text: text.into(), lines: Vec::new() }
    }
}

/// What every page needs to draw its frame.
pub struct Ctx {
    pub lang: Lang,
    pub admin: Principal,
    pub csrf: String,
    pub flashes: Vec<Flash>,
}

/// A request as the console sees it.
pub struct Request {
    pub method: Method,
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub address: Option<IpAddr>,
    /// Came over this server's own TLS.
    pub tls: bool,
}

impl Request {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
            line.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then(|| value.to_owned())
            })
        })
    }

    fn secure(&self, state: &AppState) -> bool {
        state.console.secure_cookies
            || self.tls
            || self
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https"))
    }
}

type Reply = warp::reply::Response;

pub async fn dispatch(
    tail: warp::path::Tail,
    method: Method,
    query: HashMap<String, String>,
    headers: HeaderMap,
    origin: super::Origin,
    body: Result<RawBody, HttpError>,
    state: AppState,
) -> Reply {
    let segments: Vec<String> =
        tail.as_str().split('/').filter(|s| !s.is_empty()).map(super::admin::decode_segment).collect();
    let tls = origin.tls;
    let request = Request { method, segments, query, headers, address: origin.peer.map(|a| a.ip()), tls };
    let mut cookies = Vec::new();
    let lang = match request.query.get("lang").and_then(|l| Lang::parse(l)) {
        Some(lang) => {
            cookies.push(cookie(&request, &state, LANG_COOKIE, lang.code(), Some(365 * 24 * 3600)));
            lang
        }
        None => request.cookie(LANG_COOKIE).and_then(|l| Lang::parse(&l)).unwrap_or_else(|| {
            let accept = request.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
            accept.map_or(Lang::En, Lang::from_accept_language)
        }),
    };
    let mut reply = route(&request, body, &state, lang, &mut cookies).await;
    for value in cookies {
        if let Ok(value) = HeaderValue::from_str(&value) {
            reply.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    secure_headers(reply.headers_mut());
    if tls {
        // Browsers then never try the console in plain HTTP again.
        reply.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    reply
}

/// Every console answer carries these.
fn secure_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", "default-src 'self'; form-action 'self'; frame-ancestors 'none'");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-content-type-options", "nosniff");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
}

fn cookie(request: &Request, state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut text = format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if request.secure(state) {
        text.push_str("; Secure");
    }
    text
}

async fn route(
    request: &Request,
    body: Result<RawBody, HttpError>,
    state: &AppState,
    lang: Lang,
    cookies: &mut Vec<String>,
) -> Reply {
    let path: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    let get = request.method == Method::GET || request.method == Method::HEAD;
    let post = request.method == Method::POST;
    if !get && !post {
        // Before the session check, so that no method but these is ever redirected.
        let allowed = vec![Method::GET, Method::HEAD, Method::POST];
        return ApiError::from(HttpError::MethodNotAllowed { method: request.method.clone(), allowed }).to_response();
    }
    match path.as_slice() {
        ["style.css"] if get => {
            let mut reply = respond(StatusCode::OK, "text/css; charset=utf-8", STYLE.as_bytes().to_vec());
            reply.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
            return reply;
        }
        ["login"] if get => return login_page(request, state, lang, None, StatusCode::OK, cookies),
        ["login"] if post => return login(request, body, state, lang, cookies).await,
        _ => {}
    }
    let Some((admin, csrf, session)) = session(request, state).await else {
        return if get { redirect("/admin/login") } else { redirect_login_expired() };
    };
    if post {
        let form = match body {
            Ok(body) => body.form(true).await.unwrap_or_default(),
            Err(_) => Form::new(),
        };
        let given = form.get("csrf").map(String::as_bytes).unwrap_or_default();
        if !bool::from(given.ct_eq(csrf.as_bytes())) {
            state.console.push(&session, Flash::error(lang.t(Text::Csrf)));
            return redirect(back(&request.segments));
        }
        if path.as_slice() == ["logout"] {
            let accounts = state.services.accounts.clone();
            let (id, who) = (session.clone(), admin.clone());
            let _ = blocking(move || accounts.close_console_session(&id, &who)).await;
            cookies.push(cookie(request, state, SESSION_COOKIE, "", Some(0)));
            return redirect("/admin/login");
        }
        let (to, flash) = {
            let state = state.clone();
            let segments = request.segments.clone();
            let admin = admin.clone();
            match blocking(move || Ok(actions::act(&state, &admin, lang, &segments, &form))).await {
                Ok(outcome) => outcome,
                Err(_) => (back(&request.segments).to_owned(), Flash::error("the server failed")),
            }
        };
        state.console.push(&session, flash);
        return redirect(&to);
    }
    let ctx = Ctx { lang, admin, csrf, flashes: state.console.take(&session) };
    let page = {
        let state = state.clone();
        let segments = request.segments.clone();
        let query = request.query.clone();
        blocking(move || Ok(pages::page(&state, &ctx, &segments, &query))).await
    };
    match page {
        Ok((status, html)) => respond(status, "text/html; charset=utf-8", html.into_bytes()),
        Err(_) => respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", b"internal error".to_vec()),
    }
}

/// The administrator behind the request's session cookie, the session's CSRF token
/// and the session id.
async fn session(request: &Request, state: &AppState) -> Option<(Principal, String, String)> {
    let id = request.cookie(SESSION_COOKIE).filter(|id| !id.is_empty())?;
    let accounts = state.services.accounts.clone();
    let address = request.address;
    let lookup = id.clone();
    let (principal, csrf) = blocking(move || accounts.console_session(&lookup, address)).await.ok()??;
    Some((principal, csrf, id))
}

/// Where a POST to `/admin/users/create` returns: `/admin/users`.
fn back(segments: &[String]) -> &'static str {
    match segments.first().map(String::as_str) {
        Some("terminals") => "/admin/terminals",
        Some("users") => "/admin/users",
        Some("places") => "/admin/places",
        Some("desktops") | Some("instances") => "/admin/desktops",
        Some("images") | Some("flavors") => "/admin/catalogue",
        Some("settings") => "/admin/settings",
        _ => "/admin/",
    }
}

fn login_page(
    request: &Request,
    state: &AppState,
    lang: Lang,
    error: Option<String>,
    status: StatusCode,
    cookies: &mut Vec<String>,
) -> Reply {
    let token = random_token(24);
    cookies.push(cookie(request, state, LOGIN_COOKIE, &token, None));
    let user = request.query.get("user").cloned().unwrap_or_default();
    respond(status, "text/html; charset=utf-8", pages::login(lang, &token, &user, error.as_deref()).into_bytes())
}

async fn login(
    request: &Request,
    body: Result<RawBody, HttpError>,
    state: &AppState,
    lang: Lang,
    cookies: &mut Vec<String>,
) -> Reply {
    let form = match body {
        Ok(body) => body.form(false).await.unwrap_or_default(),
        Err(_) => Form::new(),
    };
    let expected = request.cookie(LOGIN_COOKIE).unwrap_or_default();
    let given = form.get("login_token").cloned().unwrap_or_default();
    if expected.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return login_page(request, state, lang, Some(lang.t(Text::Csrf).to_owned()), StatusCode::FORBIDDEN, cookies);
    }
    let user = form.get("user").cloned().unwrap_or_default().trim().to_owned();
    let password = form.get("password").cloned().unwrap_or_default();
    let accounts = state.services.accounts.clone();
    let address = request.address;
    let credentials = Credentials::Password { user, password: password.into() };
    let outcome = blocking(move || {
        let principal = accounts.authenticate(&credentials, address)?;
        accounts.open_console_session(&principal)
    })
    .await;
    match outcome {
        Ok(session) => {
            cookies.push(cookie(request, state, LOGIN_COOKIE, "", Some(0)));
            cookies.push(cookie(request, state, SESSION_COOKIE, &session.id, None));
            redirect("/admin/")
        }
        Err(error) => {
            let (message, status) = match error {
                super::reply::ApiError::Service(ServiceError::NotAdministrator) => {
                    (lang.t(Text::NotAdmin).to_owned(), StatusCode::FORBIDDEN)
                }
                super::reply::ApiError::Service(ServiceError::Throttled { retry_after }) => {
                    (format!("{} {retry_after}", lang.t(Text::Throttled)), StatusCode::TOO_MANY_REQUESTS)
                }
                super::reply::ApiError::Service(ServiceError::BadCredentials) => {
                    (lang.t(Text::BadLogin).to_owned(), StatusCode::UNAUTHORIZED)
                }
                other => {
                    tracing::error!(error = ?other, "console login failed");
                    ("the server failed".to_owned(), StatusCode::INTERNAL_SERVER_ERROR)
                }
            };
            login_page(request, state, lang, Some(message), status, cookies)
        }
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut reply = body.into_response();
    *reply.status_mut() = status;
    reply.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// 303 See Other: after a POST, the browser GETs the page (no resubmission on reload).
fn redirect(to: &str) -> Reply {
    let mut reply = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", Vec::new());
    if let Ok(location) = HeaderValue::from_str(to) {
        reply.headers_mut().insert(header::LOCATION, location);
    }
    reply
}

fn redirect_login_expired() -> Reply {
    redirect("/admin/login")
}
