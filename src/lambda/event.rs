//! Which events `trailkey lambda` acts on. Pure: an event, the config and
//! the key this process knows in, a [`Verdict`] out, with no AWS call.
//!
//! Events come from EventBridge
//! (<https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html>):
//! `source`, `detail-type`, `account`, `region`, `detail`.
//!
//! - **Scheduled events** (`aws.events`, `Scheduled Event`): always.
//! - **Control Tower lifecycle events** (`aws.controltower`,
//!   `detail.eventName` `UpdateLandingZone` or `CreateManagedAccount`): a
//!   landing zone update or a new account may change what trailkey manages.
//! - **"AWS API Call via CloudTrail"** events:
//!   - CloudTrail's [`CLOUDTRAIL_CALLS`] on the configured trail, matched
//!     by ARN: account, Region and name (`requestParameters.name`, an ARN,
//!     or a name of the account and Region the call was made in). The
//!     trail's ARN is known from the config (an ARN, or a name with
//!     `accounts.management`) or from the process's last plan; before
//!     that, the name and the Region decide;
//!   - KMS's [`KEY_CALLS`] on trailkey's key, in the Security Tooling
//!     account and the configured Region (`requestParameters.keyId` or
//!     `resources[].ARN`), or naming no key. Each plan tells the process
//!     which key is trailkey's; before its first, the verdict on a named
//!     key is [`Verdict::IfTrailkeys`], which the caller settles with AWS
//!     reads: the one verdict that costs calls;
//!   - KMS's [`ALIAS_CALLS`] of the configured alias, in the Security
//!     Tooling account and Region.
//!
//! Anything else is acknowledged and ignored, with the reason, and costs
//! no AWS call. An event that is not an EventBridge event at all is bad
//! input: an error.
//!
//! Events also arrive in batches from an SQS queue between the rules and
//! the function ([`sqs_batch`]): each record's `body` is one EventBridge
//! event as text, judged as above.

use serde_json::Value;

use crate::config::{Desired, TrailRef};

/// What triggered a run, for the response and the log line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventInfo {
    /// EventBridge's event ID, or CloudTrail's `eventID` when the envelope has none.
    pub id: Option<String>,
    pub source: String,
    pub detail_type: String,
    /// The API call (`detail.eventName`), for CloudTrail and Control Tower events.
    pub name: Option<String>,
}

impl EventInfo {
    /// The event as an error names it: `UpdateTrail event <id>`.
    pub fn described(&self) -> String {
        match (&self.name, &self.id) {
            (Some(name), Some(id)) => format!("{name} event {id}"),
            (None, Some(id)) => format!("{} event {id}", self.detail_type),
            (_, None) => format!("{} event without an ID", self.detail_type),
        }
    }
}

/// Whether to run a plan for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// About the trail, the key or the alias trailkey manages, or a
    /// schedule or lifecycle event: run.
    Handle,
    /// About something else: the reason.
    Ignore(String),
    /// A key call in the Security Tooling account on the key with this ID
    /// or ARN, while this process does not know trailkey's key yet: handle
    /// it if the key may be trailkey's, ignore it otherwise.
    IfTrailkeys(String),
}

/// CloudTrail calls on a trail: its key changed, its logging stopped, the
/// trail deleted; and its logging started, which drifts nothing but is the
/// event of the function's own `StartLogging`, whose run reads it back.
pub const CLOUDTRAIL_CALLS: [&str; 4] =
    ["UpdateTrail", "StopLogging", "DeleteTrail", "StartLogging"];
/// KMS calls on a key that may drift trailkey's key: its policy, state,
/// rotation (turned off, or its period changed: `EnableKeyRotation` with
/// `RotationPeriodInDays`) and tags (`ManagedBy = trailkey` is how trailkey
/// finds it); and `EnableKey`, which drifts nothing but is the event of the
/// function's own, whose run reads it back (so are `PutKeyPolicy`,
/// `EnableKeyRotation` and `TagResource`: see
/// [`crate::apply::Verification::TakenAtTheirWord`]).
pub const KEY_CALLS: [&str; 8] = [
    "PutKeyPolicy",
    "DisableKey",
    "EnableKey",
    "ScheduleKeyDeletion",
    "DisableKeyRotation",
    "EnableKeyRotation",
    "TagResource",
    "UntagResource",
];
/// KMS calls on an alias: the configured alias created on another key,
/// moved or deleted.
pub const ALIAS_CALLS: [&str; 3] = ["CreateAlias", "DeleteAlias", "UpdateAlias"];
/// Control Tower lifecycle events.
pub const LIFECYCLE_EVENTS: [&str; 2] = ["UpdateLandingZone", "CreateManagedAccount"];

/// Judges `event` for the config `desired`. `known_key` is trailkey's key
/// ARN when this process has seen it. An event without `source` and
/// `detail-type` is an error.
pub fn classify(
    event: &Value,
    desired: &Desired,
    known_key: Option<&str>,
    known_trail: Option<&str>,
) -> Result<(EventInfo, Verdict), String> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let (Some(source), Some(detail_type)) = (text(event, "source"), text(event, "detail-type"))
    else {
        return Err(
            "the event is not an EventBridge event: it has no \"source\" and \"detail-type\""
                .to_owned(),
        );
    };
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let name = text(detail, "eventName");
    let info = EventInfo {
        id: text(event, "id").or_else(|| text(detail, "eventID")),
        source: source.clone(),
        detail_type: detail_type.clone(),
        name: name.clone(),
    };
    let verdict = match (source.as_str(), detail_type.as_str(), name.as_deref()) {
        ("aws.events", "Scheduled Event", _) => Verdict::Handle,
        ("aws.controltower", _, Some(n)) if LIFECYCLE_EVENTS.contains(&n) => Verdict::Handle,
        ("aws.controltower", _, _) => Verdict::Ignore(format!(
            "a Control Tower event other than {}",
            LIFECYCLE_EVENTS.join(" and ")
        )),
        (_, "AWS API Call via CloudTrail", Some(n)) => {
            api_call(event, detail, n, desired, known_key, known_trail)
        }
        _ => Verdict::Ignore(format!(
            "an event trailkey does not act on ({source}, {detail_type})"
        )),
    };
    Ok((info, verdict))
}

/// One record of an SQS batch as Lambda's event source mapping delivers
/// it (<https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>): the
/// message's ID, which a partial batch response names, and its body decoded
/// as JSON, or why it could not be.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsRecord<'a> {
    pub message_id: &'a str,
    pub event: Result<Value, String>,
}

/// The records of `payload` when it is an SQS batch (an object with
/// `Records`); `None` when it is not one. A batch that cannot be answered
/// record by record (`Records` not an array, a record without a string
/// `messageId`) is an error. A record whose `eventSource` is not `aws:sqs`,
/// or whose `body` is missing or not JSON, is kept with the reason: the
/// partial batch response reports it.
pub fn sqs_batch(payload: &Value) -> Option<Result<Vec<SqsRecord<'_>>, String>> {
    let records = payload.as_object()?.get("Records")?;
    let Some(records) = records.as_array() else {
        return Some(Err(
            "the event has \"Records\", but not as an array: it is not an SQS batch".to_owned(),
        ));
    };
    let mut out = Vec::with_capacity(records.len());
    for (n, record) in records.iter().enumerate() {
        let Some(message_id) = record.get("messageId").and_then(Value::as_str) else {
            return Some(Err(format!(
                "record {n} of the SQS batch has no \"messageId\" string, so a partial batch response cannot name it"
            )));
        };
        let event = match (
            record.get("eventSource").and_then(Value::as_str),
            record.get("body").and_then(Value::as_str),
        ) {
            (Some(source), _) if source != "aws:sqs" => Err(format!(
                "the record's eventSource is {:?}, not \"aws:sqs\"",
                crate::escape::escape(&truncated(source, 64))
            )),
            (_, None) => Err("the record has no \"body\" string".to_owned()),
            (_, Some(body)) => serde_json::from_str::<Value>(body)
                .map_err(|e| format!("the record's body ({} bytes) is not JSON: {e}", body.len())),
        };
        out.push(SqsRecord { message_id, event });
    }
    Some(Ok(out))
}

pub use crate::escape::truncated;

/// An "AWS API Call via CloudTrail" event for the API call `name`.
fn api_call(
    event: &Value,
    detail: &Value,
    name: &str,
    desired: &Desired,
    known_key: Option<&str>,
    known_trail: Option<&str>,
) -> Verdict {
    let field = |key: &str, fallback: &str| {
        detail
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| event.get(fallback).and_then(Value::as_str))
            .unwrap_or_default()
    };
    let call = Call {
        event,
        name,
        params: detail.get("requestParameters").unwrap_or(&Value::Null),
        account: field("recipientAccountId", "account"),
        region: field("awsRegion", "region"),
    };
    match detail
        .get("eventSource")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "cloudtrail.amazonaws.com" if CLOUDTRAIL_CALLS.contains(&name) => {
            trail_call(&call, desired, known_trail)
        }
        "kms.amazonaws.com" if KEY_CALLS.contains(&name) || ALIAS_CALLS.contains(&name) => {
            key_call(&call, desired, known_key)
        }
        service => Verdict::Ignore(format!(
            "an API call trailkey does not act on ({service} {name})"
        )),
    }
}

/// An API call as CloudTrail recorded it: the event, the call's name and
/// request parameters, and the account and Region it was made in.
struct Call<'a> {
    event: &'a Value,
    name: &'a str,
    params: &'a Value,
    account: &'a str,
    region: &'a str,
}

impl Call<'_> {
    /// The request parameter `key`, empty when absent.
    fn param(&self, key: &str) -> &str {
        self.params
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// A CloudTrail call on a trail: handled when it is the configured trail,
/// matched by ARN.
fn trail_call(call: &Call<'_>, desired: &Desired, known_trail: Option<&str>) -> Verdict {
    let (name, named, region) = (call.name, call.param("name"), call.region);
    // The trail the call acted on, by ARN: a name is a trail of the account
    // and Region the call was made in.
    let arn = if named.starts_with("arn:") {
        named.to_owned()
    } else {
        format!(
            "arn:{}:cloudtrail:{region}:{}:trail/{named}",
            desired.partition(),
            call.account
        )
    };
    match configured_trail_arn(desired, known_trail) {
        Some(ours) if arn == ours => Verdict::Handle,
        Some(ours) => Verdict::Ignore(format!("{name} of another trail ({arn:?}), not {ours}")),
        // The management account is not known yet: the name and Region
        // tell, and the plan the event runs learns it.
        None if names_trail(named, &desired.trail) && region == desired.region.as_str() => {
            Verdict::Handle
        }
        None => Verdict::Ignore(format!("{name} of another trail ({arn:?})")),
    }
}

/// A KMS call on a key or an alias in the key's account: handled
/// when it is trailkey's alias or key (or may be, while the key is not
/// known).
fn key_call(call: &Call<'_>, desired: &Desired, known_key: Option<&str>) -> Verdict {
    let (name, account, region) = (call.name, call.account, call.region);
    if account != desired.key_account.as_str() || region != desired.region.as_str() {
        let whose = if desired.landing_zone {
            "the management account"
        } else {
            "the Security Tooling account"
        };
        return Verdict::Ignore(format!(
            "{name} in account {account:?}, Region {region:?}, not {whose} {} in {}",
            desired.key_account, desired.region
        ));
    }
    if ALIAS_CALLS.contains(&name) {
        let alias = call.param("aliasName");
        return if alias == desired.alias.full() {
            Verdict::Handle
        } else {
            Verdict::Ignore(format!("{name} of another alias ({alias:?})"))
        };
    }
    let key_id = call.param("keyId");
    match (named_key(call.event, key_id), known_key) {
        // No key named: plan, which finds out.
        (None, _) => Verdict::Handle,
        (Some(_), Some(key)) if names_key(call.event, key_id, key) => Verdict::Handle,
        (Some(named), Some(key)) => Verdict::Ignore(format!(
            "{name} of another key ({named:?}), not trailkey's {key}"
        )),
        (Some(named), None) => Verdict::IfTrailkeys(named),
    }
}

/// The configured trail's ARN, when it is known without an AWS call: from
/// the config (an ARN, or a name with `accounts.management`), or as the
/// process's last plan saw it.
fn configured_trail_arn(desired: &Desired, known_trail: Option<&str>) -> Option<String> {
    match &desired.trail {
        TrailRef::Arn(arn) => Some(arn.clone()),
        TrailRef::Name(name) => desired
            .management
            .as_ref()
            .map(|m| {
                format!(
                    "arn:{}:cloudtrail:{}:{m}:trail/{name}",
                    desired.partition(),
                    desired.region
                )
            })
            .or_else(|| known_trail.map(str::to_owned)),
    }
}

/// Whether `named` (a trail name or ARN, as `UpdateTrail` takes it) is the
/// configured trail.
fn names_trail(named: &str, trail: &TrailRef) -> bool {
    let short = |s: &str| s.rsplit_once(":trail/").map_or(s, |(_, n)| n).to_owned();
    match trail {
        TrailRef::Arn(arn) => named == arn || (!named.contains(':') && short(arn) == named),
        TrailRef::Name(name) => short(named) == *name,
    }
}

/// The ARNs in the event's `resources` (EventBridge's strings and
/// CloudTrail's `{"ARN": ...}` objects).
fn resource_arns(event: &Value) -> impl Iterator<Item = &str> {
    event
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            event
                .pointer("/detail/resources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(|r| r.as_str().or_else(|| r.get("ARN").and_then(Value::as_str)))
}

/// Whether the event is about the key `key_arn`: its `keyId` (an ID or an
/// ARN), or an ARN in its `resources`.
fn names_key(event: &Value, key_id: &str, key_arn: &str) -> bool {
    let id = key_arn.rsplit('/').next().unwrap_or(key_arn);
    resource_arns(event).any(|arn| arn == key_arn) || key_id == key_arn || key_id == id
}

/// The key the event is about: its `keyId`, else a key ARN in its
/// `resources`.
fn named_key(event: &Value, key_id: &str) -> Option<String> {
    if !key_id.is_empty() {
        return Some(key_id.to_owned());
    }
    resource_arns(event)
        .find(|arn| arn.starts_with("arn:") && arn.contains(":key/"))
        .map(str::to_owned)
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
