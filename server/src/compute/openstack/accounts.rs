//! Each desktop's own OS password, set in the guest through Nova: `changePassword`,
//! which Nova carries out with the QEMU guest agent (images with
//! `hw_qemu_guest_agent=yes`) for the image's `os_admin_user`. A guest's agent
//! answers only once the guest has booted, so the password is set in the background,
//! again and again until it takes, after every start.
//!
//! The accounts are kept in memory only (the store has them; a starting server hands
//! them over again, see `Compute::guest_accounts_in_memory`), so nothing secret lies
//! on this host or in Nova's metadata.

use super::api;
use super::keystone::Session;
use crate::compute::GuestAccount;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a guest's agent may take to answer after a start before the attempt is
/// given up (and said in the log): a TCG guest boots in well under a minute.
const PATIENCE: Duration = Duration::from_secs(300);
/// Before the first attempt and between two while the agent does not answer: each
/// attempt is a task on the server that holds off the owner's actions meanwhile.
const RETRY_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    /// Machine id → the account its guest must have.
    wanted: HashMap<String, GuestAccount>,
    /// Machines with a thread setting their account now: at most one each.
    applying: HashSet<String>,
}

pub struct GuestAccounts {
    session: Arc<Session>,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GuestAccounts {
    pub fn new(session: Arc<Session>) -> Self {
        GuestAccounts { session, state: Arc::new(Mutex::new(State::default())) }
    }

    pub fn remember(&self, id: &str, account: GuestAccount) {
        lock(&self.state).wanted.insert(id.to_owned(), account);
    }

    pub fn forget(&self, id: &str) {
        lock(&self.state).wanted.remove(id);
    }

    pub fn knows(&self, id: &str) -> bool {
        lock(&self.state).wanted.contains_key(id)
    }

    /// Sets machine `id`'s account in its running guest (Nova server `server_id`),
    /// in the background; does nothing for a machine without one. A thread already
    /// at it picks up the newest account before it ends.
    pub fn apply_soon(&self, id: &str, server_id: &str) {
        {
            let mut state = lock(&self.state);
            if !state.wanted.contains_key(id) || !state.applying.insert(id.to_owned()) {
                return;
            }
        }
        let (session, state, id, server_id) =
            (self.session.clone(), self.state.clone(), id.to_owned(), server_id.to_owned());
        let thread_id = id.clone();
        let spawned = std::thread::Builder::new()
            .name("guest-account".into())
            .spawn(move || apply(&session, &state, &thread_id, &server_id));
        if let Err(error) = spawned {
            lock(&self.state).applying.remove(&id);
            tracing::warn!(machine = %id, %error, "cannot start setting the guest's password");
        }
    }
}

fn apply(session: &Session, state: &Mutex<State>, id: &str, server_id: &str) {
    let started = Instant::now();
    std::thread::sleep(RETRY_EVERY);
    loop {
        let Some(account) = lock(state).wanted.get(id).cloned() else { break };
        match api::change_password(session, server_id, account.password.expose()) {
            Ok(true) => {
                let mut state = lock(state);
                // Replaced meanwhile: set the newer one too.
                if state.wanted.get(id) == Some(&account) {
                    state.applying.remove(id);
                    tracing::info!(machine = %id, user = %account.username, "the desktop's password is set in its guest");
                    return;
                }
            }
            Ok(false) => break,
            Err(error) if started.elapsed() < PATIENCE => {
                tracing::debug!(machine = %id, %error, "the guest agent does not answer yet");
                std::thread::sleep(RETRY_EVERY);
            }
            Err(error) => {
                tracing::warn!(machine = %id, %error, "the desktop's password could not be set in its guest");
                break;
            }
        }
    }
    lock(state).applying.remove(id);
}
