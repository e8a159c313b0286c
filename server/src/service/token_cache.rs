//! Tokens already checked, so that a terminal polling its desktops is not a SQLite
//! join per request.
//!
//! An entry is valid only for the [`AuthGeneration`] it was read under: any write of
//! this process that changes a user or revokes a token (logout, a password change or
//! reset, administrator rights, deleting a user) moves the generation, and so does any
//! commit by another process on the same database (the command line), which SQLite's
//! `data_version` shows. A changed generation empties the cache before the lookup, so
//! a revoked token is refused on the very next request. Expiry is checked on every
//! hit against the token's own `expires_at`.

use crate::store::AuthGeneration;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most tokens kept; past it the cache starts again empty (a school has a few
/// thousand users, each with a token or two).
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub user_id: i64,
    pub name: String,
    pub is_admin: bool,
    pub expires_at: i64,
}

#[derive(Debug, Default)]
struct State {
    generation: Option<AuthGeneration>,
    /// By the token's SHA-256 (hex), as the store keeps it.
    entries: HashMap<String, CachedToken>,
}

#[derive(Debug, Default)]
pub struct TokenCache {
    state: Mutex<State>,
}

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A map of copies: a panic elsewhere while holding the lock leaves it usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token with this hash, if it was read under `now` (the current generation).
    /// A generation that moved empties the cache first.
    pub fn get(&self, hash: &str, now: AuthGeneration) -> Option<CachedToken> {
        let mut state = self.lock();
        if state.generation != Some(now) {
            state.entries.clear();
            state.generation = Some(now);
            return None;
        }
        state.entries.get(hash).cloned()
    }

    /// Keeps a token read from the store under `read_under`, the generation taken
    /// before the read: if it has moved since, the read may be stale and is dropped.
    pub fn put(&self, hash: &str, token: CachedToken, read_under: AuthGeneration) {
        let mut state = self.lock();
        if state.generation != Some(read_under) {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(hash.to_owned(), token);
    }
}
