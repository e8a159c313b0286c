//! One function per endpoint: parse, authorize, call the service, reply.

use super::reply::{ApiError, HttpError, success};
use super::{AppState, Caller, blocking, body, credentials};
use crate::service::terminals::Registration;
use crate::service::{Authentication, FieldErrors, PasswordCheck, Principal, ServiceError};
use serde_json::Value;
use thindesk_shared::{DesktopAction, DesktopList, IsAdministrator, PasswordChange, PlaceList, RegistrationReply};
use warp::http::Method;
use warp::reply::Response;

/// Finds out who is calling. A password is checked by the hashing pool while this
/// request waits without a thread (a full pool answers 503 with `Retry-After`); the
/// store's parts run on the blocking pool.
pub(super) async fn authenticate(state: &AppState, caller: Caller) -> Result<Principal, ApiError> {
    let authorization = caller.authorization.ok_or(ServiceError::NoCredentials)?;
    let credentials = credentials::parse(&authorization);
    let accounts = state.services.accounts.clone();
    let address = caller.address;
    let begun = {
        let accounts = accounts.clone();
        blocking(move || accounts.begin(&credentials, address)).await?
    };
    match begun {
        Authentication::Done(principal) => Ok(principal),
        Authentication::Password(check) => {
            let (password, stored) = check.inputs();
            let verdict = accounts.hasher().verify(password, stored).await;
            blocking(move || accounts.finish(check, verdict)).await
        }
    }
}

/// Authenticates the caller and runs `work` for them. When no hash is needed (a
/// token) both happen in one blocking hop: the hot path of a polling terminal.
async fn as_caller<T: Send + 'static>(
    state: &AppState,
    caller: Caller,
    work: impl FnOnce(&Principal) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ApiError> {
    enum Step<T, W> {
        Done(T),
        Check(PasswordCheck, W),
    }
    let authorization = caller.authorization.ok_or(ServiceError::NoCredentials)?;
    let credentials = credentials::parse(&authorization);
    let accounts = state.services.accounts.clone();
    let address = caller.address;
    let step = {
        let accounts = accounts.clone();
        blocking(move || match accounts.begin(&credentials, address)? {
            Authentication::Done(principal) => work(&principal).map(Step::Done),
            Authentication::Password(check) => Ok(Step::Check(check, work)),
        })
        .await?
    };
    match step {
        Step::Done(value) => Ok(value),
        Step::Check(check, work) => {
            let (password, stored) = check.inputs();
            let verdict = accounts.hasher().verify(password, stored).await;
            blocking(move || work(&accounts.finish(check, verdict)?)).await
        }
    }
}

/// GET and POST issue a token; DELETE logs the terminal out (contract: "Logout").
pub async fn token(method: Method, caller: Caller, state: AppState) -> Result<Response, ApiError> {
    let principal = authenticate(&state, caller).await?;
    if method == Method::DELETE {
        let services = state.services.clone();
        blocking(move || services.log_out(&principal)).await?;
        return Ok(success(()));
    }
    let accounts = state.services.accounts.clone();
    let grant = blocking(move || accounts.issue_token(&principal)).await?;
    Ok(success(grant))
}

pub async fn reset_password(
    caller: Caller,
    body: Result<Value, HttpError>,
    state: AppState,
) -> Result<Response, ApiError> {
    let principal = authenticate(&state, caller).await?;
    // Whoever sits at a terminal left signed in has the token, not the password.
    if principal.token_hash.is_some() && !state.password_change_by_token {
        return Err(invalid(
            "authorization",
            "changing the password needs the current one: send it as Basic credentials, not a token",
        )
        .into());
    }
    let change: PasswordChange = body::decode(body?)?;
    let password = change.password.ok_or_else(|| invalid("password", "is required: send {\"password\": \"...\"}"))?;
    let accounts = state.services.accounts.clone();
    blocking(move || accounts.change_own_password(&principal, password.expose())).await?;
    Ok(success(()))
}

pub async fn desktops(caller: Caller, state: AppState) -> Result<Response, ApiError> {
    let desktops = state.services.desktops.clone();
    let desktop_list = as_caller(&state, caller, move |principal| desktops.list_for(principal)).await?;
    Ok(success(DesktopList { desktop_list, gateway_list: Vec::new() }))
}

pub async fn is_administrator(caller: Caller, state: AppState) -> Result<Response, ApiError> {
    let principal = authenticate(&state, caller).await?;
    // The seed answers with the string, not a JSON boolean.
    Ok(success(IsAdministrator::from(principal.is_admin)))
}

pub async fn desktop_action(
    id: String,
    caller: Caller,
    body: Result<Value, HttpError>,
    state: AppState,
) -> Result<Response, ApiError> {
    let principal = authenticate(&state, caller).await?;
    let action = DesktopAction::from_body(&body?).map_err(|message| invalid("action", message))?;
    let desktops = state.services.desktops.clone();
    blocking(move || desktops.act(&principal, &id, action)).await?;
    Ok(success(()))
}

pub async fn places(state: AppState) -> Result<Response, ApiError> {
    let terminals = state.services.terminals.clone();
    let place_list = blocking(move || terminals.places()).await?;
    Ok(success(PlaceList { place_list }))
}

pub async fn terminal(mac: String, state: AppState) -> Result<Response, ApiError> {
    let terminals = state.services.terminals.clone();
    let terminal = blocking(move || terminals.lookup(&mac)).await?;
    Ok(success(terminal))
}

/// Without `mode`, anyone may ask; the server's registration mode decides the state.
/// With `mode: "auth"`, an administrator's credentials are checked first, and nothing
/// is written unless they hold.
pub async fn register_terminal(
    caller: Caller,
    body: Result<Value, HttpError>,
    state: AppState,
) -> Result<Response, ApiError> {
    let registration = Registration::check(body::decode(body?)?)?;
    let registrar =
        if registration.by_administrator { Some(authenticate(&state, caller.clone()).await?) } else { None };
    let terminals = state.services.terminals.clone();
    let address = caller.address;
    let terminal_state = blocking(move || terminals.register(&registration, registrar.as_ref(), address)).await?;
    Ok(success(RegistrationReply { terminal_state }))
}

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(FieldErrors::single(field, message))
}
