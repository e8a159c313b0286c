//! The HTTP face of the server: warp filters that route and extract, thin handlers
//! that authorize, call a service and reply. No rule of thindesk lives here.

mod admin;
mod body;
mod cloud;
pub mod console;
pub mod credentials;
mod handlers;
mod malformed;
mod openapi;
pub mod reply;
pub mod serve;

use crate::config::PlainHttp;
use crate::service::{ServiceError, Services};
use reply::{ApiError, HttpError, reject};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::Method;
use warp::{Filter, Rejection, Reply};

/// What every handler can reach: the services, and the console's own state. Cheap
/// to clone.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub console: Arc<console::ConsoleState>,
    /// `Config::password_change_by_token`.
    pub password_change_by_token: bool,
    /// Who may send credentials in plain HTTP.
    pub plain_http: PlainHttp,
    /// `DATA_DIR/tls`: the console shows the certificate terminals pin.
    pub tls_dir: std::path::PathBuf,
}

/// Who is knocking: the raw `Authorization` value and the peer's address. Checking
/// them needs the database and Argon2, so that happens in the handler, off the
/// async workers.
#[derive(Clone)]
pub struct Caller {
    authorization: Option<String>,
    address: Option<IpAddr>,
}

/// Every route of the server, with errors recovered into JSend replies and each
/// request logged (method, path, status, time; never headers or bodies).
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let plain_http = state.plain_http;
    plain_http_guard(plain_http).and(v1_routes(state)).recover(reply::recover).with(warp::log::custom(|info| {
        tracing::info!(
            method = %info.method(),
            path = info.path(),
            status = info.status().as_u16(),
            elapsed_ms = info.elapsed().as_millis() as u64,
            "request"
        );
    }))
}

fn v1_routes(state: AppState) -> BoxedFilter<(warp::reply::Response,)> {
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const PUT: Method = Method::PUT;
    static TOKEN: [Method; 3] = [GET, POST, Method::DELETE];
    static RESET: [Method; 3] = [GET, POST, PUT];
    static ONLY_GET: [Method; 1] = [GET];
    static ONLY_POST: [Method; 1] = [POST];
    let with_state = warp::any().map(move || state.clone());

    let token = warp::path!("api" / "v1.0" / "token")
        .and(allow(&TOKEN))
        .and(warp::method())
        .and(caller())
        .and(with_state.clone())
        .then(handlers::token)
        .map(reply::finish)
        .boxed();
    let reset_password = warp::path!("api" / "v1.0" / "users" / "me" / "reset_password")
        .and(allow(&RESET))
        .and(caller())
        .and(body::json())
        .and(with_state.clone())
        .then(handlers::reset_password)
        .map(reply::finish)
        .boxed();
    let desktops = warp::path!("api" / "v1.0" / "users" / "me" / "desktops")
        .and(allow(&ONLY_GET))
        .and(caller())
        .and(with_state.clone())
        .then(handlers::desktops)
        .map(reply::finish)
        .boxed();
    let is_administrator = warp::path!("api" / "v1.0" / "users" / "me" / "is_administrator")
        .and(allow(&ONLY_GET))
        .and(caller())
        .and(with_state.clone())
        .then(handlers::is_administrator)
        .map(reply::finish)
        .boxed();
    let desktop_action = warp::path!("api" / "v1.0" / "desktops" / String / "action")
        .and(allow(&ONLY_POST))
        .and(caller())
        .and(body::json())
        .and(with_state.clone())
        .then(handlers::desktop_action)
        .map(reply::finish)
        .boxed();
    let places = warp::path!("api" / "v1.0" / "places")
        .and(allow(&ONLY_GET))
        .and(with_state.clone())
        .then(handlers::places)
        .map(reply::finish)
        .boxed();
    let registration = warp::path!("api" / "v1.0" / "terminals" / "registration")
        .and(allow(&ONLY_POST))
        .and(caller())
        .and(body::json())
        .and(with_state.clone())
        .then(handlers::register_terminal)
        .map(reply::finish)
        .boxed();
    // `registration` is the path of the route above, not a MAC: left to that route, a
    // wrong method there is a 405 that allows POST.
    let terminal = warp::path!("api" / "v1.0" / "terminals" / String)
        .and_then(
            |mac: String| async move { if mac == "registration" { Err(warp::reject::not_found()) } else { Ok(mac) } },
        )
        .and(allow(&ONLY_GET))
        .and(with_state.clone())
        .then(handlers::terminal)
        .map(reply::finish)
        .boxed();
    // The OpenAPI document of the routes above and of the cloud API.
    let openapi = warp::path!("api" / "v1.0" / "openapi.json")
        .and(allow(&ONLY_GET))
        .map(openapi::serve)
        .map(reply::finish)
        .boxed();
    // The administrator's API: one router for every resource under /admin.
    let admin_api = warp::path!("api" / "v1.0" / "admin" / ..)
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::query::<HashMap<String, String>>().or(warp::any().map(HashMap::new)).unify())
        .and(caller())
        .and(body::raw())
        .and(with_state.clone())
        .then(admin::dispatch)
        .map(reply::finish)
        .boxed();
    // The management console: HTML pages, its own session cookie, only under /admin.
    let console_pages = warp::path("admin")
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::query::<HashMap<String, String>>().or(warp::any().map(HashMap::new)).unify())
        .and(warp::header::headers_cloned())
        .and(origin())
        .and(body::raw())
        .and(with_state.clone())
        .then(console::dispatch)
        .boxed();
    // Every method reaches the handler, which answers in the cloud API's own shape.
    let cloud_api = warp::path!("cloud_api")
        .and(warp::method())
        .and(peer())
        .and(warp::header::headers_cloned())
        .and(body::form())
        .and(with_state)
        .then(cloud::cloud_api)
        .boxed();

    token
        .or(reset_password)
        .unify()
        .or(desktops)
        .unify()
        .or(is_administrator)
        .unify()
        .or(desktop_action)
        .unify()
        .or(places)
        .unify()
        .or(registration)
        .unify()
        .or(terminal)
        .unify()
        .or(openapi)
        .unify()
        .or(admin_api)
        .unify()
        .or(console_pages)
        .unify()
        .or(cloud_api)
        .unify()
        .boxed()
}

/// CONTRACT.md, "Encryption in transit": in plain HTTP from anywhere but loopback,
/// a request that carries credentials (an `Authorization` or `X-Api-Key` header, the
/// console's session cookie) is refused with 426, and the console's pages move to
/// HTTPS; unless `plain_http = "allow"`. Requests over TLS, and from loopback, pass.
fn plain_http_guard(policy: PlainHttp) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::ext::optional::<serve::Transport>()
        .and(peer())
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and_then(
            move |transport: Option<serve::Transport>,
                  remote: Option<SocketAddr>,
                  method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap| async move {
                let trusted = policy == PlainHttp::Allow
                    || transport == Some(serve::Transport::Tls)
                    || remote.is_some_and(|r| r.ip().to_canonical().is_loopback());
                if trusted {
                    return Ok(());
                }
                let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
                let mut https = format!("https://{host}{}", path.as_str());
                if !query.is_empty() {
                    https.push('?');
                    https.push_str(&query);
                }
                let console = path.as_str() == "/admin" || path.as_str().starts_with("/admin/");
                if console && (method == Method::GET || method == Method::HEAD) && !host.is_empty() {
                    return Err(reject(HttpError::MovedToHttps { location: https }));
                }
                let session = headers.get_all("cookie").iter().filter_map(|c| c.to_str().ok()).any(|cookies| {
                    cookies.split(';').any(|pair| pair.trim().starts_with(&format!("{}=", console::SESSION_COOKIE)))
                });
                let credentials = headers.contains_key("authorization") || headers.contains_key("x-api-key") || session;
                if credentials || console {
                    return Err(reject(HttpError::HttpsRequired { https }));
                }
                Ok(())
            },
        )
        .untuple_one()
}

/// Passes requests whose method is in `allowed`, and answers 405 (with `Allow`) for the
/// rest. Placed after the path, so an unknown path stays a 404.
fn allow(allowed: &'static [Method]) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and_then(move |method: Method| async move {
            if allowed.contains(&method) {
                Ok(())
            } else {
                Err(reject(HttpError::MethodNotAllowed { method, allowed: allowed.to_vec() }))
            }
        })
        .untuple_one()
}

/// The address of the connection's peer, as `serve` records it.
fn peer() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<serve::Peer>().map(|peer: Option<serve::Peer>| peer.map(|p| p.0))
}

/// Where a request came from, and whether over this server's TLS.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub peer: Option<SocketAddr>,
    pub tls: bool,
}

fn origin() -> impl Filter<Extract = (Origin,), Error = Infallible> + Clone {
    peer()
        .and(warp::ext::optional::<serve::Transport>())
        .map(|peer, transport: Option<serve::Transport>| Origin { peer, tls: transport == Some(serve::Transport::Tls) })
}

fn caller() -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(peer())
        .map(|authorization, remote: Option<SocketAddr>| Caller { authorization, address: remote.map(|a| a.ip()) })
}

/// Runs blocking service work (SQLite, Argon2, QMP) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(join_error) => Err(ServiceError::Internal(format!("a worker thread failed: {join_error}")).into()),
    }
}
