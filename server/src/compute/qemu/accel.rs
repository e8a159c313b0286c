//! Which accelerator really runs guests on this host, found out once and remembered in
//! the state directory until the host's KVM changes.
//!
//! `/dev/kvm` opening is not enough: some nested hosts start QEMU under KVM and then
//! stop every guest within seconds at an instruction they cannot emulate ("KVM internal
//! error"). So with `Accel::Auto`, the first machine started under KVM is watched (up
//! to 30 s, less once its kernel speaks on the serial port); if its guest stops with an internal error, the driver restarts it
//! under TCG and uses TCG from then on, and if it runs, KVM is trusted.

use super::{Accel, read_json, write_private_json};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

const ACCEL_FILE: &str = "accel.json";

/// How long a first guest under KVM is watched at the most. The failures seen stop the
/// guest in its boot loader, a second or two in on an idle host but much later on a
/// busy one; a guest whose kernel speaks on its serial port ends the watch early.
pub(super) const KVM_TRIAL: Duration = Duration::from_secs(30);

/// What was found out on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Finding {
    host: String,
    accel: Accel,
}

/// The host's kernel release and KVM modules: when either changes (an upgrade, another
/// module), what was found out no longer holds.
fn host_kvm() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let modules = std::fs::read_to_string("/proc/modules").unwrap_or_default();
    let kvm: Vec<&str> =
        modules.lines().filter_map(|line| line.split_whitespace().next()).filter(|m| m.starts_with("kvm")).collect();
    format!("{} {}", release.trim(), kvm.join(","))
}

/// `Kvm` when KVM has run a guest on this host as it is now, `Tcg` when it failed to.
pub(super) fn remembered(state_dir: &Path) -> Option<Accel> {
    let finding: Finding = read_json(&state_dir.join(ACCEL_FILE)).ok()?;
    (finding.host == host_kvm()).then_some(finding.accel)
}

pub(super) fn remember(state_dir: &Path, accel: Accel) {
    let finding = Finding { host: host_kvm(), accel };
    if let Err(error) = write_private_json(&state_dir.join(ACCEL_FILE), &finding) {
        tracing::warn!(%error, "cannot remember which accelerator works; it will be found out again");
    }
}

/// Whether a QMP `query-status` answer says the guest stopped on a KVM error.
pub(super) fn stopped_by_kvm(status: &serde_json::Value) -> bool {
    status.get("status").and_then(|s| s.as_str()) == Some("internal-error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_holds_only_for_the_host_it_was_made_on() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(remembered(dir.path()), None);
        remember(dir.path(), Accel::Tcg);
        assert_eq!(remembered(dir.path()), Some(Accel::Tcg));
        let other = Finding { host: "another kernel".into(), accel: Accel::Tcg };
        write_private_json(&dir.path().join(ACCEL_FILE), &other).expect("write");
        assert_eq!(remembered(dir.path()), None, "a changed host finds out again");
    }

    #[test]
    fn only_an_internal_error_counts_as_a_kvm_failure() {
        assert!(stopped_by_kvm(&serde_json::json!({"status": "internal-error", "running": false})));
        assert!(!stopped_by_kvm(&serde_json::json!({"status": "running", "running": true})));
        assert!(!stopped_by_kvm(&serde_json::json!({"status": "paused", "running": false})));
    }
}
