//! KMS key policies: the principals and lockout checks on a policy KMS is
//! given, and the key policy's say on each KMS request; and the policy the
//! traffic shows for a key, which CloudTrail's check reads too.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::iam_sts::{account_of, session_of};
use super::kms::{key_arn, key_named, resolve, resolve_before};
use super::world::World;
use super::{json_body, json_error, response_json};
use crate::key_policy;
use crate::proxy::{Decision, Exchange, Request, Rule, Traffic};

/// KMS checks a key policy before it takes it (`CreateKey`'s `Policy`,
/// `PutKeyPolicy`), and answers `MalformedPolicyDocumentException` (kms
/// model: "the specified policy is not syntactically or semantically
/// correct"):
///
/// * "Policy contains a statement with one or more invalid principals."
///   when a statement names a principal IAM does not know: a role or user
///   that does not exist, or was created moments ago (IAM is eventually
///   consistent too). The [`World`] says which ([`World::unknown_principal`]).
/// * "The new key policy will not allow you to update the key policy in
///   the future." when the caller could not change the policy afterwards:
///   KMS's policy lockout safety check, which considers the caller's IAM
///   permissions, SCPs and permissions boundaries too (`CreateKey` and
///   `PutKeyPolicy`, `BypassPolicyLockoutSafetyCheck`, kms model). The
///   [`World`] says whose IAM permissions do not allow `kms:PutKeyPolicy`
///   ([`World::cannot_put_key_policy`]), by the role of the signing session.
///   A request with `BypassPolicyLockoutSafetyCheck` is not checked for it.
///
/// moto takes any policy.
pub fn kms_policy_principals_and_lockout(world: World) -> impl Rule {
    move |request: &Request, traffic: &Traffic| {
        if !(request.is("kms", "CreateKey") || request.is("kms", "PutKeyPolicy")) {
            return Decision::Forward;
        }
        let body = json_body(request);
        let Some(policy) = body.get("Policy").and_then(Value::as_str) else {
            return Decision::Forward;
        };
        let document: Value = serde_json::from_str(policy).unwrap_or(Value::Null);
        let facts = world.facts();
        let now = Instant::now();
        let unknown = principals_of(&document).into_iter().any(|p| {
            facts
                .unknown_principals
                .get(&p)
                .is_some_and(|until| until.is_none_or(|u| now < u))
        });
        if unknown {
            return Decision::Respond(json_error(
                "MalformedPolicyDocumentException",
                "Policy contains a statement with one or more invalid principals.",
            ));
        }
        let bypass = body
            .get("BypassPolicyLockoutSafetyCheck")
            .and_then(Value::as_bool)
            == Some(true);
        let caller = session_of(request, traffic).map(|s| s.role_arn);
        if !bypass && caller.is_some_and(|c| facts.cannot_put_key_policy.contains(&c)) {
            return Decision::Respond(json_error(
                "MalformedPolicyDocumentException",
                "The new key policy will not allow you to update the key policy in the future.",
            ));
        }
        Decision::Forward
    }
}

/// The AWS principal ARNs a policy's statements name (`Principal.AWS`).
fn principals_of(policy: &Value) -> Vec<String> {
    let statements = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    statements
        .into_iter()
        .filter_map(|s| s.get("Principal")?.get("AWS"))
        .flat_map(|p| match p {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
            Value::String(one) => vec![one.as_str()],
            _ => Vec::new(),
        })
        .map(str::to_owned)
        .collect()
}

/// The policy CloudTrail evaluates for key `key_id` now: the last one the
/// traffic wrote, a `PutKeyPolicy` counting only once `window` has passed
/// since it; `None` if the traffic wrote none.
pub(super) fn policy_seen_by_cloudtrail(
    key_id: &str,
    traffic: &Traffic,
    window: Duration,
) -> Option<Value> {
    let now = Instant::now();
    let mut policy = None;
    for e in traffic
        .exchanges
        .iter()
        .filter(|e| e.request.service == "kms" && e.response.status == 200)
    {
        let body = json_body(&e.request);
        let written = match e.request.action.as_str() {
            "CreateKey" => {
                let meta = response_json(e).get("KeyMetadata").cloned();
                let meta = meta.as_ref();
                if meta.and_then(|m| m.get("KeyId")?.as_str()) != Some(key_id) {
                    continue;
                }
                let arn = meta
                    .and_then(|m| m.get("Arn")?.as_str())
                    .unwrap_or_default();
                match body.get("Policy").and_then(Value::as_str) {
                    Some(text) => parse_policy(text),
                    None => default_key_policy(arn),
                }
            }
            "PutKeyPolicy" => {
                if now < e.at + window {
                    continue;
                }
                if request_key_id(e, traffic).as_deref() != Some(key_id) {
                    continue;
                }
                parse_policy(
                    body.get("Policy")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
            }
            // What a read showed was in effect by then (policies written
            // around the layer, e.g. by another actor), unless this key's
            // policy was written through the layer within `window` before
            // that read: CloudTrail may not see that write yet.
            "GetKeyPolicy" => {
                if request_key_id(e, traffic).as_deref() != Some(key_id)
                    || written_within(key_id, traffic, e.at, window)
                    || super::kms::replayed(e)
                {
                    continue;
                }
                parse_policy(
                    response_json(e)
                        .get("Policy")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
            }
            _ => continue,
        };
        policy = Some(written);
    }
    policy
}

/// Whether key `key_id`'s policy was written through the layer in the
/// `window` before `at`.
fn written_within(key_id: &str, traffic: &Traffic, at: Instant, window: Duration) -> bool {
    traffic.exchanges.iter().any(|e| {
        e.is("kms", "PutKeyPolicy")
            && e.response.status == 200
            && e.at <= at
            && at < e.at + window
            && request_key_id(e, traffic).as_deref() == Some(key_id)
    })
}

/// The key ID the `KeyId` of exchange `e`'s request named when it was sent
/// (an ID, a key ARN, or an alias resolved as the traffic then stood).
fn request_key_id(e: &Exchange, traffic: &Traffic) -> Option<String> {
    let account = account_of(&e.request, traffic);
    json_body(&e.request)
        .get("KeyId")
        .and_then(Value::as_str)
        .and_then(|n| resolve_before(n, &account, traffic, e.at))
}

/// A policy document; one that is not JSON gives CloudTrail nothing.
fn parse_policy(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

/// KMS's default key policy for a key created without one: the key's
/// account (its root) may do anything with the key
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html>,
/// "Default key policy").
fn default_key_policy(key_arn: &str) -> Value {
    let parts: Vec<&str> = key_arn.split(':').collect();
    let partition = parts.get(1).copied().unwrap_or("aws");
    let account = parts.get(4).copied().unwrap_or_default();
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*",
        }],
    })
}

/// A KMS request on a key whose key policy explicitly denies the caller is
/// answered `AccessDeniedException` ("User: <session ARN> is not authorized
/// to perform: kms:<Action> on resource: <key ARN> with an explicit deny in
/// a resource-based policy", as KMS words it); moto 5.2.5 does not evaluate
/// key policies at all. An explicit `Deny` wins over any `Allow` ("Policy
/// evaluation logic", IAM User Guide); the evaluator is
/// [`key_policy::evaluate`] (`key_policy.rs`, which cites the IAM pages it
/// follows).
///
/// * The request: `X-Amz-Target` `TrentService.<Action>`, with a `KeyId`
///   (`TargetKeyId` for `CreateAlias` and `UpdateAlias`) by key ID or ARN,
///   or by alias name or ARN as the traffic's `CreateAlias`/`UpdateAlias`
///   set it in the caller's account. Its `EncryptionContext`, if any, gives
///   the `kms:EncryptionContext:<key>` condition keys.
/// * The caller: the role session whose access key signed the request
///   (SigV4 `Credential=`), learnt from a successful `sts:AssumeRole` in
///   the traffic: its `RoleArn` (`aws:PrincipalArn`, path included) and
///   account, and `RoleSessionName` for the message.
/// * The policy: the last one the traffic shows for the key, with no
///   propagation window: the `Policy` of its `CreateKey` (without one,
///   KMS's default key policy), a successful `PutKeyPolicy`, or what a
///   `GetKeyPolicy` answered.
///
/// A request the policy does not allow at all (an implicit deny: no
/// statement for the caller, its role or its account) is answered
/// `AccessDeniedException` too ("... because no resource-based policy
/// allows the kms:<Action> action"): KMS authorizes the key calls trailkey
/// makes by the key policy ("Required permissions: kms:<Action> (key
/// policy)", kms model, each operation), and IAM policies count only where
/// the key policy delegates to the account. `ListKeys`, `ListAliases` and
/// `CreateKey` are IAM-only, and are left out. The evaluator does not see
/// IAM, so a statement naming the caller's account counts as allowing.
///
/// Requests from callers the rule cannot name (the default credentials),
/// on keys whose policy the traffic never showed, or naming no key, go to
/// moto, which allows everything.
pub fn kms_key_policy_denies() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        let kms = request
            .header("x-amz-target")
            .is_some_and(|t| t.starts_with("TrentService."));
        if !kms {
            return Decision::Forward;
        }
        let Some(named) = key_named(request) else {
            return Decision::Forward;
        };
        let Some(session) = session_of(request, traffic) else {
            return Decision::Forward;
        };
        let Some(id) = resolve(&named, &account_of(request, traffic), traffic) else {
            return Decision::Forward;
        };
        let Some(policy) = policy_seen_by_cloudtrail(&id, traffic, Duration::ZERO) else {
            return Decision::Forward;
        };
        let body = json_body(request);
        let mut context: Vec<(String, String)> = body
            .get("EncryptionContext")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                Some((format!("kms:EncryptionContext:{k}"), v.as_str()?.to_owned()))
            })
            .collect();
        // `EnableKeyRotation`'s period, as its condition key has it.
        if let Some(days) = body.get("RotationPeriodInDays").filter(|d| d.is_number()) {
            context.push(("kms:RotationPeriodInDays".to_owned(), days.to_string()));
        }
        let action = format!("kms:{}", request.action);
        let asked = key_policy::Request {
            caller: key_policy::Caller::Aws {
                arn: &session.role_arn,
                account: &session.account,
            },
            action: &action,
            context: context
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        };
        match key_policy::evaluate(&policy, &asked) {
            key_policy::Decision::ExplicitlyDenied { .. } => Decision::Respond(json_error(
                "AccessDeniedException",
                &format!(
                    "User: {} is not authorized to perform: {action} on resource: {} \
                     with an explicit deny in a resource-based policy",
                    session.arn,
                    key_arn(&id, &named, traffic)
                ),
            )),
            // Only the key policy can let a principal use a key ("Required
            // permissions: kms:X (key policy)", kms model): without a
            // statement for the caller or its account, IAM cannot help.
            key_policy::Decision::NotAllowed
                if !["ListAliases", "ListKeys", "CreateKey"].contains(&request.action.as_str()) =>
            {
                Decision::Respond(json_error(
                    "AccessDeniedException",
                    &format!(
                        "User: {} is not authorized to perform: {action} on resource: {} \
                         because no resource-based policy allows the {action} action",
                        session.arn,
                        key_arn(&id, &named, traffic)
                    ),
                ))
            }
            _ => Decision::Forward,
        }
    }
}
