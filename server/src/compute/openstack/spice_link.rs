//! SPICE's link phase as the bridge sees it: the messages a viewer and a SPICE server
//! exchange before a channel carries anything, from spice-protocol's `protocol.h` and
//! `enums.h`. Every integer is little-endian; every message is a 16-byte
//! `SpiceLinkHeader` (magic `REDQ`, major 2, minor, size) and a body of `size` bytes.
//!
//! ```text
//! viewer → server  header, SpiceLinkMess { connection_id u32, channel_type u8,
//!                  channel_id u8, num_common_caps u32, num_channel_caps u32,
//!                  caps_offset u32 } then the caps (u32 each) at caps_offset
//! server → viewer  header, SpiceLinkReply { error u32, pub_key [162], num_common_caps,
//!                  num_channel_caps, caps_offset } then the caps
//! viewer → server  SpiceLinkAuthMechanism u32, only when both offered
//!                  SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION
//! viewer → server  the ticket (NUL-terminated), RSA-OAEP(SHA-1) with pub_key: 128 bytes
//! server → viewer  SpiceLinkResult u32 (SPICE_LINK_ERR_*)
//! ```
//!
//! Pure functions over bytes, so that the rewriting is tested with fixtures.

/// `SPICE_MAGIC`.
pub const MAGIC: &[u8; 4] = b"REDQ";
/// `SPICE_VERSION_MAJOR`: the only major version viewers and servers speak.
pub const MAJOR_VERSION: u32 = 2;
/// `SPICE_VERSION_MINOR`.
pub const MINOR_VERSION: u32 = 2;
pub const HEADER_LEN: usize = 16;
/// `SPICE_TICKET_PUBKEY_BYTES`: a DER SubjectPublicKeyInfo of an RSA-1024 key.
pub const PUBKEY_BYTES: usize = 162;
/// An RSA-1024 ciphertext: what every viewer sends as its ticket.
pub const ENCRYPTED_TICKET_BYTES: usize = 128;
/// `SPICE_MAX_PASSWORD_LENGTH`: the longest ticket a viewer can send.
pub const MAX_TICKET_BYTES: usize = 60;
/// Link messages are a few dozen bytes: spice-gtk's carry a handful of caps words. A
/// larger claim is a broken or hostile peer, refused before anything is allocated.
pub const MAX_BODY: usize = 4096;

/// `SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION`, bit 0 of the first common caps word.
const CAP_AUTH_SELECTION: u32 = 1 << 0;
/// `SPICE_COMMON_CAP_AUTH_SASL`.
const CAP_AUTH_SASL: u32 = 1 << 2;
/// `SPICE_COMMON_CAP_AUTH_SPICE`, also the value of the SPICE ticket mechanism in
/// `SpiceLinkAuthMechanism`.
pub const AUTH_SPICE: u32 = 1;

pub const LINK_ERR_OK: u32 = 0;
/// `SPICE_LINK_ERR_ERROR`: the bridge cannot reach the guest's display.
pub const LINK_ERR_ERROR: u32 = 1;
pub const LINK_ERR_INVALID_MAGIC: u32 = 2;
pub const LINK_ERR_INVALID_DATA: u32 = 3;
pub const LINK_ERR_VERSION_MISMATCH: u32 = 4;
pub const LINK_ERR_PERMISSION_DENIED: u32 = 7;

/// `SpiceLinkReply`: error u32, pub_key, three u32.
const REPLY_FIXED: usize = 4 + PUBKEY_BYTES + 12;
/// `SpiceLinkMess`: connection_id u32, two u8, three u32.
const MESS_FIXED: usize = 4 + 2 + 12;

/// What is wrong with a peer's link message, and the link error that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not SPICE (no REDQ magic)")]
    Magic,
    #[error("SPICE major version {0}, not 2")]
    Version(u32),
    #[error("a link message of {0} bytes")]
    Size(usize),
    #[error("a malformed link message: {0}")]
    Malformed(&'static str),
}

impl LinkError {
    /// The `SPICE_LINK_ERR_*` a SPICE server would answer with.
    pub fn code(&self) -> u32 {
        match self {
            LinkError::Magic => LINK_ERR_INVALID_MAGIC,
            LinkError::Version(_) => LINK_ERR_VERSION_MISMATCH,
            LinkError::Size(_) | LinkError::Malformed(_) => LINK_ERR_INVALID_DATA,
        }
    }
}

/// A `SpiceLinkHeader`: the size of the body that follows.
pub fn body_size(header: &[u8; HEADER_LEN]) -> Result<usize, LinkError> {
    if &header[..4] != MAGIC {
        return Err(LinkError::Magic);
    }
    let major = word(header, 4).ok_or(LinkError::Malformed("header"))?;
    if major != MAJOR_VERSION {
        return Err(LinkError::Version(major));
    }
    let size = word(header, 12).ok_or(LinkError::Malformed("header"))? as usize;
    if size > MAX_BODY {
        return Err(LinkError::Size(size));
    }
    Ok(size)
}

/// The header of a body of `size` bytes, as the bridge sends it.
pub fn header(size: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(MAGIC);
    header[4..8].copy_from_slice(&MAJOR_VERSION.to_le_bytes());
    header[8..12].copy_from_slice(&MINOR_VERSION.to_le_bytes());
    header[12..].copy_from_slice(&(size as u32).to_le_bytes());
    header
}

/// What the bridge needs of a viewer's `SpiceLinkMess`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMess {
    pub channel_type: u8,
    pub channel_id: u8,
    /// The first common caps word (0 when there is none).
    pub common_caps: u32,
}

impl LinkMess {
    /// Whether the viewer sends a `SpiceLinkAuthMechanism` when the server offers
    /// the selection too.
    pub fn selects_auth(&self) -> bool {
        self.common_caps & CAP_AUTH_SELECTION != 0
    }
}

/// Reads a `SpiceLinkMess` body, checking that its caps lie inside it.
pub fn parse_mess(body: &[u8]) -> Result<LinkMess, LinkError> {
    if body.len() < MESS_FIXED {
        return Err(LinkError::Malformed("link message shorter than SpiceLinkMess"));
    }
    let common = caps_words(body, 6, 10, 14)?;
    Ok(LinkMess { channel_type: body[4], channel_id: body[5], common_caps: common })
}

/// What the bridge needs of a SPICE server's `SpiceLinkReply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReply {
    pub error: u32,
    /// The server's RSA key, DER SubjectPublicKeyInfo.
    pub pub_key: Vec<u8>,
    pub common_caps: u32,
}

impl LinkReply {
    pub fn offers_auth_selection(&self) -> bool {
        self.common_caps & CAP_AUTH_SELECTION != 0
    }
}

/// Reads a `SpiceLinkReply` body. A reply with an error may be short of caps (a
/// server refusing at once sends zeros); only a successful one must be whole.
pub fn parse_reply(body: &[u8]) -> Result<LinkReply, LinkError> {
    let error = word(body, 0).ok_or(LinkError::Malformed("link reply shorter than its error"))?;
    if error != LINK_ERR_OK {
        return Ok(LinkReply { error, pub_key: Vec::new(), common_caps: 0 });
    }
    if body.len() < REPLY_FIXED {
        return Err(LinkError::Malformed("link reply shorter than SpiceLinkReply"));
    }
    let common = caps_words(body, 4 + PUBKEY_BYTES, 8 + PUBKEY_BYTES, 12 + PUBKEY_BYTES)?;
    Ok(LinkReply { error, pub_key: body[4..4 + PUBKEY_BYTES].to_vec(), common_caps: common })
}

/// The server's reply as the viewer gets it: the same caps and size, but the
/// bridge's key in place of the server's (the viewer's ticket is for the bridge to
/// read, and the server's ticket for the bridge to write), and no SASL offered (the
/// bridge checks SPICE tickets only; a SASL exchange would pass unchecked).
pub fn rewrite_reply(body: &[u8], bridge_key: &[u8]) -> Result<Vec<u8>, LinkError> {
    if bridge_key.len() != PUBKEY_BYTES {
        return Err(LinkError::Malformed("the bridge's key is not RSA-1024"));
    }
    let reply = parse_reply(body)?;
    if reply.error != LINK_ERR_OK {
        return Ok(body.to_vec());
    }
    let mut out = body.to_vec();
    out[4..4 + PUBKEY_BYTES].copy_from_slice(bridge_key);
    let common_count = word(body, 4 + PUBKEY_BYTES).unwrap_or(0);
    if common_count > 0 {
        let at = word(body, 12 + PUBKEY_BYTES).unwrap_or(0) as usize;
        let without_sasl = reply.common_caps & !CAP_AUTH_SASL;
        out[at..at + 4].copy_from_slice(&without_sasl.to_le_bytes());
    }
    Ok(out)
}

/// A whole link reply (header and body) that refuses with `code`, the way a SPICE
/// server does before any key: a `SpiceLinkReply` with only its error set.
pub fn refusal(code: u32) -> Vec<u8> {
    let mut message = header(REPLY_FIXED).to_vec();
    let mut body = [0u8; REPLY_FIXED];
    body[..4].copy_from_slice(&code.to_le_bytes());
    message.extend_from_slice(&body);
    message
}

/// The ticket a viewer encrypted: up to its NUL (spice-gtk sends `strlen + 1` bytes).
pub fn ticket_of(plain: &[u8]) -> &[u8] {
    plain.iter().position(|b| *b == 0).map_or(plain, |nul| &plain[..nul])
}

/// The first common caps word of a message whose counts and offset are at the
/// given positions, after checking that every caps word is inside `body`.
fn caps_words(body: &[u8], common_at: usize, channel_at: usize, offset_at: usize) -> Result<u32, LinkError> {
    let malformed = || LinkError::Malformed("caps outside the message");
    let common = word(body, common_at).ok_or_else(malformed)? as usize;
    let channel = word(body, channel_at).ok_or_else(malformed)? as usize;
    let offset = word(body, offset_at).ok_or_else(malformed)? as usize;
    // Each count is at most MAX_BODY / 4 once the end is checked, so no overflow.
    let end = common.checked_add(channel).and_then(|n| n.checked_mul(4)).and_then(|n| n.checked_add(offset));
    match end {
        Some(end) if end <= body.len() && offset >= offset_at + 4 => {}
        _ => return Err(malformed()),
    }
    Ok(if common > 0 { word(body, offset).ok_or_else(malformed)? } else { 0 })
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A main channel link as spice-gtk sends it: connection 0, main channel 0, one
    /// common caps word (auth selection, SPICE auth, mini header: 0b1011) and one
    /// channel caps word, right after the fixed part.
    const VIEWER_MAIN: [u8; 42] = [
        b'R', b'E', b'D', b'Q', 2, 0, 0, 0, 2, 0, 0, 0, 26, 0, 0, 0, // header: 26 bytes follow
        0, 0, 0, 0, 1, 0, // connection id, main channel, id 0
        1, 0, 0, 0, 1, 0, 0, 0, 18, 0, 0, 0, // 1 common, 1 channel, caps at 18
        0x0b, 0, 0, 0, 0x0f, 0, 0, 0, // the caps
    ];

    fn viewer_body() -> Vec<u8> {
        VIEWER_MAIN[HEADER_LEN..].to_vec()
    }

    /// A QEMU reply: no error, a key of 0x30-filled bytes, common caps with auth
    /// selection, SPICE, SASL and mini header (0b1111), one channel caps word.
    fn qemu_reply() -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0];
        body.extend([0x30u8; PUBKEY_BYTES]);
        body.extend(1u32.to_le_bytes());
        body.extend(1u32.to_le_bytes());
        body.extend(((REPLY_FIXED) as u32).to_le_bytes());
        body.extend(0x0fu32.to_le_bytes());
        body.extend(0x09u32.to_le_bytes());
        body
    }

    #[test]
    fn a_viewers_header_and_link_message_are_read() {
        let header: [u8; HEADER_LEN] = VIEWER_MAIN[..HEADER_LEN].try_into().expect("16 bytes");
        assert_eq!(body_size(&header), Ok(26));
        let mess = parse_mess(&viewer_body()).expect("parsed");
        assert_eq!(mess, LinkMess { channel_type: 1, channel_id: 0, common_caps: 0x0b });
        assert!(mess.selects_auth());
    }

    #[test]
    fn wrong_magic_version_or_size_are_refused_with_spices_codes() {
        let mut header = header(18);
        assert_eq!(body_size(&header), Ok(18));
        header[12..].copy_from_slice(&(MAX_BODY as u32 + 1).to_le_bytes());
        assert_eq!(body_size(&header).map_err(|e| e.code()), Err(LINK_ERR_INVALID_DATA));
        header[4] = 1;
        assert_eq!(body_size(&header), Err(LinkError::Version(1)));
        assert_eq!(body_size(b"GET / HTTP/1.1\r\n"), Err(LinkError::Magic));
        assert_eq!(LinkError::Magic.code(), LINK_ERR_INVALID_MAGIC);
    }

    #[test]
    fn caps_that_point_outside_the_message_are_refused() {
        let mut body = viewer_body();
        body[14] = 200; // caps offset past the end
        assert!(matches!(parse_mess(&body), Err(LinkError::Malformed(_))));
        let mut body = viewer_body();
        body[6..10].copy_from_slice(&u32::MAX.to_le_bytes()); // a count that would overflow
        assert!(matches!(parse_mess(&body), Err(LinkError::Malformed(_))));
        let mut body = viewer_body();
        body[14] = 2; // caps overlapping the fixed part
        assert!(matches!(parse_mess(&body), Err(LinkError::Malformed(_))));
        assert!(parse_mess(&body[..10]).is_err());
        // No caps at all: the oldest viewers.
        let mut bare = vec![0u8; MESS_FIXED];
        bare[4] = 2;
        bare[14] = MESS_FIXED as u8;
        assert_eq!(parse_mess(&bare), Ok(LinkMess { channel_type: 2, channel_id: 0, common_caps: 0 }));
    }

    #[test]
    fn the_reply_gets_the_bridges_key_and_loses_sasl_and_nothing_else() {
        let body = qemu_reply();
        let reply = parse_reply(&body).expect("parsed");
        assert_eq!(reply.error, LINK_ERR_OK);
        assert_eq!(reply.pub_key, vec![0x30u8; PUBKEY_BYTES]);
        assert!(reply.offers_auth_selection());
        let key = [0xabu8; PUBKEY_BYTES];
        let rewritten = rewrite_reply(&body, &key).expect("rewritten");
        assert_eq!(rewritten.len(), body.len(), "the header's size stays right");
        assert_eq!(&rewritten[..4], &body[..4]);
        assert_eq!(&rewritten[4..4 + PUBKEY_BYTES], &key);
        assert_eq!(&rewritten[4 + PUBKEY_BYTES..REPLY_FIXED], &body[4 + PUBKEY_BYTES..REPLY_FIXED]);
        assert_eq!(&rewritten[REPLY_FIXED..REPLY_FIXED + 4], &0x0bu32.to_le_bytes(), "SASL is not offered");
        assert_eq!(&rewritten[REPLY_FIXED + 4..], &0x09u32.to_le_bytes(), "channel caps unchanged");
        assert!(rewrite_reply(&body, &key[..100]).is_err());
    }

    #[test]
    fn a_refusing_reply_passes_as_it_is_and_the_bridges_own_is_whole() {
        let mut body = vec![0u8; REPLY_FIXED];
        body[0] = LINK_ERR_PERMISSION_DENIED as u8;
        let reply = parse_reply(&body).expect("parsed");
        assert_eq!(reply.error, LINK_ERR_PERMISSION_DENIED);
        assert_eq!(rewrite_reply(&body, &[0u8; PUBKEY_BYTES]).expect("kept"), body);
        let refusal = refusal(LINK_ERR_ERROR);
        let header: [u8; HEADER_LEN] = refusal[..HEADER_LEN].try_into().expect("16 bytes");
        assert_eq!(body_size(&header), Ok(REPLY_FIXED));
        assert_eq!(parse_reply(&refusal[HEADER_LEN..]).map(|r| r.error), Ok(LINK_ERR_ERROR));
        assert!(parse_reply(&[0, 0]).is_err());
    }

    #[test]
    fn the_ticket_ends_at_its_nul() {
        assert_eq!(ticket_of(b"s3cret\0"), b"s3cret");
        assert_eq!(ticket_of(b"s3cret\0garbage"), b"s3cret");
        assert_eq!(ticket_of(b"s3cret"), b"s3cret");
        assert_eq!(ticket_of(b"\0"), b"");
    }
}
