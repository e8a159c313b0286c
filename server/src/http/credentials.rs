//! Reads `Authorization` in every form the contract lists.

use crate::service::Credentials;
use base64::Engine;

/// Reads a header value. Never fails: anything unreadable becomes a token that will
/// not verify, so the caller gets a plain 401.
pub fn parse(header: &str) -> Credentials {
    let value = header.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match value.split_once(' ') {
        // `user:pass word` without a scheme: the first word is no scheme.
        Some((first, _)) if first.contains(':') => (None, value),
        Some((scheme, rest)) => (Some(scheme), rest.trim_start_matches(' ')),
        None => (None, value),
    };
    match scheme {
        Some(scheme) if scheme.eq_ignore_ascii_case("basic") => basic(rest),
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") => {
            Credentials::Token(rest.into())
        }
        Some(_) => Credentials::Token(value.into()),
        None => pair(value).unwrap_or_else(|| Credentials::Token(value.into())),
    }
}

/// `Basic base64(user:pass)` (RFC 7617), `Basic user:pass` (the seed's sample) or
/// `Basic TOKEN`. A colon cannot occur in base64, so its presence decides.
fn basic(rest: &str) -> Credentials {
    if let Some(credentials) = pair(rest) {
        return credentials;
    }
    base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|decoded| pair(&decoded))
        .unwrap_or_else(|| Credentials::Token(rest.into()))
}

fn pair(text: &str) -> Option<Credentials> {
    let (user, password) = text.split_once(':')?;
    Some(Credentials::TokenOrPassword { user: user.into(), password: password.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair_of(user: &str, password: &str) -> Credentials {
        Credentials::TokenOrPassword { user: user.into(), password: password.into() }
    }

    #[test]
    fn every_form_of_the_contract_is_read() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:s3cret pass");
        assert_eq!(parse(&format!("Basic {encoded}")), pair_of("alice", "s3cret pass"));
        assert_eq!(parse("Basic alice:s3cret"), pair_of("alice", "s3cret"));
        assert_eq!(parse("alice:s3cret"), pair_of("alice", "s3cret"));
        assert_eq!(parse("alice:two words"), pair_of("alice", "two words"));
        assert_eq!(parse("Bearer abc_DEF-123"), Credentials::Token("abc_DEF-123".into()));
        assert_eq!(parse("abc_DEF-123"), Credentials::Token("abc_DEF-123".into()));
        let token_basic = base64::engine::general_purpose::STANDARD.encode("abc_DEF-123:");
        assert_eq!(parse(&format!("Basic {token_basic}")), pair_of("abc_DEF-123", ""));
        let token_any = base64::engine::general_purpose::STANDARD.encode("abc_DEF-123:unused");
        assert_eq!(parse(&format!("basic {token_any}")), pair_of("abc_DEF-123", "unused"));
    }

    #[test]
    fn passwords_keep_their_colons() {
        assert_eq!(parse("Basic bob:a:b:c"), pair_of("bob", "a:b:c"));
    }

    #[test]
    fn unknown_schemes_become_a_token_that_will_not_verify() {
        assert!(matches!(parse("Digest username=x"), Credentials::Token(_)));
        assert!(matches!(parse(""), Credentials::Token(t) if t.is_empty()));
    }
}
