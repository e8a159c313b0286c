use serde::{Deserialize, Serialize};

/// A bearer token as `GET /api/v1.0/token` hands it out. Times are ISO 8601 UTC,
/// `2016-03-04T21:08:12Z`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub issued_at: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires: String,
}

/// The `data` of a token reply: the seed's `token`, plus `expires_in` (seconds) so a
/// client can renew without parsing dates or trusting its own clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenGrant {
    pub token: Token,
    pub expires_in: u64,
}

/// The body of `PUT /api/v1.0/users/me/reset_password`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordChange {
    /// Missing reads as `None`, so the server can say what to send.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String))]
    pub password: Option<crate::Secret>,
}
