//! Password hashing in a bounded pool (contract: "Overload").
//!
//! An Argon2id check needs 19 MiB and tens of milliseconds of one core. Run on a
//! thread per request, a class logging in at once ran hundreds of them side by side:
//! gigabytes of memory that glibc kept afterwards, and every login late. Here a fixed
//! number of workers (one per core by default) hash one password at a time each, in
//! a memory block allocated once per worker and reused, so the memory hashing takes
//! is `workers × 19 MiB` whatever the load. In front of them is a queue with a bound
//! and a deadline: a job that cannot be queued, or that waited past the deadline, is
//! refused with [`HashError::Overloaded`] and an estimate of when to try again, which
//! the HTTP layer answers as 503 with `Retry-After`.
//!
//! Every hash and check goes through a pool: logins, password changes, user creation
//! and import, the console's login and the command line (which has its own pool in
//! its own process). Async callers await the answer without holding a thread
//! ([`HashPool::verify`]); synchronous ones block ([`HashPool::verify_blocking`]).

use argon2::password_hash::{Output, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};
use thindesk_shared::Secret;
use tokio::sync::oneshot;

/// The pool's shape; `config.rs` reads it from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPoolSettings {
    /// Threads that hash, each with its own memory block.
    pub workers: usize,
    /// Jobs waiting for a worker at the most; past it a job is refused at once.
    pub queue: usize,
    /// How long a job may wait for a worker; past it, it is refused.
    pub deadline: Duration,
}

/// Waiting jobs at the most, by default: each holds a password and a stored hash, well
/// under a few KiB, and an async caller holds no thread while it waits.
pub const DEFAULT_HASH_QUEUE: usize = 2048;
/// How long a login may wait for a worker, by default: 500 logins at once on two cores
/// are hashed in about 10 s (see the README's load results).
pub const DEFAULT_HASH_DEADLINE: Duration = Duration::from_secs(30);

impl Default for HashPoolSettings {
    fn default() -> Self {
        Self { workers: default_workers(), queue: DEFAULT_HASH_QUEUE, deadline: DEFAULT_HASH_DEADLINE }
    }
}

/// One worker per core the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(2)
}

/// A stored hash with a memory cost above this is refused rather than allocated: no
/// hash this server writes comes near it.
const MAX_BLOCKS: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("too many passwords are being checked; try again in {retry_after} s")]
    Overloaded { retry_after: u64 },
    #[error("password hashing failed: {0}")]
    Failed(String),
}

enum Work {
    Hash(Secret),
    Verify {
        password: Secret,
        stored: String,
    },
    /// Holds the worker until the sender is dropped or sends: lets the tests fill the
    /// pool deterministically.
    #[cfg(test)]
    Hold(mpsc::Receiver<()>),
}

enum Outcome {
    Hashed(String),
    Verified(bool),
}

enum Reply {
    Async(oneshot::Sender<Result<Outcome, HashError>>),
    Blocking(mpsc::SyncSender<Result<Outcome, HashError>>),
}

impl Reply {
    fn send(self, outcome: Result<Outcome, HashError>) {
        // A caller that has gone (a closed connection) needs no answer.
        match self {
            Reply::Async(sender) => drop(sender.send(outcome)),
            Reply::Blocking(sender) => drop(sender.send(outcome)),
        }
    }

    fn abandoned(&self) -> bool {
        match self {
            Reply::Async(sender) => sender.is_closed(),
            Reply::Blocking(_) => false,
        }
    }
}

struct Job {
    work: Work,
    queued_at: Instant,
    reply: Reply,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    settings: HashPoolSettings,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Mean time of one hash, in nanoseconds (a moving average), for `Retry-After`.
    mean_hash_nanos: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Workers never panic while holding the lock; a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Seconds until `waiting` jobs ahead would be done, at least 1.
    fn retry_after(&self, waiting: usize) -> u64 {
        let mean = self.mean_hash_nanos.load(Ordering::Relaxed).max(1);
        let workers = self.settings.workers.max(1) as u64;
        let nanos = mean.saturating_mul(waiting as u64 + 1) / workers;
        nanos.div_ceil(1_000_000_000).clamp(1, 120)
    }

    fn overloaded(&self, waiting: usize) -> HashError {
        HashError::Overloaded { retry_after: self.retry_after(waiting) }
    }
}

/// The pool. Dropping it stops the workers once they finish the job in hand; jobs
/// still queued are refused.
pub struct HashPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool").field("settings", &self.shared.settings).finish()
    }
}

impl HashPool {
    pub fn new(settings: HashPoolSettings) -> Result<Self, HashError> {
        let settings = HashPoolSettings { workers: settings.workers.max(1), ..settings };
        let shared = Arc::new(Shared {
            settings,
            queue: Mutex::new(Queue { jobs: VecDeque::new(), closed: false }),
            ready: Condvar::new(),
            // A first guess until a hash has been timed: 50 ms.
            mean_hash_nanos: AtomicU64::new(50_000_000),
        });
        for index in 0..settings.workers {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || work(&shared))
                .map_err(|e| HashError::Failed(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self { shared })
    }

    pub fn settings(&self) -> HashPoolSettings {
        self.shared.settings
    }

    fn submit(&self, work: Work, reply: Reply) -> Result<(), HashError> {
        self.submit_or_return(work, reply).map_err(|(_, _, error)| error)
    }

    /// Queues a job, or hands it back with the reason it was refused.
    #[allow(clippy::result_large_err)] // the job handed back, not an error value kept
    fn submit_or_return(&self, work: Work, reply: Reply) -> Result<(), (Work, Reply, HashError)> {
        let mut queue = self.shared.lock();
        if queue.closed {
            return Err((work, reply, HashError::Failed("the hashing pool has stopped".into())));
        }
        let waiting = queue.jobs.len();
        if waiting >= self.shared.settings.queue {
            return Err((work, reply, self.shared.overloaded(waiting)));
        }
        queue.jobs.push_back(Job { work, queued_at: Instant::now(), reply });
        drop(queue);
        self.shared.ready.notify_one();
        Ok(())
    }

    async fn run(&self, work: Work) -> Result<Outcome, HashError> {
        let (sender, receiver) = oneshot::channel();
        self.submit(work, Reply::Async(sender))?;
        receiver.await.map_err(|_| HashError::Failed("a hashing thread stopped".into()))?
    }

    fn run_blocking(&self, work: Work) -> Result<Outcome, HashError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.submit(work, Reply::Blocking(sender))?;
        receiver.recv().map_err(|_| HashError::Failed("a hashing thread stopped".into()))?
    }

    /// Whether `password` matches `stored` (a PHC string), compared in constant time.
    pub async fn verify(&self, password: Secret, stored: String) -> Result<bool, HashError> {
        verified(self.run(Work::Verify { password, stored }).await?)
    }

    pub fn verify_blocking(&self, password: Secret, stored: String) -> Result<bool, HashError> {
        verified(self.run_blocking(Work::Verify { password, stored })?)
    }

    /// A new Argon2id hash of `password` with a fresh salt, as a PHC string.
    pub async fn hash(&self, password: Secret) -> Result<String, HashError> {
        hashed(self.run(Work::Hash(password)).await?)
    }

    pub fn hash_blocking(&self, password: Secret) -> Result<String, HashError> {
        hashed(self.run_blocking(Work::Hash(password))?)
    }

    /// Hashes of each password, in order, made by every worker at once (a class's
    /// import): at most two jobs per worker are queued at a time, so other callers
    /// still get a turn.
    pub fn hash_all_blocking(&self, passwords: Vec<Secret>) -> Result<Vec<String>, HashError> {
        let window = self.shared.settings.workers.saturating_mul(2).max(1);
        let mut pending = VecDeque::with_capacity(window);
        let mut hashes = Vec::with_capacity(passwords.len());
        let collect = |receiver: mpsc::Receiver<Result<Outcome, HashError>>| {
            receiver.recv().map_err(|_| HashError::Failed("a hashing thread stopped".into()))?.and_then(hashed)
        };
        for password in passwords {
            if pending.len() >= window {
                if let Some(receiver) = pending.pop_front() {
                    hashes.push(collect(receiver)?);
                }
            }
            let (sender, receiver) = mpsc::sync_channel(1);
            let mut work = Some(Work::Hash(password));
            let mut reply = Some(Reply::Blocking(sender));
            loop {
                let (Some(job), Some(to)) = (work.take(), reply.take()) else { break };
                match self.submit_or_return(job, to) {
                    Ok(()) => break,
                    // The queue is full (of ours, or others'): wait for one of ours.
                    Err((job, to, error)) => match pending.pop_front() {
                        Some(earlier) => {
                            hashes.push(collect(earlier)?);
                            work = Some(job);
                            reply = Some(to);
                        }
                        None => return Err(error),
                    },
                }
            }
            pending.push_back(receiver);
        }
        for receiver in pending {
            hashes.push(collect(receiver)?);
        }
        Ok(hashes)
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.closed = true;
        let jobs: Vec<Job> = queue.jobs.drain(..).collect();
        drop(queue);
        self.shared.ready.notify_all();
        for job in jobs {
            job.reply.send(Err(HashError::Failed("the hashing pool has stopped".into())));
        }
    }
}

fn verified(outcome: Outcome) -> Result<bool, HashError> {
    match outcome {
        Outcome::Verified(matches) => Ok(matches),
        Outcome::Hashed(_) => Err(HashError::Failed("a hash came back for a check".into())),
    }
}

fn hashed(outcome: Outcome) -> Result<String, HashError> {
    match outcome {
        Outcome::Hashed(hash) => Ok(hash),
        Outcome::Verified(_) => Err(HashError::Failed("a check came back for a hash".into())),
    }
}

/// A worker: takes the oldest job, refuses it if it waited too long, else does it in
/// the worker's own memory block.
fn work(shared: &Shared) {
    let mut memory = vec![Block::default(); Params::DEFAULT.block_count()];
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if queue.closed {
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        if job.reply.abandoned() {
            continue;
        }
        if job.queued_at.elapsed() >= shared.settings.deadline {
            let waiting = shared.lock().jobs.len();
            job.reply.send(Err(shared.overloaded(waiting)));
            continue;
        }
        let started = Instant::now();
        let outcome = match job.work {
            Work::Hash(password) => hash(password.expose().as_bytes(), &mut memory).map(Outcome::Hashed),
            Work::Verify { password, stored } => {
                verify(password.expose().as_bytes(), &stored, &mut memory).map(Outcome::Verified)
            }
            #[cfg(test)]
            Work::Hold(release) => {
                let _ = release.recv();
                Ok(Outcome::Verified(false))
            }
        };
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mean = shared.mean_hash_nanos.load(Ordering::Relaxed);
        shared.mean_hash_nanos.store(mean - mean / 8 + took / 8, Ordering::Relaxed);
        job.reply.send(outcome);
    }
}

fn failed(what: &str) -> impl Fn(argon2::Error) -> HashError + '_ {
    move |e| HashError::Failed(format!("{what}: {e}"))
}

/// A stored hash that no password matches, to check against when the user does not
/// exist, so that an unknown name takes as long to refuse as a wrong password: the
/// default parameters (the same work as a real check), a random salt and a random
/// derived key. Made without hashing, so a server starts whatever its pool's bounds.
pub fn decoy() -> Result<String, HashError> {
    use argon2::password_hash::rand_core::RngCore;
    let mut key = [0u8; Params::DEFAULT_OUTPUT_LEN];
    OsRng.fill_bytes(&mut key);
    phc(&SaltString::generate(&mut OsRng), &key)
}

fn phc(salt: &SaltString, key: &[u8]) -> Result<String, HashError> {
    let output = Output::new(key).map_err(|e| HashError::Failed(format!("output: {e}")))?;
    let params_string = argon2::password_hash::ParamsString::try_from(&Params::DEFAULT)
        .map_err(|e| HashError::Failed(format!("parameters: {e}")))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params_string,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Argon2id with the crate's default (OWASP) parameters, the same PHC string
/// `Argon2::default().hash_password` writes.
fn hash(password: &[u8], memory: &mut [Block]) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|e| HashError::Failed(format!("salt: {e}")))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2.hash_password_into_with_memory(password, salt_raw, &mut out, &mut *memory).map_err(failed("hashing"))?;
    phc(&salt, &out)
}

/// Recomputes the stored hash's derived key with its own parameters and compares the
/// two in constant time (`Output`'s equality), as `PasswordVerifier` does.
fn verify(password: &[u8], stored: &str, memory: &mut [Block]) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(stored).map_err(|e| HashError::Failed(format!("stored hash unreadable: {e}")))?;
    let algorithm = Algorithm::try_from(parsed.algorithm)
        .map_err(|e| HashError::Failed(format!("stored hash's algorithm: {e}")))?;
    let version = match parsed.version {
        Some(version) => {
            Version::try_from(version).map_err(|e| HashError::Failed(format!("stored hash's version: {e}")))?
        }
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|e| HashError::Failed(format!("stored hash's parameters: {e}")))?;
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return Err(HashError::Failed("stored hash has no hash or salt".into()));
    };
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|e| HashError::Failed(format!("stored salt: {e}")))?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    if blocks <= memory.len() {
        argon2
            .hash_password_into_with_memory(password, salt_raw, &mut out, &mut *memory)
            .map_err(failed("checking"))?;
    } else if blocks <= MAX_BLOCKS {
        // A hash written with a higher cost than ours: its own memory, freed after.
        let mut larger = vec![Block::default(); blocks];
        argon2.hash_password_into_with_memory(password, salt_raw, &mut out, &mut larger).map_err(failed("checking"))?;
    } else {
        return Err(HashError::Failed(format!("stored hash asks for {blocks} KiB of memory")));
    }
    let computed = Output::new(&out).map_err(|e| HashError::Failed(format!("output: {e}")))?;
    Ok(computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    fn pool(workers: usize, queue: usize, deadline: Duration) -> HashPool {
        HashPool::new(HashPoolSettings { workers, queue, deadline }).expect("pool")
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_the_crate_itself_accepts() {
        let pool = pool(1, 4, Duration::from_secs(60));
        let stored = pool.hash_blocking(Secret::new("correct horse")).expect("hash");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        let parsed = PasswordHash::new(&stored).expect("parse");
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(pool.verify_blocking(Secret::new("correct horse"), stored.clone()).expect("check"));
        assert!(!pool.verify_blocking(Secret::new("wrong horse"), stored).expect("check"));
    }

    #[test]
    fn hashes_written_by_the_crate_with_other_parameters_are_checked() {
        use argon2::password_hash::PasswordHasher;
        let pool = pool(1, 4, Duration::from_secs(60));
        let params = Params::new(8 * 1024, 1, 1, None).expect("params");
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        assert!(pool.verify_blocking(Secret::new("pw"), stored.clone()).expect("check"));
        assert!(!pool.verify_blocking(Secret::new("px"), stored).expect("check"));
        assert!(matches!(pool.verify_blocking(Secret::new("pw"), "nonsense".into()), Err(HashError::Failed(_))));
    }

    #[test]
    fn past_the_queue_bound_a_job_is_refused_at_once_with_a_retry_time() {
        let pool = pool(1, 1, Duration::from_secs(60));
        let (release, hold) = mpsc::channel();
        let (sender, _busy) = oneshot::channel();
        pool.submit(Work::Hold(hold), Reply::Async(sender)).expect("the worker takes the first");
        // Wait until the worker holds the first job, so the queue is empty again.
        while !pool.shared.lock().jobs.is_empty() {
            std::thread::yield_now();
        }
        let (sender, _queued) = oneshot::channel();
        pool.submit(Work::Hash(Secret::new("queued")), Reply::Async(sender)).expect("one may wait");
        match pool.hash_blocking(Secret::new("refused")) {
            Err(HashError::Overloaded { retry_after }) => assert!(retry_after >= 1),
            other => panic!("expected overloaded, got {:?}", other.map(|_| ())),
        }
        release.send(()).expect("release");
    }

    #[test]
    fn a_class_is_hashed_in_order_by_every_worker() {
        let pool = pool(2, 1, Duration::from_secs(60));
        let passwords: Vec<Secret> = (0..6).map(|i| Secret::new(format!("password-{i}"))).collect();
        let hashes = pool.hash_all_blocking(passwords).expect("hashes");
        assert_eq!(hashes.len(), 6);
        for (i, stored) in hashes.into_iter().enumerate() {
            assert!(pool.verify_blocking(Secret::new(format!("password-{i}")), stored).expect("check"));
        }
    }

    #[test]
    fn the_decoy_is_a_well_formed_hash_that_nothing_matches() {
        let pool = pool(1, 4, Duration::from_secs(60));
        let decoy = decoy().expect("decoy");
        assert!(decoy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{decoy}");
        assert_ne!(decoy, super::decoy().expect("another"));
        assert!(!pool.verify_blocking(Secret::new(""), decoy).expect("checked"));
    }

    #[test]
    fn a_job_that_waited_past_the_deadline_is_refused() {
        let pool = pool(1, 8, Duration::ZERO);
        assert!(matches!(pool.hash_blocking(Secret::new("late")), Err(HashError::Overloaded { .. })));
    }

    #[test]
    fn dropping_the_pool_answers_jobs_still_queued() {
        let pool = pool(1, 8, Duration::from_secs(60));
        let (release, hold) = mpsc::channel();
        let (sender, _busy) = oneshot::channel();
        pool.submit(Work::Hold(hold), Reply::Async(sender)).expect("first");
        let (sender, queued) = oneshot::channel();
        pool.submit(Work::Hash(Secret::new("queued")), Reply::Async(sender)).expect("second");
        drop(pool);
        assert!(matches!(queued.blocking_recv(), Ok(Err(HashError::Failed(_))) | Err(_)));
        drop(release);
    }
}
