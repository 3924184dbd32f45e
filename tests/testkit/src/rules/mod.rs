//! Proxy rules that answer as real AWS does where moto 5.2.5 is lenient, to
//! put in front of moto (`Moto::real_aws`, `Moto::proxy_with`), by service. Each rule
//! reads what it needs from the traffic so far and the [`World`]: rules keep
//! no state of their own, so the same traffic always gets the same answers.
//! The one exception is Control Tower, which moto lacks altogether
//! ([`control_tower_landing_zone`]): its landing zone and operations are
//! state, kept in the [`World`], because an operation outlasts the request
//! that starts it and ends later, once, with effects in moto.
//!
//! Errors are AWS JSON 1.1 errors as KMS and CloudTrail send them: status
//! 400, `Content-Type: application/x-amz-json-1.1`, the code in
//! `x-amzn-ErrorType` and in the body's `__type` (the AWS SDK for Rust
//! reads the header first, then `__type`; see `json_errors.rs` of
//! `aws-sdk-kms` and `aws-sdk-cloudtrail`).
//!
//! The account of a request is the account of the role whose credentials
//! signed it, learnt from the `sts:AssumeRole` answers in the traffic; for
//! other credentials (the default ones) it is their access key ID. Aliases
//! are per account, key IDs are unique.

mod account;
mod cloudtrail;
mod control_tower;
pub mod delivery;
mod iam_sts;
mod kms;
mod kms_policy;
mod organizations;
mod s3;
mod world;

use std::time::Duration;

use serde_json::{Value, json};

use crate::proxy::{Exchange, Request, Response, Rule};

pub use account::account_regions;
pub use cloudtrail::{
    cloudtrail_conflicts, cloudtrail_key_in_the_buckets_region, cloudtrail_key_policy_check,
    cloudtrail_lake, describe_trails_honours_names,
};
pub use control_tower::{
    DEFAULT_OPERATIONS_PAGE, LandingZone, LandingZoneOperation, LandingZoneState,
    control_tower_landing_zone, landing_zone_id,
};
pub use kms::{
    kms_key_states, kms_propagation, kms_state_changes_propagate, kms_tag_limit,
    update_alias_needs_an_alias,
};
pub use kms_policy::{kms_key_policy_denies, kms_policy_principals_and_lockout};
pub use organizations::organizations_accounts_have_no_status;
pub use s3::{s3_bucket_region_across_accounts, s3_error, s3_replication_as_put};
pub use world::{Answered, DEFAULT_REGIONS, EventDataStore, World};

/// The content type of KMS and CloudTrail requests and answers.
pub const AWS_JSON_1_1: &str = "application/x-amz-json-1.1";

/// Every rule of this module: what a test puts in front of moto to meet
/// AWS as it is. `window` is how long a new key or alias stays unseen
/// ([`kms_propagation`]), and how long CloudTrail keeps evaluating a key's
/// previous policy after `PutKeyPolicy` ([`cloudtrail_key_policy_check`]).
/// The order is KMS's: a key not visible yet is not found before its
/// policy is evaluated, and a request its policy denies is denied whatever
/// the key's state.
pub fn real_aws(window: Duration, world: &World) -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(account_regions(world.clone())),
        Box::new(control_tower_landing_zone(world.clone())),
        Box::new(cloudtrail_lake(world.clone())),
        Box::new(s3_bucket_region_across_accounts(world.clone())),
        Box::new(cloudtrail_conflicts(world.clone())),
        Box::new(cloudtrail_key_in_the_buckets_region(world.clone())),
        Box::new(kms_propagation(window)),
        Box::new(kms_key_policy_denies()),
        Box::new(kms_policy_principals_and_lockout(world.clone())),
        Box::new(kms_state_changes_propagate(window)),
        Box::new(kms_key_states()),
        Box::new(update_alias_needs_an_alias()),
        Box::new(describe_trails_honours_names()),
        Box::new(cloudtrail_key_policy_check(window)),
        Box::new(s3_replication_as_put()),
        Box::new(organizations_accounts_have_no_status()),
        Box::new(kms_tag_limit()),
    ]
}

/// An AWS JSON 1.1 error answer: status 400, `code` in `x-amzn-ErrorType`
/// and in the body's `__type`.
pub fn json_error(code: &str, message: &str) -> Response {
    Response {
        status: 400,
        headers: vec![
            ("Content-Type".to_owned(), AWS_JSON_1_1.to_owned()),
            ("x-amzn-ErrorType".to_owned(), code.to_owned()),
        ],
        body: json!({"__type": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}

/// The error code of an answer: `x-amzn-ErrorType` up to a `:`, else the
/// body's `__type` after a `#`.
pub fn error_code(response: &Response) -> Option<String> {
    let header = response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amzn-errortype"))
        .map(|(_, v)| v.split(':').next().unwrap_or_default().to_owned());
    header.or_else(|| {
        serde_json::from_slice::<Value>(&response.body)
            .ok()?
            .get("__type")?
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
    })
}

/// The Region of a request's SigV4 credential scope.
pub fn signing_region(request: &Request) -> Option<String> {
    request
        .header("authorization")?
        .split("Credential=")
        .nth(1)?
        .split('/')
        .nth(2)
        .map(str::to_owned)
}

/// The text of the first `<tag>` element of `xml`.
pub(super) fn xml_text<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].trim())
}

/// A JSON request body, or `null`.
pub(super) fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

/// A JSON answer body, or `null`.
pub(super) fn response_json(exchange: &Exchange) -> Value {
    serde_json::from_slice(&exchange.response.body).unwrap_or(Value::Null)
}

/// A REST-JSON error as the Account Management API and Control Tower send
/// it: `status`, the code in `x-amzn-ErrorType`, the message in the body's
/// `message`.
pub fn rest_json_error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("x-amzn-ErrorType".to_owned(), code.to_owned()),
        ],
        body: json!({ "message": message }).to_string().into_bytes(),
    }
}

/// A successful answer with the JSON `body` and `content_type`.
pub(super) fn json_answer(content_type: &str, body: Value) -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
        body: body.to_string().into_bytes(),
    }
}

/// The page of `items` that `NextToken` (an index this layer made) and a
/// page size start, and the token of the next page; `None` for a token
/// the layer did not make.
pub(super) fn page<T: Clone>(
    items: &[T],
    token: Option<&str>,
    size: usize,
) -> Option<(Vec<T>, Option<String>)> {
    let start = match token {
        None => 0,
        Some(t) => t
            .strip_prefix("trailkey-layer-page-")?
            .parse::<usize>()
            .ok()
            .filter(|i| *i <= items.len())?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("trailkey-layer-page-{end}"));
    Some((items[start..end].to_vec(), next))
}
