//! The JSend envelope (<https://github.com/omniti-labs/jsend>) that wraps every v1.0 reply.

use serde::{Deserialize, Serialize};

/// One reply of the v1.0 API. `fail` is the caller's fault (4xx), `error` the server's
/// (5xx). `F` is the type of a fail's `data`: the server writes typed data, a client
/// reads any JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum JSend<T, F = serde_json::Value> {
    Success {
        data: T,
    },
    Fail {
        data: F,
    },
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<serde_json::Value>,
    },
}

impl<T, F> JSend<T, F> {
    /// The data of a success, or the whole envelope back as the error.
    pub fn into_result(self) -> Result<T, Self> {
        match self {
            JSend::Success { data } => Ok(data),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_with_null_data_is_spelled_as_the_seed_shows() {
        let reply: JSend<()> = JSend::Success { data: () };
        assert_eq!(serde_json::to_value(&reply).ok(), Some(json!({"status": "success", "data": null})));
    }

    #[test]
    fn error_without_code_omits_it() {
        let reply: JSend<()> = JSend::Error { message: "down".into(), code: None, data: None };
        assert_eq!(serde_json::to_value(&reply).ok(), Some(json!({"status": "error", "message": "down"})));
    }

    #[test]
    fn fail_reads_back() {
        let parsed: JSend<()> =
            serde_json::from_value(json!({"status": "fail", "data": "terminal not exist"})).expect("valid JSend");
        assert_eq!(parsed, JSend::Fail { data: json!("terminal not exist") });
    }
}
