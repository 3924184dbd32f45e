//! The real-AWS rules layer (`trailkey_testkit::rules`): each rule answers as
//! real AWS does where moto is lenient. Each test first shows what moto
//! alone answers, then the same calls through the rule, so that the rule
//! is what makes the difference; the proxy's record shows the rule, not
//! moto, gave the answer. Calls are sent by boto3 (`fixture.py calls`),
//! trailkey's by the real binary.

use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::proxy::Exchange;
use trailkey_testkit::rules::{AWS_JSON_1_1, error_code};
pub(crate) use trailkey_testkit::{call, outcomes};

mod account;
mod cloudtrail;
mod kms;
mod kms_policy;
mod organizations;
mod s3;

/// How long a new key or alias stays unseen behind the layer.
const WINDOW: Duration = Duration::from_secs(1);

/// How long a test waits for the window to pass: far more than `WINDOW`.
const PATIENCE: f64 = 10.0;

/// `op` sent again until it succeeds, for at most [`PATIENCE`].
fn until_ok(op: &str, params: Value) -> Value {
    json!({"op": op, "params": params, "until_ok": PATIENCE})
}

/// The exchanges the proxy answered itself with error `code`.
fn answered_by_the_layer<'e>(exchanges: &'e [Exchange], code: &str) -> Vec<&'e Exchange> {
    exchanges
        .iter()
        .filter(|e| error_code(&e.response).as_deref() == Some(code))
        .inspect(|e| {
            assert!(!e.forwarded, "moto, not the layer, answered {code}: {e:?}");
            assert_eq!(e.response.status, 400);
            assert_eq!(
                e.request.header("content-type"),
                Some(AWS_JSON_1_1),
                "a JSON 1.1 request"
            );
            let content_type = e
                .response
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            assert_eq!(content_type, Some(AWS_JSON_1_1));
        })
        .collect()
}

fn only_exchange<'e>(exchanges: &'e [Exchange], service: &str, action: &str) -> &'e Exchange {
    let found: Vec<_> = exchanges.iter().filter(|e| e.is(service, action)).collect();
    assert_eq!(found.len(), 1, "one {service}:{action}");
    found[0]
}

/// A key policy document: the account's root administers the key, plus
/// `statements`.
fn key_policy(account: &str, statements: &[Value]) -> String {
    let mut all = vec![json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*",
    })];
    all.extend_from_slice(statements);
    json!({"Version": "2012-10-17", "Statement": all}).to_string()
}
