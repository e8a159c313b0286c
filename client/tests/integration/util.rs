//! Helpers for the tests that run real machines and screens.

use thindesk_tests::{screen, vm};

/// Whether the programs a test of a VM on a screen needs (and `extra` ones) are
/// installed; see [`vm::tools_present`] for what happens when they are not.
pub fn vm_screen_tools_present(test: &str, extra: &[&str]) -> bool {
    let tools: Vec<&str> = vm::TOOLS.iter().chain(screen::TOOLS).chain(extra).copied().collect();
    vm::tools_present(test, &tools)
}

/// Held by each test that starts a demo VM. As separate binaries these tests ran one
/// after the other; in one binary they would boot their machines side by side, and
/// two guests booting on the two cores of a test machine slow each other past the
/// tests' waits.
static ONE_VM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn one_vm_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_VM.lock().await
}

/// For a test outside the runtime.
pub fn one_vm_at_a_time_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_VM.blocking_lock()
}
