//! The key policy: render the canonical statements from the template in
//! `policies/` (embedded at build time), merge them into the key's current
//! policy without dropping anyone else's statements, and compare policies
//! semantically.
//!
//! Ownership is by `Sid`: a statement whose `Sid` starts with
//! [`OUR_SID_PREFIX`] is trailkey's; every other statement is foreign and is
//! kept as it is, in its order.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{AccountId, Desired};
use crate::model::pattern::{self, arn_like, wildcard_match};

/// The policy template, with `${...}` placeholders.
pub const TEMPLATE: &str = include_str!("../policies/org-cloudtrail-key-policy.json");
/// Statements whose `Sid` starts with this are managed by trailkey.
pub const OUR_SID_PREFIX: &str = "Trailkey";
/// KMS rejects key policies larger than this (bytes).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// The statement that lets the declared readers decrypt, when there are any.
pub const READERS_SID: &str = "TrailkeyDeclaredReadersDecrypt";
/// The statement that protects the key (`key.protect`).
pub const PROTECT_SID: &str = "TrailkeyProtectKey";
/// The statement that keeps the key's rotation period (`key.protect` with
/// `key.rotation_period_days`).
pub const PROTECT_PERIOD_SID: &str = "TrailkeyProtectRotationPeriod";
/// The template's statement for the Log Archive and management readers,
/// whose condition the declared readers' statement repeats.
const LOG_READERS_SID: &str = "TrailkeyLogReadersDecrypt";
/// What `key.protect` denies: the calls that stop CloudTrail's encryption
/// (a disabled or deleted key) or weaken it (rotation off). Never
/// `kms:PutKeyPolicy`, so the protection can always be lifted by whoever
/// may change the policy, and nobody is locked out.
pub const PROTECTED_ACTIONS: [&str; 3] = [
    "kms:DisableKey",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKeyRotation",
];

/// The statement that lets AWS Config use the key of Control Tower's trail.
pub const CONFIG_SID: &str = "TrailkeyConfigEncryptDecrypt";

/// What the policy is rendered from.
#[derive(Debug, Clone)]
pub struct PolicyInputs<'a> {
    pub partition: &'a str,
    /// The key's account, whose root administers it.
    pub key_account: &'a AccountId,
    pub management: &'a str,
    pub log_archive: &'a AccountId,
    pub trail_arn: &'a str,
    /// Declared readers' principals (account roots, role and user ARNs).
    pub readers: Vec<String>,
    /// With `key.protect`: the `aws:PrincipalArn` patterns exempt from it.
    pub protect_exempt: Option<Vec<String>>,
    /// With `key.protect`: `key.rotation_period_days`, which only the
    /// exempt may change.
    pub protect_period: Option<i32>,
    /// For Control Tower's trail: what the landing zone's key also grants.
    pub control_tower: Option<ControlTowerGrants<'a>>,
}

/// What the key of Control Tower's trail grants besides a trail key's
/// statements: the Audit account reads the logs, and AWS Config, which
/// Control Tower points at the same key in every enrolled account
/// (Control Tower guide, "Optionally configure AWS KMS keys"), encrypts
/// and decrypts with it.
#[derive(Debug, Clone)]
pub struct ControlTowerGrants<'a> {
    /// The Audit account (`accounts.security_tooling`).
    pub audit: &'a AccountId,
    /// The organization's ID: AWS Config's calls are allowed only on behalf
    /// of the organization's accounts (`aws:SourceOrgID`).
    pub organization_id: &'a str,
}

impl<'a> PolicyInputs<'a> {
    /// The inputs for `desired`, the organization's management account and
    /// ID, and the trail's ARN.
    pub fn of(
        desired: &'a Desired,
        management: &'a str,
        organization_id: &'a str,
        trail_arn: &'a str,
    ) -> Self {
        PolicyInputs {
            partition: desired.partition(),
            key_account: &desired.key_account,
            management,
            log_archive: &desired.log_archive,
            trail_arn,
            readers: desired.readers.policy_principals(desired.partition()),
            protect_exempt: desired.protect_exempt(),
            protect_period: desired
                .rotation_period_days
                .filter(|_| desired.protect.is_some()),
            control_tower: desired.landing_zone.then_some(ControlTowerGrants {
                audit: &desired.security_tooling,
                organization_id,
            }),
        }
    }
}

/// The canonical policy: trailkey's statements only: the template's, then
/// the declared readers' and the protection, when configured.
pub fn render(inputs: &PolicyInputs<'_>) -> Value {
    let vars = [
        ("${partition}", inputs.partition),
        ("${key_account}", inputs.key_account.as_str()),
        ("${management_account}", inputs.management),
        ("${log_archive_account}", inputs.log_archive.as_str()),
        ("${trail_arn}", inputs.trail_arn),
    ];
    let mut policy: Value = serde_json::from_str(TEMPLATE)
        .expect("policies/org-cloudtrail-key-policy.json is valid JSON");
    substitute(&mut policy, &vars);
    let readers = (!inputs.readers.is_empty())
        .then(|| readers_statement(&policy, &inputs.readers))
        .flatten();
    let protect = inputs.protect_exempt.as_deref().map(|exempt| {
        let period = inputs
            .protect_period
            .map(|days| protect_period_statement(exempt, days));
        std::iter::once(protect_statement(exempt)).chain(period)
    });
    let config = inputs.control_tower.as_ref().map(|ct| {
        let audit = format!("arn:{}:iam::{}:root", inputs.partition, ct.audit);
        add_log_reader(&mut policy, audit);
        config_statement(ct.organization_id)
    });
    if let Some(Value::Array(list)) = policy.get_mut("Statement") {
        list.extend(
            config
                .into_iter()
                .chain(readers)
                .chain(protect.into_iter().flatten()),
        );
    }
    policy
}

/// Adds `principal` to the template's Log Archive readers statement.
fn add_log_reader(policy: &mut Value, principal: String) {
    let Some(Value::Array(list)) = policy.get_mut("Statement") else {
        return;
    };
    let readers = list
        .iter_mut()
        .find(|s| sid(s) == Some(LOG_READERS_SID))
        .and_then(|s| s.pointer_mut("/Principal/AWS"))
        .and_then(Value::as_array_mut);
    if let Some(readers) = readers {
        readers.push(json!(principal));
    }
}

/// AWS Config's use of the key of Control Tower's trail: `kms:Decrypt` and
/// `kms:GenerateDataKey` (Control Tower guide, "Optionally configure AWS
/// KMS keys"), on behalf of the organization's accounts only. AWS Config's
/// guide scopes its service principal by `aws:SourceAccount`; Control Tower
/// sets the key on the recorder of every enrolled account, so the source
/// is any account of the organization, `aws:SourceOrgID`, and an account
/// enrolled later needs no policy change.
pub fn config_statement(organization_id: &str) -> Value {
    json!({
        "Sid": CONFIG_SID,
        "Effect": "Allow",
        "Principal": { "Service": "config.amazonaws.com" },
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": { "StringEquals": { "aws:SourceOrgID": organization_id } }
    })
}

/// The declared readers' statement: the template's Log Archive readers
/// statement (the same action and encryption-context condition) for
/// `principals`.
fn readers_statement(template: &Value, principals: &[String]) -> Option<Value> {
    let mut statement = statements(template)
        .into_iter()
        .find(|s| sid(s) == Some(LOG_READERS_SID))?
        .clone();
    statement["Sid"] = json!(READERS_SID);
    statement["Principal"] = json!({ "AWS": principals });
    Some(statement)
}

/// The protection: `Deny` of [`PROTECTED_ACTIONS`] to every principal
/// whose `aws:PrincipalArn` is not like one of `exempt`.
pub fn protect_statement(exempt: &[String]) -> Value {
    json!({
        "Sid": PROTECT_SID,
        "Effect": "Deny",
        "Principal": { "AWS": "*" },
        "Action": PROTECTED_ACTIONS,
        "Resource": "*",
        "Condition": { "ArnNotLike": { "aws:PrincipalArn": exempt } }
    })
}

/// The rotation period's protection: `Deny` of `kms:EnableKeyRotation` to
/// every principal but `exempt`, unless it sets `days`. Without
/// `RotationPeriodInDays` the request sets KMS's default, so the
/// `...IfExists` form denies it too. `kms:RotationPeriodInDays` is KMS's
/// condition key for that parameter (KMS API model, `EnableKeyRotation`,
/// `RotationPeriodInDays`: "You can use the kms:RotationPeriodInDays
/// condition key to further constrain the values that principals can
/// specify").
pub fn protect_period_statement(exempt: &[String], days: i32) -> Value {
    json!({
        "Sid": PROTECT_PERIOD_SID,
        "Effect": "Deny",
        "Principal": { "AWS": "*" },
        "Action": "kms:EnableKeyRotation",
        "Resource": "*",
        "Condition": {
            "ArnNotLike": { "aws:PrincipalArn": exempt },
            "NumericNotEqualsIfExists": { "kms:RotationPeriodInDays": days.to_string() }
        }
    })
}

/// Whether [`protect_statement`]`(exempt)` leaves `principal_arn` (as
/// `aws:PrincipalArn` holds it) free to call the protected actions:
/// `ArnNotLike` is false for it, so the `Deny` does not apply.
pub fn protect_exempts(exempt: &[String], principal_arn: &str) -> bool {
    pattern::any_arn_like(exempt, principal_arn)
}

fn substitute(v: &mut Value, vars: &[(&str, &str)]) {
    match v {
        Value::String(s) => {
            for (k, val) in vars {
                if s.contains(k) {
                    *s = s.replace(k, val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, vars)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, vars)),
        _ => {}
    }
}

/// Makes trailkey's CloudTrail statements in `ours` (rendered for
/// `trail_arn`) allow the trails `also` too: each `aws:SourceArn`
/// condition lists `trail_arn`, then those.
pub fn allow_trails(ours: &mut Value, trail_arn: &str, also: &[&str]) {
    if also.is_empty() {
        return;
    }
    let arns: Vec<&str> = std::iter::once(trail_arn)
        .chain(also.iter().copied())
        .collect();
    if let Some(Value::Array(list)) = ours.get_mut("Statement") {
        for statement in list {
            if let Some(arn) = statement.pointer_mut("/Condition/StringEquals/aws:SourceArn")
                && arn == trail_arn
            {
                *arn = json!(arns);
            }
        }
    }
}

/// The statements of a policy, a single statement object counting as a list of one.
pub fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    }
}

pub fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

pub fn is_ours(statement: &Value) -> bool {
    sid(statement).is_some_and(|s| s.starts_with(OUR_SID_PREFIX))
}

/// The policy trailkey would attach: its own statements (from `ours`),
/// followed by every foreign statement of `current` in its original order.
/// `Version` comes from the template; `Id` is kept from `current` if it has one.
pub fn merge(current: Option<&Value>, ours: &Value) -> Value {
    let mut merged: Vec<Value> = statements(ours).into_iter().cloned().collect();
    if let Some(current) = current {
        merged.extend(
            statements(current)
                .into_iter()
                .filter(|s| !is_ours(s))
                .cloned(),
        );
    }
    let id = current
        .and_then(|c| c.get("Id"))
        .or_else(|| ours.get("Id"))
        .cloned();
    let mut doc = Map::new();
    doc.insert(
        "Version".into(),
        ours.get("Version").cloned().unwrap_or(json!("2012-10-17")),
    );
    if let Some(id) = id {
        doc.insert("Id".into(), id);
    }
    doc.insert("Statement".into(), Value::Array(merged));
    Value::Object(doc)
}

/// A canonical form for comparison: statement order, single value vs
/// one-element list, value order in lists, key order, the case of action
/// names and condition keys, and `"AWS": "<account id>"` vs
/// `"arn:<partition>:iam::<account id>:root"` do not matter. `Id` is ignored.
pub fn normalize(policy: &Value, partition: &str) -> Value {
    let mut stmts: Vec<Value> = statements(policy)
        .into_iter()
        .map(|s| sorted_keys(&normalize_statement(s, partition)))
        .collect();
    stmts.sort_by_cached_key(|s| s.to_string());
    json!({
        "Version": policy.get("Version").cloned().unwrap_or(Value::Null),
        "Statement": stmts,
    })
}

/// `v` with every object's keys in sorted order, so that its text is
/// canonical: serde_json keeps insertion order (its `preserve_order`
/// feature), so the input's key order would otherwise show through.
fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_keys(&o[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// True when the two policies grant the same thing (see [`normalize`]).
pub fn equivalent(a: &Value, b: &Value, partition: &str) -> bool {
    normalize(a, partition) == normalize(b, partition)
}

fn normalize_statement(s: &Value, partition: &str) -> Value {
    let Value::Object(obj) = s else {
        return s.clone();
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let nv = match k.as_str() {
            "Action" | "NotAction" => string_set(v, |x| x.to_ascii_lowercase()),
            "Resource" | "NotResource" => string_set(v, str::to_owned),
            "Principal" | "NotPrincipal" => normalize_principal(v, partition),
            "Condition" => normalize_condition(v),
            _ => v.clone(),
        };
        out.insert(k.clone(), nv);
    }
    Value::Object(out)
}

/// A string or list of strings as a sorted, de-duplicated list.
fn string_set(v: &Value, f: impl Fn(&str) -> String) -> Value {
    let mut items: Vec<String> = match v {
        Value::String(s) => vec![f(s)],
        // Non-string values (malformed policies) go through `f` as text too,
        // so that normalizing twice gives the same result.
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| f(&x.to_string()), &f))
            .collect(),
        other => vec![f(&other.to_string())],
    };
    items.sort();
    items.dedup();
    Value::Array(items.into_iter().map(Value::String).collect())
}

fn normalize_principal(v: &Value, partition: &str) -> Value {
    match v {
        Value::String(s) if s == "*" => json!({ "AWS": ["*"] }),
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, vals) in o {
                let set = if k == "AWS" {
                    string_set(vals, |p| match AccountId::parse(p) {
                        Some(id) => format!("arn:{partition}:iam::{id}:root"),
                        None => p.to_owned(),
                    })
                } else {
                    string_set(vals, str::to_owned)
                };
                out.insert(k.clone(), set);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn normalize_condition(v: &Value) -> Value {
    let Value::Object(ops) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (op, keys) in ops {
        let Value::Object(keys) = keys else {
            out.insert(op.clone(), keys.clone());
            continue;
        };
        let mut nk = Map::new();
        for (key, vals) in keys {
            nk.insert(key.to_ascii_lowercase(), string_set(vals, str::to_owned));
        }
        out.insert(op.clone(), Value::Object(nk));
    }
    Value::Object(out)
}

/// How the statements of `after` differ from `before`, by `Sid`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct StatementDiff {
    /// trailkey statements that are missing and will be added.
    pub added: Vec<String>,
    /// trailkey statements present with different content.
    pub changed: Vec<ChangedStatement>,
    /// trailkey statements (by prefix) that the template no longer has.
    pub removed: Vec<String>,
    /// Foreign statements, kept unchanged (a statement without `Sid` shows as `(no Sid)`).
    pub kept: Vec<String>,
}

/// A trailkey statement whose content differs, field by field.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ChangedStatement {
    pub sid: String,
    pub fields: Vec<FieldChange>,
}

/// One changed field of a statement, in the normalized form (lists sorted,
/// condition keys lower-case); `null` when absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FieldChange {
    /// Dotted path, e.g. `Condition.StringEquals.aws:sourcearn`.
    pub path: String,
    pub before: Value,
    pub after: Value,
}

impl StatementDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// The `Sid`s of the statements trailkey does not own, in order.
/// The `Sid`s of `policy` that use trailkey's prefix but name no statement
/// trailkey writes (the template's, the readers' and the protection): a
/// statement someone else named `Trailkey...`, which a merge replaces like
/// any of trailkey's own.
pub fn unknown_reserved_sids(policy: &Value) -> Vec<String> {
    let template: Value = serde_json::from_str(TEMPLATE).unwrap_or_default();
    let known: Vec<&str> = statements(&template)
        .into_iter()
        .filter_map(sid)
        .chain([READERS_SID, PROTECT_SID, PROTECT_PERIOD_SID])
        .collect();
    statements(policy)
        .into_iter()
        .filter(|s| is_ours(s))
        .filter_map(sid)
        .filter(|s| !known.contains(s))
        .map(str::to_owned)
        .collect()
}

pub fn foreign_sids(policy: &Value) -> Vec<String> {
    statements(policy)
        .into_iter()
        .filter(|s| !is_ours(s))
        .map(|s| sid(s).unwrap_or("(no Sid)").to_owned())
        .collect()
}

pub fn diff(before: Option<&Value>, after: &Value, partition: &str) -> StatementDiff {
    let by_sid = |p: Option<&Value>| -> BTreeMap<String, Value> {
        p.map(statements)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| is_ours(s))
            .filter_map(|s| Some((sid(s)?.to_owned(), normalize_statement(s, partition))))
            .collect()
    };
    let old = by_sid(before);
    let new = by_sid(Some(after));
    let mut d = StatementDiff::default();
    // Keep the template's order for readability.
    for s in statements(after).into_iter().filter(|s| is_ours(s)) {
        let Some(id) = sid(s) else { continue };
        match (old.get(id), new.get(id)) {
            (None, _) => d.added.push(id.to_owned()),
            (Some(o), Some(n)) if o != n => d.changed.push(ChangedStatement {
                sid: id.to_owned(),
                fields: field_changes(o, n),
            }),
            _ => {}
        }
    }
    d.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    d.kept = before.map(foreign_sids).unwrap_or_default();
    d
}

/// The fields that differ between two normalized statements, in the order
/// of their paths: object keys are followed, and a list is one value, so a
/// change inside a list is reported as the whole list. One walk of both
/// statements, so a foreign statement under a trailkey `Sid` that differs in
/// thousands of places costs time in its size only.
fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    differing(Some(before), Some(after), &mut Vec::new(), &mut changes);
    changes
}

fn differing<'v>(
    before: Option<&'v Value>,
    after: Option<&'v Value>,
    path: &mut Vec<&'v str>,
    changes: &mut Vec<FieldChange>,
) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for key in keys {
                path.push(key);
                differing(b.get(key), a.get(key), path, changes);
                path.pop();
            }
        }
        (b, a) if b == a => {}
        (b, a) => changes.push(FieldChange {
            path: path.join("."),
            before: b.cloned().unwrap_or(Value::Null),
            after: a.cloned().unwrap_or(Value::Null),
        }),
    }
}

/// The actions CloudTrail needs on the key.
const CLOUDTRAIL_NEEDS: &[&str] = &["kms:GenerateDataKey", "kms:DescribeKey", "kms:Decrypt"];
/// The action the log readers need: they only decrypt log files.
const READERS_NEED: &[&str] = &["kms:Decrypt"];
/// CloudTrail's service principal.
const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// The key whose policy is read, as a `Resource` element names it.
#[derive(Debug, Clone, Copy)]
pub enum KeyArn<'a> {
    /// An existing key, by its ARN.
    Known(&'a str),
    /// A key not created yet: `prefix` is `arn:<p>:kms:<region>:<account>:key/`,
    /// and only a pattern that matches every key ID after it names the key.
    New { prefix: &'a str },
}

/// A principal trailkey's statements let use the key, as the analysis of
/// foreign `Deny` statements sees it.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// An account's root (which stands for every principal of the account),
    /// or a role or user ARN.
    pub arn: &'a str,
    /// How the finding names it.
    pub what: &'a str,
    /// Whether a `Deny` of `kms:Decrypt` to it breaks the setup: the Log
    /// Archive account, which owns the log files.
    pub essential: bool,
}

/// A foreign `Deny` statement that denies, or may deny, what CloudTrail or
/// a reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingDeny {
    /// Which statement denies what to whom, in a sentence.
    pub message: String,
    /// The statement certainly denies CloudTrail `kms:GenerateDataKey*` for
    /// the trail, or the Log Archive account `kms:Decrypt`: the trail cannot
    /// deliver readable logs, and only removing the statement fixes it.
    pub breaks_delivery: bool,
}

/// Whether a statement applies to a request, as far as trailkey can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    Yes,
    /// The statement has conditions trailkey does not evaluate.
    Maybe,
    No,
}

/// Foreign `Deny` statements that deny, or may deny, CloudTrail or the log
/// readers what they need on the key `key`, for the trail `trail_arn`.
///
/// A statement applies to a request when its principal, action and
/// resource all match and its conditions hold (IAM User Guide, "Policy
/// evaluation logic"); each element is read as IAM reads it:
/// - `NotPrincipal` denies everyone *except* the principals it lists. A
///   role or user is exempt only when its account's root is listed too
///   ("you must also specify the account ARN of the not-denied principal",
///   IAM User Guide, "AWS JSON policy elements: NotPrincipal");
/// - `NotAction` denies every action except those it lists;
/// - `Resource` names the key when it is `*` (a key policy applies to its
///   own key only, so `*` is that key) or an ARN pattern that matches the
///   key's ARN; `NotResource` denies every resource except those it lists.
///
/// Conditions are evaluated for CloudTrail when they only test
/// `aws:SourceArn` with a string or ARN operator (CloudTrail sends the
/// trail's ARN); any other condition makes the statement one that "may
/// deny", never one that breaks delivery.
pub fn blocking_denies(
    policy: &Value,
    partition: &str,
    key: KeyArn<'_>,
    trail_arn: &str,
    readers: &[Reader<'_>],
) -> Vec<BlockingDeny> {
    statements(policy)
        .into_iter()
        .filter(|s| !is_ours(s) && s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .filter_map(|s| {
            let n = normalize_statement(s, partition);
            if !names_key(&n, key) {
                return None;
            }
            let mut hits: Vec<Hit> = cloudtrail_hit(s, &n, trail_arn).into_iter().collect();
            hits.extend(
                readers
                    .iter()
                    .filter_map(|r| reader_hit(s, &n, partition, r)),
            );
            (!hits.is_empty()).then(|| blocking_deny(s, hits))
        })
        .collect()
}

/// One principal a foreign `Deny` denies what it needs: whom, the actions,
/// whether the Deny applies for certain (no condition trailkey cannot
/// evaluate), and whether it breaks delivery.
struct Hit {
    whom: String,
    actions: Vec<&'static str>,
    certain: bool,
    breaks: bool,
}

/// CloudTrail, if the normalized Deny `n` (of statement `s`) denies it what
/// it needs for the trail `trail_arn`.
fn cloudtrail_hit(s: &Value, n: &Value, trail_arn: &str) -> Option<Hit> {
    if !denies_principal(n, "Service", CLOUDTRAIL, None) {
        return None;
    }
    let applies = if s.get("Condition").is_some() {
        source_arn_condition(n, trail_arn)
    } else {
        Applies::Yes
    };
    let actions = denied_actions(n, CLOUDTRAIL_NEEDS);
    if applies == Applies::No || actions.is_empty() {
        return None;
    }
    let certain = applies == Applies::Yes;
    Some(Hit {
        whom: "CloudTrail".to_owned(),
        breaks: certain && actions.contains(&"kms:GenerateDataKey"),
        actions,
        certain,
    })
}

/// `reader`, if the normalized Deny `n` (of statement `s`) denies it
/// decryption.
fn reader_hit(s: &Value, n: &Value, partition: &str, reader: &Reader<'_>) -> Option<Hit> {
    let account = reader.arn.split(':').nth(4).unwrap_or_default();
    let root = format!("arn:{partition}:iam::{account}:root");
    let actions = denied_actions(n, READERS_NEED);
    if actions.is_empty() || !denies_principal(n, "AWS", reader.arn, Some(&root)) {
        return None;
    }
    let certain = s.get("Condition").is_none();
    let shown = if reader.arn == root {
        account
    } else {
        reader.arn
    };
    Some(Hit {
        whom: format!("{} ({shown})", reader.what),
        actions,
        certain,
        breaks: certain && reader.essential,
    })
}

/// The finding for statement `s` and whom it denies; principals denied the
/// same actions are named together.
fn blocking_deny(s: &Value, hits: Vec<Hit>) -> BlockingDeny {
    let certain = hits.iter().all(|h| h.certain);
    let breaks_delivery = hits.iter().any(|h| h.breaks);
    let mut groups: Vec<(Vec<&str>, Vec<String>)> = Vec::new();
    for hit in hits {
        match groups.iter_mut().find(|(a, _)| *a == hit.actions) {
            Some((_, names)) => names.push(hit.whom),
            None => groups.push((hit.actions, vec![hit.whom])),
        }
    }
    let what = groups
        .iter()
        .map(|(actions, whom)| format!("{} to {}", actions.join(", "), listing(whom)))
        .collect::<Vec<_>>()
        .join("; ");
    let (verb, unsure) = if certain {
        ("explicitly denies", "")
    } else {
        ("may deny", " (under conditions trailkey does not evaluate)")
    };
    BlockingDeny {
        message: format!(
            "statement {:?} {verb} {what}{unsure}: an explicit Deny overrides trailkey's Allow statements",
            sid(s).unwrap_or("(no Sid)"),
        ),
        breaks_delivery,
    }
}

/// `a`, `a and b`, `a, b and c`.
fn listing(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Which of `needed` the normalized statement's `Action` or `NotAction`
/// covers: `NotAction` denies every action it does not list.
fn denied_actions(normalized: &Value, needed: &[&'static str]) -> Vec<&'static str> {
    let listed = |patterns: &Vec<Value>, action: &str| {
        patterns
            .iter()
            .filter_map(Value::as_str)
            .any(|p| wildcard_match(p, &action.to_ascii_lowercase()))
    };
    match (normalized.get("Action"), normalized.get("NotAction")) {
        (Some(Value::Array(patterns)), _) => needed
            .iter()
            .copied()
            .filter(|a| listed(patterns, a))
            .collect(),
        (_, Some(Value::Array(patterns))) => needed
            .iter()
            .copied()
            .filter(|a| !listed(patterns, a))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the normalized statement's principal covers `who` (of `kind`,
/// `AWS` or `Service`). `root` is the account root of an AWS principal:
/// `Principal` naming it covers every principal of the account, and
/// `NotPrincipal` exempts a role or user only when it lists it.
fn denies_principal(normalized: &Value, kind: &str, who: &str, root: Option<&str>) -> bool {
    let listed = |element: &str, name: &str| {
        normalized
            .get(element)
            .and_then(|p| p.get(kind))
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|v| v == name))
    };
    if normalized.get("NotPrincipal").is_some() {
        let exempt = match root {
            Some(root) => listed("NotPrincipal", root),
            None => listed("NotPrincipal", who),
        };
        return !exempt;
    }
    principal_has(normalized, "AWS", "*")
        || listed("Principal", who)
        || root.is_some_and(|root| listed("Principal", root))
}

/// Whether the normalized statement's `Resource` or `NotResource` covers
/// the key. With neither (KMS refuses such a policy), it does.
fn names_key(normalized: &Value, key: KeyArn<'_>) -> bool {
    let any = |element: &str| {
        normalized
            .get(element)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .any(|p| resource_matches(p, key))
            })
    };
    match (any("Resource"), any("NotResource")) {
        (Some(matched), _) => matched,
        (None, Some(excluded)) => !excluded,
        (None, None) => true,
    }
}

/// Whether a `Resource` pattern names `key`. An ARN pattern is matched part
/// by part (a `*` stays in its part); a pattern that is not a whole ARN is
/// matched as one text. A key not created yet is named only by `*` or a
/// pattern that matches every key of its account and Region.
fn resource_matches(pattern: &str, key: KeyArn<'_>) -> bool {
    if pattern == "*" {
        return true;
    }
    match key {
        KeyArn::Known(arn) if pattern.split(':').count() >= 6 => arn_like(pattern, arn),
        KeyArn::Known(arn) => wildcard_match(pattern, arn),
        KeyArn::New { prefix } => {
            // The pattern without its trailing stars must match a beginning
            // of the prefix: the stars then take any key ID.
            let head = pattern.trim_end_matches('*');
            head.len() < pattern.len() && wildcard_match(&format!("{head}*"), prefix)
        }
    }
}

/// Whether a statement's conditions hold for CloudTrail writing for the
/// trail `trail_arn`: evaluated when every condition tests `aws:SourceArn`
/// with a string or ARN operator, [`Applies::Maybe`] otherwise.
fn source_arn_condition(normalized: &Value, trail_arn: &str) -> Applies {
    let Some(Value::Object(ops)) = normalized.get("Condition") else {
        return Applies::Maybe;
    };
    let mut all = true;
    for (op, keys) in ops {
        let Value::Object(keys) = keys else {
            return Applies::Maybe;
        };
        for (key, values) in keys {
            if key != "aws:sourcearn" {
                return Applies::Maybe;
            }
            let values: Vec<&str> = values
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let holds = match op.as_str() {
                "StringEquals" => values.contains(&trail_arn),
                "StringNotEquals" => !values.contains(&trail_arn),
                "StringLike" => values.iter().any(|v| wildcard_match(v, trail_arn)),
                "StringNotLike" => !values.iter().any(|v| wildcard_match(v, trail_arn)),
                "ArnEquals" | "ArnLike" => values.iter().any(|v| arn_like(v, trail_arn)),
                "ArnNotEquals" | "ArnNotLike" => !values.iter().any(|v| arn_like(v, trail_arn)),
                _ => return Applies::Maybe,
            };
            all &= holds;
        }
    }
    if all { Applies::Yes } else { Applies::No }
}

fn principal_has(normalized: &Value, kind: &str, who: &str) -> bool {
    normalized
        .get("Principal")
        .and_then(|p| p.get(kind))
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|v| v == who))
}

/// The document sent to KMS: pretty-printed JSON, readable in the console,
/// or compact JSON when only that fits in [`MAX_POLICY_BYTES`].
pub fn to_document(policy: &Value) -> String {
    let pretty = serde_json::to_string_pretty(policy).expect("a JSON value serializes");
    if pretty.len() <= MAX_POLICY_BYTES {
        pretty
    } else {
        policy.to_string()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
