//! The rules of thindesk: who may do what, and what each request changes. Services
//! depend on the store and on compute drivers, never on HTTP; the HTTP layer and the
//! command line both call them.

pub mod accounts;
pub mod audit;
pub mod catalogue;
pub mod cloud;
pub mod desktops;
mod error;
pub mod terminals;
mod throttle;

pub use accounts::{Accounts, ConsoleSession, Credentials, LineError, Principal};
pub use audit::{Actor, Audit, AuditFilter};
pub use catalogue::Catalogue;
pub use cloud::{Cloud, CloudAccess, CloudError, CloudRequest};
pub use desktops::Desktops;
pub use error::{FieldErrors, ServiceError};
pub use terminals::Terminals;
pub use throttle::{ThrottlePolicy, Throttled};

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the unit every stored time uses.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `2016-03-04T21:08:12Z`: ISO 8601 in UTC, whole seconds, as the seed writes times.
pub fn iso8601(unix_seconds: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

pub(crate) use crate::random::token as random_token;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_the_seed_shows() {
        assert_eq!(iso8601(1_457_125_692), "2016-03-04T21:08:12Z");
    }

    #[test]
    fn random_tokens_differ_and_carry_enough_bits() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }
}
