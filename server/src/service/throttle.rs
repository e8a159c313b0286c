//! Slows down password guessing: per account and per client address, a few failures
//! are free, then each further one doubles the wait before the next try, up to a cap.
//! The cap is what keeps the real user from being locked out for long.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures for one account before waits begin.
    pub account_free_failures: u32,
    /// Longest wait imposed on one account.
    pub account_max_wait: Duration,
    /// Failures from one address (over all accounts) before waits begin.
    pub address_free_failures: u32,
    pub address_max_wait: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            account_max_wait: Duration::from_secs(60),
            address_free_failures: 20,
            address_max_wait: Duration::from_secs(300),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

/// A refused attempt, and how long to wait before the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds, rounded up, as `Retry-After` wants them.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

#[derive(Debug)]
struct Ledger<K> {
    entries: HashMap<K, Failures>,
    free: u32,
    max_wait: Duration,
}

/// Entries kept before old ones are swept, so a flood of invented names cannot grow
/// memory without bound.
const SWEEP_ABOVE: usize = 10_000;

impl<K: Eq + Hash + Clone> Ledger<K> {
    fn new(free: u32, max_wait: Duration) -> Self {
        Self { entries: HashMap::new(), free, max_wait }
    }

    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        (entry.blocked_until > now).then(|| entry.blocked_until - now)
    }

    fn fail(&mut self, key: &K, now: Instant, forget_after: Duration) {
        if self.entries.len() > SWEEP_ABOVE {
            self.entries.retain(|_, f| now.duration_since(f.last) < forget_after);
        }
        let entry = self.entries.entry(key.clone()).or_insert(Failures { count: 0, last: now, blocked_until: now });
        if now.duration_since(entry.last) >= forget_after {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count > self.free {
            let doublings = (entry.count - self.free - 1).min(20);
            let wait = Duration::from_secs(1u64 << doublings).min(self.max_wait);
            entry.blocked_until = now + wait;
        }
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    ledgers: Mutex<(Ledger<String>, Ledger<IpAddr>)>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        let ledgers = (
            Ledger::new(policy.account_free_failures, policy.account_max_wait),
            Ledger::new(policy.address_free_failures, policy.address_max_wait),
        );
        Self { policy, ledgers: Mutex::new(ledgers) }
    }

    fn ledgers(&self) -> std::sync::MutexGuard<'_, (Ledger<String>, Ledger<IpAddr>)> {
        self.ledgers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a password attempt for `account` from `address` may be checked now.
    pub fn check(&self, account: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        let ledgers = self.ledgers();
        let by_account = ledgers.0.blocked(&account.to_owned(), now);
        let by_address = address.and_then(|a| ledgers.1.blocked(&a, now));
        match by_account.max(by_address) {
            Some(retry_after) => Err(Throttled { retry_after }),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str, address: Option<IpAddr>, now: Instant) {
        let mut ledgers = self.ledgers();
        ledgers.0.fail(&account.to_owned(), now, self.policy.forget_after);
        if let Some(address) = address {
            ledgers.1.fail(&address, now, self.policy.forget_after);
        }
    }

    /// A correct password clears the account's record. The address keeps its record:
    /// otherwise one valid account would let a guesser reset the count at will.
    pub fn record_success(&self, account: &str) {
        self.ledgers().0.clear(&account.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn waits_begin_after_the_free_failures_then_double_up_to_the_cap() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let start = Instant::now();
        for _ in 0..5 {
            assert!(throttle.check("alice", HOME, start).is_ok());
            throttle.record_failure("alice", HOME, start);
        }
        assert!(throttle.check("alice", HOME, start).is_ok(), "five failures are free");
        throttle.record_failure("alice", HOME, start);
        let wait = throttle.check("alice", HOME, start).expect_err("sixth failure blocks");
        assert_eq!(wait.retry_after, Duration::from_secs(1));
        let later = start + Duration::from_secs(1);
        assert!(throttle.check("alice", HOME, later).is_ok());
        throttle.record_failure("alice", HOME, later);
        assert_eq!(throttle.check("alice", HOME, later).map_err(|t| t.retry_after), Err(Duration::from_secs(2)));
        let mut now = later;
        for _ in 0..30 {
            now += Duration::from_secs(61);
            throttle.record_failure("alice", None, now);
        }
        assert_eq!(throttle.check("alice", None, now).map_err(|t| t.retry_after), Err(Duration::from_secs(60)));
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let policy = ThrottlePolicy { address_free_failures: 2, ..ThrottlePolicy::default() };
        let throttle = LoginThrottle::new(policy);
        let now = Instant::now();
        for name in ["a", "b", "c"] {
            throttle.record_failure(name, HOME, now);
        }
        throttle.record_success("c");
        assert!(throttle.check("c", None, now).is_ok());
        assert!(throttle.check("c", HOME, now).is_err(), "the address is still throttled");
    }

    #[test]
    fn old_failures_are_forgotten() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let start = Instant::now();
        for _ in 0..5 {
            throttle.record_failure("bob", None, start);
        }
        let much_later = start + Duration::from_secs(16 * 60);
        throttle.record_failure("bob", None, much_later);
        assert!(throttle.check("bob", None, much_later).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(Throttled { retry_after: Duration::from_millis(1) }.retry_after_secs(), 1);
        assert_eq!(Throttled { retry_after: Duration::from_secs(2) }.retry_after_secs(), 2);
    }
}
