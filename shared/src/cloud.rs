//! Return codes of the cloud API (`POST /cloud_api`, seed 000).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetCode {
    Success,
    InvalidCommand,
    ArgumentMissing,
    InvalidImage,
    InvalidFlavor,
    InvalidInternet,
    InvalidVmId,
    VmCreationFailure,
    InvalidCloudConfig,
    PermissionDenied,
}

impl RetCode {
    pub const ALL: [RetCode; 10] = [
        Self::Success,
        Self::InvalidCommand,
        Self::ArgumentMissing,
        Self::InvalidImage,
        Self::InvalidFlavor,
        Self::InvalidInternet,
        Self::InvalidVmId,
        Self::VmCreationFailure,
        Self::InvalidCloudConfig,
        Self::PermissionDenied,
    ];

    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::InvalidCommand => 1,
            Self::ArgumentMissing => 2,
            Self::InvalidImage => 3,
            Self::InvalidFlavor => 4,
            Self::InvalidInternet => 5,
            Self::InvalidVmId => 6,
            Self::VmCreationFailure => 7,
            Self::InvalidCloudConfig => 8,
            Self::PermissionDenied => 9,
        }
    }

    /// The name in the seed's `ret_code.py`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "RET_SUCCESS",
            Self::InvalidCommand => "ERR_INVAL_CMD",
            Self::ArgumentMissing => "ERR_ARG_MISSED",
            Self::InvalidImage => "ERR_INVAL_IMAGE",
            Self::InvalidFlavor => "ERR_INVAL_FLAVOR",
            Self::InvalidInternet => "ERR_INVAL_INTERNET",
            Self::InvalidVmId => "ERR_INVAL_VM_ID",
            Self::VmCreationFailure => "ERR_VM_CREATION_FAILURE",
            Self::InvalidCloudConfig => "ERR_INVAL_CLOUD_CONFIG",
            Self::PermissionDenied => "ERR_PERMISSION_DENIED",
        }
    }

    /// The standard `description` for this code.
    pub fn description(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::InvalidCommand => "Invalid command",
            Self::ArgumentMissing => "Argument missing",
            Self::InvalidImage => "Invalid image name",
            Self::InvalidFlavor => "Invalid flavor name",
            Self::InvalidInternet => "Invalid internet access setting",
            Self::InvalidVmId => "Invalid virtual machine id",
            Self::VmCreationFailure => "Virtual machine creation failed",
            Self::InvalidCloudConfig => "Invalid cloud configuration",
            Self::PermissionDenied => "Permission denied",
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The fixed part of every cloud API answer; calls add their own keys beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudReply {
    pub ret_code: u8,
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_seeds_numbers_and_round_trip() {
        for (expected, code) in RetCode::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(code.code()), expected);
            assert_eq!(RetCode::from_code(code.code()), Some(code));
        }
        assert_eq!(RetCode::from_code(10), None);
    }
}
