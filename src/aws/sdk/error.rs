//! SDK errors reduced to [`AwsError`]: the operation, the AWS error code and
//! message, or trailkey's own code where AWS gave none.

use std::future::Future;

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::aws::{AwsError, AwsResult, DeniedBy, code};

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

/// The error of a read whose failure trailkey reports and carries on from
/// (`HeadBucket`, `GetEventSelectors`), in a steady form: its text becomes
/// a finding of the plan and a fact of a saved plan, so the same cause must
/// read the same from one run to the next. Left out, and logged with `-v`
/// instead: the details of a failure to reach AWS or to read its answer
/// (addresses, timings, the SDK's wording), and the message of an access
/// denial, which names the caller's role session (a new one for every
/// pipeline job). The code stays, and for a denial which policy AWS blamed.
pub(super) fn steady(e: AwsError) -> AwsError {
    let message = match e.code.as_str() {
        code::DISPATCH_FAILURE
        | code::TIMEOUT
        | code::CREDENTIALS_NOT_LOADED
        | code::RESPONSE_ERROR
        | code::UNKNOWN => "no answer from AWS that could be read (`-v` logs why)",
        _ => match crate::aws::denied_by(&e) {
            Some(DeniedBy::Caller) => {
                "denied by a policy of the caller's (an identity-based policy, a permissions boundary, a session or VPC endpoint policy, an SCP or an RCP; `-v` logs AWS's words)"
            }
            Some(DeniedBy::Resource) => {
                "denied by the resource's own policy (`-v` logs AWS's words)"
            }
            Some(DeniedBy::Unknown) => "access denied (`-v` logs AWS's words)",
            None => return e,
        },
    };
    tracing::info!(
        operation = e.operation,
        code = %e.code,
        detail = %e.message,
        "a read that failed, reported without its details"
    );
    AwsError::new(e.operation, e.code, message)
}

/// `Ok(None)` for the AWS error `absent` (the configuration does not exist).
pub(super) fn absent_as_none<T>(result: AwsResult<T>, absent: &str) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == absent => Ok(None),
        Err(e) => Err(e),
    }
}
