//! Users, passwords and tokens.

use super::audit::{Actor, Audit};
use super::hashing::{HashError, HashPool};
use super::throttle::{LoginThrottle, ThrottlePolicy};
use super::token_cache::{CachedToken, TokenCache};
use super::{FieldErrors, ServiceError, iso8601, random_token, unix_now};
use crate::store::{Conflict, Store, StoreError, UserRecord};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thindesk_shared::{Secret, Token, TokenGrant};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_USER_NAME_CHARS: usize = 64;

/// What a request offers as proof of who it is, as read from `Authorization`.
/// `Basic a:b` may carry a token as `a`, so both halves are secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Password {
        user: String,
        password: Secret,
    },
    Token(Secret),
    /// `Basic base64(a:b)`: a token when `a` is a live token (the Flask-HTTPAuth
    /// convention), otherwise a user name and password.
    TokenOrPassword {
        user: Secret,
        password: Secret,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    pub is_admin: bool,
    /// The hash of the token the caller used, if it used one.
    pub token_hash: Option<String>,
    /// Where the request came from, for the audit log.
    pub address: Option<IpAddr>,
}

impl Principal {
    fn from_user(user: UserRecord, token_hash: Option<String>, address: Option<IpAddr>) -> Self {
        Self { user_id: user.id, name: user.name, is_admin: user.is_admin, token_hash, address }
    }

    /// The caller as the audit log names them.
    pub fn actor(&self) -> Actor {
        Actor::new(self.name.clone(), self.address)
    }

    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.is_admin { Ok(()) } else { Err(ServiceError::NotAdministrator) }
    }
}

/// A user as the administrator's listing shows it; never the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub name: String,
    pub is_admin: bool,
    pub created_at: i64,
}

/// A console login: the session id goes to the browser in a cookie (only its hash is
/// stored), the CSRF token into every form.
pub struct ConsoleSession {
    pub id: String,
    pub csrf: String,
}

/// How long a console session lasts.
pub const CONSOLE_SESSION_SECS: i64 = 8 * 60 * 60;

/// One bad line of a CSV import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// How the audit log names a login attempt for an account that does not exist.
pub const UNKNOWN_USER: &str = "(unknown user)";

/// How far [`Accounts::begin`] got: either the caller is known (a token, or a refusal
/// that needed no hash), or a password is to be checked by the hashing pool, after
/// which [`Accounts::finish`] concludes. Splitting the two lets an async caller wait
/// for the pool without holding a thread.
pub enum Authentication {
    Done(Principal),
    Password(PasswordCheck),
}

/// A password attempt admitted by the throttle, waiting for its hash check.
pub struct PasswordCheck {
    name: String,
    address: Option<IpAddr>,
    user: Option<UserRecord>,
    admitted_at: Instant,
    password: Secret,
    stored_hash: String,
}

impl PasswordCheck {
    /// What the pool checks: the password offered and the stored hash (the decoy's
    /// for an unknown user).
    pub fn inputs(&self) -> (Secret, String) {
        (self.password.clone(), self.stored_hash.clone())
    }
}

pub struct Accounts {
    store: Arc<Store>,
    audit: Audit,
    throttle: LoginThrottle,
    hasher: Arc<HashPool>,
    tokens: TokenCache,
    token_ttl: Duration,
    /// Verified against when the user does not exist, so that an unknown name takes as
    /// long to refuse as a wrong password.
    decoy_hash: String,
}

impl Accounts {
    pub fn new(
        store: Arc<Store>,
        token_ttl: Duration,
        throttle: ThrottlePolicy,
        hasher: Arc<HashPool>,
    ) -> Result<Self, ServiceError> {
        let decoy_hash = super::hashing::decoy()?;
        let audit = Audit::new(store.clone());
        Ok(Self {
            store,
            audit,
            throttle: LoginThrottle::new(throttle),
            hasher,
            tokens: TokenCache::default(),
            token_ttl,
            decoy_hash,
        })
    }

    /// The pool every password hash and check of this server goes through.
    pub fn hasher(&self) -> &Arc<HashPool> {
        &self.hasher
    }

    fn hash_password(&self, password: &str) -> Result<String, ServiceError> {
        Ok(self.hasher.hash_blocking(Secret::new(password))?)
    }

    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
    }

    /// Finds out who is calling. Password checks are throttled (`throttle.rs`): an
    /// attempt is charged when it is admitted, and a refused one never has its password
    /// looked at.
    /// Blocks the calling thread while the pool checks a password; async callers use
    /// [`Accounts::begin`] and [`Accounts::finish`] around [`HashPool::verify`].
    pub fn authenticate(&self, credentials: &Credentials, address: Option<IpAddr>) -> Result<Principal, ServiceError> {
        match self.begin(credentials, address)? {
            Authentication::Done(principal) => Ok(principal),
            Authentication::Password(check) => {
                let (password, stored) = check.inputs();
                let verdict = self.hasher.verify_blocking(password, stored);
                self.finish(check, verdict)
            }
        }
    }

    /// Everything of an authentication up to the password's hash check: a token is
    /// checked here; a password attempt is looked up and admitted by the throttle.
    pub fn begin(&self, credentials: &Credentials, address: Option<IpAddr>) -> Result<Authentication, ServiceError> {
        match credentials {
            Credentials::Token(token) => self.authenticate_token(token.expose(), address).map(Authentication::Done),
            Credentials::Password { user, password } => self.admit_password(user, password, address),
            Credentials::TokenOrPassword { user, password } => match self.authenticate_token(user.expose(), address) {
                Err(ServiceError::BadCredentials) => self.admit_password(user.expose(), password, address),
                token_result => token_result.map(Authentication::Done),
            },
        }
    }

    /// A token from the cache when nothing that could revoke it has been written
    /// since it was read (`token_cache.rs`), else from the store.
    fn authenticate_token(&self, token: &str, address: Option<IpAddr>) -> Result<Principal, ServiceError> {
        let hash = token_hash(token);
        let generation = self.store.auth_generation()?;
        let cached = match self.tokens.get(&hash, generation) {
            Some(cached) => cached,
            None => {
                let record = self.store.token(&hash)?.ok_or(ServiceError::BadCredentials)?;
                let cached = CachedToken {
                    user_id: record.user.id,
                    name: record.user.name,
                    is_admin: record.user.is_admin,
                    expires_at: record.expires_at,
                };
                self.tokens.put(&hash, cached.clone(), generation);
                cached
            }
        };
        if cached.expires_at <= unix_now() {
            return Err(ServiceError::TokenExpired);
        }
        Ok(Principal {
            user_id: cached.user_id,
            name: cached.name,
            is_admin: cached.is_admin,
            token_hash: Some(hash),
            address,
        })
    }

    fn admit_password(
        &self,
        name: &str,
        password: &Secret,
        address: Option<IpAddr>,
    ) -> Result<Authentication, ServiceError> {
        let user = self.store.user_by_name(name)?;
        // What was typed as a user name is kept only when it names an account: people
        // do type their password into the name field.
        let audited_name = if user.is_some() { name } else { UNKNOWN_USER };
        let now = Instant::now();
        if let Err(throttled) = self.throttle.admit(name, address, now) {
            let retry_after = throttled.retry_after_secs();
            if self.throttle.should_audit_refusal(name, address, now) {
                let detail = format!("retry after {retry_after} s (further refusals this minute are not recorded)");
                self.audit.record(&Actor::new(audited_name, address), "login.throttled", audited_name, &detail);
            }
            return Err(ServiceError::Throttled { retry_after });
        }
        let stored_hash = user.as_ref().map_or_else(|| self.decoy_hash.clone(), |u| u.password_hash.clone());
        Ok(Authentication::Password(PasswordCheck {
            name: name.to_owned(),
            address,
            user,
            admitted_at: now,
            password: password.clone(),
            stored_hash,
        }))
    }

    /// Concludes a password attempt with the pool's verdict. An attempt the pool had
    /// no room for was never checked: it is not counted against the throttle.
    pub fn finish(&self, check: PasswordCheck, verdict: Result<bool, HashError>) -> Result<Principal, ServiceError> {
        let PasswordCheck { name, address, user, admitted_at: now, .. } = check;
        let matches = match verdict {
            Ok(matches) => matches,
            Err(error) => {
                self.throttle.not_checked(&name, address, now);
                return Err(error.into());
            }
        };
        let name = name.as_str();
        let audited_name = if user.is_some() { name } else { UNKNOWN_USER };
        let actor = Actor::new(audited_name, address);
        match user {
            Some(user) if matches => {
                self.throttle.succeeded(name, address, now);
                self.audit.record(&actor, "login", name, "");
                Ok(Principal::from_user(user, None, address))
            }
            user => {
                let why = if user.is_some() { "wrong password" } else { "no such user" };
                self.audit.record(&actor, "login.failed", audited_name, why);
                Err(ServiceError::BadCredentials)
            }
        }
    }

    /// A new token for the caller. Only the token's hash is stored.
    pub fn issue_token(&self, principal: &Principal) -> Result<TokenGrant, ServiceError> {
        let token = random_token(32);
        let issued_at = unix_now();
        let ttl = self.token_ttl.as_secs();
        let expires_at = issued_at.saturating_add(ttl as i64);
        self.store.insert_token(&token_hash(&token), principal.user_id, issued_at, expires_at)?;
        self.audit.record(&principal.actor(), "token.issue", &principal.name, &format!("expires in {ttl} s"));
        Ok(TokenGrant {
            token: Token { id: token, issued_at: iso8601(issued_at), expires: iso8601(expires_at) },
            expires_in: ttl,
        })
    }

    /// Changes the caller's own password and revokes every other token of theirs.
    pub fn change_own_password(&self, principal: &Principal, new_password: &str) -> Result<(), ServiceError> {
        validate_password(new_password).into_result(())?;
        let hash = self.hash_password(new_password)?;
        if !self.store.set_password(principal.user_id, &hash, principal.token_hash.as_deref())? {
            return Err(ServiceError::BadCredentials);
        }
        self.audit.record(
            &principal.actor(),
            "password.change",
            &principal.name,
            "other tokens and console sessions ended",
        );
        Ok(())
    }

    /// Logs a terminal out: revokes the token it used. Only a token can be logged out;
    /// a password has nothing to revoke.
    pub fn log_out(&self, principal: &Principal) -> Result<(), ServiceError> {
        let Some(hash) = &principal.token_hash else {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "authorization",
                "log out with the token to revoke, not a password",
            )));
        };
        if !self.store.delete_token(hash)? {
            return Err(ServiceError::BadCredentials);
        }
        self.audit.record(&principal.actor(), "logout", &principal.name, "token revoked");
        Ok(())
    }

    // ----- console sessions ----------------------------------------------------

    /// Opens a console session for an administrator who has just logged in.
    pub fn open_console_session(&self, principal: &Principal) -> Result<ConsoleSession, ServiceError> {
        principal.require_admin()?;
        let session = ConsoleSession { id: random_token(32), csrf: random_token(32) };
        let now = unix_now();
        self.store.insert_console_session(
            &token_hash(&session.id),
            principal.user_id,
            &session.csrf,
            now,
            now + CONSOLE_SESSION_SECS,
        )?;
        self.audit.record(&principal.actor(), "console.login", &principal.name, "");
        Ok(session)
    }

    /// The administrator behind a console session id and the session's CSRF token;
    /// `None` for an unknown or expired session, or one whose user is no longer an
    /// administrator.
    pub fn console_session(
        &self,
        id: &str,
        address: Option<IpAddr>,
    ) -> Result<Option<(Principal, String)>, ServiceError> {
        let Some((user, csrf, expires_at)) = self.store.console_session(&token_hash(id))? else {
            return Ok(None);
        };
        if expires_at <= unix_now() || !user.is_admin {
            return Ok(None);
        }
        Ok(Some((Principal::from_user(user, None, address), csrf)))
    }

    pub fn close_console_session(&self, id: &str, principal: &Principal) -> Result<(), ServiceError> {
        if self.store.delete_console_session(&token_hash(id))? {
            self.audit.record(&principal.actor(), "console.logout", &principal.name, "");
        }
        Ok(())
    }

    // ----- administration ------------------------------------------------------

    pub fn create_user(&self, by: &Actor, name: &str, password: &str, is_admin: bool) -> Result<(), ServiceError> {
        let mut errors = validate_user_name(name);
        for (field, messages) in validate_password(password).0 {
            for message in messages {
                errors.add(&field, message);
            }
        }
        errors.into_result(())?;
        let hash = self.hash_password(password)?;
        match self.store.insert_user(name, &hash, is_admin, unix_now()) {
            Ok(_) => {
                self.audit.record(by, "user.create", name, if is_admin { "administrator" } else { "" });
                Ok(())
            }
            Err(StoreError::Conflict(Conflict::UserExists)) => {
                Err(ServiceError::Conflict(format!("a user named {name:?} exists")))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Sets a user's password as an administrator: every token of theirs is revoked.
    pub fn reset_password(&self, by: &Actor, name: &str, password: &str) -> Result<(), ServiceError> {
        validate_password(password).into_result(())?;
        let user = self.user(name)?;
        let hash = self.hash_password(password)?;
        self.store.set_password(user.id, &hash, None)?;
        self.audit.record(by, "password.reset", name, "tokens and console sessions ended");
        Ok(())
    }

    pub fn set_admin(&self, by: &Actor, name: &str, is_admin: bool) -> Result<(), ServiceError> {
        let user = self.user(name)?;
        self.store.set_admin(user.id, is_admin)?;
        self.audit.record(by, "user.admin", name, if is_admin { "granted" } else { "withdrawn" });
        Ok(())
    }

    pub fn delete_user(&self, by: &Actor, name: &str) -> Result<(), ServiceError> {
        let user = self.user(name)?;
        match self.store.delete_user(user.id) {
            Ok(_) => {
                self.audit.record(by, "user.delete", name, "");
                Ok(())
            }
            Err(StoreError::InUse(_)) => {
                Err(ServiceError::Conflict("the user still owns desktops; delete those first".into()))
            }
            Err(other) => Err(other.into()),
        }
    }

    pub fn users(&self) -> Result<Vec<UserSummary>, ServiceError> {
        Ok(self
            .store
            .users()?
            .into_iter()
            .map(|u| UserSummary { name: u.name, is_admin: u.is_admin, created_at: u.created_at })
            .collect())
    }

    /// Creates the users of a CSV text: a header line, then `name,password[,admin]`
    /// per line (`admin` is `true`/`false`, `yes`/`no` or `1`/`0`; empty means no).
    /// All or nothing: if any line is bad, every bad line is reported and no user is
    /// created. Returns the names created, in the file's order.
    pub fn import_csv(&self, by: &Actor, text: &str) -> Result<Vec<String>, ServiceError> {
        let rows = parse_user_csv(text)?;
        let mut errors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for row in &rows {
            let mut messages: Vec<String> = Vec::new();
            for (field, field_messages) in
                validate_user_name(&row.name).0.into_iter().chain(validate_password(&row.password).0)
            {
                messages.extend(field_messages.into_iter().map(|m| format!("{field} {m}")));
            }
            if let Some(first) = seen.insert(row.name.clone(), row.line) {
                messages.push(format!("name {:?} is also on line {first}", row.name));
            } else if self.store.user_by_name(&row.name)?.is_some() {
                messages.push(format!("a user named {:?} exists", row.name));
            }
            if let Some(bad) = &row.bad_admin {
                messages.push(format!("admin must be true or false, not {bad:?}"));
            }
            if !messages.is_empty() {
                errors.push(LineError { line: row.line, message: messages.join("; ") });
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::BadLines(errors));
        }
        let hashes =
            self.hasher.hash_all_blocking(rows.iter().map(|row| Secret::new(row.password.as_str())).collect())?;
        let users: Vec<(String, String, bool)> =
            rows.iter().zip(hashes).map(|(row, hash)| (row.name.clone(), hash, row.is_admin)).collect();
        match self.store.insert_users(&users, unix_now()) {
            Ok(()) => {}
            Err(StoreError::Conflict(Conflict::UserExists)) => {
                return Err(ServiceError::Conflict(
                    "a user of the file was created meanwhile; nothing was imported".into(),
                ));
            }
            Err(other) => return Err(other.into()),
        }
        let names: Vec<String> = rows.into_iter().map(|r| r.name).collect();
        for name in &names {
            self.audit.record(by, "user.create", name, "CSV import");
        }
        self.audit.record(by, "user.import", "", &format!("{} users", names.len()));
        Ok(names)
    }

    fn user(&self, name: &str) -> Result<UserRecord, ServiceError> {
        self.store.user_by_name(name)?.ok_or_else(|| ServiceError::NotFound(format!("user {name:?}")))
    }
}

struct CsvUser {
    line: usize,
    name: String,
    password: String,
    is_admin: bool,
    bad_admin: Option<String>,
}

/// Most lines a CSV import may have.
pub const MAX_IMPORT_LINES: usize = 2000;

/// Splits the CSV text into rows: the first non-empty line is the header and is
/// skipped; fields are separated by commas and may be quoted with `"` (`""` inside a
/// quoted field is one quote). Blank lines are ignored.
fn parse_user_csv(text: &str) -> Result<Vec<CsvUser>, ServiceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut header_seen = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        let fields = match split_csv_line(raw) {
            Ok(fields) => fields,
            Err(message) => {
                errors.push(LineError { line, message });
                continue;
            }
        };
        if fields.len() < 2 || fields.len() > 3 {
            errors.push(LineError {
                line,
                message: format!("expected name,password[,admin], found {} fields", fields.len()),
            });
            continue;
        }
        let (is_admin, bad_admin) = match fields.get(2).map(|f| f.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "false" | "no" | "0") => (false, None),
            Some("true" | "yes" | "1") => (true, None),
            Some(_) => (false, fields.get(2).cloned()),
        };
        rows.push(CsvUser {
            line,
            name: fields[0].trim().to_owned(),
            password: fields[1].clone(),
            is_admin,
            bad_admin,
        });
    }
    if rows.len() > MAX_IMPORT_LINES {
        errors.push(LineError { line: 0, message: format!("at most {MAX_IMPORT_LINES} users per import") });
    }
    if !errors.is_empty() {
        return Err(ServiceError::BadLines(errors));
    }
    if rows.is_empty() {
        return Err(ServiceError::Invalid(FieldErrors::single(
            "csv",
            "has no user: a header line, then name,password[,admin] lines",
        )));
    }
    Ok(rows)
}

fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn validate_password(password: &str) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        errors.add("password", format!("must be at least {MIN_PASSWORD_CHARS} characters long"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        errors.add("password", format!("must be at most {MAX_PASSWORD_BYTES} bytes long"));
    }
    errors
}

/// User names travel in `Basic user:pass`, so they may not hold a colon (RFC 7617),
/// nor spaces or control characters that would make them ambiguous on screen.
pub fn validate_user_name(name: &str) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if name.is_empty() || name.chars().count() > MAX_USER_NAME_CHARS {
        errors.add("name", format!("must be 1 to {MAX_USER_NAME_CHARS} characters long"));
    }
    if name.chars().any(|c| c == ':' || c.is_whitespace() || c.is_control()) {
        errors.add("name", "may not contain ':', spaces or control characters");
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let hasher = Arc::new(HashPool::new(super::super::hashing::HashPoolSettings::default()).expect("pool"));
        let accounts =
            Accounts::new(store, Duration::from_secs(60), ThrottlePolicy::default(), hasher).expect("accounts");
        (dir, accounts)
    }

    fn password(user: &str, password: &str) -> Credentials {
        Credentials::Password { user: user.into(), password: password.into() }
    }

    #[test]
    fn passwords_are_stored_as_argon2id_and_checked() {
        let (_dir, accounts) = accounts();
        accounts.create_user(&Actor::system(), "alice", "correct horse", false).expect("create");
        let stored = accounts.store.user_by_name("alice").expect("q").expect("exists").password_hash;
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(accounts.authenticate(&password("alice", "correct horse"), None).is_ok());
        assert!(matches!(
            accounts.authenticate(&password("alice", "wrong horse"), None),
            Err(ServiceError::BadCredentials)
        ));
        assert!(matches!(
            accounts.authenticate(&password("nobody", "correct horse"), None),
            Err(ServiceError::BadCredentials)
        ));
    }

    #[test]
    fn a_token_or_password_pair_is_tried_as_a_token_first() {
        let (_dir, accounts) = accounts();
        accounts.create_user(&Actor::system(), "bob", "bobs password", true).expect("create");
        let principal = accounts.authenticate(&password("bob", "bobs password"), None).expect("login");
        let grant = accounts.issue_token(&principal).expect("token");
        let as_token =
            Credentials::TokenOrPassword { user: grant.token.id.clone().into(), password: Secret::default() };
        let by_token = accounts.authenticate(&as_token, None).expect("token accepted");
        assert_eq!(by_token.name, "bob");
        assert!(by_token.token_hash.is_some());
        let as_password = Credentials::TokenOrPassword { user: "bob".into(), password: "bobs password".into() };
        assert_eq!(accounts.authenticate(&as_password, None).expect("password accepted").token_hash, None);
    }

    #[test]
    fn bad_user_names_and_short_passwords_are_refused_with_field_errors() {
        let (_dir, accounts) = accounts();
        match accounts.create_user(&Actor::system(), "a:b", "short", false) {
            Err(ServiceError::Invalid(errors)) => {
                assert!(errors.0.contains_key("name"));
                assert!(errors.0.contains_key("password"));
            }
            other => panic!("expected field errors, got {other:?}"),
        }
        assert!(accounts.users().expect("list").is_empty());
    }
}
