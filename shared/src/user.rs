//! What `/api/v1.0/users/me/...` answers, besides desktops.

use serde::{Deserialize, Serialize};

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
}
