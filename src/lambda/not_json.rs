//! The runtime layer that lets a body that is not JSON reach the handler.

use std::collections::HashMap;

/// The payload of one invocation: its JSON, or why its body is not JSON.
pub(crate) type Payload = Result<serde_json::Value, String>;

/// Lets an invocation whose body is not JSON reach the handler, which
/// answers it as every bad event: a `trailkey.BadEvent` error and one JSON
/// log line.
///
/// `lambda_runtime` deserializes the body into the handler's payload type
/// before the handler runs, and answers a body that does not parse with an
/// error of its own (`&lambda_runtime::deserializer::DeserializeError`),
/// logged only through `tracing`; no payload type gets the raw bytes. Its
/// documented hook for logic before that step is a tower layer on the
/// runtime ([`lambda_runtime::Runtime::layer`]), which sees each
/// [`lambda_runtime::LambdaInvocation`] with its body as bytes. This layer
/// parses the body as the runtime will, into the handler's payload type
/// (`serde_json::Value`: a number out of range, a lone surrogate escape or a
/// string that is not UTF-8 fails there, though a parser that only skips
/// over the value accepts them); when that fails, it keeps the reason under
/// the invocation's request ID and hands the runtime `null` in its place.
/// The handler takes the reason back by the same request ID, so no body can
/// pose as one that failed to parse.
#[derive(Clone, Default)]
pub(super) struct NotJson(std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>);

/// At most this many reasons are kept: the runtime hands invocations to the
/// handler one at a time, so one is the most ever waiting; the bound only
/// keeps an invocation the handler never saw from leaving its reason behind
/// for good.
const KEPT: usize = 16;

impl NotJson {
    /// Why the body of `request_id` was not JSON, if it was not.
    pub(super) fn take(&self, request_id: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(request_id)
    }
}

impl<S> lambda_runtime::tower::Layer<S> for NotJson {
    type Service = NotJsonService<S>;

    fn layer(&self, inner: S) -> NotJsonService<S> {
        NotJsonService {
            inner,
            slot: self.clone(),
        }
    }
}

/// The service [`NotJson`] wraps around the runtime's own.
pub(super) struct NotJsonService<S> {
    inner: S,
    slot: NotJson,
}

impl<S> lambda_runtime::Service<lambda_runtime::LambdaInvocation> for NotJsonService<S>
where
    S: lambda_runtime::Service<lambda_runtime::LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: lambda_runtime::LambdaInvocation) -> S::Future {
        // The runtime's own parse: into a `Value`, with serde_json's
        // nesting limit, and no trailing bytes.
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&invocation.body) {
            let why = format!(
                "the event is not JSON ({} bytes): {e}",
                invocation.body.len()
            );
            invocation.body = (&b"null"[..]).into();
            let mut kept = self
                .slot
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() >= KEPT {
                kept.clear();
            }
            kept.insert(invocation.context.request_id.clone(), why);
        }
        self.inner.call(invocation)
    }
}
