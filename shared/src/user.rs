//! What `/api/v1.0/users/me/...` takes and answers, besides desktops.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The body of `/users/me/reset_password`: the caller's new password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPassword {
    pub password: String,
}

// A password must never reach a log line, even through `{:?}`.
impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword { .. }")
    }
}

/// `data` of `GET /users/me/is_administrator`: the strings `"true"` and `"false"`, as the
/// seed shows, not JSON booleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IsAdministrator {
    #[serde(rename = "true")]
    Yes,
    #[serde(rename = "false")]
    No,
}

impl From<bool> for IsAdministrator {
    fn from(is_admin: bool) -> Self {
        if is_admin { Self::Yes } else { Self::No }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn is_administrator_is_the_seeds_string() {
        assert_eq!(serde_json::to_value(IsAdministrator::from(true)).ok(), Some(json!("true")));
        assert_eq!(serde_json::to_value(IsAdministrator::from(false)).ok(), Some(json!("false")));
    }

    #[test]
    fn a_new_password_is_not_debug_printed() {
        let body = NewPassword { password: "s3cret pass".into() };
        assert!(!format!("{body:?}").contains("s3cret"));
    }
}
