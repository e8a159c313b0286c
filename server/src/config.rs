//! Server configuration: built-in defaults, then a TOML file, then environment
//! variables, then command-line flags, each overriding the one before.

/// A setting's type may come from the driver it configures; the driver never reads
/// the configuration (the composition root, `app.rs`, hands it its settings).
pub use crate::compute::qemu::Accel;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:5000";
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 2 * 60 * 60;
/// Looked for when no `--config` is given.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/thindesk/server.toml";
/// Who may call the cloud API unless configured otherwise: this host only.
pub const DEFAULT_CLOUD_API_ALLOW: [&str; 2] = ["127.0.0.0/8", "::1/128"];
/// A shorter cloud API key would be guessable.
pub const MIN_CLOUD_API_KEY_CHARS: usize = 16;

/// The cloud API's key: a secret, never printed.
pub use thindesk_shared::Secret as ApiKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the HTTP server listens. The seed's port is 5000.
    pub listen: SocketAddr,
    /// Holds the database; created with owner-only permissions.
    pub data_dir: PathBuf,
    /// The host name or address terminals use to reach desktops on this host. When
    /// unset: the listen address if it is a specific one, else 127.0.0.1.
    pub public_address: Option<String>,
    /// How long a token lives.
    pub token_ttl: Duration,
    /// The secret a cloud API caller must present (form field `api_key` or header
    /// `X-Api-Key`) besides coming from an allowed address. `None`: the address decides.
    pub cloud_api_key: Option<ApiKey>,
    /// Addresses and networks allowed to call the cloud API.
    pub cloud_api_allow: Vec<IpNet>,
    /// What runs the desktops and exam machines.
    pub hypervisor: Hypervisor,
    /// `kvm`, `tcg`, or `auto` (KVM when `/dev/kvm` is usable).
    pub accel: Accel,
    /// The host address that SPICE and forwarded RDP ports listen on.
    pub display_address: IpAddr,
    /// SPICE ports, one per running machine.
    pub spice_ports: RangeInclusive<u16>,
    /// Host ports forwarded to guests' RDP port.
    pub rdp_ports: RangeInclusive<u16>,
    /// Memory all machines together may have; `None`: the host's less 1 GiB.
    pub vm_memory_mib: Option<u64>,
    /// How long a guest has to power off before it is stopped by force.
    pub shutdown_timeout: Duration,
    /// Mark the console's cookies `Secure` (set when a TLS proxy serves the console;
    /// a request with `X-Forwarded-Proto: https` gets them anyway).
    pub console_secure_cookies: bool,
    /// How long a client may take to send a request's headers, and how long an idle
    /// kept-alive connection stays open: past it the connection is closed.
    pub header_read_timeout: Duration,
    /// Open connections at the most. Past `max_connections - LOOPBACK_RESERVE` only
    /// loopback callers (the host's administrator, the exam system) get in; the rest
    /// get a 503.
    pub max_connections: usize,
    /// Threads that hash passwords (Argon2id, 19 MiB each, allocated once). Default:
    /// one per core.
    pub hash_workers: usize,
    /// Password checks that may wait for a hashing thread (default 2048); past it a
    /// login is answered 503 with `Retry-After` at once.
    pub hash_queue: usize,
    /// How long a password check may wait for a hashing thread (default 30 s); past
    /// it, 503 with `Retry-After`.
    pub hash_queue_deadline: Duration,
    /// How long desktop listings may show a machine's last known state and display
    /// instead of asking the hypervisor again (default 2 s; 0 asks every time). A
    /// user's own power action is never hidden by it.
    pub desktop_status_ttl: Duration,
    /// Let a password change be authenticated by a token alone, as the contract's
    /// credential forms (and seed-era clients) allow. On by default; off, the caller
    /// must prove the current password (Basic credentials), so nobody at a terminal
    /// left signed in can change it. The thindesk client always proves it.
    pub password_change_by_token: bool,
    /// Who may send credentials in plain HTTP: `loopback` (the default: anyone else
    /// gets 426 and must use HTTPS on the same port) or `allow`.
    pub plain_http: PlainHttp,
    /// The `[openstack]` table: where the OpenStack driver keeps its machines. Needed
    /// with `hypervisor = "openstack"`.
    pub openstack: Option<OpenStackSettings>,
}

/// The `[openstack]` table of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenStackSettings {
    /// A clouds.yaml-style file holding the credentials; it must be readable by its
    /// owner only (the server refuses it otherwise).
    pub clouds_file: PathBuf,
    /// Which cloud of the file.
    pub cloud: String,
    /// The network of machines with `internet = true` (routed outside).
    #[serde(default = "OpenStackSettings::default_internet_network")]
    pub internet_network: String,
    /// The network of machines with `internet = false` (no router).
    #[serde(default = "OpenStackSettings::default_isolated_network")]
    pub isolated_network: String,
    /// The security group of machines with `internet = false` (no rules: nothing
    /// in or out).
    #[serde(default = "OpenStackSettings::default_isolated_security_group")]
    pub isolated_security_group: String,
    /// Seconds to wait for Nova to finish an operation.
    #[serde(default = "OpenStackSettings::default_deadline_secs")]
    pub deadline_secs: u64,
}

impl OpenStackSettings {
    fn default_internet_network() -> String {
        "thindesk-internet".to_owned()
    }
    fn default_isolated_network() -> String {
        "thindesk-isolated".to_owned()
    }
    fn default_isolated_security_group() -> String {
        "thindesk-isolated".to_owned()
    }
    fn default_deadline_secs() -> u64 {
        300
    }
}

/// Whether credentials are taken in plain HTTP (CONTRACT.md, "Encryption in transit").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlainHttp {
    /// Only from loopback (seed-era callers on the host itself).
    #[default]
    Loopback,
    /// From anywhere: for a network where TLS is done in front of the server.
    Allow,
}

/// Connections kept for loopback callers when the rest are full.
pub const LOOPBACK_RESERVE: usize = 32;

/// The compute driver a server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hypervisor {
    /// Local QEMU/KVM processes.
    Qemu,
    /// No machines: desktops are listed, power actions answer 503.
    None,
    /// Nova servers of an OpenStack cloud (the `[openstack]` table says which).
    #[serde(rename = "openstack")]
    OpenStack,
}

impl std::str::FromStr for Hypervisor {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "qemu" => Ok(Self::Qemu),
            "none" => Ok(Self::None),
            "openstack" => Ok(Self::OpenStack),
            other => Err(format!("unknown hypervisor {other:?}; expected qemu, openstack or none")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            data_dir: default_data_dir(),
            public_address: None,
            token_ttl: Duration::from_secs(DEFAULT_TOKEN_TTL_SECS),
            cloud_api_key: None,
            cloud_api_allow: default_cloud_api_allow(),
            hypervisor: Hypervisor::Qemu,
            accel: Accel::Auto,
            display_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            spice_ports: 5900..=5999,
            rdp_ports: 33890..=33989,
            vm_memory_mib: None,
            shutdown_timeout: Duration::from_secs(60),
            console_secure_cookies: false,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            hash_workers: crate::service::hashing::default_workers(),
            hash_queue: crate::service::hashing::DEFAULT_HASH_QUEUE,
            hash_queue_deadline: crate::service::hashing::DEFAULT_HASH_DEADLINE,
            desktop_status_ttl: crate::service::status::DEFAULT_STATUS_TTL,
            password_change_by_token: true,
            plain_http: PlainHttp::Loopback,
            openstack: None,
        }
    }
}

pub fn default_cloud_api_allow() -> Vec<IpNet> {
    DEFAULT_CLOUD_API_ALLOW.iter().filter_map(|net| net.parse().ok()).collect()
}

/// A network (`10.1.0.0/16`, `fd00::/8`) or a single address (`10.1.2.3`).
pub fn parse_network(text: &str) -> Result<IpNet, ConfigError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| ConfigError::CloudApiAllow(text.to_owned()))
}

/// The TOML file's shape. Every key is optional; unknown keys are an error, so a
/// misspelt setting does not silently fall back to its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    public_address: Option<String>,
    /// Seconds.
    token_ttl: Option<u64>,
    cloud_api_key: Option<String>,
    cloud_api_allow: Option<Vec<String>>,
    hypervisor: Option<Hypervisor>,
    accel: Option<Accel>,
    display_address: Option<IpAddr>,
    /// `"5900-5999"`.
    spice_ports: Option<String>,
    rdp_ports: Option<String>,
    vm_memory_mib: Option<u64>,
    /// Seconds.
    shutdown_timeout: Option<u64>,
    console_secure_cookies: Option<bool>,
    header_read_timeout: Option<u64>,
    max_connections: Option<usize>,
    /// 0: one per core.
    hash_workers: Option<usize>,
    hash_queue: Option<usize>,
    /// Seconds.
    hash_queue_deadline: Option<u64>,
    /// Milliseconds.
    desktop_status_ttl_ms: Option<u64>,
    password_change_by_token: Option<bool>,
    plain_http: Option<PlainHttp>,
    openstack: Option<OpenStackSettings>,
}

/// Values from the environment or flags; `None` leaves the file's or default value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub public_address: Option<String>,
    pub token_ttl_secs: Option<u64>,
    pub cloud_api_key: Option<ApiKey>,
    /// Networks or addresses, as in the file.
    pub cloud_api_allow: Option<Vec<String>>,
    pub hypervisor: Option<Hypervisor>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the configuration file {path} is not valid: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("token_ttl must be between 60 seconds and 30 days, not {0} s")]
    TokenTtl(u64),
    #[error("cloud_api_allow: {0:?} is neither a network (10.1.0.0/16) nor an address (10.1.2.3)")]
    CloudApiAllow(String),
    #[error("cloud_api_key must be at least {MIN_CLOUD_API_KEY_CHARS} characters long")]
    CloudApiKeyTooShort,
    #[error("{key} must be a port range like \"5900-5999\", not {value:?}")]
    PortRange { key: &'static str, value: String },
    #[error("spice_ports and rdp_ports must not overlap")]
    OverlappingPorts,
    #[error("hypervisor = \"openstack\" needs an [openstack] table with clouds_file and cloud")]
    OpenStackMissing,
}

impl Config {
    /// Reads `file` (or the system file if it exists and `file` is `None`), then
    /// applies `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let system = Path::new(SYSTEM_CONFIG_FILE);
        let file = file.or_else(|| system.exists().then_some(system));
        let parsed = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                toml::from_str::<ConfigFile>(&text)
                    .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })?
            }
            None => ConfigFile::default(),
        };
        let defaults = Config::default();
        let token_ttl_secs = overrides.token_ttl_secs.or(parsed.token_ttl).unwrap_or(DEFAULT_TOKEN_TTL_SECS);
        let cloud_api_allow = match overrides.cloud_api_allow.clone().or(parsed.cloud_api_allow) {
            Some(list) => list.iter().map(|net| parse_network(net)).collect::<Result<_, _>>()?,
            None => defaults.cloud_api_allow,
        };
        let port_range = |key, value: Option<String>, default| match value {
            Some(text) => parse_port_range(&text).ok_or(ConfigError::PortRange { key, value: text }),
            None => Ok(default),
        };
        Config {
            listen: overrides.listen.or(parsed.listen).unwrap_or(defaults.listen),
            data_dir: overrides.data_dir.clone().or(parsed.data_dir).unwrap_or(defaults.data_dir),
            public_address: overrides.public_address.clone().or(parsed.public_address),
            token_ttl: Duration::from_secs(token_ttl_secs),
            cloud_api_key: overrides.cloud_api_key.clone().or(parsed.cloud_api_key.map(ApiKey::new)),
            cloud_api_allow,
            hypervisor: overrides.hypervisor.or(parsed.hypervisor).unwrap_or(defaults.hypervisor),
            accel: parsed.accel.unwrap_or(defaults.accel),
            display_address: parsed.display_address.unwrap_or(defaults.display_address),
            spice_ports: port_range("spice_ports", parsed.spice_ports, defaults.spice_ports)?,
            rdp_ports: port_range("rdp_ports", parsed.rdp_ports, defaults.rdp_ports)?,
            vm_memory_mib: parsed.vm_memory_mib.or(defaults.vm_memory_mib),
            shutdown_timeout: parsed.shutdown_timeout.map_or(defaults.shutdown_timeout, Duration::from_secs),
            console_secure_cookies: parsed.console_secure_cookies.unwrap_or(defaults.console_secure_cookies),
            header_read_timeout: parsed
                .header_read_timeout
                .map_or(defaults.header_read_timeout, |secs| Duration::from_secs(secs.max(1))),
            max_connections: parsed.max_connections.unwrap_or(defaults.max_connections).max(LOOPBACK_RESERVE + 1),
            hash_workers: parsed.hash_workers.filter(|n| *n > 0).unwrap_or(defaults.hash_workers),
            hash_queue: parsed.hash_queue.unwrap_or(defaults.hash_queue),
            hash_queue_deadline: parsed
                .hash_queue_deadline
                .map_or(defaults.hash_queue_deadline, |secs| Duration::from_secs(secs.max(1))),
            desktop_status_ttl: parsed.desktop_status_ttl_ms.map_or(defaults.desktop_status_ttl, Duration::from_millis),
            password_change_by_token: parsed.password_change_by_token.unwrap_or(defaults.password_change_by_token),
            plain_http: parsed.plain_http.unwrap_or(defaults.plain_http),
            openstack: parsed.openstack,
        }
        .checked()
    }

    /// Refuses values that would make the server unsafe or useless. Tests may build a
    /// `Config` directly to use a shorter TTL.
    fn checked(self) -> Result<Self, ConfigError> {
        let secs = self.token_ttl.as_secs();
        if !(60..=30 * 24 * 3600).contains(&secs) {
            return Err(ConfigError::TokenTtl(secs));
        }
        if self.cloud_api_key.as_ref().is_some_and(|key| key.expose().chars().count() < MIN_CLOUD_API_KEY_CHARS) {
            return Err(ConfigError::CloudApiKeyTooShort);
        }
        let (spice, rdp) = (&self.spice_ports, &self.rdp_ports);
        if spice.start() <= rdp.end() && rdp.start() <= spice.end() {
            return Err(ConfigError::OverlappingPorts);
        }
        if self.hypervisor == Hypervisor::OpenStack && self.openstack.is_none() {
            return Err(ConfigError::OpenStackMissing);
        }
        Ok(self)
    }

    /// The password hashing pool's shape.
    pub fn hashing(&self) -> crate::service::HashPoolSettings {
        crate::service::HashPoolSettings {
            workers: self.hash_workers,
            queue: self.hash_queue,
            deadline: self.hash_queue_deadline,
        }
    }

    pub fn public_address(&self) -> String {
        match &self.public_address {
            Some(address) => address.clone(),
            None if !self.listen.ip().is_unspecified() => self.listen.ip().to_string(),
            None => "127.0.0.1".to_owned(),
        }
    }
}

/// `"5900-5999"` (both ends included, first not after last, no port 0).
fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let (first, last) = text.split_once('-')?;
    let (first, last): (u16, u16) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first > 0 && first <= last).then_some(first..=last)
}

/// `$XDG_DATA_HOME/thindesk`, else `~/.local/share/thindesk`, else `./thindesk-data`.
/// A packaged install sets `data_dir = "/var/lib/thindesk"` in its file.
fn default_data_dir() -> PathBuf {
    if let Some(data_home) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(data_home).join("thindesk");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/thindesk");
    }
    PathBuf::from("thindesk-data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:6000\"\ntoken_ttl = 600\npublic_address = \"lab.example\"\n")
            .expect("write");
        let config = Config::load(Some(&file), &Overrides::default()).expect("load");
        assert_eq!(config.listen, "127.0.0.1:6000".parse().expect("addr"));
        assert_eq!(config.token_ttl, Duration::from_secs(600));
        assert_eq!(config.public_address(), "lab.example");
        let overrides = Overrides { token_ttl_secs: Some(900), ..Overrides::default() };
        let config = Config::load(Some(&file), &overrides).expect("load");
        assert_eq!(config.token_ttl, Duration::from_secs(900));
    }

    #[test]
    fn the_openstack_driver_needs_its_table_and_gets_the_test_cloud_names_by_default() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "hypervisor = \"openstack\"\n").expect("write");
        assert!(matches!(Config::load(Some(&file), &Overrides::default()), Err(ConfigError::OpenStackMissing)));
        std::fs::write(
            &file,
            "hypervisor = \"openstack\"\n[openstack]\nclouds_file = \"/etc/thindesk/clouds.yaml\"\ncloud = \"campus\"\n\
             isolated_network = \"exam-net\"\n",
        )
        .expect("write");
        let config = Config::load(Some(&file), &Overrides::default()).expect("load");
        assert_eq!(config.hypervisor, Hypervisor::OpenStack);
        let openstack = config.openstack.expect("table");
        assert_eq!(openstack.cloud, "campus");
        assert_eq!(openstack.isolated_network, "exam-net");
        assert_eq!(openstack.internet_network, "thindesk-internet");
        assert_eq!(openstack.isolated_security_group, "thindesk-isolated");
        std::fs::write(&file, "[openstack]\nclouds_file = \"/x\"\ncloud = \"c\"\nnetwork = \"n\"\n").expect("write");
        assert!(matches!(Config::load(Some(&file), &Overrides::default()), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn misspelt_keys_and_silly_ttls_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "listn = \"127.0.0.1:6000\"\n").expect("write");
        assert!(matches!(Config::load(Some(&file), &Overrides::default()), Err(ConfigError::Parse { .. })));
        std::fs::write(&file, "token_ttl = 1\n").expect("write");
        assert!(matches!(Config::load(Some(&file), &Overrides::default()), Err(ConfigError::TokenTtl(1))));
    }

    #[test]
    fn the_cloud_api_is_loopback_only_unless_configured() {
        let config = Config::load(Some(Path::new("/dev/null")), &Overrides::default()).expect("load");
        assert_eq!(config.cloud_api_allow, default_cloud_api_allow());
        assert_eq!(config.cloud_api_allow.len(), 2);
        assert_eq!(config.cloud_api_key, None);

        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("server.toml");
        std::fs::write(
            &file,
            "cloud_api_key = \"a-long-enough-secret\"\ncloud_api_allow = [\"10.1.0.0/16\", \"192.0.2.7\"]\n",
        )
        .expect("write");
        let config = Config::load(Some(&file), &Overrides::default()).expect("load");
        assert_eq!(config.cloud_api_key.as_ref().map(ApiKey::expose), Some("a-long-enough-secret"));
        assert_eq!(
            config.cloud_api_allow,
            [parse_network("10.1.0.0/16").expect("net"), parse_network("192.0.2.7/32").expect("net")]
        );
        assert!(!format!("{config:?}").contains("a-long-enough-secret"), "the key never reaches a log");

        let overrides = Overrides {
            cloud_api_key: Some(ApiKey::new("another-long-secret")),
            cloud_api_allow: Some(vec!["::1".into()]),
            ..Overrides::default()
        };
        let config = Config::load(Some(&file), &overrides).expect("load");
        assert_eq!(config.cloud_api_key.as_ref().map(ApiKey::expose), Some("another-long-secret"));
        assert_eq!(config.cloud_api_allow, [parse_network("::1/128").expect("net")]);

        std::fs::write(&file, "cloud_api_allow = [\"10.1.0.0/33\"]\n").expect("write");
        assert!(matches!(Config::load(Some(&file), &Overrides::default()), Err(ConfigError::CloudApiAllow(_))));
        std::fs::write(&file, "cloud_api_key = \"short\"\n").expect("write");
        assert!(matches!(Config::load(Some(&file), &Overrides::default()), Err(ConfigError::CloudApiKeyTooShort)));
    }

    #[test]
    fn compute_settings_come_from_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "accel = \"tcg\"\nspice_ports = \"6000-6009\"\nvm_memory_mib = 4096\n").expect("write");
        let config = Config::load(Some(&file), &Overrides::default()).expect("load");
        assert_eq!(config.accel, Accel::Tcg);
        assert_eq!(config.spice_ports, 6000..=6009);
        assert_eq!(config.vm_memory_mib, Some(4096));
        std::fs::write(
            &file,
            "hash_workers = 3\nhash_queue = 10\nhash_queue_deadline = 5\ndesktop_status_ttl_ms = 0\n",
        )
        .expect("write");
        let config = Config::load(Some(&file), &Overrides::default()).expect("load");
        let hashing = config.hashing();
        assert_eq!((hashing.workers, hashing.queue, hashing.deadline), (3, 10, Duration::from_secs(5)));
        assert_eq!(config.desktop_status_ttl, Duration::ZERO);
        for bad in ["spice_ports = \"6009-6000\"", "rdp_ports = \"0-10\"", "spice_ports = \"33900-33950\""] {
            std::fs::write(&file, bad).expect("write");
            assert!(Config::load(Some(&file), &Overrides::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_seeds_port_is_the_default() {
        assert_eq!(Config::default().listen.port(), 5000);
        assert_eq!(DEFAULT_LISTEN.parse::<SocketAddr>().ok(), Some(Config::default().listen));
    }
}
