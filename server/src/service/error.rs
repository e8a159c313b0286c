use crate::compute::ComputeError;
use crate::store::StoreError;
use std::collections::BTreeMap;

/// Messages per input field, in the order the fields were checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when no error was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, ServiceError> {
        if self.is_empty() { Ok(value) } else { Err(ServiceError::Invalid(self)) }
    }
}

/// Everything a service can refuse or fail with. The HTTP layer maps each variant to a
/// status and a JSend body in one place (`http::reply`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no credentials were given")]
    NoCredentials,
    #[error("wrong user name, password or token")]
    BadCredentials,
    #[error("the token has expired; ask for a new one")]
    TokenExpired,
    #[error("too many failed logins; try again in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error("only an administrator may do this")]
    NotAdministrator,
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// Lines of an uploaded file that cannot be used; nothing was imported.
    #[error("{} bad lines; nothing was imported", .0.len())]
    BadLines(Vec<super::accounts::LineError>),
    #[error("terminal not exist")]
    TerminalNotFound,
    #[error("terminal existed")]
    TerminalExists,
    #[error("place and seat number existed")]
    SeatTaken,
    #[error("no such desktop")]
    DesktopNotFound,
    #[error("another action on this desktop is still running")]
    DesktopBusy,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no hypervisor is attached to this server")]
    NoHypervisor,
    #[error(transparent)]
    Compute(ComputeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server cannot take more of this work now (the password hashing pool is
    /// full): 503 with `Retry-After` (contract: "Overload").
    #[error("the server is busy; try again in {retry_after} s")]
    Overloaded { retry_after: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<super::hashing::HashError> for ServiceError {
    fn from(error: super::hashing::HashError) -> Self {
        use super::hashing::HashError;
        match error {
            HashError::Overloaded { retry_after } => ServiceError::Overloaded { retry_after },
            HashError::Failed(detail) => ServiceError::Internal(detail),
        }
    }
}

/// A server without a hypervisor is a state of the installation, not a failure.
impl From<ComputeError> for ServiceError {
    fn from(error: ComputeError) -> Self {
        match error {
            ComputeError::NotConfigured => ServiceError::NoHypervisor,
            other => ServiceError::Compute(other),
        }
    }
}

impl ServiceError {
    /// The error in words for an administrator, where it is one line among others
    /// (one user's failure in a class call, a console message); never an internal
    /// detail, which goes to the log instead.
    pub fn for_administrator(&self) -> String {
        match self {
            ServiceError::Invalid(fields) => fields
                .0
                .iter()
                .map(|(field, messages)| format!("{field} {}", messages.join("; ")))
                .collect::<Vec<_>>()
                .join("; "),
            ServiceError::Compute(
                ComputeError::NoCapacity(reason)
                | ComputeError::PlatformFault(reason)
                | ComputeError::PlatformConfig(reason),
            ) => reason.clone(),
            ServiceError::Compute(_) | ServiceError::Store(_) | ServiceError::Internal(_) => {
                tracing::error!(error = %self, "an administrative operation failed");
                "the server failed; its log has the details".into()
            }
            other => other.to_string(),
        }
    }
}

/// An administrator destroying a cloud instance meets the same errors as any other
/// operation: a missing instance is not found, a hypervisor failure is one.
impl From<super::CloudError> for ServiceError {
    fn from(error: super::CloudError) -> Self {
        use super::CloudError;
        match error {
            CloudError::InvalidVmId => ServiceError::NotFound("instance".into()),
            CloudError::Destroy(compute) | CloudError::Launch(compute) => compute.into(),
            CloudError::Store(store) => ServiceError::Store(store),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}
