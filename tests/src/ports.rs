//! Ports for programs that must be told theirs before they bind it: QEMU's SPICE and
//! RDP ports, the server binary's listen address, chromedriver.
//!
//! The tests of a test binary run side by side in one process, so one allocator
//! hands out the blocks and no two of them overlap in a process. They come from below
//! the kernel's ephemeral range (32768 and up on Linux), so a `127.0.0.1:0` listener
//! or an outgoing connection of another test never gets one of them meanwhile. Each
//! process begins at its own offset (from its id), so test processes running at the
//! same time on one machine seldom meet; a block with a port that something holds
//! right now is passed over.

use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::sync::{Mutex, PoisonError};

/// The ports handed out: `FIRST..END`.
const FIRST: u16 = 20000;
const END: u16 = 32768;
/// Processes start this far apart.
const STRIDE: u16 = 512;

/// The next port to hand out in this process; `None` until the first call.
static NEXT: Mutex<Option<u16>> = Mutex::new(None);

/// `size` consecutive ports that no other caller in this process has been given and
/// that are free right now.
pub fn block(size: u16) -> RangeInclusive<u16> {
    assert!((1..=STRIDE).contains(&size), "a block of {size} ports");
    let mut next = NEXT.lock().unwrap_or_else(PoisonError::into_inner);
    let offsets = u32::from((END - FIRST) / STRIDE);
    let first_of_process = FIRST + u16::try_from(std::process::id() % offsets).expect("fewer than 25 offsets") * STRIDE;
    let mut start = next.unwrap_or(first_of_process);
    for _ in 0..(END - FIRST) / size {
        if END - start < size {
            start = FIRST;
        }
        let block = start..=start + size - 1;
        start += size;
        if block.clone().all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            *next = Some(start);
            return block;
        }
    }
    panic!("no {size} consecutive free ports between {FIRST} and {END}");
}

/// One port, as [`block`] gives them.
pub fn one() -> u16 {
    *block(1).start()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_never_overlap_and_stay_below_the_ephemeral_ports() {
        let mut seen = std::collections::HashSet::new();
        for size in [8, 1, 8, 3, 8, 1] {
            let block = block(size);
            assert_eq!(block.clone().count(), usize::from(size));
            assert!(*block.start() >= FIRST && *block.end() < END, "{block:?}");
            for port in block {
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }
}
