//! Users, passwords and tokens.

use super::throttle::{LoginThrottle, ThrottlePolicy};
use super::{FieldErrors, ServiceError, iso8601, random_token, unix_now};
use crate::store::{Conflict, Store, StoreError, UserRecord};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thindesk_shared::{Token, TokenGrant};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_USER_NAME_CHARS: usize = 64;

/// What a request offers as proof of who it is, as read from `Authorization`.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Password {
        user: String,
        password: String,
    },
    Token(String),
    /// `Basic base64(a:b)`: a token when `a` is a live token (the Flask-HTTPAuth
    /// convention), otherwise a user name and password.
    TokenOrPassword {
        user: String,
        password: String,
    },
}

// Credentials must never reach a log line, even through `{:?}`.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
            Self::Token(_) => f.write_str("Token(..)"),
            Self::TokenOrPassword { .. } => f.write_str("TokenOrPassword(..)"),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    pub is_admin: bool,
    /// The hash of the token the caller used, if it used one.
    pub token_hash: Option<String>,
}

impl Principal {
    fn from_user(user: UserRecord, token_hash: Option<String>) -> Self {
        Self { user_id: user.id, name: user.name, is_admin: user.is_admin, token_hash }
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

pub struct Accounts {
    store: Arc<Store>,
    throttle: LoginThrottle,
    token_ttl: Duration,
    /// Verified against when the user does not exist, so that an unknown name takes as
    /// long to refuse as a wrong password.
    decoy_hash: String,
}

impl Accounts {
    pub fn new(store: Arc<Store>, token_ttl: Duration, throttle: ThrottlePolicy) -> Result<Self, ServiceError> {
        let decoy_hash = hash_password(&random_token(16))?;
        Ok(Self { store, throttle: LoginThrottle::new(throttle), token_ttl, decoy_hash })
    }

    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
    }

    /// Finds out who is calling. Password checks are throttled per account and per
    /// address; a throttled attempt is refused before its password is looked at.
    pub fn authenticate(&self, credentials: &Credentials, address: Option<IpAddr>) -> Result<Principal, ServiceError> {
        match credentials {
            Credentials::Token(token) => self.authenticate_token(token),
            Credentials::Password { user, password } => self.authenticate_password(user, password, address),
            Credentials::TokenOrPassword { user, password } => match self.authenticate_token(user) {
                Err(ServiceError::BadCredentials) => self.authenticate_password(user, password, address),
                token_result => token_result,
            },
        }
    }

    fn authenticate_token(&self, token: &str) -> Result<Principal, ServiceError> {
        let hash = token_hash(token);
        let record = self.store.token(&hash)?.ok_or(ServiceError::BadCredentials)?;
        if record.expires_at <= unix_now() {
            return Err(ServiceError::TokenExpired);
        }
        Ok(Principal::from_user(record.user, Some(hash)))
    }

    fn authenticate_password(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Principal, ServiceError> {
        self.throttle
            .check(name, address, Instant::now())
            .map_err(|t| ServiceError::Throttled { retry_after: t.retry_after_secs() })?;
        let user = self.store.user_by_name(name)?;
        let stored_hash = user.as_ref().map_or(self.decoy_hash.as_str(), |u| u.password_hash.as_str());
        let matches = verify_password(password, stored_hash)?;
        match user {
            Some(user) if matches => {
                self.throttle.record_success(name);
                Ok(Principal::from_user(user, None))
            }
            _ => {
                self.throttle.record_failure(name, address, Instant::now());
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
        Ok(TokenGrant {
            token: Token { id: token, issued_at: iso8601(issued_at), expires: iso8601(expires_at) },
            expires_in: ttl,
        })
    }

    /// Changes the caller's own password and revokes every other token of theirs.
    pub fn change_own_password(&self, principal: &Principal, new_password: &str) -> Result<(), ServiceError> {
        validate_password(new_password).into_result(())?;
        let hash = hash_password(new_password)?;
        if !self.store.set_password(principal.user_id, &hash, principal.token_hash.as_deref())? {
            return Err(ServiceError::BadCredentials);
        }
        Ok(())
    }

    // ----- administration ------------------------------------------------------

    pub fn create_user(&self, name: &str, password: &str, is_admin: bool) -> Result<(), ServiceError> {
        let mut errors = validate_user_name(name);
        for (field, messages) in validate_password(password).0 {
            for message in messages {
                errors.add(&field, message);
            }
        }
        errors.into_result(())?;
        let hash = hash_password(password)?;
        match self.store.insert_user(name, &hash, is_admin, unix_now()) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(Conflict::UserExists)) => {
                Err(ServiceError::Conflict(format!("a user named {name:?} exists")))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Sets a user's password as an administrator: every token of theirs is revoked.
    pub fn reset_password(&self, name: &str, password: &str) -> Result<(), ServiceError> {
        validate_password(password).into_result(())?;
        let user = self.user(name)?;
        let hash = hash_password(password)?;
        self.store.set_password(user.id, &hash, None)?;
        Ok(())
    }

    pub fn set_admin(&self, name: &str, is_admin: bool) -> Result<(), ServiceError> {
        let user = self.user(name)?;
        self.store.set_admin(user.id, is_admin)?;
        Ok(())
    }

    pub fn delete_user(&self, name: &str) -> Result<(), ServiceError> {
        let user = self.user(name)?;
        match self.store.delete_user(user.id) {
            Ok(_) => Ok(()),
            Err(StoreError::InUse(why)) => Err(ServiceError::Conflict(why.to_owned())),
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

    fn user(&self, name: &str) -> Result<UserRecord, ServiceError> {
        self.store.user_by_name(name)?.ok_or_else(|| ServiceError::NotFound(format!("user {name:?}")))
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn hash_password(password: &str) -> Result<String, ServiceError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing a password: {e}")))
}

/// Argon2's verifier compares the derived keys in constant time.
fn verify_password(password: &str, stored: &str) -> Result<bool, ServiceError> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| ServiceError::Internal(format!("stored hash unreadable: {e}")))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
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
        let accounts = Accounts::new(store, Duration::from_secs(60), ThrottlePolicy::default()).expect("accounts");
        (dir, accounts)
    }

    fn password(user: &str, password: &str) -> Credentials {
        Credentials::Password { user: user.into(), password: password.into() }
    }

    #[test]
    fn passwords_are_stored_as_argon2id_and_checked() {
        let (_dir, accounts) = accounts();
        accounts.create_user("alice", "correct horse", false).expect("create");
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
        accounts.create_user("bob", "bobs password", true).expect("create");
        let principal = accounts.authenticate(&password("bob", "bobs password"), None).expect("login");
        let grant = accounts.issue_token(&principal).expect("token");
        let as_token = Credentials::TokenOrPassword { user: grant.token.id.clone(), password: String::new() };
        let by_token = accounts.authenticate(&as_token, None).expect("token accepted");
        assert_eq!(by_token.name, "bob");
        assert!(by_token.token_hash.is_some());
        let as_password = Credentials::TokenOrPassword { user: "bob".into(), password: "bobs password".into() };
        assert_eq!(accounts.authenticate(&as_password, None).expect("password accepted").token_hash, None);
    }

    #[test]
    fn bad_user_names_and_short_passwords_are_refused_with_field_errors() {
        let (_dir, accounts) = accounts();
        match accounts.create_user("a:b", "short", false) {
            Err(ServiceError::Invalid(errors)) => {
                assert!(errors.0.contains_key("name"));
                assert!(errors.0.contains_key("password"));
            }
            other => panic!("expected field errors, got {other:?}"),
        }
        assert!(accounts.users().expect("list").is_empty());
    }
}
