//! Giving freed memory back to the system.
//!
//! glibc's malloc keeps what a burst freed (the buffers of 500 connections that logged
//! in at once and left) in its free lists, and only gives back the top of each heap:
//! the server stayed a quarter larger long after a login storm (issue 11). Every
//! [`INTERVAL`] the server asks it to return every whole free page (`malloc_trim`),
//! which takes well under a millisecond on a heap of this size.

use std::time::Duration;

/// How often the server gives freed memory back.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Returns the allocator's whole free pages to the system. Blocking (it takes the
/// allocator's locks); a no-op where the allocator is not glibc's.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` takes no pointer and touches nothing of ours: it walks
    // glibc's own free lists under glibc's own locks, and may be called from any
    // thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
