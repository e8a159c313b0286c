//! The server's TLS identity: a certificate authority and server certificate made on
//! first start (or the school's own, imported), kept in `DATA_DIR/tls/`, and reloaded
//! by the running server whenever the files change.
//!
//! | file | what |
//! | --- | --- |
//! | `server-cert.pem` | the server certificate, then any intermediates |
//! | `server-key.pem` (0600) | its private key |
//! | `ca-cert.pem` | the authority terminals and viewers trust |
//! | `ca-key.pem` (0600) | the generated authority's key (absent for an imported one) |
//!
//! The names are QEMU's: the QEMU driver copies the authority, certificate and key
//! into each machine it starts, as SPICE's `x509-dir` (displays speak TLS only, with
//! this certificate; `ca-key.pem` stays here). Terminals pin
//! the SHA-256 fingerprint of `server-cert.pem`'s first certificate, which
//! `thindesk-server tls show` prints; so the generated certificate is long-lived and
//! never renewed behind the administrator's back.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

pub const SERVER_CERT: &str = "server-cert.pem";
pub const SERVER_KEY: &str = "server-key.pem";
pub const CA_CERT: &str = "ca-cert.pem";
const CA_KEY: &str = "ca-key.pem";
/// How long generated certificates are valid: terminals pin the server certificate,
/// so it must not expire under them in a school's lifetime of a machine.
const VALID_DAYS: i64 = 20 * 365;
/// The running server looks at the files at most this often.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{} holds no {what} in PEM form", path.display())]
    Missing { what: &'static str, path: PathBuf },
    #[error("{} is not a certificate this server can use: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("the private key does not belong to the certificate, or cannot be used: {0}")]
    BadKey(String),
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// What the server presents, as an administrator and a terminal see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// SHA-256 of the server certificate (DER), as `AB:CD:…`: what terminals pin.
    pub fingerprint: String,
    /// The same of the authority's certificate, when `ca-cert.pem` holds one.
    pub ca_fingerprint: Option<String>,
    /// The server certificate's subject in the form viewers' `host-subject` takes
    /// (`CN=…,O=thindesk`, in the certificate's order).
    pub subject: String,
    /// The names and addresses the certificate is valid for.
    pub names: Vec<String>,
    pub not_after: String,
}

/// `DATA_DIR/tls`.
pub fn directory(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// The identity in `dir`, made first if there is none: an authority named after
/// this host, and a server certificate it signs for `names` (the public address,
/// the host's name, loopback).
pub fn ensure(dir: &Path, names: &[String]) -> Result<Identity, TlsError> {
    if !dir.join(SERVER_CERT).is_file() || !dir.join(SERVER_KEY).is_file() {
        generate(dir, names)?;
    }
    let identity = show(dir)?;
    let missing: Vec<&String> = names.iter().filter(|name| !identity.names.contains(name)).collect();
    if !missing.is_empty() {
        tracing::warn!(
            ?missing,
            "the server certificate does not name every address terminals may use; they pin its fingerprint, \
             but viewers checking names will refuse it (thindesk-server tls import installs another)"
        );
    }
    Ok(identity)
}

fn generate(dir: &Path, names: &[String]) -> Result<(), TlsError> {
    create_private_dir(dir)?;
    let now = time::OffsetDateTime::now_utc();
    let host = host_name();

    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(rcgen::DnType::OrganizationName, "thindesk");
    ca.distinguished_name.push(rcgen::DnType::CommonName, format!("thindesk authority of {host}"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(VALID_DAYS);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key)?;

    let server_key = rcgen::KeyPair::generate()?;
    let mut server = rcgen::CertificateParams::new(names.to_vec())?;
    server.distinguished_name.push(rcgen::DnType::OrganizationName, "thindesk");
    server.distinguished_name.push(rcgen::DnType::CommonName, format!("thindesk server {host}"));
    server.is_ca = rcgen::IsCa::ExplicitNoCa;
    server.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
    server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = now - time::Duration::days(1);
    server.not_after = now + time::Duration::days(VALID_DAYS);
    let server_cert = server.signed_by(&server_key, &ca)?;

    // Keys first and the certificate last: a crash in between leaves no certificate,
    // so the next start makes all of them again.
    write_private(&dir.join(CA_KEY), ca.key().serialize_pem().as_bytes())?;
    write_public(&dir.join(CA_CERT), ca.pem().as_bytes())?;
    write_private(&dir.join(SERVER_KEY), server_key.serialize_pem().as_bytes())?;
    write_public(&dir.join(SERVER_CERT), format!("{}{}", server_cert.pem(), ca.pem()).as_bytes())?;
    tracing::info!(dir = %dir.display(), "made this server's certificate authority and certificate");
    Ok(())
}

/// Installs the school's own certificate (`cert`: the server certificate, then any
/// intermediates) and key, after checking that they belong together; `ca`, when
/// given, becomes `ca-cert.pem`, else the chain's last certificate does. The
/// running server picks them up within seconds.
pub fn import(dir: &Path, cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Identity, TlsError> {
    let chain = read_chain(cert)?;
    let private_key = read_key(key)?;
    certified(chain.clone(), private_key.clone_key())?;
    describe(&chain[0], cert)?;
    let ca_pem = match ca {
        Some(path) => {
            let authority = read_chain(path)?;
            pem_of(&authority[..1])
        }
        None => pem_of(&chain[chain.len() - 1..]),
    };
    create_private_dir(dir)?;
    write_public(&dir.join(CA_CERT), ca_pem.as_bytes())?;
    let _ = std::fs::remove_file(dir.join(CA_KEY));
    let key_pem = std::fs::read(key).map_err(|source| TlsError::Io { what: "reading", path: key.into(), source })?;
    write_private(&dir.join(SERVER_KEY), &key_pem)?;
    write_public(&dir.join(SERVER_CERT), pem_of(&chain).as_bytes())?;
    Ok(load(dir)?.1)
}

/// Reads the identity in `dir` without changing anything.
pub fn show(dir: &Path) -> Result<Identity, TlsError> {
    Ok(load(dir)?.1)
}

/// SHA-256 of a certificate, as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The TLS settings the server accepts connections with: HTTP/1.1 (hyper's h2 sends
/// bodies with answers to HEAD, which clients take for a protocol error) and the
/// certificate in `dir` as it is now, reloaded when its files change.
pub fn server_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let resolver = Reloading::new(dir)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::BadKey(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate in force, and when its files last changed.
#[derive(Debug)]
struct Reloading {
    dir: PathBuf,
    current: RwLock<(Option<SystemTime>, Arc<CertifiedKey>)>,
    last_check: Mutex<Instant>,
}

impl Reloading {
    fn new(dir: &Path) -> Result<Self, TlsError> {
        let stamp = modified(dir);
        let (key, _) = load(dir)?;
        Ok(Self { dir: dir.to_owned(), current: RwLock::new((stamp, key)), last_check: Mutex::new(Instant::now()) })
    }

    /// Loads the files again if they changed since the last look; a broken new pair
    /// is logged and the old one stays in force.
    fn refresh(&self) {
        {
            let mut last = self.last_check.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < RELOAD_CHECK {
                return;
            }
            *last = Instant::now();
        }
        let stamp = modified(&self.dir);
        let seen = self.current.read().map(|current| current.0).unwrap_or(None);
        if stamp == seen {
            return;
        }
        match load(&self.dir) {
            Ok((key, identity)) => {
                if let Ok(mut current) = self.current.write() {
                    *current = (stamp, key);
                }
                tracing::info!(fingerprint = %identity.fingerprint, "server certificate reloaded");
            }
            Err(error) => tracing::error!(%error, "the new server certificate cannot be used; keeping the old one"),
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        self.current.read().ok().map(|current| current.1.clone())
    }
}

/// The later of the two files' modification times.
fn modified(dir: &Path) -> Option<SystemTime> {
    [SERVER_CERT, SERVER_KEY]
        .iter()
        .filter_map(|file| std::fs::metadata(dir.join(file)).and_then(|m| m.modified()).ok())
        .max()
}

fn load(dir: &Path) -> Result<(Arc<CertifiedKey>, Identity), TlsError> {
    let cert_path = dir.join(SERVER_CERT);
    let chain = read_chain(&cert_path)?;
    let key = certified(chain.clone(), read_key(&dir.join(SERVER_KEY))?)?;
    let mut identity = describe(&chain[0], &cert_path)?;
    identity.ca_fingerprint =
        read_chain(&dir.join(CA_CERT)).ok().and_then(|ca| ca.first().map(|c| fingerprint(c.as_ref())));
    Ok((Arc::new(key), identity))
}

fn certified(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::BadKey(e.to_string()))
}

fn describe(cert: &CertificateDer<'_>, path: &Path) -> Result<Identity, TlsError> {
    let bad = |reason: String| TlsError::BadCertificate { path: path.to_owned(), reason };
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| bad(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(alternatives)) = parsed.subject_alternative_name() {
        for name in &alternatives.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let address = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    names.extend(address.map(|a| a.to_string()));
                }
                _ => {}
            }
        }
    }
    // Viewers compare `host-subject` with the subject as "C=..,O=..,CN=..", in
    // the order the certificate lists them, every attribute (spice-gtk checks that
    // the counts match), a `,` or `\` in a value escaped with `\`; an attribute
    // without a short name by its dotted OID, which OpenSSL also reads.
    let subject = parsed
        .subject()
        .iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .map(|attribute| {
            let oid = attribute.attr_type().to_id_string();
            let key = match oid.as_str() {
                "2.5.4.6" => "C",
                "2.5.4.8" => "ST",
                "2.5.4.7" => "L",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.3" => "CN",
                other => other,
            };
            let value = attribute.as_str().unwrap_or_default().replace('\\', "\\\\").replace(',', "\\,");
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok(Identity {
        fingerprint: fingerprint(cert.as_ref()),
        ca_fingerprint: None,
        subject,
        names,
        not_after: parsed.validity().not_after.to_string(),
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = std::fs::read(path).map_err(|source| TlsError::Io { what: "reading", path: path.into(), source })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsError::Missing { what: "certificate", path: path.into() });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = std::fs::read(path).map_err(|source| TlsError::Io { what: "reading", path: path.into(), source })?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|_| TlsError::Missing { what: "private key", path: path.into() })
}

fn pem_of(chain: &[CertificateDer<'_>]) -> String {
    use base64::Engine;
    let mut text = String::new();
    for cert in chain {
        text.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            text.push_str(&String::from_utf8_lossy(line));
            text.push('\n');
        }
        text.push_str("-----END CERTIFICATE-----\n");
    }
    text
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The names a generated certificate carries: the public address, this host's name,
/// its addresses now, and loopback.
pub fn default_names(public_address: &str) -> Vec<String> {
    let mut names = vec![public_address.to_owned(), host_name(), "localhost".into(), "127.0.0.1".into(), "::1".into()];
    let addresses = if_addrs::get_if_addrs().unwrap_or_default();
    names.extend(addresses.iter().filter(|a| !a.is_loopback() && !a.is_link_local()).map(|a| a.ip().to_string()));
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| !name.is_empty() && seen.insert(name.clone()));
    names
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |source| TlsError::Io { what: "creating", path: dir.into(), source };
    std::fs::create_dir_all(dir).map_err(failed)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    write_atomically(path, bytes, 0o600)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    write_atomically(path, bytes, 0o644)
}

/// A reader (the running server, QEMU) sees the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |source| TlsError::Io { what: "writing", path: path.into(), source };
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&partial)
        .map_err(failed)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(failed)?;
    std::fs::rename(&partial, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names() -> Vec<String> {
        vec!["school.example".into(), "127.0.0.1".into()]
    }

    #[test]
    fn the_first_start_makes_an_authority_and_a_certificate_that_later_starts_keep() {
        let dir = tempfile::tempdir().expect("dir");
        let tls = dir.path().join("tls");
        let first = ensure(&tls, &names()).expect("made");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1, "{}", first.fingerprint);
        assert!(first.names.contains(&"school.example".to_owned()) && first.names.contains(&"127.0.0.1".to_owned()));
        let parts: Vec<&str> = first.subject.split(',').collect();
        assert!(
            parts.contains(&"O=thindesk") && parts.iter().any(|p| p.starts_with("CN=thindesk server ")),
            "{parts:?}"
        );
        assert!(first.ca_fingerprint.is_some());
        for (file, mode) in [(SERVER_KEY, 0o600), (CA_KEY, 0o600), (SERVER_CERT, 0o644), (CA_CERT, 0o644)] {
            let found = std::fs::metadata(tls.join(file)).expect(file).permissions().mode() & 0o777;
            assert_eq!(found, mode, "{file}");
        }
        assert_eq!(std::fs::metadata(&tls).expect("dir").permissions().mode() & 0o777, 0o700);
        assert_eq!(ensure(&tls, &names()).expect("kept"), first, "a restart keeps the pinned certificate");
    }

    #[test]
    fn an_imported_certificate_must_match_its_key_and_replaces_the_generated_one() {
        let dir = tempfile::tempdir().expect("dir");
        let tls = dir.path().join("tls");
        let generated = ensure(&tls, &names()).expect("made");
        let other = rcgen::generate_simple_self_signed(vec!["desk.school.example".to_owned()]).expect("cert");
        let (cert, key, wrong_key) = (dir.path().join("c.pem"), dir.path().join("k.pem"), dir.path().join("w.pem"));
        std::fs::write(&cert, other.cert.pem()).expect("write");
        std::fs::write(&key, other.signing_key.serialize_pem()).expect("write");
        std::fs::write(&wrong_key, rcgen::KeyPair::generate().expect("key").serialize_pem()).expect("write");

        assert!(matches!(import(&tls, &cert, &wrong_key, None), Err(TlsError::BadKey(_))));
        assert!(matches!(import(&tls, &key, &key, None), Err(TlsError::Missing { what: "certificate", .. })));
        assert_eq!(show(&tls).expect("show"), generated, "a refused import changes nothing");

        let imported = import(&tls, &cert, &key, None).expect("import");
        assert_eq!(imported.fingerprint, fingerprint(other.cert.der()));
        assert_eq!(imported.names, ["desk.school.example"]);
        assert!(!tls.join(CA_KEY).exists(), "the generated authority's key is gone with it");
    }

    #[test]
    fn the_subject_names_every_attribute_as_viewers_parse_it() {
        let mut params = rcgen::CertificateParams::new(vec!["desk.school.example".to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CountryName, "CN");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "No. 1 School, Beijing");
        params.distinguished_name.push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]), "42");
        params.distinguished_name.push(rcgen::DnType::CommonName, "desk\\lab");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let identity = describe(cert.der(), Path::new("c.pem")).expect("describe");
        assert_eq!(identity.subject, "C=CN,O=No. 1 School\\, Beijing,2.5.4.5=42,CN=desk\\\\lab");
    }

    #[test]
    fn the_running_server_picks_up_a_new_certificate() {
        let dir = tempfile::tempdir().expect("dir");
        let tls = dir.path().join("tls");
        ensure(&tls, &names()).expect("made");
        let resolver = Reloading::new(&tls).expect("resolver");
        let before = resolver.current.read().expect("lock").1.cert[0].clone();
        let other = rcgen::generate_simple_self_signed(vec!["new.example".to_owned()]).expect("cert");
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, other.cert.pem()).expect("write");
        std::fs::write(&key, other.signing_key.serialize_pem()).expect("write");
        import(&tls, &cert, &key, None).expect("import");
        *resolver.last_check.lock().expect("lock") = Instant::now() - RELOAD_CHECK;
        resolver.refresh();
        let after = resolver.current.read().expect("lock").1.cert[0].clone();
        assert_ne!(after, before);
        assert_eq!(after.as_ref(), other.cert.der().as_ref());
    }
}
