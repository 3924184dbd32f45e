//! The Log Archive side: what the trail's bucket does with log files once
//! CloudTrail encrypts them with the key. Pure: it judges a [`LogBucket`]
//! that `observe` read with `roles.log_archive`.
//!
//! The bucket policy is someone else's document, so it is untrusted input:
//! its size is capped, every statement is looked at once, wildcards are
//! matched with [`wildcard_match`] (O(pattern × text), the text
//! being a short ARN or action), and nothing in it can make this panic.
//!
//! A `Deny` statement counts when it applies to CloudTrail's `s3:PutObject`
//! of a log file and one of its conditions is on the encryption headers
//! (`s3:x-amz-server-side-encryption-aws-kms-key-id`,
//! `s3:x-amz-server-side-encryption`): those are the statements whose
//! effect changes with the key. A `Deny` without such a condition applies
//! (or not) whatever the key, so the change does not affect it. When a
//! condition of such a statement cannot be evaluated (an operator or a
//! condition key trailkey does not model), the statement is taken to deny:
//! trailkey refuses rather than risk stopping log delivery.

use serde_json::Value;

use crate::aws::{LogBucket, ReplicationRule};
use crate::error::Error;
use crate::model::pattern::wildcard_match;
use crate::model::{Finding, Level};

/// S3 accepts bucket policies up to 20 KB; anything much larger is not a
/// policy S3 returned, and is not evaluated.
pub const MAX_BUCKET_POLICY_BYTES: usize = 64 * 1024;

const KEY_ID: &str = "s3:x-amz-server-side-encryption-aws-kms-key-id";
const SSE: &str = "s3:x-amz-server-side-encryption";
const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// The key CloudTrail will name in `s3:x-amz-server-side-encryption-aws-kms-key-id`.
#[derive(Debug, Clone, Copy)]
pub enum TrailKey<'a> {
    /// An existing key, by ARN.
    Arn(&'a str),
    /// A key the plan creates: only its ARN's prefix
    /// (`arn:<partition>:kms:<region>:<account>:key/`) is known.
    New { prefix: &'a str },
    /// No KMS key: `destroy` moves the trail back to SSE-S3. The write
    /// carries no key ID header; whether CloudTrail sends
    /// `x-amz-server-side-encryption: AES256` or leaves the header out (the
    /// bucket's default encryption) is not documented, so a condition on
    /// that header counts only when it holds the same either way.
    SseS3,
}

impl TrailKey<'_> {
    fn describe(&self) -> String {
        match self {
            TrailKey::Arn(arn) => arn.to_string(),
            TrailKey::New { prefix } => format!("the new key ({prefix}<known after apply>)"),
            TrailKey::SseS3 => "SSE-S3 (no KMS key)".to_owned(),
        }
    }
}

/// What CloudTrail's write of a log file looks like to the bucket policy.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub partition: &'a str,
    pub bucket: &'a str,
    pub key: TrailKey<'a>,
}

/// A statement of the bucket policy that would deny the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The statement's `Sid`, or its position when it has none.
    pub sid: String,
    /// The encryption conditions that make it deny.
    pub because: Vec<String>,
    /// Conditions trailkey could not evaluate (empty: it certainly denies).
    pub unknown: Vec<String>,
}

/// A condition's value for this write.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Holds,
    Fails,
    Unknown,
}

/// The statements of `policy` that would deny CloudTrail's write, or why
/// the policy could not be read at all.
pub fn denials(policy: &str, write: &Write<'_>) -> Result<Vec<Denial>, String> {
    if policy.len() > MAX_BUCKET_POLICY_BYTES {
        return Err(format!(
            "the bucket policy is {} bytes, more than S3 allows; trailkey does not evaluate it",
            policy.len()
        ));
    }
    let doc: Value = serde_json::from_str(policy)
        .map_err(|e| format!("the bucket policy is not valid JSON ({e})"))?;
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return Err("the bucket policy has no Statement".to_owned()),
    };
    Ok(statements
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| denial(i, s, write))
        .collect())
}

fn denial(index: usize, s: &Value, write: &Write<'_>) -> Option<Denial> {
    if s.get("Effect").and_then(Value::as_str) != Some("Deny")
        || !principal_applies(s)
        || !action_applies(s)
        || !resource_applies(s, write)
    {
        return None;
    }
    let mut because = Vec::new();
    let mut unknown = Vec::new();
    let mut on_encryption = false;
    let conditions = match s.get("Condition") {
        None => return None,
        Some(Value::Object(c)) => c,
        Some(_) => {
            return Some(Denial {
                sid: sid(index, s),
                because,
                unknown: vec!["a Condition that is not an object".to_owned()],
            });
        }
    };
    for (operator, block) in conditions {
        let Value::Object(block) = block else {
            unknown.push(format!("{operator} (not an object)"));
            continue;
        };
        for (key, values) in block {
            let values = strings(values);
            let lower = key.to_ascii_lowercase();
            let encryption = lower == KEY_ID || lower == SSE;
            on_encryption |= encryption;
            let shown = format!("{operator} {key} {}", show(&values));
            match condition(operator, &lower, &values, write) {
                Cond::Fails => return None,
                Cond::Holds if encryption => because.push(shown),
                Cond::Holds => {}
                Cond::Unknown => unknown.push(shown),
            }
        }
    }
    on_encryption.then(|| Denial {
        sid: sid(index, s),
        because,
        unknown,
    })
}

fn sid(index: usize, s: &Value) -> String {
    match s.get("Sid").and_then(Value::as_str) {
        Some(sid) if !sid.is_empty() => truncate(sid),
        _ => format!("#{} (no Sid)", index + 1),
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 100;
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

fn show(values: &[String]) -> String {
    let shown: Vec<String> = values.iter().take(3).map(|v| truncate(v)).collect();
    let more = values.len().saturating_sub(3);
    if more > 0 {
        format!("{shown:?} and {more} more")
    } else {
        format!("{shown:?}")
    }
}

/// A string, or each item of a list, as text.
fn strings(v: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        other => vec![one(other)],
    }
}

/// `Principal: "*"`, `{"AWS": "*"}` or CloudTrail's service principal; a
/// `NotPrincipal` that does not exclude CloudTrail; a statement without
/// either (not valid in a bucket policy) is taken to apply.
fn principal_applies(s: &Value) -> bool {
    let names_cloudtrail = |p: &Value| match p {
        Value::String(p) => p == "*",
        Value::Object(m) => {
            m.get("AWS")
                .is_some_and(|v| strings(v).iter().any(|a| a == "*"))
                || m.get("Service")
                    .is_some_and(|v| strings(v).iter().any(|a| a == "*" || a == CLOUDTRAIL))
        }
        _ => true,
    };
    match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), _) => names_cloudtrail(p),
        (None, Some(Value::Object(m))) => !m
            .get("Service")
            .is_some_and(|v| strings(v).iter().any(|a| a == CLOUDTRAIL)),
        _ => true,
    }
}

fn action_applies(s: &Value) -> bool {
    let matches = |v: &Value| {
        strings(v)
            .iter()
            .any(|a| wildcard_match(&a.to_ascii_lowercase(), "s3:putobject"))
    };
    match (s.get("Action"), s.get("NotAction")) {
        (Some(a), _) => matches(a),
        (None, Some(n)) => !matches(n),
        (None, None) => true,
    }
}

/// Whether a `Resource` pattern can cover objects of the bucket: its text
/// up to the first wildcard agrees with `arn:<partition>:s3:::<bucket>/`.
/// A pattern without a wildcard names one object, never a log file.
fn resource_applies(s: &Value, write: &Write<'_>) -> bool {
    let objects = format!("arn:{}:s3:::{}/", write.partition, write.bucket);
    let covers = |pattern: &str| {
        let Some(at) = pattern.find(['*', '?']) else {
            return false;
        };
        let literal = &pattern[..at];
        objects.starts_with(literal) || literal.starts_with(&objects)
    };
    match s.get("Resource") {
        Some(r) => strings(r).iter().any(|p| covers(p)),
        None => true,
    }
}

fn condition(operator: &str, key: &str, values: &[String], write: &Write<'_>) -> Cond {
    let base = operator.strip_suffix("IfExists").unwrap_or(operator);
    let absent = || absent_condition(operator, values);
    match (key, write.key) {
        (KEY_ID, TrailKey::Arn(arn)) => string_condition(base, values, arn),
        (KEY_ID, TrailKey::New { prefix }) => new_key_condition(base, values, prefix),
        (KEY_ID, TrailKey::SseS3) => absent(),
        (SSE, TrailKey::SseS3) => match (string_condition(base, values, "AES256"), absent()) {
            (sent, left_out) if sent == left_out => sent,
            _ => Cond::Unknown,
        },
        (SSE, _) => string_condition(base, values, "aws:kms"),
        ("aws:securetransport", _) if base == "Bool" => {
            if values.iter().any(|v| v.eq_ignore_ascii_case("true")) {
                Cond::Holds
            } else {
                Cond::Fails
            }
        }
        _ => Cond::Unknown,
    }
}

fn holds(b: bool) -> Cond {
    if b { Cond::Holds } else { Cond::Fails }
}

/// A string operator on a header whose value is `actual`.
fn string_condition(operator: &str, values: &[String], actual: &str) -> Cond {
    let equal = || values.iter().any(|v| v == actual);
    let equal_ci = || values.iter().any(|v| v.eq_ignore_ascii_case(actual));
    let like = || values.iter().any(|v| wildcard_match(v, actual));
    match operator {
        "StringEquals" | "ArnEquals" => holds(equal()),
        "StringNotEquals" | "ArnNotEquals" => holds(!equal()),
        "StringEqualsIgnoreCase" => holds(equal_ci()),
        "StringNotEqualsIgnoreCase" => holds(!equal_ci()),
        "StringLike" | "ArnLike" => holds(like()),
        "StringNotLike" | "ArnNotLike" => holds(!like()),
        // The header is present on every write of an encrypted log file.
        "Null" => holds(values.iter().any(|v| v.eq_ignore_ascii_case("false"))),
        _ => Cond::Unknown,
    }
}

/// An operator on a header the write does not carry: `...IfExists` and
/// the negated operators hold, the others fail ("Condition operators",
/// IAM User Guide: a key missing from the request context); `Null` holds
/// for `true`.
fn absent_condition(operator: &str, values: &[String]) -> Cond {
    if operator.ends_with("IfExists") {
        return Cond::Holds;
    }
    match operator {
        "StringEquals" | "ArnEquals" | "StringEqualsIgnoreCase" | "StringLike" | "ArnLike" => {
            Cond::Fails
        }
        "StringNotEquals"
        | "ArnNotEquals"
        | "StringNotEqualsIgnoreCase"
        | "StringNotLike"
        | "ArnNotLike" => Cond::Holds,
        "Null" => holds(values.iter().any(|v| v.eq_ignore_ascii_case("true"))),
        _ => Cond::Unknown,
    }
}

/// A string operator on the key ID header of a key not created yet: no
/// value can equal its ARN; a pattern covers it only when it covers every
/// key of the account (`<prefix>*`).
fn new_key_condition(operator: &str, values: &[String], prefix: &str) -> Cond {
    let covers = |v: &String| {
        v.find(['*', '?'])
            .is_some_and(|at| prefix.starts_with(&v[..at]) && v[at..].chars().all(|c| c == '*'))
    };
    let may_match = |v: &String| {
        let at = v.find(['*', '?']).unwrap_or(v.len());
        let literal = &v[..at];
        at < v.len() && (prefix.starts_with(literal) || literal.starts_with(prefix))
    };
    match operator {
        "StringEquals" | "ArnEquals" | "StringEqualsIgnoreCase" => Cond::Fails,
        "StringNotEquals" | "ArnNotEquals" | "StringNotEqualsIgnoreCase" => Cond::Holds,
        "StringLike" | "ArnLike" if values.iter().any(covers) => Cond::Holds,
        "StringLike" | "ArnLike" if values.iter().any(may_match) => Cond::Unknown,
        "StringLike" | "ArnLike" => Cond::Fails,
        "StringNotLike" | "ArnNotLike" if values.iter().any(covers) => Cond::Fails,
        "StringNotLike" | "ArnNotLike" if values.iter().any(may_match) => Cond::Unknown,
        "StringNotLike" | "ArnNotLike" => Cond::Holds,
        "Null" => holds(values.iter().any(|v| v.eq_ignore_ascii_case("false"))),
        _ => Cond::Unknown,
    }
}

/// Judges the bucket before the trail is pointed at the key: an
/// [`Error::Check`] when its policy would deny CloudTrail's writes, else
/// the findings about its replication and encryption.
pub fn check(bucket: &LogBucket, write: &Write<'_>, account: &str) -> Result<Vec<Finding>, Error> {
    let name = write.bucket;
    let key = write.key.describe();
    if let Some(policy) = &bucket.policy {
        let denials = denials(policy, write).map_err(|why| {
            Error::check(
                format!("bucket {name} (account {account}): {why}"),
                "fix the bucket policy in the Log Archive account, then run trailkey again; nothing was written",
            )
        })?;
        if let Some(d) = denials.first() {
            return Err(refusal(d, name, account, &key, write));
        }
    }
    let mut out = Vec::new();
    // Objects under SSE-S3 replicate and need no key: the rest is about KMS.
    if matches!(write.key, TrailKey::SseS3) {
        return Ok(out);
    }
    if let Some(replication) = &bucket.replication {
        out.extend(
            replication
                .rules
                .iter()
                .filter(|r| r.enabled)
                .map(|rule| replication_finding(rule, &replication.role, name, account, write.key)),
        );
    }
    if let Some(enc) = &bucket.encryption
        && enc.bucket_key_enabled
    {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "bucket {name} uses an S3 Bucket Key: with it, CloudTrail needs kms:Decrypt on {key} as well as kms:GenerateDataKey; trailkey's key policy grants it (statement TrailkeyCloudTrailDecrypt)"
            ),
        });
    }
    Ok(out)
}

/// What an enabled replication rule needs once the trail's log files are
/// encrypted with `key` ("Replicating encrypted objects", S3 User Guide):
/// `SourceSelectionCriteria.SseKmsEncryptedObjects` enabled, a
/// `ReplicaKmsKeyID` for the replicas (S3 requires the destination's
/// `EncryptionConfiguration` with it), and the configuration's role allowed
/// `kms:Decrypt` on the source key and `kms:Encrypt` on the replica key.
/// The key lives in the Security Tooling account, so the role's own IAM
/// policy must allow `kms:Decrypt` as well as the key policy.
fn replication_finding(
    rule: &ReplicationRule,
    role: &str,
    bucket: &str,
    account: &str,
    key: TrailKey<'_>,
) -> Finding {
    let key = match key {
        TrailKey::Arn(arn) => arn.to_owned(),
        TrailKey::New { prefix } => {
            format!("the key this apply creates ({prefix}<known after apply>)")
        }
        other => other.describe(),
    };
    let id = rule
        .id
        .as_deref()
        .map_or("(no ID)".to_owned(), |id| format!("{:?}", truncate(id)));
    let role_account = role.split(':').nth(4).unwrap_or_default();
    let role = if role.is_empty() {
        "(the configuration names none)"
    } else {
        role
    };
    let decrypt = if role_account == account {
        format!(
            "kms:Decrypt on {key} in its IAM policy (trailkey's key policy lets account {account} decrypt CloudTrail log files: statement TrailkeyLogReadersDecrypt)"
        )
    } else {
        format!(
            "kms:Decrypt on {key} in its IAM policy and in the key policy (it is not in the Log Archive account {account}: declare it in [readers] unless the key policy lets it decrypt already)"
        )
    };
    let encrypt = match &rule.replica_kms_key_id {
        Some(replica) => format!(
            "kms:Encrypt on the replica key {} (Destination.EncryptionConfiguration.ReplicaKmsKeyID)",
            truncate(replica)
        ),
        None => "kms:Encrypt on a replica key, which the rule does not name: set Destination.EncryptionConfiguration.ReplicaKmsKeyID (S3 requires it with SseKmsEncryptedObjects)".to_owned(),
    };
    let message = if rule.replicates_kms_encrypted {
        format!(
            "replication rule {id} of bucket {bucket} replicates KMS-encrypted objects as the role {role}: once the trail uses {key}, new log files are replicated only if that role has {decrypt}, and {encrypt}"
        )
    } else {
        format!(
            "replication rule {id} of bucket {bucket} does not replicate KMS-encrypted objects (SourceSelectionCriteria.SseKmsEncryptedObjects is not Enabled): once the trail uses {key}, replication of new log files would stop. Enable it; the replication role {role} then needs {decrypt}, and {encrypt}"
        )
    };
    Finding {
        level: Level::Warning,
        message,
    }
}

fn refusal(d: &Denial, bucket: &str, account: &str, key: &str, write: &Write<'_>) -> Error {
    let how = if d.unknown.is_empty() {
        format!("it denies when {}", d.because.join(" and "))
    } else {
        format!(
            "trailkey cannot evaluate {} and takes it to deny{}",
            d.unknown.join(" and "),
            if d.because.is_empty() {
                String::new()
            } else {
                format!(" (it also requires {})", d.because.join(" and "))
            }
        )
    };
    let statement = format!(
        "statement {:?} of the policy of bucket {bucket} (account {account})",
        d.sid
    );
    let allow = match write.key {
        TrailKey::Arn(arn) => format!("allow {arn} in that condition"),
        TrailKey::New { prefix } => format!(
            "the key does not exist yet, so no condition names it: allow the account's keys in that condition (StringNotLike with \"{prefix}*\"), or run trailkey once the statement names the key"
        ),
        TrailKey::SseS3 => {
            return Error::check(
                format!(
                    "refusing to move the trail back to SSE-S3: {statement} would deny CloudTrail's s3:PutObject of log files not encrypted with a KMS key: {how}"
                ),
                "the trail keeps its key, and delivery goes on: to back out, first let the bucket policy accept SSE-S3 log files from CloudTrail, then run destroy again; nothing was written",
            );
        }
    };
    Error::check(
        format!(
            "refusing to point the trail at {key}: {statement} would deny CloudTrail's s3:PutObject of log files encrypted with it: {how}"
        ),
        format!(
            "{allow} (s3:x-amz-server-side-encryption-aws-kms-key-id holds the key ARN), then run trailkey again; nothing was written"
        ),
    )
}

#[cfg(test)]
#[path = "log_archive_tests.rs"]
mod tests;
