//! Secrets and identifiers from the operating system's CSPRNG.

/// `len` random bytes, URL-safe base64 without padding: safe in paths, URLs and
/// QEMU option values.
pub(crate) fn number() -> u64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    // Below 2^53: exact as a JSON number whatever reads it.
    OsRng.next_u64() >> 11
}

pub(crate) fn token(len: usize) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    use base64::Engine;
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
