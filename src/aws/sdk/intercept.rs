//! What trailkey adds to the SDK clients: the call log (`-vv`) and, for KMS,
//! a retry classifier that does not retry a quota.

use aws_sdk_kms::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};

use super::MAX_ATTEMPTS;
use crate::aws::code;

/// The KMS client's own settings: calls logged, and a quota is not throttling.
pub(super) fn kms_config(builder: aws_sdk_kms::config::Builder) -> aws_sdk_kms::config::Builder {
    builder
        .interceptor(LogCalls)
        .retry_classifier(QuotaIsNotThrottling)
}

/// KMS's `LimitExceededException` is a quota (keys, aliases or grants per
/// account or key) or a key policy over 32 KB (kms model, shape
/// `LimitExceededException`), which no retry fixes; the SDK's standard
/// classifier lists it among the throttling errors (`THROTTLING_ERRORS` of
/// `aws-runtime`). This classifier runs after the SDK's and forbids the
/// retry, so the error and its hint come at once. The code is read from the
/// answer: `x-amzn-ErrorType`, else the body's `__type`.
#[derive(Debug)]
struct QuotaIsNotThrottling;

impl ClassifyRetry for QuotaIsNotThrottling {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(response) = ctx.response() else {
            return RetryAction::NoActionIndicated;
        };
        let from_header = response
            .headers()
            .get("x-amzn-errortype")
            .map(|v| v.split(':').next().unwrap_or_default().to_owned());
        let code = from_header.or_else(|| {
            let body: serde_json::Value = serde_json::from_slice(response.body().bytes()?).ok()?;
            let t = body.get("__type")?.as_str()?;
            Some(t.rsplit('#').next().unwrap_or(t).to_owned())
        });
        if code.as_deref() == Some(code::LIMIT_EXCEEDED) {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "trailkey: a KMS quota is not throttling"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Logs every AWS call (`-vv`): service, operation and HTTP status of the
/// last attempt. Nothing else of the request: no headers, no credentials.
#[derive(Debug)]
pub(super) struct LogCalls;

impl Intercept for LogCalls {
    fn name(&self) -> &'static str {
        "trailkey-log-calls"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let (service, operation) = service_and_operation(cfg);
            tracing::info!(service, operation, attempt, "retrying");
            crate::output::err(&format!(
                "  retrying {service} {operation} (attempt {attempt} of {MAX_ATTEMPTS})\n"
            ));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = service_and_operation(cfg);
        let status = context.response().map(|r| r.status().as_u16());
        let ok = context.output_or_error().is_some_and(|r| r.is_ok());
        tracing::debug!(service, operation, status, ok, "aws call");
        Ok(())
    }
}

/// The service and operation of the call `cfg` belongs to.
fn service_and_operation(cfg: &ConfigBag) -> (&str, &str) {
    cfg.load::<Metadata>()
        .map_or(("?", "?"), |m| (m.service(), m.name()))
}
