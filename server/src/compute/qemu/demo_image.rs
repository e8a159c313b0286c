//! The demo desktop's disk, built on first use from the recipe in
//! `assets/demo-image/` (compiled into the binary, so an installed server can build
//! it too) and cached under a name derived from the recipe: a changed recipe builds
//! a new image, an unchanged one never builds twice.

use super::super::ComputeError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The recipe's files, by name: `build.sh` runs beside the others.
const RECIPE: [(&str, &str); 4] = [
    ("build.sh", include_str!("../../../../assets/demo-image/build.sh")),
    ("init", include_str!("../../../../assets/demo-image/init")),
    ("chpasswd", include_str!("../../../../assets/demo-image/chpasswd")),
    ("remote-access", include_str!("../../../../assets/demo-image/remote-access")),
];

/// Debian packages the recipe needs, for error messages and `.ci/run`.
pub const BUILD_PACKAGES: &str = "busybox-static syslinux syslinux-common mtools dosfstools qemu-utils";

/// `$XDG_CACHE_HOME/thindesk`, else `~/.cache/thindesk`, else the system's temp dir.
pub fn default_cache_dir() -> PathBuf {
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(cache).join("thindesk");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".cache/thindesk");
    }
    std::env::temp_dir().join("thindesk-cache")
}

/// The path of the demo image in `cache_dir`, building it first if needed. Building
/// takes a few seconds and downloads one Debian kernel package through apt.
pub fn ensure(cache_dir: &Path) -> Result<PathBuf, ComputeError> {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_build_at_a_time = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let image = cache_dir.join(format!("thindesk-demo-{}.qcow2", recipe_digest()));
    if image.is_file() {
        return Ok(image);
    }
    let failed = |what: &str, error: std::io::Error| ComputeError::Failed(format!("{what}: {error}"));
    std::fs::create_dir_all(cache_dir).map_err(|e| failed("creating the image cache", e))?;
    let recipe = tempfile::Builder::new()
        .prefix("thindesk-demo-recipe-")
        .tempdir()
        .map_err(|e| failed("preparing the image recipe", e))?;
    for (name, text) in RECIPE {
        std::fs::write(recipe.path().join(name), text).map_err(|e| failed(&format!("writing {name}"), e))?;
    }
    let script = recipe.path().join("build.sh");
    // Another process may build the same image meanwhile: each builds under its own
    // name and the rename makes whichever finishes first the one that stays.
    let partial = cache_dir.join(format!("building-{}.qcow2", crate::random::token(6)));
    tracing::info!(image = %image.display(), "building the demo image");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&partial)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed("running the demo image's build.sh", e))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ComputeError::BadImage(format!(
            "the demo image could not be built (it needs the Debian packages {BUILD_PACKAGES} and apt access): {}",
            stderr.trim().lines().last().unwrap_or("no message")
        )));
    }
    std::fs::rename(&partial, &image).map_err(|e| failed("storing the demo image", e))?;
    Ok(image)
}

fn recipe_digest() -> String {
    let mut digest = Sha256::new();
    for (name, text) in RECIPE {
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(text.as_bytes());
        digest.update([0]);
    }
    hex::encode(&digest.finalize()[..6])
}
