//! MAC addresses as terminals name themselves.

use std::fmt;
use std::str::FromStr;

/// A MAC address in the one spelling thindesk stores and answers with:
/// `08:00:20:0A:8C:6D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddress([u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacError(pub String);

impl fmt::Display for MacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a MAC address (expected six hex pairs like 08:00:20:0A:8C:6D)", self.0)
    }
}

impl std::error::Error for MacError {}

impl MacAddress {
    pub fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for MacAddress {
    type Err = MacError;

    /// Accepts `08:00:20:0a:8c:6d`, `08-00-20-0A-8C-6D` and `0800200a8c6d`: the spellings
    /// operating systems print. Separators must be used consistently or not at all.
    fn from_str(text: &str) -> Result<Self, MacError> {
        let error = || MacError(text.to_owned());
        let trimmed = text.trim();
        let hex: String = match trimmed.len() {
            12 => trimmed.to_owned(),
            17 => {
                let separator = trimmed.as_bytes()[2];
                if separator != b':' && separator != b'-' {
                    return Err(error());
                }
                let groups: Vec<&str> = trimmed.split(separator as char).collect();
                if groups.len() != 6 || groups.iter().any(|g| g.len() != 2) {
                    return Err(error());
                }
                groups.concat()
            }
            _ => return Err(error()),
        };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(error());
        }
        let mut octets = [0u8; 6];
        for (i, octet) in octets.iter_mut().enumerate() {
            *octet = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| error())?;
        }
        Ok(Self(octets))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{g:02X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_spellings_normalise_to_colon_upper_case() {
        for spelling in ["08:00:20:0a:8c:6d", "08-00-20-0A-8C-6D", "0800200a8c6d", " 08:00:20:0A:8C:6D "] {
            let mac: MacAddress = spelling.parse().expect(spelling);
            assert_eq!(mac.to_string(), "08:00:20:0A:8C:6D");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "08:00:20:0a:8c",
            "08:00:20:0a:8c:6d:11",
            "08:00-20:0a:8c:6d",
            "0g:00:20:0a:8c:6d",
            "08.00.20.0a.8c.6d",
            "0800200a8c6",
            "+8:00:20:0a:8c:6d",
            "０8:00:20:0a:8c:6d",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad:?} was accepted");
        }
    }
}
