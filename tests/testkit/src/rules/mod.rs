//! Proxy rules that answer as real AWS does where moto 5.2.5 is lenient, to
//! put in front of moto (`Moto::real_aws`, `Moto::proxy_with`), by service. Each rule
//! reads what it needs from the traffic so far and the [`World`]: rules keep
//! no state of their own, so the same traffic always gets the same answers.
//! There are two exceptions, both kept in the [`World`]. Control Tower,
//! which moto lacks altogether ([`control_tower_landing_zone`]): its landing
//! zone and operations are state, because an operation outlasts the request
//! that starts it and ends later, once, with effects in moto. And the
//! registry of delegated administrators for the services moto does not
//! take ([`organizations_delegated_administrators`]), which a test may fill
//! without a request ([`World::delegated_administrator`]).
//!
//! One rule stands for IAM: the identity policies a test attaches to a role
//! ([`World::attach_identity_policy`]) decide what the role's sessions may
//! call ([`iam_identity_policies`], first of [`real_aws`]).
//!
//! A few rules serve a member account's request as the management account
//! ([`cloudtrail_delegated_administrator`], the Organizations reads of
//! [`organizations_delegated_administrators`]): moto gets the request signed
//! by the management account's credentials ([`MANAGEMENT_ACCESS_KEY`]),
//! through [`Rule::upstream`], and the proxy records the client's.
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
mod delegated;
pub mod delivery;
mod iam_sts;
mod identity;
mod kms;
mod kms_policy;
mod organizations;
mod s3;
mod world;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::read_response;
use crate::proxy::{Exchange, Request, Response, Rule};

pub use account::account_regions;
pub use cloudtrail::{
    cloudtrail_conflicts, cloudtrail_custom_event_selectors, cloudtrail_key_in_the_buckets_region,
    cloudtrail_key_policy_check, cloudtrail_lake, describe_trails_honours_names,
};
pub use control_tower::{
    DEFAULT_OPERATIONS_PAGE, LandingZone, LandingZoneOperation, LandingZoneState,
    control_tower_landing_zone, landing_zone_id,
};
pub(crate) use delegated::from_the_fixture;
pub use delegated::{
    CLOUDTRAIL, LAYER_CALLER_HEADER, MOTO_DELEGATION_PRINCIPALS,
    cloudtrail_delegated_administrator, organizations_delegated_administrators,
};
pub use identity::iam_identity_policies;
pub use kms::{
    kms_key_states, kms_propagation, kms_reads_propagate, kms_rotation_period,
    kms_state_changes_propagate, kms_tag_limit, update_alias_needs_an_alias,
};
pub use kms_policy::{kms_key_policy_denies, kms_policy_principals_and_lockout};
pub use organizations::organizations_accounts_have_no_status;
pub use s3::{s3_bucket_region_across_accounts, s3_error, s3_replication_as_put};
pub use world::{Answered, DEFAULT_REGIONS, Delegation, EventDataStore, IdentityDenial, World};

/// The access key ID the layer signs its own moto requests with, and the
/// requests it sends moto as the management account: the harness's default
/// credentials (`Run`, `fixture.py`), which moto, checking no signature,
/// gives its default account, the organization's management account that
/// `seed` makes. moto decides the account from the access key in
/// `Authorization` alone.
pub const MANAGEMENT_ACCESS_KEY: &str = "testing";

/// The content type of KMS and CloudTrail requests and answers.
pub const AWS_JSON_1_1: &str = "application/x-amz-json-1.1";

/// Every rule of this module: what a test puts in front of moto to meet
/// AWS as it is. `window` is how long a new key or alias stays unseen
/// ([`kms_propagation`]), and how long CloudTrail keeps evaluating a key's
/// previous policy after `PutKeyPolicy` ([`cloudtrail_key_policy_check`]).
/// The order is KMS's: a key not visible yet is not found before its
/// policy is evaluated, and a request its policy denies is denied whatever
/// the key's state. Who may act on an organization's trails or read its
/// Organizations data is decided before what the request asks is checked,
/// and what the caller's identity policies allow before that: IAM
/// authorizes a request before the service looks at what it names.
pub fn real_aws(window: Duration, world: &World) -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(iam_identity_policies(world.clone())),
        Box::new(account_regions(world.clone())),
        Box::new(control_tower_landing_zone(world.clone())),
        Box::new(cloudtrail_lake(world.clone())),
        Box::new(organizations_delegated_administrators(world.clone())),
        Box::new(cloudtrail_delegated_administrator(world.clone())),
        Box::new(s3_bucket_region_across_accounts(world.clone())),
        Box::new(cloudtrail_conflicts(world.clone())),
        Box::new(cloudtrail_key_in_the_buckets_region(world.clone())),
        Box::new(kms_propagation(window)),
        Box::new(kms_key_policy_denies()),
        Box::new(kms_policy_principals_and_lockout(world.clone())),
        Box::new(kms_state_changes_propagate(window)),
        Box::new(kms_reads_propagate(window)),
        Box::new(kms_key_states()),
        Box::new(update_alias_needs_an_alias()),
        Box::new(describe_trails_honours_names()),
        Box::new(cloudtrail_key_policy_check(window)),
        Box::new(s3_replication_as_put()),
        Box::new(organizations_accounts_have_no_status()),
        Box::new(kms_tag_limit()),
        Box::new(kms_rotation_period(world.clone())),
        Box::new(cloudtrail_custom_event_selectors(world.clone())),
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

/// An AWS JSON 1.1 error answer, as [`json_error`], with the members of
/// `extra` (an object) in its body too: e.g. the `Reason` of an
/// Organizations `ConstraintViolationException`.
pub fn json_error_with(code: &str, message: &str, extra: Value) -> Response {
    let mut response = json_error(code, message);
    let mut body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    response.body = body.to_string().into_bytes();
    response
}

/// How long one request of the layer's own to moto may take.
const MOTO_TIMEOUT: Duration = Duration::from_secs(30);

/// One AWS JSON 1.1 call of the layer's own to the moto at `moto`
/// (`http://host:port`), signed by `access_key` (moto takes the account
/// from the access key in `Authorization` alone and checks no signature)
/// with `user_agent` (name `trailkey-fixture` in it: `fixture.py recording
/// show` then leaves the call out), for `(service, region, X-Amz-Target)`:
/// the answer, or the error's code and message.
pub(super) fn moto_call(
    moto: &str,
    access_key: &str,
    user_agent: &str,
    (service, region, target): (&str, &str, &str),
    body: &Value,
) -> Result<Value, (String, String)> {
    let io = |e: std::io::Error| ("RequestFailed".to_owned(), format!("{moto}: {e}"));
    let host = moto.strip_prefix("http://").unwrap_or(moto);
    let mut stream = TcpStream::connect(host).map_err(io)?;
    stream.set_read_timeout(Some(MOTO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(MOTO_TIMEOUT)).map_err(io)?;
    let body = body.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {AWS_JSON_1_1}\r\nX-Amz-Target: {target}\r\nX-Amz-Date: 20240101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential={access_key}/20240101/{region}/{service}/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0\r\nUser-Agent: {user_agent}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let response = read_response(&mut BufReader::new(stream), false).map_err(io)?;
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if response.status == 200 {
        return Ok(answer);
    }
    let code = answer["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| format!("HTTP {}", response.status));
    let message = answer["message"]
        .as_str()
        .or_else(|| answer["Message"].as_str())
        .unwrap_or_default()
        .to_owned();
    Err((code, message))
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
