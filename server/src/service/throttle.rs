//! Slows down password guessing without locking the real user out.
//!
//! Three ledgers count failures: per (account, address) strictly, per account and per
//! address more loosely. In each, a few failures are free, then each further one
//! doubles the wait before the next try, up to a cap. An attempt is charged as a
//! failure when it is admitted, in the same step as the check, so a burst of parallel
//! guesses gets no more tries than a sequence would; a success then takes the charge
//! back. An address where the account has logged in before is *known good* for it:
//! there only the pair's own ledger counts, so guesses from elsewhere (a trickle on
//! the account, a spray from the same network) never lock the real user out, and the
//! caps (a minute for the pair and the account) bound how long anyone waits once an
//! attack stops.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one account from one address before waits begin.
    pub pair_free_failures: u32,
    pub pair_max_wait: Duration,
    /// Failures of one account from addresses not known good for it.
    pub account_free_failures: u32,
    pub account_max_wait: Duration,
    /// Failures from one address, on any accounts it is not known good for.
    pub address_free_failures: u32,
    pub address_max_wait: Duration,
    /// A ledger's count starts again after this long without a failure.
    pub forget_after: Duration,
    /// How long a successful login keeps its address known good for the account.
    pub known_good_for: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            pair_free_failures: 5,
            pair_max_wait: Duration::from_secs(60),
            account_free_failures: 10,
            account_max_wait: Duration::from_secs(60),
            address_free_failures: 20,
            address_max_wait: Duration::from_secs(300),
            forget_after: Duration::from_secs(15 * 60),
            known_good_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// How long to wait before the next try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds, rounded up, for `Retry-After`.
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

/// Above this many entries a ledger drops those it would have forgotten anyway, so
/// guesses at random names cannot grow it without bound.
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
        // The attempt that uses up the free ones already starts the wait.
        if entry.count >= self.free {
            let doublings = (entry.count - self.free).min(20);
            let wait = Duration::from_secs(1u64 << doublings).min(self.max_wait);
            entry.blocked_until = now + wait;
        }
    }

    /// Takes back one charged failure (the attempt succeeded).
    fn refund(&mut self, key: &K) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

type Pair = (String, IpAddr);

#[derive(Debug)]
struct Ledgers {
    pairs: Ledger<Pair>,
    accounts: Ledger<String>,
    addresses: Ledger<IpAddr>,
    known_good: HashMap<Pair, Instant>,
    /// The minute (since the throttle began) of the last audited refusal, per pair.
    audited: HashMap<(String, Option<IpAddr>), u64>,
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    began: Instant,
    ledgers: Mutex<Ledgers>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        let ledgers = Ledgers {
            pairs: Ledger::new(policy.pair_free_failures, policy.pair_max_wait),
            accounts: Ledger::new(policy.account_free_failures, policy.account_max_wait),
            addresses: Ledger::new(policy.address_free_failures, policy.address_max_wait),
            known_good: HashMap::new(),
            audited: HashMap::new(),
        };
        Self { policy, began: Instant::now(), ledgers: Mutex::new(ledgers) }
    }

    fn ledgers(&self) -> std::sync::MutexGuard<'_, Ledgers> {
        // Counters only: a panic elsewhere while holding the lock leaves them usable.
        self.ledgers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks whether a password attempt may be made now and, if so, charges it as a
    /// failure in the same step. Call [`LoginThrottle::succeeded`] if it was right.
    pub fn admit(&self, account: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        let mut ledgers = self.ledgers();
        let pair = address.map(|a| (account.to_owned(), a));
        let known_good = pair
            .as_ref()
            .and_then(|p| ledgers.known_good.get(p))
            .is_some_and(|since| now.checked_duration_since(*since).is_none_or(|age| age < self.policy.known_good_for));
        let account_key = account.to_owned();
        let mut waits = Vec::new();
        if let Some(pair) = &pair {
            waits.push(ledgers.pairs.blocked(pair, now));
        }
        if !known_good {
            waits.push(ledgers.accounts.blocked(&account_key, now));
            waits.push(address.and_then(|a| ledgers.addresses.blocked(&a, now)));
        }
        if let Some(retry_after) = waits.into_iter().flatten().max() {
            return Err(Throttled { retry_after });
        }
        let forget = self.policy.forget_after;
        if let Some(pair) = &pair {
            ledgers.pairs.fail(pair, now, forget);
        }
        if !known_good {
            ledgers.accounts.fail(&account_key, now, forget);
            if let Some(address) = address {
                ledgers.addresses.fail(&address, now, forget);
            }
        }
        Ok(())
    }

    /// The admitted attempt was right: its charge is taken back, the account's and the
    /// pair's counts start again, and the address becomes known good for the account.
    pub fn succeeded(&self, account: &str, address: Option<IpAddr>, now: Instant) {
        let mut ledgers = self.ledgers();
        ledgers.accounts.clear(&account.to_owned());
        if let Some(address) = address {
            let pair = (account.to_owned(), address);
            ledgers.pairs.clear(&pair);
            ledgers.addresses.refund(&address);
            if ledgers.known_good.len() > SWEEP_ABOVE {
                let keep = self.policy.known_good_for;
                ledgers.known_good.retain(|_, since| now.checked_duration_since(*since).is_none_or(|age| age < keep));
            }
            ledgers.known_good.insert(pair, now);
        }
    }

    /// The admitted attempt was never checked (the server was too busy to hash it): its
    /// charge is taken back from each ledger that `admit` charged, so a student told to
    /// retry later is not also counted as guessing.
    pub fn not_checked(&self, account: &str, address: Option<IpAddr>, now: Instant) {
        let mut ledgers = self.ledgers();
        let pair = address.map(|a| (account.to_owned(), a));
        let known_good = pair
            .as_ref()
            .and_then(|p| ledgers.known_good.get(p))
            .is_some_and(|since| now.checked_duration_since(*since).is_none_or(|age| age < self.policy.known_good_for));
        if let Some(pair) = &pair {
            ledgers.pairs.refund(pair);
        }
        if !known_good {
            ledgers.accounts.refund(&account.to_owned());
            if let Some(address) = address {
                ledgers.addresses.refund(&address);
            }
        }
    }

    /// Whether a refusal of this account from this address should be written to the
    /// audit log: the first in each minute, so a flood of refused guesses cannot flood
    /// the log.
    pub fn should_audit_refusal(&self, account: &str, address: Option<IpAddr>, now: Instant) -> bool {
        let minute = now.saturating_duration_since(self.began).as_secs() / 60;
        let mut ledgers = self.ledgers();
        if ledgers.audited.len() > SWEEP_ABOVE {
            ledgers.audited.retain(|_, last| *last + 1 >= minute);
        }
        let last = ledgers.audited.insert((account.to_owned(), address), minute);
        last != Some(minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));

    fn address(n: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)))
    }

    /// Wrong guesses made one after the other at `now`, counted until the first
    /// refusal; returns how many were admitted.
    fn admitted(throttle: &LoginThrottle, account: &str, from: Option<IpAddr>, now: Instant, tries: u32) -> u32 {
        (0..tries).filter(|_| throttle.admit(account, from, now).is_ok()).count() as u32
    }

    #[test]
    fn a_burst_gets_no_more_tries_than_a_sequence() {
        let throttle = std::sync::Arc::new(LoginThrottle::new(ThrottlePolicy::default()));
        let now = Instant::now();
        let threads: Vec<_> = (0..100)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || throttle.admit("alice", HOME, now).is_ok())
            })
            .collect();
        let admitted = threads.into_iter().map(|t| t.join().is_ok_and(|ok| ok)).filter(|ok| *ok).count();
        assert_eq!(admitted, 5, "the pair's free tries, and not one more");
    }

    #[test]
    fn waits_double_up_to_a_minute_and_old_failures_are_forgotten() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let start = Instant::now();
        assert_eq!(admitted(&throttle, "alice", HOME, start, 10), 5, "five tries");
        let mut wait = throttle.admit("alice", HOME, start).expect_err("blocked").retry_after;
        assert_eq!(wait, Duration::from_secs(1));
        let mut now = start;
        for expected in [2, 4, 8, 16, 32, 60, 60] {
            now += wait;
            throttle.admit("alice", HOME, now).expect("admitted once the wait is over");
            wait = throttle.admit("alice", HOME, now).expect_err("blocked").retry_after;
            assert_eq!(wait.as_secs(), expected);
        }
        let much_later = now + Duration::from_secs(16 * 60);
        assert_eq!(admitted(&throttle, "alice", HOME, much_later, 10), 5, "forgotten after 15 minutes");
    }

    #[test]
    fn the_real_user_at_a_known_good_address_is_not_locked_out_by_guesses_from_elsewhere() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let start = Instant::now();
        throttle.admit("alice", HOME, start).expect("first login");
        throttle.succeeded("alice", HOME, start);
        // A trickle from many addresses blocks the account for unknown addresses...
        let mut now = start;
        for n in 1..=200 {
            now += Duration::from_secs(1);
            let _ = throttle.admit("alice", address(n), now);
        }
        assert!(throttle.admit("alice", address(250), now).is_err(), "the account is blocked for strangers");
        // ...but not for alice at home, whose own mistakes count on their own.
        assert!(throttle.admit("alice", HOME, now).is_ok());
        throttle.succeeded("alice", HOME, now);
    }

    #[test]
    fn the_real_user_gets_back_in_within_a_minute_of_an_attack_stopping() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let mut now = Instant::now();
        throttle.admit("alice", HOME, now).expect("first login");
        throttle.succeeded("alice", HOME, now);
        // One guess per Retry-After, from the user's own address, for an hour.
        let end = now + Duration::from_secs(3600);
        while now < end {
            match throttle.admit("alice", HOME, now) {
                Ok(()) => {}
                Err(wait) => now += wait.retry_after,
            }
        }
        // The attack stops here; a minute later alice's own try is admitted.
        assert!(throttle.admit("alice", HOME, now + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn a_spray_from_one_address_and_a_rotation_of_addresses_are_both_slowed() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let now = Instant::now();
        let spray = (0..100).filter(|n| throttle.admit(&format!("user{n}"), address(1), now).is_ok()).count();
        assert_eq!(spray, 20, "the address's free tries");
        let rotation = (0..100).filter(|n| throttle.admit("bob", address(10 + *n as u8), now).is_ok()).count();
        assert_eq!(rotation, 10, "the account's free tries");
    }

    #[test]
    fn refusals_are_audited_once_a_minute_per_account_and_address() {
        let throttle = LoginThrottle::new(ThrottlePolicy::default());
        let start = Instant::now();
        let audited = (0..2000).filter(|_| throttle.should_audit_refusal("alice", HOME, start)).count();
        assert_eq!(audited, 1);
        assert!(throttle.should_audit_refusal("alice", address(1), start), "another address is another row");
        assert!(throttle.should_audit_refusal("alice", HOME, start + Duration::from_secs(61)), "a new minute");
    }

    #[test]
    fn retry_after_rounds_up() {
        let throttled = Throttled { retry_after: Duration::from_millis(1500) };
        assert_eq!(throttled.retry_after_secs(), 2);
    }
}
