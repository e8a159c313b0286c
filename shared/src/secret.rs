//! A secret (password, ticket, token) that cannot leak through `{:?}` and is compared
//! in constant time. Every secret field of a wire or domain type is a `Secret`, so a
//! derived `Debug` on the type is safe to log.

use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must use it (hashing it, handing it
    /// to the hypervisor or a viewer). Never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(empty)" } else { "Secret(..)" })
    }
}

/// Constant time in the content: the time depends only on the lengths, so a caller
/// comparing a guess learns nothing about how much of it was right.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        let mut difference = a.len() ^ b.len();
        for (x, y) in a.iter().zip(b) {
            difference |= usize::from(x ^ y);
        }
        std::hint::black_box(difference) == 0
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::new("hunter2-ticket");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&secret)).contains("hunter2"));
    }

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert_eq!(Secret::new("abc"), Secret::new("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
        assert_ne!(Secret::new(""), Secret::new("a"));
    }

    #[test]
    fn it_travels_as_a_plain_string() {
        let json = serde_json::to_string(&Secret::new("t0k")).expect("serialize");
        assert_eq!(json, "\"t0k\"");
        let back: Secret = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.expose(), "t0k");
    }
}
