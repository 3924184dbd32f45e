//! What a plan reports but does not change.

use serde_json::Value;

use super::*;

/// The Log Archive side of a change of the trail's key (to trailkey's key,
/// or with `back_to_sse_s3` to none): the bucket's policy must not deny
/// CloudTrail's writes with the new setting (else an [`Error::Check`]), and
/// for a key, its replication and encryption are reported. Without
/// `roles.log_archive`, a note that it was not checked. With it, the
/// bucket was read: planning asks for it first ([`Need::LogBucket`]).
pub(super) fn log_archive_findings(
    desired: &Desired,
    observed: &Observed,
    back_to_sse_s3: bool,
) -> Result<Vec<Finding>, Error> {
    let bucket = &observed.trail.s3_bucket;
    if desired.log_archive_role.is_none() {
        return Ok(vec![Finding {
            level: Level::Note,
            message: format!(
                "the Log Archive side (the policy, encryption and replication of bucket {bucket}) was not checked: set roles.log_archive to a read-only role in account {} to check it before the trail changes",
                desired.log_archive
            ),
        }]);
    }
    let OnDemand::Read(read) = &observed.log_bucket else {
        return Ok(Vec::new());
    };
    let prefix = format!(
        "arn:{}:kms:{}:{}:key/",
        desired.partition(),
        desired.region,
        desired.key_account
    );
    let key = match &observed.key {
        _ if back_to_sse_s3 => log_archive::TrailKey::SseS3,
        Some(k) => log_archive::TrailKey::Arn(&k.info.arn),
        None => log_archive::TrailKey::New { prefix: &prefix },
    };
    let write = log_archive::Write {
        partition: desired.partition(),
        bucket,
        key,
    };
    log_archive::check(read, &write, desired.log_archive.as_str())
}

/// What the plan reports but does not change.
/// `current` is the observed key's policy, parsed.
pub(super) fn findings(
    desired: &Desired,
    observed: &Observed,
    current: Option<&Value>,
    policy_unchanged: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(current) = current {
        out.extend(crate::exposure::findings(desired, observed, current));
    }
    if let (Some(k), Some(current)) = (&observed.key, current) {
        out.extend(policy_findings(
            desired,
            observed,
            k,
            current,
            policy_unchanged,
        ));
    }
    out.extend(trail_findings(
        desired,
        &observed.trail,
        &observed.trail_status,
    ));
    out.extend(super::blind_spot::kms_blind_spot(observed));
    if !desired.landing_zone {
        // Control Tower sets its own trail's settings.
        out.extend(trail_setting_findings(desired, &observed.trail));
    }
    out.extend(observation_findings(desired, observed));
    out
}

/// What observe found beside the setup: other trails on the key, a bucket
/// whose Region could not be read, keys trailkey may not read, and other
/// keys tagged for the alias.
fn observation_findings(desired: &Desired, observed: &Observed) -> Vec<Finding> {
    let mut out = Vec::new();
    let sharing: Vec<&str> = sharing_trails(desired, observed)
        .map(|t| t.arn.as_str())
        .collect();
    if !sharing.is_empty() {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "trail(s) {} also use the key: trailkey's CloudTrail statements allow them too (aws:SourceArn), so that their log delivery keeps working; each leaves the policy once it no longer uses the key",
                sharing.join(", ")
            ),
        });
    }
    if let Err(why) = &observed.bucket_region {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "the Region of bucket {} could not be read ({why}); check that it is in {}",
                observed.trail.s3_bucket, desired.region
            ),
        });
    }
    if observed.key.is_none() && !observed.unreadable_keys.is_empty() {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "trailkey's role may not read {} key(s) of account {} (their key policies do not let it in): {}. trailkey creates a key of its own beside them; if one of them is a key an earlier trailkey run made whose policy was changed since, let the role in again first, or there will be two keys",
                observed.unreadable_keys.len(),
                desired.key_account,
                observed.unreadable_keys.join(", ")
            ),
        });
    }
    for other in &observed.other_keys {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "another key tagged for {} exists: {} ({}). trailkey uses {} and leaves the other alone; if no trail or bucket uses it, schedule its deletion",
                desired.alias.full(),
                other.arn,
                other.state,
                observed.key.as_ref().map_or("a new key", |k| k.info.arn.as_str())
            ),
        });
    }
    out
}

/// The key policy's foreign `Deny` statements that block CloudTrail or the
/// readers, and, when the policy does not change, the statements kept.
pub(super) fn policy_findings(
    desired: &Desired,
    observed: &Observed,
    k: &ObservedKey,
    current: &Value,
    policy_unchanged: bool,
) -> Vec<Finding> {
    let partition = desired.partition();
    let readers = readers(desired, observed);
    let readers: Vec<policy::Reader<'_>> = readers
        .iter()
        .map(|(arn, what, essential)| policy::Reader {
            arn,
            what,
            essential: *essential,
        })
        .collect();
    let key = policy::KeyArn::Known(&k.info.arn);
    let mut out: Vec<Finding> =
        policy::blocking_denies(current, partition, key, &observed.trail.arn, &readers)
            .into_iter()
            .map(|deny| Finding {
                level: if deny.breaks_delivery {
                    Level::Error
                } else {
                    Level::Warning
                },
                message: format!(
                    "{}. trailkey does not change statements it does not own: remove or narrow that statement in the key policy of {}",
                    deny.message, k.info.arn
                ),
            })
            .collect();
    out.extend(
        policy::unknown_reserved_sids(current)
            .into_iter()
            .map(|sid| Finding {
                level: Level::Warning,
                message: format!(
                    "statement {sid:?} is not one of trailkey's, but its Sid starts with {:?}, which trailkey reserves for its own statements: apply removes it. Rename it (any Sid not starting with {0:?}) to keep it",
                    policy::OUR_SID_PREFIX
                ),
            }),
    );
    // When the policy changes, the change itself lists the kept statements.
    let kept = policy::foreign_sids(current);
    if policy_unchanged && !kept.is_empty() {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "the key policy has {} statement(s) not managed by trailkey, kept on every write: {}",
                kept.len(),
                kept.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    out
}

/// Who must be able to decrypt the logs: ARN, description, and whether a
/// Deny of `kms:Decrypt` to it breaks the setup (the Log Archive account's
/// does).
fn readers(desired: &Desired, observed: &Observed) -> Vec<(String, &'static str, bool)> {
    let partition = desired.partition();
    let root = |account: &str| format!("arn:{partition}:iam::{account}:root");
    let mut readers = vec![
        (
            root(desired.log_archive.as_str()),
            "the Log Archive account",
            true,
        ),
        (
            root(&observed.organization.management_account),
            "the management account",
            false,
        ),
    ];
    readers.extend(
        desired
            .readers
            .accounts
            .iter()
            .map(|a| (root(a.as_str()), "the declared reader account", false)),
    );
    readers.extend(
        desired
            .readers
            .principals
            .iter()
            .map(|p| (p.arn.clone(), "the declared reader", false)),
    );
    readers
}

/// What CIS AWS Foundations asks of the trail and trailkey does not set:
/// log-file validation when the config does not ask for it (3.2), and a
/// multi-Region trail (3.1). Warnings only: the exit code is unchanged.
pub(super) fn trail_setting_findings(desired: &Desired, trail: &Trail) -> Vec<Finding> {
    let mut out = Vec::new();
    if !trail.log_file_validation && desired.log_file_validation.is_none() {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "log-file validation is off on trail {}: CloudTrail delivers no digest files, so a log file changed or deleted in the bucket cannot be detected (CIS AWS Foundations 3.2). Set log_file_validation = true under [trail] to turn it on, or false to keep it as it is without this warning",
                trail.arn
            ),
        });
    }
    if !trail.is_multi_region_trail {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "trail {} is not multi-Region: it records the events of {} only (CIS AWS Foundations 3.1). trailkey does not change that; `aws cloudtrail update-trail --name {} --is-multi-region-trail` does",
                trail.arn, trail.home_region, trail.arn
            ),
        });
    }
    out
}

/// A trail that is not logging (unless `trail.logging` is set: the plan's
/// `trail_logging` says it), and its latest delivery errors.
pub(super) fn trail_findings(
    desired: &Desired,
    trail: &Trail,
    status: &TrailStatus,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if !status.is_logging && desired.logging.is_none() {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "trail {} is not logging: no events are recorded. Start it with `aws cloudtrail start-logging --name {}`",
                trail.arn, trail.arn
            ),
        });
    }
    for (what, error) in [
        ("log", &status.latest_delivery_error),
        ("digest", &status.latest_digest_delivery_error),
    ] {
        if let Some(error) = error {
            out.push(Finding {
                level: Level::Warning,
                message: delivery_error(what, error),
            });
        }
    }
    out
}

/// A `GetTrailStatus` delivery error in plain language.
pub(super) fn delivery_error(what: &str, error: &str) -> String {
    let meaning = if error.contains("KMS") || error.contains("kms") {
        "CloudTrail could not use the KMS key: check that the key is enabled, in the bucket's Region, and that its policy lets cloudtrail.amazonaws.com GenerateDataKey* for this trail (`trailkey plan` shows policy drift)"
    } else if error.contains(crate::aws::code::ACCESS_DENIED) {
        "the bucket policy does not let CloudTrail write: check the Log Archive bucket policy"
    } else if error.contains(crate::aws::code::NO_SUCH_BUCKET) {
        "the bucket is gone: fix the trail's S3 bucket"
    } else {
        "see the CloudTrail console for the trail's delivery status"
    };
    format!("the latest {what} file delivery failed with {error}: {meaning}")
}
