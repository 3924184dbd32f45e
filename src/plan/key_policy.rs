//! The key policy trailkey would attach: its statements merged into the
//! current policy, the size check, and the reader's IAM policy.

use serde_json::{Value, json};

use super::*;

/// The policy trailkey would attach, given what is observed.
pub fn desired_policy(desired: &Desired, observed: &Observed) -> Result<Value, Error> {
    merged_policy(desired, observed, current_policy(observed)?.as_ref())
}

/// The observed key's policy, parsed.
pub(super) fn current_policy(observed: &Observed) -> Result<Option<Value>, Error> {
    observed
        .key
        .as_ref()
        .map(|k| parse_policy(&k.policy, &k.info.arn))
        .transpose()
}

/// trailkey's statements merged into `current`, within KMS's size limit.
pub(super) fn merged_policy(
    desired: &Desired,
    observed: &Observed,
    current: Option<&Value>,
) -> Result<Value, Error> {
    let mut ours = policy::render(&PolicyInputs::of(
        desired,
        &observed.organization.management_account,
        &observed.organization.id,
        &observed.trail.arn,
    ));
    let sharing: Vec<&str> = sharing_trails(desired, observed)
        .map(|t| t.arn.as_str())
        .collect();
    let alone = ours.clone();
    policy::allow_trails(&mut ours, &observed.trail.arn, &sharing);
    let merged = policy::merge(current, &ours);
    let size = policy::to_document(&merged).len();
    if size > policy::MAX_POLICY_BYTES {
        return Err(too_large(size, current, &ours, &alone, &sharing));
    }
    Ok(merged)
}

/// Why the merged policy is over KMS's limit, by what takes the room:
/// trailkey's statements, the `aws:SourceArn` lists in them (which grow
/// with every trail sharing the key), and the foreign statements. The
/// blame goes to whichever would make the policy fit if it were gone; when
/// both or neither would, to the larger. `alone` is `ours` for the
/// configured trail only.
pub(super) fn too_large(
    size: usize,
    current: Option<&Value>,
    ours: &Value,
    alone: &Value,
    sharing: &[&str],
) -> Error {
    let max = policy::MAX_POLICY_BYTES;
    let bytes =
        |statements: &[&Value]| -> usize { statements.iter().map(|s| s.to_string().len()).sum() };
    let our_statements = policy::statements(ours);
    let our_bytes = bytes(&our_statements);
    let source_arns: Vec<&Value> = our_statements
        .iter()
        .filter_map(|s| s.pointer("/Condition/StringEquals/aws:SourceArn"))
        .collect();
    let arn_bytes = bytes(&source_arns);
    let trails = 1 + sharing.len();
    let foreign: Vec<&Value> = current
        .map(policy::statements)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !policy::is_ours(s))
        .collect();
    let foreign_bytes = bytes(&foreign);
    let compact =
        |ours: &Value, current: Option<&Value>| policy::merge(current, ours).to_string().len();
    let shared_bytes = compact(ours, current).saturating_sub(compact(alone, current));
    let fits_alone = policy::to_document(&policy::merge(current, alone)).len() <= max;
    let fits_without_foreign = policy::to_document(&policy::merge(None, ours)).len() <= max;
    let blame_trails = !sharing.is_empty()
        && match (fits_alone, fits_without_foreign) {
            (true, false) => true,
            (false, true) => false,
            _ => shared_bytes >= foreign_bytes,
        };
    let over = format!("the merged key policy would be {size} bytes; KMS accepts at most {max}");
    let foreign_text = match foreign.len() {
        0 => "the key has no foreign statements".to_owned(),
        1 => format!("1 foreign statement takes {foreign_bytes} bytes"),
        n => format!("{n} foreign statements take {foreign_bytes} bytes"),
    };
    if blame_trails {
        let sizes = Sizes {
            over: &over,
            arn_bytes,
            arn_lists: source_arns.len(),
            shared_bytes,
            our_bytes,
            foreign_text: &foreign_text,
        };
        return too_many_trails(&sizes, sharing);
    }
    let arns = if trails > 1 {
        format!(", of which the aws:SourceArn lists, naming {trails} trails, take {arn_bytes}")
    } else {
        String::new()
    };
    if foreign.is_empty() {
        return Error::check(
            format!("{over}: trailkey's statements take {our_bytes} bytes{arns}"),
            "trailkey's own statements do not fit: declare fewer readers in [readers]",
        );
    }
    Error::check(
        format!("{over}: {foreign_text}; trailkey's statements take {our_bytes} bytes{arns}"),
        "the key's foreign statements leave no room for trailkey's: remove unused statements from the key policy",
    )
}

/// The figures a too-large policy's error gives.
struct Sizes<'a> {
    /// The policy's size against KMS's limit.
    over: &'a str,
    /// The bytes of the `aws:SourceArn` lists, and how many there are.
    arn_bytes: usize,
    arn_lists: usize,
    /// How much smaller the policy would be with the configured trail alone.
    shared_bytes: usize,
    /// The bytes of trailkey's statements.
    our_bytes: usize,
    /// What the foreign statements take.
    foreign_text: &'a str,
}

/// The error for a policy too large because the trails `sharing` the key
/// are all in its `aws:SourceArn` lists.
fn too_many_trails(sizes: &Sizes<'_>, sharing: &[&str]) -> Error {
    let shown = sharing.len().min(3);
    let more = match sharing.len() - shown {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Error::check(
        format!(
            "{}: {} trails share the key; their ARNs in aws:SourceArn take {} bytes (each ARN is listed in {} statements), and the policy would be {} bytes smaller with the configured trail alone. The other trails: {}{more}. trailkey's statements take {} bytes in all; {}",
            sizes.over,
            1 + sharing.len(),
            sizes.arn_bytes,
            sizes.arn_lists,
            sizes.shared_bytes,
            sharing[..shown].join(", "),
            sizes.our_bytes,
            sizes.foreign_text,
        ),
        "use this key for fewer trails: point some of the other trails at a KMS key of their own (every trail of the management account that uses this key stays in aws:SourceArn, so that its delivery goes on), then run trailkey again",
    )
}

/// The IAM policy `reader` needs in its own account to read the trail's log
/// files (`policy --reader-iam`): `kms:Decrypt` on the key under the same
/// encryption-context condition as the key policy's reader statements, and
/// `s3:ListBucket`/`s3:GetObject` on the trail's bucket, under its prefix.
/// The reader must be one the key policy lets decrypt: of the Log Archive,
/// management or Security Tooling account, or one `[readers]` lists.
pub fn reader_iam_policy(
    desired: &Desired,
    observed: &Observed,
    reader: &crate::config::Principal,
) -> Result<Value, Error> {
    let management = observed.organization.management_account.as_str();
    check_is_reader(desired, management, reader)?;
    let Some(key) = &observed.key else {
        return Err(Error::check(
            format!("the key {} does not exist yet", desired.alias.full()),
            "run `trailkey apply` first: the IAM policy names the key's ARN",
        ));
    };
    let ours = policy::render(&PolicyInputs::of(
        desired,
        management,
        &observed.organization.id,
        &observed.trail.arn,
    ));
    let condition = policy::statements(&ours)
        .into_iter()
        .find(|s| policy::sid(s) == Some("TrailkeyLogReadersDecrypt"))
        .and_then(|s| s.get("Condition"))
        .cloned()
        .unwrap_or(Value::Null);
    let partition = desired.partition();
    let bucket = &observed.trail.s3_bucket;
    let logs = match observed.trail.s3_key_prefix.as_deref() {
        Some(prefix) => format!("{}/AWSLogs/", prefix.trim_end_matches('/')),
        None => "AWSLogs/".to_owned(),
    };
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DecryptCloudTrailLogFiles",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key.info.arn,
                "Condition": condition
            },
            {
                "Sid": "ListCloudTrailLogFiles",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": format!("arn:{partition}:s3:::{bucket}"),
                "Condition": { "StringLike": { "s3:prefix": [format!("{logs}*")] } }
            },
            {
                "Sid": "ReadCloudTrailLogFiles",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("arn:{partition}:s3:::{bucket}/{logs}*")
            }
        ]
    }))
}

/// Refuses a `reader` the key policy does not let decrypt: it must be of
/// the Log Archive, management or Security Tooling account (their roots are
/// in the key policy; the Security Tooling account's administers the key),
/// or one `[readers]` covers.
fn check_is_reader(
    desired: &Desired,
    management: &str,
    reader: &crate::config::Principal,
) -> Result<(), Error> {
    let by_account = [
        desired.log_archive.as_str(),
        management,
        desired.security_tooling.as_str(),
    ]
    .contains(&reader.account.as_str());
    if by_account || desired.readers.covers(reader) {
        return Ok(());
    }
    Err(Error::usage(
        format!(
            "{} is not a reader: the key policy does not let it decrypt the log files",
            reader.arn
        ),
        format!(
            "add it to readers.principals, or its account {} to readers.accounts, in {}, run `trailkey apply`, then ask again",
            reader.account,
            desired.source.display()
        ),
    ))
}

/// `[readers]` must not repeat the management account, which the config
/// may leave out (it is read from AWS): its root is a reader already.
pub(super) fn check_readers(desired: &Desired, management: &str) -> Result<(), Error> {
    let repeated = desired
        .readers
        .accounts
        .iter()
        .map(|a| (a.as_str(), "readers.accounts".to_owned()))
        .chain(
            desired
                .readers
                .principals
                .iter()
                .map(|p| (p.account.as_str(), format!("readers.principals {}", p.arn))),
        )
        .find(|(account, _)| *account == management);
    match repeated {
        None => Ok(()),
        Some((_, field)) => Err(Error::config(
            &desired.source,
            Some("readers".to_owned()),
            format!(
                "{field} names the management account {management}, whose root already reads the logs"
            ),
            "remove it from [readers]: the Log Archive and management accounts are always readers"
                .to_owned(),
        )),
    }
}

/// The other trails of the management account that use trailkey's key:
/// CloudTrail must keep its permission for them, or their log delivery
/// would stop (after a rename of `trail.name`, the old trail, until it
/// moves to another key). Only an unambiguous name counts, since this
/// grants: the key's ARN, or the alias's ARN in the Security Tooling
/// account and Region (a bare key ID or alias name on a management-account
/// trail would name a key of that account).
pub(super) fn sharing_trails<'o>(
    desired: &Desired,
    observed: &'o Observed,
) -> impl Iterator<Item = &'o Trail> {
    let alias_arn = format!(
        "arn:{}:kms:{}:{}:{}",
        desired.partition(),
        desired.region,
        desired.key_account,
        desired.alias.full()
    );
    let prefix = format!("arn:{}:cloudtrail:", desired.partition());
    let management = format!(":{}:trail/", observed.organization.management_account);
    observed.other_trails.iter().filter(move |t| {
        t.arn.starts_with(&prefix)
            && t.arn.contains(&management)
            && observed.key.as_ref().is_some_and(|k| {
                t.kms_key_id
                    .as_deref()
                    .is_some_and(|id| id == k.info.arn || id == alias_arn)
            })
    })
}

pub(super) fn parse_policy(text: &str, key_arn: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::check(
            format!("the policy of key {key_arn} is not valid JSON ({e})"),
            "inspect it with `aws kms get-key-policy --policy-name default`",
        )
    })
}
