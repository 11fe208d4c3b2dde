//! Error classification: any `SdkError` becomes a [`PortError`] by its error code, HTTP
//! status and cause, so the steps decide on retry, escalation or a clear message without
//! looking at SDK types. Also the SDK's timestamps as chrono's.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::ports::PortError;

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
];
/// A quota of the account was reached (IAM's 2 access keys per user, API Gateway's keys
/// per region, ...): retrying cannot help until a person frees room.
const LIMIT: &[&str] = &[
    "LimitExceeded",
    "LimitExceededException",
    "ServiceQuotaExceededException",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "Unauthorized",
];
const BAD_CREDENTIALS: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
];
const NOT_FOUND: &[&str] = &[
    "NoSuchEntity",
    "NotFoundException",
    "ResourceNotFoundException",
];

/// Classifies an SDK error from `operation` (e.g. `iam:ListAccessKeys`).
pub fn classify<E, R>(operation: &str, err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let operation = operation.to_owned();
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("no message").to_owned();
            if THROTTLING.contains(&code) {
                PortError::Throttled { operation }
            } else if LIMIT.contains(&code) {
                PortError::Limit { operation, message }
            } else if ACCESS_DENIED.contains(&code) {
                PortError::AccessDenied { operation, message }
            } else if BAD_CREDENTIALS.contains(&code) {
                PortError::InvalidCredentials { operation, message }
            } else if NOT_FOUND.contains(&code) {
                PortError::NotFound {
                    operation,
                    what: format!("{code}: {message}"),
                }
            } else if code == "ConditionalCheckFailedException" || code == "ConflictException" {
                PortError::Conflict { operation, message }
            } else {
                PortError::Other {
                    operation,
                    message: format!("{code}: {message}"),
                }
            }
        }
        SdkError::TimeoutError(_) => PortError::Unreachable {
            operation,
            detail: "timed out".into(),
        },
        SdkError::DispatchFailure(failure) => {
            let text = DisplayErrorContext(&err).to_string();
            if !failure.is_io()
                && !failure.is_timeout()
                && text.to_ascii_lowercase().contains("credential")
            {
                PortError::NoCredentials {
                    detail: last_cause(&err),
                }
            } else {
                PortError::Unreachable {
                    operation,
                    detail: last_cause(&err),
                }
            }
        }
        SdkError::ResponseError(_) => PortError::InvalidResponse {
            operation,
            message: last_cause(&err),
        },
        _ => {
            let text = DisplayErrorContext(&err).to_string();
            if text.to_ascii_lowercase().contains("credential") {
                PortError::NoCredentials {
                    detail: last_cause(&err),
                }
            } else {
                PortError::Other {
                    operation,
                    message: last_cause(&err),
                }
            }
        }
    }
}

/// The innermost cause of an error: usually the one a person can act on.
fn last_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current: &(dyn StdError + 'static) = err;
    while let Some(next) = current.source() {
        current = next;
    }
    // One line: some causes (the credential chain) list their attempts on several lines.
    current
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Converts an SDK `DateTime` to chrono.
pub(crate) fn to_utc(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
