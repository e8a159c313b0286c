//! The server is known by the SHA-256 fingerprint of its certificate, not by a
//! certificate authority: a school's server has its own authority that no system
//! trusts, and a name in a certificate proves nothing on a LAN where any laptop can
//! answer for any address. The pin comes from the settings file (mass deployment) or
//! from the person at the terminal, who compares it with the console once.
//!
//! The check happens inside the TLS handshake, so a request to a server whose
//! certificate is not the pinned one never leaves the terminal: no password, no token.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};

/// SHA-256 of a certificate in DER form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

/// `AB:CD:…`, as `thindesk-server tls show` and the console print it.
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 fingerprint (64 hexadecimal digits, with or without colons): {0:?}")]
pub struct BadFingerprint(pub String);

/// Takes `AB:CD:…`, `ab cd …` or `abcd…`: however an administrator copied it.
impl std::str::FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b':' | b' ' | b'-')).collect();
        let bad = || BadFingerprint(text.to_owned());
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a server was not talked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// Nothing is pinned yet: the person at the terminal is asked to compare.
    FirstContact { presented: Fingerprint },
    /// Something else answers where the pinned server was. Never retried by itself.
    Changed { pinned: Fingerprint, presented: Fingerprint },
}

/// The pin, shared by every clone of a client: trusting the server at first contact
/// takes effect for all of them at once.
#[derive(Debug, Default)]
struct State {
    pinned: Option<Fingerprint>,
    /// The last certificate refused, for the error the caller gets.
    refused: Option<Untrusted>,
}

#[derive(Debug, Clone)]
pub struct Pin {
    state: Arc<Mutex<State>>,
}

impl Pin {
    pub fn new(pinned: Option<Fingerprint>) -> Self {
        Self { state: Arc::new(Mutex::new(State { pinned, refused: None })) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn pinned(&self) -> Option<Fingerprint> {
        self.state().pinned
    }

    /// Trusts `fingerprint` from now on (the person at the terminal compared it).
    pub fn trust(&self, fingerprint: Fingerprint) {
        let mut state = self.state();
        state.pinned = Some(fingerprint);
        state.refused = None;
    }

    /// What the last refused handshake presented, if the last handshake was refused.
    pub fn refused(&self) -> Option<Untrusted> {
        self.state().refused.clone()
    }

    fn check(&self, presented: Fingerprint) -> Result<(), Untrusted> {
        let mut state = self.state();
        let verdict = match state.pinned {
            Some(pinned) if pinned == presented => Ok(()),
            Some(pinned) => Err(Untrusted::Changed { pinned, presented }),
            None => Err(Untrusted::FirstContact { presented }),
        };
        state.refused = verdict.clone().err();
        verdict
    }

    /// TLS settings that accept the pinned certificate only. Signatures are still
    /// verified: the server must hold the certificate's key.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, rustls::Error> {
        // ring, the server's provider too: no second crypto library in the build.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = PinnedVerifier { pin: self.clone(), algorithms: provider.signature_verification_algorithms };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // The server speaks HTTP/1.1 over TLS only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        // The name and the dates are not checked: the pin names this one certificate,
        // whatever address the terminal uses and however long the school keeps it.
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin.check(Fingerprint::of(end_entity.as_ref())) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(_) => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_however_they_were_copied_and_print_as_the_server_does() {
        let colons = "AB:".repeat(31) + "CD";
        let parsed: Fingerprint = colons.parse().expect("colons");
        assert_eq!(parsed.to_string(), colons);
        assert_eq!(colons.replace(':', "").to_lowercase().parse::<Fingerprint>(), Ok(parsed));
        assert_eq!(colons.replace(':', " ").parse::<Fingerprint>(), Ok(parsed));
        assert!("AB:CD".parse::<Fingerprint>().is_err());
        assert!(("ZZ".repeat(32)).parse::<Fingerprint>().is_err());
        assert!(("é".repeat(32)).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn the_pin_decides_and_remembers_what_it_refused() {
        let (a, b) = (Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        let pin = Pin::new(None);
        assert_eq!(pin.check(a), Err(Untrusted::FirstContact { presented: a }));
        assert_eq!(pin.refused(), Some(Untrusted::FirstContact { presented: a }));
        pin.clone().trust(a);
        assert_eq!(pin.check(a), Ok(()));
        assert_eq!(pin.refused(), None);
        assert_eq!(pin.check(b), Err(Untrusted::Changed { pinned: a, presented: b }));
    }
}
