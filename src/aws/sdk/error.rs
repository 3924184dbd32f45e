//! SDK errors reduced to [`AwsError`]: the operation, the AWS error code and
//! message, or trailkey's own code where AWS gave none.

use std::future::Future;

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::aws::{AwsError, AwsResult, code};

/// The answer to `request`, a call of `operation`, with its error reduced
/// to an [`AwsError`].
pub(super) async fn answer<T, E>(
    operation: &'static str,
    request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> AwsResult<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    request.await.map_err(|e| aws_error(operation, e))
}

/// Reduces any SDK error to an [`AwsError`] with the AWS error code.
pub(super) fn aws_error<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = DisplayErrorContext(&e).to_string();
    let status = e.raw_response().map(|r| r.status().as_u16());
    let unreadable = |status: Option<u16>| {
        format!(
            "AWS's answer to {operation}{} could not be decoded (not UTF-8, or not the service's error format): {detail}",
            status.map_or(String::new(), |s| format!(" (HTTP {s})"))
        )
    };
    let (code, message) = match &e {
        SdkError::ServiceError(_) => match (e.code(), e.message()) {
            (Some(code), Some(message)) if !message.is_empty() => {
                (code.to_owned(), message.to_owned())
            }
            (Some(code), _) => (code.to_owned(), String::new()),
            (None, _) => (code::UNKNOWN.to_owned(), unreadable(status)),
        },
        SdkError::ResponseError(_) => (code::RESPONSE_ERROR.to_owned(), unreadable(status)),
        SdkError::TimeoutError(_) => (code::TIMEOUT.to_owned(), detail),
        _ if detail.contains("credentials") && detail.contains("provider") => {
            (code::CREDENTIALS_NOT_LOADED.to_owned(), detail)
        }
        _ => (code::DISPATCH_FAILURE.to_owned(), detail),
    };
    AwsError::new(operation, code, message)
}

/// `Ok(None)` for the AWS error `absent` (the configuration does not exist).
pub(super) fn absent_as_none<T>(result: AwsResult<T>, absent: &str) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == absent => Ok(None),
        Err(e) => Err(e),
    }
}
