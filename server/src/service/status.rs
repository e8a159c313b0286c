//! What the hypervisor last said about each machine, for desktop listings.
//!
//! A listing asked the driver about every machine of the user, which for QEMU is a QMP
//! conversation per machine; a class of terminals refreshing every few seconds made
//! that hundreds a second. Listings now take a machine's view from here when it is
//! younger than the TTL. Power actions never do, and they forget the machine's entry
//! before and after they run, as do new tickets and deletion; a view read while one of
//! them ran is not kept (an epoch that every forget moves). So a user never sees a
//! state older than their own last action. What changes without the server acting (a
//! guest that powers itself off) shows within the TTL. A commit by another process on
//! the same database (the command line acting on a desktop) empties the cache, through
//! SQLite's `data_version`.

use crate::compute::MachineView;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a view is used for, by default.
pub const DEFAULT_STATUS_TTL: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct State {
    /// Moves with every forget: a view read before it is not kept.
    epoch: u64,
    /// The store's `data_version` the entries were read under.
    data_version: Option<i64>,
    entries: HashMap<String, (Instant, MachineView)>,
}

#[derive(Debug)]
pub struct StatusCache {
    ttl: Duration,
    state: Mutex<State>,
}

/// Where a listing stood when it asked the hypervisor: a view is only kept if nothing
/// was forgotten meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    epoch: u64,
}

impl StatusCache {
    /// A TTL of zero turns the cache off.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The machine's view if it is fresh, else a ticket to [`StatusCache::keep`] the one
    /// about to be read. `data_version` is the store's now.
    pub fn get(&self, id: &str, data_version: i64) -> Result<MachineView, Ticket> {
        let mut state = self.lock();
        if state.data_version != Some(data_version) {
            state.entries.clear();
            state.data_version = Some(data_version);
            state.epoch += 1;
        }
        let ticket = Ticket { epoch: state.epoch };
        match state.entries.get(id) {
            Some((seen, view)) if !self.ttl.is_zero() && seen.elapsed() < self.ttl => Ok(view.clone()),
            _ => Err(ticket),
        }
    }

    /// Keeps a view read with `ticket`, unless something was forgotten since.
    pub fn keep(&self, id: &str, view: &MachineView, ticket: Ticket, read_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.epoch != ticket.epoch {
            return;
        }
        if state.entries.len() > 10_000 {
            let ttl = self.ttl;
            state.entries.retain(|_, (seen, _)| seen.elapsed() < ttl);
        }
        state.entries.insert(id.to_owned(), (read_at, view.clone()));
    }

    /// Forgets a machine whose state or display is changing now.
    pub fn forget(&self, id: &str) {
        let mut state = self.lock();
        state.epoch += 1;
        state.entries.remove(id);
    }
}

/// Forgets a machine when made and again when dropped: around a power action, so
/// that nothing read before or during it is shown after.
pub struct Forgetting<'a> {
    cache: &'a StatusCache,
    id: &'a str,
}

impl<'a> Forgetting<'a> {
    pub fn new(cache: &'a StatusCache, id: &'a str) -> Self {
        cache.forget(id);
        Self { cache, id }
    }
}

impl Drop for Forgetting<'_> {
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thindesk_shared::DesktopStatus;

    fn view(status: DesktopStatus) -> MachineView {
        MachineView { status, display: None, address: None }
    }

    #[test]
    fn a_view_read_while_the_machine_was_forgotten_is_not_kept() {
        let cache = StatusCache::new(Duration::from_secs(60));
        let ticket = cache.get("d", 1).expect_err("empty");
        cache.forget("d");
        cache.keep("d", &view(DesktopStatus::Active), ticket, Instant::now());
        assert!(cache.get("d", 1).is_err(), "the old view was dropped");
        let ticket = cache.get("d", 1).expect_err("still empty");
        cache.keep("d", &view(DesktopStatus::Shutoff), ticket, Instant::now());
        assert_eq!(cache.get("d", 1).map(|v| v.status), Ok(DesktopStatus::Shutoff));
    }

    #[test]
    fn another_process_writing_empties_the_cache_and_zero_ttl_keeps_nothing() {
        let cache = StatusCache::new(Duration::from_secs(60));
        let ticket = cache.get("d", 1).expect_err("empty");
        cache.keep("d", &view(DesktopStatus::Active), ticket, Instant::now());
        assert!(cache.get("d", 1).is_ok());
        assert!(cache.get("d", 2).is_err(), "data_version moved");
        let off = StatusCache::new(Duration::ZERO);
        let ticket = off.get("d", 1).expect_err("empty");
        off.keep("d", &view(DesktopStatus::Active), ticket, Instant::now());
        assert!(off.get("d", 1).is_err());
    }
}
