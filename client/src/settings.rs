//! What the client remembers: the settings file (TOML), the command line over it, and
//! the keyring for the last user name (and a token, only where allowed).

use crate::i18n::Lang;
use crate::pinning::Fingerprint;
use crate::viewer::ViewerPrograms;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The settings file, `$XDG_CONFIG_HOME/thindesk/client.toml` by default. Every key is
/// optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `host:5000` (spoken to over HTTPS whatever the scheme written).
    pub server: Option<String>,
    /// The SHA-256 of the server's certificate, as the console shows it. Absent: the
    /// person at the terminal is shown the server's at first contact and it is kept.
    pub server_fingerprint: Option<Fingerprint>,
    /// Fullscreen, cannot be closed, back to the login screen after each session.
    pub kiosk: bool,
    /// Kiosk mode: log out after this long without input on the desktop list.
    pub idle_logout_secs: u64,
    /// Keep the login token in the keyring between runs (never in kiosk mode).
    pub remember_token: bool,
    /// `en` or `zh`; the system's language when absent.
    pub language: Option<Lang>,
    pub viewers: ViewerPrograms,
    /// How long a desktop is shown as starting once the server says it runs: its
    /// guest still boots (the server cannot tell when it is done).
    pub boot_wait_secs: u64,
    /// The school's name, large on the login screen and in the top bar.
    pub school_name: Option<String>,
    /// The school's logo, a PNG file, shown above its name on the login screen.
    pub logo: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: None,
            server_fingerprint: None,
            kiosk: false,
            idle_logout_secs: 600,
            remember_token: false,
            language: None,
            viewers: ViewerPrograms::default(),
            boot_wait_secs: 20,
            school_name: None,
            logo: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl Settings {
    /// The default file: `$XDG_CONFIG_HOME/thindesk/client.toml` or
    /// `~/.config/thindesk/client.toml`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
        Some(base.join("thindesk").join("client.toml"))
    }

    /// Reads `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|source| SettingsError::Parse { path: path.to_owned(), source: Box::new(source) }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(SettingsError::Read { path: path.to_owned(), source }),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let write = |source| SettingsError::Write { path: path.to_owned(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let text = toml::to_string_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        std::fs::write(path, text).map_err(write)
    }
}

/// Where the last user name (and, where allowed, a token) is kept.
#[derive(Clone)]
pub enum Memory {
    /// The system keyring (Secret Service over D-Bus).
    Keyring,
    /// A map in memory: tests, and a stand-in nobody else sees.
    InMemory(Arc<Mutex<std::collections::HashMap<String, String>>>),
    /// Nothing can be kept (the reason says why); as when no keyring service runs.
    Unavailable(String),
}

const KEYRING_SERVICE: &str = "thindesk";
pub const LAST_USER: &str = "last-user";
pub const TOKEN: &str = "token";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MemoryError(pub String);

impl Memory {
    pub fn in_memory() -> Self {
        Self::InMemory(Arc::default())
    }

    /// Reads `key`. Blocking (D-Bus): call it off the UI thread. `Ok(None)`: nothing
    /// stored; `Err`: no keyring to ask.
    pub fn get(&self, key: &str) -> Result<Option<String>, MemoryError> {
        match self {
            Self::Keyring => {
                let entry = keyring::Entry::new(KEYRING_SERVICE, key).map_err(|e| MemoryError(e.to_string()))?;
                match entry.get_password() {
                    Ok(value) => Ok(Some(value)),
                    Err(keyring::Error::NoEntry) => Ok(None),
                    Err(e) => Err(MemoryError(e.to_string())),
                }
            }
            Self::InMemory(map) => Ok(map.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()),
            Self::Unavailable(reason) => Err(MemoryError(reason.clone())),
        }
    }

    /// Stores `value` under `key`, or forgets it with `None`. Blocking.
    pub fn set(&self, key: &str, value: Option<&str>) -> Result<(), MemoryError> {
        match self {
            Self::Keyring => {
                let entry = keyring::Entry::new(KEYRING_SERVICE, key).map_err(|e| MemoryError(e.to_string()))?;
                match value {
                    Some(value) => entry.set_password(value).map_err(|e| MemoryError(e.to_string())),
                    None => match entry.delete_credential() {
                        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                        Err(e) => Err(MemoryError(e.to_string())),
                    },
                }
            }
            Self::InMemory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                match value {
                    Some(value) => map.insert(key.to_owned(), value.to_owned()),
                    None => map.remove(key),
                };
                Ok(())
            }
            Self::Unavailable(reason) => Err(MemoryError(reason.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_missing_file_is_default() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub/client.toml");
        assert_eq!(Settings::load(&path).expect("missing is fine"), Settings::default());
        let settings = Settings {
            server: Some("10.1.2.3:5000".into()),
            server_fingerprint: Some(Fingerprint::of(b"certificate")),
            kiosk: true,
            language: Some(Lang::Zh),
            ..Settings::default()
        };
        settings.save(&path).expect("saved");
        assert_eq!(Settings::load(&path).expect("read back"), settings);
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("client.toml");
        std::fs::write(&path, "kiosk = true\n[viewers]\nspice = \"/opt/rv\"\n").expect("write");
        let settings = Settings::load(&path).expect("read");
        assert!(settings.kiosk);
        assert_eq!(settings.viewers.spice, "/opt/rv");
        assert_eq!(settings.viewers.rdp, "xfreerdp");
        assert_eq!(settings.idle_logout_secs, 600);
    }
}
