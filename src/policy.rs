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

/// What the policy is rendered from.
#[derive(Debug, Clone)]
pub struct PolicyInputs<'a> {
    pub partition: &'a str,
    pub security_tooling: &'a AccountId,
    pub management: &'a str,
    pub log_archive: &'a AccountId,
    pub trail_arn: &'a str,
    /// Declared readers' principals (account roots, role and user ARNs).
    pub readers: Vec<String>,
    /// With `key.protect`: the `aws:PrincipalArn` patterns exempt from it.
    pub protect_exempt: Option<Vec<String>>,
}

impl<'a> PolicyInputs<'a> {
    /// The inputs for `desired`, the organization's management account and
    /// the trail's ARN.
    pub fn of(desired: &'a Desired, management: &'a str, trail_arn: &'a str) -> Self {
        PolicyInputs {
            partition: desired.partition(),
            security_tooling: &desired.security_tooling,
            management,
            log_archive: &desired.log_archive,
            trail_arn,
            readers: desired.readers.policy_principals(desired.partition()),
            protect_exempt: desired.protect_exempt(),
        }
    }
}

/// The canonical policy: trailkey's statements only: the template's, then
/// the declared readers' and the protection, when configured.
pub fn render(inputs: &PolicyInputs<'_>) -> Value {
    let vars = [
        ("${partition}", inputs.partition),
        (
            "${security_tooling_account}",
            inputs.security_tooling.as_str(),
        ),
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
    let protect = inputs.protect_exempt.as_deref().map(protect_statement);
    if let Some(Value::Array(list)) = policy.get_mut("Statement") {
        list.extend(readers.into_iter().chain(protect));
    }
    policy
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

/// Whether [`protect_statement`]`(exempt)` leaves `principal_arn` (as
/// `aws:PrincipalArn` holds it) free to call the protected actions:
/// `ArnNotLike` is false for it, so the `Deny` does not apply.
pub fn protect_exempts(exempt: &[String], principal_arn: &str) -> bool {
    exempt
        .iter()
        .any(|pattern| arn_like(pattern, principal_arn))
}

/// IAM's `ArnLike`: the six colon-separated parts matched one by one, with
/// `*` and `?`, the resource part taking the rest of the ARN.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| wildcard_match(p, a))
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedStatement {
    pub sid: String,
    pub fields: Vec<FieldChange>,
}

/// One changed field of a statement, in the normalized form (lists sorted,
/// condition keys lower-case); `null` when absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        .chain([READERS_SID, PROTECT_SID])
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

/// The actions CloudTrail and the log readers need.
const NEEDED_ACTIONS: &[&str] = &["kms:GenerateDataKey", "kms:DescribeKey", "kms:Decrypt"];

/// Foreign `Deny` statements that may block CloudTrail or the log readers,
/// each described in a sentence. `readers` are (principal ARN, description):
/// an account's root, or a role or user, which a Deny on its account's root
/// blocks too.
pub fn blocking_denies(policy: &Value, partition: &str, readers: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for s in statements(policy) {
        if is_ours(s) || s.get("Effect").and_then(Value::as_str) != Some("Deny") {
            continue;
        }
        let n = normalize_statement(s, partition);
        let mut whom = Vec::new();
        if s.get("NotPrincipal").is_some() || principal_has(&n, "AWS", "*") {
            whom.push("everyone, CloudTrail and the log readers included".to_owned());
        } else {
            if principal_has(&n, "Service", "cloudtrail.amazonaws.com") {
                whom.push("CloudTrail".to_owned());
            }
            for (arn, what) in readers {
                let account = arn.split(':').nth(4).unwrap_or_default();
                let root = format!("arn:{partition}:iam::{account}:root");
                if principal_has(&n, "AWS", arn) || principal_has(&n, "AWS", &root) {
                    let shown = if *arn == root { account } else { arn };
                    whom.push(format!("{what} ({shown})"));
                }
            }
        }
        let actions: Vec<&str> = match (n.get("Action"), n.get("NotAction")) {
            (Some(Value::Array(patterns)), _) => NEEDED_ACTIONS
                .iter()
                .copied()
                .filter(|a| {
                    patterns
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|p| wildcard_match(p, &a.to_ascii_lowercase()))
                })
                .collect(),
            (_, Some(Value::Array(patterns))) => NEEDED_ACTIONS
                .iter()
                .copied()
                .filter(|a| {
                    !patterns
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|p| wildcard_match(p, &a.to_ascii_lowercase()))
                })
                .collect(),
            _ => Vec::new(),
        };
        if whom.is_empty() || actions.is_empty() {
            continue;
        }
        let conditional = if s.get("Condition").is_some() {
            " (under conditions)"
        } else {
            ""
        };
        out.push(format!(
            "statement {:?} explicitly denies {} to {}{conditional}: an explicit Deny overrides trailkey's Allow statements",
            sid(s).unwrap_or("(no Sid)"),
            actions.join(", "),
            whom.join(" and ")
        ));
    }
    out
}

fn principal_has(normalized: &Value, kind: &str, who: &str) -> bool {
    normalized
        .get("Principal")
        .and_then(|p| p.get(kind))
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|v| v == who))
}

/// IAM action wildcards: `*` any run, `?` one character (`pattern` is
/// lower-case, as normalized). The pattern comes from a policy someone else
/// wrote, so matching must stay cheap whatever it holds: this is the greedy
/// matcher that, on a mismatch, only moves the text position of the last `*`
/// forward, so it takes at most O(pattern × text) steps (a backtracking
/// matcher is exponential in the number of `*`).
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and the text
    // position that `*` has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                pi += 1;
                star = Some((pi, ti));
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((resume, swallowed)) => {
                    pi = resume;
                    ti = swallowed + 1;
                    star = Some((resume, ti));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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
mod tests {
    use super::*;

    fn acct(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    fn ours() -> Value {
        render(&PolicyInputs {
            partition: "aws",
            security_tooling: &acct("111111111111"),
            management: "333333333333",
            log_archive: &acct("222222222222"),
            trail_arn: "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail",
            readers: Vec::new(),
            protect_exempt: None,
        })
    }

    #[test]
    fn render_fills_every_placeholder() {
        let text = ours().to_string();
        assert!(!text.contains("${"), "{text}");
        assert!(text.contains("arn:aws:iam::111111111111:root"));
        assert!(text.contains("arn:aws:iam::222222222222:root"));
        assert!(text.contains("arn:aws:iam::333333333333:root"));
        assert!(text.contains("arn:aws:cloudtrail:*:333333333333:trail/*"));
        assert!(text.contains(
            "\"aws:SourceArn\":\"arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail\""
        ));
        assert!(statements(&ours()).iter().all(|s| is_ours(s)));
    }

    #[test]
    fn merge_keeps_foreign_statements_in_order_and_replaces_ours() {
        let current = json!({
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                 "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "TrailkeyLogReadersDecrypt", "Effect": "Allow",
                 "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "kms:Decrypt", "Resource": "*"},
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444444444444:root"}, "Action": "kms:Encrypt", "Resource": "*"}
            ]
        });
        let merged = merge(Some(&current), &ours());
        let sids: Vec<_> = statements(&merged).iter().map(|s| sid(s)).collect();
        assert_eq!(
            sids,
            vec![
                Some("TrailkeyRootAdministration"),
                Some("TrailkeyCloudTrailEncrypt"),
                Some("TrailkeyCloudTrailDescribeKey"),
                Some("TrailkeyCloudTrailDecrypt"),
                Some("TrailkeyLogReadersDecrypt"),
                Some("Enable IAM User Permissions"),
                None,
            ]
        );
        assert_eq!(merged["Id"], "key-default-1");
        let d = diff(Some(&current), &merged, "aws");
        let changed: Vec<&str> = d.changed.iter().map(|c| c.sid.as_str()).collect();
        assert_eq!(changed, vec!["TrailkeyLogReadersDecrypt"]);
        assert_eq!(d.added.len(), 4);
        assert_eq!(d.kept, vec!["Enable IAM User Permissions", "(no Sid)"]);
        assert!(!equivalent(&current, &merged, "aws"));
        // Merging again changes nothing.
        assert!(equivalent(&merge(Some(&merged), &ours()), &merged, "aws"));
    }

    #[test]
    fn normalize_ignores_order_shape_and_account_id_form() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222222222222:root", "333333333333"]},
             "Action": ["kms:Decrypt"], "Resource": "*",
             "Condition": {"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}}},
            {"Sid": "B", "Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey", "Resource": ["*"]}
        ]});
        let b = json!({"Statement": [
            {"Resource": "*", "Action": "kms:DescribeKey", "Effect": "Allow", "Principal": {"AWS": "*"}, "Sid": "B"},
            {"Condition": {"Null": {"kms:encryptioncontext:aws:cloudtrail:arn": ["false"]}}, "Resource": ["*"],
             "Action": "KMS:Decrypt", "Principal": {"AWS": ["arn:aws:iam::333333333333:root", "222222222222"]},
             "Effect": "Allow", "Sid": "A"}
        ], "Version": "2012-10-17", "Id": "other"});
        assert!(equivalent(&a, &b, "aws"));
        let mut c = b.clone();
        c["Statement"][1]["Principal"]["AWS"][0] = json!("arn:aws:iam::444444444444:root");
        assert!(!equivalent(&a, &c, "aws"));
    }

    /// KMS returns policies pretty-printed with its own spacing, and IAM
    /// may show a principal in the account-ID form.
    #[test]
    fn a_policy_as_kms_returns_it_equals_the_one_sent() {
        let sent = ours();
        let returned = to_document(&sent)
            .replace("\n", "\r\n")
            .replace("  ", "    ")
            .replace("\"arn:aws:iam::111111111111:root\"", "\"111111111111\"");
        let returned: Value = serde_json::from_str(&returned).unwrap();
        assert_ne!(returned, sent);
        assert!(equivalent(&returned, &sent, "aws"));
        // A deleted role shows as an opaque principal ID: that is a difference.
        let mut rewritten = sent.clone();
        rewritten["Statement"][4]["Principal"]["AWS"][0] = json!("AROAEXAMPLEID1234567");
        assert!(!equivalent(&rewritten, &sent, "aws"));
    }

    #[test]
    fn field_changes_show_whole_lists_before_and_after() {
        let before = normalize_statement(
            &json!({"Sid": "X", "Principal": {"AWS": ["arn:aws:iam::222222222222:root", "333333333333"]},
                    "Condition": {"StringEquals": {"aws:SourceArn": "arn:a"}}}),
            "aws",
        );
        let after = normalize_statement(
            &json!({"Sid": "X", "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
                    "Condition": {"StringEquals": {"aws:SourceArn": "arn:b"}}}),
            "aws",
        );
        let changes = field_changes(&before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            ["Condition.StringEquals.aws:sourcearn", "Principal.AWS"]
        );
        assert_eq!(changes[0].before, json!(["arn:a"]));
        assert_eq!(changes[0].after, json!(["arn:b"]));
        assert_eq!(
            changes[1].before,
            json!([
                "arn:aws:iam::222222222222:root",
                "arn:aws:iam::333333333333:root"
            ])
        );
    }

    #[test]
    fn field_changes_name_fields_added_removed_or_of_another_type() {
        let before = json!({"Sid": "X", "Effect": "Allow", "Condition": {"Bool": {"a": ["true"]}}});
        let after = json!({"Sid": "X", "Effect": "Deny", "Condition": "odd", "Resource": ["*"]});
        let changes = field_changes(&before, &after);
        let seen: Vec<(&str, &Value, &Value)> = changes
            .iter()
            .map(|c| (c.path.as_str(), &c.before, &c.after))
            .collect();
        assert_eq!(
            seen,
            [
                ("Condition", &before["Condition"], &json!("odd")),
                ("Effect", &json!("Allow"), &json!("Deny")),
                ("Resource", &Value::Null, &json!(["*"])),
            ]
        );
        assert!(field_changes(&after, &after).is_empty());
    }

    #[test]
    fn iam_wildcards_match_like_iam() {
        assert!(wildcard_match("kms:*", "kms:decrypt"));
        assert!(wildcard_match(
            "kms:generatedatakey*",
            "kms:generatedatakey"
        ));
        assert!(wildcard_match("*", "kms:describekey"));
        assert!(wildcard_match("kms:de?rypt", "kms:decrypt"));
        assert!(!wildcard_match("kms:encrypt", "kms:decrypt"));
        assert!(!wildcard_match("s3:*", "kms:decrypt"));
        assert!(wildcard_match("**?*", "k"));
        assert!(!wildcard_match("*?", ""));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "k"));
    }

    /// The plain definition of the wildcards, by backtracking: exponential,
    /// so only for the short strings of the property below.
    fn reference_match(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                reference_match(&p[1..], t) || (!t.is_empty() && reference_match(p, &t[1..]))
            }
            (Some('?'), Some(_)) => reference_match(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference_match(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]
        /// Small alphabets, so that stars, `?` and letters meet often.
        #[test]
        fn wildcard_match_agrees_with_the_reference(
            pattern in "[ab*?é]{0,12}",
            text in "[abé]{0,12}",
        ) {
            let chars = |s: &str| s.chars().collect::<Vec<_>>();
            proptest::prop_assert_eq!(
                wildcard_match(&pattern, &text),
                reference_match(&chars(&pattern), &chars(&text)),
                "pattern {:?} text {:?}", pattern, text
            );
        }
    }

    fn hostile_deny(action: String) -> Value {
        json!({"Sid": "Hostile", "Effect": "Deny",
               "Principal": {"Service": "cloudtrail.amazonaws.com"},
               "Action": [action], "Resource": "*"})
    }

    fn with_statements(extra: Vec<Value>) -> Value {
        let mut policy = ours();
        policy["Statement"].as_array_mut().unwrap().extend(extra);
        policy
    }

    /// A foreign Deny whose action has 30 wildcards before a letter no
    /// action ends with: a backtracking matcher tries every way to split
    /// each needed action among the stars, and never finishes.
    #[test]
    fn thirty_wildcards_in_a_foreign_deny_are_matched_at_once() {
        let action = format!("kms:{}q", "*".repeat(30));
        let policy = with_statements(vec![hostile_deny(action)]);
        let readers = [("arn:aws:iam::222222222222:root", "the Log Archive account")];
        assert_eq!(
            blocking_denies(&policy, "aws", &readers),
            Vec::<String>::new()
        );
        // The same stars before a letter the actions do end with: a match.
        let policy = with_statements(vec![hostile_deny(format!("kms:{}y", "*".repeat(30)))]);
        let denies = blocking_denies(&policy, "aws", &readers);
        assert_eq!(denies.len(), 1, "{denies:?}");
        assert!(denies[0].contains("kms:DescribeKey"), "{denies:?}");
        assert!(!denies[0].contains("kms:Decrypt"), "{denies:?}");
    }

    /// A policy close to KMS's 32 KB limit, with 1,000 wildcards in one
    /// action and more in the statements that fill it.
    pub(crate) fn near_limit_policy_with_wildcards() -> Value {
        let mut extra = vec![hostile_deny(format!("kms:{}q", "*".repeat(1000)))];
        let mut i = 0;
        while to_document(&with_statements(extra.clone())).len() < MAX_POLICY_BYTES - 400 {
            extra.push(hostile_deny(format!("kms:{}?{i}", "*?".repeat(20))));
            i += 1;
        }
        with_statements(extra)
    }

    #[test]
    fn a_thousand_wildcards_in_a_policy_near_the_size_limit_are_matched_at_once() {
        let policy = near_limit_policy_with_wildcards();
        let size = to_document(&policy).len();
        assert!(
            size > MAX_POLICY_BYTES - 1024 && size <= MAX_POLICY_BYTES,
            "{size}"
        );
        let readers = [("arn:aws:iam::222222222222:root", "the Log Archive account")];
        assert_eq!(
            blocking_denies(&policy, "aws", &readers),
            Vec::<String>::new()
        );
        assert!(equivalent(&policy, &policy.clone(), "aws"));
        let d = diff(Some(&policy), &merge(Some(&policy), &ours()), "aws");
        assert!(d.is_empty(), "{d:?}");
    }

    /// Key order inside statements never matters, though serde_json keeps
    /// it (`preserve_order`).
    #[test]
    fn key_order_inside_statements_does_not_count() {
        let a: Value = serde_json::from_str(
            r#"{"Statement": [
                {"Sid": "B", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Principal": {"AWS": "*"}},
                {"Sid": "A", "Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "Principal": {"AWS": "*"}}
            ]}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"Statement": [
                {"Action": "kms:Decrypt", "Sid": "B", "Principal": {"AWS": "*"}, "Resource": "*", "Effect": "Allow"},
                {"Resource": "*", "Effect": "Allow", "Principal": {"AWS": "*"}, "Sid": "A", "Action": "kms:Encrypt"}
            ]}"#,
        )
        .unwrap();
        assert!(equivalent(&a, &b, "aws"));
        assert_eq!(
            normalize(&a, "aws").to_string(),
            normalize(&b, "aws").to_string()
        );
    }

    #[test]
    fn single_statement_object_counts_as_a_list() {
        let one = json!({"Version": "2012-10-17", "Statement": {"Sid": "X", "Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": {"AWS": "111111111111"}}});
        assert_eq!(statements(&one).len(), 1);
        let list = json!({"Version": "2012-10-17", "Statement": [{"Sid": "X", "Effect": "Allow", "Action": ["kms:*"], "Resource": "*", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}}]});
        assert!(equivalent(&one, &list, "aws"));
    }
}
